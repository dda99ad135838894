"""Figures for the lessons (matplotlib).

Every function draws into ``ax`` (or ``axes``) when given one, else makes its own figure, and
returns the ``Figure`` — so a notebook cell is one call and ``plt.show()``, and a widget can
redraw the same picture for a new slider value. Functions only draw: the numbers they show
come from :mod:`labkit.course.gd`, :mod:`labkit.course.nn_numpy` or the model the lesson trained.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from labkit.course import gd
from labkit.errors import LabkitError

__all__ = [
    "plot_ai_ml_dl",
    "plot_split",
    "plot_images",
    "plot_classes_2d",
    "plot_line_fit",
    "plot_contour",
    "plot_cost_contour",
    "plot_cost_surface",
    "plot_cost_curves",
    "plot_learning_rates",
    "plot_activations",
    "plot_piecewise_fit",
    "plot_decision_boundary",
    "plot_many_fits",
    "plot_history",
    "plot_weight_histograms",
    "plot_hyperparameter_effects",
]

#: One colour per path / class, colour-blind friendly (Okabe-Ito).
COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")

#: How a learning rate is printed in titles and legends: three significant digits, the precision the
#: learning-rate slider shows (its log scale lands on values such as 0.398107, read "0.398").
LR_FORMAT = ".3g"

# Column names of the kit's tables as a reader would say them, for axis labels (unknown names pass through).
AXIS_LABELS = {
    "val_mse": "validation MSE", "train_mse": "training MSE", "mse": "MSE", "val_loss": "validation loss",
    "loss": "training loss", "val_accuracy": "validation accuracy", "nonzero_params": "non-zero parameters",
    "params": "parameters", "macs": "MACs", "gzip_bytes": "gzip size", "flash_bytes": "flash", "ram_bytes": "RAM",
    "tflite_bytes": ".tflite size",
}


def axis_label(name: str) -> str:
    """A table column's name in words (``val_mse`` -> ``validation MSE``)."""
    return AXIS_LABELS.get(str(name), str(name).replace("_", " "))


def _axes(ax, figsize=(6, 4)):
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, constrained_layout=True)
        return fig, ax
    return ax.figure, ax


def _params(path) -> np.ndarray:
    """A gd.Path, or anything shaped (k, 2), as a (k, 2) float array."""
    arr = np.asarray(path.params if isinstance(path, gd.Path) else path, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise LabkitError(f"a path must have shape (steps, 2), got {arr.shape}")
    return arr


# --- lesson 01: the big picture ----------------------------------------------------------------


def plot_ai_ml_dl(ax=None) -> Figure:
    """AI ⊃ machine learning ⊃ deep learning, as nested ellipses with an example in each ring."""
    from matplotlib.patches import Ellipse

    fig, ax = _axes(ax, (7.5, 4.6))
    rings = [
        ("Artificial intelligence", "rules written by people:\nchess engines, expert systems, route planners", 9.6, 6.0, "#E8EEF7"),
        ("Machine learning", "rules learned from data:\nSVM, decision trees, k-means", 7.0, 4.2, "#C9DBF0"),
        ("Deep learning", "many-layered neural networks\nthat learn their own features:\nCNNs, LSTMs", 4.2, 2.3, "#8FB6E3"),
    ]
    for i, (name, text, w, h, color) in enumerate(rings):
        cy = -(6.0 - h) / 2 * 0.9
        ax.add_patch(Ellipse((0, cy), w, h, facecolor=color, edgecolor="#33507a", lw=1.2))
        top = cy + h / 2
        ax.text(0, top - 0.3, name, ha="center", va="top", fontsize=12, weight="bold")
        ax.text(0, top - (0.72 if i < 2 else 0.7), text, ha="center", va="top", fontsize=8.5)
    ax.set_xlim(-5, 5)
    ax.set_ylim(-3.2, 3.2)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig


def plot_split(sizes: Mapping[str, int], ax=None) -> Figure:
    """One bar cut into the parts of a data set, e.g. ``{"train": 60, "validation": 20, "test": 20}``."""
    fig, ax = _axes(ax, (8, 1.3))
    total = sum(sizes.values())
    if total <= 0:
        raise LabkitError(f"the parts must have a positive total size, got {dict(sizes)}")
    left = 0
    for i, (name, n) in enumerate(sizes.items()):
        ax.barh(0, n, left=left, color=COLORS[i % len(COLORS)], edgecolor="white")
        ax.text(left + n / 2, 0, f"{name}\n{n} ({100 * n / total:.0f}%)", ha="center", va="center",
                color="white", fontsize=9, weight="bold")
        left += n
    ax.set_xlim(0, total)
    ax.set_yticks([])
    ax.set_xlabel("samples")
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    return fig


def plot_images(
    images: np.ndarray, titles: Sequence[str] | None = None, ncols: int = 8, cmap: str = "gray_r", size: float = 1.1
) -> Figure:
    """Small images (e.g. 8x8 digits) in a grid, with an optional title under each."""
    images = np.asarray(images)
    if images.ndim != 3 or len(images) == 0:
        raise LabkitError(f"images must have shape (n, height, width) with n >= 1, got {images.shape}")
    n = len(images)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows * 1.15), squeeze=False,
                             constrained_layout=True)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i], cmap=cmap, interpolation="nearest")
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=8)
    return fig


