"""The lessons' self-check quizzes: every question file loads, answers are graded as a learner expects,
a broken file names its mistake, and the stored lessons show their questions without the answers."""

import json
from pathlib import Path

import pytest

from labkit.course.quiz import QUIZ_DIR, NOT_RUNNING, QuizError, available, load_quiz, quiz

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def _write(tmp_path, text: str) -> Path:
    path = tmp_path / "q.yml"
    path.write_text(text, encoding="utf-8")
    return path


ONE_OF_EACH = """
title: Test
questions:
  - ask: Which way?
    choices: [up, down, sideways]
    answer: b
    hint: Think of the slope.
    why: Down the slope.
  - ask: How many updates?
    number: 20
    tolerance: 0.5
    why: 1000 / 50.
"""


def test_choice_questions_take_a_letter_and_say_why(tmp_path, capsys):
    q = load_quiz(_write(tmp_path, ONE_OF_EACH))
    assert q.check(1, "B") is True  # letters in either case, spaces ignored
    assert "right. Down the slope." in capsys.readouterr().out
    assert q.check(1, "a") is False
    out = capsys.readouterr().out
    assert "not quite" in out and "Think of the slope." in out and "down" not in out.lower().split("hint")[0]
    with pytest.raises(QuizError):
        q.question(1).grade("d")  # only a, b, c are choices


def test_numeric_questions_accept_within_the_tolerance_only(tmp_path, capsys):
    q = load_quiz(_write(tmp_path, ONE_OF_EACH))
    assert q.check(2, 20.4) and q.check(2, "19.6") and q.check(2, "20")
    assert not q.check(2, 20.6) and not q.check(2, 19.4)
    capsys.readouterr()
    # not a number: a line that says so, not a traceback, and not counted as right
    assert q.check(2, "twenty") is False and "wants a number" in capsys.readouterr().out
    assert q.check(2, float("nan")) is False and q.check(2, True) is False


def test_score_counts_the_last_answer_per_question(tmp_path):
    q = load_quiz(_write(tmp_path, ONE_OF_EACH))
    assert q.score() == "0 of 2 right"
    q.check(1, "b"), q.check(2, 20)
    assert q.score() == "2 of 2 right"
    q.check(1, "c")
    assert q.score() == "1 of 2 right"


def test_reveal_gives_the_answer_and_why(tmp_path, capsys):
    q = load_quiz(_write(tmp_path, ONE_OF_EACH))
    q.reveal(1), q.reveal(2)
    out = capsys.readouterr().out
    assert "b) down. Down the slope." in out and "20 (within ±0.5)" in out
    with pytest.raises(QuizError, match="from 1 to 2"):
        q.reveal(3)


def test_the_controls_grade_what_the_learner_picks(tmp_path):
    q = load_quiz(_write(tmp_path, ONE_OF_EACH))
    rows = q.controls().children
    _, letters, button, feedback = rows[0].children
    button.click()
    assert "choose an answer first" in feedback.value
    letters.value = "c"
    button.click()
    assert "not quite" in feedback.value
    letters.value = "b"
    button.click()
    assert "right" in feedback.value
    _, number, button, feedback = rows[1].children
    number.value = "20.2"
    button.click()
    assert "right" in feedback.value and q.score() == "2 of 2 right"


@pytest.mark.parametrize("text, says", [
    ("title: T\nquestions: []\n", "non-empty list"),
    ("questions:\n  - {ask: a, why: w, number: 1}\n", "'title'"),
    ("title: T\nquestions:\n  - {ask: a, why: w, choices: [x, y], answer: c}\n", "letters a, b"),
    ("title: T\nquestions:\n  - {ask: a, why: w, choices: [x], answer: a}\n", "2 to 6"),
    ("title: T\nquestions:\n  - {ask: a, why: w, choices: [x, x], answer: a}\n", "same text"),
    ("title: T\nquestions:\n  - {ask: a, why: w, choices: [x, y], number: 1, answer: a}\n", "not both"),
    ("title: T\nquestions:\n  - {ask: a, why: w, number: .nan}\n", "finite number"),
    ("title: T\nquestions:\n  - {ask: a, why: w, number: 1, tolerance: -1}\n", "0 or more"),
    ("title: T\nquestions:\n  - {ask: a, choices: [x, y], answer: a}\n", "'why'"),
    ("title: T\nquestions:\n  - {ask: a, why: w, choices: [x, y], answer: a, answr: b}\n", "unknown key"),
    ("title: T\nquestions:\n  - [1, 2]\n", "mapping"),
    ("title: [unclosed\n", "YAML"),
    ("- just a list\n", "'title' and 'questions' only"),
])
def test_a_broken_question_file_names_its_mistake(tmp_path, text, says):
    with pytest.raises(QuizError, match=says) as err:
        load_quiz(_write(tmp_path, text))
    assert "q.yml" in str(err.value)


def test_a_lesson_name_that_is_a_path_or_unknown_is_refused():
    for bad in ("../../etc/passwd", "/tmp/x", ".hidden", "", None):
        with pytest.raises(QuizError):
            quiz(bad)
    with pytest.raises(QuizError, match="no quiz for '99_nothing'"):
        quiz("99_nothing")


def test_html_escapes_the_questions(tmp_path):
    q = load_quiz(_write(tmp_path, ONE_OF_EACH.replace("Which way?", "Is <b> & <script> shown?")))
    page = q.as_html()
    assert "<script>" not in page and "&lt;script&gt;" in page


@pytest.mark.parametrize("stem", available())
def test_every_quiz_file_loads_and_belongs_to_a_lesson(stem):
    q = quiz(stem)
    assert (NOTEBOOKS / f"{stem}.ipynb").is_file(), f"{stem}.yml names no lesson in notebooks/"
    assert 4 <= len(q.questions) <= 8, f"{stem}: a quiz is four to eight questions"
    letters = [question.answer for question in q.questions if not question.is_numeric]
    # the right letter is not always in the same place
    assert len(letters) < 3 or len(set(letters)) > 1, f"{stem}: every answer is {letters[0]!r}"


@pytest.mark.parametrize("stem", available())
def test_the_stored_lesson_shows_its_questions_but_not_the_answers(stem):
    nb = json.loads((NOTEBOOKS / f"{stem}.ipynb").read_text(encoding="utf-8"))
    cells = [c for c in nb["cells"] if c["cell_type"] == "code" and f'quiz("{stem}")' in "".join(c["source"])]
    assert len(cells) == 1, f"{stem}: one cell shows the quiz with quiz({stem!r})"
    texts = ["".join(o.get("data", {}).get("text/plain", "")) for o in cells[0]["outputs"]]
    q = quiz(stem)
    shown = texts[0]
    for i, question in enumerate(q.questions, 1):
        assert f"{i}. {question.ask}" in shown
    assert all(question.why not in shown for question in q.questions)
    assert NOT_RUNNING in texts, f"{stem}: the answer controls' stored text is not the one-line note"


def test_every_quiz_file_is_in_the_package_data():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"course/quizzes/*.yml"' in pyproject
    assert QUIZ_DIR == ROOT / "labkit" / "course" / "quizzes"
