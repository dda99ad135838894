"""The exercises of lessons 01-04: every check cell passes the stored solution and fails wrong answers.

The check cells are read from the notebooks themselves, so this test follows the lessons when they
change. Each exercise runs in a small namespace built from the notebook's own set-up cells (found by
their content, not their position), without running the whole lesson; then

- the stored solution followed by the check cell must pass, and
- each wrong answer — typical mistakes, put between ``### BEGIN SOLUTION`` / ``### END SOLUTION`` in
  place of the solution — must make the check raise ``AssertionError`` with a helpful message.

The structural tests check what every lesson must have: objectives and an estimated time at the
top, a recap at the end, at least two exercises each followed by its check, and stored outputs
without stderr, timings or paths.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
import textwrap
import types
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import pytest  # noqa: E402

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
LESSONS = {
    "01": "01_ml_to_dl.ipynb",
    "02": "02_gradient_descent.ipynb",
    "03": "03_neural_networks.ipynb",
    "04": "04_overfitting_regularization.ipynb",
}
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


# --- reading the notebooks ----------------------------------------------------------------------


def notebook(lesson: str):
    return nbformat.read(NOTEBOOKS / LESSONS[lesson], as_version=4)


def python(cell) -> str:
    """A code cell's source without IPython magics (``%matplotlib inline``)."""
    return "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith("%"))


def code_cell(nb, marker: str):
    """The one code cell whose source contains ``marker``."""
    found = [c for c in nb.cells if c.cell_type == "code" and marker in c.source]
    assert len(found) == 1, f"expected one code cell containing {marker!r}, found {len(found)}"
    return found[0]


def exercises(nb) -> dict[int, tuple[str, str]]:
    """Exercise number -> (solution cell source, check cell source)."""
    cells = [c for c in nb.cells if c.cell_type == "code"]
    found = {}
    for i, cell in enumerate(cells):
        if BEGIN in cell.source:
            assert i + 1 < len(cells), "a solution cell must be followed by its check cell"
            check = cells[i + 1].source
            match = re.match(r"# Check exercise (\d+)\n", check)
            assert match, f"the cell after a solution must start with '# Check exercise N', got {check[:40]!r}"
            found[int(match.group(1))] = (python(cell), python(cells[i + 1]))
    return found


def run(source: str, ns: dict) -> dict:
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(source, "<lesson cell>", "exec"), ns)  # noqa: S102 - the lessons' own code
    plt.close("all")
    return ns


def run_defs(source: str, ns: dict, *names: str) -> dict:
    """Run only the top-level statements of a cell that define ``names`` (functions, assignments)."""
    tree = ast.parse(source)
    keep = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in names:
            keep.append(node)
        elif isinstance(node, ast.Assign):
            targets = {n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)}
            if targets & set(names):
                keep.append(node)
    assert keep, f"none of {names} is defined at the top level of the cell"
    return run(ast.unparse(ast.Module(body=keep, type_ignores=[])), ns)


def with_answer(solution: str, answer: str | tuple[str, ...]) -> str:
    """The solution cell with each BEGIN/END SOLUTION block replaced by an answer (one per block)."""
    answers = (answer,) if isinstance(answer, str) else tuple(answer)
    lines = solution.splitlines()
    starts = [i for i, line in enumerate(lines) if BEGIN in line]
    stops = [i for i, line in enumerate(lines) if END in line]
    assert len(starts) == len(stops) == len(answers), f"{len(starts)} solution blocks, {len(answers)} answers"
    for start, stop, text in reversed(list(zip(starts, stops, answers))):
        indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
        body = textwrap.indent(textwrap.dedent(text).strip("\n"), indent).splitlines()
        lines = lines[: start + 1] + body + lines[stop:]
    return "\n".join(lines)


# --- the namespace each exercise needs ---------------------------------------------------------