def plot_classes_2d(
    x2: np.ndarray, labels: np.ndarray, names: Sequence[str] | None = None, ax=None, title: str = "",
    xlabel: str = "", ylabel: str = "", s: float = 12,
) -> Figure:
    """A 2-D scatter, one colour per label (classes, clusters), with a legend."""
    x2 = np.asarray(x2)
    labels = np.asarray(labels)
    if x2.ndim != 2 or x2.shape[1] != 2 or len(x2) != len(labels):
        raise LabkitError(f"need x2 of shape (n, 2) and n labels, got {x2.shape} and {labels.shape}")
    fig, ax = _axes(ax, (5, 4))
    cmap = plt.get_cmap("tab10")
    for k in np.unique(labels):
        sel = labels == k
        name = names[int(k)] if names is not None else str(k)
        ax.scatter(x2[sel, 0], x2[sel, 1], s=s, color=cmap(int(k) % 10), label=name, alpha=0.8, edgecolor="none")
    ax.legend(fontsize=8, markerscale=1.5, loc="best")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return fig


# --- lesson 02: the line, its cost and gradient descent ---------------------------------------


def plot_line_fit(
    x: np.ndarray, y: np.ndarray, lines: Mapping[str, tuple[float, float]] | None = None, ax=None
) -> Figure:
    """The data as points and each ``label: (slope, offset)`` as a line."""
    fig, ax = _axes(ax, (5.5, 4))
    x = np.asarray(x, dtype=np.float64).ravel()
    ax.scatter(x, y, s=14, color="0.35", label="data", zorder=3)
    xs = np.linspace(x.min(), x.max(), 2)
    for i, (label, (slope, offset)) in enumerate((lines or {}).items()):
        ax.plot(xs, slope * xs + offset, color=COLORS[i % len(COLORS)], lw=2, label=label)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend(fontsize=8)
    return fig


