"""`labkit lessons`: run a notebook and store clean outputs; student copies without solutions."""

import ast
from pathlib import Path

import nbformat
import pytest

from labkit import cli
from labkit.errors import LabkitError
from labkit.course.lessons import BEGIN, END, clean, replace_solutions, run, student_copy, write_student_copies

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def test_solution_blocks_are_replaced_with_their_indentation():
    source = f"x = 1\ndef f():\n    {BEGIN}\n    return 42\n    {END}\n{BEGIN}\ny = 2\n{END}\n"
    out = replace_solutions(source, ("return 0", "y = 0"))
    assert out.splitlines() == ["x = 1", "def f():", f"    {BEGIN}", "    return 0", f"    {END}", BEGIN, "y = 0", END]
    assert "42" not in replace_solutions(source) and replace_solutions(source).count("raise NotImplementedError()") == 2


@pytest.mark.parametrize("source", [f"{BEGIN}\nx = 1\n", f"{END}\nx = 1\n{BEGIN}\n", f"{BEGIN}\n{BEGIN}\n{END}\n{END}\n"])
def test_unbalanced_markers_are_refused(source):
    with pytest.raises(LabkitError, match="unbalanced solution markers"):
        replace_solutions(source)


@pytest.mark.parametrize("lesson", sorted(p.name for p in NOTEBOOKS.glob("[0-9]*.ipynb")))
def test_student_copy_keeps_the_checks_and_hides_every_solution(lesson):
    original = nbformat.read(NOTEBOOKS / lesson, as_version=4)
    solutions = [c.source for c in original.cells if c.cell_type == "code" and BEGIN in c.source]
    copy = student_copy(nbformat.read(NOTEBOOKS / lesson, as_version=4))
    assert len(copy.cells) == len(original.cells) and len(solutions) >= 2
    for before, after in zip(original.cells, copy.cells):
        if after.cell_type != "code":
            assert after.source == before.source
            continue
        assert after.outputs == [] and after.execution_count is None  # no stored answer to peek at
        kept = [l for l in before.source.splitlines() if not l.startswith("# NBVAL_")]  # nbval's, not the learner's
        assert not any(l.startswith("# NBVAL_") for l in after.source.splitlines())
        if before.source.startswith("# Check exercise"):
            meta = after.metadata["nbgrader"]
            assert meta["grade"] and meta["locked"] and not meta["solution"] and meta["points"] == 1
            assert meta["grade_id"] == "check-exercise-" + before.source.split()[3]
        if BEGIN not in before.source:
            assert after.source.splitlines() == kept  # check cells and the lesson's own code stay as they are
            continue
        meta = after.metadata["nbgrader"]
        assert meta["solution"] and not meta["grade"] and not meta["locked"] and meta["schema_version"] == 3
        hidden = [l.strip() for l in before.source.split(BEGIN, 1)[1].split(END, 1)[0].splitlines() if l.strip()]
        assert hidden and not any(line in after.source.splitlines() for line in hidden if len(line) > 12)
        assert "raise NotImplementedError()" in after.source
        ast.parse("\n".join(l for l in after.source.splitlines() if not l.lstrip().startswith("%")))
    ids = [c.metadata["nbgrader"]["grade_id"] for c in copy.cells if "nbgrader" in c.metadata]
    assert len(ids) == len(set(ids)) >= 4  # nbgrader refuses a notebook with a grade_id twice


