"""Augmentation for IMU windows: new training samples from recorded ones, physically plausible.

A gesture model trained on a few people learns how *they* hold the board. The augmentations here
make copies that differ the way other people's recordings differ:

- :func:`rotate` turns accelerometer and gyroscope by the **same** rotation, as if the board sat
  differently in the hand (both sensors are on one chip, so one rotation moves both triads);
- :func:`time_warp` plays the gesture faster or slower, smoothly varying within the window;
- :func:`scale_amplitude` makes it gentler or stronger;
- :func:`add_noise` adds white sensor noise (in g and deg/s);
- :func:`time_shift` moves it earlier or later in the window (edge samples repeat).

Windows are ``(n, samples, 6)`` arrays in the capture format's units: ``aX, aY, aZ`` in g, then
``gX, gY, gZ`` in deg/s. Every function takes a :class:`numpy.random.Generator`, works on the whole
batch at once and returns a new float32 array. :func:`augment_dataset` returns a Dataset with
augmented copies of every sample (labels and persons carried along).
"""

from __future__ import annotations

import numpy as np

from labkit.datasets.base import Dataset
from labkit.errors import DatasetError

N_CHANNELS = 6  # aX, aY, aZ (g), gX, gY, gZ (deg/s)
_RANGE = np.array([4.0] * 3 + [2000.0] * 3, dtype=np.float32)  # the capture sketch's sensor range


def _windows(x) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[2] != N_CHANNELS:
        raise DatasetError(
            f"IMU windows must have shape (n, samples, 6) (aX, aY, aZ in g, gX, gY, gZ in deg/s), got {x.shape}"
        )
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise DatasetError(f"IMU windows must be real numbers, got dtype {x.dtype}")
    return x.astype(np.float32, copy=False)


