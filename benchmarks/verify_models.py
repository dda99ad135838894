"""Measure labkit-nn on a set of whole models: flash, RAM, TFLM's arena, instructions per MAC.

    .venv/bin/python benchmarks/verify_models.py            # prints a Markdown table

Each model is converted to full int8, its C generated and verified on the host and on the
emulated Cortex-M4 against both reference interpreters (bit_exact is over all four checks).
The gesture models are trained briefly on synthetic gestures so their accuracy means
something; the image models keep their seeded random weights (sizes and instruction counts
do not depend on the weights' values).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import labkit  # noqa: F401
from labkit import datasets, models, train
from labkit.compress.quantize import evaluate_tflite, to_int8_tflite
from labkit.datasets import normalize_imu
from labkit.keras import keras
from labkit.reference import tflm_arena_bytes
from labkit.verify import verify


def residual_concat(input_shape, n_classes):
    inp = keras.Input(input_shape)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    x = keras.layers.ReLU()(keras.layers.Add()([x, keras.layers.Conv2D(8, 3, padding="same")(x)]))
    x = keras.layers.Concatenate()([keras.layers.Conv2D(4, 1, activation="relu")(x),
                                    keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)])
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.MaxPooling2D()(x))
    return keras.Model(inp, keras.layers.Dense(n_classes, activation="softmax")(x), name="residual_concat")


def main(samples: int = 20) -> str:
    ds = datasets.make_gestures(n_per_class=100, seed=0)
    tr, te = ds.split(test_size=0.25, seed=0)
    xg, xt = normalize_imu(tr.x), normalize_imu(te.x)
    rng = np.random.default_rng(0)
    images = rng.normal(size=(64, 32, 32, 3)).astype("float32")
    small = rng.normal(size=(64, 16, 16, 3)).astype("float32")

    cases = [  # name, builder, calibration data, gesture-trained?
        ("dense (gesture MLP)", lambda: models.mlp((119, 6), 4, hidden=(32, 16)), xg, True),
        ("1-D CNN (gesture)", lambda: models.cnn1d((119, 6), 4), xg, True),
        ("LSTM(16) over 119 steps (gesture)", lambda: models.lstm_classifier((119, 6), 4, units=16), xg, True),
        ("gesture LSTM(32), pool 4 (lesson 06)", lambda: models.gesture_lstm((119, 6), 4), xg, True),
        ("CNN 32x32x3 (16, 32, dense 32)", lambda: models.cnn((32, 32, 3), 10, dense=32), images, False),
        ("DS-CNN alpha=0.5 16x16x3", lambda: models.ds_cnn((16, 16, 3), 4, alpha=0.5), small, False),
        ("residual ADD + CONCATENATION", lambda: residual_concat((16, 16, 3), 4), small, False),
    ]
    rows = []
    for name, build, x, gesture in cases:
        train.set_seed(0)
        model = build()
        acc = float_acc = "-"
        if gesture:
            train.fit_classifier(model, xg, tr.y, epochs=30, learning_rate=1e-2, seed=0)
        tfl = to_int8_tflite(model, x)
        if gesture:
            acc = f"{evaluate_tflite(tfl, xt, te.y, interpreter='tflm'):.3f}"
            float_acc = f"{np.mean(np.argmax(model.predict(xt, verbose=0), axis=1) == te.y):.3f}"
        with tempfile.TemporaryDirectory() as tmp:
            host = verify(tfl, samples=samples, target="host", workdir=Path(tmp) / "h")
            m4 = verify(tfl, samples=samples, target="cortex-m4", workdir=Path(tmp) / "m")
        m = m4.metrics
        rows.append([name, f"{model.count_params():,}", f"{m['macs']:,}", f"{m['flash_bytes']:,}",
                     f"{m['ram_bytes']:,}", f"{tflm_arena_bytes(tfl):,}", f"{m['instructions']:,}",
                     f"{m['instructions_per_mac']:.2f}", str(host.bit_exact and m4.bit_exact).lower(), float_acc, acc])
        print(f"measured {name}", file=sys.stderr)
    head = ["model", "params", "MACs", "flash B", "RAM B", "TFLM arena B", "instructions", "instr/MAC",
            "bit_exact", "float acc", "int8 acc"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    t0 = time.perf_counter()
    print(main())
    print(f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
