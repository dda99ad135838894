"""Shrink lesson 05's Fashion-MNIST CNN to a quarter of its flash; distillation against training alone.

    .venv/bin/python benchmarks/shrink.py            # the full benchmark (tens of minutes on 2 cores)
    .venv/bin/python benchmarks/shrink.py --quick    # a smoke run (~5 min): 6,000 images, 3 steps, one seed

1. Lesson 05's CNN (``models.cnn(..., filters=(16, 32), dense=64)``), trained as the lesson
   trains it (seed 0, 30,000 images, 5 epochs, batch 64, learning rate 3e-3).
2. Its int8 flash (labkit-nn C linked for the Cortex-M4), and the annealing search
   (:func:`labkit.compress.anneal.anneal`) under a budget of a quarter of it, candidates scored
   on 2,000 held-out training images; the best is fine-tuned with distillation.
3. int8 accuracy before and after on all 10,000 test images (the reference interpreter).
4. Distillation's gain: the chosen replacement, initialised from the original weights, is
   fine-tuned for the same epochs with distillation and on the labels alone, for 3 seeds; the
   difference of int8 test accuracies is reported (mean and spread) whatever its sign.

Without Fashion-MNIST (Debian's dataset-fashion-mnist) it runs on scikit-learn's digits and says so.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

import labkit  # noqa: F401  (tf_keras first)
from labkit import models, train
from labkit.compress.anneal import Budget, anneal, costs, linked_flash
from labkit.compress.quantize import evaluate_tflite, to_int8_tflite
from labkit.compress.replace import fine_tune_replaced, layer_report, replace_layers
from labkit.datasets import load_image_data


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="less data, fewer steps and one seed: a smoke run")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args(argv)
    t0 = time.monotonic()
    log = lambda m: print(f"[{time.monotonic() - t0:6.0f} s] {m}", file=sys.stderr, flush=True)  # noqa: E731

    train_ds, test_ds = load_image_data()
    fashion = train_ds.info.name == "fashion_mnist"
    x = (train_ds.x / 255).astype("float32")[..., None]
    y = train_ds.y
    xt = (test_ds.x / 255).astype("float32")[..., None]
    yt = test_ds.y
    n_train, epochs = (30_000, 5) if fashion else (len(x), 40)
    steps, search_n, final_epochs, seeds = 16, 8_000, 4, (0, 1, 2)
    if args.quick:
        n_train, epochs, steps, search_n, final_epochs, seeds = min(n_train, 6_000), 2, 3, 2_000, 3, (0,)
    log(f"data: {train_ds.info.name}, {len(xt):,} test images")

    train.set_seed(0)
    cnn = models.cnn(x.shape[1:], 10, filters=(16, 32), dense=64, name="fashion_cnn")
    train.fit_classifier(cnn, x[:n_train], y[:n_train], epochs=epochs, batch_size=64, learning_rate=3e-3, seed=0)
    tfl_before = to_int8_tflite(cnn, x, seed=0)
    before = costs(cnn, x, what="flash")
    int8_before = evaluate_tflite(tfl_before, xt, yt)
    log(f"lesson 05 CNN: {before['params']:,} params, {before['flash_bytes']:,} B flash, int8 accuracy {int8_before:.4f}")

    budget = Budget("flash", before["flash_bytes"] // 4)
    rng = np.random.default_rng(0)
    order = rng.permutation(n_train)
    val, fit = order[:2000], order[2000:2000 + search_n]
    result = anneal(cnn, x[fit], y[fit], x[val], y[val], budget, steps=steps, epochs=1, distil=True,
                    learning_rate=1e-3, batch_size=64, seed=0, log=log)
    log(f"search: {result.plan}  {result.cost:,} B")

    def shrunk(distil: bool, seed: int):
        r = replace_layers(cnn, result.plan)
        fine_tune_replaced(r.model, cnn, x[:n_train], y[:n_train], epochs=final_epochs, distil=distil,
                           batch_size=64, learning_rate=1e-3, seed=seed)
        tfl = to_int8_tflite(r.model, x, seed=0)
        return r, tfl, evaluate_tflite(tfl, xt, yt)

    gains, with_d, alone = [], [], []
    for seed in seeds:
        r, tfl, acc_d = shrunk(True, seed)
        _, _, acc_a = shrunk(False, seed)
        with_d.append(acc_d)
        alone.append(acc_a)
        gains.append(acc_d - acc_a)
        log(f"seed {seed}: int8 accuracy with distillation {acc_d:.4f}, alone {acc_a:.4f}")
        if seed == seeds[0]:
            chosen, chosen_tfl = r, tfl
    after = {"params": int(chosen.model.count_params()), **linked_flash(chosen_tfl)}  # the int8 model itself
    print(layer_report(cnn, chosen).to_string(index=False))
    figures = {
        "data": train_ds.info.name, "quick": bool(args.quick), "test_images": int(len(xt)),
        "params_before": before["params"], "params_after": after["params"],
        "flash_before": before["flash_bytes"], "flash_after": after["flash_bytes"],
        "flash_ratio": round(before["flash_bytes"] / after["flash_bytes"], 2),
        "int8_accuracy_before": round(int8_before, 4), "int8_accuracy_after": round(with_d[0], 4),
        "int8_accuracy_loss_points": round(100 * (int8_before - with_d[0]), 2),
        "distillation_int8_accuracy": [round(a, 4) for a in with_d],
        "alone_int8_accuracy": [round(a, 4) for a in alone],
        "distillation_gain_points_mean": round(100 * float(np.mean(gains)), 2),
        "distillation_gain_points_std": round(100 * float(np.std(gains)), 2),
        "plan": {n: list(c) for n, c in result.plan.items()}, "seconds": round(time.monotonic() - t0),
    }
    for k, v in figures.items():
        print(f"{k:<34}{json.dumps(v)}")
    if args.json:
        from labkit.fileio import write_json

        write_json(args.json, figures)
    met = figures["flash_ratio"] >= 4 and figures["int8_accuracy_loss_points"] <= 1
    print(f"target (>= 4x less flash, <= 1 point int8 loss): {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
