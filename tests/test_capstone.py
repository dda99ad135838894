"""The capstone's training windows for continuous recognition: labkit.stream.stream_windows cuts a
recorded stream the way the ring buffer sees it (gestures a few readings early or late, idle
windows away from every gesture)."""

import numpy as np
import pandas as pd
import pytest

from labkit.errors import LabkitError
from labkit.stream import stream_windows

LABELS = ["punch", "flex", "idle"]


def _stream(n=2000):
    """A stream whose reading i holds i in every channel: a window's first value is where it starts."""
    return np.repeat(np.arange(n, dtype=np.float32)[:, None], 6, axis=1)


def test_gestures_at_every_shift_and_idle_windows_away_from_them():
    stream = _stream()
    truth = pd.DataFrame({"start": [300, 1200], "label": ["flex", "punch"]})
    x, y = stream_windows(stream, truth, LABELS, shifts=(-8, 0, 8), n_idle=50, min_gap=40, seed=3)
    assert x.shape == (6 + 50, 119, 6) and x.dtype == np.float32 and y.dtype == np.int64
    starts = x[:, 0, 0].astype(int)
    # each gesture at each shift, labelled with its class index in LABELS
    assert starts[:6].tolist() == [292, 300, 308, 1192, 1200, 1208]
    assert y[:6].tolist() == [1, 1, 1, 0, 0, 0]
    # every window is 119 consecutive readings of the stream, untouched
    assert all(np.array_equal(w, stream[s:s + 119]) for w, s in zip(x, starts))
    # idle windows: labelled idle, none starting within 40 readings of a gesture's start
    idle = starts[6:]
    assert (y[6:] == LABELS.index("idle")).all()
    assert np.abs(idle[:, None] - np.array([300, 1200])[None, :]).min() >= 40
    assert idle.min() >= 0 and idle.max() <= len(stream) - 119
    # seeded: the same windows again, other ones with another seed
    again, _ = stream_windows(stream, truth, LABELS, shifts=(-8, 0, 8), n_idle=50, min_gap=40, seed=3)
    other, _ = stream_windows(stream, truth, LABELS, shifts=(-8, 0, 8), n_idle=50, min_gap=40, seed=4)
    assert np.array_equal(again, x) and not np.array_equal(other, x)


def test_windows_that_would_leave_the_stream_are_dropped_and_pairs_work_as_truth():
    stream = _stream(400)
    x, y = stream_windows(stream, [(5, "punch"), (275, "flex")], LABELS, shifts=(-10, 0, 10), n_idle=0)
    # 5-10 < 0 and 275+10+119 > 400 are left out
    assert x[:, 0, 0].astype(int).tolist() == [5, 15, 265, 275]
    assert y.tolist() == [0, 0, 1, 1]


def test_bad_inputs_are_refused_by_name():
    stream = _stream(500)
    truth = pd.DataFrame({"start": [200], "label": ["wave"]})
    with pytest.raises(LabkitError, match=r"gestures \['wave'\] that are not among the labels"):
        stream_windows(stream, truth, LABELS)
    with pytest.raises(LabkitError, match="idle class 'idle' is not among the labels"):
        stream_windows(stream, [], ["punch", "flex"])
    with pytest.raises(LabkitError, match=r"shape \(n, 6\)"):
        stream_windows(stream[:, :3], [], LABELS)
    with pytest.raises(LabkitError, match="fewer than one window of 119"):
        stream_windows(stream[:100], [], LABELS)
    with pytest.raises(LabkitError, match="columns 'start' and 'label'"):
        stream_windows(stream, pd.DataFrame({"when": [3]}), LABELS)
    with pytest.raises(LabkitError, match="n_idle must be a whole number >= 0"):
        stream_windows(stream, [], LABELS, n_idle=-1)
    # a stream with no room for idle windows away from the gestures
    with pytest.raises(LabkitError, match="no window of the stream starts 300 or more readings away"):
        stream_windows(_stream(300), [(90, "punch")], LABELS, min_gap=300, n_idle=5)
