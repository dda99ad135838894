"""Print every lesson's quiz with its answers and explanations: the instructor's key (Markdown).

    python scripts/quiz_key.py > quiz_key.md

The questions live in ``labkit/course/quizzes/*.yml`` (one file per lesson); the lessons show them
without the answers. This script reads each file through the same checks the lessons use, so a key
that prints is a set of quizzes that load.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labkit.course.quiz import available, quiz  # noqa: E402


def key_markdown() -> str:
    lines = ["# Quiz answers (instructors' key)", ""]
    for stem in available():
        q = quiz(stem)
        lines += [f"## {q.title}", "", f"`{stem}`", ""]
        for i, question in enumerate(q.questions, 1):
            lines.append(f"{i}. {question.ask}")
            for letter, choice in zip(question.letters(), question.choices):
                lines.append(f"   {letter}) {choice}")
            lines.append(f"   **Answer: {question.right_answer()}.** {question.why}")
            lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(key_markdown())