def plot_contour(
    cost: Callable[[np.ndarray, np.ndarray], np.ndarray],
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    paths: Mapping[str, Any] | None = None,
    points: Mapping[str, tuple[float, float]] | None = None,
    ax=None,
    levels: int | Sequence[float] = 30,
    resolution: int = 150,
    xlabel: str = "w1",
    ylabel: str = "w2",
    log: bool = False,
    title: str = "",
) -> Figure:
    """Contour lines of a two-parameter cost ``cost(W1, W2)`` (vectorized), with paths and marked points.

    ``paths``: label -> (k, 2) array or :class:`labkit.course.gd.Path`, drawn as a line with dots, start
    marked by a square. ``points``: label -> (w1, w2), drawn as stars. ``log=True`` spaces the
    levels logarithmically, which shows a narrow valley better.
    """
    fig, ax = _axes(ax, (5.5, 4.5))
    w1 = np.linspace(*xlim, resolution)
    w2 = np.linspace(*ylim, resolution)
    grid = np.asarray(cost(*np.meshgrid(w1, w2)), dtype=np.float64)
    if log:
        lo = max(grid.min(), 1e-12)
        shift = 0.0 if grid.min() > 0 else -grid.min() + 1e-3
        levels = np.geomspace(lo + shift, grid.max() + shift, levels if isinstance(levels, int) else len(levels)) - shift
    cs = ax.contour(w1, w2, grid, levels=levels, cmap="viridis", linewidths=0.8)
    ax.clabel(cs, cs.levels[::4], fontsize=7, fmt="%.2g")
    n_paths = len(paths or {})
    for i, (label, path) in enumerate((paths or {}).items()):
        p = _params(path)
        shown = np.all(np.isfinite(p), axis=1) & (np.abs(p) < 1e6).all(axis=1)
        p = p[shown]
        color = COLORS[i % len(COLORS)]
        z = 3 + n_paths - i  # the first path on top: a later, noisier one (SGD) must not hide a smooth one
        ax.plot(p[:, 0], p[:, 1], "-o", color=color, ms=2.5, lw=1.2, label=label, zorder=z)
        if len(p):
            ax.plot(*p[0], "s", color=color, ms=6, zorder=z)
    for label, (a, b) in (points or {}).items():
        ax.plot(a, b, "*", color="black", ms=13, markerfacecolor="gold", label=label, zorder=5)
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if paths or points:
        ax.legend(fontsize=8, loc="upper right")
    return fig


def plot_cost_contour(
    x: np.ndarray,
    y: np.ndarray,
    paths: Mapping[str, Any] | None = None,
    slope_range: tuple[float, float] = (-1.0, 5.0),
    offset_range: tuple[float, float] = (-2.0, 4.0),
    ax=None,
    show_minimum: bool = True,
    title: str = "",
) -> Figure:
    """Contour of the MSE cost of ``y ≈ slope·x + offset`` over (slope, offset), with paths and the minimum."""
    points = {"minimum (closed form)": gd.closed_form(x, y)} if show_minimum else None
    return plot_contour(
        lambda s, o: gd.cost_grid(x, y, s[0], o[:, 0]),
        slope_range, offset_range, paths=paths, points=points, ax=ax, xlabel="slope", ylabel="offset",
        log=True, levels=12, title=title,
    )


def plot_cost_surface(
    x: np.ndarray,
    y: np.ndarray,
    slope_range: tuple[float, float] = (-1.0, 5.0),
    offset_range: tuple[float, float] = (-2.0, 4.0),
    path: Any = None,
) -> Figure:
    """The cost over (slope, offset) twice: as a 3-D surface (left) and as a contour map (right)."""
    fig = plt.figure(figsize=(11, 4.6), constrained_layout=True)
    ax3 = fig.add_subplot(1, 2, 1, projection="3d")
    s = np.linspace(*slope_range, 40)
    o = np.linspace(*offset_range, 40)
    grid = gd.cost_grid(x, y, s, o)
    S, O = np.meshgrid(s, o)
    ax3.plot_surface(S, O, grid, cmap="viridis", linewidth=0, antialiased=False, alpha=0.6)
    best = gd.closed_form(x, y)
    ax3.scatter(*best, gd.mse(x, y, *best), color="red", s=30, depthshade=False)
    if path is not None:
        p = _params(path)
        ax3.plot(p[:, 0], p[:, 1], [gd.mse(x, y, *q) for q in p], "-o", color="red", ms=2.5, lw=1.5, zorder=10)
    ax3.set_xlabel("slope")
    ax3.set_ylabel("offset")
    ax3.set_zlabel("cost (MSE)")
    ax3.view_init(elev=32, azim=-125)
    ax3.set_title("cost surface")
    ax2 = fig.add_subplot(1, 2, 2)
    plot_cost_contour(x, y, {"gradient descent": path} if path is not None else None,
                      slope_range, offset_range, ax=ax2, title="the same, seen from above: contour lines")
    return fig


