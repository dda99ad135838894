"""Continuous recognition, measured: hits, misses and false alarms per minute on a test stream, the
continuous sketch on the emulated board (same events as Python? its RAM beside the trigger sketch's),
and the streaming LSTM's cost per call.

    .venv/bin/python benchmarks/stream.py [mlp|cnn1d]   # prints Markdown tables (default: mlp)

The model is a small MLP (or 1-D CNN) over the 119 x 6 window with an idle class, trained on synthetic gestures
(also cut up to 8 readings early or late) and, as idle, on rest and on stream windows that start
12 or more readings away from a gesture. The test stream holds 40 gestures of other synthetic
people between rest segments of 1 to 4 seconds (the board flat, the simulated sensor noise).
The gestures come from the earlier generator (``make_gestures(calibrated=False)``), whose gestures all end
with the board near flat, as the rest segments here are; calibrated people end in other poses, and their
realistic streams (idle motion between gestures, ``make_gesture_stream``) are benchmarks/capstone.py's.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

import labkit  # noqa: F401
from labkit import models, train
from labkit.compress.quantize import to_int8_tflite
from labkit.datasets import make_gestures, normalize_imu
from labkit.deploy.codegen import generate_c
from labkit.deploy.sketch import write_sketch
from labkit.keras import keras
from labkit.stream import StreamRecognizer, score_events
from labkit.verify import run_sketch_emulated, verify

LABELS = ["punch", "flex", "wave", "circle", "idle"]
REST = np.array([0, 0, 1, 0, 0, 0], np.float32)
REST_NOISE = np.array([0.02] * 3 + [2.0] * 3, np.float32)


def make_stream(windows, y, seed, rest=(119, 476)):
    """Gesture windows between rest segments: the stream (n, 6) and the true events (start, label)."""
    rng = np.random.default_rng(seed)
    parts, truth, pos = [], [], 0
    for w, k in zip(windows, y):
        r = (REST + rng.normal(size=(int(rng.integers(*rest)), 6)) * REST_NOISE).astype(np.float32)
        parts += [r, w]
        truth.append((pos + len(r), LABELS[k]))
        pos += len(r) + len(w)
    parts.append((REST + rng.normal(size=(rest[0], 6)) * REST_NOISE).astype(np.float32))
    return np.concatenate(parts), pd.DataFrame(truth, columns=["start", "label"])


def train_model(arch: str = "mlp"):
    ds = make_gestures(n_per_class=60, seed=7, calibrated=False)
    stream, truth = make_stream(ds.x, ds.y, seed=8)
    rng = np.random.default_rng(9)
    starts = truth["start"].to_numpy()
    idle = []
    while len(idle) < 400:
        s = int(rng.integers(0, len(stream) - 119))
        if np.abs(starts - s).min() >= 12:
            idle.append(stream[s:s + 119])
    shifted = [stream[t + d:t + d + 119] for t in starts for d in (-8, -4, 4, 8)]
    x = normalize_imu(np.concatenate([ds.x, np.stack(shifted), np.stack(idle)]))
    y = np.concatenate([ds.y, np.repeat(ds.y, 4), np.full(len(idle), 4)])
    train.set_seed(0)
    if arch == "mlp":
        m = models.mlp(x.shape[1:], len(LABELS), hidden=(32, 16))
    else:
        m = models.cnn1d(x.shape[1:], len(LABELS), filters=(8, 16))
    train.fit_classifier(m, x, y, epochs=20, seed=0)
    return to_int8_tflite(m, x, seed=0)


def lstm_costs(work: Path) -> list[dict]:
    """The 119-step gesture LSTM(16) -> Dense(4) -> Softmax as a window per call and as one reading per call."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((119, 6), batch_size=1)
    out = keras.layers.Softmax()(keras.layers.Dense(4)(keras.layers.LSTM(16)(inp)))
    x = normalize_imu(make_gestures(n_per_class=16, seed=3, calibrated=False).x)
    tfl = to_int8_tflite(keras.Model(inp, out), x, seed=0)
    rows = []
    for mode in ("reset", "carry"):
        cm = generate_c(tfl, work / f"lstm_{mode}", name="g", lstm_state=mode)
        r = verify(tfl, samples=3, target="cortex-m4", workdir=work / f"v_{mode}", cmodel=cm)
        rows.append(dict(mode="a window per call (reset)" if mode == "reset" else "one reading per call (carry)",
                         bit_exact=r.bit_exact, references=r.as_dict()["references"], arena_bytes=cm.arena_bytes,
                         state_bytes=(cm.streaming or {}).get("state_bytes", 0), macs_per_call=cm.macs,
                         instructions_per_call=r.metrics["instructions"]))
    return rows


def table(rows: list[dict]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    return "\n".join(lines + ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows])


def main(arch: str = "mlp") -> str:
    tfl = train_model(arch)
    test = make_gestures(n_per_class=10, seed=31, calibrated=False)
    stream, truth = make_stream(test.x, test.y, seed=32)
    out = [f"test stream: {len(stream)} readings ({len(stream) / 119 / 60:.2f} min at 119 Hz), {len(truth)} gestures\n"]
    rows = []
    for threshold in (0.5, 0.6, 0.8):
        for debounce in (1, 2, 3):
            ev = StreamRecognizer(tfl, LABELS, hop=10, threshold=threshold, debounce=debounce).run(stream)
            s = score_events(ev, truth, len(stream))
            rows.append(dict(threshold=threshold, debounce=debounce, hits=s.hits, misses=s.misses,
                             false_alarms=s.false_alarms, false_alarms_per_minute=round(s.false_alarms_per_minute, 2)))
    out.append(table(rows))
    settings = dict(hop=10, threshold=0.6, debounce=2)
    want = StreamRecognizer(tfl, LABELS, **settings).run(stream)
    sketch_rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for board in ("nano33ble_sense", "nano33ble_sense_rev2"):
            ram = {}
            for mode in ("trigger", "continuous"):
                folder, cm = write_sketch(tfl, tmp / board / mode, sketch="g", name="model", labels=LABELS,
                                          app="gesture", board=board, mode=mode, **settings)
                lines = run_sketch_emulated(folder, tmp / board / f"emu_{mode}", readings=stream)
                ram[mode] = json.loads((tmp / board / f"emu_{mode}" / "sketch_sizes.json").read_text())["ram_bytes"]
                if mode == "continuous":
                    got = [(int(l.split()[1][2:]), l.split("label=", 1)[1]) for l in lines if l.startswith("event")]
                    same = got == list(zip(want["sample"], want["label"]))
            sketch_rows.append(dict(board=board, events=len(want), same_events_as_python=same,
                                    arena_bytes=cm.arena_bytes, ram_trigger=ram["trigger"],
                                    ram_continuous=ram["continuous"], ram_added=ram["continuous"] - ram["trigger"]))
        out += ["", f"continuous sketch on the emulated board ({settings}):", table(sketch_rows)]
        out += ["", "streaming LSTM (emulated Cortex-M4, 3 sequences):", table(lstm_costs(tmp))]
    return "\n".join(out)


if __name__ == "__main__":
    print(main(sys.argv[1] if len(sys.argv) > 1 else "mlp"))
    sys.exit(0)