def setup_01(nb, number):
    ns = run(python(code_cell(nb, "import labkit  # first")), {})
    run(python(code_cell(nb, "wine = datasets.load_wine()")), ns)
    if number == 2:
        run(exercises(nb)[1][0], ns)  # the split of exercise 1
        run(python(code_cell(nb, "from sklearn.tree import DecisionTreeClassifier")), ns)
    return ns


def setup_02(nb, number):
    ns = run(python(code_cell(nb, "import labkit  # first")), {})
    run(python(code_cell(nb, "ds = noisy_line(")), ns)
    run_defs(python(code_cell(nb, "START = (")), ns, "START")
    run_defs(python(code_cell(nb, "best_cost = ")), ns, "best_cost")
    return ns


def setup_03(nb, number):
    ns = run(python(code_cell(nb, "import labkit  # first")), {})
    if number == 2:
        run(python(code_cell(nb, "(W1, b1), (W2, b2) = nn.init_params")), ns)
        run(python(code_cell(nb, "dz2 = 2 * (z2 - Y) / n")), ns)
    if number == 3:
        run_defs(python(code_cell(nb, "saddle = gd.BUMPY_SADDLE")), ns, "saddle", "global_min", "local_min")
    return ns


def setup_04(nb, number):
    ns = run(python(code_cell(nb, "import labkit  # first")), {})
    if number == 2:  # a Keras-like history: best at epoch 3, then 100 epochs without improvement
        curve = [0.5, 0.4, 0.3] + [0.31] * 100
        ns.update(history_es=types.SimpleNamespace(history={"val_loss": curve}), val_es=curve, best_epoch=3)
    if number == 3:
        run_defs(python(code_cell(nb, "def run_many(")), ns, "run_many")
    return ns


SETUP = {"01": setup_01, "02": setup_02, "03": setup_03, "04": setup_04}

