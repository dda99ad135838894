"""The house's rule: no toolchain stage imports the course helpers (labkit.course); only the CLI (for
`labkit lessons`) and the lessons do."""

import ast
from pathlib import Path

LABKIT = Path(__file__).resolve().parents[1] / "labkit"


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def test_no_stage_imports_the_course():
    offenders = {}
    for path in LABKIT.rglob("*.py"):
        rel = path.relative_to(LABKIT)
        if rel.parts[0] == "course" or rel.as_posix() == "cli.py":
            continue
        bad = sorted(m for m in _imports(path) if m == "labkit.course" or m.startswith("labkit.course."))
        if bad:
            offenders[rel.as_posix()] = bad
    assert not offenders, f"stages importing course helpers: {offenders}"


def test_the_course_modules_live_in_the_course_package():
    course = {p.stem for p in (LABKIT / "course").glob("*.py")} - {"__init__"}
    assert {"gd", "nn_numpy", "conv", "sequences", "viz", "viz_models", "widgets", "checks", "lessons", "claims",
            "compress_plots"} <= course
    assert not any((LABKIT / f"{m}.py").exists() for m in course)  # no second copy beside the toolchain
