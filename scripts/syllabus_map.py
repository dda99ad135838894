"""Write instructor/map.md, the syllabus topic by topic with the lesson and cell that teach it.

    python scripts/syllabus_map.py           # (re)write instructor/map.md from instructor/syllabus.yml
    python scripts/syllabus_map.py --check   # exit 1 if instructor/map.md is not what the table gives

The table (instructor/syllabus.yml) names each topic's section by its heading text; this script finds
the heading in the lesson and writes its cell index, so a renamed, moved or deleted section stops the
map from being written (with the topic and the headings the lesson has) instead of leaving a stale
line. A "not yet" or "partly" topic whose `watch` pattern matches a heading of some lesson (or whose
`watch_text` pattern matches the text of a markdown cell) stops it too: a lesson may now teach it, and the
table must say so. Every such problem is listed at once. tests/test_syllabus_map.py runs both.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere: the repo's labkit, not another one
    sys.path.insert(0, str(ROOT))

from labkit.errors import LabkitError  # noqa: E402
from labkit.fileio import write_atomic  # noqa: E402

TABLE = ROOT / "instructor" / "syllabus.yml"
NOTEBOOKS = ROOT / "notebooks"
MAP = ROOT / "instructor" / "map.md"

STATUSES = ("taught", "partly", "not yet")
LESSON_NUMBER = r"\d\d[a-z]?"  # "05", or "05b" for the second half of a split lesson
LESSON_FILE = re.compile(rf"({LESSON_NUMBER})_.*\.ipynb")
ISSUES = {16: "the capstone issue 16", 17: "issue 17"}
TOPIC_KEYS = {"topic", "status", "lesson", "heading", "issue", "missing", "note", "watch", "watch_text"}
FIX = f"fix {TABLE.relative_to(ROOT)} (its first lines say what each field means)"


@dataclass(frozen=True)
class Heading:
    cell: int  # index in the notebook's list of cells, from 0, as nbformat counts
    level: int
    text: str
    anchor: str  # the id the book gives the heading (MyST's myst_heading_anchors), or "" beyond level 3


@dataclass(frozen=True)
class Lesson:
    number: str
    path: Path
    title: str
    headings: tuple[Heading, ...]
    texts: tuple[tuple[int, str], ...]  # (cell, text) of every markdown cell, for `watch_text`


_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_SLUG_DROP = re.compile(r"[^\w\u4e00-\u9fff\- ]")  # GitHub-style, as myst_parser.slugs.github_slugify


def _slug(text: str) -> str:
    # the book (Sphinx + MyST, myst_heading_anchors: 3) anchors a heading by this slug of its text,
    # as markdown-it reads it: inline code's backticks and emphasis stars gone
    plain = re.sub(r"[`*]", "", text)
    return _SLUG_DROP.sub("", plain.lower().replace(" ", "-"))


def read_lessons(folder: Path) -> dict[str, Lesson]:
    """Every notebooks/NN_*.ipynb (or NNx_*, a lesson split in two: 05 and 05b) with the headings of its
    markdown cells, in order."""
    import nbformat

    lessons: dict[str, Lesson] = {}
    for path in sorted(folder.glob("[0-9][0-9]*_*.ipynb")):
        named = LESSON_FILE.match(path.name)
        if not named:  # 05_x.ipynb and 05b_x.ipynb are lessons; 05x1_x.ipynb or 123_x.ipynb are not
            continue
        number = named.group(1)
        if number in lessons:
            raise LabkitError(f"{lessons[number].path.name} and {path.name} both have the number {number}; "
                              "give each lesson its own number")
        nb = nbformat.read(path, as_version=4)
        headings, used, texts = [], set(), []
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "markdown":
                continue
            texts.append((i, cell.source))
            fenced = False
            for line in cell.source.splitlines():
                if line.lstrip().startswith(("```", "~~~")):
                    fenced = not fenced
                    continue
                m = None if fenced else _HEADING.match(line)
                if m:
                    level, text = len(m.group(1)), m.group(2)
                    anchor = ""
                    if level <= 3:
                        base, k = _slug(text), 1
                        anchor = base
                        while anchor in used:
                            anchor, k = f"{base}-{k}", k + 1
                        used.add(anchor)
                    headings.append(Heading(i, level, text, anchor))
        title = next((h.text for h in headings if h.level == 1), path.stem)
        lessons[number] = Lesson(number, path, title, tuple(headings), tuple(texts))
    if not lessons:
        raise LabkitError(f"{folder} holds no lessons (notebooks named NN_name.ipynb)")
    return lessons


def load_table(path: Path) -> list[dict]:
    """The table, checked: every field known and of the right kind, every status complete."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise LabkitError(f"cannot read {path.name}: {e}") from None
    days = data.get("days") if isinstance(data, dict) else None
    if not isinstance(days, list) or not days:
        raise LabkitError(f"{path.name} has no list `days:`; {FIX}")
    for d, day in enumerate(days, 1):
        if not isinstance(day, dict) or day.get("day") != d or not isinstance(day.get("title"), str) \
                or not isinstance(day.get("modules"), list) or not day["modules"]:
            raise LabkitError(f"{path.name}: day {d} needs `day: {d}`, a `title` and a list of `modules`; {FIX}")
        for module in day["modules"]:
            if not isinstance(module, dict) or not isinstance(module.get("module"), str) \
                    or not isinstance(module.get("topics"), list) or not module["topics"]:
                raise LabkitError(f"{path.name}: day {d} has a module without a `module` name or `topics`; {FIX}")
            for t in module["topics"]:
                _check_topic(t, f"{path.name}, day {d}, module {module['module']!r}")
    return days


