"""The capstone (lesson 12), measured: leave-one-person-out accuracy with and without augmentation,
false alarms per minute on an idle stream and on a stream of gestures, recall, and the capstone
model's flash, RAM and instructions on the emulated Cortex-M4.

    .venv/bin/python benchmarks/capstone.py            # about 3 minutes on 2 cores; prints Markdown tables

The recipe is lesson 12's, step for step: five gestures + idle from 7 calibrated synthetic people
(seed 0); people 0-5 to develop on, person 6 the newcomer, never trained on. LOPO over people 0-5
with a 1-D CNN (16, 32): 60 epochs on the windows as they are, or 15 epochs on them plus 3 randomly
rotated copies (the same number of gradient steps). The capstone model: the widest 1-D CNN of
lesson 12's candidates within flash 32 KB / RAM 8 KB / 350,000 instructions per window (measured
untrained), trained on augmented trigger windows plus windows cut from 90-s streams of people 0-5,
full int8. Continuous recognition on the newcomer's 2-minute stream (24 gestures) and 2 minutes of
their idle hand: hop 10, threshold 0.7, debounce 2; an event counts as a hit within one window of
the gesture's start. The continuous sketch replays the gesture stream on the emulated board (Rev1,
Rev2) and its events are compared with Python's.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import labkit  # noqa: F401  (selects tf_keras first)
from labkit import models, reference, train
from labkit.automl import Budget, measure_candidate, parse_size
from labkit.compress import quantize
from labkit.datasets import make_gestures, normalize_imu, split_by_person
from labkit.datasets.augment import augment, augment_dataset
from labkit.datasets.streams import make_gesture_stream
from labkit.deploy.sketch import arduino_float, write_sketch
from labkit.evaluate import leave_one_person_out
from labkit.stream import StreamRecognizer, score_events, stream_windows
from labkit.verify import run_sketch_emulated, verify

SEED = 0
GESTURES = ("punch", "flex", "wave", "circle", "updown")
N_PEOPLE, NEWCOMER = 7, 6
BUDGET = Budget(flash_bytes=parse_size("32K"), ram_bytes=parse_size("8K"), instructions=350_000)
CANDIDATES = [(8, 16), (12, 24), (12, 32), (16, 24), (16, 32)]
HOP, THRESHOLD, DEBOUNCE = 10, 0.7, 2


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main() -> None:
    t0 = time.monotonic()
    ds = make_gestures(n_per_class=50, classes=GESTURES, n_people=N_PEOPLE, seed=SEED, calibrated=True, idle=True)
    labels = list(ds.info.class_names)
    dev, newcomer = split_by_person(ds, [NEWCOMER])

    # 1. leave one person out, without and with augmentation (the same number of gradient steps)
    def build():
        return models.cnn1d((119, 6), len(labels), filters=(16, 32))

    fit = {"epochs": 60, "batch_size": 32}
    part_train, part_test = dev.split(test_size=0.25, seed=SEED)
    train.set_seed(SEED)
    m = build()
    train.fit_classifier(m, normalize_imu(part_train.x), part_train.y, seed=SEED, **fit)
    random_acc = train.accuracy(m, normalize_imu(part_test.x), part_test.y)
    plain, plain_mean = leave_one_person_out(build, dev, fit, transform=normalize_imu, seed=SEED, verbose=False)
    log(f"LOPO without augmentation: {plain_mean:.3f}")
    aug, aug_mean = leave_one_person_out(build, dev, {**fit, "epochs": 15}, augment={"copies": 3, "rotation_degrees": 180},
                                         transform=normalize_imu, seed=SEED, verbose=False)
    log(f"LOPO with augmentation: {aug_mean:.3f}")

    # 2. the widest candidate within the budget, measured untrained
    measured = {}
    for filters in CANDIDATES:
        train.set_seed(SEED)
        measured[filters] = measure_candidate(models.cnn1d((119, 6), len(labels), filters=filters),
                                              normalize_imu(dev.x[:64]), BUDGET, seed=SEED)
    chosen = max((f for f in CANDIDATES if measured[f]["fits"]), key=lambda f: measured[f]["macs"])
    log(f"chosen: cnn1d {chosen}")

    # 3. train it on what the ring buffer sees, int8
    cut = [stream_windows(*make_gesture_stream(seconds=90, gestures_per_minute=14, classes=GESTURES, person=p,
                                               n_people=N_PEOPLE, seed=SEED + 10 + p), labels, n_idle=150, seed=SEED + p)
           for p in range(NEWCOMER)]
    x_cut, y_cut = np.concatenate([c[0] for c in cut]), np.concatenate([c[1] for c in cut])
    aug_dev = augment_dataset(dev, copies=3, seed=SEED, max_shift=12)
    x_fit = normalize_imu(np.concatenate([aug_dev.x, x_cut, augment(x_cut, np.random.default_rng(SEED), max_shift=0)]))
    y_fit = np.concatenate([aug_dev.y, y_cut, y_cut])
    train.set_seed(SEED)
    model = models.cnn1d((119, 6), len(labels), filters=chosen, name="capstone")
    train.fit_classifier(model, x_fit, y_fit, epochs=20, batch_size=32, seed=SEED)
    x_new = normalize_imu(newcomer.x)
    tflite = quantize.to_int8_tflite(model, x_fit, seed=SEED)
    float_acc = train.accuracy(model, x_new, newcomer.y)
    int8_acc = quantize.evaluate_tflite(tflite, x_new, newcomer.y)

    # 4. bit-exact on the host and the Cortex-M4, with the sizes as linked
    (inp,), _ = reference.io_details(tflite)
    q_new = quantize.quantize(x_new, inp.scale, inp.zero_point)
    host = verify(tflite, inputs=q_new, target="host")
    m4 = verify(tflite, inputs=q_new, target="cortex-m4")

    # 5. continuous recognition on the newcomer's streams
    stream, truth = make_gesture_stream(seconds=120, gestures_per_minute=12, classes=GESTURES, person=NEWCOMER,
                                        n_people=N_PEOPLE, seed=SEED + 100)
    idle_stream, none = make_gesture_stream(seconds=120, gestures_per_minute=0, classes=GESTURES, person=NEWCOMER,
                                            n_people=N_PEOPLE, seed=SEED + 101)
    rec = StreamRecognizer(tflite, labels, hop=HOP, threshold=THRESHOLD, debounce=DEBOUNCE)
    events = rec.run(stream)
    mixed = score_events(events, truth, len(stream), tolerance=119)
    quiet = score_events(rec.run(idle_stream), none, len(idle_stream), tolerance=119)
    settings = []
    for thr, deb in ((0.5, 1), (0.5, 2), (0.7, 2), (0.8, 2), (0.7, 3)):
        r = StreamRecognizer(tflite, labels, hop=HOP, threshold=thr, debounce=deb)
        s = score_events(r.run(stream), truth, len(stream), tolerance=119)
        q = score_events(r.run(idle_stream), none, len(idle_stream), tolerance=119)
        settings.append((thr, deb, s, q))

    # 6. the continuous sketch on the emulated board prints the same events
    want = [f"event n={e.sample} score={arduino_float(e.score, 3)} label={e.label}" for e in events.itertuples()]
    same, sketch_sizes = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for board in ("nano33ble_sense", "nano33ble_sense_rev2"):
            folder, _ = write_sketch(tflite, Path(tmp) / board, sketch="listen", name="capstone_model", labels=labels,
                                     app="gesture", board=board, mode="continuous", hop=HOP, threshold=THRESHOLD,
                                     debounce=DEBOUNCE)
            lines = run_sketch_emulated(folder, Path(tmp) / board / "emu", readings=stream)
            same[board] = [l for l in lines if l.startswith("event ")] == want
            sketch_sizes[board] = json.loads((Path(tmp) / board / "emu" / "sketch_sizes.json").read_text())

    print("| measured on | figure |")
    print("|---|---|")
    print(f"| random 75/25 split of people 0-5 (same people on both sides) | accuracy {random_acc:.2f} |")
    print(f"| leave one person out, people 0-5, no augmentation (60 epochs) | mean {plain_mean:.2f} "
          f"(per person {', '.join(f'{a:.2f}' for a in plain['accuracy'])}) |")
    print(f"| leave one person out, 3 rotated copies (15 epochs) | mean {aug_mean:.2f} "
          f"(per person {', '.join(f'{a:.2f}' for a in aug['accuracy'])}) |")
    print(f"| capstone model | cnn1d {chosen[0]}-{chosen[1]}, {model.count_params():,} parameters, "
          f"{m4.metrics['macs']:,} MACs |")
    print(f"| newcomer's {len(x_new)} windows | float32 {float_acc:.2f}, int8 {int8_acc:.2f} |")
    print(f"| int8 C, host / emulated Cortex-M4 | bit-exact {host.bit_exact} / {m4.bit_exact} "
          f"({' and '.join(m4.references)}) |")
    print(f"| as linked for the Cortex-M4 | flash {m4.metrics['flash_bytes']:,} B, RAM {m4.metrics['ram_bytes']:,} B, "
          f"{m4.metrics['instructions']:,} instructions per window |")
    print(f"| idle stream, {quiet.minutes:.0f} min | {quiet.false_alarms} false alarms "
          f"({quiet.false_alarms_per_minute:.2f} per minute) |")
    print(f"| gesture stream, {mixed.minutes:.0f} min, {len(truth)} gestures | {mixed.hits} found (recall "
          f"{mixed.recall:.2f}), {mixed.false_alarms} false alarms ({mixed.false_alarms_per_minute:.2f} per minute) |")
    rev1, rev2 = sketch_sizes["nano33ble_sense"], sketch_sizes["nano33ble_sense_rev2"]
    print(f"| continuous sketch, emulated Rev1 / Rev2 | same {len(want)} events as Python: "
          f"{same['nano33ble_sense']} / {same['nano33ble_sense_rev2']}; flash {rev1['flash_bytes']:,} / "
          f"{rev2['flash_bytes']:,} B, RAM {rev1['ram_bytes']:,} / {rev2['ram_bytes']:,} B |")
    print()
    print("| threshold | debounce | gestures found (recall) | false alarms, gesture stream (per minute) | "
          "false alarms, idle stream (per minute) |")
    print("|---|---|---|---|---|")
    for thr, deb, s, q in settings:
        print(f"| {thr} | {deb} | {s.hits} of {len(truth)} ({s.recall:.2f}) | {s.false_alarms} "
              f"({s.false_alarms_per_minute:.2f}) | {q.false_alarms} ({q.false_alarms_per_minute:.2f}) |")
    log(f"{time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
