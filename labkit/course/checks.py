"""Helpers for the check cells after each exercise.

Each helper either returns quietly or raises :class:`CheckFailed` (an ``AssertionError``) with a message that says what
was expected, what the learner's code gave, and a hint about where to look — the message is
what the learner reads, so it matters more than the test itself::

    from labkit.course import checks
    checks.close("slope gradient", my_grad[0], expected[0], hint="did you multiply the error by x?")
    checks.passed(1, "your gradient matches the finite differences")
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "CheckFailed",
    "that",
    "is_instance",
    "shape",
    "finite",
    "close",
    "below",
    "above",
    "between",
    "equal",
    "passed",
]


class CheckFailed(AssertionError):
    """A wrong answer. In a notebook it shows as its message alone: the learner reads what is wrong
    and the hint, not a traceback through this module (IPython asks ``_render_traceback_``)."""

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[31mNot yet: {self}\x1b[0m"]


def _fail(message: str, hint: str = "") -> None:
    hint = hint.strip()
    if hint:  # the hint is a sentence of its own after the message
        message = f"{message}. {hint[0].upper()}{hint[1:]}"
    raise CheckFailed(message)


def _fmt(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    if isinstance(value, list) and len(value) <= 6:
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, tuple) and len(value) <= 6:
        return "(" + ", ".join(_fmt(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    try:
        arr = np.asarray(value)
    except Exception:  # noqa: BLE001 - anything without an array form is shown as it is
        return repr(value)
    if arr.ndim and arr.size > 6:
        return f"array of shape {arr.shape}"
    if arr.ndim:
        return np.array2string(arr, precision=6, separator=", ")
    return repr(value)


def _where(got: np.ndarray, want: np.ndarray, differs: np.ndarray) -> str:
    """For arrays too long to print: where the first difference is and how many elements differ."""
    bad = np.argwhere(differs)
    if got.size <= 6 or not len(bad):
        return ""
    first = tuple(int(i) for i in bad[0])
    index = first[0] if len(first) == 1 else first
    return (f"; {len(bad)} of {got.size} elements differ, the first at index {index}: "
            f"got {_fmt(got[first])}, expected {_fmt(want[first])}")


def that(condition: bool, message: str) -> None:
    """Fail with ``message`` unless ``condition`` holds."""
    if not condition:
        _fail(message)


def is_instance(name: str, value: Any, types: type | tuple[type, ...], hint: str = "") -> None:
    """``value`` is of one of ``types``."""
    if not isinstance(value, types):
        names = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        _fail(f"{name} should be of type {names}, got {type(value).__name__}", hint)


def shape(name: str, value: Any, expected: tuple[int, ...], hint: str = "") -> None:
    """``np.shape(value) == expected``."""
    got = np.shape(value)
    if tuple(got) != tuple(expected):
        _fail(f"{name} should have shape {tuple(expected)}, got {tuple(got)}", hint)


def finite(name: str, value: Any, hint: str = "") -> None:
    """Every number in ``value`` is finite (no nan, no inf)."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        _fail(f"{name} should be a number or an array of numbers, got {type(value).__name__}", hint)
    if not np.all(np.isfinite(arr)):
        _fail(f"{name} contains nan or inf ({_fmt(value)})", hint)


def close(name: str, value: Any, expected: Any, rtol: float = 1e-6, atol: float = 1e-8, hint: str = "") -> None:
    """``value`` equals ``expected`` within ``atol + rtol * |expected|`` (element-wise), shapes included."""
    if value is None:
        _fail(f"{name} is None: did the function return its result?", hint)
    try:
        got = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        _fail(f"{name} should be a number or an array of numbers, got {type(value).__name__}", hint)
    want = np.asarray(expected, dtype=np.float64)
    if got.shape != want.shape:
        _fail(f"{name} should have shape {want.shape}, got {got.shape}", hint)
    if not np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=False):
        worst = float(np.max(np.abs(got - want))) if got.size else 0.0
        where = _where(got, want, ~np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=False))
        _fail(f"{name} is {_fmt(value)}, expected {_fmt(expected)} (largest difference {worst:.3g}{where})", hint)


def below(name: str, value: float, limit: float, hint: str = "") -> None:
    """``value < limit`` (and finite)."""
    finite(name, value, hint)
    if not float(value) < limit:
        _fail(f"{name} is {_fmt(value)}, but should be below {_fmt(limit)}", hint)


def above(name: str, value: float, limit: float, hint: str = "") -> None:
    """``value > limit`` (and finite)."""
    finite(name, value, hint)
    if not float(value) > limit:
        _fail(f"{name} is {_fmt(value)}, but should be above {_fmt(limit)}", hint)


def between(name: str, value: float, low: float, high: float, hint: str = "") -> None:
    """``low <= value <= high`` (and finite)."""
    finite(name, value, hint)
    if not low <= float(value) <= high:
        _fail(f"{name} is {_fmt(value)}, but should be between {_fmt(low)} and {_fmt(high)}", hint)


def equal(name: str, value: Any, expected: Any, hint: str = "") -> None:
    """``value == expected`` (arrays compared element-wise, shapes included)."""
    if isinstance(expected, np.ndarray) or isinstance(value, np.ndarray):
        ok = np.shape(value) == np.shape(expected) and bool(np.all(np.asarray(value) == np.asarray(expected)))
    else:
        ok = value == expected
    if not ok:
        where = ""
        if np.shape(value) == np.shape(expected) and np.ndim(value):
            got, want = np.asarray(value), np.asarray(expected)
            where = _where(got, want, got != want)
        _fail(f"{name} is {_fmt(value)}, expected {_fmt(expected)}{where}", hint)


def passed(exercise: int | str, note: str = "") -> None:
    """Print the line a check cell ends with when everything holds."""
    print(f"Exercise {exercise}: correct." + (f" {note}" if note else ""))
