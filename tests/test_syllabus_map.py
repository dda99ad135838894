"""instructor/map.md: the committed map is what instructor/syllabus.yml and the lessons give today, every
section it names is a heading in the cell it says, and a renamed section or a newly taught topic stops
the generator with a message that names the fix."""

import importlib.util
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from labkit.errors import LabkitError

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("syllabus_map", ROOT / "scripts" / "syllabus_map.py")
sm = importlib.util.module_from_spec(_spec)
sys.modules["syllabus_map"] = sm  # before running it: its dataclasses look their module up
_spec.loader.exec_module(sm)

REGENERATE = "instructor/map.md is out of date: run `python scripts/syllabus_map.py` and commit the result"


def test_the_committed_map_is_what_the_table_and_the_lessons_give():
    assert (ROOT / "instructor" / "map.md").read_text(encoding="utf-8") == sm.build(), REGENERATE


def test_every_section_the_map_names_is_a_heading_in_the_cell_it_gives():
    """Read back from map.md itself, checked against the notebooks with nbformat (not the script's parser)."""
    text = (ROOT / "instructor" / "map.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| .+? \| \[(\d\d[a-z]?)\]\(\.\./notebooks/([^)#]+)\) \| (\d+) \| \[(.+?)\]\(\.\./notebooks/([^)#]+)#([^)]*)\) \| "
                      r"(taught|partly: .+?) \|$", text, re.MULTILINE)
    taught = len(re.findall(r"\| taught \|$", text, re.MULTILINE))
    partly = len(re.findall(r"\| partly: ", text))
    assert len(rows) == taught + partly and taught > 50, "every taught or partly row names a lesson, cell and section"
    notebooks = {}
    for number, name, cell, heading, name_again, anchor in (r[:6] for r in rows):
        assert name == name_again and name.startswith(number + "_")
        if name not in notebooks:
            notebooks[name] = nbformat.read(ROOT / "notebooks" / name, as_version=4)
        cells = notebooks[name].cells
        assert int(cell) < len(cells) and cells[int(cell)].cell_type == "markdown", (name, cell)
        lines = [line.lstrip("#").strip() for line in cells[int(cell)].source.splitlines() if line.startswith("#")]
        shown = heading.replace("\\|", "|")
        assert shown in lines, f"{name} cell {cell} has no heading {shown!r} (its headings: {lines})"
        assert anchor and re.fullmatch(r"[\w\-]+", anchor), f"the book's anchor for {shown!r}: {anchor!r}"


def test_the_not_yet_topics_name_their_issue():
    text = (ROOT / "instructor" / "map.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| ") and "not yet" in line.split(" | ")[-1]]
    # every topic may be taught one day: then no row says "not yet", and the count says 0
    assert len(rows) == int(re.search(r"\*\*(\d+) not yet\*\* in a lesson", text).group(1))
    for row in rows:
        assert row.endswith(("| not yet (issue 17) |", "| not yet (the capstone issue 16) |")), row
        assert " | — | — | — | " in row, row
    # the capstone (issue 16) is lesson 12 now: its row points at the lesson, and no topic waits for it
    assert re.search(r"^\| The capstone project \| \[12\]\(\.\./notebooks/12_capstone\.ipynb\) .* \| taught \|$", text,
                     re.MULTILINE)


def test_check_mode_agrees_with_the_committed_map():
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "syllabus_map.py"), "--check"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr or REGENERATE


# A one-lesson course in a temporary folder: what the generator does with a stale table.

