"""The ``labkit`` command. Errors a user can cause print one line and exit 2, never a traceback."""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
import threading
from pathlib import Path

from labkit.errors import LabkitError


def _demo(args) -> int:
    from labkit.demo import format_report, run_demo, save_report

    report = run_demo(args.out, seed=args.seed, log=lambda m: print(m, file=sys.stderr))
    if args.json:
        save_report(report, args.out)
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
    return 0 if report["bit_exact"] else 1


def _codegen(args) -> int:
    from labkit.deploy.codegen import generate_c

    labels = args.labels.split(",") if args.labels else None
    m = generate_c(args.model, args.out, name=args.name, labels=labels, reference=args.reference,
                   source=Path(args.model).name, force=args.force, lstm_state=args.lstm_state,
                   steps_per_call=args.steps_per_call)
    print(f"wrote {', '.join(str(f) for f in m.files)}")
    print(f"ops: {', '.join(m.ops)}")
    print(f"weights: {m.weights_bytes} bytes  arena: {m.arena_bytes} bytes  MACs: {m.macs}")
    if m.streaming:
        s = m.streaming
        print(f"streaming: {s['steps_per_call']} of {s['sequence_steps']} time steps per call, LSTM state carried "
              f"({s['state_bytes']} bytes, inside the arena); {args.name}_reset() starts a sequence")
    return 0


def _verify(args) -> int:
    from labkit.verify import TARGETS, verify

    targets = TARGETS if args.target == "all" else (args.target,)
    model = args.model
    if Path(model).is_dir():
        from labkit.deploy.codegen import CModel

        cm = CModel.from_folder(model)
        model = str(cm.out_dir / f"{cm.name}.tflite")
    if args.data:
        from labkit.deploy.tflite_reader import read_tflite

        read_tflite(model)  # a broken model gets its one-line error before the data is read against it
    inputs = load_inputs(args.data, model) if args.data else None
    references = ("tflm", "litert") if args.reference == "both" else (args.reference,)
    reports = [verify(args.model, inputs=inputs, samples=args.samples, target=t, references=references).as_dict()
               for t in targets]
    if args.json:
        print(json.dumps(reports if len(reports) > 1 else reports[0], indent=2))
    else:
        print(format_table(reports))
    return 0 if all(r["bit_exact"] for r in reports) else 1


def load_inputs(path: str, model: str):
    """Samples for verification from a .npy, or a .npz holding an array 'x' (float: quantized with the model's input scale)."""
    import numpy as np

    from labkit.compress.quantize import quantize
    from labkit.reference import io_details

    try:
        data = np.load(path)
    except (OSError, ValueError) as e:
        raise LabkitError(f"cannot read --data {path}: {e}") from None
    if isinstance(data, np.lib.npyio.NpzFile):
        if "x" not in data.files:
            raise LabkitError(f"--data {path} has arrays {data.files}; expected one named 'x' with the samples")
        data = data["x"]
    (inp,), _ = io_details(model)
    if data.ndim == len(inp.shape) - 1:
        data = data[None]
    if tuple(data.shape[1:]) != inp.shape[1:]:
        raise LabkitError(f"--data {path}: samples have shape {data.shape[1:]}, the model takes {inp.shape[1:]}")
    if np.issubdtype(data.dtype, np.floating):
        from labkit.datacheck import check_samples

        check_samples(data, f"--data {path}", harm="they have no int8 value to compare")
        return quantize(data, inp.scale, inp.zero_point)
    if data.dtype != np.int8:
        raise LabkitError(f"--data {path}: expected float or int8 samples, got {data.dtype}")
    return data


def format_table(reports: list[dict]) -> str:
    """One row per metric, one column per target."""
    keys = list(dict.fromkeys(k for r in reports for k in r))
    cell = lambda v: "-" if v is None else (str(v).lower() if isinstance(v, bool) else str(v))  # noqa: E731
    rows = [[k] + [cell(r.get(k)) for r in reports] for k in keys]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


