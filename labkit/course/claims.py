"""Claims: what a lesson's text says about a result of float training, asserted where it is printed.

Float training lands on slightly different weights on another CPU: oneDNN and OpenBLAS choose
other kernels (AVX-512 here, AVX2 on most laptops) and the rounding differs in the last bits, which
a few hundred steps turn into other weights. A stored output compared to its last digit then fails
on the course laptop while every statement of the lesson still holds. The rule for lesson authors
(README, "Writing a lesson that passes on every CPU"):

- **exact results** — int8 outputs, C against reference bytes, sizes, MACs, arena plans, anything
  computed without float training — are printed as they are, and nbval compares them digit for digit;
- a cell that prints **results of float training** (losses, accuracies, curves, instruction counts
  of a trained model) starts with ``# NBVAL_IGNORE_OUTPUT`` and asserts every figure the text quotes
  with :func:`claim`, at the tolerance the text can bear, so another CPU passes when the claim holds
  and fails when it breaks; the prose quotes no more digits than that tolerance;
- **text sampled** from a trained model is checked for the property the lesson claims (see
  :func:`holds`), not character by character.

``labkit lessons run`` runs a lesson a second time with oneDNN held to AVX2 and OpenBLAS to Haswell
kernels and refuses to store it while a compared cell prints something else there.
"""

from __future__ import annotations

import math
import numbers

__all__ = ["ClaimError", "claim", "holds"]


class ClaimError(AssertionError):
    """A statement of the lesson's text that this run does not bear out."""


def _number(what: str, value) -> float:
    if getattr(value, "shape", ()) == () and hasattr(value, "item"):
        value = value.item()  # a numpy scalar or 0-d array
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ClaimError(f"{what}: expected a number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ClaimError(f"{what} is {v}: training diverged or the data holds nan/inf")
    return v


def claim(what: str, value, expected: float | None = None, *, tol: float | None = None, rel: float | None = None,
          low: float | None = None, high: float | None = None) -> None:
    """Assert a figure the lesson's text quotes (nothing is returned, so a claim at the end of a cell
    adds no output).

    ``claim("test accuracy", acc, 0.89, tol=0.02)`` holds for 0.87 <= acc <= 0.91; ``rel=0.05``
    allows 5 % of ``expected`` instead; ``low``/``high`` bound a figure the text only says is above
    or below something. A claim that does not hold raises :class:`ClaimError` saying what the text
    says and what this run gave.
    """
    v = _number(what, value)
    if expected is not None:
        if (tol is None) == (rel is None):
            raise ValueError("claim: give exactly one of tol= (absolute) or rel= (relative) with an expected value")
        margin = tol if tol is not None else abs(expected) * rel
        if not margin >= 0:
            raise ValueError(f"claim: the tolerance must be >= 0, got {margin}")
        if abs(v - expected) > margin * (1 + 1e-9) + 1e-12:  # 0.91 - 0.89 is 0.0200000000000000018
            spread = f"± {tol:g}" if tol is not None else f"± {100 * rel:g} %"
            raise ClaimError(f"the lesson says {what} ≈ {expected:g} ({spread}); this run gives {v:.4g}")
    elif low is None and high is None:
        raise ValueError("claim: give an expected value (with tol= or rel=), or low= / high=")
    if low is not None and not v >= low:
        raise ClaimError(f"the lesson says {what} is at least {low:g}; this run gives {v:.4g}")
    if high is not None and not v <= high:
        raise ClaimError(f"the lesson says {what} is at most {high:g}; this run gives {v:.4g}")


def holds(what: str, condition: bool, got=None) -> None:
    """Assert a statement of the text that is not a number (``got``: what to show when it fails)."""
    if not condition:
        raise ClaimError(f"the lesson says {what}; this run does not bear it out" + (f" (got {got})" if got is not None else ""))
