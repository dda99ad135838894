"""Realistic synthetic gestures, augmentation and leave-one-person-out accuracy (issue 16).

    .venv/bin/python benchmarks/capstone_data.py     # about 5-8 minutes on 2 cores

1. The realism table: each statistic the issue measured on real Nano 33 BLE Sense recordings
   (punch and flex, 4 people), computed on ``make_gestures(calibrated=True)`` (12 people, 240
   punches and 240 flexes, seed 0) and on the earlier ``calibrated=False`` model.
2. Accuracy on people never seen: the default classes plus ``idle`` from 8 calibrated people
   (60 per class), a small 1-D CNN (``models.cnn1d((119, 6), 5, filters=(8, 16))``, 15 epochs,
   seed 0), first on a random split (repetitions of the same people on both sides), then leaving
   each person out in turn: trained on the 7 others as they are (15 epochs, and 60 epochs: as
   many gradient steps as the augmented runs), and on them plus 3 augmented copies of every
   window (time warp, amplitude, shift, noise; without rotation, with random rotations up to
   90 degrees, and with rotations uniform over all orientations), 15 epochs.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from labkit import models  # noqa: E402
from labkit.datasets import CHANNELS, make_gestures, normalize_imu  # noqa: E402
from labkit.evaluate import leave_one_person_out  # noqa: E402
from labkit.train import accuracy, fit_classifier, set_seed  # noqa: E402

EPOCHS = 15

REAL = {
    "median peak |a| per punch, per person (g)": "2.2-3.9",
    "accelerometer samples at ±4 g, punch / flex (%)": "0-0.2",
    "strongest axes, punch (people)": "aY/gZ 3, aX/gY 1",
    "strongest gyro axis, flex (people)": "gY 2, gX 2",
    "orientation at the end of a punch (people)": "flat, tilted, upside down",
    "per-channel std, punch aX / aY / aZ (g)": "0.54 / 0.86 / 0.75",
    "per-channel std, punch gX / gY / gZ (deg/s)": "50 / 102 / 123",
}


def _strongest(windows: np.ndarray, lo: int) -> str:
    return CHANNELS[lo + int(windows[..., lo : lo + 3].std(axis=1).mean(axis=0).argmax())]


def _count(items) -> str:
    return ", ".join(f"{k} {v}" for k, v in pd.Series(items).value_counts().items())


def realism(calibrated: bool) -> dict[str, str]:
    ds = make_gestures(n_per_class=240, classes=("punch", "flex"), n_people=12, seed=0, calibrated=calibrated)
    people = np.unique(ds.groups)
    punch = {p: ds.x[(ds.y == 0) & (ds.groups == p)] for p in people}
    flex = {p: ds.x[(ds.y == 1) & (ds.groups == p)] for p in people}
    medians = [np.median(np.linalg.norm(w[..., :3], axis=-1).max(axis=1)) for w in punch.values()]
    sat = [100 * np.mean(np.abs(ds.x[ds.y == k][..., :3]) >= 4.0 - 1e-6) for k in (0, 1)]
    end = [np.median(w[:, -15:, 2].mean(axis=1)) for w in punch.values()]
    kinds = ["flat" if v > 0.9 else "upside down" if v < -0.6 else "tilted" for v in end]
    std = ds.x[ds.y == 0].reshape(-1, 6).std(axis=0)
    return {
        "median peak |a| per punch, per person (g)": f"{min(medians):.1f}-{max(medians):.1f}",
        "accelerometer samples at ±4 g, punch / flex (%)": f"{sat[0]:.2f} / {sat[1]:.2f}",
        "strongest axes, punch (people)": _count([f"{_strongest(w, 0)}/{_strongest(w, 3)}" for w in punch.values()]),
        "strongest gyro axis, flex (people)": _count([_strongest(w, 3) for w in flex.values()]),
        "orientation at the end of a punch (people)": _count(kinds),
        "per-channel std, punch aX / aY / aZ (g)": " / ".join(f"{v:.2f}" for v in std[:3]),
        "per-channel std, punch gX / gY / gZ (deg/s)": " / ".join(f"{v:.0f}" for v in std[3:]),
    }


def main() -> None:
    table = pd.DataFrame(
        {"real (4 people)": REAL, "calibrated=True (12 people)": realism(True), "calibrated=False": realism(False)}
    )
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        print("Realism: make_gestures against the real recordings (issue 16)")
        print(table.to_string())
    print()

    ds = make_gestures(n_per_class=60, n_people=8, seed=0, calibrated=True, idle=True)
    n_classes = len(ds.info.class_names)
    print(f"Accuracy on people never seen: {', '.join(ds.info.class_names)}; 8 people, 60 per class, "
          "cnn1d (8, 16)")

    def build():
        return models.cnn1d((119, 6), n_classes, filters=(8, 16))

    train, test = ds.split(test_size=0.25, seed=0)
    random_split = {}
    for epochs in (EPOCHS, 4 * EPOCHS):
        set_seed(0)
        model = build()
        fit_classifier(model, normalize_imu(train.x), train.y, epochs=epochs, seed=0)
        random_split[epochs] = accuracy(model, normalize_imu(test.x), test.y)
        print(f"random split (the same people in training and test), {epochs} epochs: {random_split[epochs]:.3f}")
    # Augmented copies also mean more gradient steps: "no augmentation, 4x epochs" has as many as
    # the augmented runs, so the comparison with it is the fair one.
    runs = {
        f"none, {EPOCHS} ep": ({"epochs": EPOCHS}, None),
        f"none, {4 * EPOCHS} ep": ({"epochs": 4 * EPOCHS}, None),
        "no rotation": ({"epochs": EPOCHS}, {"copies": 3, "rotation_degrees": None}),
        "rotation 90": ({"epochs": EPOCHS}, {"copies": 3, "rotation_degrees": 90}),
        "rotation 180": ({"epochs": EPOCHS}, {"copies": 3, "rotation_degrees": 180}),
    }
    table = None
    means = {}
    for name, (fit, augment) in runs.items():
        print(f"leave one person out, augmentation: {name}")
        result, means[name] = leave_one_person_out(build, ds, fit, augment=augment, transform=normalize_imu)
        if table is None:
            table = result[["person", "n"]].copy()
        table[name] = result["accuracy"]
    print()
    print("Leave-one-person-out accuracy per held-out person (augmented: 3 copies per window with warp 10 %, "
          f"amplitude ±20 %, shift ±8 samples, sensor noise; and the rotation named; {EPOCHS} epochs):")
    print(table.round(3).to_string(index=False))
    print("mean over people:", ", ".join(f"{k} {v:.3f}" for k, v in means.items()),
          f"(random split {random_split[EPOCHS]:.3f} / {random_split[4 * EPOCHS]:.3f} after {EPOCHS} / {4 * EPOCHS} epochs, "
          f"chance {1 / n_classes:.3f})")


if __name__ == "__main__":
    main()