def _check_topic(t, where: str) -> None:
    if not isinstance(t, dict) or not isinstance(t.get("topic"), str) or not t["topic"].strip():
        raise LabkitError(f"{where}: a topic without its `topic:` text; {FIX}")
    name = f"{where}, topic {t['topic']!r}"
    unknown = set(t) - TOPIC_KEYS
    if unknown:
        raise LabkitError(f"{name}: unknown field(s) {', '.join(sorted(unknown))} "
                          f"(known: {', '.join(sorted(TOPIC_KEYS))}); {FIX}")
    status = t.get("status")
    if status not in STATUSES:
        raise LabkitError(f"{name}: status {status!r} is not one of {', '.join(STATUSES)}; {FIX}")
    placed = "lesson" in t or "heading" in t
    if status == "not yet" and placed:
        raise LabkitError(f"{name}: a 'not yet' topic has no lesson or heading; give it `status: partly` or "
                          f"`taught`, or remove them")
    if status != "not yet" and not (isinstance(t.get("lesson"), str) and re.fullmatch(LESSON_NUMBER, t["lesson"])
                                    and isinstance(t.get("heading"), str) and t["heading"].strip()):
        raise LabkitError(f"{name}: a {status!r} topic needs `lesson: \"NN\"` (quoted, two digits; \"05b\" for a "
                          f"split lesson's second half) and the `heading:` text of its section")
    if status == "taught" and ("issue" in t or "missing" in t):
        raise LabkitError(f"{name}: a taught topic has no `issue` or `missing`; make it `partly`, or remove them")
    if status != "taught" and t.get("issue") not in ISSUES:
        raise LabkitError(f"{name}: a {status!r} topic needs `issue:` {' or '.join(map(str, ISSUES))} "
                          "(the issue that covers what is not taught)")
    if status == "partly" and not (isinstance(t.get("missing"), str) and t["missing"].strip()):
        raise LabkitError(f"{name}: a 'partly' topic needs `missing:`, what is not taught yet")
    for key in ("watch", "watch_text"):
        patterns = t.get(key, [])
        if not isinstance(patterns, list) or not all(isinstance(w, str) and w for w in patterns):
            raise LabkitError(f"{name}: `{key}` must be a list of regular expressions")
        if patterns and status == "taught":
            raise LabkitError(f"{name}: a taught topic has no `{key}`; remove it")
        for w in patterns:
            try:
                re.compile(w)
            except re.error as e:
                raise LabkitError(f"{name}: {key} pattern {w!r} is not a regular expression ({e})") from None
    if status != "taught" and not t.get("watch"):
        raise LabkitError(f"{name}: a {status!r} topic needs `watch:` patterns for the heading that will teach it")
    for key in ("note", "missing"):
        if key in t and not isinstance(t[key], str):
            raise LabkitError(f"{name}: `{key}` must be text")


