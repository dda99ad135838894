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
from pathlib import Path

import numpy as np

from labkit.errors import DatasetError, LabkitError
from labkit.fileio import save_keras_model

MODEL_HELP = ("a tf_keras model saved by the kit: model.save('name.keras') or model.save('name.h5')")
DATA_HELP = ".npz with 'x' (float samples shaped like the model's input) and 'y' (integer class indices)"
MODES = ("int8", "dynamic", "float16", "float")
METHODS = ("iterative", "oneshot", "gradual")


def load_model(path: str):
    """A tf_keras model from a .keras or .h5 file, with an error a user can act on."""
    p = Path(path)
    if p.suffix not in (".keras", ".h5"):
        raise LabkitError(f"{path}: expected a Keras model file ending in .keras or .h5 ({MODEL_HELP})")
    if not p.is_file():
        raise LabkitError(f"{path}: no such file ({MODEL_HELP})")
    from labkit.keras import keras

    try:
        return keras.models.load_model(p, compile=False)
    except Exception as e:  # a corrupt file, a Keras 3 file, a custom layer
        raise LabkitError(f"cannot load {path} as a tf_keras model: {e}. Expected {MODEL_HELP}") from None


def load_npz(path: str, need: tuple[str, ...] = ("x",), what: str = "--data") -> dict[str, np.ndarray]:
    """The arrays of a .npz, checked: ``need`` must be there, x float, y integer and as long as x."""
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DatasetError(f"{what} {path}: no such file") from None
    except (OSError, ValueError) as e:
        raise DatasetError(f"{what} {path}: cannot read it as a .npz ({e}); expected {DATA_HELP}") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise DatasetError(f"{what} {path}: a single array, not a .npz; expected a .npz with {DATA_HELP} "
                           "(np.savez(path, x=x, y=y))")
    with data:
        arrays = {k: data[k] for k in data.files}
    missing = [k for k in need if k not in arrays]
    if missing:
        raise DatasetError(f"{what} {path} has arrays {sorted(arrays) or 'none'} but needs "
                           f"{' and '.join(repr(k) for k in need)}; expected a {DATA_HELP}")
    if "x" in arrays:
        x = arrays["x"]
        if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
            raise DatasetError(f"{what} {path}: 'x' must hold numbers, got dtype {x.dtype}")
        arrays["x"] = x.astype(np.float32)
    if "y" in arrays:
        y = arrays["y"]
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise DatasetError(f"{what} {path}: 'y' must be a 1-D array of integer class indices, got shape "
                               f"{y.shape} and dtype {y.dtype}")
        if "x" in arrays and len(y) != len(arrays["x"]):
            raise DatasetError(f"{what} {path}: 'x' has {len(arrays['x'])} samples but 'y' has {len(y)}")
    return arrays


def _check_x(model, x: np.ndarray, path: str, what: str = "--data") -> None:
    expected = tuple(model.input_shape[1:])
    if tuple(x.shape[1:]) != expected:
        raise DatasetError(f"{what} {path}: 'x' has samples of shape {tuple(x.shape[1:])}, the model takes "
                           f"{expected} (so 'x' must be (N, {', '.join(map(str, expected))}))")


def _accuracy(model, x, y) -> float:
    pred = model.predict(x, batch_size=256, verbose=0)
    return float(np.mean(np.argmax(pred, axis=-1) == y))


