"""The board-side commands: ``labkit sketch``, ``labkit capture``, ``labkit board``."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path


def _sketch(args) -> int:
    from labkit.datacheck import parse_labels
    from labkit.deploy.sketch import OpVersionWarning, sketch_name_from, write_sketch

    labels = parse_labels(args.labels) if args.labels else None  # none empty, none repeated
    name = args.sketch if args.sketch is not None else sketch_name_from(Path(args.model).name.replace("-", "_"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", OpVersionWarning)
        folder, cm = write_sketch(args.model, args.out, sketch=name, name="model", labels=labels, app=args.app,
                                  board=args.board, source=Path(args.model).name, backend=args.backend,
                                  force=args.force, mode=args.mode, hop=args.hop, threshold=args.threshold,
                                  debounce=args.debounce, refractory=args.refractory, idle=args.idle)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    if cm is not None:
        print(f"wrote {folder}/ ({folder.name}.ino + the model as C: {cm.weights_bytes:,} bytes of constants, "
              f"{cm.arena_bytes:,}-byte arena)")
    else:
        print(f"wrote {folder}/ ({folder.name}.ino + the model for TensorFlow Lite Micro; install the "
              "Chirale_TensorFlowLite library)")
    if args.mode == "continuous":
        c = json.loads((folder / ("model.json" if cm is not None else "labkit.json")).read_text())["continuous"]
        print(f"continuous: a {c['window']}-reading ring buffer ({c['window'] * 6} bytes of RAM), an inference every "
              f"{c['hop']} readings, threshold {c['threshold']} (int8 score >= {c['threshold_q']}), "
              f"{c['debounce']} hop(s) to confirm, {c['refractory']} hop(s) refractory")
    print(f"next: labkit board upload {folder} --port PORT   (or open {folder.name}.ino in the Arduino IDE)")
    return 0


def _stream(args) -> int:
    from labkit.datacheck import parse_labels
    from labkit.stream import StreamRecognizer, load_stream, score_events

    labels = parse_labels(args.labels)
    readings, truth = load_stream(args.recording)
    if args.truth:
        truth = _read_truth(args.truth)
    rec = StreamRecognizer(args.model, labels, hop=args.hop, threshold=args.threshold, debounce=args.debounce,
                           refractory=args.refractory, idle=args.idle, reference=args.reference)
    events = rec.run(readings)
    c = rec.config
    print(f"{len(readings)} readings ({len(readings) / 119:.1f} s at 119 Hz); a window of {c.window}, an inference "
          f"every {c.hop}, threshold {c.threshold} (int8 score >= {c.threshold_q}), {c.debounce} hop(s) to confirm, "
          f"{c.refractory} refractory")
    for e in events.itertuples(index=False):
        print(f"event n={e.sample} start={e.start} score={e.score:.3f} label={e.label}")
    if truth is not None:
        s = score_events(events, truth, len(readings), window=c.window)
        print(f"{len(truth)} true gestures: {s.hits} found, {s.misses} missed, {s.false_alarms} false alarm(s) "
              f"({s.false_alarms_per_minute:.2f} per minute)")
    return 0


def _read_truth(path: str):
    import pandas as pd

    from labkit.errors import LabkitError

    try:
        truth = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise LabkitError(f"cannot read --truth {path}: {e}") from None
    if not {"start", "label"} <= set(truth.columns):
        raise LabkitError(f"--truth {path} needs the columns start,label (a gesture's first reading and its name)")
    return truth


def _capture_file(args) -> str:
    return args.output or f"{args.label}.csv"


def _capture_interrupted(args) -> str:
    """What Ctrl-C prints before the capture began (labkit.cli asks for it): nothing was recorded."""
    return f"interrupted: 0 gesture(s) kept in {_capture_file(args)}"


def _capture(args) -> int:
    summary = None
    try:
        from labkit.deploy.capture import capture
        from labkit.errors import LabkitError

        out = _capture_file(args)
        if not args.output and (not args.label.strip() or any(c in args.label for c in "/\\")):
            raise LabkitError(f"--label {args.label!r} cannot name a file; give a plain name (e.g. punch) or -o FILE")
        if args.gestures is not None and args.gestures < 1:
            raise LabkitError(f"--gestures must be 1 or more, got {args.gestures} (leave it out to record until Ctrl-C)")
        print(f"recording '{args.label}' gestures from {args.port} into {out}; Ctrl-C to stop", file=sys.stderr)
        summary = capture(args.port, out, gestures=args.gestures, log=lambda m: print(m, file=sys.stderr))
        print(summary)
    except KeyboardInterrupt:  # outside capture(): before it ran, or while its summary was printed
        pass
    else:
        if not summary.interrupted:
            return 0
    print(summary.interrupted_line() if summary is not None else _capture_interrupted(args), file=sys.stderr)
    return 130


def _board(args) -> int:
    from labkit.deploy.board import compile_sketch, upload_sketch

    if args.action == "compile":
        sizes = compile_sketch(args.sketch)
    else:
        sizes = upload_sketch(args.sketch, args.port)
    print(sizes)
    return 0


def register(sub) -> None:
    from labkit.cli import positive_int
    from labkit.deploy.sketch import APPS, BOARDS, MODES

    s = sub.add_parser("sketch", help="write an Arduino sketch folder with the model as plain C inside")
    s.add_argument("model", help="an int8 .tflite file")
    s.add_argument("-o", "--out", required=True, help="folder in which the sketch folder is written")
    s.add_argument("--board", choices=sorted(BOARDS), default="nano33ble_sense",
                   help="nano33ble_sense (Rev1, LSM9DS1 IMU) or nano33ble_sense_rev2 (BMI270/BMM150)")
    s.add_argument("--app", choices=APPS, default="gesture",
                   help="gesture: IMU trigger -> window -> label on Serial and the LED; serial: numbers in, answer out")
    s.add_argument("--labels", help="comma-separated class labels, one per output")
    s.add_argument("--sketch", help="sketch (and folder) name; default: the model's file name")
    s.add_argument("--backend", choices=("labkit-nn", "tflm"), default="labkit-nn",
                   help="labkit-nn: the model as plain C, no ML library (default); tflm: TensorFlow Lite Micro library")
    s.add_argument("--force", action="store_true",
                   help="replace the sketch folder even if it was changed since labkit made it (never a folder labkit did not make)")
    s.add_argument("--mode", choices=MODES, default="trigger",
                   help="gesture app: trigger (a window per 2.5 g trigger, default) or continuous (a sliding window "
                   "over the stream with a threshold and debouncing, as labkit.stream.StreamRecognizer)")
    s.add_argument("--hop", type=positive_int, default=10, help="continuous: readings between inferences (default 10)")
    s.add_argument("--threshold", type=float, default=0.8,
                   help="continuous: score the winning class needs (default 0.8)")
    s.add_argument("--debounce", type=positive_int, default=2,
                   help="continuous: hops a class must win in a row before it is an event (default 2)")
    s.add_argument("--refractory", type=int, default=None,
                   help="continuous: hops after an event without another (default: one window)")
    s.add_argument("--idle", default="idle", help="continuous: the label of the no-gesture class (default: idle)")
    s.set_defaults(func=_sketch)

    r = sub.add_parser("stream", help="continuous recognition over a recorded stream of IMU readings, as the "
                       "continuous sketch does it: events, and hits / misses / false alarms with --truth")
    r.add_argument("model", help="an int8 .tflite gesture model (a 119 x 6 window in)")
    r.add_argument("recording", help="the readings: .csv with header aX,aY,aZ,gX,gY,gZ, .npy (n, 6), or .npz with "
                   "x (and start, label: the true gestures)")
    r.add_argument("--labels", required=True, help="comma-separated class labels, one per output")
    r.add_argument("--truth", help="the true gestures: a .csv with columns start,label")
    r.add_argument("--hop", type=positive_int, default=10, help="readings between inferences (default 10)")
    r.add_argument("--threshold", type=float, default=0.8, help="score the winning class needs (default 0.8)")
    r.add_argument("--debounce", type=positive_int, default=2, help="hops a class must win in a row (default 2)")
    r.add_argument("--refractory", type=int, default=None, help="hops after an event without another "
                   "(default: one window)")
    r.add_argument("--idle", default="idle", help="the label of the no-gesture class (default: idle)")
    r.add_argument("--reference", choices=("tflm", "litert"), default="tflm",
                   help="the reference interpreter that runs the int8 model (default tflm, as the board's C)")
    r.set_defaults(func=_stream)

    c = sub.add_parser("capture", help="record gestures from the board's capture sketch into a CSV file")
    c.add_argument("--port", required=True, help="the board's serial port, e.g. /dev/ttyACM0 or COM3")
    c.add_argument("--label", required=True, help="the gesture's name (the file is LABEL.csv unless -o is given)")
    c.add_argument("--gestures", type=int, help="stop after this many gestures (default: until Ctrl-C)")
    c.add_argument("-o", "--output", help="CSV file; appended to if it exists")
    c.set_defaults(func=_capture, interrupted=_capture_interrupted)

    b = sub.add_parser("board", help="compile or upload a sketch with arduino-cli")
    b.add_argument("action", choices=("compile", "upload"))
    b.add_argument("sketch", help="the sketch folder")
    b.add_argument("--port", help="serial port for upload")
    b.set_defaults(func=_board)
