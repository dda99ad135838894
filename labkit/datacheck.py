"""Checks on what a user hands the kit: training arrays, numeric options, class labels.

One place for them, so that ``labkit prune``/``labkit quantize`` and :func:`labkit.train.fit_classifier`
refuse the same mistakes with the same words. Every check raises a :class:`~labkit.errors.LabkitError`
(a :class:`~labkit.errors.DatasetError` for data) whose one-line message names the array or option,
what is wrong with it, and the valid range. Messages hold plain Python numbers and shapes such as
``(N, 8, 8)``, never numpy reprs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

from labkit.errors import DatasetError, LabkitError


def shape_text(shape) -> str:
    """A shape as a user writes it: ``(119, 6)``, ``(16,)``; ``None`` (any size) as ``N``."""
    dims = ["N" if d is None else str(int(d)) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def _number_text(value) -> str:
    return repr(value.item() if isinstance(value, np.generic) else value)


# ---------------------------------------------------------------------------------------------
# numeric options

def check_int(value, name: str, low: int, high: int | None = None, why: str = "") -> int:
    """``value`` as an int in [low, high] (no upper bound when ``high`` is None)."""
    valid = f"[{low}, {high}]" if high is not None else f">= {low}"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
            value = int(value)
        else:
            raise LabkitError(f"{name} must be a whole number {valid}, got {_number_text(value)}"
                              + (f" ({why})" if why else ""))
    value = int(value)
    if value < low or (high is not None and value > high):
        raise LabkitError(f"{name} must be {'in ' if high is not None else ''}{valid}, got {value}"
                          + (f" ({why})" if why else ""))
    return value


def check_float(value, name: str, low: float, high: float, low_open: bool = False, high_open: bool = False,
                why: str = "") -> float:
    """``value`` as a finite float in the interval given (``low_open``: ``low`` itself excluded)."""
    valid = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise LabkitError(f"{name} must be a number in {valid}, got {value!r}") from None
    if not math.isfinite(v) or v < low or v > high or (low_open and v == low) or (high_open and v == high):
        raise LabkitError(f"{name} must be a finite number in {valid}, got {v:g}" + (f" ({why})" if why else ""))
    return v


LEARNING_RATE_WHY = "Adam's step size; 1e-3 is the usual start, above 1 training diverges"


def check_training_options(epochs, batch_size, learning_rate, prefix: str = "") -> tuple[int, int, float]:
    """Epochs >= 0, batch size >= 1, learning rate in (0, 1]; ``prefix`` turns ``epochs`` into ``--epochs``."""
    dash = (lambda n: prefix + n.replace("_", "-")) if prefix else (lambda n: n)
    return (check_int(epochs, dash("epochs"), 0, 100_000),
            check_int(batch_size, dash("batch_size"), 1, 1_000_000),
            check_float(learning_rate, dash("learning_rate"), 0.0, 1.0, low_open=True, why=LEARNING_RATE_WHY))


# ---------------------------------------------------------------------------------------------
# arrays

def model_input_shape(model) -> tuple | None:
    """The model's sample shape (no batch axis), or None for a model with several inputs."""
    shape = getattr(model, "input_shape", None)
    if not isinstance(shape, tuple) or not shape or isinstance(shape[0], (tuple, list)):
        return None
    return tuple(shape[1:])


def model_classes(model) -> int | None:
    """How many classes a classifier outputs (its last axis), or None when that is not one number."""
    shape = getattr(model, "output_shape", None)
    if not isinstance(shape, tuple) or not shape or isinstance(shape[0], (tuple, list)):
        return None
    return shape[-1] if isinstance(shape[-1], int) else None


def check_samples(x, name: str = "x", input_shape: Sequence | None = None, model_says: str = "the model",
                  harm: str = "training on them gives NaN weights", as_float32: bool = True) -> np.ndarray:
    """``x`` as float32 (``as_float32=False``: as it is): numbers, at least one sample, every value finite,
    samples shaped ``input_shape``. ``harm``: what a NaN or infinite value would do, said in the message."""
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)) or x.dtype == bool:
        raise DatasetError(f"{name} must hold numbers (float samples), got dtype {x.dtype}")
    if x.ndim == 0:
        raise DatasetError(f"{name} is a single number; expected an array of samples, (N, ...)")
    if len(x) == 0:
        raise DatasetError(f"{name} is empty (0 samples); give at least one sample")
    if input_shape is not None:
        want = tuple(input_shape)
        got = tuple(x.shape[1:])
        if len(got) != len(want) or any(w is not None and w != g for w, g in zip(want, got)):
            dims = ", ".join("any" if d is None else str(d) for d in want)
            raise DatasetError(f"{name} has samples of shape {shape_text(got)}, {model_says} takes {shape_text(want)}, "
                               f"so the array must have shape (N, {dims})")
    if np.issubdtype(x.dtype, np.floating):
        finite = np.isfinite(x)
        if not finite.all():
            nan = int(np.isnan(x).sum())
            inf = int(x.size - finite.sum()) - nan
            bad = np.flatnonzero(~finite.reshape(len(x), -1).all(axis=1))
            what = " and ".join(p for p in (f"{nan} NaN" if nan else "", f"{inf} infinite" if inf else "") if p)
            raise DatasetError(
                f"{name} holds {what} value(s) in {len(bad)} of its {len(x)} samples (the first is sample {int(bad[0])}); "
                f"{harm}. Remove or repair those samples, e.g. "
                "keep = np.isfinite(x).reshape(len(x), -1).all(axis=1); x, y = x[keep], y[keep]")
    return x.astype(np.float32, copy=False) if as_float32 else x