def _lesson(folder: Path, headings: list[str]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# 01 — A lesson\n\n**Estimated time:** 10 minutes")]
    for h in headings:
        nb.cells += [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_markdown_cell(f"## {h}\n\nText.")]
    folder.mkdir(exist_ok=True)
    nbformat.write(nb, folder / "01_a_lesson.ipynb")


def _table(path: Path, topics: str) -> Path:
    path.write_text("days:\n  - day: 1\n    title: One\n    modules:\n      - module: M\n        topics:\n"
                    + textwrap.indent(textwrap.dedent(topics), " " * 10), encoding="utf-8")
    return path


def test_a_renamed_section_stops_the_map_and_lists_the_lessons_headings(tmp_path):
    _lesson(tmp_path / "nb", ["1. Gradient descent", "2. The learning rate, renamed"])
    table = _table(tmp_path / "t.yml", """\
        - topic: The learning rate
          status: taught
          lesson: "01"
          heading: 2. The learning rate
        """)
    with pytest.raises(LabkitError) as e:
        sm.build(table, tmp_path / "nb")
    message = str(e.value)
    assert "'The learning rate'" in message and "'2. The learning rate' is not a heading of 01_a_lesson.ipynb" in message
    assert "cell 4: ## 2. The learning rate, renamed" in message  # what the lesson has, with its cell


def test_the_map_gives_the_cell_of_the_heading(tmp_path):
    _lesson(tmp_path / "nb", ["1. Gradient descent", "2. The learning rate"])
    table = _table(tmp_path / "t.yml", """\
        - topic: The learning rate
          status: taught
          lesson: "01"
          heading: 2. The learning rate
        """)
    text = sm.build(table, tmp_path / "nb")
    assert ("| The learning rate | [01](../notebooks/01_a_lesson.ipynb) | 4 | "
            "[2. The learning rate](../notebooks/01_a_lesson.ipynb#2-the-learning-rate) | taught |") in text
    # the section no topic names is listed, so a new section cannot go unnoticed either
    assert "| [01](../notebooks/01_a_lesson.ipynb) 01 — A lesson | 2: 1. Gradient descent |" in text


def test_a_not_yet_topic_that_a_lesson_now_teaches_stops_the_map(tmp_path):
    _lesson(tmp_path / "nb", ["1. Gradient descent", "2. Momentum and Adam"])
    table = _table(tmp_path / "t.yml", """\
        - topic: Momentum and Adam
          status: not yet
          issue: 17
          watch: ["momentum"]
        """)
    with pytest.raises(LabkitError) as e:
        sm.build(table, tmp_path / "nb")
    message = str(e.value)
    assert "marked 'not yet'" in message and "the heading '2. Momentum and Adam' (cell 4;" in message
    assert 'lesson: "01"' in message and '`heading: "2. Momentum and Adam"`' in message


def test_a_not_yet_topic_taught_in_a_paragraph_is_found_by_its_text_pattern(tmp_path):
    _lesson(tmp_path / "nb", ["1. Gradient descent", "2. The learning rate"])
    nb = nbformat.read(tmp_path / "nb" / "01_a_lesson.ipynb", as_version=4)
    nb.cells[4].source += "\n\nThe model is our *hypothesis* about the data."
    nbformat.write(nb, tmp_path / "nb" / "01_a_lesson.ipynb")
    table = _table(tmp_path / "t.yml", """\
        - topic: The word "hypothesis"
          status: not yet
          issue: 17
          watch: ["hypothes"]
          watch_text: ["\\\\bhypothes"]
        """)
    with pytest.raises(LabkitError) as e:
        sm.build(table, tmp_path / "nb")
    assert "lesson 01 cell 4 (in the section '2. The learning rate') mentions it" in str(e.value)


def test_every_problem_of_the_table_is_reported_at_once(tmp_path):
    _lesson(tmp_path / "nb", ["1. Gradient descent", "2. Momentum and Adam"])
    table = _table(tmp_path / "t.yml", """\
        - topic: Gradient descent
          status: taught
          lesson: "01"
          heading: 1. Gradient descent, renamed
        - topic: Momentum
          status: not yet
          issue: 17
          watch: ["momentum"]
        """)
    with pytest.raises(LabkitError) as e:
        sm.build(table, tmp_path / "nb")
    message = str(e.value)
    assert message.startswith("2 problem(s) in the syllabus table")
    assert "'Gradient descent'" in message and "'Momentum' is marked 'not yet'" in message


def test_a_split_lesson_05b_is_a_lesson_of_its_own(tmp_path):
    """Lesson 05 was split into 05 and 05b: 05b_*.ipynb has its own number, map rows and sections."""
    _lesson(tmp_path / "nb", ["1. Convolution"])
    (tmp_path / "nb" / "01_a_lesson.ipynb").rename(tmp_path / "nb" / "05_cnn.ipynb")
    _lesson(tmp_path / "nb", ["1. Batch normalisation", "2. Detectors"])
    (tmp_path / "nb" / "01_a_lesson.ipynb").rename(tmp_path / "nb" / "05b_cnn_architectures.ipynb")
    # not lessons: three digits, or a number with two letters
    for name in ("123_extra.ipynb", "05bb_extra.ipynb"):
        (tmp_path / "nb" / name).write_bytes((tmp_path / "nb" / "05_cnn.ipynb").read_bytes())
    assert list(sm.read_lessons(tmp_path / "nb")) == ["05", "05b"]
    table = _table(tmp_path / "t.yml", """\
        - topic: Batch normalisation
          status: taught
          lesson: "05b"
          heading: 1. Batch normalisation
        - topic: Object detection
          status: not yet
          issue: 17
          watch: ["detector"]
        """)
    with pytest.raises(LabkitError) as e:  # a heading of 05b teaches a 'not yet' topic: found like any other
        sm.build(table, tmp_path / "nb")
    assert '`lesson: "05b"`, `heading: "2. Detectors"`' in str(e.value)
    table.write_text(table.read_text().split("        - topic: Object")[0])
    text = sm.build(table, tmp_path / "nb")
    assert ("| Batch normalisation | [05b](../notebooks/05b_cnn_architectures.ipynb) | 2 | [1. Batch normalisation]"
            "(../notebooks/05b_cnn_architectures.ipynb#1-batch-normalisation) | taught |") in text
    assert "| [05b](../notebooks/05b_cnn_architectures.ipynb) 01 — A lesson | 4: 2. Detectors |" in text
    assert "Every topic has a lesson section that teaches it" in text  # no 'partly' or 'not yet' left


@pytest.mark.parametrize("topic, complaint", [
    ('- topic: T\n  status: taught\n  lesson: "01"\n', "needs `lesson: \"NN\"`"),
    ('- topic: T\n  status: taught\n  lesson: 1\n  heading: 1. Gradient descent\n', "needs `lesson: \"NN\"`"),
    ('- topic: T\n  status: taught\n  lesson: "1b"\n  heading: 1. Gradient descent\n', "needs `lesson: \"NN\"`"),
    ("- topic: T\n  status: not yet\n  watch: [x]\n", "needs `issue:` 16 or 17"),
    ("- topic: T\n  status: not yet\n  issue: 17\n", "needs `watch:` patterns"),
    ('- topic: T\n  status: partly\n  lesson: "01"\n  heading: 1. Gradient descent\n  issue: 17\n  watch: [x]\n',
     "needs `missing:`"),
    ("- topic: T\n  status: done\n", "status 'done' is not one of taught, partly, not yet"),
    ('- topic: T\n  status: taught\n  lesson: "01"\n  heading: 1. Gradient descent\n  lessons: "02"\n',
     "unknown field(s) lessons"),
    ("- topic: T\n  status: not yet\n  issue: 17\n  watch: ['(']\n", "is not a regular expression"),
    ('- topic: T\n  status: taught\n  lesson: "07"\n  heading: 1. Gradient descent\n', "there is no lesson 07"),
])
def test_a_malformed_table_is_refused_with_the_reason(tmp_path, topic, complaint):
    _lesson(tmp_path / "nb", ["1. Gradient descent"])
    with pytest.raises(LabkitError, match=re.escape(complaint)):
        sm.build(_table(tmp_path / "t.yml", topic), tmp_path / "nb")


def test_the_cli_prints_one_line_and_exits_2_on_a_broken_table(tmp_path, monkeypatch, capsys):
    _lesson(tmp_path / "nb", ["1. Gradient descent"])
    monkeypatch.setattr(sm, "TABLE", _table(tmp_path / "t.yml", "- topic: T\n  status: done\n"))
    monkeypatch.setattr(sm, "NOTEBOOKS", tmp_path / "nb")
    monkeypatch.setattr(sm, "MAP", tmp_path / "map.md")
    assert sm.main([]) == 2
    assert capsys.readouterr().err.startswith("syllabus_map: error: ")
    assert not (tmp_path / "map.md").exists()


def test_the_anchors_are_the_ones_the_book_gives_the_headings():
    """The book (Sphinx + MyST, myst_heading_anchors) ids a heading by MyST's GitHub-style slug."""
    slugs = pytest.importorskip("myst_parser.slugs")
    lessons = sm.read_lessons(ROOT / "notebooks")
    checked = 0
    for lesson in lessons.values():
        used = set()
        for h in lesson.headings:
            if h.level > 3:
                continue
            expected = slugs.unique_slug(slugs.github_slugify(h.text.replace("`", "").replace("*", "")), used)
            used.add(expected)
            assert h.anchor == expected, (lesson.path.name, h.text)
            checked += 1
    assert checked > 150
    assert sm._slug("Use `to_int8_tflite` — **now**") == "use-to_int8_tflite--now"