def _rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise DatasetError(f"rng must be a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    return rng


def _number(value, name: str, lo: float, hi: float, hint: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not lo <= value <= hi:
        raise DatasetError(f"{name} must be a number in [{lo:g}, {hi:g}] ({hint}), got {value!r}")
    return float(value)


def random_rotations(n: int, rng: np.random.Generator, max_degrees: float = 180.0) -> np.ndarray:
    """``n`` random rotation matrices, float64 ``(n, 3, 3)``.

    ``max_degrees=180`` draws uniformly over all orientations (unit quaternions from a 4-D normal);
    a smaller value turns about a uniformly random axis by an angle uniform in [0, max_degrees]
    (the board tilted a little differently, not held any which way).
    """
    rng = _rng(rng)
    max_degrees = _number(max_degrees, "max_degrees", 0, 180, "the largest rotation angle in degrees")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise DatasetError(f"n must be an integer >= 0, got {n!r}")
    if max_degrees == 180.0:
        q = rng.normal(size=(n, 4))
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        w, x, y, z = q.T
        return np.stack(
            [
                np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
                np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
                np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
            ],
            axis=-2,
        )
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    angle = np.radians(rng.uniform(0.0, max_degrees, n))[:, None, None]
    k = np.zeros((n, 3, 3))  # the cross-product matrix of the axis (Rodrigues' formula)
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    k -= k.transpose(0, 2, 1)
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def rotate(x, rotations) -> np.ndarray:
    """Windows turned by one rotation each: ``rotations`` is ``(3, 3)`` or ``(n, 3, 3)``; the same
    matrix turns the accelerometer and the gyroscope vector of every sample of a window, so
    |a| and |g| per sample are unchanged. Rotations must be orthonormal with determinant +1."""
    x = _windows(x)
    r = np.asarray(rotations, dtype=np.float64)
    if r.shape == (3, 3):
        r = np.broadcast_to(r, (len(x), 3, 3))
    if r.shape != (len(x), 3, 3):
        raise DatasetError(f"rotations must be (3, 3) or ({len(x)}, 3, 3), one per window, got shape {r.shape}")
    if not np.isfinite(r).all() or not np.allclose(r @ r.transpose(0, 2, 1), np.eye(3), atol=1e-5) or not np.allclose(
        np.linalg.det(r), 1.0, atol=1e-5
    ):
        raise DatasetError("rotations must be proper rotation matrices (R @ R.T = I, det R = +1); "
                           "use random_rotations(n, rng) to draw them")
    a = np.einsum("nij,ntj->nti", r, x[..., :3].astype(np.float64))
    g = np.einsum("nij,ntj->nti", r, x[..., 3:].astype(np.float64))
    return np.concatenate([a, g], axis=-1).astype(np.float32)


def time_warp(x, rng: np.random.Generator, max_stretch: float = 0.15) -> np.ndarray:
    """Each window replayed at a speed that varies smoothly within it: the time axis is bent by a
    random monotone curve whose local speed stays within 1 ± ``max_stretch`` (0.15 = up to 15 %
    faster or slower). Linear interpolation; the window keeps its length, its first sample (the
    trigger) stays in place and samples past the end repeat the last one."""
    x = _windows(x)
    rng = _rng(rng)
    max_stretch = _number(max_stretch, "max_stretch", 0, 0.9, "the largest change of speed, 0.15 = 15 %")
    n, length, _ = x.shape
    if max_stretch == 0 or length < 2:
        return x.copy()
    u = np.linspace(0.0, 1.0, length)
    # Speed = 1 + overall change + one slow wave, kept within the stretch.
    speed = 1 + rng.uniform(-0.5, 0.5, (n, 1)) * max_stretch + rng.uniform(-0.5, 0.5, (n, 1)) * max_stretch * np.sin(
        2 * np.pi * (rng.uniform(0.5, 1.5, (n, 1)) * u + rng.uniform(0, 1, (n, 1)))
    )
    source = np.concatenate([np.zeros((n, 1)), np.cumsum(speed[:, :-1], axis=1)], axis=1)  # in samples
    source = np.clip(source, 0, length - 1)
    lo = np.floor(source).astype(np.int64)
    hi = np.minimum(lo + 1, length - 1)
    frac = (source - lo)[..., None]
    rows = np.arange(n)[:, None]
    return ((1 - frac) * x[rows, lo] + frac * x[rows, hi]).astype(np.float32)


def scale_amplitude(x, rng: np.random.Generator, max_change: float = 0.2) -> np.ndarray:
    """Each window's movement made gentler or stronger by a factor uniform in 1 ± ``max_change``.

    Gravity is not a movement: the accelerometer's mean over the window (mostly gravity) stays,
    only what changes around it and the gyroscope are scaled. Clipped to the sensor's range."""
    x = _windows(x)
    rng = _rng(rng)
    max_change = _number(max_change, "max_change", 0, 0.9, "the largest relative change, 0.2 = ±20 %")
    factor = rng.uniform(1 - max_change, 1 + max_change, (len(x), 1, 1)).astype(np.float32)
    mean = np.concatenate([x[..., :3].mean(axis=1, keepdims=True), np.zeros_like(x[:, :1, 3:])], axis=-1)
    return np.clip(mean + factor * (x - mean), -_RANGE, _RANGE).astype(np.float32)


def add_noise(x, rng: np.random.Generator, accel_g: float = 0.02, gyro_dps: float = 2.0) -> np.ndarray:
    """White noise added to every sample: standard deviation ``accel_g`` (g) on aX, aY, aZ and
    ``gyro_dps`` (deg/s) on gX, gY, gZ (the defaults are about the sensor's own noise)."""
    x = _windows(x)
    rng = _rng(rng)
    accel_g = _number(accel_g, "accel_g", 0, 1, "noise in g")
    gyro_dps = _number(gyro_dps, "gyro_dps", 0, 200, "noise in deg/s")
    scale = np.array([accel_g] * 3 + [gyro_dps] * 3, dtype=np.float32)
    return (x + rng.normal(size=x.shape).astype(np.float32) * scale).astype(np.float32)


def time_shift(x, rng: np.random.Generator, max_samples: int = 8) -> np.ndarray:
    """Each window moved by a whole number of samples in [-max_samples, max_samples]: a positive
    shift starts the gesture later (the first sample repeats before it), a negative one earlier
    (the last sample repeats after it)."""
    x = _windows(x)
    rng = _rng(rng)
    if isinstance(max_samples, bool) or not isinstance(max_samples, (int, np.integer)) or not 0 <= max_samples < x.shape[1]:
        raise DatasetError(f"max_samples must be an integer in [0, {x.shape[1] - 1}] (samples per window - 1), got {max_samples!r}")
    shift = rng.integers(-max_samples, max_samples + 1, len(x))
    idx = np.clip(np.arange(x.shape[1])[None, :] - shift[:, None], 0, x.shape[1] - 1)
    return x[np.arange(len(x))[:, None], idx]


def augment(
    x,
    rng: np.random.Generator,
    rotation_degrees: float | None = 180.0,
    max_stretch: float | None = 0.1,
    max_change: float | None = 0.2,
    noise: float | None = 1.0,
    max_shift: int | None = 8,
) -> np.ndarray:
    """All five augmentations in turn (rotate, time warp, amplitude, shift, noise); ``None`` or 0
    leaves one out. ``noise`` is in units of the sensor's own noise (0.02 g, 2 deg/s)."""
    x = _windows(x)
    rng = _rng(rng)
    out = x.copy()
    if rotation_degrees:
        out = rotate(out, random_rotations(len(out), rng, rotation_degrees))
    if max_stretch:
        out = time_warp(out, rng, max_stretch)
    if max_change:
        out = scale_amplitude(out, rng, max_change)
    if max_shift:
        out = time_shift(out, rng, max_shift)
    if noise:
        noise = _number(noise, "noise", 0, 50, "in units of the sensor's own noise")
        out = add_noise(out, rng, 0.02 * noise, 2.0 * noise)
    return out


def augment_dataset(ds: Dataset, copies: int = 4, seed: int = 0, keep_original: bool = True, **options) -> Dataset:
    """A Dataset with ``copies`` augmented versions of every sample (after the originals unless
    ``keep_original=False``); labels, persons (``groups``) and info carried along.

    ``options`` are :func:`augment`'s: ``rotation_degrees``, ``max_stretch``, ``max_change``,
    ``noise``, ``max_shift``. Seeded: the same seed gives the same copies.
    """
    if not isinstance(ds, Dataset):
        raise DatasetError(f"augment_dataset needs a labkit Dataset, got {type(ds).__name__}")
    if isinstance(copies, bool) or not isinstance(copies, (int, np.integer)) or not 0 <= copies <= 1000:
        raise DatasetError(f"copies must be an integer in [0, 1000] (augmented versions per sample), got {copies!r}")
    if copies == 0 and not keep_original:
        raise DatasetError("copies=0 with keep_original=False leaves no sample")
    unknown = sorted(set(options) - {"rotation_degrees", "max_stretch", "max_change", "noise", "max_shift"})
    if unknown:
        raise DatasetError(f"unknown augmentation option(s) {unknown}; the options are rotation_degrees, "
                           "max_stretch, max_change, noise, max_shift")
    x = _windows(ds.x)
    rng = np.random.default_rng(seed)
    xs = [x] if keep_original else []
    xs += [augment(x, rng, **options) for _ in range(copies)]
    n_parts = len(xs)
    groups = None if ds.groups is None else np.tile(ds.groups, n_parts)
    return Dataset(np.concatenate(xs), np.tile(ds.y, n_parts), ds.info, groups)
