"""Shrink lesson 05's Fashion-MNIST CNN to a quarter of its flash; distillation against training alone.

    .venv/bin/python benchmarks/shrink.py            # the full benchmark (about 10 minutes on 2 cores)
    .venv/bin/python benchmarks/shrink.py --quick    # a smoke run (a few minutes): 6,000 images, 3 steps, one seed

1. Lesson 05's CNN (``models.cnn(..., filters=(16, 32), dense=64)``, 105,866 parameters), built
   and trained exactly as the lesson does (seed 0, the first 30,000 training images, 5 epochs,
   batch 64, learning rate 3e-3): the teacher and the "before" figures.
2. Its int8 flash (labkit-nn C linked for the Cortex-M4) and the annealing search
   (:func:`labkit.compress.anneal.anneal`) under a budget of a quarter of it: each candidate
   fine-tuned for one epoch with distillation on 8,000 of those images and scored on 2,000
   training images the teacher never saw (never the test images); the best plan is fine-tuned
   with distillation for ``FINAL_EPOCHS`` epochs on the teacher's 30,000 images.
3. int8 accuracy before and after on all 10,000 test images (the reference interpreter),
   instructions per inference on the emulated Cortex-M4.
4. Distillation's gain: the chosen replacement, initialised from the original weights, is
   fine-tuned for the same epochs with distillation and on the labels alone, for 3 seeds; the
   difference of int8 test accuracies is reported (mean and spread) whatever its sign.
5. At equal flash (at most the shrunk model's): uniform width scaling (the same CNN with every
   width times α, trained from scratch as the lesson trains, for the teacher's epochs plus the
   fine-tune's) and structured pruning (the same fraction of filters/units of every layer but the
   classifier removed by L1 norm, :mod:`labkit.compress.structured`, then fine-tuned like the
   shrunk model, with distillation), one table.
6. The shrunk model's C checked bit-exact against the reference interpreters on the host and the
   emulated Cortex-M4; then ``labkit shrink`` itself (the command line) on the same CNN, saved,
   with the same 30,000 images as ``--data``, the test images as ``--test`` and the same budget:
   its OUT.json figures are the last row of the table.

Without Fashion-MNIST (Debian's dataset-fashion-mnist) it runs on scikit-learn's digits and says so.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import labkit  # noqa: F401  (tf_keras first)
from labkit import models, train
from labkit.compress.anneal import Budget, anneal, costs
from labkit.compress.distill import distill
from labkit.compress.quantize import evaluate_tflite, to_int8_tflite
from labkit.compress.replace import describe, fine_tune_replaced, layer_report, replace_layers
from labkit.compress.structured import prune_structured
from labkit.datasets import load_image_data
from labkit.cli import main as cli_main
from labkit.measure import measure_model
from labkit.verify import verify

FINAL_EPOCHS = 5


def _largest_within(build, limit: int, x, probes: int = 8):
    """(q, model, flash) for the largest q in (0, 1] whose ``build(q)`` links within ``limit`` bytes (bisection)."""
    low, high, best = 0.0, 1.0, None
    for _ in range(probes):
        mid = (low + high) / 2
        m = build(mid)
        f = costs(m, x, what="flash")["flash_bytes"]
        if f is not None and f <= limit:
            low, best = mid, (mid, m, f)
        else:
            high = mid
    return best


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
    n_train, epochs = (30_000, 5) if fashion else (len(x), 40)  # lesson 05's N_TRAIN, EPOCHS
    steps, search_n, final_epochs, seeds = 16, 8_000, FINAL_EPOCHS, (0, 1, 2)
    if args.quick:
        n_train, epochs, steps, search_n, final_epochs, seeds = min(n_train, 6_000), 2, 3, 2_000, 3, (0,)
    search_n = min(search_n, n_train - n_train // 5)
    log(f"data: {train_ds.info.name}, {len(xt):,} test images")

    train.set_seed(0)  # lesson 05, section 6: the same model, the same training
    cnn = models.cnn(x.shape[1:], 10, filters=(16, 32), dense=64, name="fashion_cnn")
    train.fit_classifier(cnn, x[:n_train], y[:n_train], epochs=epochs, batch_size=64, learning_rate=3e-3, seed=0)
    xs, ys = x[:n_train], y[:n_train]

    def figures_of(model, tfl) -> dict:
        m = measure_model(model, tflite=tfl, device=True, samples=1, seed=0)
        return {"params": m["params"], "macs": m["macs"], "flash": m["flash_bytes"], "ram": m["ram_bytes"],
                "instructions": m["instructions"], "int8_accuracy": evaluate_tflite(tfl, xt, yt)}

    tfl_before = to_int8_tflite(cnn, x, seed=0)
    before = figures_of(cnn, tfl_before)
    log(f"lesson 05 CNN: {before['params']:,} params, {before['flash']:,} B flash, "
        f"int8 accuracy {before['int8_accuracy']:.4f}")

    budget = Budget("flash", before["flash"] // 4)
    rng = np.random.default_rng(0)
    order = rng.permutation(n_train)
    n_val = min(2000, n_train // 5)
    if len(x) - n_train >= n_val:  # score candidates on training images the teacher never saw
        val, fit = np.arange(n_train, n_train + n_val), order[:search_n]
    else:
        val, fit = order[:n_val], order[n_val:n_val + search_n]
    result = anneal(cnn, x[fit], y[fit], x[val], y[val], budget, steps=steps, epochs=1, distil=True,
                    learning_rate=1e-3, batch_size=64, seed=0, log=log)
    log(f"search: {result.plan}  {result.cost:,} B")

    def shrunk(distil: bool, seed: int):
        r = replace_layers(cnn, result.plan)
        fine_tune_replaced(r.model, cnn, xs, ys, epochs=final_epochs, distil=distil,
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
    after = figures_of(chosen.model, chosen_tfl)
    print(layer_report(cnn, chosen).to_string(index=False))

    # --- equal flash: uniform width scaling, structured pruning ---------------------------------------
    limit = after["flash"]

    def uniform(a: float):
        train.set_seed(0)
        return models.cnn(x.shape[1:], 10, filters=(max(1, round(16 * a)), max(1, round(32 * a))),
                          dense=max(1, round(64 * a)), name="fashion_cnn_uniform")

    a, _, _ = _largest_within(uniform, limit, x)
    wide = uniform(a)
    train.fit_classifier(wide, xs, ys, epochs=epochs + final_epochs, batch_size=64, learning_rate=3e-3, seed=0)
    tfl_w = to_int8_tflite(wide, x, seed=0)
    width_row = figures_of(wide, tfl_w)
    log(f"uniform width x{a:.3f}: {width_row['flash']:,} B, int8 accuracy {width_row['int8_accuracy']:.4f}")

    f, pruned, _ = _largest_within(lambda q: prune_structured(cnn, 1 - q, criterion="l1"), limit, x)
    removed = 1 - f
    distill(pruned, cnn, xs, ys, epochs=final_epochs, batch_size=64, learning_rate=1e-3, seed=0)
    tfl_p = to_int8_tflite(pruned, x, seed=0)
    pruned_row = figures_of(pruned, tfl_p)
    log(f"structured pruning -{removed:.1%}: {pruned_row['flash']:,} B, int8 accuracy "
        f"{pruned_row['int8_accuracy']:.4f}")

    # --- the shrunk model's C: bit-exact on the host and the emulated Cortex-M4 ------------------------
    def mismatches(tfl) -> dict:
        """{target: {reference: bytes of 20 random inputs' outputs the C computes otherwise}}."""
        out = {}
        for target in ("host", "cortex-m4"):
            rep = verify(tfl, samples=20, target=target, seed=0)
            out[target] = {c.reference: c.mismatched_bytes for c in rep.checks}
        return out

    exact = mismatches(chosen_tfl)
    log(f"mismatched bytes (20 random inputs): {exact}")

    # --- labkit shrink, the command line, on the same CNN ----------------------------------------------
    with tempfile.TemporaryDirectory(prefix="labkit-shrink-bench-") as tmp:
        tmp = Path(tmp)
        cnn.save(tmp / "cnn.keras")
        np.savez(tmp / "train.npz", x=xs, y=ys)
        np.savez(tmp / "test.npz", x=xt, y=yt)
        argv = ["shrink", str(tmp / "cnn.keras"), "--data", str(tmp / "train.npz"), "--test", str(tmp / "test.npz"),
                "--flash", str(budget.limit), "--distill", "--steps", str(steps), "--search-samples", str(search_n),
                "--epochs", str(final_epochs), "--batch-size", "64", "-o", str(tmp / "small.keras")]
        log("labkit " + " ".join(a if not a.startswith(str(tmp)) else Path(a).name for a in argv))
        with contextlib.redirect_stdout(io.StringIO()):
            code = cli_main(argv)
        if code != 0:
            raise SystemExit(f"labkit shrink exited with {code}")
        cli = json.loads((tmp / "small.json").read_text())
        cli_exact = mismatches((tmp / "small.tflite").read_bytes())
    cli_row = {"params": cli["params_after"], "macs": cli["macs_after"], "flash": cli["flash_after"],
               "instructions": cli["instructions_after"], "int8_accuracy": cli["int8_accuracy_after"]}
    log(f"labkit shrink: {cli['plan']} {cli['flash_after']:,} B, int8 accuracy {cli['int8_accuracy_after']:.4f}")

    plan_text = ", ".join(f"{n} {describe(c)}" for n, c in result.plan.items())
    cli_plan = ", ".join(f"{n} {describe(tuple(c))}" for n, c in cli["plan"].items())
    rows = [
        ("lesson 05 CNN (before)", before),
        (f"shrink: {plan_text}, distilled {final_epochs} ep", after),
        (f"uniform width x{a:.2f} ({wide.get_layer('conv_1').filters}, {wide.get_layer('conv_2').filters}, "
         f"dense {wide.get_layer('dense').units}), {epochs + final_epochs} ep from scratch", width_row),
        (f"structured pruning L1 -{removed:.0%} of units, distilled {final_epochs} ep", pruned_row),
        (f"labkit shrink --flash {budget.limit} --distill: {cli_plan}", cli_row),
    ]
    print()
    print(f"{'at equal flash (<= ' + format(limit, ',') + ' B)':<84}{'params':>9}{'MACs':>11}{'flash B':>9}"
          f"{'instructions':>14}{'int8 acc':>10}")
    for name, r in rows:
        print(f"{name:<84}{r['params']:>9,}{r['macs']:>11,}{r['flash']:>9,}{r['instructions']:>14,}"
              f"{r['int8_accuracy']:>10.4f}")
    print()

    loss = 100 * (before["int8_accuracy"] - with_d[0])
    figures = {
        "data": train_ds.info.name, "quick": bool(args.quick), "test_images": int(len(xt)),
        "params_before": before["params"], "params_after": after["params"],
        "flash_before": before["flash"], "flash_after": after["flash"],
        "flash_ratio": round(before["flash"] / after["flash"], 2),
        "instructions_before": before["instructions"], "instructions_after": after["instructions"],
        "int8_accuracy_before": round(before["int8_accuracy"], 4), "int8_accuracy_after": round(with_d[0], 4),
        "int8_accuracy_loss_points": round(loss, 2),
        "distillation_int8_accuracy": [round(v, 4) for v in with_d],
        "alone_int8_accuracy": [round(v, 4) for v in alone],
        "distillation_gain_points_mean": round(100 * float(np.mean(gains)), 2),
        "distillation_gain_points_std": round(100 * float(np.std(gains)), 2),
        "worst_seed_loss_points": round(100 * (before["int8_accuracy"] - min(with_d)), 2),
        "uniform_width": {"alpha": round(a, 3), "flash": width_row["flash"], "params": width_row["params"],
                          "int8_accuracy": round(width_row["int8_accuracy"], 4)},
        "structured_pruning": {"removed": round(removed, 3), "flash": pruned_row["flash"],
                               "params": pruned_row["params"], "int8_accuracy": round(pruned_row["int8_accuracy"], 4)},
        "mismatched_bytes": exact,
        "cli": {k: cli[k] for k in ("flash_before", "flash_after", "params_after", "int8_accuracy_before",
                                    "int8_accuracy_after", "instructions_after", "plan")},
        "cli_mismatched_bytes": cli_exact,
        "plan": {n: list(c) for n, c in result.plan.items()}, "final_epochs": final_epochs, "search_steps": steps,
        "seconds": round(time.monotonic() - t0),
    }
    for k, v in figures.items():
        print(f"{k:<34}{json.dumps(v)}")
    if args.json:
        from labkit.fileio import write_json

        write_json(args.json, figures)
    met = figures["flash_ratio"] >= 4 and figures["int8_accuracy_loss_points"] <= 1
    cli_met = (cli["flash_before"] >= 4 * cli["flash_after"]
               and 100 * (cli["int8_accuracy_before"] - cli["int8_accuracy_after"]) <= 1)
    print(f"labkit shrink (CLI): {cli['flash_before'] / cli['flash_after']:.2f}x less flash, int8 accuracy "
          f"{cli['int8_accuracy_before']:.4f} -> {cli['int8_accuracy_after']:.4f}: target "
          f"{'met' if cli_met else 'NOT met'}")
    for name, m in (("shrink", exact), ("labkit shrink (CLI)", cli_exact)):
        print(f"{name}: C bit-exact with " + "; ".join(
            f"{ref} on {target}: {'yes' if n == 0 else f'no, {n} bytes differ'}"
            for target, refs in m.items() for ref, n in refs.items()))
    print(f"target (>= 4x less flash, <= 1 point int8 loss): {'met' if met else 'NOT met'}"
          + (f" (every seed within 1 point: {'yes' if figures['worst_seed_loss_points'] <= 1 else 'no'})"
             if len(seeds) > 1 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
