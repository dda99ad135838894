"""Short self-check quizzes at the end of each lesson: multiple choice or a number, answered in the notebook.

A lesson's questions live in ``labkit/course/quizzes/<lesson>.yml`` (the lesson's file name without
``.ipynb``), not in the notebook: a learner reads the questions and answers them without the answers in
sight, and an instructor edits one small file per lesson. The lesson's quiz cell is two lines::

    from labkit.course.quiz import quiz
    quiz("02_gradient_descent")

It shows every question as text (stored in the notebook, so the book and GitHub show them too) and,
where a kernel runs, one row of controls per question: pick a letter or type a number, press *Check*,
read whether it is right and why. Without widgets (a plain console, ``LABKIT_STATIC_WIDGETS=1``) the same
check is one call: ``q = quiz("02_gradient_descent"); q.check(1, "b")``, ``q.check(3, 0.43)``.

A wrong answer shows the question's hint, never the answer; :meth:`Quiz.reveal` shows it with the
explanation, for whoever gives up. Quizzes are formative: nothing is graded, the answers are in the
package for the curious, and ``scripts/quiz_key.py`` writes them all as the instructor's key.

The file's format (validated when it is read; a mistake names the file, the question and the fix)::

    title: Gradient descent                      # shown above the questions
    questions:
      - ask: Which way does one step of gradient descent move the weights?
        choices:                                 # two to six; the letters a, b, c ... are added
          - along the gradient
          - against the gradient
        answer: b                                # the right letter
        why: The gradient points uphill; we want the cost to go down.
        hint: Which way does the cost increase?  # optional, shown after a wrong answer
      - ask: What is the largest stable learning rate for this cost, to two decimals?
        number: 0.434                            # a numeric question ...
        tolerance: 0.01                          # ... right within this absolute distance
        why: Above 2 / (largest eigenvalue of the Hessian) every step overshoots further.
"""

from __future__ import annotations

import html
import math
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.errors import LabkitError

__all__ = ["QUIZ_DIR", "Question", "Quiz", "QuizError", "load_quiz", "quiz", "available"]

#: Where the lessons' question files are.
QUIZ_DIR = Path(__file__).with_name("quizzes")
#: What a stored notebook shows in place of the answer controls (where no kernel runs them).
NOT_RUNNING = "[quiz: run this cell to answer here, or call .check(question, answer) on it]"
LETTERS = string.ascii_lowercase[:6]


class QuizError(LabkitError, ValueError):
    """A question file that cannot be used, or an answer that is not one the question takes."""


@dataclass(frozen=True)
class Question:
    """One question: ``choices`` and a letter ``answer``, or a ``number`` with a ``tolerance``."""

    ask: str
    why: str
    choices: tuple[str, ...] = ()
    answer: str = ""
    number: float | None = None
    tolerance: float = 0.0
    hint: str = ""

    @property
    def is_numeric(self) -> bool:
        return self.number is not None

    def letters(self) -> str:
        return LETTERS[: len(self.choices)]

    def grade(self, given: Any) -> bool:
        """True when ``given`` is right; :class:`QuizError` when it is not an answer this question takes."""
        if self.is_numeric:
            if isinstance(given, bool):
                raise QuizError("this question wants a number, not True/False")
            try:
                value = float(str(given).strip().replace(",", "")) if isinstance(given, str) else float(given)
            except (TypeError, ValueError):
                raise QuizError(f"this question wants a number, got {given!r}") from None
            if not math.isfinite(value):
                raise QuizError(f"this question wants a finite number, got {given!r}")
            return abs(value - self.number) <= self.tolerance
        if not isinstance(given, str) or given.strip().lower() not in self.letters():
            raise QuizError(f"answer with one of the letters {', '.join(self.letters())} (got {given!r})")
        return given.strip().lower() == self.answer

    def right_answer(self) -> str:
        if self.is_numeric:
            return f"{self.number:g}" + (f" (within ±{self.tolerance:g})" if self.tolerance else "")
        return f"{self.answer}) {self.choices[LETTERS.index(self.answer)]}"