def _quantize(args) -> int:
    from labkit.compress import quantize as q
    from labkit.fileio import write_atomic

    model = load_model(args.model)
    data = load_npz(args.data, ("x",))
    _check_x(model, data["x"], args.data)
    test = load_npz(args.test, ("x", "y"), "--test") if args.test else None
    if test is not None:
        _check_x(model, test["x"], args.test, "--test")
    if args.mode == "int8":
        tflite = q.to_int8_tflite(model, data["x"], samples=args.samples, seed=args.seed)
    elif args.mode == "dynamic":
        tflite = q.to_dynamic_range_tflite(model)
    elif args.mode == "float16":
        tflite = q.to_float16_tflite(model)
    else:
        tflite = q.to_float_tflite(model)
    out = Path(args.out) if args.out else Path(args.model).with_suffix(".tflite")
    write_atomic(out, tflite)
    print(f"wrote {out}: {len(tflite)} bytes, {q.tflite_kind(tflite)}"
          + (", int8 input and output, batch size 1" if args.mode == "int8" else ""))
    if test is not None:
        print(f"{'float accuracy':<18}{_accuracy(model, test['x'], test['y']):.4f}")
        print(f"{args.mode + ' accuracy':<18}{q.evaluate_tflite(tflite, test['x'], test['y']):.4f}  "
              f"(reference interpreter, {len(test['y'])} samples)")
    return 0


def _prune(args) -> int:
    from labkit.compress import prune as p
    from labkit.compress import structured as s

    model = load_model(args.model)
    need = ("x", "y") if args.epochs > 0 or args.method == "gradual" else ("x",)
    data = load_npz(args.data, need)
    _check_x(model, data["x"], args.data)
    test = load_npz(args.test, ("x", "y"), "--test") if args.test else None
    if test is not None:
        _check_x(model, test["x"], args.test, "--test")
    sparsity = p.check_sparsity(args.sparsity, "--sparsity")
    x, y = data["x"], data.get("y")
    train = dict(batch_size=args.batch_size, learning_rate=args.learning_rate, seed=args.seed)
    if args.structured:
        pruned = s.prune_structured(model, sparsity, criterion=args.criterion, x=x[:512])
        if args.epochs:
            s.fine_tune(pruned, x, y, epochs=args.epochs, **train)
        table = s.structure_report(model, pruned)
    else:
        if args.method == "gradual":
            pruned = p.prune_with_schedule(model, x, y, sparsity, epochs=max(args.epochs, 1), **train)
        elif args.method == "oneshot" or args.steps <= 1:
            pruned = p.prune_magnitude(model, sparsity, scope=args.scope)
            if args.epochs:
                p.fine_tune_pruned(pruned, x, y, epochs=args.epochs, **train)
        else:
            steps = [sparsity * (i + 1) / args.steps for i in range(args.steps)]
            pruned, _ = p.prune_iteratively(model, x, y, steps, epochs=args.epochs, scope=args.scope, **train)
        table = p.sparsity_report(pruned)
        table["sparsity"] = table["sparsity"].round(3)
    print(table.to_string(index=False))
    if test is not None:
        print(f"accuracy before  {_accuracy(model, test['x'], test['y']):.4f}")
        print(f"accuracy after   {_accuracy(pruned, test['x'], test['y']):.4f}  ({len(test['y'])} samples)")
    suffix = Path(args.model).suffix
    out = Path(args.out) if args.out else Path(args.model).with_name(Path(args.model).stem + "_pruned" + suffix)
    if out.suffix not in (".keras", ".h5"):
        raise LabkitError(f"-o {out}: the pruned model is saved as a Keras model; name it .keras or .h5")
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
    q.add_argument("--samples", type=int, default=200, help="representative samples for int8 calibration (default 200)")
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
    p.add_argument("--steps", type=int, default=4, help="steps of the iterative method (default 4)")
    p.add_argument("--scope", choices=("layer", "global"), default="layer",
                   help="layer: every layer to the same sparsity (default); global: one threshold for all")
    p.add_argument("--structured", action="store_true", help="remove whole units/filters (the classifier keeps its outputs)")
    p.add_argument("--criterion", choices=("l1", "l2", "activation"), default="l1",
                   help="saliency of a unit for --structured (default l1: the L1 norm of its weights)")
    p.add_argument("--epochs", type=int, default=2, help="retraining epochs (per step when iterative; default 2)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--test", help=f"test data ({DATA_HELP}): print the accuracy before and after")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_prune)