def plot_cost_curves(
    paths: Mapping[str, Any], ax=None, per: str = "update", minimum: float | None = None, log: bool = True
) -> Figure:
    """Cost against the number of updates (``per="update"``) or epochs (``per="epoch"``), one line per path.

    With ``minimum`` the curves show the *excess* cost, ``cost - minimum``, which on a log
    scale turns steady convergence into a straight line.
    """
    if per not in ("update", "epoch"):
        raise LabkitError(f"per must be 'update' or 'epoch', got {per!r}")
    fig, ax = _axes(ax, (5.5, 3.8))
    for i, (label, path) in enumerate(paths.items()):
        if not isinstance(path, gd.Path):
            raise LabkitError(f"plot_cost_curves needs gd.Path objects, got {type(path).__name__} for {label!r}")
        cost = path.cost - (minimum or 0.0)
        t = np.arange(len(path)) if per == "update" else path.epochs
        ax.plot(t, np.where(np.isfinite(cost), cost, np.nan), color=COLORS[i % len(COLORS)], lw=1.5, label=label)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("update" if per == "update" else "epoch (passes over the data)")
    ax.set_ylabel("cost − minimum" if minimum is not None else "cost (MSE)")
    ax.legend(fontsize=8)
    return fig


def plot_learning_rates(
    x: np.ndarray,
    y: np.ndarray,
    lrs: Sequence[float],
    steps: int = 30,
    start: tuple[float, float] = (0.0, 0.0),
    slope_range: tuple[float, float] = (-1.0, 5.0),
    offset_range: tuple[float, float] = (-2.0, 4.0),
    titles: Sequence[str] | None = None,
) -> Figure:
    """One column per learning rate: the path on the contour (top) and the cost per update (bottom).

    With a single learning rate the two panels sit side by side instead.
    """
    if len(lrs) == 0:
        raise LabkitError("give at least one learning rate")
    if len(lrs) == 1:
        fig, row = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
        axes = np.array(row).reshape(2, 1)
    else:
        fig, axes = plt.subplots(2, len(lrs), figsize=(4.2 * len(lrs), 7), squeeze=False, constrained_layout=True,
                                 gridspec_kw={"height_ratios": [3, 2]})
    best = gd.mse(x, y, *gd.closed_form(x, y))
    for j, lr in enumerate(lrs):
        path = gd.gradient_descent(x, y, lr=lr, steps=steps, start=start)
        title = titles[j] if titles is not None else ""
        status = "diverges" if path.diverged else f"cost {path.final_cost:.3f}"
        plot_cost_contour(x, y, {f"lr = {lr:{LR_FORMAT}}": path}, slope_range, offset_range, ax=axes[0, j],
                          title=f"{title + ': ' if title else ''}lr = {lr:{LR_FORMAT}}, {status}")
        axes[0, j].legend().set_visible(False)
        plot_cost_curves({f"lr = {lr:{LR_FORMAT}}": path}, ax=axes[1, j], minimum=best)
        axes[1, j].legend().set_visible(False)
        axes[1, j].set_ylim(1e-6, 1e3)
        axes[1, j].set_title(f"cost - minimum after {steps} updates: {path.final_cost - best:.2g}")
    return fig


# --- lesson 03: neurons and networks -----------------------------------------------------------


def plot_activations(names: Sequence[str] = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "swish"),
                     z: np.ndarray | None = None) -> Figure:
    """Each activation function (solid) with its derivative (dashed), one small panel each."""
    from labkit.course import nn_numpy

    z = np.linspace(-4, 4, 401) if z is None else np.asarray(z, dtype=np.float64)
    ncols = min(3, len(names))
    nrows = -(-len(names) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.8 * nrows), squeeze=False,
                             sharex=True, constrained_layout=True)
    for ax, name in zip(axes.flat, names):
        f, df = nn_numpy.get_activation(name)
        ax.axhline(0, color="0.8", lw=0.8)
        ax.axvline(0, color="0.8", lw=0.8)
        ax.plot(z, f(z), color=COLORS[0], lw=2, label="f(z)")
        ax.plot(z, df(z), color=COLORS[1], lw=1.5, ls="--", label="f'(z)")
        ax.set_title(name)
        ax.set_ylim(-1.5, 4.1)
        ax.legend(fontsize=8, loc="upper left")
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("z")
    return fig