# Wrong answers: (lesson, exercise) -> [(answer replacing the solution, words expected in the message)]
WRONG = {
    ("01", 1): [
        ("idx = np.arange(len(y))\nreturn idx[:106], idx[106:142], idx[142:]", "stratify"),
        ("idx = np.arange(len(y))\n"
         "rest, test = train_test_split(idx, test_size=0.2, stratify=y)\n"
         "train, val = train_test_split(rest, test_size=0.25, stratify=y[rest])\n"
         "return train, val, test", "random_state"),
        ("idx = np.arange(len(y))\nreturn idx, idx[:36], idx[:36]", "size of the training set"),
    ],
    ("01", 2): [
        ("val_acc = {d: DecisionTreeClassifier(max_depth=d, random_state=0).fit(x_tr, y_tr).score(x_tr, y_tr)\n"
         "           for d in range(1, 9)}\nbest_depth = 3", "training"),
        ("val_acc = {d: DecisionTreeClassifier(max_depth=d, random_state=0).fit(x_tr, y_tr).score(x_va, y_va)\n"
         "           for d in range(1, 9)}\nbest_depth = 8", "best_depth"),
        ("val_acc = {d: DecisionTreeClassifier(max_depth=d, random_state=0).fit(x_tr, y_tr).score(x_va, y_va)\n"
         "           for d in range(1, 6)}\nbest_depth = 3", "depths 1, 2, ..., 8"),
    ],
    ("01", 3): [
        ("raw_bytes_per_hour = 119 * 6 * 3600\nlabel_bytes_per_hour = 360", "bytes per value"),
        ("raw_bytes_per_hour = 119 * 6 * 4 * 3600\nlabel_bytes_per_hour = 3600", "360 gestures"),
    ],
    ("02", 1): [
        ("err = slope * x + offset - y\nreturn np.mean(err * x), np.mean(err)", "factor 2"),
        ("err = slope * x + offset - y\nreturn 2 * np.mean(err), 2 * np.mean(err)", "times x"),
        ("err = y - slope * x - offset\nreturn 2 * np.mean(err * x), 2 * np.mean(err)", "expected"),
    ],
    ("02", 2): [
        ("my_lr = 0.01", "too slowly"),
        ("my_lr = 0.5", "too large"),
        ("my_lr = -0.1", "positive"),
        ("my_lr = '0.3'", "number"),
    ],
    ("02", 3): [
        ("order = np.arange(len(x))\n"
         "for first in range(0, len(x), batch_size):\n"
         "    idx = order[first:first + batch_size]\n"
         "    d_slope, d_offset = gd.mse_grad(x[idx], y[idx], slope, offset)\n"
         "    slope, offset = slope - lr * d_slope, offset - lr * d_offset\n"
         "return slope, offset", "rng.permutation"),
        ("d_slope, d_offset = gd.mse_grad(x, y, slope, offset)\n"
         "return slope - lr * d_slope, offset - lr * d_offset", "batch_size = 10"),
        ("order = rng.permutation(len(x))\n"
         "for first in range(0, len(x) - batch_size + 1, batch_size):\n"
         "    idx = order[first:first + batch_size]\n"
         "    d_slope, d_offset = gd.mse_grad(x[idx], y[idx], slope, offset)\n"
         "    slope, offset = slope - lr * d_slope, offset - lr * d_offset\n"
         "return slope, offset", "smaller last one"),
    ],
    ("03", 1): [
        (("return np.maximum(z, 0.0)", "return np.where(z > 0, 1.0, 0.1)"), "not set to 0"),
        (("return np.where(z > 0, z, 0.1 * z)", "return np.ones_like(z)"), "leaky_relu_prime"),
        (("return np.where(z > 0, z, 0.1 * z)", "return 1.0"), "shape"),
    ],
    ("03", 2): [
        ("da1 = dz2 @ W2.T\ndz1 = da1\ndW1 = X.T @ dz1\ndb1 = dz1.sum(axis=0)", "skipped the ReLU"),
        ("da1 = dz2 @ W2.T\ndz1 = da1 * (z1 > 0)\ndW1 = dz1.T @ X\ndb1 = dz1.sum(axis=0)", "shape"),
        ("da1 = dz2 @ W2.T\ndz1 = da1 * (z1 > 0)\ndW1 = X.T @ dz1\ndb1 = dz1.sum(axis=1)", "shape"),
    ],
    ("03", 3): [
        ("my_lr = 0.1\nmy_noise = 0.5", "more noise"),
        ("my_lr = 1.0\nmy_noise = 5.0", "at most 0.3"),
        ("my_lr = 0.1\nmy_noise = 0.0", "more noise"),
    ],
    ("04", 1): [
        ("keep = rng.random(a.shape) >= rate\nreturn np.where(keep, a, 0.0)", "divide the survivors"),
        ("keep = rng.random(a.shape) < rate\nreturn np.where(keep, a / (1 - rate), 0.0)", "probability rate"),
        ("keep = rng.random(a.shape) >= rate\nreturn np.where(keep, a / (1 - rate), 0.0)", "inference"),
    ],
    ("04", 2): [
        ("best, best_epoch = np.inf, 0\n"
         "for epoch, loss in enumerate(val_losses, start=1):\n"
         "    if loss <= best:\n"
         "        best, best_epoch = loss, epoch\n"
         "    elif epoch - best_epoch >= patience:\n"
         "        return epoch, best_epoch\n"
         "return len(val_losses), best_epoch", "strictly lower"),
        ("best, best_epoch = np.inf, 0\n"
         "for epoch, loss in enumerate(val_losses, start=1):\n"
         "    if loss < best:\n"
         "        best, best_epoch = loss, epoch\n"
         "    elif epoch - best_epoch > patience:\n"
         "        return epoch, best_epoch\n"
         "return len(val_losses), best_epoch", "2 + patience"),
        ("i = int(np.argmin(val_losses))\nreturn len(val_losses), i", "expected"),
    ],
    ("04", 3): [
        ("my_l2 = 0.0\nmy_dropout = 0.0", "regularize more"),
        ("my_l2 = 0.5\nmy_dropout = 0.0", "use less"),
        ("my_l2 = 0.0\nmy_dropout = 1.5", "fraction"),
    ],
}


