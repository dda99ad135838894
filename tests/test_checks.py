"""Tests for labkit.course.checks: quiet on a right answer, an AssertionError that explains a wrong one."""

from __future__ import annotations

import numpy as np
import pytest

from labkit.course import checks


def test_that():
    checks.that(True, "never shown")
    with pytest.raises(AssertionError, match="^the message$"):
        checks.that(False, "the message")


def test_is_instance():
    checks.is_instance("x", 1.0, (int, float))
    with pytest.raises(AssertionError, match="x should be of type int or float, got str. Use a number"):
        checks.is_instance("x", "1", (int, float), hint="use a number")


def test_shape():
    checks.shape("g", (1.0, 2.0), (2,))
    with pytest.raises(AssertionError, match=r"g should have shape \(2, 3\), got \(3, 2\)"):
        checks.shape("g", np.zeros((3, 2)), (2, 3))


def test_finite():
    checks.finite("v", [1.0, 2.0])
    with pytest.raises(AssertionError, match="nan or inf"):
        checks.finite("v", [1.0, np.nan])
    with pytest.raises(AssertionError, match="number"):
        checks.finite("v", "abc")


def test_close_passes_within_tolerance():
    checks.close("a", 1.0 + 1e-9, 1.0)
    checks.close("a", [1.0, 2.0], np.array([1.0, 2.0]))
    checks.close("a", np.float32(0.1), 0.1, rtol=1e-6)


def test_close_reports_values_difference_and_hint():
    with pytest.raises(AssertionError) as info:
        checks.close("slope gradient", 0.5, 1.0, hint="keep the factor 2")
    text = str(info.value)
    assert "slope gradient is 0.5, expected 1" in text
    assert "largest difference 0.5" in text
    assert text.endswith(". Keep the factor 2")


def test_close_none_shape_and_type():
    with pytest.raises(AssertionError, match="is None: did the function return"):
        checks.close("f()", None, 1.0)
    with pytest.raises(AssertionError, match=r"should have shape \(2,\), got \(3,\)"):
        checks.close("v", [1, 2, 3], [1, 2])
    with pytest.raises(AssertionError, match="number or an array"):
        checks.close("v", {"a": 1}, 1.0)
    with pytest.raises(AssertionError):
        checks.close("v", np.nan, 1.0)


def test_close_summarizes_large_arrays():
    with pytest.raises(AssertionError, match=r"array of shape \(100,\)"):
        checks.close("w", np.zeros(100), np.ones(100))


def test_below_above_between():
    checks.below("cost", 0.01, 0.05)
    checks.above("lr", 0.1, 0.0)
    checks.between("rate", 0.3, 0.29, 0.31)
    with pytest.raises(AssertionError, match="cost is 0.07, but should be below 0.05. Try a larger learning rate"):
        checks.below("cost", 0.07, 0.05, hint="try a larger learning rate")
    with pytest.raises(AssertionError, match="should be above 0"):
        checks.above("lr", -0.1, 0.0)
    with pytest.raises(AssertionError, match="between 0.29 and 0.31"):
        checks.between("rate", 0.5, 0.29, 0.31)
    with pytest.raises(AssertionError, match="nan or inf"):
        checks.below("cost", float("inf"), 1.0)  # a diverged run is not "below" anything


def test_equal():
    checks.equal("pair", (4, 2), (4, 2))
    checks.equal("idx", np.arange(3), np.arange(3))
    with pytest.raises(AssertionError, match=r"pair is \(5, 2\), expected \(4, 2\)"):
        checks.equal("pair", (5, 2), (4, 2))
    with pytest.raises(AssertionError):
        checks.equal("idx", np.arange(4), np.arange(3))


def test_passed_prints_the_line(capsys):
    checks.passed(2, "Well done.")
    checks.passed("3b")
    assert capsys.readouterr().out == "Exercise 2: correct. Well done.\nExercise 3b: correct.\n"


def test_a_wrong_answer_shows_its_message_without_a_traceback_in_a_notebook():
    # A real kernel, as a learner's notebook runs the check cell: IPython renders what the error says of itself.
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "from labkit.course import checks\nchecks.close('slope gradient', 1.0, 2.0, hint='did you multiply by x?')")]
    with pytest.raises(CellExecutionError):
        NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    (error,) = [o for o in nb.cells[0].outputs if o.output_type == "error"]
    assert error.ename == "CheckFailed"
    shown = "\n".join(error.traceback)
    assert "slope gradient is 1, expected 2" in shown and "Did you multiply by x?" in shown
    assert "checks.py" not in shown and "Traceback" not in shown and len(error.traceback) == 1


def test_a_long_array_mismatch_says_where_it_differs():
    got = np.arange(61.0)
    want = got.copy()
    want[7], want[9] = 0.0, 1.0
    for check in (checks.close, checks.equal):
        with pytest.raises(AssertionError) as info:
            check("y", got, want)
        assert "2 of 61 elements differ, the first at index 7: got 7, expected 0" in str(info.value)
