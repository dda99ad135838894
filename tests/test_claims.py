"""labkit.course.claims: a lesson's statement about a float-training result holds, or fails naming both figures."""

import math

import pytest

from labkit.course.claims import ClaimError, claim, holds


@pytest.mark.parametrize("value", [0.87, 0.89, 0.91])
def test_a_figure_within_its_tolerance_holds_and_adds_no_output(value):
    assert claim("test accuracy", value, 0.89, tol=0.02) is None  # at the end of a cell: nothing displayed


@pytest.mark.parametrize("value, message", [
    (0.8699, r"the lesson says test accuracy ≈ 0.89 \(± 0.02\); this run gives 0.8699"),
    (0.9101, r"≈ 0.89 \(± 0.02\); this run gives 0.9101"),
])
def test_a_figure_outside_its_tolerance_fails_with_both_figures(value, message):
    with pytest.raises(ClaimError, match=message):
        claim("test accuracy", value, 0.89, tol=0.02)


def test_relative_tolerance_and_bounds():
    claim("loss", 1.04, 1.0, rel=0.05)
    with pytest.raises(ClaimError, match=r"≈ 1 \(± 5 %\); this run gives 1.06"):
        claim("loss", 1.06, 1.0, rel=0.05)
    claim("accuracy", 0.95, low=0.93)
    with pytest.raises(ClaimError, match="at least 0.93; this run gives 0.92"):
        claim("accuracy", 0.92, low=0.93)
    with pytest.raises(ClaimError, match="at most 0.1; this run gives 0.2"):
        claim("error", 0.2, high=0.1)


@pytest.mark.parametrize("value", [math.nan, math.inf, "0.9", None])
def test_a_diverged_or_missing_figure_never_holds(value):
    with pytest.raises(ClaimError):
        claim("loss", value, 1.0, tol=10.0)


def test_a_claim_must_say_what_it_claims():
    with pytest.raises(ValueError, match="exactly one of tol"):
        claim("x", 1.0, 1.0)
    with pytest.raises(ValueError, match="exactly one of tol"):
        claim("x", 1.0, 1.0, tol=0.1, rel=0.1)
    with pytest.raises(ValueError, match="give an expected value"):
        claim("x", 1.0)


def test_holds_names_the_statement():
    holds("the loss falls", True)
    with pytest.raises(ClaimError, match=r"the lesson says the loss falls; this run does not bear it out \(got 3\)"):
        holds("the loss falls", False, 3)