# Stages that bring their own subcommands: each module has register(subparsers), adding
# parsers whose func(args) returns an exit code and raises LabkitError for a user's mistake.
STAGE_COMMANDS: tuple[str, ...] = ("labkit.deploy.commands", "labkit.compress.commands",
                                   "labkit.compress.shrink_command", "labkit.course.lessons",
                                   "labkit.automl.commands")


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1 (argparse then names the option in its message)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n} must be 1 or more")
    return n


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="labkit", description="Deep learning on the edge: train, quantize, generate C, verify.")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="run the whole pipeline once and print its report")
    d.add_argument("--out", default="labkit-demo", help="output folder (new, empty, or an earlier demo's)")
    d.add_argument("--json", action="store_true", help="also write OUT/report.json and print the report as JSON")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=_demo)

    c = sub.add_parser("codegen", help="write labkit-nn C for an int8 .tflite")
    c.add_argument("model", help="an int8 .tflite file")
    c.add_argument("-o", "--out", required=True, help="output folder")
    c.add_argument("--name", default="model",
                   help="C name prefix: letters, digits, underscores, at most 48, not a C keyword (default: model)")
    c.add_argument("--labels", help="comma-separated class labels, one per output")
    c.add_argument("--reference", choices=("tflm", "litert"), default="tflm",
                   help="whose integer arithmetic to reproduce bit for bit: TFLite Micro (default) or LiteRT")
    c.add_argument("--force", action="store_true",
                   help="replace the output folder even if it was changed since labkit made it (never a folder labkit did not make)")
    c.add_argument("--lstm-state", choices=("reset", "carry"), default="reset",
                   help="an LSTM model: reset (a whole window per call, default) or carry (a few time steps per call, "
                   "the state kept between calls, NAME_reset() to start a sequence)")
    c.add_argument("--steps-per-call", type=positive_int, default=1,
                   help="with --lstm-state carry: time steps per call (must divide the window's; default 1)")
    c.set_defaults(func=_codegen)

    v = sub.add_parser("verify", help="build the generated C and compare it byte for byte with the reference interpreters",
                       description="Build the generated C and compare every output byte with the reference "
                       "interpreters (each runs in a child process: one that refuses or crashes on the model is "
                       "left out, and the report's *_not_run line says why).",
                       epilog="exit status: 0 bit-exact with every reference that ran, 1 a mismatch, "
                       "2 an error (invalid model, no reference could run it, a tool missing), 130 interrupted")
    v.add_argument("model", help="an int8 .tflite file, or a folder written by `labkit codegen` (its C is checked as it is)")
    v.add_argument("--target", choices=("host", "cortex-m4", "all"), default="host",
                   help="host: gcc on this machine; cortex-m4: arm-none-eabi-gcc + QEMU mps2-an386; all: both")
    v.add_argument("--samples", type=positive_int, default=100, help="random int8 inputs to compare (default: 100)")
    v.add_argument("--data", help="samples to use instead of random ones: .npy, or .npz with an array 'x' "
                   "(float samples are quantized with the model's input scale)")
    v.add_argument("--reference", choices=("both", "tflm", "litert"), default="both",
                   help="which reference interpreters to check against: TFLite Micro, LiteRT (BUILTIN_REF), "
                   "or both (default)")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=_verify)

    for module in STAGE_COMMANDS:
        importlib.import_module(module).register(sub)
    return p


def _parse_holding_ctrl_c(argv) -> tuple[argparse.Namespace, bool]:
    """The parsed command line, and whether Ctrl-C was pressed meanwhile: building the parser imports
    the stages (a few tenths of a second), and a Ctrl-C then must not end in a traceback."""
    if threading.current_thread() is not threading.main_thread():
        return build_parser().parse_args(argv), False
    pressed: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda *_: pressed.append(1))
    try:
        return build_parser().parse_args(argv), bool(pressed)
    finally:
        signal.signal(signal.SIGINT, previous)


def main(argv=None) -> int:
    args, pressed = _parse_holding_ctrl_c(argv)
    # a command may say what a Ctrl-C before it began left (capture: the file and its gestures)
    note = getattr(args, "interrupted", None) or (lambda _: "labkit: interrupted")
    if pressed:
        print(note(args), file=sys.stderr)
        return 130
    try:
        return args.func(args)
    except LabkitError as e:
        print(f"labkit: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a path the user gave: missing, a file where a folder should be, no permission, disk full
        where = f": {e.filename}" if e.filename else ""
        print(f"labkit: error: {e.strerror or e}{where} (check the path and its permissions)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(note(args), file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