def plot_piecewise_fit(
    x_grid: np.ndarray,
    y_grid: np.ndarray,
    kinks: np.ndarray,
    x: np.ndarray | None = None,
    y: np.ndarray | None = None,
    truth: np.ndarray | None = None,
    ax=None,
) -> Figure:
    """A 1-D ReLU network's output, each linear piece in alternating colours, kinks marked.

    ``kinks`` from :func:`labkit.course.nn_numpy.kinks`; ``truth``: the true function on ``x_grid``.
    """
    fig, ax = _axes(ax, (8, 4))
    x_grid = np.asarray(x_grid, dtype=np.float64).ravel()
    y_grid = np.asarray(y_grid, dtype=np.float64).ravel()
    if x_grid.shape != y_grid.shape:
        raise LabkitError(f"x_grid and y_grid must have the same length, got {x_grid.shape} and {y_grid.shape}")
    if x is not None:
        ax.scatter(np.ravel(x), y, s=8, color="0.6", label="training data", zorder=1)
    if truth is not None:
        ax.plot(x_grid, truth, color="0.2", lw=1, ls=":", label="true function")
    edges = np.concatenate([[x_grid[0]], np.sort(np.asarray(kinks, dtype=np.float64)), [x_grid[-1]]])
    for i in range(len(edges) - 1):
        sel = (x_grid >= edges[i]) & (x_grid <= edges[i + 1])
        ax.plot(x_grid[sel], y_grid[sel], color=COLORS[i % 2], lw=2.2,
                label="network: one linear piece per colour" if i == 0 else None)
    k = np.asarray(kinks, dtype=np.float64)
    ax.plot(k, np.interp(k, x_grid, y_grid), "o", color="black", ms=4, label=f"kinks ({len(k)})", zorder=4)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend(fontsize=8, loc="best")
    return fig


def plot_decision_boundary(
    predict: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    ax=None,
    class_names: Sequence[str] | None = None,
    resolution: int = 200,
    margin: float = 0.5,
    title: str = "",
) -> Figure:
    """Colour the plane by the class ``predict`` gives each point; draw the boundary and the data.

    ``predict(points)`` takes an ``(m, 2)`` array and returns class probabilities ``(m, classes)``
    (or class indices ``(m,)``).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 2:
        raise LabkitError(f"decision boundaries are drawn for 2 features, got x of shape {x.shape}")
    fig, ax = _axes(ax, (5, 4.3))
    lo, hi = x.min(axis=0) - margin, x.max(axis=0) + margin
    g1, g2 = np.meshgrid(np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution))
    out = np.asarray(predict(np.c_[g1.ravel(), g2.ravel()].astype(np.float32)))
    cls = out.argmax(axis=1) if out.ndim == 2 else out.astype(int)
    n_classes = int(max(cls.max(), np.max(y))) + 1
    from matplotlib.colors import ListedColormap

    light = ListedColormap([plt.get_cmap("tab10")(k) for k in range(n_classes)])
    ax.contourf(g1, g2, cls.reshape(g1.shape), levels=np.arange(n_classes + 1) - 0.5, cmap=light, alpha=0.25)
    ax.contour(g1, g2, cls.reshape(g1.shape), levels=np.arange(n_classes) + 0.5, colors="black", linewidths=1)
    for k in range(n_classes):
        sel = np.asarray(y) == k
        ax.scatter(x[sel, 0], x[sel, 1], s=12, color=plt.get_cmap("tab10")(k), edgecolor="white", linewidth=0.3,
                   label=class_names[k] if class_names is not None else f"class {k}")
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.legend(fontsize=8, loc="upper right")
    if title:
        ax.set_title(title)
    return fig


# --- lesson 04: over- and underfitting ----------------------------------------------------------


def plot_many_fits(
    x_grid: np.ndarray,
    preds: np.ndarray,
    x: np.ndarray | None = None,
    y: np.ndarray | None = None,
    truth: np.ndarray | None = None,
    ax=None,
    title: str = "",
    ylim: tuple[float, float] | None = (-2.0, 2.0),
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
) -> Figure:
    """All runs' predictions as thin lines (``preds``: ``(runs, grid)``), over the data and the truth."""
    preds = np.atleast_2d(np.asarray(preds, dtype=np.float64))
    x_grid = np.asarray(x_grid, dtype=np.float64).ravel()
    if preds.shape[1] != len(x_grid):
        raise LabkitError(f"preds must have shape (runs, {len(x_grid)}), got {preds.shape}")
    fig, ax = _axes(ax, (6, 4))
    for i, p in enumerate(preds):
        ax.plot(x_grid, p, color=COLORS[0], lw=0.9, alpha=0.45, label=f"fits ({len(preds)} runs)" if i == 0 else None)
    if truth is not None:
        ax.plot(x_grid, truth, color="black", lw=1.5, ls="--", label="true function")
    if x_val is not None:
        ax.scatter(np.ravel(x_val), y_val, s=16, facecolor="none", edgecolor=COLORS[1], label="validation data", zorder=3)
    if x is not None:
        ax.scatter(np.ravel(x), y, s=22, color=COLORS[1], label="training data", zorder=4)
    if ylim is not None:
        ax.set_ylim(ylim)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend(fontsize=8, loc="lower left")
    if title:
        ax.set_title(title)
    return fig


