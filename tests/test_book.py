"""`make book`: every lesson as it is stored (never executed), the instructor kit, navigation that works,
and nothing fetched from the network, neither while building nor while reading."""

import base64
import hashlib
import html
import html.parser
import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest

from labkit.course.book import MANIFEST, build_book
from labkit.course.lessons import METADATA
from labkit.course.quiz import NOT_RUNNING as QUIZ_NOT_RUNNING
from labkit.course.quiz import quiz
from labkit.course.widgets import NOT_RUNNING
from labkit.errors import LabkitError

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "build" / "browser-screenshots"
LESSONS = sorted((ROOT / "notebooks").glob("*.ipynb"))
INSTRUCTOR = ROOT / "instructor"


class _Page(html.parser.HTMLParser):
    """The links, assets and element ids of one HTML page."""

    def __init__(self):
        super().__init__()
        self.links: list[str] = []  # <a href>: pages a reader goes to
        self.assets: list[tuple[str, str]] = []  # (tag, url) the browser loads with the page
        self.images: list[str] = []
        self.ids: set[str] = set()
        self.rel: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        elif tag == "link" and a.get("href"):
            rel = (a.get("rel") or "").split()
            if {"stylesheet", "preload", "icon", "shortcut", "modulepreload", "manifest"} & set(rel):
                self.assets.append((tag, a["href"]))
            else:  # prev / next / index / search: navigation
                self.links.append(a["href"])
                for r in rel:
                    self.rel[r] = a["href"]
        elif tag in ("script", "img", "iframe", "source", "embed", "audio", "video") and a.get("src"):
            self.assets.append((tag, a["src"]))
            if tag == "img":
                self.images.append(a["src"])


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _remote(url: str) -> bool:
    return urlsplit(url).scheme in ("http", "https", "ftp") or url.startswith("//")