class Quiz:
    """A lesson's questions, shown as text plus answer controls; :meth:`check` grades one answer."""

    def __init__(self, title: str, questions: list[Question], name: str = ""):
        if not questions:
            raise QuizError("a quiz needs at least one question")
        self.title = title
        self.questions = list(questions)
        self.name = name
        self.right: set[int] = set()  # question numbers answered right so far

    # -- answering -----------------------------------------------------------------------------
    def question(self, number: int) -> Question:
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= len(self.questions):
            raise QuizError(f"question numbers run from 1 to {len(self.questions)}, got {number!r}")
        return self.questions[number - 1]

    def feedback(self, number: int, given: Any) -> tuple[bool, str]:
        """Grade ``given`` for question ``number``: (right?, the line the learner reads)."""
        q = self.question(number)
        try:
            ok = q.grade(given)
        except QuizError as exc:
            return False, f"Question {number}: {exc}."
        if ok:
            self.right.add(number)
            return True, f"Question {number}: right. {q.why}"
        self.right.discard(number)
        hint = f" Hint: {q.hint}" if q.hint else " Read the question again, or call .reveal(" + str(number) + ")."
        return False, f"Question {number}: not quite.{hint}"

    def check(self, number: int, given: Any) -> bool:
        """Print whether ``given`` answers question ``number`` (1-based) and return it."""
        ok, line = self.feedback(number, given)
        print(line)
        return ok

    def reveal(self, number: int) -> None:
        """Print the answer to question ``number`` and why."""
        q = self.question(number)
        print(f"Question {number}: {q.right_answer()}. {q.why}")

    def score(self) -> str:
        """``"3 of 5 right"`` for the answers checked in this session."""
        return f"{len(self.right)} of {len(self.questions)} right"

    # -- showing -------------------------------------------------------------------------------
    def as_text(self) -> str:
        lines = [f"Quiz: {self.title}"]
        for i, q in enumerate(self.questions, 1):
            lines.append(f"{i}. {q.ask}" + ("  (a number)" if q.is_numeric else ""))
            lines.extend(f"   {letter}) {choice}" for letter, choice in zip(q.letters(), q.choices))
        return "\n".join(lines)

    def as_html(self) -> str:
        parts = [f"<p><b>Quiz: {html.escape(self.title)}</b></p>", "<ol>"]
        for q in self.questions:
            item = html.escape(q.ask) + (" <i>(a number)</i>" if q.is_numeric else "")
            # letters written out (not <ol type="a">, which JupyterLab's styles show as A, B, C)
            item += "".join(f"<br>&nbsp;&nbsp;{letter})&nbsp;{html.escape(c)}" for letter, c in zip(q.letters(), q.choices))
            parts.append(f"<li>{item}</li>")
        parts.append("</ol>")
        return "".join(parts)

    def controls(self):
        """One row per question: letter buttons or a number box, a Check button, the feedback."""
        import ipywidgets as W

        rows = []
        for number, q in enumerate(self.questions, 1):
            if q.is_numeric:
                entry = W.Text(placeholder="a number", layout=W.Layout(width="140px"))
            else:
                entry = W.ToggleButtons(options=list(q.letters()), value=None,
                                        style={"button_width": "36px"})
            button = W.Button(description="Check", layout=W.Layout(width="80px"))
            out = W.HTML(value="", layout=W.Layout(flex="1 1 100%", margin="0 0 4px 32px"))  # its own line

            def on_click(_b, number=number, entry=entry, out=out):
                if entry.value in (None, ""):
                    out.value = "<i>choose an answer first</i>"
                    return
                ok, line = self.feedback(number, entry.value)
                colour = "#1a7f37" if ok else "#b35900"
                out.value = f'<span style="color:{colour}">{html.escape(line)}</span>'

            button.on_click(on_click)
            rows.append(W.HBox([W.Label(f"{number}.", layout=W.Layout(width="28px")), entry, button, out],
                               layout=W.Layout(flex_flow="row wrap", align_items="center")))
        return W.VBox(rows)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        from labkit.course.widgets import static_only

        display({"text/plain": self.as_text(), "text/html": self.as_html()}, raw=True)
        if not static_only():
            bundle = self.controls()._repr_mimebundle_()
            bundle["text/plain"] = NOT_RUNNING
            display(bundle, raw=True)

    def __repr__(self) -> str:
        return f"Quiz({self.name or self.title!r}, {len(self.questions)} questions)"


