"""Figures for the model lessons (05 CNNs, 06 RNNs and LSTMs).

Same conventions as :mod:`labkit.course.viz`: every function draws into the axes it is given (or makes
its own figure) and returns the ``Figure``; functions only draw, the numbers come from the
lesson's models and from :mod:`labkit.course.conv` / :mod:`labkit.course.sequences`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from labkit.errors import LabkitError

__all__ = [
    "plot_filters",
    "plot_feature_maps",
    "plot_confusion_matrix",
    "plot_misclassified",
    "plot_gradient_norms",
    "plot_gate_activity",
    "plot_tradeoff",
]

#: One colour per series, colour-blind friendly (Okabe-Ito), as in labkit.course.viz.
COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")


def _grid(n: int, cols: int, size: float, extra_rows: int = 0):
    cols = max(1, min(cols, n))
    rows = int(np.ceil(n / cols)) + extra_rows
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False, constrained_layout=True)
    return fig, axes


def plot_filters(kernels, titles: Sequence[str] | None = None, cols: int = 8, size: float = 1.3) -> Figure:
    """Kernels as small images, red positive and blue negative, each on its own symmetric scale.

    ``kernels``: a list of 2-D arrays, or a Conv2D kernel (k, k, c_in, c_out) — then one image
    per output channel, summed over the input channels (for a grey image c_in is 1 anyway).
    """
    if isinstance(kernels, np.ndarray) and kernels.ndim == 4:
        kernels = [kernels[:, :, :, j].sum(axis=2) for j in range(kernels.shape[3])]
    kernels = [np.asarray(k, np.float64) for k in kernels]
    if not kernels or any(k.ndim != 2 for k in kernels):
        raise LabkitError("plot_filters needs 2-D kernels, or a Conv2D kernel shaped (k, k, c_in, c_out)")
    fig, axes = _grid(len(kernels), cols, size)
    for ax in axes.flat:
        ax.axis("off")
    for n, (ax, k) in enumerate(zip(axes.flat, kernels)):
        lim = float(np.abs(k).max()) or 1.0
        ax.imshow(k, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(titles[n] if titles is not None else f"filter {n}", fontsize=8)
    return fig


def plot_feature_maps(image, maps, titles: Sequence[str] | None = None, kernels=None, size: float = 2.2) -> Figure:
    """The input image, then each feature map (the output of one filter) beside it.

    ``maps``: a list of 2-D arrays or an array (H, W, channels). With ``kernels`` (one 2-D kernel
    per map), a first row shows each kernel above its map.
    """
    if isinstance(maps, np.ndarray) and maps.ndim == 3:
        maps = [maps[:, :, j] for j in range(maps.shape[2])]
    maps = list(maps)
    n = len(maps) + 1
    rows = 2 if kernels is not None else 1
    fig, axes = plt.subplots(rows, n, figsize=(size * n, size * rows), squeeze=False, constrained_layout=True)
    for ax in axes.flat:
        ax.axis("off")
    axes[-1, 0].imshow(np.asarray(image).squeeze(), cmap="gray_r")
    axes[-1, 0].set_title("input", fontsize=9)
    for j, m in enumerate(maps):
        lim = float(np.abs(m).max()) or 1.0
        axes[-1, j + 1].imshow(m, cmap="RdBu_r", vmin=-lim, vmax=lim)
        axes[-1, j + 1].set_title(titles[j] if titles is not None else f"map {j}", fontsize=9)
        if kernels is not None:
            k = np.asarray(kernels[j], np.float64)
            klim = float(np.abs(k).max()) or 1.0
            axes[0, j + 1].imshow(k, cmap="RdBu_r", vmin=-klim, vmax=klim)
            axes[0, j + 1].set_title("kernel", fontsize=9)
    return fig


def plot_confusion_matrix(y_true, y_pred, class_names: Sequence[str], ax=None, normalize: bool = True) -> Figure:
    """Rows: the true class; columns: the predicted one; each row as fractions of that class."""
    k = len(class_names)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise LabkitError(f"y_true and y_pred must have the same shape, got {y_true.shape} and {y_pred.shape}")
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    shown = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    if ax is None:
        fig, ax = plt.subplots(figsize=(0.55 * k + 2.5, 0.55 * k + 2), constrained_layout=True)
    else:
        fig = ax.figure
    ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    for i in range(k):
        for j in range(k):
            v = shown[i, j]
            if (normalize and v >= 0.005) or (not normalize and v):
                text = f"{v:.2f}".lstrip("0") if normalize else str(v)
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="white" if (v > 0.5 if normalize else v > shown.max() / 2) else "black")
    ax.set_xticks(range(k), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    return fig


def plot_misclassified(x, y_true, y_pred, class_names: Sequence[str], n: int = 12, cols: int = 6,
                       size: float = 1.6) -> Figure:
    """The first ``n`` images the model got wrong, titled 'true → predicted'."""
    x, y_true, y_pred = np.asarray(x), np.asarray(y_true), np.asarray(y_pred)
    wrong = np.flatnonzero(y_true != y_pred)[:n]
    if not len(wrong):
        raise LabkitError("no misclassified examples to show: every prediction is right")
    fig, axes = _grid(len(wrong), cols, size)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong):
        ax.imshow(x[i].squeeze(), cmap="gray_r")
        ax.set_title(f"{class_names[y_true[i]]}\n→ {class_names[y_pred[i]]}", fontsize=8)
    return fig


def plot_gradient_norms(norms: Mapping[str, np.ndarray], ax=None) -> Figure:
    """``||d h_T / d h_{T-k}||`` against k, on a log scale, one curve per setting."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 3.8), constrained_layout=True)
    else:
        fig = ax.figure
    for (label, v), color in zip(norms.items(), COLORS):
        ax.semilogy(np.arange(len(v)), np.maximum(v, 1e-30), color=color, label=label)
    ax.set_xlabel("steps back in time, k")
    ax.set_ylabel(r"$\|\partial h_T / \partial h_{T-k}\|$")
    ax.legend(fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    return fig


def plot_gate_activity(trace: Mapping[str, np.ndarray], x=None, feature_names: Sequence[str] | None = None,
                       gates: Sequence[str] = ("input", "forget", "output"), dt: float = 1.0,
                       size: tuple[float, float] = (10.0, 1.9)) -> Figure:
    """Each gate's activity over time for one sequence: a heat map (units x time), 0 to 1.

    ``trace``: :func:`labkit.course.sequences.lstm_forward` on one sequence (arrays (T, units)). With
    ``x`` (T, features) the input is drawn on top, and the cell state ``c`` at the bottom.
    ``dt``: seconds per step, for the time axis.
    """
    T = len(trace["h"])
    t = np.arange(T) * dt
    panels = (["input signal"] if x is not None else []) + list(gates) + ["cell state c"]
    fig, axes = plt.subplots(len(panels), 1, figsize=(size[0], size[1] * len(panels)), sharex=True,
                             constrained_layout=True)
    extent = (-dt / 2, (T - 0.5) * dt, trace["h"].shape[1] - 0.5, -0.5)
    for ax, panel in zip(axes, panels):
        if panel == "input signal":
            xs = np.asarray(x)
            for j in range(xs.shape[1]):
                label = feature_names[j] if feature_names is not None else f"x{j}"
                ax.plot(t, xs[:, j], color=COLORS[j % len(COLORS)], lw=1, label=label)
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
            ax.set_ylabel("input")
        elif panel == "cell state c":
            c = trace["c"]
            lim = float(np.abs(c).max()) or 1.0
            im = ax.imshow(c.T, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, extent=extent,
                           interpolation="nearest")
            fig.colorbar(im, ax=ax, pad=0.01, fraction=0.03)
            ax.set_ylabel("cell c\n(unit)")
        else:
            im = ax.imshow(trace[panel].T, aspect="auto", cmap="viridis", vmin=0, vmax=1, extent=extent,
                           interpolation="nearest")
            fig.colorbar(im, ax=ax, pad=0.01, fraction=0.03)
            ax.set_ylabel(f"{panel} gate\n(unit)")
    axes[-1].set_xlabel("time (s)" if dt != 1.0 else "time step")
    return fig


def plot_tradeoff(table, x: str = "MACs", y: str = "accuracy", size: str = "params", group: str | None = None,
                  label: str | None = None, ax=None, logx: bool = True) -> Figure:
    """One marker per model: ``x`` (cost) against ``y`` (accuracy), marker area ∝ ``size``.

    ``table``: a pandas DataFrame. ``group`` names a column whose values get one colour each and
    are joined by a line (e.g. the input resolution); ``label`` a column written next to each
    marker (e.g. alpha).
    """
    for col in (x, y, size) + ((group,) if group else ()) + ((label,) if label else ()):
        if col not in table.columns:
            raise LabkitError(f"plot_tradeoff: the table has no column {col!r} (columns: {list(table.columns)})")
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4.2), constrained_layout=True)
    else:
        fig = ax.figure
    s = np.asarray(table[size], np.float64)
    area = 30 + 270 * (s - s.min()) / (np.ptp(s) or 1.0)
    groups = [(None, table)] if group is None else list(table.groupby(group, sort=False))
    for n, (key, part) in enumerate(groups):
        color = COLORS[n % len(COLORS)]
        order = np.argsort(np.asarray(part[x]))
        ax.plot(np.asarray(part[x])[order], np.asarray(part[y])[order], color=color, lw=1, alpha=0.6)
        ax.scatter(part[x], part[y], s=area[table.index.get_indexer(part.index)], color=color, alpha=0.8,
                   label=None if key is None else f"{group} = {key}", edgecolor="white")
        if label:
            for _, row in part.iterrows():
                ax.annotate(f"{label}={row[label]:g}", (row[x], row[y]), textcoords="offset points",
                            xytext=(6, -3), fontsize=7)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(x + (" (log scale)" if logx else ""))
    ax.set_ylabel(y)
    if group is not None:
        ax.legend(fontsize=8, title=f"marker area ∝ {size}", title_fontsize=8)
    ax.grid(True, alpha=0.3)
    return fig
