"""Tests for labkit.course.viz (figures) and labkit.course.widgets (sliders that leave a static figure behind)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import ipywidgets as W  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from labkit.course import gd, nn_numpy, viz, widgets  # noqa: E402
from labkit.datasets import moons, noisy_line, noisy_sine  # noqa: E402
from labkit.errors import LabkitError  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def line():
    ds = noisy_line(n=30, slope=2.0, offset=1.0, noise=0.5, x_range=(0.0, 2.0), seed=0)
    return ds.x[:, 0].astype(np.float64), ds.y.astype(np.float64)


def lines_with_label(ax, label):
    return [ln for ln in ax.get_lines() if ln.get_label() == label]


# --- lesson 01 --------------------------------------------------------------------------------


def test_ai_ml_dl_has_three_rings_and_names():
    fig = viz.plot_ai_ml_dl()
    ax = fig.axes[0]
    assert len(ax.patches) == 3
    texts = " ".join(t.get_text() for t in ax.texts)
    for name in ("Artificial intelligence", "Machine learning", "Deep learning"):
        assert name in texts


def test_split_bar_shows_shares():
    fig = viz.plot_split({"training": 60, "validation": 20, "test": 20})
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["training\n60 (60%)", "validation\n20 (20%)", "test\n20 (20%)"]
    with pytest.raises(LabkitError):
        viz.plot_split({"a": 0})


def test_images_grid_and_titles():
    fig = viz.plot_images(np.zeros((5, 8, 8)), titles=list("abcde"), ncols=3)
    assert len(fig.axes) == 6  # 2 rows x 3, the last one empty
    assert [ax.get_title() for ax in fig.axes[:5]] == list("abcde")
    with pytest.raises(LabkitError):
        viz.plot_images(np.zeros((8, 8)))


def test_classes_2d_one_scatter_per_label():
    fig = viz.plot_classes_2d(np.random.default_rng(0).normal(size=(30, 2)), np.arange(30) % 3, ["a", "b", "c"])
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["a", "b", "c"]
    with pytest.raises(LabkitError):
        viz.plot_classes_2d(np.zeros((3, 3)), np.zeros(3))


# --- lesson 02 --------------------------------------------------------------------------------


def test_line_fit_draws_each_line(line):
    x, y = line
    fig = viz.plot_line_fit(x, y, {"a": (1.0, 0.0), "b": (2.0, 1.0)})
    ax = fig.axes[0]
    assert len(lines_with_label(ax, "a")) == 1 and len(lines_with_label(ax, "b")) == 1
    xs, ys = lines_with_label(ax, "b")[0].get_data()
    assert np.allclose(ys, 2 * xs + 1)


def test_cost_contour_marks_minimum_and_paths(line):
    x, y = line
    path = gd.gradient_descent(x, y, lr=0.3, steps=20, start=(-0.5, 3.5))
    fig = viz.plot_cost_contour(x, y, {"gd": path})
    ax = fig.axes[0]
    star = lines_with_label(ax, "minimum (closed form)")[0]
    assert np.allclose(np.ravel(star.get_data()), gd.closed_form(x, y))
    drawn = lines_with_label(ax, "gd")[0]
    assert np.allclose(drawn.get_xdata(), path.params[:, 0])
    assert ax.get_xlabel() == "slope" and ax.get_ylabel() == "offset"


def test_contour_drops_diverged_points(line):
    x, y = line
    path = gd.gradient_descent(x, y, lr=10.0, steps=500)
    fig = viz.plot_cost_contour(x, y, {"blow-up": path})
    drawn = lines_with_label(fig.axes[0], "blow-up")[0]
    assert np.all(np.isfinite(drawn.get_xdata())) and np.all(np.abs(drawn.get_xdata()) < 1e6)


def test_contour_rejects_bad_path():
    with pytest.raises(LabkitError, match="steps, 2"):
        viz.plot_contour(gd.bumpy_cost, (-1, 1), (-1, 1), paths={"bad": np.zeros((4, 3))})


def test_cost_surface_is_3d_plus_contour(line):
    x, y = line
    fig = viz.plot_cost_surface(x, y, path=gd.gradient_descent(x, y, lr=0.3, steps=10))
    assert len(fig.axes) == 2
    assert fig.axes[0].name == "3d" and fig.axes[1].name == "rectilinear"


def test_cost_curves_per_update_and_per_epoch(line):
    x, y = line
    p = gd.gradient_descent(x, y, lr=0.05, epochs=4, batch_size=10)
    fig = viz.plot_cost_curves({"mb": p}, per="epoch")
    xs = fig.axes[0].get_lines()[0].get_xdata()
    assert xs[-1] == pytest.approx(4.0) and len(xs) == len(p)
    fig = viz.plot_cost_curves({"mb": p}, per="update", minimum=0.1)
    assert np.allclose(fig.axes[0].get_lines()[0].get_ydata(), p.cost - 0.1)
    with pytest.raises(LabkitError):
        viz.plot_cost_curves({"mb": p}, per="second")
    with pytest.raises(LabkitError, match="gd.Path"):
        viz.plot_cost_curves({"raw": np.zeros((3, 2))})


def test_learning_rates_one_column_each(line):
    x, y = line
    fig = viz.plot_learning_rates(x, y, [0.02, 0.3, 0.6], steps=10, titles=["small", "right", "large"])
    assert len(fig.axes) == 6
    titles = [ax.get_title() for ax in fig.axes[:3]]
    assert titles[0].startswith("small: lr = 0.02") and titles[2].endswith("diverges")
    single = viz.plot_learning_rates(x, y, [0.1], steps=5)
    assert len(single.axes) == 2
    with pytest.raises(LabkitError):
        viz.plot_learning_rates(x, y, [])


# --- lesson 03 --------------------------------------------------------------------------------


def test_activations_plot_function_and_derivative():
    fig = viz.plot_activations(["relu", "tanh"])
    assert len(fig.axes) == 2
    relu_ax = fig.axes[0]
    f_line, df_line = lines_with_label(relu_ax, "f(z)")[0], lines_with_label(relu_ax, "f'(z)")[0]
    z = f_line.get_xdata()
    assert np.allclose(f_line.get_ydata(), np.maximum(z, 0))
    assert np.allclose(df_line.get_ydata(), (z > 0).astype(float))


def test_piecewise_fit_one_segment_per_piece():
    params = nn_numpy.init_params((1, 6, 1), seed=1)
    grid = np.linspace(-2, 2, 801)
    kinks = nn_numpy.kinks(params, grid)
    fig = viz.plot_piecewise_fit(grid, nn_numpy.predict(params, grid)[:, 0], kinks)
    ax = fig.axes[0]
    kink_line = [ln for ln in ax.get_lines() if ln.get_label().startswith("kinks")][0]
    assert kink_line.get_label() == f"kinks ({len(kinks)})"
    assert len(ax.get_lines()) == len(kinks) + 1 + 1  # pieces + the kink markers
    with pytest.raises(LabkitError):
        viz.plot_piecewise_fit(grid, grid[:-1], kinks)


def test_decision_boundary_colours_by_prediction():
    ds = moons(n=60, seed=0)
    calls = []

    def predict(points):
        calls.append(points.shape)
        return np.stack([points[:, 1] >= 0.25, points[:, 1] < 0.25], axis=1).astype(float)

    fig = viz.plot_decision_boundary(predict, ds.x, ds.y, resolution=50, class_names=ds.info.class_names)
    assert calls == [(2500, 2)]
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == list(ds.info.class_names)
    # class indices instead of probabilities work too
    viz.plot_decision_boundary(lambda p: (p[:, 0] > 0).astype(int), ds.x, ds.y, resolution=20)
    with pytest.raises(LabkitError, match="2 features"):
        viz.plot_decision_boundary(predict, np.zeros((5, 3)), np.zeros(5))


# --- lesson 04 --------------------------------------------------------------------------------


def test_many_fits_one_line_per_run():
    ds = noisy_sine(n=10, seed=0)
    grid = np.linspace(0, 6, 50)
    preds = np.random.default_rng(0).normal(size=(7, 50))
    fig = viz.plot_many_fits(grid, preds, ds.x, ds.y, truth=np.sin(grid), x_val=ds.x, y_val=ds.y, title="t")
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 7 + 1
    assert [t.get_text() for t in ax.get_legend().get_texts()][0] == "fits (7 runs)"
    with pytest.raises(LabkitError):
        viz.plot_many_fits(grid, preds[:, :10])


def test_history_from_dict_and_keras_like_object():
    hist = {"loss": [1.0, 0.5, 0.3], "val_loss": [1.1, 0.7, 0.8]}
    fig = viz.plot_history(hist, best_epoch=2, runs={"val_loss": np.array([[1.0, 0.6, 0.7], [1.2, 0.8, 0.9]])})
    ax = fig.axes[0]
    assert lines_with_label(ax, "validation loss")[0].get_xdata().tolist() == [1, 2, 3]
    assert len(lines_with_label(ax, "best epoch (2)")) == 1
    assert len(ax.get_lines()) == 2 + 2 + 1  # two runs, two curves, the best-epoch line

    class FakeHistory:
        history = {"loss": [1.0, 0.9]}

    viz.plot_history(FakeHistory(), keys=("loss",))
    with pytest.raises(LabkitError, match="validation_data"):
        viz.plot_history(FakeHistory())


def test_weight_histograms_shared_bins_and_mean_in_label():
    fig = viz.plot_weight_histograms({"a": np.array([-1.0, 1.0]), "b": [np.array([0.5]), np.array([[-0.5]])]}, bins=4)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["a (mean |w| = 1.00)", "b (mean |w| = 0.50)"]
    with pytest.raises(LabkitError):
        viz.plot_weight_histograms({})


def test_hyperparameter_effects_sorted_by_spread():
    results = pd.DataFrame({
        "hyperparameter": ["lr", "lr", "units", "units", "loss", "loss"],
        "value": ["0.01", "0.1", "4", "16", "mse", "mae"],
        "val_mse": [0.1, 0.2, 0.1, 0.5, 0.1, 0.11],
    })
    fig = viz.plot_hyperparameter_effects(results, baseline=0.1)
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert ticks == ["loss", "lr", "units"]  # bottom to top: least to most effect
    with pytest.raises(LabkitError, match="columns"):
        viz.plot_hyperparameter_effects(results.drop(columns="value"))


def test_grid_heat_map_labels_every_cell_and_frames_the_best():
    import pandas as pd

    table = pd.DataFrame([[0.30, 0.20, 0.25], [0.15, 0.12, 0.40]],
                         index=pd.Index([4, 16], name="units"), columns=pd.Index([0, 0.001, 0.01], name="L2 factor"))
    fig = viz.plot_grid(table)
    ax = fig.axes[0]
    assert sorted(t.get_text() for t in ax.texts) == sorted(f"{v:.3g}" for v in table.to_numpy().ravel())
    bold = [t.get_text() for t in ax.texts if t.get_fontweight() == "bold"]
    assert bold == ["0.12"]  # the lowest error
    frame = ax.patches[-1]
    assert frame.get_xy() == (0.5, 0.5)  # around row 1, column 1
    assert ax.get_xlabel() == "L2 factor" and ax.get_ylabel() == "units"
    assert [t.get_text() for t in viz.plot_grid(table, lower_is_better=False).axes[0].texts
            if t.get_fontweight() == "bold"] == ["0.4"]
    with pytest.raises(LabkitError, match="2-D table of numbers"):
        viz.plot_grid(pd.DataFrame([[0.1, float("nan")]]))


# --- widgets ----------------------------------------------------------------------------------


class FakeHandle:
    def __init__(self):
        self.shown = []

    def update(self, obj):
        self.shown.append(obj)


def test_explorer_renders_for_current_values_and_redraws_on_change():
    seen = []

    def draw(a, b):
        seen.append((a, b))
        fig, ax = plt.subplots()
        ax.set_title(f"{a} {b}")
        return fig

    explorer = widgets.Explorer(draw, {"a": W.IntSlider(value=1), "b": W.FloatSlider(value=0.5)})
    fig = explorer.render()
    assert isinstance(fig, Figure) and fig.axes[0].get_title() == "1 0.5"
    assert not plt.get_fignums()  # closed in pyplot: the inline backend will not show it twice
    handle = FakeHandle()
    explorer._handle = handle
    explorer.controls["a"].value = 3
    assert seen[-1] == (3, 0.5)
    assert handle.shown and handle.shown[-1].axes[0].get_title() == "3 0.5"
    assert repr(explorer) == "Explorer(a=3, b=0.5)"


def test_explorer_needs_controls_and_a_figure():
    with pytest.raises(LabkitError):
        widgets.Explorer(lambda: None, {})
    bad = widgets.Explorer(lambda a: "not a figure", {"a": W.IntSlider()})
    with pytest.raises(LabkitError, match="Figure"):
        bad.render()


def test_explorer_displays_controls_then_static_figure(monkeypatch):
    shown = []

    def fake_display(obj, display_id=None, raw=False):
        shown.append(obj)
        return FakeHandle() if display_id else None

    monkeypatch.setattr("IPython.display.display", fake_display)
    monkeypatch.delenv(widgets.STATIC_ENV, raising=False)
    explorer = widgets.Explorer(lambda a: plt.subplots()[0], {"a": W.IntSlider(value=2)})
    explorer._ipython_display_()
    # the controls as a widget view, with one line instead of the widgets' repr for a copy without a kernel
    assert shown[0]["application/vnd.jupyter.widget-view+json"]["model_id"] == explorer.box.model_id
    assert shown[0]["text/plain"] == widgets.NOT_RUNNING and "VBox" not in shown[0]["text/plain"]
    assert isinstance(explorer.box, W.VBox) and isinstance(shown[1], Figure)
    assert isinstance(explorer._handle, FakeHandle)

    shown.clear()
    monkeypatch.setenv(widgets.STATIC_ENV, "1")
    assert widgets.static_only()
    explorer._ipython_display_()
    assert len(shown) == 1 and isinstance(shown[0], Figure)  # figures only, no controls


@pytest.mark.parametrize("value, expected", [("1", True), ("yes", True), ("0", False), ("", False)])
def test_static_only_env(monkeypatch, value, expected):
    monkeypatch.setenv(widgets.STATIC_ENV, value)
    assert widgets.static_only() is expected


def test_learning_rate_explorer(line):
    x, y = line
    explorer = widgets.learning_rate_explorer(x, y, lr=0.1, steps=20, start=(-0.5, 3.5))
    assert explorer.values == {"lr": pytest.approx(0.1), "steps": 20}
    fig = explorer.render()
    assert fig.axes[0].get_title().startswith("lr = 0.1")
    explorer.controls["lr"].value = 0.5
    assert explorer.figure.axes[0].get_title().endswith("diverges")


def test_learning_rate_title_has_the_sliders_precision(line):
    # the log slider moves in steps of 0.05 in the exponent: 10**-0.4 = 0.398107..., shown "0.398" by the
    # slider; the figure's title must say the same, not 0.398107
    x, y = line
    explorer = widgets.learning_rate_explorer(x, y, lr=0.1, steps=5, start=(-0.5, 3.5))
    slider = explorer.controls["lr"]
    slider.value = 10 ** -0.4
    shown = format(slider.value, slider.readout_format)
    assert shown == "0.398"
    assert explorer.figure.axes[0].get_title().startswith(f"lr = {shown},")
    assert explorer.figure.axes[0].get_legend().get_texts()[0].get_text() == f"lr = {shown}"


def test_regularization_explorer_caches_fits():
    grid = np.linspace(0, 6, 20)
    ds = noisy_sine(n=8, seed=0)
    calls = []

    def fit(l2, dropout):
        calls.append((l2, dropout))
        return np.tile(np.sin(grid), (3, 1)), 0.01, 0.02 + l2

    explorer = widgets.regularization_explorer(fit, grid, ds.x, ds.y, truth=np.sin(grid), l2=0.0, dropout=0.0)
    fig = explorer.render()
    assert "training MSE 0.010, validation MSE 0.020" in fig.axes[0].get_title()
    explorer.controls["l2"].value = 1e-3
    explorer.controls["l2"].value = 0.0
    assert calls == [(0.0, 0.0), (1e-3, 0.0)]  # going back did not retrain
    assert explorer.controls["l2"].continuous_update is False


def test_figures_label_axes_in_words_and_show_negative_snr():
    import pandas as pd

    from labkit.course import compress_plots

    assert viz.axis_label("val_mse") == "validation MSE" and viz.axis_label("nonzero_params") == "non-zero parameters"
    assert viz.axis_label("some_new_column") == "some new column"
    costs = pd.DataFrame({"nonzero_params": [100, 50], "flash_bytes": [1000, 600]}, index=["dense", "pruned"])
    ax = compress_plots.plot_relative_costs(costs, ["nonzero_params", "flash_bytes"]).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["non-zero parameters", "flash"]
    report = pd.DataFrame({"layer": ["conv_1", "logits"], "op": ["CONV_2D", "FULLY_CONNECTED"],
                           "output SNR (dB)": [-12.5, 30.0]})
    ax = compress_plots.plot_layer_snr({"bad calibration": report}).axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert heights[0] == pytest.approx(-12.5) and ax.get_ylim()[0] < -12.5  # a negative SNR is drawn, not clipped at 0
    plt.close("all")