def plot_history(
    history: Any, ax=None, keys: Sequence[str] = ("loss", "val_loss"), best_epoch: int | None = None,
    log: bool = True, title: str = "", labels: Mapping[str, str] | None = None,
    runs: Mapping[str, np.ndarray] | None = None,
) -> Figure:
    """Training curves from a Keras ``History`` (or a dict of lists): loss per epoch.

    ``best_epoch`` (1-based) draws a vertical line, e.g. where early stopping restored the weights.
    ``runs``: key -> array ``(runs, epochs)`` of individual runs, drawn faintly behind the curve of
    that key (which is then usually their mean).
    """
    hist = history.history if hasattr(history, "history") else history
    missing = [k for k in keys if k not in hist]
    if missing:
        raise LabkitError(f"the history has no {missing}: it holds {sorted(hist)} (pass validation_data to fit)")
    fig, ax = _axes(ax, (6, 3.8))
    names = {"loss": "training loss", "val_loss": "validation loss", **(labels or {})}
    for i, k in enumerate(keys):
        color = COLORS[i % len(COLORS)]
        for r in np.atleast_2d(np.asarray((runs or {}).get(k, np.empty((0, 0))), dtype=np.float64)):
            if r.size:
                ax.plot(np.arange(1, len(r) + 1), r, color=color, lw=0.6, alpha=0.2)
        v = np.asarray(hist[k], dtype=np.float64)
        ax.plot(np.arange(1, len(v) + 1), v, color=color, lw=1.8, label=names.get(k, k))
    if best_epoch is not None:
        ax.axvline(best_epoch, color="0.3", ls="--", lw=1, label=f"best epoch ({best_epoch})")
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig


def plot_weight_histograms(weights: Mapping[str, np.ndarray], ax=None, bins: int = 40,
                           range_: tuple[float, float] | None = None) -> Figure:
    """Histograms of weight values, one per label, on shared bins (e.g. without and with L2)."""
    if not weights:
        raise LabkitError("give at least one set of weights")
    fig, ax = _axes(ax, (6, 3.6))
    flat = {k: np.concatenate([np.ravel(w) for w in v]) if isinstance(v, (list, tuple)) else np.ravel(v)
            for k, v in weights.items()}
    if range_ is None:
        top = max(float(np.max(np.abs(v))) for v in flat.values()) or 1.0
        range_ = (-top, top)
    edges = np.linspace(*range_, bins + 1)
    for i, (label, v) in enumerate(flat.items()):
        ax.hist(v, bins=edges, color=COLORS[i % len(COLORS)], alpha=0.55,
                label=f"{label} (mean |w| = {np.mean(np.abs(v)):.2f})")
    ax.set_xlabel("weight value")
    ax.set_ylabel("number of weights")
    ax.legend(fontsize=8)
    return fig


