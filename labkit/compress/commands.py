"""``labkit quantize`` and ``labkit prune``: compress a model saved by the kit, with data from a .npz.

A *model saved by the kit* is a tf_keras model saved with ``model.save("name.keras")`` (or
``"name.h5"``), as every lesson and :mod:`labkit.train` produce. Data comes in a ``.npz``
holding ``x`` (float samples shaped like the model's input) and, for training or accuracy,
``y`` (integer class indices)::

    np.savez("train.npz", x=x_train, y=y_train)
    labkit quantize model.keras --data train.npz -o model.tflite --test test.npz
    labkit prune model.keras --data train.npz --sparsity 0.8 -o pruned.keras
    labkit prune model.keras --data train.npz --structured --sparsity 0.5 -o smaller.keras
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from labkit.datacheck import (
    check_float,
    check_int,
    check_labels,
    check_samples,
    check_training_options,
    model_classes,
    model_input_shape,
)
from labkit.errors import DatasetError, LabkitError
from labkit.fileio import save_keras_model

MODEL_HELP = ("a tf_keras model saved by the kit: model.save('name.keras') or model.save('name.h5')")
DATA_HELP = ".npz with 'x' (float samples shaped like the model's input) and 'y' (integer class indices)"
MODES = ("int8", "dynamic", "float16", "float")
METHODS = ("iterative", "oneshot", "gradual")


def load_model(path: str):
    """A tf_keras model from a .keras or .h5 file, with an error a user can act on."""
    p = Path(path)
    if p.suffix.lower() not in (".keras", ".h5"):
        raise LabkitError(f"{path}: expected a Keras model file ending in .keras or .h5 ({MODEL_HELP})")
    if p.is_dir():
        raise LabkitError(f"{path} is a folder; expected {MODEL_HELP}")
    if not p.is_file():
        raise LabkitError(f"{path}: no such file ({MODEL_HELP})")
    from labkit.keras import keras

    try:
        return keras.models.load_model(p, compile=False)
    except Exception as e:  # a corrupt file, a Keras 3 file, a custom layer, a broken config inside the file
        detail = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise LabkitError(f"cannot load {path} as a tf_keras model ({type(e).__name__}: {detail}); "
                          f"expected {MODEL_HELP}") from None


def load_npz(path: str, need: tuple[str, ...] = ("x",), what: str = "--data") -> dict[str, np.ndarray]:
    """The arrays of a .npz, checked: ``need`` must be there; x numbers, not empty, all finite (as float32);
    y integer class indices, one per sample (int64). The model's shape and classes: :func:`check_data`."""
    where = f"{what} {path}"
    if Path(path).is_dir():
        raise DatasetError(f"{where} is a folder; expected a .npz file with {DATA_HELP}")
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DatasetError(f"{where}: no such file") from None
    except Exception as e:  # not a zip, a truncated zip, a pickle
        raise DatasetError(f"{where}: cannot read it as a .npz ({type(e).__name__}); expected {DATA_HELP}") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise DatasetError(f"{where}: a single array, not a .npz; expected a .npz with {DATA_HELP} "
                           "(np.savez(path, x=x, y=y))")
    with data:
        try:
            arrays = {k: data[k] for k in data.files}
        except Exception as e:  # a damaged member, an object array (needs pickle)
            raise DatasetError(f"{where}: an array in it cannot be read ({type(e).__name__}: "
                               f"{(str(e).splitlines() or [''])[0][:120]}); expected {DATA_HELP}") from None
    missing = [k for k in need if k not in arrays]
    if missing:
        raise DatasetError(f"{where} has arrays {sorted(arrays) or 'none'} but needs "
                           f"{' and '.join(repr(k) for k in need)}; expected a {DATA_HELP}")
    if "x" in arrays:
        arrays["x"] = check_samples(arrays["x"], f"{where}: 'x'")
    if "y" in arrays:
        arrays["y"] = check_labels(arrays["y"], len(arrays["x"]) if "x" in arrays else None, name=f"{where}: 'y'",
                                   x_name="'x'", integer_dtype=True)
    return arrays


def check_data(model, arrays: dict[str, np.ndarray], path: str, what: str = "--data") -> None:
    """The samples of a :func:`load_npz` result shaped like the model's input, its labels among its outputs."""
    check_samples(arrays["x"], f"{what} {path}: 'x'", model_input_shape(model))
    if "y" in arrays:
        check_labels(arrays["y"], name=f"{what} {path}: 'y'", n_classes=model_classes(model))


def check_output(out: Path, suffixes: tuple[str, ...], what: str) -> Path:
    """``-o`` before any work: the right extension, not a folder, in a folder that exists (or can be made)
    and can be written."""
    if out.suffix.lower() not in suffixes:
        raise LabkitError(f"-o {out}: {what}; name it {' or '.join(suffixes)} (e.g. "
                          f"{out.with_suffix(suffixes[0]).name})")
    if out.is_dir():
        raise LabkitError(f"-o {out} is a folder; give a file name, e.g. {out / ('model' + suffixes[0])}")
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise LabkitError(f"-o {out}: {parent} is a file, not a folder; choose another place")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise LabkitError(f"-o {out}: the folder {parent} is not writable (permission denied); choose another place")
    return out