def test_student_copies_never_overwrite_the_lessons(tmp_path, capsys):
    assert cli.main(["lessons", "student", str(NOTEBOOKS), "-o", str(NOTEBOOKS)]) == 2
    assert "would replace the solutions" in capsys.readouterr().err
    assert cli.main(["lessons", "student", str(NOTEBOOKS), "-o", str(tmp_path / "student")]) == 0
    written = sorted(p.name for p in (tmp_path / "student").glob("*.ipynb"))
    assert written == sorted(p.name for p in NOTEBOOKS.glob("[0-9]*.ipynb"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(LabkitError, match="no lesson notebooks"):
        write_student_copies(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(LabkitError, match="no such notebook"):
        write_student_copies(tmp_path / "missing.ipynb", tmp_path / "out")


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nb.cells[0].metadata["scrolled"] = True
    nbformat.write(nb, path)
    return path


def test_run_stores_stdout_in_one_block_and_drops_stderr(tmp_path):
    path = _notebook(tmp_path / "lesson.ipynb",
                     "import sys\nfor i in range(3):\n    print(i, flush=True)\n    print('noise', file=sys.stderr, flush=True)",
                     "from pathlib import Path\nprint(Path.cwd().name)")
    assert run(path) >= 0
    nb = nbformat.read(path, as_version=4)
    assert [o.output_type for o in nb.cells[0].outputs] == ["stream"]
    assert nb.cells[0].outputs[0].name == "stdout" and nb.cells[0].outputs[0].text == "0\n1\n2\n"
    assert nb.cells[1].outputs[0].text == tmp_path.name + "\n"  # runs in the notebook's folder
    assert [c.id for c in nb.cells] == ["cell-00", "cell-01"] and nb.cells[0].metadata == {}
    assert nb.metadata == clean(nbformat.v4.new_notebook()).metadata


def test_a_failing_cell_leaves_the_stored_notebook_alone(tmp_path, capsys):
    path = _notebook(tmp_path / "broken.ipynb", "print('fine')", "1 / 0")
    before = path.read_bytes()
    assert cli.main(["lessons", "run", str(path)]) == 2
    assert "ZeroDivisionError" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_a_cell_that_prints_something_else_on_another_cpu_is_not_stored(tmp_path, capsys):
    # The kernel inherits the profile's environment: a cell printing it stands for a float-training result.
    path = _notebook(tmp_path / "lesson.ipynb", "print('exact: 42')",
                     "import os\nprint('isa', os.environ.get('ONEDNN_MAX_CPU_ISA'))")
    before = path.read_bytes()
    assert cli.main(["lessons", "run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "not portable" in err and "cell 1 (nbval 'Cell 1')" in err and "'stdout: isa None' here" in err and "'stdout: isa AVX2' in the 'avx2' profile" in err
    assert "NBVAL_IGNORE_OUTPUT" in err and "cell 0 " not in err  # the exact cell is not blamed
    assert path.read_bytes() == before


def test_a_marked_cell_with_its_claim_is_stored_and_the_claim_still_runs(tmp_path):
    path = _notebook(tmp_path / "lesson.ipynb", "print('exact: 42')",
                     "# NBVAL_IGNORE_OUTPUT\nimport os\nfrom labkit.course.claims import claim\n"
                     "print('isa', os.environ.get('ONEDNN_MAX_CPU_ISA'))\nclaim('accuracy', 0.9, 0.89, tol=0.02)")
    assert run(path) >= 0
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[1].outputs[0].text == "isa None\n"  # stored from the run on the machine as it is
    broken = _notebook(tmp_path / "broken.ipynb", "# NBVAL_IGNORE_OUTPUT\nfrom labkit.course.claims import claim\n"
                       "claim('accuracy', 0.80, 0.89, tol=0.02)")
    with pytest.raises(LabkitError, match=r"ClaimError.*the lesson says accuracy ≈ 0.89 \(± 0.02\); this run gives 0.8"):
        run(broken, check=())


def test_run_refuses_an_unknown_profile(tmp_path):
    path = _notebook(tmp_path / "lesson.ipynb", "print(1)")
    with pytest.raises(LabkitError, match="unknown profile 'avx512'"):
        run(path, check=("avx512",))


@pytest.mark.parametrize("source, left_alone", [
    ("# NBVAL_IGNORE_OUTPUT\nprint(1)", True),
    ("# Check exercise 3\n  #  NBVAL_SKIP\nprint(1)", True),
    ("# NBVAL_IGNORE_OUTPUT (a float result)\nprint(1)", False),  # nbval needs the marker alone on its line
    ("print('# NBVAL_IGNORE_OUTPUT')", False),
])
def test_the_portability_check_reads_markers_as_nbval_does(source, left_alone):
    from labkit.course.lessons import uncompared

    assert uncompared(source) is left_alone