def check_labels(y, n_samples: int | None = None, n_classes: int | None = None, name: str = "y",
                 x_name: str = "x", integer_dtype: bool = False) -> np.ndarray:
    """``y`` as int64 class indices: 1-D, whole numbers, one per sample, each in [0, n_classes)."""
    y = np.asarray(y)
    numeric = np.issubdtype(y.dtype, np.integer) or (not integer_dtype and np.issubdtype(y.dtype, np.floating))
    if y.ndim != 1 or not numeric or y.dtype == bool:
        raise DatasetError(f"{name} must be a 1-D array of integer class indices, got shape {shape_text(y.shape)} "
                           f"and dtype {y.dtype}" + (" (one-hot labels? use y.argmax(axis=1))" if y.ndim == 2 else ""))
    if np.issubdtype(y.dtype, np.floating):
        whole = np.isfinite(y) & (y == np.round(y))
        if not whole.all():
            i = int(np.flatnonzero(~whole)[0])
            raise DatasetError(f"{name} must hold whole class indices; {name}[{i}] is {float(y[i])!r}")
    if n_samples is not None and len(y) != n_samples:
        raise DatasetError(f"{x_name} has {n_samples} samples but {name} has {len(y)} labels; give one label per sample")
    y = y.astype(np.int64, copy=False)
    if n_classes is not None and len(y):
        bad = np.unique(y[(y < 0) | (y >= n_classes)])
        if bad.size:
            shown = ", ".join(str(int(v)) for v in bad[:6]) + (", ..." if bad.size > 6 else "")
            raise DatasetError(
                f"{name} has labels {shown} outside the model's {n_classes} outputs (classes 0 to {n_classes - 1}); "
                f"labels must be class indices 0..{n_classes - 1} (renumber them, e.g. with np.unique(y, "
                f"return_inverse=True), or build the model with more outputs)")
    return y


def check_classifier_data(model, x, y=None, name: str = "x", y_name: str = "y",
                          as_float32: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """``x`` (and ``y``) checked against ``model``: its input shape and its number of outputs; ``x`` returned
    as float32 (``as_float32=False``: as given, so no float32 copy is made of a large integer array)."""
    x = check_samples(x, name, model_input_shape(model), as_float32=as_float32)
    if y is None:
        return x, None
    out = getattr(model, "output_shape", None)
    if isinstance(out, tuple) and len(out) == 2 and not isinstance(out[0], (tuple, list)):
        return x, check_labels(y, len(x), model_classes(model), y_name, name)
    if len(y) != len(x):  # a sequence or multi-output model: only the count is checked here
        raise DatasetError(f"{name} has {len(x)} samples but {y_name} has {len(y)} labels; give one label per sample")
    return x, y


# ---------------------------------------------------------------------------------------------
# class labels given as text

def parse_labels(text: str | None, what: str = "--labels") -> list[str] | None:
    """Comma-separated class labels: none empty, none repeated (ignoring case), or None for no text."""
    if text is None:
        return None
    labels = [part.strip() for part in text.split(",")]
    empty = [i + 1 for i, label in enumerate(labels) if not label]
    if empty:
        raise LabkitError(f"{what} {text!r}: label {', '.join(map(str, empty))} of {len(labels)} is empty; "
                          "give one non-empty name per model output, separated by commas, e.g. punch,flex")
    check_distinct_labels(labels, what)
    return labels


def check_distinct_labels(labels: Sequence[str], what: str = "labels") -> None:
    """Refuse labels that repeat, also when they differ only in case (punch and Punch)."""
    seen: dict[str, str] = {}
    for label in labels:
        key = label.casefold()
        if key in seen:
            same = f"{label!r} is given twice" if seen[key] == label else f"{seen[key]!r} and {label!r} differ only in case"
            raise LabkitError(f"{what}: {same}; every class needs its own name")
        seen[key] = label


# ---- sizes as people write them (a board's flash and RAM) ---------------------------------------

_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2, "mib": 1024**2}


def parse_size(text, what: str = "size") -> int:
    """Bytes from ``16384``, ``16K``, ``16KB``, ``16KiB``, ``1.5M`` (K = 1024 bytes, as boards count)."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(text))
        unit = m.group(2).lower() if m else None
        if m is None or unit not in _UNITS:
            raise LabkitError(f"{what} {text!r}: not a size I know; write bytes (16384) or K/KB/M/MB "
                              "(16K = 16KB = 16384 bytes)")
        value = float(m.group(1)) * _UNITS[unit]
        if value != int(value):
            raise LabkitError(f"{what} {text!r} is not a whole number of bytes")
        value = int(value)
    if value < 1:
        raise LabkitError(f"{what} {text!r} must be at least 1 byte")
    return value


def parse_count(text, what: str = "count") -> int:
    """A whole number >= 1 such as ``100000``, ``100_000``, ``100k`` or ``1.5M`` (k = 1000 here)."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = float(text)
    else:
        m = re.fullmatch(r"\s*(\d+(?:[._]\d+)*)\s*([kKmM]?)\s*", str(text))
        if m is None:
            raise LabkitError(f"{what} {text!r}: expected a whole number such as 100000, 100k or 1.5M")
        digits = m.group(1).replace("_", "")
        value = float(digits) * {"": 1, "k": 1e3, "m": 1e6}[m.group(2).lower()]
    if value < 1 or value != int(value):
        raise LabkitError(f"{what} {text!r} must be a whole number of at least 1")
    return int(value)
