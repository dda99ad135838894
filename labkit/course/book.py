"""The lessons as a book: static HTML of every lesson, with the outputs stored in it, and the instructor kit.

``labkit lessons book -o build/book`` (``make book``) renders ``notebooks/*.ipynb`` exactly as stored -
no cell is executed - and the markdown pages of ``instructor/`` into one site with a table of contents,
previous/next links and a search box, opened from ``build/book/index.html``. It is built with Sphinx,
MyST-NB and the Sphinx Book Theme (the parts Jupyter Book 1 is made of) and reads offline: nothing
is fetched while building or while reading. Formulas are typeset by a MathJax that is copied into the
book (from the ``jupyter-server-mathjax`` package), not loaded from a CDN; the lessons' sliders, which
need a running kernel, show their one line saying so (``labkit.course.widgets.NOT_RUNNING``) above the
figure drawn for their default setting.

Every warning of the build (a broken link between pages, a lesson that cannot be read, a heading out
of order) stops it with the warnings listed: a book with a dead link is not written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from labkit.errors import LabkitError
from labkit.fileio import build_folder

#: The manifest at the book's top that marks the folder as kit-made (so ``make book`` may replace it).
MANIFEST = "labkit-book.json"
#: What the book calls itself (the HTML title and the landing page's heading).
TITLE = "labkit: deep learning on the edge"
#: The MathJax 2 configuration file that typesets TeX (the one classic Jupyter used offline).
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full"


def _mathjax_folder() -> Path:
    try:
        import jupyter_server_mathjax
    except ImportError:
        raise LabkitError("the book needs jupyter-server-mathjax (a local MathJax, so formulas show offline): "
                          "run `make setup` or `pip install -c constraints.txt -r requirements.txt`") from None
    folder = Path(jupyter_server_mathjax.__file__).parent / "static"
    if not (folder / "MathJax.js").is_file():
        raise LabkitError(f"{folder} holds no MathJax.js: reinstall jupyter-server-mathjax")
    return folder


def _landing_page(instructor_pages: list[str]) -> str:
    """The book's index: a short word on how to use it, then the tables of contents (globs, so a page
    added to instructor/ appears without editing anything)."""
    parts = [
        f"# {TITLE}\n",
        "These are the course's lessons as they were last run: every output, figure and check below is what the\n"
        "stored notebook holds. To change a setting, move a slider or do an exercise, open the lesson in\n"
        "JupyterLab (`make lab`) and run it; `make student` writes the learners' copies without the solutions.\n",
        "```{toctree}\n:caption: Lessons\n:maxdepth: 1\n:glob:\n\nnotebooks/*\n```\n",
    ]
    if instructor_pages:
        first = ["instructor/README\n"] if "README" in instructor_pages else []
        rest = ["instructor/*\n"] if set(instructor_pages) - {"README"} else []  # a glob that matches nothing warns
        parts.append("```{toctree}\n:caption: Instructor kit\n:maxdepth: 1\n:glob:\n\n"
                     + "".join(first + rest) + "```\n")
    return "\n".join(parts)


def _config() -> dict:
    """Sphinx's settings (what a conf.py would hold)."""
    return {
        "project": TITLE,
        "html_title": TITLE,
        "extensions": ["myst_nb"],
        "root_doc": "index",
        "exclude_patterns": ["_build", "**.ipynb_checkpoints"],
        # the stored outputs are the book: never run a cell while building
        "nb_execution_mode": "off",
        # a slider's stored output is a widget view plus one line of text; the view needs a kernel, so the
        # book shows the line (no widget manager from a CDN: nb_ipywidgets_js empty)
        "nb_mime_priority_overrides": [("html", "application/vnd.jupyter.widget-view+json", None),
                                       ("html", "application/vnd.jupyter.widget-state+json", None)],
        "nb_ipywidgets_js": {},
        "myst_enable_extensions": ["dollarmath", "amsmath"],
        "myst_heading_anchors": 3,  # [text](#a-heading) links between sections
        # MathJax 2 from the book's own _static folder, not from a CDN
        "mathjax_path": f"mathjax/MathJax.js?config={MATHJAX_CONFIG}",
        "myst_update_mathjax": False,  # it writes MathJax 3 settings; this MathJax is 2
        "mathjax2_config": {"tex2jax": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]],
                                        "processEscapes": True},
                            # formulas become MathML that the browser draws (Chromium, Firefox, Safari); where
                            # MathJax falls back to HTML-CSS it uses the computer's fonts, since a book opened
                            # from disk (file://) may not load web fonts (CORS)
                            "HTML-CSS": {"availableFonts": [], "preferredFont": None, "webFont": None,
                                         "imageFont": None},
                            "menuSettings": {"zoom": "None", "renderer": "NativeMML"}, "showMathMenu": False,
                            "messageStyle": "none"},
        "html_theme": "sphinx_book_theme",
        "html_context": {"default_mode": "light"},  # unset, the theme logs a console error under file://
        "html_theme_options": {
            "use_download_button": False, "use_fullscreen_button": False, "use_repository_button": False,
            "home_page_in_toc": True, "show_navbar_depth": 1,
            "navigation_with_keys": True,
        },
        "html_show_sourcelink": False,
        "html_copy_source": False,
        "html_last_updated_fmt": None,
    }


