"""The instructor kit's hand-written pages (instructor/*.md) against the repo: every link reaches a page, a
lesson or a lesson's section; every glossary term is in the lesson it names; every "not yet" term is in
no lesson; the schedule quotes each lesson's own estimated time and the README's measured run time."""

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
KIT = ROOT / "instructor"
PAGES = sorted(KIT.glob("*.md"))
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


NUMBER = r"\d\d[a-z]?"  # a lesson's number: "05", or "05b" for the second half of a split lesson


def _lessons() -> dict[str, Path]:
    paths = sorted((ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))
    return {m.group(1): p for p in paths if (m := re.fullmatch(rf"({NUMBER})_.*\.ipynb", p.name))}


def _text(path: Path, markdown_only: bool = False) -> str:
    """A lesson's text without markdown emphasis or code marks, so that **L2** regularization reads as words."""
    cells = nbformat.read(path, as_version=4).cells
    text = "\n".join(c.source for c in cells if c.cell_type == "markdown" or not markdown_only)
    return re.sub(r"\s+", " ", re.sub(r"[*`]", "", text))


def _anchors(path: Path) -> set[str]:
    """The ids the book gives a lesson's headings (levels 1-3): MyST's GitHub-style slugs, made unique."""
    anchors = set()
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "markdown":
            continue
        fenced = False
        for line in cell.source.splitlines():
            if line.lstrip().startswith("```"):
                fenced = not fenced
            m = None if fenced else re.match(r"^(#{1,3})\s+(.*?)\s*$", line)
            if m:
                base = re.sub(r"[^\w\- ]", "", re.sub(r"[`*]", "", m.group(2)).lower().replace(" ", "-"))
                slug, k = base, 1
                while slug in anchors:
                    slug, k = f"{base}-{k}", k + 1
                anchors.add(slug)
    return anchors


def test_the_kit_has_its_pages():
    names = {p.name for p in PAGES}
    assert {"README.md", "map.md", "schedule.md", "glossary.md", "reading.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_reaches_a_page_a_lesson_or_a_section(page):
    text = page.read_text(encoding="utf-8")
    links = LINK.findall(text)
    assert links, f"{page.name} links nowhere"
    for target in links:
        if re.match(r"[a-z]+:", target):  # a web address: the reading list's, checked by hand
            continue
        path, _, anchor = target.partition("#")
        where = (KIT / path).resolve() if path else page
        assert where.exists(), f"{page.name}: the link {target} reaches nothing"
        # the book holds notebooks/ and instructor/ only: a link anywhere else would break it
        assert where.parent in (KIT, ROOT / "notebooks"), f"{page.name}: {target} is outside the book"
        if anchor and where.suffix == ".ipynb":
            assert anchor in _anchors(where), f"{page.name}: {where.name} has no section #{anchor}"


def _glossary_rows(section: int):
    text = (KIT / "glossary.md").read_text(encoding="utf-8")
    table = text.split("\n## ")[section]
    return re.findall(r"^\| \*\*(.+?)\*\* \| (.+?) \| (.+?) \|$", table, re.MULTILINE)


def _key(term: str) -> re.Pattern:
    word = re.sub(r"\s*\(.*?\)", "", term).strip()
    return re.compile(r"(?<![\w-])" + re.escape(word) + r"(?:s|es|e?d|ing)?(?![\w])", re.IGNORECASE)


def test_every_glossary_term_is_in_the_lesson_it_names():
    rows = _glossary_rows(0)
    assert len(rows) > 150
    terms = [t for t, _, _ in rows]
    assert terms == sorted(terms, key=str.lower), "the glossary is in alphabetical order"
    lessons = _lessons()
    texts = {}
    for term, meaning, where in rows:
        assert meaning and len(meaning) < 330, f"{term}: a sentence or two"
        m = re.match(rf"\[({NUMBER})\]\(\.\./notebooks/(.+?)\)", where)
        if m:
            number, name = m.groups()
            assert lessons[number].name == name
            if number not in texts:
                texts[number] = _text(lessons[number])
            assert _key(term).search(texts[number]), f"glossary: {term!r} does not appear in lesson {number}"
        else:
            assert where.startswith("README"), f"{term}: {where}"
            assert _key(term).search((ROOT / "README.md").read_text(encoding="utf-8")), term


def test_the_not_yet_terms_are_in_no_lesson():
    text = (KIT / "glossary.md").read_text(encoding="utf-8")
    assert "\n## Syllabus terms no lesson explains yet\n" in text, "the glossary keeps the section, empty or not"
    rows = _glossary_rows(1)  # none once every syllabus term is taught; each row is checked when there are some
    texts = {n: _text(p, markdown_only=True) for n, p in _lessons().items()}
    for term, _, where in rows:
        assert where == "not yet (issue 17)", (term, where)
        taught = [n for n, t in texts.items() if _key(term).search(t)]
        assert not taught, (f"glossary: {term!r} is marked 'not yet' but lesson(s) {', '.join(taught)} now use it: "
                            "move it to the first table with the lesson that explains it")


def _estimated_minutes(path: Path) -> int:
    first = nbformat.read(path, as_version=4).cells[0].source
    m = re.search(r"\*\*Estimated time:\*\* (\d+) minutes", first)
    assert m, f"{path.name} states no estimated time at its top"
    return int(m.group(1))


def _readme_run_seconds() -> dict[str, int]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return {n: int(s) for n, s in re.findall(rf"^\| ({NUMBER}) [^|]+\| [^|]+\| (\d+) s \|$", readme, re.MULTILINE)}


def test_the_schedule_quotes_each_lessons_estimate_and_measured_run_time():
    text = (KIT / "schedule.md").read_text(encoding="utf-8")
    rows = re.findall(rf"^\| \[({NUMBER})\]\(\.\./notebooks/[^)]+\) [^|]+\| (\d+) min[^|]*\| (\d+) s \|", text, re.MULTILINE)
    lessons, runs = _lessons(), _readme_run_seconds()
    assert sorted(n for n, _, _ in rows) == sorted(lessons), "one row per lesson in the schedule's lesson table"
    for number, minutes, seconds in rows:
        assert int(minutes) == _estimated_minutes(lessons[number]), (
            f"schedule.md: lesson {number} says {minutes} min, the lesson's top says "
            f"{_estimated_minutes(lessons[number])}: update the table and the day plan")
        assert int(seconds) == runs[number], f"schedule.md: lesson {number} run time {seconds} s, README {runs[number]} s"
    total = sum(_estimated_minutes(p) for p in lessons.values())
    assert f"{total // 60} h {total % 60} min" in text, f"the schedule's total of the lessons' estimates: {total} min"


def test_the_reading_list_has_a_section_per_lesson():
    text = (KIT / "reading.md").read_text(encoding="utf-8")
    for number, path in _lessons().items():
        assert re.search(rf"^## \[{number}\]\(\.\./notebooks/{re.escape(path.name)}\)", text, re.MULTILINE), number
