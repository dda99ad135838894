"""AutoML for the edge, measured: `labkit search` under a board budget against random search, an
unconstrained search, and the lessons' hand-designed models.

    .venv/bin/python benchmarks/automl.py gestures --trials 30          # issue 13's gesture budget
    .venv/bin/python benchmarks/automl.py fashion --trials 20 --epochs 10 --trial-samples 10000
    .venv/bin/python benchmarks/automl.py gestures --trials 3 --epochs 2   # a smoke run

gestures: the demo's synthetic IMU gestures (200 per class, 25 % held out), flash <= 16 KB,
RAM <= 2 KB, <= 100,000 instructions per inference on the emulated Cortex-M4.
fashion: Fashion-MNIST (Debian's dataset-fashion-mnist; all 10,000 test images), flash <= 64 KB,
RAM <= 16 KB, images scaled to [0, 1].

For each of TPE, random search (same number of trials, same seed) and TPE without a budget
(the board's whole 1 MB / 256 KB: the "best unconstrained model the same search finds";
gestures only by default, ``--searches`` chooses) it runs
the whole search with the final stage (retrain on all training data, int8, bit-exact check on
host and Cortex-M4) and prints one Markdown row: test int8 accuracy, flash, RAM,
instructions, trials that fit, NetScore, seconds. The lessons' models are trained with the kit's
defaults and measured the same way. Long: 30 trials take tens of minutes on 2 cores; the figures
the README quotes say which command and trial count produced them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import labkit  # noqa: F401
from labkit.automl import Budget, netscore, run_search

BUDGETS = {
    "gestures": Budget(flash_bytes=16 * 1024, ram_bytes=2 * 1024, instructions=100_000),
    "fashion": Budget(flash_bytes=64 * 1024, ram_bytes=16 * 1024),
}
BOARD = Budget(flash_bytes=1024 * 1024, ram_bytes=256 * 1024)  # the nRF52840 itself: no budget but the board


def load(task: str, train_limit: int | None):
    from labkit import datasets

    if task == "gestures":
        ds = datasets.make_gestures(n_per_class=200, seed=0)
        tr, te = ds.split(test_size=0.25, seed=0)
        return datasets.normalize_imu(tr.x), tr.y, datasets.normalize_imu(te.x), te.y
    from labkit.datasets.images import load_fashion_mnist

    tr = load_fashion_mnist(split="train", limit=train_limit)
    te = load_fashion_mnist(split="test")
    scale = lambda x: (x.astype(np.float32) / 255.0)[..., None]  # noqa: E731
    return scale(tr.x), tr.y, scale(te.x), te.y


def hand_designed(task: str, input_shape, n_classes: int):
    from labkit import models

    if task == "gestures":
        return {"lesson MLP (32, 16)": models.mlp(input_shape, n_classes, hidden=(32, 16)),
                "lesson 1-D CNN (8, 16)": models.cnn1d(input_shape, n_classes),
                "lesson 06 LSTM(32), pool 4": models.gesture_lstm(input_shape, n_classes)}
    return {"lesson 05 CNN (16, 32, dense 128)": models.cnn(input_shape, n_classes),
            "DS-CNN alpha=0.5": models.ds_cnn(input_shape, n_classes, alpha=0.5, bn_momentum=0.9)}


def measure_hand_designed(name, model, x, y, xt, yt, budget: Budget, epochs: int) -> dict:
    from labkit.automl.costs import measure_candidate
    from labkit.compress.quantize import evaluate_tflite, to_int8_tflite
    from labkit.train import fit_classifier

    t0 = time.monotonic()
    fig = measure_candidate(model, x[:64])  # no budget: every figure, even over it
    fit_classifier(model, x, y, epochs=epochs)
    acc = evaluate_tflite(to_int8_tflite(model, x), xt, yt)
    return {"what": name, "int8_accuracy": acc, "flash_bytes": fig["flash_bytes"], "ram_bytes": fig["ram_bytes"],
            "instructions": fig["instructions"], "fits": not budget.violations(fig), "feasible_trials": "-",
            "netscore": netscore(acc, fig["params"], fig["macs"]), "seconds": round(time.monotonic() - t0, 1)}


def row(r: dict) -> str:
    cell = lambda v, f="{:,}": "-" if v is None else (f.format(v) if not isinstance(v, str) else v)  # noqa: E731
    return (f"| {r['what']} | {cell(r['int8_accuracy'], '{:.3f}')} | {cell(r['flash_bytes'])} | {cell(r['ram_bytes'])} "
            f"| {cell(r['instructions'])} | {'yes' if r['fits'] else 'no'} | {cell(r['feasible_trials'])} "
            f"| {cell(r['netscore'], '{:.1f}')} | {cell(r['seconds'], '{:.0f}')} |")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task", choices=sorted(BUDGETS))
    p.add_argument("--trials", type=int, default=30)
    p.add_argument("--epochs", type=int, default=20, help="most epochs a trial may ask for")
    p.add_argument("--train", type=int, default=None, help="fashion: training images to use (default all 60,000)")
    p.add_argument("--trial-samples", type=int, default=None,
                   help="train each trial on this many samples (labkit search --trial-samples); the final stage on all")
    p.add_argument("--searches", help="comma-separated: tpe, random, unconstrained (default: all three for gestures, "
                                      "tpe,random for fashion)")
    p.add_argument("--no-hand", action="store_true", help="leave out the lessons' hand-designed models")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="keep each search's folder here (default: a temporary folder)")
    p.add_argument("--json", action="store_true", help="also print the rows as JSON")
    args = p.parse_args(argv)

    x, y, xt, yt = load(args.task, args.train)
    budget = BUDGETS[args.task]
    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="labkit-automl-bench-"))
    rows = []
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    chosen = (args.searches or ("tpe,random,unconstrained" if args.task == "gestures" else "tpe,random")).split(",")
    unknown = set(chosen) - {"tpe", "random", "unconstrained"}
    if unknown:
        p.error(f"--searches: unknown {', '.join(sorted(unknown))}")
    for key, what, sampler, b in (("tpe", "TPE", "tpe", budget), ("random", "random search", "random", budget),
                                  ("unconstrained", "TPE, board only (unconstrained)", "tpe", BOARD)):
        if key not in chosen:
            continue
        log(f"== {what}")
        r = run_search(x, y, b, work / what.split(",")[0].replace(" ", "_") / sampler / str(b.flash_bytes), x_test=xt,
                       y_test=yt, trials=args.trials, max_epochs=args.epochs, seed=args.seed, sampler=sampler,
                       trial_samples=args.trial_samples, log=log)
        rows.append({"what": f"{what}, {args.trials} trials", "fits": not budget.violations(r), **r})
    for name, model in ({} if args.no_hand else hand_designed(args.task, x.shape[1:], int(y.max()) + 1)).items():
        log(f"== {name}")
        rows.append(measure_hand_designed(name, model, x, y, xt, yt, budget, args.epochs))

    limits = ", ".join(f"{k} <= {v:,}" for k, v in budget.as_dict().items() if v is not None)
    print(f"{args.task}: {limits}; int8 accuracy on the {len(yt):,} test samples\n")
    print("| model | int8 acc | flash B | RAM B | instructions | fits | trials that fit | NetScore | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(row(r))
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
