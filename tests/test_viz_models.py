"""labkit.course.viz_models: every figure draws, returns a Figure, and refuses bad input clearly."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from labkit.course import conv  # noqa: E402
from labkit.course import sequences as sq  # noqa: E402
from labkit.course import viz_models as vm  # noqa: E402
from labkit.errors import LabkitError  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_plot_filters_from_a_list_and_a_conv_kernel(rng):
    fig = vm.plot_filters(list(conv.FILTERS.values()), titles=list(conv.FILTERS))
    assert isinstance(fig, Figure) and len([a for a in fig.axes if a.images]) == len(conv.FILTERS)
    fig = vm.plot_filters(rng.normal(size=(3, 3, 1, 16)), cols=8)
    assert len([a for a in fig.axes if a.images]) == 16
    with pytest.raises(LabkitError, match="2-D"):
        vm.plot_filters([np.zeros(3)])


def test_plot_feature_maps(rng):
    image = rng.random((10, 10))
    maps = rng.normal(size=(10, 10, 3))
    fig = vm.plot_feature_maps(image, maps, titles=["a", "b", "c"])
    assert len([a for a in fig.axes if a.images]) == 4
    fig = vm.plot_feature_maps(image, list(maps.transpose(2, 0, 1)), kernels=[np.eye(3)] * 3)
    assert len([a for a in fig.axes if a.images]) == 7


def test_plot_confusion_matrix_counts_per_true_class():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 0])
    fig = vm.plot_confusion_matrix(y_true, y_pred, ["a", "b", "c"])
    shown = fig.axes[0].images[0].get_array()
    np.testing.assert_allclose(shown, [[0.5, 0.5, 0], [0, 1, 0], [0.5, 0, 0.5]])
    with pytest.raises(LabkitError, match="same shape"):
        vm.plot_confusion_matrix(y_true, y_pred[:3], ["a", "b", "c"])


def test_plot_misclassified_shows_only_mistakes(rng):
    x = rng.random((6, 8, 8, 1))
    fig = vm.plot_misclassified(x, np.array([0, 1, 2, 0, 1, 2]), np.array([0, 2, 2, 1, 1, 2]), ["a", "b", "c"])
    titles = [a.get_title() for a in fig.axes if a.images]
    assert titles == ["b\n→ c", "a\n→ b"]
    with pytest.raises(LabkitError, match="no misclassified"):
        vm.plot_misclassified(x, np.zeros(6, int), np.zeros(6, int), ["a"])


def test_plot_gradient_norms_and_gates(rng):
    fig = vm.plot_gradient_norms({"a": np.logspace(0, -5, 20), "b": np.logspace(0, 3, 20)})
    assert fig.axes[0].get_yscale() == "log" and len(fig.axes[0].lines) == 2
    trace = sq.lstm_forward(rng.normal(size=(12, 3)), rng.normal(size=(3, 16)), rng.normal(size=(4, 16)), np.zeros(16))
    fig = vm.plot_gate_activity(trace, x=rng.normal(size=(12, 3)), feature_names=["x", "y", "z"], dt=0.1)
    assert isinstance(fig, Figure)
    assert sum(1 for a in fig.axes if a.images) == 4  # three gates and the cell state
    assert fig.axes[0].get_legend() is not None


def test_plot_tradeoff():
    table = pd.DataFrame({"resolution": [28, 28, 14, 14], "alpha": [0.5, 1.0, 0.5, 1.0],
                          "params": [10, 30, 10, 30], "MACs": [100, 300, 25, 75], "accuracy": [0.8, 0.85, 0.75, 0.8]})
    fig = vm.plot_tradeoff(table, group="resolution", label="alpha")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and len(ax.collections) == 2 and len(ax.texts) == 4
    with pytest.raises(LabkitError, match="no column"):
        vm.plot_tradeoff(table, y="top1")
