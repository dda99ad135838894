"""Continuous recognition: labkit.stream's sliding window, threshold and debouncing in Python, and the
generated gesture sketch's continuous mode on the emulated board printing the same events."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from labkit.deploy.sketch import arduino_float, write_sketch
from labkit.errors import LabkitError
from labkit.stream import Debouncer, StreamRecognizer, quantize_readings, score_events, threshold_q

LABELS = ["punch", "flex", "wave", "circle", "idle"]
REST = np.array([0, 0, 1, 0, 0, 0], np.float32)  # the board flat on the table: +1 g on aZ
REST_NOISE = np.array([0.02] * 3 + [2.0] * 3, np.float32)  # the simulated sensor's noise: 0.02 g, 2 deg/s


def _rest(n, rng):
    return (REST + rng.normal(size=(n, 6)) * REST_NOISE).astype(np.float32)


def make_test_stream(windows, y, seed, rest=(60, 180)):
    """Gesture windows (each starting at its trigger) between rest segments of random length: the
    stream (n, 6) and the true events (start, label)."""
    rng = np.random.default_rng(seed)
    parts, truth, pos = [], [], 0
    for w, k in zip(windows, y):
        r = _rest(int(rng.integers(*rest)), rng)
        parts += [r, w]
        truth.append((pos + len(r), LABELS[k]))
        pos += len(r) + len(w)
    parts.append(_rest(int(rng.integers(*rest)), rng))
    return np.concatenate(parts), pd.DataFrame(truth, columns=["start", "label"])


@pytest.fixture(scope="module")
def stream_model():
    """An MLP over 119 x 6 with an idle class: trained on the gestures (also cut up to 8 readings
    early or late), and as idle on rest and on windows of a stream that start 12 or more readings
    away from a gesture's start."""
    from labkit import models, train
    from labkit.compress.quantize import to_int8_tflite
    from labkit.datasets import make_gestures, normalize_imu

    ds = make_gestures(n_per_class=40, seed=7)
    stream, truth = make_test_stream(ds.x, ds.y, seed=8)
    rng = np.random.default_rng(9)
    starts = truth["start"].to_numpy()
    idle = []
    while len(idle) < 200:
        s = int(rng.integers(0, len(stream) - 119))
        if np.abs(starts - s).min() >= 12:
            idle.append(stream[s:s + 119])
    # the gestures a few readings early or late too: the hop seldom lands on a gesture's first reading
    shifted = [stream[t + d:t + d + 119] for t in starts for d in (-8, -4, 4, 8)]
    x = normalize_imu(np.concatenate([ds.x, np.stack(shifted), np.stack(idle)]))
    y = np.concatenate([ds.y, np.repeat(ds.y, 4), np.full(len(idle), 4)])
    train.set_seed(0)
    m = models.mlp(x.shape[1:], len(LABELS), hidden=(32, 16))
    train.fit_classifier(m, x, y, epochs=20, seed=0)
    return m, to_int8_tflite(m, x, seed=0)


@pytest.fixture(scope="module")
def test_stream():
    from labkit.datasets import make_gestures

    ds = make_gestures(n_per_class=3, seed=31)  # people and repetitions the model was not trained on
    return make_test_stream(ds.x, ds.y, seed=32)


# ---- the decision rule ------------------------------------------------------------------


def test_debouncer_needs_k_wins_in_a_row_one_event_per_run_and_a_refractory_period():
    d = Debouncer(debounce=2, refractory=3, idle=4)
    hops = [(0, True), (0, True), (0, True), (0, True),  # a run of 4 wins of class 0: one event, at its 2nd hop
            (1, True), (1, False), (1, True),            # 1 wins, loses confidence, wins once: no event
            (2, True), (2, True),                        # a new run of 2 right after: event (cooldown over)
            (3, True), (3, True),                        # another run at once: held back by the refractory period
            (3, True), (3, True),                        # still the same run when the period ends: its event now
            (4, True), (4, True), (4, True)]             # the idle class never makes an event
    assert [d.step(b, c) for b, c in hops] == [-1, 0, -1, -1, -1, -1, -1, -1, 2, -1, -1, -1, 3, -1, -1, -1]


def test_threshold_q_is_the_smallest_int8_score_reaching_the_threshold():
    scale, zp = 1 / 256, -128  # an int8 softmax
    assert threshold_q(0.8, scale, zp) == -128 + 205  # 204/256 = 0.797 < 0.8 <= 205/256
    assert threshold_q(0.5, scale, zp) == 0  # exactly 128/256
    assert threshold_q(0.0, scale, zp) == -128
    with pytest.raises(LabkitError, match="above the largest score"):
        threshold_q(1.0, scale, zp)


