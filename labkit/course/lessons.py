"""The lessons as files: run a notebook and store its outputs clean, and make student copies.

``labkit lessons run notebooks/05_cnn.ipynb`` executes a lesson top to bottom in its own folder
(as nbval and JupyterLab do) and stores what it printed and drew, without what differs from run
to run or from machine to machine: stderr, cell metadata, kernel versions. ``make test`` then
re-runs every lesson under nbval and compares with what is stored. Before storing, it runs the
lesson once more as most students' laptops compute (oneDNN held to AVX2, OpenBLAS to Haswell
kernels) and refuses to store a lesson whose compared cells print something else there: a result
of float training belongs in a cell marked ``# NBVAL_IGNORE_OUTPUT`` that asserts what the text
says of it (``labkit.course.claims``), so the stored lesson passes on every CPU.

``labkit lessons student notebooks -o student`` writes the copies handed to learners: every
block between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (the nbgrader convention) replaced
by ``raise NotImplementedError()``, and every output cleared, so that the check cells - which
stay - are what tells the learner whether an answer is right.
"""

from __future__ import annotations

import contextlib
import os
import sys
import re
import textwrap
import time
from pathlib import Path

from labkit.errors import LabkitError
from labkit.fileio import write_atomic

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUDENT_ANSWER = "# YOUR CODE HERE\nraise NotImplementedError()"
METADATA = {  # all a stored lesson keeps: the same on every machine
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def _read(path: Path):
    import nbformat

    try:
        return nbformat.read(path, as_version=4)
    except FileNotFoundError:
        raise LabkitError(f"{path}: no such notebook") from None
    except Exception as e:  # nbformat raises several kinds for a file that is not a notebook
        raise LabkitError(f"{path} is not a readable notebook ({type(e).__name__}: {e})") from None


def _write(nb, path: Path) -> Path:
    import nbformat

    return write_atomic(path, nbformat.writes(nb) + "\n")


def replace_solutions(source: str, answers: str | tuple[str, ...] = STUDENT_ANSWER) -> str:
    """``source`` with each BEGIN/END SOLUTION block's lines replaced by an answer (one for all
    blocks, or one per block), indented as the marker is; the markers stay, as nbgrader keeps them."""
    lines = source.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == BEGIN]
    stops = [i for i, line in enumerate(lines) if line.strip() == END]
    if len(starts) != len(stops) or any(not a < b for a, b in zip(starts, stops)) or \
            any(b > a for b, a in zip(stops, starts[1:])):
        raise LabkitError(f"unbalanced solution markers: every {BEGIN!r} needs its own {END!r} after it")
    answers = (answers,) * len(starts) if isinstance(answers, str) else tuple(answers)
    if len(answers) != len(starts):
        raise LabkitError(f"{len(starts)} solution blocks but {len(answers)} answers")
    for start, stop, text in reversed(list(zip(starts, stops, answers))):
        indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
        body = textwrap.indent(textwrap.dedent(text).strip("\n"), indent).splitlines()
        lines = lines[: start + 1] + body + lines[stop:]
    return "\n".join(lines)


def clean(nb):
    """Drop what differs between runs and machines: stderr streams, cell and kernel metadata;
    number the cells ``cell-00``, ``cell-01``, ... so that a diff of two runs shows only outputs."""
    nb.metadata = {k: dict(v) for k, v in METADATA.items()}
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:02d}"
        cell.metadata = {}
        if cell.cell_type == "code":
            outputs = []
            for o in cell.outputs:
                if o.output_type == "stream" and o.name == "stderr":
                    continue
                if o.output_type == "stream" and outputs and outputs[-1].output_type == "stream":
                    outputs[-1].text += o.text  # one block of text, as JupyterLab shows it
                else:
                    outputs.append(o)
            cell.outputs = outputs
    return nb


# The CPU profiles a lesson must pass in (README, "Writing a lesson that passes on every CPU"): this
# machine as it is, and the kernels most laptops run - AVX2 for oneDNN, Haswell for OpenBLAS.
# ``make test`` runs the lessons in "native" and "avx2"; "no-onednn" is TensorFlow's plain path.
PROFILES: dict[str, dict[str, str]] = {
    "native": {},
    "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "OPENBLAS_CORETYPE": "Haswell"},
    "no-onednn": {"TF_ENABLE_ONEDNN_OPTS": "0"},
}
UNCOMPARED = ("NBVAL_IGNORE_OUTPUT", "NBVAL_SKIP", "NBVAL_RAISES_EXCEPTION")
UNCOMPARED_LINES = {f"# {marker}" for marker in UNCOMPARED}
_NOT_TEXT = ("image/png", "image/jpeg", "application/vnd.jupyter.widget-view+json")  # nbval skips these too