# -- the question files ------------------------------------------------------------------------
_KEYS = {"ask", "why", "choices", "answer", "number", "tolerance", "hint"}


def _text(where: str, key: str, value: Any, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise QuizError(f"{where}: '{key}' must be non-empty text; add it")
    return " ".join(value.split())


def _question(where: str, raw: Any) -> Question:
    if not isinstance(raw, dict):
        raise QuizError(f"{where}: each question is a mapping with 'ask', 'why' and 'choices' or 'number'")
    unknown = set(raw) - _KEYS
    if unknown:
        raise QuizError(f"{where}: unknown key(s) {sorted(unknown)}; a question takes {sorted(_KEYS)}")
    ask = _text(where, "ask", raw.get("ask"))
    why = _text(where, "why", raw.get("why"))
    hint = _text(where, "hint", raw.get("hint"), required=False)
    if ("choices" in raw) == ("number" in raw):
        raise QuizError(f"{where}: give either 'choices' with an 'answer' letter, or a 'number' (not both)")
    if "number" in raw:
        number, tol = raw["number"], raw.get("tolerance", 0)
        if "answer" in raw:
            raise QuizError(f"{where}: a numeric question has 'number', not 'answer'")
        for key, value in (("number", number), ("tolerance", tol)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise QuizError(f"{where}: '{key}' must be a finite number, got {value!r}")
        if tol < 0:
            raise QuizError(f"{where}: 'tolerance' must be 0 or more, got {tol!r}")
        return Question(ask=ask, why=why, number=float(number), tolerance=float(tol), hint=hint)
    choices = raw["choices"]
    if not isinstance(choices, list) or not 2 <= len(choices) <= len(LETTERS):
        raise QuizError(f"{where}: 'choices' must be a list of 2 to {len(LETTERS)} answers")
    choices = tuple(_text(f"{where}, choice {i}", "choice", c) for i, c in enumerate(choices, 1))
    if len(set(choices)) != len(choices):
        raise QuizError(f"{where}: two choices are the same text")
    answer = raw.get("answer")
    letters = LETTERS[: len(choices)]
    if not isinstance(answer, str) or answer.strip().lower() not in letters or len(answer.strip()) != 1:
        raise QuizError(f"{where}: 'answer' must be one of the letters {', '.join(letters)}, got {answer!r}")
    if "tolerance" in raw:
        raise QuizError(f"{where}: 'tolerance' belongs to numeric questions only")
    return Question(ask=ask, why=why, choices=choices, answer=answer.strip().lower(), hint=hint)


def load_quiz(path: str | Path) -> Quiz:
    """Read and check one question file (see the module's docstring for its format)."""
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise QuizError(f"no quiz file {path}") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise QuizError(f"{path}: cannot be read as YAML ({exc}); fix the file") from None
    if not isinstance(raw, dict) or set(raw) - {"title", "questions"}:
        raise QuizError(f"{path}: the file holds 'title' and 'questions' only")
    title = _text(str(path), "title", raw.get("title"))
    questions = raw.get("questions")
    if not isinstance(questions, list) or not questions:
        raise QuizError(f"{path}: 'questions' must be a non-empty list")
    parsed = [_question(f"{path.name}, question {i}", q) for i, q in enumerate(questions, 1)]
    return Quiz(title, parsed, name=path.stem)


def available() -> list[str]:
    """The lessons that have a quiz (file stems, sorted)."""
    return sorted(p.stem for p in QUIZ_DIR.glob("*.yml"))


def quiz(lesson: str) -> Quiz:
    """The quiz of ``lesson`` (its notebook's name without ``.ipynb``, e.g. ``"02_gradient_descent"``)."""
    if not isinstance(lesson, str) or not lesson or "/" in lesson or "\\" in lesson or lesson.startswith("."):
        raise QuizError(f"name a lesson by its notebook's name, e.g. '02_gradient_descent' (got {lesson!r})")
    stem = lesson[:-6] if lesson.endswith(".ipynb") else lesson
    path = QUIZ_DIR / f"{stem}.yml"
    if not path.is_file():
        raise QuizError(f"no quiz for {stem!r}; lessons with a quiz: {', '.join(available()) or 'none'}")
    return load_quiz(path)
