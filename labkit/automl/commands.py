"""``labkit search`` and ``labkit fit``: a model for a board budget, found or made to fit."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from labkit.errors import LabkitError

DATA_HELP = ".npz with 'x' (float samples: sensor windows (N, time, channels) or images (N, H, W, C)) and 'y' " \
            "(integer class indices)"
SIZE_HELP = "bytes: 16384, 16K, 16KB (K = 1024)"


def _budget(args):
    from labkit.automl.budget import Budget, parse_count, parse_size

    return Budget(flash_bytes=parse_size(args.flash, "--flash"), ram_bytes=parse_size(args.ram, "--ram"),
                  instructions=None if args.instructions is None else parse_count(args.instructions, "--instructions"),
                  macs=None if getattr(args, "macs", None) is None else parse_count(args.macs, "--macs"))


def _load(path, what, need=("x", "y")):
    from labkit.compress.commands import load_npz

    return load_npz(path, need, what)


def _log(message: str) -> None:
    print(message, flush=True)


def _search(args) -> int:
    from labkit.automl.search import SearchInterrupted, run_search

    budget = _budget(args)  # sizes first: a typo fails before anything loads
    if args.trials is None and args.minutes is None:
        args.trials = 20
    if args.minutes is not None and args.minutes <= 0:
        raise LabkitError(f"--minutes {args.minutes:g} must be more than 0")
    if args.trial_samples is not None and args.trial_samples < 1:
        raise LabkitError(f"--trial-samples {args.trial_samples} must be at least 1")
    data = _load(args.data, "DATA")
    test = _load(args.test, "--test") if args.test else {}
    families = args.family.split(",") if args.family else None
    try:
        report = run_search(data["x"], data["y"], budget, args.out, x_test=test.get("x"), y_test=test.get("y"),
                            families=families, trials=args.trials, minutes=args.minutes, max_epochs=args.epochs,
                            seed=args.seed, storage=args.storage, study_name=args.study or "labkit-search",
                            sampler=args.sampler, multi_objective=args.multi_objective, final=not args.no_final,
                            qat={"auto": None, "yes": True, "no": False}[args.qat],
                            trial_samples=args.trial_samples, log=_log)
    except SearchInterrupted as e:
        print(f"labkit: {e}", file=sys.stderr)
        return 130
    out = Path(args.out)
    if args.no_final:
        return 0
    print(json.dumps({k: report[k] for k in ("int8_accuracy", "float_accuracy", "flash_bytes", "ram_bytes",
                                             "instructions", "bit_exact", "trials", "feasible_trials", "netscore",
                                             "seconds")}, indent=2))
    print(f"wrote {out / 'best.keras'}, {out / 'best.tflite'}, {out / 'trials.csv'}, {out / 'pareto.png'}, "
          f"{out / 'report.json'}")
    return 0 if report["bit_exact"] else 1


def _fit(args) -> int:
    from labkit.automl.fit import fit_to_budget, format_table
    from labkit.compress.commands import load_model
    from labkit.fileio import save_keras_model, write_atomic, write_json

    budget = _budget(args)
    out = Path(args.out)
    if out.suffix not in (".keras", ".h5"):
        raise LabkitError(f"-o {out}: the fitted model is saved as a Keras model; name it .keras or .h5")
    model = load_model(args.model)
    data = _load(args.data, "--data")
    test = _load(args.test, "--test") if args.test else {}
    result, tflite, report = fit_to_budget(model, data["x"], data["y"], budget, x_test=test.get("x"),
                                           y_test=test.get("y"), epochs=args.epochs,
                                           qat={"auto": None, "yes": True, "no": False}[args.qat], seed=args.seed,
                                           log=_log)
    print(format_table(report))
    save_keras_model(result, out)
    write_atomic(out.with_suffix(".tflite"), tflite)
    write_json(out.with_suffix(".json"), report)
    print(f"wrote {out}, {out.with_suffix('.tflite')}, {out.with_suffix('.json')}")
    return 0


def register(subparsers) -> None:
    """Add ``search`` and ``fit`` to the ``labkit`` command."""
    fmt = argparse.RawDescriptionHelpFormatter
    s = subparsers.add_parser(
        "search", formatter_class=fmt,
        help="find the best int8 model that fits a board budget (Optuna study; flash/RAM/instructions measured)",
        description="Search model families for the int8 classifier with the best validation accuracy whose C fits "
                    "--flash and --ram (as linked for the nRF52840) and --instructions (per inference, emulated "
                    "Cortex-M4). Candidates are measured before training; those over the budget are never trained.\n"
                    "The study is kept in OUT/study.db (SQLite): the same command again resumes it. "
                    "--storage postgresql://... shares one study between several machines.")
    s.add_argument("data", help=f"training data: {DATA_HELP}")
    s.add_argument("--flash", required=True, help=f"flash limit, {SIZE_HELP}")
    s.add_argument("--ram", required=True, help=f"RAM limit, {SIZE_HELP}")
    s.add_argument("--instructions", help="limit of instructions per inference on the Cortex-M4 (e.g. 100000, 100k)")
    s.add_argument("--macs", help="limit of multiply-accumulates per inference (optional)")
    s.add_argument("--family", help="comma-separated model families (default: all that take the data): mlp, cnn1d, "
                                    "ds_cnn1d, lstm for sensor windows; cnn, ds_cnn for images")
    s.add_argument("--trials", type=int, help="finished trials the study should hold (default 20 without --minutes)")
    s.add_argument("--minutes", type=float, help="stop starting new trials after this many minutes")
    s.add_argument("--epochs", type=int, default=20, help="most training epochs a trial may ask for (default 20)")
    s.add_argument("--test", help=f"test data ({DATA_HELP}): the final model's accuracy is measured on it")
    s.add_argument("--out", required=True, help="output folder (created if missing; holds the study's SQLite file)")
    s.add_argument("--storage", help="Optuna storage URL instead of OUT/study.db, e.g. "
                                     "postgresql://USER:PASSWORD@HOST:5432/DATABASE for a study shared by a class")
    s.add_argument("--study", help="study name in the storage (default labkit-search)")
    s.add_argument("--sampler", choices=("tpe", "random", "nsga2"), default="tpe",
                   help="tpe (default), random, or nsga2 (the default with --multi-objective)")
    s.add_argument("--multi-objective", action="store_true",
                   help="maximise int8 accuracy and minimise flash and instructions together (Pareto front)")
    s.add_argument("--no-final", action="store_true",
                   help="only add trials to the study (an extra worker of a shared study): no retraining, no files "
                        "but OUT/trials.csv and OUT/pareto.png")
    s.add_argument("--trial-samples", type=int, metavar="N",
                   help="train each trial on at most N samples of the training split (a stratified subset: faster "
                        "on large data such as Fashion-MNIST); the final stage trains on all of them")
    s.add_argument("--qat", choices=("no", "yes", "auto"), default="no",
                   help="final stage: post-training quantization (default), quantization-aware fine-tuning, or "
                        "both and the better on the validation split")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=_search)

    f = subparsers.add_parser(
        "fit", formatter_class=fmt, help="shrink a saved Keras model until its int8 C fits a board budget",
        description="Make a model saved by the kit fit --flash/--ram (and --instructions): int8, then every layer "
                    "narrower by structured pruning (the widest that fits, measured before training), fine-tuned, "
                    "quantization-aware training when it helps. Prints before/after and writes OUT, OUT.tflite "
                    "and OUT.json.")
    f.add_argument("model", help="a tf_keras model: model.save('name.keras')")
    f.add_argument("--data", required=True, help=f"training data: {DATA_HELP}")
    f.add_argument("--test", help=f"test data ({DATA_HELP}): accuracies before and after are measured on it")
    f.add_argument("--flash", required=True, help=f"flash limit, {SIZE_HELP}")
    f.add_argument("--ram", required=True, help=f"RAM limit, {SIZE_HELP}")
    f.add_argument("--instructions", help="limit of instructions per inference on the Cortex-M4")
    f.add_argument("-o", "--out", required=True, help="output model, .keras (OUT.tflite and OUT.json beside it)")
    f.add_argument("--epochs", type=int, default=5, help="fine-tuning epochs after shrinking (default 5)")
    f.add_argument("--qat", choices=("auto", "yes", "no"), default="auto",
                   help="quantization-aware training: when it helps (default), always, never")
    f.add_argument("--seed", type=int, default=0)
    f.set_defaults(func=_fit)