def check_seed(seed) -> int:
    return check_int(seed, "--seed", 0, 2**32 - 1, "NumPy and TensorFlow take seeds in this range")


def _finite_weights(model) -> None:
    """Refuse to save a model that training turned into NaN or infinity."""
    bad = sum(int(np.size(w) - np.isfinite(w).sum()) for w in model.get_weights())
    if bad:
        total = sum(int(np.size(w)) for w in model.get_weights())
        raise LabkitError(f"training diverged: {bad:,} of the {total:,} weights became NaN or infinite, so nothing "
                          "was written; try a smaller --learning-rate (e.g. 1e-4) or check --data")


def _accuracy(model, x, y) -> float:
    pred = model.predict(x, batch_size=256, verbose=0)
    return float(np.mean(np.argmax(pred, axis=-1) == y))


MAX_SAMPLES = 100_000  # the converter runs the model once per calibration sample; a few hundred are plenty
KINDS = {"int8": "int8", "dynamic": "dynamic range", "float16": "float16", "float": "float32"}


def _quantize(args) -> int:
    from labkit.compress import quantize as q
    from labkit.fileio import write_atomic

    samples = check_int(args.samples, "--samples", 1, MAX_SAMPLES,
                        "representative samples that calibrate int8; a few hundred are plenty, at most all of --data")
    seed = check_seed(args.seed)
    out = check_output(Path(args.out) if args.out else Path(args.model).with_suffix(".tflite"), (".tflite",),
                       "the converted model is a .tflite file")
    data = load_npz(args.data, ("x",))
    test = load_npz(args.test, ("x", "y"), "--test") if args.test else None
    model = load_model(args.model)
    check_data(model, data, args.data)
    if test is not None:
        check_data(model, test, args.test, "--test")
    if args.mode == "int8":
        tflite = q.to_int8_tflite(model, data["x"], samples=samples, seed=seed)
    elif args.mode == "dynamic":
        tflite = q.to_dynamic_range_tflite(model)
    elif args.mode == "float16":
        tflite = q.to_float16_tflite(model)
    else:
        tflite = q.to_float_tflite(model)
    kind = q.tflite_kind(tflite)
    io_int8 = args.mode != "int8" or _int8_io(tflite)
    if kind != KINDS[args.mode] or not io_int8:
        raise LabkitError(f"--mode {args.mode}: the converter produced a {kind} model"
                          f"{'' if io_int8 else ' without int8 input and output'}, not {KINDS[args.mode]}, so "
                          f"nothing was written; the model may hold layers TFLite cannot quantize that way")
    write_atomic(out, tflite)
    print(f"wrote {out}: {len(tflite)} bytes, {kind}"
          + (", int8 input and output, batch size 1" if args.mode == "int8" else ""))
    if args.mode == "int8" and samples > len(data["x"]):
        print(f"calibrated on all {len(data['x'])} samples of --data (--samples {samples} asks for more than it has)")
    if test is not None:
        print(f"{'float accuracy':<18}{_accuracy(model, test['x'], test['y']):.4f}")
        print(f"{args.mode + ' accuracy':<18}{q.evaluate_tflite(tflite, test['x'], test['y']):.4f}  "
              f"(reference interpreter, {len(test['y'])} samples)")
    return 0


def _int8_io(tflite: bytes) -> bool:
    from labkit.reference import io_details

    inputs, outputs = io_details(tflite)
    return all(t.dtype == np.int8 for t in (*inputs, *outputs))