def _check_sources(notebooks: Path, instructor: Path | None) -> tuple[list[Path], list[Path]]:
    if not notebooks.is_dir():
        raise LabkitError(f"{notebooks} is not a folder of lessons: give the folder that holds the *.ipynb files")
    lessons = sorted(notebooks.glob("*.ipynb"))
    if not lessons:
        raise LabkitError(f"{notebooks} holds no *.ipynb lessons: give the folder that holds them")
    import nbformat

    for p in lessons:
        try:
            nbformat.validate(nbformat.read(p, as_version=4))
        except Exception as e:  # nbformat raises several kinds for a file that is not a notebook
            raise LabkitError(f"{p} is not a readable notebook ({type(e).__name__}: {e}); "
                              "fix or remove it before building the book") from None
    pages: list[Path] = []
    if instructor is not None and instructor.exists():
        if not instructor.is_dir():
            raise LabkitError(f"{instructor} is a file, not the instructor kit's folder: give a folder of *.md pages")
        pages = sorted(instructor.glob("*.md"))
    return lessons, pages


def build_book(out: str | os.PathLike, notebooks: str | os.PathLike = "notebooks",
               instructor: str | os.PathLike | None = "instructor", force: bool = False) -> Path:
    """Write the book into the folder ``out`` (new, empty, or an earlier book) and return its index.html.

    ``instructor`` is a folder of markdown pages (``README.md`` first, the others by name); a missing
    folder leaves that part out. Nothing outside ``out`` is written; the build runs in a temporary folder.
    """
    notebooks = Path(notebooks)
    instructor = Path(instructor) if instructor is not None else None
    lessons, pages = _check_sources(notebooks, instructor)
    mathjax = _mathjax_folder()

    def build(staging: Path):
        with tempfile.TemporaryDirectory(prefix="labkit-book-") as tmp:
            src = Path(tmp) / "src"
            (src / "notebooks").mkdir(parents=True)
            for p in lessons:
                shutil.copy2(p, src / "notebooks" / p.name)
            if pages:
                # the whole folder, so that pictures its pages show come along
                shutil.copytree(instructor, src / "instructor", ignore=shutil.ignore_patterns(".*"))
            (src / "index.md").write_text(_landing_page([p.stem for p in pages]),
                                          encoding="utf-8")
            # Sphinx in a process of its own: docutils keeps global registries that a second build in the same
            # process warns about. Its settings go in a conf.py beside the pages (a reader can look at it).
            (src / "conf.py").write_text("# written by labkit lessons book\n" + "".join(
                f"{k} = {v!r}\n" for k, v in _config().items()), encoding="utf-8")
            # into a folder of the temporary one: MyST-NB writes a jupyter_execute/ folder beside the output
            html, log = Path(tmp) / "site" / "html", Path(tmp) / "warnings.log"
            r = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-E", "-a", "-q", "--no-color",
                                "-w", str(log), "-d", str(Path(tmp) / "doctrees"), str(src), str(html)],
                               capture_output=True, text=True)
            problems = [line for line in log.read_text(encoding="utf-8").splitlines() if line.strip()] \
                if log.exists() else []
            if r.returncode != 0 and not problems:
                problems = (r.stderr or r.stdout).strip().splitlines()[-20:] or [f"sphinx exited with {r.returncode}"]
            if problems:
                shown = "\n".join(line.replace(str(src) + os.sep, "") for line in problems[:20])
                more = f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
                raise LabkitError(f"the book was not written: building it gave {len(problems)} warning(s); "
                                  f"fix them in the lessons or instructor pages:\n{shown}{more}")
            # what Sphinx leaves that a reader has no use for: build caches, an empty _sources, and the themes'
            # Jinja macro files (webpack-macros.html) that are copied into _static as if they were assets
            for leftover in [html / ".buildinfo", html / ".doctrees", html / "_sources",
                             *(html / "_static").glob("*macros.html")]:
                if leftover.is_dir():
                    shutil.rmtree(leftover)
                elif leftover.exists():
                    leftover.unlink()
            for entry in html.iterdir():
                shutil.move(entry, staging / entry.name)
        # MathJax, copied once, straight into the book (its web fonts are left out: the book draws formulas
        # as MathML, and MathJax's HTML-CSS fallback is set to the computer's own fonts)
        shutil.copytree(mathjax, staging / "_static" / "mathjax",
                        ignore=lambda folder, names: ["fonts"] if Path(folder) == mathjax else [])
        manifest = {"lessons": [p.name for p in lessons], "instructor_pages": [p.name for p in pages]}
        return None, MANIFEST, manifest

    build_folder(out, build, made_by="labkit lessons book", force=force, what="book folder")
    return Path(out).resolve() / "index.html"
