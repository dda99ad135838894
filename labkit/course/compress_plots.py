"""Figures for the compression lessons (07 pruning, 08 quantization), and the live pruning slider.

Like :mod:`labkit.course.viz`: each function draws into ``ax`` when given one, else makes its own
figure, and returns the ``Figure``; the numbers come from :mod:`labkit.compress`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from labkit.course.viz import axis_label
from labkit.errors import LabkitError

__all__ = [
    "plot_pruning_curves",
    "plot_pruned_histogram",
    "plot_surviving_inputs",
    "plot_relative_costs",
    "plot_quantization_grid",
    "plot_layer_snr",
    "pruning_explorer",
]

COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P")


def _axes(ax, figsize=(6, 4)):
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, constrained_layout=True)
        return fig, ax
    return ax.figure, ax


def plot_pruning_curves(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], ax=None,
                        title: str = "accuracy loss against parameters pruned away",
                        marker: tuple[float, float] | None = None,
                        ylim: tuple[float, float] | None = None) -> Figure:
    """Han et al.'s figure: one line per method, accuracy change (points) against the fraction pruned.

    ``curves``: ``{label: (sparsities in [0, 1), accuracy change in points)}``. ``marker``:
    an extra point (sparsity, change) to highlight, e.g. the slider's setting. ``ylim``: the
    vertical range (default: everything; ``(-5, 2)`` zooms in like the paper's figure).
    """
    if not curves:
        raise LabkitError("give at least one curve: {label: (sparsities, accuracy change)}")
    fig, ax = _axes(ax, (7, 4.2))
    low = 0.0
    for i, (label, (s, loss)) in enumerate(curves.items()):
        s, loss = np.asarray(s, float), np.asarray(loss, float)
        ax.plot(100 * s, loss, marker=MARKERS[i % len(MARKERS)], color=COLORS[i % len(COLORS)], label=label)
        low = min(low, float(np.min(loss)))
    if marker is not None:
        ax.plot(100 * marker[0], marker[1], "*", color="black", ms=14, zorder=5, label="slider")
        low = min(low, marker[1])
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set_xlabel("parameters pruned away (%)")
    ax.set_ylabel("accuracy change (points)")
    ax.set_xlim(-2, 100)
    ax.set_ylim(*(ylim or (min(-5.0, low * 1.08), 3.0)))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=9)
    ax.set_title(title)
    return fig


def plot_pruned_histogram(weights: np.ndarray, sparsity: float, ax=None, bins: int = 81) -> Figure:
    """Histogram of a weight tensor, with the band that magnitude pruning at ``sparsity`` removes shaded."""
    w = np.ravel(np.asarray(weights, float))
    fig, ax = _axes(ax, (6, 3.6))
    threshold = float(np.quantile(np.abs(w), sparsity)) if sparsity > 0 else 0.0
    top = float(np.max(np.abs(w))) or 1.0
    ax.hist(w, bins=np.linspace(-top, top, bins), color=COLORS[0], alpha=0.8)
    if threshold > 0:
        ax.axvspan(-threshold, threshold, color=COLORS[1], alpha=0.2,
                   label=f"|w| < {threshold:.3f}: pruned ({sparsity:.0%})")
        ax.legend(fontsize=8, loc="upper right")
    ax.set_xlabel("weight value")
    ax.set_ylabel("number of weights")
    return fig


def plot_surviving_inputs(kernel: np.ndarray, image_shape: Sequence[int], ax=None, title: str | None = None,
                          vmax: int | None = None) -> Figure:
    """For a first dense layer on images: how many connections of each input pixel survive pruning.

    ``vmax``: the count at the top of the colour scale (default: the largest count).
    """
    k = np.asarray(kernel)
    if k.ndim != 2 or k.shape[0] != int(np.prod(image_shape)):
        raise LabkitError(f"expected a dense kernel of shape ({int(np.prod(image_shape))}, units), got {k.shape}")
    counts = (k != 0).sum(axis=1).reshape(image_shape)
    fig, ax = _axes(ax, (3.6, 3.4))
    im = ax.imshow(counts, cmap="viridis", vmin=0, vmax=vmax if vmax is not None else max(1, int(counts.max())))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or f"connections left per pixel (of {k.shape[1]})", fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=f"connections left (of {k.shape[1]})")
    return fig


def plot_relative_costs(table: pd.DataFrame, metrics: Sequence[str], baseline: str | None = None,
                        ax=None, title: str = "cost relative to the dense model") -> Figure:
    """Grouped bars: each metric of each row (model) as a percentage of the ``baseline`` row's value."""
    base = table.index[0] if baseline is None else baseline
    missing = [m for m in metrics if m not in table.columns]
    if missing:
        raise LabkitError(f"no column {missing} in the table; it has {list(table.columns)}")
    fig, ax = _axes(ax, (8, 3.8))
    width = 0.8 / len(table)
    pos = np.arange(len(metrics))
    for i, (name, row) in enumerate(table.iterrows()):
        vals = [100.0 * float(row[m]) / float(table.loc[base, m]) if table.loc[base, m] else np.nan for m in metrics]
        bars = ax.bar(pos + (i - (len(table) - 1) / 2) * width, vals, width, label=str(name), color=COLORS[i % len(COLORS)])
        for b, v in zip(bars, vals):
            ax.annotate(f"{v:.0f}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(pos)
    ax.set_xticklabels([axis_label(m) for m in metrics], rotation=15)
    ax.set_ylabel(f"% of {base}")
    ax.axhline(100, color="0.6", lw=0.8)
    ax.set_ylim(0, 125)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title(title)
    return fig


def plot_quantization_grid(values: np.ndarray, scale: float, zero_point: int, ax=None,
                           title: str | None = None, zoom_steps: float | None = None) -> Figure:
    """Float values against their int8 codes: the staircase of the affine mapping, and its range.

    ``zoom_steps``: show only ± that many steps around 0.0, where the staircase is visible.
    """
    from labkit.compress.quantize import dequantize, quantize

    v = np.sort(np.ravel(np.asarray(values, np.float32)))
    q = quantize(v, scale, zero_point)
    lo, hi = dequantize(np.array([-128, 127]), scale, zero_point)
    grid = np.linspace(min(float(v[0]), float(lo)) - 2 * scale, max(float(v[-1]), float(hi)) + 2 * scale, 2000)
    fig, ax = _axes(ax, (6.5, 3.8))
    ax.plot(grid, quantize(grid, scale, zero_point), color="0.6", lw=1, label="int8 code of any float")
    ax.plot(v, q, "o", color=COLORS[1], ms=4, label="the tensor's values")
    ax.axvspan(float(lo), float(hi), color=COLORS[0], alpha=0.08, label="representable range")
    ax.axhline(zero_point, color=COLORS[2], lw=0.8, ls="--", label=f"zero point = {zero_point} (float 0.0)")
    if zoom_steps is not None:
        ax.set_xlim(-zoom_steps * scale, zoom_steps * scale)
        ax.set_ylim(zero_point - zoom_steps - 1, zero_point + zoom_steps + 1)
        ax.grid(alpha=0.3)
    ax.set_xlabel("float value")
    ax.set_ylabel("int8 code")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(title or f"scale = {scale:.4g}: one int8 step")
    return fig


def plot_layer_snr(reports: Mapping[str, pd.DataFrame], ax=None, column: str = "output SNR (dB)") -> Figure:
    """Per-layer SNR bars of one or more :func:`~labkit.compress.report.quantization_error_report` tables."""
    if not reports:
        raise LabkitError("give at least one report: {label: quantization_error_report(...)}")
    first = next(iter(reports.values()))
    fig, ax = _axes(ax, (8, 3.8))
    width = 0.8 / len(reports)
    pos = np.arange(len(first))
    lowest = 0.0
    for i, (label, rep) in enumerate(reports.items()):
        vals = np.clip(rep[column].to_numpy(float), -40, 80)  # a layer worse than its own signal is below 0 dB
        lowest = min(lowest, float(np.nanmin(vals)) - 4)
        ax.bar(pos + (i - (len(reports) - 1) / 2) * width, vals, width, label=label, color=COLORS[i % len(COLORS)])
    ax.set_xticks(pos)
    ax.set_xticklabels([f"{l}\n{o.lower()}" for l, o in zip(first["layer"], first["op"])], fontsize=7,
                       rotation=20, ha="right")
    ax.axhline(6.02 * 8, color="0.5", ls="--", lw=0.8)
    ax.annotate("8 bits ≈ 48 dB", (-0.5, 6.02 * 8), ha="left", va="bottom", fontsize=8, color="0.4")
    ax.set_ylim(lowest, 66)
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_ylabel(column)
    ax.legend(fontsize=8, loc="upper right", ncol=len(reports))
    ax.set_title("signal-to-noise ratio of each layer's int8 output (higher is better)")
    return fig


def pruning_explorer(model, x: np.ndarray, y: np.ndarray, sparsity: float = 0.8, scope: str = "layer",
                     curves: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
                     baseline: float | None = None, image_shape: Sequence[int] | None = None,
                     first_layer: str | None = None):
    """A sparsity slider over one-shot magnitude pruning of ``model`` (no retraining), live.

    The figure: the accuracy change on (``x``, ``y``) at the slider's sparsity, as a star on
    ``curves`` (e.g. the lesson's three lines), and, with ``image_shape``, which input pixels
    still have connections in ``first_layer``. Results are remembered per setting.
    """
    import ipywidgets as W

    from labkit.compress.prune import prune_magnitude
    from labkit.course.widgets import Explorer

    def accuracy(m) -> float:
        return float(np.mean(np.argmax(m.predict(x, batch_size=512, verbose=0), axis=-1) == y))

    base = accuracy(model) if baseline is None else baseline
    cache: dict[float, tuple[float, np.ndarray | None]] = {}

    def draw(sparsity: float) -> Figure:
        key = round(float(sparsity), 2)
        if key not in cache:
            pruned = prune_magnitude(model, key, scope=scope)
            kernel = pruned.get_layer(first_layer).kernel.numpy() if image_shape is not None else None
            cache[key] = (100.0 * (accuracy(pruned) - base), kernel)
        change, kernel = cache[key]
        if image_shape is not None:
            fig, (a0, a1) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True,
                                         gridspec_kw={"width_ratios": [2.2, 1]})
        else:
            fig, a0 = plt.subplots(figsize=(7, 4), constrained_layout=True)
        plot_pruning_curves(curves or {}, ax=a0, marker=(key, change),
                            title=f"one-shot pruning at {key:.0%}: accuracy change {change:+.1f} points") \
            if curves else _single_point(a0, key, change)
        if image_shape is not None:
            plot_surviving_inputs(kernel, image_shape, ax=a1, title=f"{first_layer}: connections left per pixel")
        return fig

    controls = {"sparsity": W.FloatSlider(value=float(sparsity), min=0.0, max=0.99, step=0.01,
                                          description="sparsity", continuous_update=False, readout_format=".2f",
                                          style={"description_width": "initial"}, layout=W.Layout(width="480px"))}
    explorer = Explorer(draw, controls)
    explorer.cache = cache
    return explorer


def _single_point(ax, sparsity: float, change: float):
    ax.plot(100 * sparsity, change, "*", color="black", ms=14)
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set_xlim(-2, 100)
    ax.set_xlabel("parameters pruned away (%)")
    ax.set_ylabel("accuracy change (points)")
    ax.set_title(f"one-shot pruning at {sparsity:.0%}: accuracy change {change:+.1f} points")
    return ax.figure
