"""``labkit shrink``: replace layers by smaller sub-networks, chosen by annealing, to fit a budget.

    labkit shrink model.keras --data train.npz --test test.npz --flash 20K --distill -o small.keras
    labkit shrink model.keras --data train.npz --test test.npz --instructions 1.5M -o fast.keras

writes ``small.keras``, ``small.tflite`` (full int8) and ``small.json`` (params, flash, accuracy
and instructions before and after) and prints a per-layer table. The search
(:func:`labkit.compress.anneal.anneal`) scores candidates on the last fifth of ``--data``
(at most 2,000 samples), never on ``--test``; the best is then fine-tuned on all of ``--data``.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

import numpy as np

from labkit.compress.commands import DATA_HELP, MODEL_HELP, check_data, check_output, check_seed, load_model, load_npz
from labkit.datacheck import check_float, check_int, check_training_options, parse_count, parse_size
from labkit.errors import LabkitError

def _number(text, name: str, kind=float):
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise LabkitError(f"{name} must be a number, got {text!r}") from None
    if kind is int and v.is_integer():
        return int(v)
    return v


def _options(args) -> dict:
    """Every numeric option checked, with its range in the message, before any work."""
    given = [b for b in (args.flash, args.params_ratio, args.instructions) if b is not None]
    if len(given) != 1:
        raise LabkitError("give exactly one budget: --flash SIZE (bytes of flash, e.g. 20K), --params-ratio R "
                          "(the fraction of the parameters kept, in (0, 1], e.g. 0.25) or --instructions N "
                          "(per inference on the Cortex-M4, e.g. 1.5M)")
    o = {}
    if args.flash is not None:
        o["flash"] = parse_size(args.flash, "--flash")
    elif args.instructions is not None:
        o["instructions"] = parse_count(args.instructions, "--instructions")
    else:
        o["ratio"] = check_float(_number(args.params_ratio, "--params-ratio"), "--params-ratio", 0.0, 1.0,
                                 low_open=True, why="the fraction of the model's parameters kept")
    o["steps"] = check_int(_number(args.steps, "--steps", int), "--steps", 0, 1000, "annealing steps")
    o["search_epochs"] = check_int(_number(args.search_epochs, "--search-epochs", int), "--search-epochs", 1, 100,
                                   "fine-tuning epochs of each candidate")
    o["epochs"], o["batch_size"], o["learning_rate"] = check_training_options(
        _number(args.epochs, "--epochs", int), _number(args.batch_size, "--batch-size", int),
        _number(args.learning_rate, "--learning-rate"), "--")
    o["search_samples"] = check_int(_number(args.search_samples, "--search-samples", int), "--search-samples", 10,
                                    1_000_000, "training samples each candidate is fine-tuned on")
    o["temperature"] = check_float(_number(args.temperature, "--temperature"), "--temperature", 0.0, 100.0,
                                   low_open=True, why="distillation's softening temperature; 2 to 10 is usual")
    o["alpha"] = check_float(_number(args.alpha, "--alpha"), "--alpha", 0.0, 1.0,
                             why="the weight of the teacher's soft targets")
    o["seed"] = check_seed(_number(args.seed, "--seed", int))
    return o


def _fmt(v) -> str:
    return "-" if v is None else (f"{v:.4f}" if isinstance(v, float) else f"{v:,}")


def _shrink(args) -> int:
    from labkit.compress.anneal import Budget, anneal, costs
    from labkit.compress.quantize import evaluate_tflite, to_int8_tflite
    from labkit.compress.replace import fine_tune_replaced, layer_report, replace_layers
    from labkit.fileio import save_keras_model, write_atomic, write_json
    from labkit.measure import measure_model
    from labkit.train import accuracy

    o = _options(args)
    out = check_output(Path(args.out) if args.out else
                       Path(args.model).with_name(Path(args.model).stem + "_shrunk.keras"),
                       (".keras", ".h5"), "the shrunk model is saved as a Keras model")
    if "flash" in o or "instructions" in o:
        from labkit.verify import require_tool

        require_tool("arm-none-eabi-gcc")  # flash is measured as linked for the Cortex-M4
        if "instructions" in o:
            require_tool("qemu-system-arm")  # instructions are counted on the emulated Cortex-M4
    data = load_npz(args.data, ("x", "y"))
    test = load_npz(args.test, ("x", "y"), "--test")
    model = load_model(args.model)
    teacher = model
    if args.teacher is not None:
        from labkit.compress.distill import check_teacher

        teacher = load_model(args.teacher)
        check_teacher(model, teacher)
    check_data(model, data, args.data)
    check_data(model, test, args.test, "--test")
    x, y = data["x"], data["y"]
    if len(x) < 20:
        raise LabkitError(f"--data {args.data} has {len(x)} samples; the search needs at least 20 (it holds out a "
                          "fifth of them to score candidates)")
    rng = np.random.default_rng(o["seed"])
    order = rng.permutation(len(x))
    n_val = min(2000, len(x) // 5)
    val, fit = order[:n_val], order[n_val:][: o["search_samples"]]
    log = (lambda m: print(m, file=sys.stderr))

    params_before = int(model.count_params())
    if "flash" in o:
        budget = Budget("flash", o["flash"])
    elif "instructions" in o:
        budget = Budget("instructions", o["instructions"])
    else:
        budget = Budget("params", max(1, math.floor(o["ratio"] * params_before)))
    log(f"labkit shrink: {budget.kind} budget {budget.text(budget.limit)}; searching")
    train = dict(temperature=o["temperature"], alpha=o["alpha"], batch_size=o["batch_size"],
                 learning_rate=o["learning_rate"], seed=o["seed"])
    distil = bool(args.distill or args.teacher is not None)
    result = anneal(model, x[fit], y[fit], x[val], y[val], budget, steps=o["steps"], epochs=o["search_epochs"],
                    distil=distil, teacher=teacher, log=log, **train)
    log("measuring the model as it was")
    tflite_before = to_int8_tflite(model, x, seed=o["seed"])
    before = measure_model(model, tflite=tflite_before, device=None, samples=10, seed=o["seed"])
    replaced = replace_layers(model, result.plan)
    small = replaced.model
    log(f"fine-tuning the best candidate on all {len(x):,} samples of --data for {o['epochs']} epochs"
        + ((" with distillation from " + ("the original" if teacher is model else args.teacher)) if distil else ""))
    fine_tune_replaced(small, teacher, x, y, epochs=o["epochs"], distil=distil, **train)
    bad = sum(int(np.size(w) - np.isfinite(w).sum()) for w in small.get_weights())
    if bad:
        raise LabkitError(f"fine-tuning diverged: {bad:,} weights became NaN or infinite, so nothing was written; "
                          "try a smaller --learning-rate (e.g. 1e-4)")
    tflite = to_int8_tflite(small, x, seed=o["seed"])
    after = measure_model(small, tflite=tflite, device=None, samples=10, seed=o["seed"])
    if budget.kind == "flash" and after["flash_bytes"] is not None and after["flash_bytes"] > budget.limit:
        raise LabkitError(f"the shrunk model takes {after['flash_bytes']:,} B of flash, over the budget of "
                          f"{budget.limit:,} B (measured {result.cost:,} B in the search): please report it")
    if budget.kind == "instructions" and after["instructions"] is not None and after["instructions"] > budget.limit:
        log(f"note: {after['instructions']:,} instructions per inference averaged over 10 random inputs, over the "
            f"budget of {budget.limit:,} (the search counted {result.cost:,} on one input): the count depends a "
            "little on the input")
    report = {
        "budget": {"kind": budget.kind, "limit": budget.limit},
        "plan": {n: list(c) for n, c in result.plan.items()},
        "kept": [list(k) for k in replaced.kept],
        "params_before": params_before, "params_after": int(small.count_params()),
        "macs_before": before["macs"], "macs_after": after["macs"],
        "flash_before": before["flash_bytes"], "flash_after": after["flash_bytes"],
        "ram_before": before["ram_bytes"], "ram_after": after["ram_bytes"],
        "tflite_bytes_before": before["tflite_bytes"], "tflite_bytes_after": after["tflite_bytes"],
        "accuracy_before": accuracy(model, test["x"], test["y"]),
        "accuracy_after": accuracy(small, test["x"], test["y"]),
        "int8_accuracy_before": evaluate_tflite(tflite_before, test["x"], test["y"]),
        "int8_accuracy_after": evaluate_tflite(tflite, test["x"], test["y"]),
        "instructions_before": before["instructions"], "instructions_after": after["instructions"],
        "test_samples": int(len(test["y"])), "distill": distil,
        "teacher": None if teacher is model else str(args.teacher), "search_steps": o["steps"],
        "search_accuracy": result.accuracy, "seed": o["seed"],
    }
    table = layer_report(model, replaced)
    print(table.to_string(index=False))
    for name, kind, why in replaced.kept:
        print(f"kept {name} ({kind}): {why}")
    for key in ("params", "flash", "instructions", "accuracy", "int8_accuracy"):
        print(f"{key:<14}{_fmt(report[key + '_before']):>12} -> {_fmt(report[key + '_after'])}")
    if report["flash_before"] is None:
        print("flash and instructions: not measured (install the ARM cross-compiler and QEMU to measure them)")
    written = [save_keras_model(small, out), write_atomic(out.with_suffix(".tflite"), tflite),
               write_json(out.with_suffix(".json"), report)]
    print("wrote " + ", ".join(map(str, written)))
    return 0


def register(subparsers) -> None:
    """Add ``shrink`` to the ``labkit`` command."""
    s = subparsers.add_parser(
        "shrink", help="replace layers by smaller sub-networks (annealing search) to fit a flash, size or instruction budget",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Shrink a model saved by the kit: layers are replaced by smaller sub-networks initialised from "
                    "their weights (depthwise-separable, bottleneck, k x 1 then 1 x k, low-rank dense, fewer "
                    "units), chosen by simulated annealing with a temperature per layer, each candidate fine-tuned "
                    "briefly and scored on a held-out fifth of --data; the best is fine-tuned on all of --data.\n\n"
                    f"MODEL is {MODEL_HELP}.\n--data and --test are {DATA_HELP}.\n"
                    "Writes OUT (.keras), OUT with .tflite (full int8) and .json (the figures before and after).",
    )
    s.add_argument("model", help=MODEL_HELP)
    s.add_argument("--data", required=True, help=f"training data: {DATA_HELP}")
    s.add_argument("--test", required=True, help=f"test data: {DATA_HELP}")
    s.add_argument("--flash", metavar="SIZE", help="flash budget of the int8 model's labkit-nn C linked for the Cortex-M4: bytes "
                                   "or K/M (20K = 20480 bytes)")
    s.add_argument("--params-ratio", metavar="R", help="or a parameter budget: the fraction of the parameters kept, in (0, 1]")
    s.add_argument("--instructions", metavar="N", help="or an instruction budget: instructions per inference on the "
                   "emulated Cortex-M4, e.g. 1500000 or 1.5M (each candidate is run in QEMU: slower)")
    s.add_argument("--distill", action="store_true",
                   help="fine-tune with knowledge distillation from the original model (else on the labels alone)")
    s.add_argument("--teacher", metavar="TEACHER.keras",
                   help="distil from this model instead of the original (implies --distill); it must score the "
                        "same classes from the same inputs")
    s.add_argument("-o", "--out", metavar="OUT.keras", help="output model, .keras or .h5 (default: MODEL_shrunk.keras)")
    s.add_argument("--steps", default="12", help="annealing steps, 0 to 1000 (default 12)")
    s.add_argument("--search-epochs", default="1", help="fine-tuning epochs of each candidate, 1 to 100 (default 1)")
    s.add_argument("--search-samples", default="5000",
                   help="training samples each candidate is fine-tuned on, 10 or more (default 5000)")
    s.add_argument("--epochs", default="3", help="final fine-tuning epochs, 0 or more (default 3)")
    s.add_argument("--batch-size", default="32", help="1 or more (default 32)")
    s.add_argument("--learning-rate", default="1e-3", help="Adam's, in (0, 1] (default 1e-3)")
    s.add_argument("--temperature", default="4", help="distillation temperature, in (0, 100] (default 4)")
    s.add_argument("--alpha", default="0.7", help="weight of the teacher's soft targets, in [0, 1] (default 0.7)")
    s.add_argument("--seed", default="0", help="0 to 2**32-1 (default 0)")
    s.set_defaults(func=_shrink)