def test_quantize_readings_rounds_half_away_from_zero_as_lroundf():
    assert quantize_readings(np.array([0.5, 1.5, -0.5, -1.5, 0.49999997, 2.5]), 1.0, 0).tolist() == [1, 2, -1, -2, 0, 3]
    assert quantize_readings(np.array([1000.0, -1000.0]), 1.0, 3).tolist() == [127, -128]


def test_score_events_counts_hits_misses_and_false_alarms_per_minute():
    truth = pd.DataFrame({"start": [100, 500, 900], "label": ["punch", "wave", "flex"]})
    events = pd.DataFrame({"start": [110, 480, 520, 2000, 905], "label": ["punch", "wave", "wave", "flex", "punch"]})
    s = score_events(events, truth, n_samples=119 * 60, tolerance=30)  # one minute at 119 Hz
    # punch@110 and wave@480 hit; the second wave, flex@2000 and punch@905 (wrong label) are false alarms
    assert (s.hits, s.misses, s.false_alarms) == (2, 1, 3)
    assert s.false_alarms_per_minute == pytest.approx(3.0)
    with pytest.raises(LabkitError, match="columns 'start' and 'label'"):
        score_events(events, pd.DataFrame({"when": [1]}), n_samples=100)


def test_bad_settings_are_refused_by_name(stream_model):
    _, tflite = stream_model
    with pytest.raises(LabkitError, match="hop 200 is longer than the window 119"):
        StreamRecognizer(tflite, LABELS, hop=200)
    with pytest.raises(LabkitError, match="debounce must be a whole number >= 1"):
        StreamRecognizer(tflite, LABELS, debounce=0)
    with pytest.raises(LabkitError, match="4 labels given but the model has 5 outputs"):
        StreamRecognizer(tflite, LABELS[:4])
    rec = StreamRecognizer(tflite, LABELS)
    with pytest.raises(LabkitError, match=r"shape \(n, 6\)"):
        rec.push(np.zeros((10, 3)))
    with pytest.raises(LabkitError, match="NaN"):
        rec.push(np.full((10, 6), np.nan))


# ---- the recogniser on a stream -------------------------------------------------------------


def test_recognizer_finds_the_gestures_and_pushing_in_pieces_changes_nothing(stream_model, test_stream):
    keras_model, tflite = stream_model
    stream, truth = test_stream
    rec = StreamRecognizer(tflite, LABELS, hop=10, threshold=0.6, debounce=2)
    events = rec.run(stream)
    assert list(events.columns) == ["sample", "start", "label", "score", "score_q"]
    assert (events["sample"] - events["start"] == 119).all() and ((events["sample"] - 119) % 10 == 0).all()
    assert (events["score_q"] >= rec.config.threshold_q).all() and "idle" not in set(events["label"])
    s = score_events(events, truth, len(stream))
    assert s.recall >= 0.9 and s.false_alarms <= 1, s  # a small MLP on 12 gestures of people it never saw
    # the same stream in uneven pieces, as a serial port delivers it: the same events
    rec.reset()
    pieces = [rec.push(stream[a:b]) for a, b in zip([0, 7, 130, 1000], [7, 130, 1000, len(stream)])]
    assert pd.DataFrame([e for p in pieces for e in p]).equals(events)
    # the float Keras model through the same rule finds about the same gestures
    float_events = StreamRecognizer(keras_model, LABELS, hop=10, threshold=0.6, debounce=2).run(stream)
    assert score_events(float_events, truth, len(stream)).recall >= 0.9


# ---- the sketch's continuous mode on the emulated board ----------------------------------------


@pytest.mark.parametrize("board,imu_library", [("nano33ble_sense", "Arduino_LSM9DS1"),
                                               ("nano33ble_sense_rev2", "Arduino_BMI270_BMM150")])
def test_continuous_sketch_prints_the_same_events_as_python(stream_model, test_stream, tmp_path, board, imu_library):
    from labkit.verify import run_sketch_emulated

    _, tflite = stream_model
    stream, _ = test_stream
    settings = dict(hop=10, threshold=0.6, debounce=2, refractory=8)
    folder, cm = write_sketch(tflite, tmp_path, sketch="stream", name="gesture_model", labels=LABELS, app="gesture",
                              board=board, mode="continuous", **settings)
    ino = (folder / "stream.ino").read_text()
    assert f"#include <{imu_library}.h>" in ino and "malloc(" not in ino
    lines = run_sketch_emulated(folder, tmp_path / "emu", readings=stream)
    got = [re.fullmatch(r"event n=(\d+) score=([\d.]+) label=(.+)", l) for l in lines if l.startswith("event")]
    want = StreamRecognizer(tflite, LABELS, **settings).run(stream)
    assert len(want) >= 6  # enough events for the comparison to mean something
    assert [(int(m.group(1)), m.group(3)) for m in got] == list(zip(want["sample"], want["label"]))
    assert [m.group(2) for m in got] == [arduino_float(s, 3) for s in want["score"]]
    assert lines[-1] == "#end of replay"  # it ran through the whole stream
    # constant RAM: the ring buffer of 119 int8 readings beside the model's arena, no heap
    manifest = json.loads((folder / "gesture_model.json").read_text())
    assert manifest["mode"] == "continuous" and manifest["continuous"]["window"] == 119
    sizes = json.loads((tmp_path / "emu" / "sketch_sizes.json").read_text())
    assert sizes["ram_bytes"] >= cm.arena_bytes + 119 * 6