def plot_hyperparameter_effects(results, metric: str = "val_mse", ax=None, baseline: float | None = None) -> Figure:
    """For a one-at-a-time sweep: one row per hyperparameter, a dot per value tried, on the metric's axis.

    ``results``: a pandas DataFrame with columns ``hyperparameter``, ``value`` and ``metric``.
    Rows are sorted by how much the metric moved, the one that matters most on top.
    """
    need = {"hyperparameter", "value", metric}
    if not need <= set(results.columns):
        raise LabkitError(f"results need columns {sorted(need)}, got {list(results.columns)}")
    spread = results.groupby("hyperparameter")[metric].agg(lambda v: v.max() - v.min()).sort_values()
    fig, ax = _axes(ax, (7, 0.6 * len(spread) + 1.2))
    for row, name in enumerate(spread.index):
        sub = results[results["hyperparameter"] == name]
        ax.plot([sub[metric].min(), sub[metric].max()], [row, row], color="0.75", lw=3, zorder=1)
        ax.scatter(sub[metric], [row] * len(sub), color=COLORS[0], zorder=2, s=25)
        for k, (v, m) in enumerate(sorted(zip(sub[metric], sub["value"]))):
            # alternate above / below so that neighbouring labels do not overlap
            ax.annotate(str(m), (v, row), textcoords="offset points", xytext=(0, 6 if k % 2 == 0 else -12),
                        ha="center", fontsize=7)
    if baseline is not None:
        ax.axvline(baseline, color=COLORS[1], ls="--", lw=1, label="baseline")
        ax.legend(fontsize=8, loc="lower right")
    ax.set_yticks(range(len(spread)))
    ax.set_yticklabels(spread.index)
    ax.set_ylim(-0.6, len(spread) - 0.3)
    ax.set_xscale("log")
    ax.set_xlabel(f"{axis_label(metric)} (log scale)")
    return fig


def plot_grid(table, metric: str = "val_mse", ax=None, lower_is_better: bool = True) -> Figure:
    """A small grid search as a heat map: ``table`` is a pandas DataFrame whose index and columns
    are the values of two hyperparameters (their names as ``index.name`` / ``columns.name``) and
    whose cells hold ``metric``. Each cell is labelled; the best one is framed."""
    values = np.asarray(table, dtype=float)
    if values.ndim != 2 or values.size == 0 or not np.isfinite(values).all():
        raise LabkitError(f"the grid must be a non-empty 2-D table of numbers, got shape {values.shape}")
    fig, ax = _axes(ax, (1.3 * values.shape[1] + 2.2, 0.9 * values.shape[0] + 1.4))
    image = ax.imshow(values, cmap="viridis_r" if lower_is_better else "viridis", aspect="auto")
    fig.colorbar(image, ax=ax, label=axis_label(metric))
    best = np.unravel_index(np.argmin(values) if lower_is_better else np.argmax(values), values.shape)
    middle = (values.min() + values.max()) / 2
    for (r, c), v in np.ndenumerate(values):
        dark = (v > middle) if lower_is_better else (v < middle)  # dark cells get white text
        ax.text(c, r, f"{v:.3g}", ha="center", va="center", fontsize=9, color="white" if dark else "black",
                fontweight="bold" if (r, c) == best else "normal")
    ax.add_patch(plt.Rectangle((best[1] - 0.5, best[0] - 0.5), 1, 1, fill=False, ec=COLORS[1], lw=2.5))
    ax.set_xticks(range(values.shape[1]))
    ax.set_xticklabels([str(v) for v in table.columns])
    ax.set_yticks(range(values.shape[0]))
    ax.set_yticklabels([str(v) for v in table.index])
    ax.set_xlabel(table.columns.name or "")
    ax.set_ylabel(table.index.name or "")
    ax.set_title(f"{axis_label(metric)}: best framed")
    return fig