@dataclass(frozen=True)
class Row:
    day: int
    module: str
    topic: dict
    lesson: Lesson | None
    heading: Heading | None


def _watch_hits(t: dict, lessons: dict[str, Lesson], heading: Heading | None) -> list[str]:
    """Where a lesson may now teach a topic the table calls partly or not yet taught."""
    hits = []
    for other in lessons.values():
        for h in other.headings:
            pattern = next((w for w in t.get("watch", []) if re.search(w, h.text, re.IGNORECASE)), None)
            if pattern and h is not heading:
                hits.append(f"lesson {other.number} has the heading {h.text!r} (cell {h.cell}; pattern {pattern!r}): "
                            f"`lesson: \"{other.number}\"`, `heading: {json.dumps(h.text, ensure_ascii=False)}`")
        for cell, text in other.texts:
            found = next(((w, m) for w in t.get("watch_text", []) if (m := re.search(w, text, re.IGNORECASE))), None)
            if found:
                pattern, match = found
                # the section the words are in: the last heading above them, in this cell or an earlier one
                above = [_HEADING.match(line) for line in text[:match.start()].splitlines()]
                above = [m.group(2) for m in above if m]
                earlier = [h.text for h in other.headings if h.cell < cell]
                under = (above or earlier or [None])[-1]
                section = f"in the section {under!r}" if under else "before its first heading"
                hits.append(f"lesson {other.number} cell {cell} ({section}) mentions it (text pattern {pattern!r})")
    return hits


def resolve(days: list[dict], lessons: dict[str, Lesson]) -> list[Row]:
    """Each topic with the lesson and heading it names, found in the notebooks.

    Every problem of the table is collected and reported at once, in one LabkitError: a heading the
    lesson no longer has, or a lesson section that may now teach a topic marked partly or not yet.
    """
    rows, problems = [], []
    for day in days:
        for module in day["modules"]:
            for t in module["topics"]:
                lesson = heading = None
                if t["status"] != "not yet":
                    lesson = lessons.get(t["lesson"])
                    if lesson is None:
                        problems.append(f"topic {t['topic']!r}: there is no lesson {t['lesson']} in notebooks/ "
                                        f"(lessons: {', '.join(lessons)})")
                        continue
                    found = [h for h in lesson.headings if h.text == t["heading"]]
                    if len(found) != 1:
                        listing = "\n    ".join(f"cell {h.cell}: {'#' * h.level} {h.text}" for h in lesson.headings)
                        what = "is not a heading of" if not found else f"is {len(found)} headings of"
                        problems.append(f"topic {t['topic']!r}: {t['heading']!r} {what} {lesson.path.name} "
                                        f"(renamed, moved or removed?). Its headings:\n    {listing}")
                        continue
                    heading = found[0]
                hits = _watch_hits(t, lessons, heading)
                if hits:
                    problems.append(
                        f"topic {t['topic']!r} is marked {t['status']!r}, but a lesson may now teach it:\n    "
                        + "\n    ".join(hits) + "\n  if one does, point the topic at that section (`lesson`, "
                        "`heading`) and set its status (taught, or partly with `missing`); if none does, narrow "
                        "the pattern")
                rows.append(Row(day["day"], module["module"], t, lesson, heading))
    if problems:
        raise LabkitError(f"{len(problems)} problem(s) in the syllabus table; {FIX}:\n- " + "\n- ".join(problems))
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def _where(row: Row) -> tuple[str, str, str]:
    if row.lesson is None:
        return "—", "—", "—"
    link = f"../notebooks/{row.lesson.path.name}"
    anchor = f"#{row.heading.anchor}" if row.heading.anchor else ""
    return (f"[{row.lesson.number}]({link})", str(row.heading.cell),
            f"[{_cell(row.heading.text)}]({link}{anchor})")


def _status(row: Row) -> str:
    t = row.topic
    if t["status"] == "taught":
        return "taught"
    issue = ISSUES[t["issue"]]
    if t["status"] == "partly":
        return f"partly: {_cell(t['missing'])} ({issue})"
    return f"not yet ({issue})"