def test_continuous_sketch_with_the_tflm_backend_has_the_same_app_code(stream_model, tmp_path):
    import warnings

    _, tflite = stream_model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the old-TFLM op version warning, tested in test_sketch.py
        tflm, _ = write_sketch(tflite, tmp_path / "t", sketch="g", name="m", labels=LABELS, mode="continuous",
                               app="gesture", backend="tflm")
    nn, _ = write_sketch(tflite, tmp_path / "n", sketch="g", name="m", labels=LABELS, mode="continuous", app="gesture")
    body = lambda p: p.read_text().split("*/", 1)[1]  # noqa: E731
    assert body(tflm / "g.ino") == body(nn / "g.ino") and "infer();" in body(nn / "g.ino")
    assert json.loads((tflm / "labkit.json").read_text())["continuous"]["idle"] == 4


def test_continuous_mode_is_for_the_gesture_app(stream_model, tmp_path):
    _, tflite = stream_model
    with pytest.raises(LabkitError, match="--mode continuous is for --app gesture"):
        write_sketch(tflite, tmp_path, sketch="s", app="serial", mode="continuous")
    with pytest.raises(LabkitError, match="unknown mode"):
        write_sketch(tflite, tmp_path, sketch="s", app="gesture", mode="sliding")
    assert not (tmp_path / "s").exists()


def test_sketch_cli_writes_the_continuous_sketch(stream_model, tmp_path, capsys):
    from labkit import cli

    _, tflite = stream_model
    model = tmp_path / "g.tflite"
    model.write_bytes(tflite)
    assert cli.main(["sketch", str(model), "-o", str(tmp_path / "out"), "--labels", ",".join(LABELS),
                     "--mode", "continuous", "--hop", "5", "--threshold", "0.7", "--debounce", "3"]) == 0
    out = capsys.readouterr().out
    assert "a 119-reading ring buffer (714 bytes of RAM), an inference every 5 readings, threshold 0.7" in out
    ino = (tmp_path / "out" / "g" / "g.ino").read_text()
    assert "const int HOP = 5;" in ino and "const int DEBOUNCE = 3;" in ino and "const int IDLE = 4;" in ino
    assert cli.main(["sketch", str(model), "-o", str(tmp_path / "o2"), "--mode", "continuous", "--threshold", "2"]) == 2
    assert "threshold 2.0 is above the largest score the model can give" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()


def test_stream_cli_on_a_recorded_stream(stream_model, test_stream, tmp_path, capsys):
    from labkit import cli

    _, tflite = stream_model
    stream, truth = test_stream
    model = tmp_path / "g.tflite"
    model.write_bytes(tflite)
    pd.DataFrame(stream, columns=["aX", "aY", "aZ", "gX", "gY", "gZ"]).to_csv(tmp_path / "rec.csv", index=False,
                                                                            float_format="%.9g")
    truth.to_csv(tmp_path / "truth.csv", index=False)
    args = ["stream", str(model), str(tmp_path / "rec.csv"), "--labels", ",".join(LABELS), "--threshold", "0.6"]
    assert cli.main(args + ["--truth", str(tmp_path / "truth.csv")]) == 0
    out = capsys.readouterr().out.splitlines()
    want = StreamRecognizer(tflite, LABELS, threshold=0.6).run(stream)
    assert [l for l in out if l.startswith("event")] == [
        f"event n={e.sample} start={e.start} score={e.score:.3f} label={e.label}" for e in want.itertuples()]
    s = score_events(want, truth, len(stream))
    assert out[-1].startswith(f"12 true gestures: {s.hits} found, {s.misses} missed, {s.false_alarms} false alarm(s)")
    # the same from an .npz that carries its truth
    np.savez(tmp_path / "rec.npz", x=stream, start=truth["start"].to_numpy(), label=truth["label"].to_numpy(str))
    assert cli.main(["stream", str(model), str(tmp_path / "rec.npz"), "--labels", ",".join(LABELS),
                     "--threshold", "0.6"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == out[-1]
    # a file that is not a stream: one line naming the problem
    (tmp_path / "bad.csv").write_text("x,y\n1,2\n")
    assert cli.main(["stream", str(model), str(tmp_path / "bad.csv"), "--labels", ",".join(LABELS)]) == 2
    assert "the header is x,y; expected aX,aY,aZ,gX,gY,gZ" in capsys.readouterr().err
