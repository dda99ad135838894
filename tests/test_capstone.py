"""The capstone's training windows for continuous recognition: labkit.stream.stream_windows cuts a
recorded stream the way the ring buffer sees it (gestures a few readings early or late, idle
windows away from every gesture)."""

import numpy as np
import pandas as pd
import pytest

from labkit.errors import LabkitError
from labkit.stream import StreamRecognizer, stream_windows

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


@pytest.mark.parametrize("board", ["nano33ble_sense", "nano33ble_sense_rev2"])
def test_continuous_sketch_of_a_1d_cnn_prints_pythons_events_on_a_gesture_stream(tmp_path, board):
    """The capstone's path without its training: a 1-D CNN (conv, pool, global average, softmax) in the
    continuous sketch, fed a stream of a calibrated person's idle hand and gestures, on the emulated
    board of each revision: the same events as StreamRecognizer, reading for reading."""
    from labkit import models, train
    from labkit.compress.quantize import to_int8_tflite
    from labkit.datasets import normalize_imu
    from labkit.datasets.streams import make_gesture_stream
    from labkit.deploy.sketch import arduino_float, write_sketch
    from labkit.verify import run_sketch_emulated

    labels = ["punch", "flex", "wave", "circle", "updown", "idle"]
    stream, truth = make_gesture_stream(seconds=30, gestures_per_minute=12, classes=labels[:5], person=1, seed=5)
    x, _ = stream_windows(stream, truth, labels, n_idle=40, seed=0)
    train.set_seed(0)  # untrained, seeded: the comparison needs events, not good ones
    tflite = to_int8_tflite(models.cnn1d((119, 6), len(labels), filters=(12, 24)), normalize_imu(x), seed=0)
    settings = dict(hop=10, threshold=0.0, debounce=2, refractory=4)  # every run of 2 non-idle wins is an event
    want = StreamRecognizer(tflite, labels, **settings).run(stream)
    assert len(want) >= 5, "too few events for the comparison to mean something"
    folder, _ = write_sketch(tflite, tmp_path, sketch="listen", name="m", labels=labels, app="gesture", board=board,
                             mode="continuous", **settings)
    lines = run_sketch_emulated(folder, tmp_path / "emu", readings=stream)
    assert lines[-1] == "#end of replay"
    assert [l for l in lines if l.startswith("event ")] == [
        f"event n={e.sample} score={arduino_float(e.score, 3)} label={e.label}" for e in want.itertuples()]
