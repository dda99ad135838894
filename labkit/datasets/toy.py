"""Small seeded data sets for the early lessons: fitting a line, overfitting, decision boundaries.

Each keeps its generating parameters in ``info.truth`` so a notebook can compare what a model
learned with the truth.
"""

from __future__ import annotations

import numpy as np

from labkit.datasets.base import Dataset, DatasetInfo
from labkit.errors import DatasetError


def _check(**counts: float) -> None:
    bad = {k: v for k, v in counts.items() if v < (0 if k == "noise" else 1)}
    if bad:
        raise DatasetError(f"sample counts must be >= 1 and noise >= 0, got {bad}")


def _sample_x(n: int, x_range: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    low, high = x_range
    if not low < high:
        raise DatasetError(f"x_range must be (low, high) with low < high, got {x_range}")
    return rng.uniform(low, high, n)


def noisy_line(
    n: int = 100,
    slope: float = 2.0,
    offset: float = 1.0,
    noise: float = 1.0,
    x_range: tuple[float, float] = (0.0, 10.0),
    seed: int = 0,
) -> Dataset:
    """``y = slope * x + offset`` plus Gaussian noise: the gradient-descent lesson's data."""
    _check(n=n, noise=noise)
    rng = np.random.default_rng(seed)
    x = _sample_x(n, x_range, rng)
    y = slope * x + offset + rng.normal(0.0, noise, n)
    info = DatasetInfo(
        name="noisy_line",
        task="regression",
        feature_names=("x",),
        description=f"y = {slope:g} * x + {offset:g} + N(0, {noise:g}^2) for x uniform in {tuple(x_range)}",
        source=f"synthetic (seed={seed})",
        truth={"slope": slope, "offset": offset, "noise": noise},
    )
    return Dataset(x[:, None].astype(np.float32), y.astype(np.float32), info)


def noisy_sine(
    n: int = 100,
    freq: float = 1.0,
    noise: float = 0.1,
    x_range: tuple[float, float] = (0.0, 2 * np.pi),
    seed: int = 0,
) -> Dataset:
    """``y = sin(freq * x)`` plus noise, so freq=1 over (0, 2*pi) is one period.

    The same data as TensorFlow Lite Micro's hello_world model, and a good one for overfitting.
    """
    _check(n=n, noise=noise)
    rng = np.random.default_rng(seed)
    x = _sample_x(n, x_range, rng)
    y = np.sin(freq * x) + rng.normal(0.0, noise, n)
    info = DatasetInfo(
        name="noisy_sine",
        task="regression",
        feature_names=("x",),
        description=f"y = sin({freq:g} * x) + N(0, {noise:g}^2) for x uniform in {tuple(x_range)}",
        source=f"synthetic (seed={seed})",
        truth={"freq": freq, "noise": noise},
    )
    return Dataset(x[:, None].astype(np.float32), y.astype(np.float32), info)


def moons(n: int = 200, noise: float = 0.2, seed: int = 0) -> Dataset:
    """Two interleaving half circles: the smallest problem a linear model cannot solve."""
    from sklearn.datasets import make_moons

    _check(n=n, noise=noise)
    x, y = make_moons(n_samples=n, noise=noise, random_state=seed)
    info = DatasetInfo(
        name="moons",
        task="classification",
        class_names=("upper", "lower"),
        feature_names=("x1", "x2"),
        description=f"sklearn make_moons, {n} points, noise {noise:g}",
        source=f"synthetic (seed={seed})",
        truth={"noise": noise},
    )
    return Dataset(x.astype(np.float32), y.astype(np.int64), info)


def spiral(n_per_class: int = 100, n_classes: int = 3, noise: float = 0.2, seed: int = 0) -> Dataset:
    """Interleaved spiral arms, one per class: needs a hidden layer to separate."""
    _check(n_per_class=n_per_class, n_classes=n_classes, noise=noise)
    rng = np.random.default_rng(seed)
    radius = np.tile(np.linspace(0.0, 1.0, n_per_class), n_classes)
    y = np.repeat(np.arange(n_classes, dtype=np.int64), n_per_class)
    turn = 4.0  # radians each arm sweeps
    angle = (
        np.concatenate([np.linspace(k * turn, (k + 1) * turn, n_per_class) for k in range(n_classes)])
        + rng.normal(0.0, noise, len(y))
    )
    x = np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1)
    order = rng.permutation(len(y))  # shuffled, so a last-20% validation split sees every class
    info = DatasetInfo(
        name="spiral",
        task="classification",
        class_names=tuple(f"arm {k}" for k in range(n_classes)),
        feature_names=("x1", "x2"),
        description=f"{n_classes} spiral arms of {n_per_class} points, angle noise {noise:g} rad",
        source=f"synthetic (seed={seed})",
        truth={"n_classes": n_classes, "noise": noise},
    )
    return Dataset(x[order].astype(np.float32), y[order], info)