def _prune(args) -> int:
    from labkit.compress import prune as p
    from labkit.compress import structured as s

    sparsity = p.check_sparsity(args.sparsity, "--sparsity")
    epochs, batch_size, learning_rate = check_training_options(args.epochs, args.batch_size, args.learning_rate, "--")
    steps = check_int(args.steps, "--steps", 1, 100)
    seed = check_seed(args.seed)
    suffix = Path(args.model).suffix
    out = check_output(Path(args.out) if args.out else Path(args.model).with_name(Path(args.model).stem + "_pruned" + suffix),
                       (".keras", ".h5"), "the pruned model is saved as a Keras model")
    need = ("x", "y") if epochs > 0 or args.method == "gradual" else ("x",)
    data = load_npz(args.data, need)
    test = load_npz(args.test, ("x", "y"), "--test") if args.test else None
    model = load_model(args.model)
    check_data(model, data, args.data)
    if test is not None:
        check_data(model, test, args.test, "--test")
    x, y = data["x"], data.get("y")
    train = dict(batch_size=batch_size, learning_rate=learning_rate, seed=seed)
    if args.structured:
        pruned = s.prune_structured(model, sparsity, criterion=args.criterion, x=x[:512])
        if epochs:
            s.fine_tune(pruned, x, y, epochs=epochs, **train)
        table = s.structure_report(model, pruned)
    else:
        if args.method == "gradual":
            pruned = p.prune_with_schedule(model, x, y, sparsity, epochs=max(epochs, 1), **train)
        elif args.method == "oneshot" or steps <= 1:
            pruned = p.prune_magnitude(model, sparsity, scope=args.scope)
            if epochs:
                p.fine_tune_pruned(pruned, x, y, epochs=epochs, **train)
        else:
            targets = [sparsity * (i + 1) / steps for i in range(steps)]
            pruned, _ = p.prune_iteratively(model, x, y, targets, epochs=epochs, scope=args.scope, **train)
        table = p.sparsity_report(pruned)
        table["sparsity"] = table["sparsity"].round(3)
    _finite_weights(pruned)
    print(table.to_string(index=False))
    if test is not None:
        print(f"accuracy before  {_accuracy(model, test['x'], test['y']):.4f}")
        print(f"accuracy after   {_accuracy(pruned, test['x'], test['y']):.4f}  ({len(test['y'])} samples)")
    save_keras_model(pruned, out)
    print(f"wrote {out}")
    return 0


def register(subparsers) -> None:
    """Add ``quantize`` and ``prune`` to the ``labkit`` command."""
    fmt = argparse.RawDescriptionHelpFormatter
    q = subparsers.add_parser(
        "quantize", help="convert a saved Keras model to .tflite: full int8 (default), dynamic range, float16",
        formatter_class=fmt,
        description="Convert a model saved by the kit to a .tflite.\n\n"
                    f"MODEL is {MODEL_HELP}.\n--data is a {DATA_HELP}; only 'x' is needed here: "
                    "--samples of them, drawn at random, calibrate the int8 ranges.\n"
                    "int8: int8 weights, activations, input and output, batch size 1 (what labkit-nn and "
                    "TFLite Micro run).",
    )
    q.add_argument("model", help=MODEL_HELP)
    q.add_argument("--data", required=True, help=f"representative (training) data: {DATA_HELP}")
    q.add_argument("-o", "--out", help="output .tflite (default: MODEL with the suffix .tflite)")
    q.add_argument("--mode", choices=MODES, default="int8",
                   help="int8 (full integer, default), dynamic (int8 weights, float compute), float16, float")
    q.add_argument("--samples", type=int, default=200,
                   help=f"representative samples for int8 calibration, 1 to {MAX_SAMPLES:,} (default 200; "
                        "all of --data when it has fewer)")
    q.add_argument("--test", help=f"test data ({DATA_HELP}): print float and quantized accuracy")
    q.add_argument("--seed", type=int, default=0)
    q.set_defaults(func=_quantize)

    p = subparsers.add_parser(
        "prune", help="prune a saved Keras model (magnitude or structured) and retrain it",
        formatter_class=fmt,
        description="Prune a model saved by the kit and retrain it on --data.\n\n"
                    f"MODEL is {MODEL_HELP}; the result is saved the same way.\n--data is a {DATA_HELP}.\n"
                    "Magnitude pruning (default) zeroes the smallest weights: a smaller gzip, same flash and time.\n"
                    "--structured removes whole units and filters instead: a smaller model in every respect.",
    )
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--data", required=True, help=f"training data: {DATA_HELP}")
    p.add_argument("--sparsity", type=float, required=True,
                   help="fraction in [0, 1): of the weights set to zero, or with --structured of the units/filters "
                        "removed from each pruned layer")
    p.add_argument("-o", "--out", help="output model, .keras or .h5 (default: MODEL_pruned.keras)")
    p.add_argument("--method", choices=METHODS, default="iterative",
                   help="iterative: prune and retrain in --steps rising steps (default); oneshot: prune once then "
                        "retrain; gradual: tensorflow-model-optimization's polynomial schedule over --epochs")
    p.add_argument("--steps", type=int, default=4, help="steps of the iterative method, 1 to 100 (default 4)")
    p.add_argument("--scope", choices=("layer", "global"), default="layer",
                   help="layer: every layer to the same sparsity (default); global: one threshold for all")
    p.add_argument("--structured", action="store_true", help="remove whole units/filters (the classifier keeps its outputs)")
    p.add_argument("--criterion", choices=("l1", "l2", "activation"), default="l1",
                   help="saliency of a unit for --structured (default l1: the L1 norm of its weights)")
    p.add_argument("--epochs", type=int, default=2, help="retraining epochs, 0 or more (per step when iterative; default 2)")
    p.add_argument("--batch-size", type=int, default=32, help="1 or more (default 32)")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="Adam's, in (0, 1] (default 1e-3)")
    p.add_argument("--test", help=f"test data ({DATA_HELP}): print the accuracy before and after")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_prune)