@contextlib.contextmanager
def _environment(changes: dict[str, str]):
    """``os.environ`` with ``changes`` while the kernel starts (it inherits them), restored after."""
    saved = {k: os.environ.get(k) for k in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _execute(nb, folder: Path, timeout: float, profile: str, name: str):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
    try:
        with _environment(PROFILES[profile]):
            client.execute()
    except CellExecutionError as e:
        where = "" if profile == "native" else f" in the {profile!r} profile ({_describe(profile)})"
        raise LabkitError(f"{name}: a cell failed{where}, so the stored notebook was left as it was:\n{e}") from None
    return clean(nb)


def _describe(profile: str) -> str:
    return " ".join(f"{k}={v}" for k, v in PROFILES[profile].items()) or "the machine as it is"


def compared_text(cell) -> list[str]:
    """What nbval compares of a code cell's outputs: every output's text, images and widget ids left out."""
    out = []
    for o in cell.get("outputs", []):
        if o.output_type == "stream":
            out.append(f"{o.name}: {o.text}")
        elif o.output_type in ("execute_result", "display_data"):
            out.extend(f"{k}: {v if isinstance(v, str) else ''.join(v)}" for k, v in sorted(o.data.items()) if k not in _NOT_TEXT)
        elif o.output_type == "error":
            out.append(f"error: {o.ename}: {o.evalue}")
    return out


def uncompared(source: str) -> bool:
    """Whether nbval leaves a cell's outputs alone: a comment line that is exactly one of its markers."""
    return any(line.strip().startswith("#") and line.strip().lstrip("#").strip() in UNCOMPARED
               for line in source.splitlines())


def portability_problems(stored, other, profile: str) -> list[str]:
    """The compared cells of two runs of one lesson that differ, one line each, naming the cell."""
    problems, k = [], -1
    for i, (a, b) in enumerate(zip(stored.cells, other.cells)):
        if a.cell_type != "code":
            continue
        k += 1
        if uncompared(a.source):
            continue
        left, right = compared_text(a), compared_text(b)
        if left != right:
            la = "\n".join(left).splitlines() or [""]
            lb = "\n".join(right).splitlines() or [""]
            j = next((n for n, (x, y) in enumerate(zip(la, lb)) if x != y), min(len(la), len(lb)))
            got = lambda lines: repr(lines[j][:100]) if j < len(lines) else "nothing more"  # noqa: E731
            problems.append(f"cell {i} (nbval 'Cell {k}'): prints {got(la)} here, {got(lb)} in the {profile!r} profile")
    return problems


def run(path: str | os.PathLike, timeout: float = 900, check: tuple[str, ...] = ("avx2",)) -> float:
    """Execute the notebook at ``path`` in its folder, store its cleaned outputs in place; the
    seconds it took. Each profile in ``check`` runs it once more: a compared cell that prints
    something else there refuses the store, naming the cells. A cell that raises stops the run;
    in either case nothing is written."""
    path = Path(path).resolve()
    unknown = [p for p in check if p not in PROFILES]
    if unknown:
        raise LabkitError(f"unknown profile {unknown[0]!r}: choose from {', '.join(PROFILES)}")
    start = time.monotonic()
    nb = _execute(_read(path), path.parent, timeout, "native", path.name)
    seconds = time.monotonic() - start
    for profile in check:
        problems = portability_problems(nb, _execute(_read(path), path.parent, timeout, profile, path.name), profile)
        if problems:
            raise LabkitError(
                f"{path.name} is not portable, so the stored notebook was left as it was: {len(problems)} compared "
                f"cell(s) print something else with {_describe(profile)}:\n  " + "\n  ".join(problems) +
                "\nA result of float training goes in a cell that starts with '# NBVAL_IGNORE_OUTPUT' and asserts what "
                "the text says of it with labkit.course.claims.claim/holds (README: 'Writing a lesson that passes on every CPU').")
    _write(nb, path)
    return seconds


def _nbgrader(grade_id: str, solution: bool = False, points: int | None = None) -> dict:
    """nbgrader's cell metadata (schema 3): an answer cell the learner edits, or a locked, graded test."""
    meta = {"grade": points is not None, "grade_id": grade_id, "locked": not solution, "schema_version": 3,
            "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def student_copy(nb):
    """The learner's copy of a lesson: solutions replaced, outputs and execution counts cleared,
    nbval's markers removed (they are for the lesson's tests, not the learner), and nbgrader's
    metadata on the exercises: each solution cell an answer cell, each check cell a locked test
    worth one point (``# Check exercise N``), so that ``nbgrader`` can release and grade them."""
    roles = []
    for cell in nb.cells:
        role = None
        if cell.cell_type == "code":
            if any(line.strip() == BEGIN for line in cell.source.splitlines()):
                cell.source = replace_solutions(cell.source)
                role = "solution"
            check = re.match(r"# Check exercise (\d+)\b", cell.source)
            if check:
                role = f"check-exercise-{check.group(1)}"
            cell.source = "\n".join(line for line in cell.source.splitlines() if line.strip() not in UNCOMPARED_LINES)
            cell.outputs, cell.execution_count = [], None
        roles.append(role)
    nb = clean(nb)
    solutions = 0
    for i, (cell, role) in enumerate(zip(nb.cells, roles)):
        if role == "solution":
            solutions += 1
            following = next((r for r in roles[i + 1:] if r is not None), "")
            exercise = following.replace("check-", "") + "-" if following.startswith("check-") else ""
            cell.metadata = _nbgrader(f"{exercise}answer-{solutions}", solution=True)  # unique in the notebook
        elif role is not None:
            cell.metadata = _nbgrader(role, points=1)
    return nb


def write_student_copies(source: str | os.PathLike, out: str | os.PathLike) -> list[Path]:
    """Student copies of a notebook, or of every ``*.ipynb`` in a folder, written into ``out``."""
    source, out = Path(source), Path(out)
    paths = sorted(source.glob("[0-9]*.ipynb")) if source.is_dir() else [source]
    if not paths:
        raise LabkitError(f"{source} holds no lesson notebooks (NN_name.ipynb)")
    if out.resolve() in {p.parent.resolve() for p in paths}:
        raise LabkitError(f"-o {out} is the lessons' own folder: student copies would replace the solutions")
    return [_write(student_copy(_read(p)), out / p.name) for p in paths]


# ---- the command line -------------------------------------------------------------------------


def _run_command(args) -> int:
    check = () if args.no_check else tuple(args.check)
    for nb in args.notebooks:
        also = f", then again in {', '.join(repr(p) for p in check)} to check it is portable" if check else ""
        print(f"{nb}: running{also} ...", file=sys.stderr, flush=True)
        print(f"{nb}: stored, {run(nb, timeout=args.timeout, check=check):.0f} s")
    return 0


def _student_command(args) -> int:
    for path in write_student_copies(args.source, args.out):
        print(f"wrote {path}")
    return 0


def _book_command(args) -> int:
    from labkit.course.book import build_book  # Sphinx is imported only for the book

    started = time.monotonic()
    index = build_book(args.out, args.source, args.instructor, force=args.force)
    print(f"wrote {index} ({time.monotonic() - started:.0f} s); open it in a browser, no server or network needed")
    return 0


def register(sub) -> None:
    p = sub.add_parser("lessons", help="run lessons and store their outputs; write student copies; render the book")
    lsub = p.add_subparsers(dest="lessons_command", required=True)
    r = lsub.add_parser("run", help="execute notebooks top to bottom and store their outputs, cleaned")
    r.add_argument("notebooks", nargs="+", help="lesson notebooks (.ipynb)")
    r.add_argument("--timeout", type=float, default=900, help="seconds one cell may take (default: 900)")
    r.add_argument("--check", nargs="+", choices=[p for p in PROFILES if p != "native"], default=["avx2"],
                   help="profiles to run it in again before storing; a compared cell that differs there refuses the "
                        "store (default: avx2 = ONEDNN_MAX_CPU_ISA=AVX2 OPENBLAS_CORETYPE=Haswell)")
    r.add_argument("--no-check", action="store_true", help="store after one run, without the portability check")
    r.set_defaults(func=_run_command)
    s = lsub.add_parser("student", help="copies without solutions and outputs, for learners")
    s.add_argument("source", help="a lesson notebook, or a folder of them (notebooks/)")
    s.add_argument("-o", "--out", required=True, help="folder for the copies (not the lessons' own)")
    s.set_defaults(func=_student_command)
    b = lsub.add_parser("book", help="the lessons as they are stored, and the instructor kit, as a static HTML site")
    b.add_argument("source", nargs="?", default="notebooks", help="the folder of lessons (default: notebooks)")
    b.add_argument("-o", "--out", required=True, help="folder for the site (new, empty, or an earlier book)")
    b.add_argument("--instructor", default="instructor",
                   help="folder of the instructor kit's markdown pages (default: instructor; left out if missing)")
    b.add_argument("--force", action="store_true", help="replace an earlier book even if files in it were changed")
    b.set_defaults(func=_book_command)