def cases():
    for (lesson, number), wrongs in WRONG.items():
        yield pytest.param(lesson, number, wrongs, id=f"{lesson}-exercise{number}")


@pytest.mark.parametrize("lesson, number, wrongs", list(cases()))
def test_check_passes_solution_and_fails_wrong_answers(lesson, number, wrongs):
    nb = notebook(lesson)
    solution, check = exercises(nb)[number]

    ns = SETUP[lesson](nb, number)
    run(solution, ns)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(check, "<check cell>", "exec"), ns)  # noqa: S102
    assert f"Exercise {number}: correct." in out.getvalue()

    for answer, words in wrongs:
        ns = SETUP[lesson](nb, number)
        wrong = with_answer(solution, answer)
        assert wrong != solution
        try:
            run(wrong, ns)
        except Exception as exc:  # noqa: BLE001 - a wrong answer may already fail here; the check is what we test
            pytest.fail(f"the wrong answer {answer!r} should reach the check cell, but raised {exc!r}")
        with pytest.raises(AssertionError) as info:
            run(check, ns)
        assert words in str(info.value), f"for {answer!r} the message should mention {words!r}: {info.value}"


def test_every_wrong_answer_table_entry_matches_an_exercise():
    for lesson in LESSONS:
        numbers = sorted(exercises(notebook(lesson)))
        assert numbers == list(range(1, len(numbers) + 1)), f"lesson {lesson}: exercises numbered {numbers}"
        assert len(numbers) >= 2, f"lesson {lesson} needs at least two exercises"
        for number in numbers:
            assert (lesson, number) in WRONG, f"lesson {lesson} exercise {number} has no wrong answers tested"


# --- what every lesson notebook must have -------------------------------------------------------


@pytest.mark.parametrize("lesson", sorted(LESSONS))
def test_lesson_structure(lesson):
    nb = notebook(lesson)
    first, last = nb.cells[0], nb.cells[-1]
    assert first.cell_type == "markdown" and first.source.startswith(f"# {lesson} — ")
    assert "**Estimated time:**" in first.source and "**After this lesson you will be able to**" in first.source
    assert last.cell_type == "markdown" and "## Recap" in last.source
    imports = next(c for c in nb.cells if c.cell_type == "code")
    assert imports.source.startswith("import labkit  # first"), "import labkit must come first"


@pytest.mark.parametrize("lesson", sorted(LESSONS))
def test_stored_outputs_are_clean_and_checks_passed(lesson):
    nb = notebook(lesson)
    assert nb.metadata == {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for i, cell in enumerate(nb.cells):
        assert cell.id == f"cell-{i:02d}"
        assert cell.metadata == {}
        for out in cell.get("outputs", []):
            assert out.output_type != "error", f"{cell.id} stored an error"
            assert not (out.output_type == "stream" and out.name == "stderr"), f"{cell.id} stored stderr: {out.text!r}"
            text = out.get("text", "") + str(out.get("data", {}).get("text/plain", ""))
            for bad in ("/work/", "/home/", "/tmp/", "ms/step", "s/epoch", "Epoch 1/"):
                assert bad not in text, f"{cell.id} output contains {bad!r}"
    for number, (_, check) in exercises(nb).items():
        cell = next(c for c in nb.cells if c.cell_type == "code" and python(c) == check)
        printed = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        assert f"Exercise {number}: correct." in printed, f"lesson {lesson}: the stored check {number} did not pass"


@pytest.mark.parametrize("lesson", sorted(LESSONS))
def test_solutions_are_marked_for_student_copies(lesson):
    for solution, _ in exercises(notebook(lesson)).values():
        marks = [line.strip() for line in solution.splitlines() if line.strip() in (BEGIN, END)]
        assert marks and marks == [BEGIN, END] * (len(marks) // 2), "BEGIN / END SOLUTION must come in pairs"
        student = with_answer(solution, ("raise NotImplementedError()",) * (len(marks) // 2))
        ast.parse(student)  # the student copy is still valid Python