def _local_target(page_path: Path, url: str) -> tuple[Path, str] | None:
    """The file (and fragment) a relative link points to; None for links that leave the book."""
    parts = urlsplit(url)
    if parts.scheme or url.startswith("//"):
        return None  # http(s), mailto: links to the outside world are not the book's to check
    target = (page_path.parent / unquote(parts.path)).resolve() if parts.path else page_path
    return target, unquote(parts.fragment)


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """`make book`, into a temporary folder (the set-up stamp taken as made: make test made it)."""
    out = tmp_path_factory.mktemp("book") / "book"
    venv = Path(sys.prefix)
    r = subprocess.run(["make", "--no-print-directory", f"VENV={venv}", "-o", f"{venv}/.labkit-installed",
                        "book", f"BOOK={out}"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"wrote {out / 'index.html'}" in r.stdout
    return out


def test_every_lesson_has_a_page_with_its_title(book):
    names = [p.stem for p in LESSONS]
    assert len(names) >= 12
    index = (book / "index.html").read_text(encoding="utf-8")
    for p in LESSONS:
        page = book / "notebooks" / f"{p.stem}.html"
        assert page.is_file(), f"{p.name} has no page in the book"
        nb = nbformat.read(p, as_version=4)
        title = next(line[2:].strip() for c in nb.cells if c.cell_type == "markdown"
                     for line in c.source.splitlines() if line.startswith("# "))
        assert title in page.read_text(encoding="utf-8")
        assert f'href="notebooks/{p.stem}.html"' in index, f"{p.name} is missing from the table of contents"
    # previous / next follow the lessons' numbering
    for before, after in zip(names, names[1:]):
        assert _parse(book / "notebooks" / f"{before}.html").rel.get("next") == f"{after}.html"
        assert _parse(book / "notebooks" / f"{after}.html").rel.get("prev") == f"{before}.html"


def test_every_stored_figure_is_an_image_file_on_its_page(book):
    """Each PNG a lesson stores is written as a file, byte for byte, and shown on that lesson's page."""
    total = 0
    for p in LESSONS:
        nb = nbformat.read(p, as_version=4)
        stored = [hashlib.sha256(base64.b64decode(o["data"]["image/png"])).hexdigest()
                  for c in nb.cells if c.cell_type == "code" for o in c.outputs
                  if "image/png" in o.get("data", {})]
        page_path = book / "notebooks" / f"{p.stem}.html"
        shown = []
        for src in _parse(page_path).images:
            target, _ = _local_target(page_path, src)
            assert target.is_file(), f"{p.stem}: image {src} is not in the book"
            shown.append(hashlib.sha256(target.read_bytes()).hexdigest())
        missing = [h for h in stored if h not in shown]
        assert not missing, f"{p.stem}: {len(missing)} of its {len(stored)} stored figures are not on its page"
        total += len(stored)
    assert total >= 40  # the lessons draw many figures; a book without them would pass the loop above


def test_internal_links_all_resolve(book):
    pages = sorted(book.rglob("*.html"))
    ids = {path.resolve(): _parse(path).ids for path in pages}
    broken, checked = [], 0
    for path in pages:
        page = _parse(path)
        for url in page.links + [u for _, u in page.assets]:
            hit = _local_target(path, url)
            if hit is None:
                continue
            target, fragment = hit
            checked += 1
            if not target.exists():
                broken.append(f"{path.relative_to(book)} -> {url}")
            elif fragment and target.suffix == ".html" and fragment not in ids.get(target, set()):
                broken.append(f"{path.relative_to(book)} -> {url} (no such anchor)")
    assert checked > 500
    assert not broken, "broken links:\n" + "\n".join(broken[:30])


def test_no_remote_assets(book):
    """Opened from disk without a network, the book shows everything: nothing it loads is on the internet."""
    remote = []
    for path in book.rglob("*.html"):
        remote += [f"{path.relative_to(book)}: <{tag}> {url}" for tag, url in _parse(path).assets if _remote(url)]
        # MathJax read from a CDN, or the widget manager from unpkg, would be a <script src>; check inline ones too
        text = path.read_text(encoding="utf-8")
        remote += [f"{path.relative_to(book)}: {m}" for m in re.findall(r"(?:cdn\.jsdelivr|unpkg\.com|cdnjs|"
                                                                         r"googleapis|mathjax\.org)[^\"' ]*", text)]
    for css in book.rglob("*.css"):
        for url in re.findall(r"url\(\s*['\"]?([^'\")]+)", css.read_text(encoding="utf-8", errors="replace")):
            if _remote(url):
                remote.append(f"{css.relative_to(book)}: url({url})")
        remote += [f"{css.relative_to(book)}: @import {u}" for u in
                   re.findall(r"@import\s+(?:url\()?['\"]?(https?://[^'\")]+)", css.read_text(errors="replace"))]
    assert not remote, "the book loads from the network:\n" + "\n".join(remote[:30])
    # MathJax is in the book itself
    page = (book / "notebooks" / "02_gradient_descent.html").read_text(encoding="utf-8")
    assert 'src="../_static/mathjax/MathJax.js?config=' in page
    assert (book / "_static" / "mathjax" / "MathJax.js").is_file()


def test_sliders_show_one_line_not_a_repr(book):
    """A stored slider needs a kernel: the book shows the line saying so and the default figure, never a repr."""
    explorers = [p for p in LESSONS if NOT_RUNNING in p.read_text(encoding="utf-8")]
    assert len(explorers) >= 3
    for p in LESSONS:
        text = (book / "notebooks" / f"{p.stem}.html").read_text(encoding="utf-8").replace("&#8217;", "'")
        if p in explorers:
            assert NOT_RUNNING in text
        for repr_text in ("VBox(", "FloatLogSlider(", "IntSlider(", "ToggleButtons(", "model_id",
                          "Error displaying widget", "widget-view+json"):
            assert repr_text not in text, f"{p.stem}: {repr_text!r} shows in the book"


def test_every_lesson_page_shows_its_quiz_without_the_answers(book):
    """The quiz's questions are stored as text, so a reader of the book sees them; its answer buttons need a
    kernel, so the book shows the one line saying so — and no explanation gives an answer away."""
    for p in LESSONS:
        q = quiz(p.stem)
        text = html.unescape((book / "notebooks" / f"{p.stem}.html").read_text(encoding="utf-8"))
        assert f"Quiz: {q.title}" in text and QUIZ_NOT_RUNNING in text, p.stem
        for question in q.questions:
            assert " ".join(question.ask.split()) in " ".join(text.split()), (p.stem, question.ask)
            assert question.why not in text, f"{p.stem}: an answer's explanation shows in the book"


def test_instructor_kit_is_in_the_book_when_it_has_pages(book):
    pages = sorted(INSTRUCTOR.glob("*.md")) if INSTRUCTOR.is_dir() else []
    manifest = json.loads((book / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["made_by"].startswith("labkit lessons book")
    assert manifest["lessons"] == [p.name for p in LESSONS]
    assert manifest["instructor_pages"] == [p.name for p in pages]
    index = (book / "index.html").read_text(encoding="utf-8")
    assert ("Instructor kit" in index) == bool(pages)
    for p in pages:
        assert (book / "instructor" / f"{p.stem}.html").is_file()
        assert f'href="instructor/{p.stem}.html"' in index


def _small_lessons(tmp_path: Path) -> Path:
    """Two small lessons, one with a stored output that is not what running it would print."""
    folder = tmp_path / "lessons"
    folder.mkdir()
    welcome = nbformat.v4.new_notebook(metadata=METADATA)
    welcome.cells = [nbformat.v4.new_markdown_cell("# 00 — Welcome\n\nThe cost $J(w) = w^2$.")]
    nbformat.write(welcome, folder / "00_welcome.ipynb")
    nb = nbformat.v4.new_notebook(metadata=METADATA)
    nb.cells = [nbformat.v4.new_markdown_cell("# 01 — Stored, not run"),
                nbformat.v4.new_code_cell("print('computed ' + 'now')", outputs=[
                    nbformat.v4.new_output("stream", name="stdout", text="stored when the lesson was run\n")])]
    nbformat.write(nb, folder / "01_stored.ipynb")
    return folder


def test_book_shows_stored_outputs_and_instructor_pages_in_order(tmp_path):
    lessons = _small_lessons(tmp_path)
    kit = tmp_path / "kit"
    kit.mkdir()
    (kit / "schedule.md").write_text("# Schedule\n\nDay 1: [the welcome](../notebooks/00_welcome.ipynb).\n")
    (kit / "README.md").write_text("# Instructor kit\n\nStart with the [schedule](schedule.md).\n")
    (kit / "agenda.md").write_text("# Agenda\n\nSee the [index](README.md).\n")
    index = build_book(tmp_path / "out", lessons, kit)
    stored = (tmp_path / "out" / "notebooks" / "01_stored.html").read_text(encoding="utf-8")
    assert "stored when the lesson was run" in stored and "computed now" not in stored
    # README first, then the others by name, under their own caption
    toc = index.read_text(encoding="utf-8")
    section = toc[toc.index("Instructor kit"):]
    order = [section.index(f'href="instructor/{n}.html"') for n in ("README", "agenda", "schedule")]
    assert order == sorted(order)
    page = (tmp_path / "out" / "instructor" / "schedule.html").read_text(encoding="utf-8")
    assert 'href="../notebooks/00_welcome.html"' in page
    # built again over itself: the book is kit-made, so it is replaced; nothing is written beside it
    build_book(tmp_path / "out", lessons, kit)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kit", "lessons", "out"]


def test_a_broken_link_stops_the_build(tmp_path):
    lessons = _small_lessons(tmp_path)
    kit = tmp_path / "kit"
    kit.mkdir()
    (kit / "README.md").write_text("# Kit\n\nSee [the map](map.md).\n")
    with pytest.raises(LabkitError, match=r"(?s)book was not written.*README.md:3:.*map\.md"):
        build_book(tmp_path / "out", lessons, kit)
    assert not (tmp_path / "out").exists()


def test_hostile_inputs(tmp_path):
    with pytest.raises(LabkitError, match="not a folder of lessons"):
        build_book(tmp_path / "out", tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LabkitError, match="no \\*.ipynb lessons"):
        build_book(tmp_path / "out", tmp_path / "empty")
    lessons = _small_lessons(tmp_path)
    (tmp_path / "kit.md").write_text("# not a folder\n")
    with pytest.raises(LabkitError, match="is a file, not the instructor kit's folder"):
        build_book(tmp_path / "out", lessons, tmp_path / "kit.md")
    (lessons / "02_broken.ipynb").write_text("{ not json")
    with pytest.raises(LabkitError, match="02_broken.ipynb is not a readable notebook"):
        build_book(tmp_path / "out", lessons)
    (lessons / "02_broken.ipynb").unlink()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(LabkitError, match="not made by labkit"):
        build_book(mine, lessons)
    assert (mine / "notes.txt").read_text() == "keep me"


def test_make_book_writes_build_book():
    venv = Path(sys.prefix)
    r = subprocess.run(["make", "--no-print-directory", f"VENV={venv}", "-o", f"{venv}/.labkit-installed",
                        "-n", "book"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and "lessons book notebooks" in r.stdout and "-o build/book" in r.stdout, r.stdout + r.stderr


def test_book_reads_offline_in_a_browser(book, browser):
    """Opened from disk with every network request refused: formulas typeset by the book's own MathJax,
    figures drawn, no error in the console."""
    requests, errors = [], []
    page = browser.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r):
        if r.request.url.startswith("file:"):
            r.continue_()
        else:
            requests.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    try:
        page.goto((book / "index.html").as_uri())
        page.get_by_role("link", name=re.compile("02 — Gradient descent")).first.click()
        page.wait_for_url("**/02_gradient_descent.html")
        page.wait_for_function("document.querySelectorAll('math').length >= 20", timeout=30_000)
        assert page.locator("text=Math Processing Error").count() == 0
        sizes = page.evaluate("[...document.images].map(i => i.complete ? i.naturalWidth : 0)")
        assert len(sizes) >= 5 and all(w > 0 for w in sizes), sizes
        assert page.get_by_text(NOT_RUNNING).count() == 1
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "book-02_gradient_descent.png"))
    finally:
        page.close()
    assert not requests, f"the book asked the network for: {requests}"
    assert not errors, f"console errors: {errors}"
