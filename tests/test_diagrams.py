"""labkit.course.diagrams: lesson 08's map from training to the edge."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from labkit.course import diagrams  # noqa: E402


def boxes():
    return {label for column in diagrams.TOOLCHAIN_COLUMNS.values() for label, _ in column}


def test_every_arrow_joins_two_boxes_and_the_course_route_is_among_them():
    names = boxes()
    for start, end, _ in diagrams.TOOLCHAIN_ROUTES:
        assert start in names and end in names, (start, end)
    routes = {(a, b) for a, b, _ in diagrams.TOOLCHAIN_ROUTES}
    assert diagrams.COURSE_ROUTE <= routes
    assert ("TensorFlow / Keras", ".tflite flatbuffer") in diagrams.COURSE_ROUTE
    # every exchange format is reached from a framework and leads to a runtime
    for fmt, _ in diagrams.TOOLCHAIN_COLUMNS["exchange formats"]:
        assert any(b == fmt for _, b in routes) and any(a == fmt for a, _ in routes), fmt


def test_the_figure_names_every_box_and_draws_the_course_route_bold():
    fig = diagrams.plot_training_to_edge()
    ax = fig.axes[0]
    texts = {t.get_text() for t in ax.texts}
    assert boxes() <= texts
    assert {"train (float32)", "exchange formats", "edge runtimes"} <= texts
    assert any(t.startswith("TRAINING") for t in texts) and any(t.startswith("INFERENCE") for t in texts)
    arrows = [t.arrow_patch for t in ax.texts if getattr(t, "arrow_patch", None) is not None]
    assert sum(a.get_linewidth() > 2 for a in arrows) == len(diagrams.COURSE_ROUTE)
    assert "this course" in ax.get_legend().get_texts()[0].get_text()
    plt.close(fig)


def test_draws_into_a_given_axes():
    fig, ax = plt.subplots()
    assert diagrams.plot_training_to_edge(ax=ax) is fig
    plt.close(fig)