def render(days: list[dict], rows: list[Row], lessons: dict[str, Lesson]) -> str:
    counts = {s: sum(r.topic["status"] == s for r in rows) for s in STATUSES}
    out = [
        "# The syllabus, topic by topic: where each is taught",
        "",
        "<!-- Generated by scripts/syllabus_map.py from instructor/syllabus.yml: edit the table, then run",
        "     `python scripts/syllabus_map.py`. tests/test_syllabus_map.py checks this file against the lessons. -->",
        "",
        "Every topic of the course's syllabus, grouped by the days of the [schedule](schedule.md), with the "
        "lesson and the section that teach it. The *cell* is the section heading's index in the notebook "
        "(from 0, as `nbformat` counts; in JupyterLab, find the heading in the table of contents). "
        "The topic list comes from the syllabus topics of issue 17's review and from what the lessons teach: "
        "the slide deck of the course the lessons were made from was not available, so the days and modules "
        "are our grouping, not the deck's order.",
        "",
        f"{len(rows)} topics: **{counts['taught']} taught**, **{counts['partly']} partly** taught, "
        f"**{counts['not yet']} not yet** in a lesson. "
        + ("A topic that is *partly* taught or *not yet* taught names the issue that covers it: issue 17 (the "
           "syllabus topics the lessons lack) or issue 16 (the capstone). Until then, teach those topics from "
           "your own slides; the [reading list](reading.md) gives a paper for most of them."
           if counts["partly"] or counts["not yet"] else
           "Every topic has a lesson section that teaches it; the [reading list](reading.md) gives the papers "
           "behind them, lesson by lesson."),
        "",
    ]
    for day in days:
        out += [f"## Day {day['day']}: {_cell(day['title'])}", ""]
        for module in day["modules"]:
            out += [f"### {_cell(module['module'])}", "",
                    "| topic | lesson | cell | section | status |", "|---|---|---|---|---|"]
            for row in rows:
                if row.day == day["day"] and row.module == module["module"]:
                    lesson, cell, section = _where(row)
                    topic = _cell(row.topic["topic"])
                    if row.topic.get("note"):
                        topic += f" *({_cell(row.topic['note'])})*"
                    out.append(f"| {topic} | {lesson} | {cell} | {section} | {_status(row)} |")
            out.append("")
    # the other direction: sections that no topic names (exercises, imports, recaps, and anything new)
    named = {(r.lesson.number, r.heading.cell, r.heading.text) for r in rows if r.lesson}
    out += ["## Lesson sections no topic names", "",
            "The sections (`##` headings) of each lesson that the table above does not point at: imports, exercises, "
            "recaps, and any section added since the table was last edited (add a topic for it in "
            "`instructor/syllabus.yml`).", "",
            "| lesson | sections |", "|---|---|"]
    for number, lesson in lessons.items():
        rest = [h for h in lesson.headings if h.level == 2 and (number, h.cell, h.text) not in named]
        listed = "; ".join(f"{h.cell}: {_cell(h.text)}" for h in rest) or "—"
        out.append(f"| [{number}](../notebooks/{lesson.path.name}) {_cell(lesson.title)} | {listed} |")
    out.append("")
    return "\n".join(out)


def build(table: Path | None = None, notebooks: Path | None = None) -> str:
    """The map's text, from the table and the notebooks (by default, the repo's)."""
    lessons = read_lessons(notebooks or NOTEBOOKS)
    days = load_table(table or TABLE)
    return render(days, resolve(days, lessons), lessons)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 if the map is out of date")
    args = parser.parse_args(argv)
    try:
        text = build()
    except LabkitError as e:
        print(f"syllabus_map: error: {e}", file=sys.stderr)
        return 2
    current = MAP.read_text(encoding="utf-8") if MAP.exists() else None
    if args.check:
        if current != text:
            print(f"syllabus_map: {MAP.relative_to(ROOT)} is out of date: run `python scripts/syllabus_map.py`",
                  file=sys.stderr)
            return 1
        print(f"{MAP.relative_to(ROOT)} is up to date")
        return 0
    if current == text:
        print(f"{MAP.relative_to(ROOT)} is up to date")
    else:
        write_atomic(MAP, text)
        print(f"wrote {MAP.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
