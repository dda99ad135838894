"""Arduino sketch folders for the Nano 33 BLE (Sense), with the labkit-nn model inside.

The folder is named after its .ino, as the Arduino IDE and arduino-cli require, and holds
everything the sketch needs but the Arduino core and (for the gesture app) the IMU library:
no ML library. Two apps:
  gesture  the capture sketch's trigger, a 119 x 6 window into the model, label + scores +
           microseconds on Serial, the RGB LED per class;
  serial   any model: one line of numbers in, the answer out.
The gesture app has two modes: ``trigger`` (above) and ``continuous``: a ring buffer of the
last 119 readings scored every ``hop`` readings, with a confidence threshold and debouncing,
the same integer rule as ``labkit.stream.StreamRecognizer`` (events printed on Serial).
"""

from __future__ import annotations

import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import labkit
from labkit.deploy.codegen import CModel, _check_labels, _env, ccomment, check_c_name, display_name, render_c
from labkit.errors import LabkitError
from labkit.fileio import build_folder, check_replaceable, write_atomic

APPS = ("gesture", "serial")
MODES = ("trigger", "continuous")
BACKENDS = ("labkit-nn", "tflm")

# The TFLite Micro back end: the library from the Arduino Library Manager whose API the
# adapter follows (MicroInterpreter(model, resolver, arena, size), MicroMutableOpResolver).
TFLM_LIBRARY, TFLM_HEADER = "Chirale_TensorFlowLite", "Chirale_TensorFlowLite.h"
TFLM_LIBRARY_VERSION = "2.0.0"  # its library.properties: includes Chirale_TensorFlowLite.h, mbed_nano among its boards
TFLM_API = (f"version {TFLM_LIBRARY_VERSION} from the Arduino Library Manager, TFLite Micro's current API: "
            "MicroInterpreter(model, resolver, arena, size), no ErrorReporter")
_TFLM_ADDERS = {
    "ADD": "AddAdd", "AVERAGE_POOL_2D": "AddAveragePool2D", "CONCATENATION": "AddConcatenation",
    "CONV_2D": "AddConv2D", "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D", "DEQUANTIZE": "AddDequantize",
    "EXPAND_DIMS": "AddExpandDims", "FULLY_CONNECTED": "AddFullyConnected", "LOGISTIC": "AddLogistic",
    "MAX_POOL_2D": "AddMaxPool2D", "MEAN": "AddMean", "MUL": "AddMul", "PAD": "AddPad", "PADV2": "AddPadV2",
    "QUANTIZE": "AddQuantize", "RELU": "AddRelu", "RELU6": "AddRelu6", "RESHAPE": "AddReshape", "SLICE": "AddSlice",
    "SOFTMAX": "AddSoftmax", "SQUEEZE": "AddSqueeze", "STRIDED_SLICE": "AddStridedSlice", "TANH": "AddTanh",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM", "SUB": "AddSub", "MAXIMUM": "AddMaximum",
    "MINIMUM": "AddMinimum", "HARD_SWISH": "AddHardSwish", "LEAKY_RELU": "AddLeakyRelu", "TRANSPOSE": "AddTranspose",
}

# Old TFLite Micro libraries check op *versions*: their op resolver registered each op for a range
# of versions, and a model whose op is newer fails at start-up with "Didn't find op for builtin
# opcode 'CONV_2D' version '3'" - the error behind many forum threads about the old
# Arduino_TensorFlowLite releases. The highest versions that resolver knew (TFLM's
# all_ops_resolver.cc of early 2020); ops missing here were not in it at all. Current TFLM,
# which Chirale_TensorFlowLite follows, matches ops by name and ignores versions.
VERSION_CHECKING_TFLM_MAX_VERSION = {
    "FULLY_CONNECTED": 4, "CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "CONCATENATION": 3, "SPLIT": 3, "DEQUANTIZE": 2,
    **dict.fromkeys(("MAX_POOL_2D", "AVERAGE_POOL_2D", "SOFTMAX", "LOGISTIC", "RESHAPE", "STRIDED_SLICE", "PAD",
                     "PADV2", "ADD", "MUL", "QUANTIZE", "RELU", "RELU6", "MAXIMUM", "MINIMUM", "PACK", "UNPACK",
                     "SVDF", "PRELU", "ARG_MAX", "ARG_MIN", "NEG", "FLOOR", "ROUND", "CEIL"), 1),
}


class OpVersionWarning(UserWarning):
    """The model's op versions are newer than an old, version-checking TFLite Micro library knows."""


def version_checking_tflm_problems(ops: list[tuple[str, int]]) -> list[str]:
    """The (op, version) pairs an old version-checking TFLite Micro library would reject, described."""
    problems = []
    for kind, version in ops:
        known = VERSION_CHECKING_TFLM_MAX_VERSION.get(kind)
        if known is None:
            problems.append(f"{kind} (not in those libraries at all)")
        elif version > known:
            problems.append(f"{kind} version {version} (they know up to {known})")
    return problems


def arduino_float(x: float, digits: int = 2) -> str:
    """``Serial.print(x, digits)`` as the Arduino core prints it: half of the last digit added, then
    the digits peeled off one by one in double precision. On exact ties this can differ from
    Python's format, which rounds them to even: 48/256 = 0.1875 prints as 0.187 on the board."""
    x = float(x)
    digits = 2 if digits < 0 else digits
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf"
    if abs(x) > 4294967040.0:
        return "ovf"
    sign = "-" if x < 0.0 else ""
    x = abs(x)
    half = 0.5
    for _ in range(digits):
        half /= 10.0
    x += half
    whole = int(x)
    rest = x - float(whole)
    out = [sign, str(whole), "." if digits > 0 else ""]
    for _ in range(digits):
        rest *= 10.0
        digit = int(rest)
        out.append(str(digit))
        rest -= digit
    return "".join(out)


@dataclass(frozen=True)
class Board:
    name: str
    fqbn: str
    imu_header: str
    imu_library: str
    flash_bytes: int  # what arduino-cli reports as the maximum program storage
    ram_bytes: int  # and as the maximum dynamic memory


BOARDS = {
    "nano33ble_sense": Board("Arduino Nano 33 BLE Sense (Rev1)", "arduino:mbed_nano:nano33ble",
                             "Arduino_LSM9DS1.h", "Arduino_LSM9DS1", 983_040, 262_144),
    "nano33ble_sense_rev2": Board("Arduino Nano 33 BLE Sense Rev2", "arduino:mbed_nano:nano33ble",
                                  "Arduino_BMI270_BMM150.h", "Arduino_BMI270_BMM150", 983_040, 262_144),
}
_SKETCH_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


_WINDOWS_DEVICES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


def check_sketch_name(sketch: str) -> str:
    """``sketch`` if it can name a sketch folder and its .ino (Arduino's rule), else a LabkitError with the rule."""
    sketch = sketch if isinstance(sketch, str) else ""
    if not _SKETCH_NAME.fullmatch(sketch) or sketch.split(".")[0].lower() in _WINDOWS_DEVICES or sketch.endswith("."):
        shown = repr(sketch if len(sketch) <= 60 else sketch[:60] + "...")
        raise LabkitError(
            f"{shown} cannot name an Arduino sketch: use up to 63 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit, not ending with '.', and not a Windows device name such as CON or "
            "NUL (e.g. gesture_demo)"
        )
    return sketch


def _check_fits(cmodel: CModel, board: Board) -> None:
    if cmodel.weights_bytes > board.flash_bytes or cmodel.arena_bytes > board.ram_bytes:
        raise LabkitError(
            f"the model does not fit the {board.name}: it needs {cmodel.weights_bytes:,} bytes of flash for "
            f"constants (the board has {board.flash_bytes:,} for a whole sketch) and a {cmodel.arena_bytes:,}-byte "
            f"arena (of {board.ram_bytes:,} bytes of RAM). Make it smaller: fewer or narrower layers, or pruning."
        )


def write_sketch(
    model,
    out_dir: str | os.PathLike,
    sketch: str = "labkit_model",
    name: str = "model",
    labels: list[str] | None = None,
    app: str = "serial",
    board: str = "nano33ble_sense",
    input_note: str = "",
    source: str | None = None,
    backend: str = "labkit-nn",
    force: bool = False,
    mode: str = "trigger",
    hop: int = 10,
    threshold: float = 0.8,
    debounce: int = 2,
    refractory: int | None = None,
    idle: str = "idle",
) -> tuple[Path, CModel | None]:
    """Write ``out_dir/sketch/sketch.ino`` with the model beside it; returns (folder, CModel).

    The folder appears complete or not at all (built aside, moved into place whole). An existing
    folder is replaced only if labkit made it (its manifest says so) and nobody changed it
    since; ``force=True`` replaces a changed one too, never a folder labkit did not make.
    ``backend="tflm"`` runs the model with the TFLite Micro Arduino library instead of
    labkit-nn's C (the app code is the same); it returns no CModel.

    ``mode`` (gesture app): "trigger", the capture sketch's 2.5 g trigger cuts one window per
    gesture; or "continuous", every ``hop`` readings the last window is scored, and a class
    that is not ``idle`` becomes an event after winning ``debounce`` hops in a row with a score
    of at least ``threshold``, then no event for ``refractory`` hops (default: one window). The
    rule is :class:`labkit.stream.StreamRecognizer`'s, on the int8 scores: the same events.
    """
    check_sketch_name(sketch)
    check_c_name(name)
    source = display_name(source, model)
    if app not in APPS:
        raise LabkitError(f"unknown app {app!r}: use one of {', '.join(APPS)}")
    if board not in BOARDS:
        raise LabkitError(f"unknown board {board!r}: use one of {', '.join(BOARDS)}")
    if backend not in BACKENDS:
        raise LabkitError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if mode not in MODES:
        raise LabkitError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    if mode == "continuous" and app != "gesture":
        raise LabkitError("--mode continuous is for --app gesture (the IMU stream); the serial app answers each line")
    b = BOARDS[board]
    folder = Path(out_dir) / sketch
    check_replaceable(folder, force, what="sketch folder")
    if backend == "labkit-nn":
        files, cmodel = render_c(model, name=name, labels=labels, source=source)
        _check_fits(cmodel, b)
        io = (cmodel.input, cmodel.output)
        labels = cmodel.labels
        note = (f"Needs no ML library: the model is plain C in this folder ({name}.c and the labkit_nn kernels), "
                "verified bit for bit against TensorFlow Lite Micro on the machine that wrote it.")
        sizes = dict(weights_bytes=cmodel.weights_bytes, arena_bytes=cmodel.arena_bytes)
        manifest_name, manifest = f"{name}.json", cmodel.manifest()
    else:
        cmodel = None
        files, io, sizes = _render_tflm(model, name, b, source)
        note = (f"Runs the model with TensorFlow Lite Micro: install the {TFLM_LIBRARY} library "
                f"(Tools > Manage Libraries). {name}.cpp holds the interpreter, {name}_data.cpp the model.")
        labels = _check_labels(labels, io[1].size) if labels is not None else []
        manifest_name, manifest = "labkit.json", dict(backend=backend, name=name, labels=labels)
    ctx = dict(
        sketch=sketch, name=name, NAME=name.upper(), version=labkit.__version__,
        source=source, labels=labels or [], backend_note=note,
        board_name=b.name, imu_header=b.imu_header, imu_library=b.imu_library, **sizes,
    )
    x_info, y_info = io
    if app == "gesture":
        from labkit.datasets.gestures import FULL_SCALE, SAMPLES_PER_GESTURE, TRIGGER_G

        if not x_info.quantized or x_info.size != SAMPLES_PER_GESTURE * 6:
            raise LabkitError(
                f"--app gesture needs a model whose int8 input is a window of {SAMPLES_PER_GESTURE} x 6 "
                f"readings (aX,aY,aZ,gX,gY,gZ); this one takes {x_info.ctype} {list(x_info.shape)}. "
                "Use --app serial for other models."
            )
        ctx.update(trigger_g=TRIGGER_G, samples=SAMPLES_PER_GESTURE, full_scale=FULL_SCALE)
        if mode == "continuous":
            stream = _continuous_settings(x_info, y_info, labels, hop, threshold, debounce, refractory, idle)
            ctx.update(stream)
            manifest = {**manifest, "continuous": stream}
            files[f"{sketch}.ino"] = _env().get_template("sketch_gesture_stream.ino.j2").render(ctx)
        else:
            files[f"{sketch}.ino"] = _env().get_template("sketch_gesture.ino.j2").render(ctx)
    else:
        if not x_info.quantized or not y_info.quantized:
            raise LabkitError("--app serial needs a model with int8 input and output "
                              "(convert with labkit.compress.quantize.to_int8_tflite)")
        ctx.update(input_size=x_info.size, input_note=f", {input_note}" if input_note else "")
        files[f"{sketch}.ino"] = _env().get_template("sketch_serial.ino.j2").render(ctx)
    manifest = {**manifest, "sketch": sketch, "app": app, "board": board, "mode": mode}

    def build(staging: Path):
        for fname, data in files.items():
            write_atomic(staging / fname, data)
        return None, manifest_name, manifest

    build_folder(folder, build, made_by="labkit sketch", force=force, what="sketch folder")
    return folder, (cmodel.placed_in(folder) if cmodel is not None else None)


def _continuous_settings(x_info, y_info, labels, hop, threshold, debounce, refractory, idle) -> dict:
    """The continuous mode's integer settings, checked as labkit.stream checks them."""
    from labkit.stream import check_config, threshold_q

    if not y_info.quantized:
        raise LabkitError("--mode continuous needs a model with an int8 output (its scores are compared as int8)")
    window = x_info.size // 6
    refractory = check_config(window, hop, debounce, refractory)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise LabkitError(f"threshold must be a number (a score, e.g. 0.8), got {threshold!r}")
    return dict(window=window, hop=int(hop), debounce=int(debounce), refractory=refractory,
                threshold=float(threshold), threshold_q=threshold_q(float(threshold), y_info.scale, y_info.zero_point),
                idle=labels.index(idle) if labels and idle in labels else -1)


def sketch_name_from(path: str | os.PathLike) -> str:
    """A sketch name made from a model's file name (``gesture-model v2.tflite`` -> ``gesture_model_v2``)."""
    stem = re.sub(r"[^A-Za-z0-9_.]+", "_", Path(str(path)).stem).strip("._")
    return stem[:63] or "labkit_model"


def _render_tflm(model, name: str, board: Board, source: str):
    """The TFLite Micro back end's files by name, the input/output facts and the sizes. Writes nothing."""
    from labkit.deploy.codegen import TensorInfo
    from labkit.deploy.tflite_reader import read_tflite
    from labkit.reference import io_details, tflm_arena_bytes

    data = model if isinstance(model, (bytes, bytearray)) else Path(model).read_bytes()
    g = read_tflite(data)
    (inp,), (out,) = io_details(data)
    info = [TensorInfo(d.shape, math.prod(d.shape[1:]), d.scale, d.zero_point,
                       ctype="int8_t" if d.dtype.name == "int8" else "float") for d in (inp, out)]
    ops = []
    for op in g.ops:
        if op.kind not in {o["kind"] for o in ops}:
            if op.kind not in _TFLM_ADDERS:
                raise LabkitError(f"labkit does not know TFLite Micro's resolver call for {ccomment(op.kind, 80)}")
            ops.append(dict(kind=op.kind, version=op.version, adder=_TFLM_ADDERS[op.kind],
                            old_max=VERSION_CHECKING_TFLM_MAX_VERSION.get(op.kind)))
    problems = version_checking_tflm_problems([(o["kind"], o["version"]) for o in ops])
    if problems:
        warnings.warn(
            f"this model's ops are newer than old TFLite Micro libraries that check op versions (such as the "
            f"old Arduino_TensorFlowLite releases) know: {'; '.join(problems)}. With one of those the sketch "
            f"stops at start-up with \"Didn't find op for builtin opcode ...\". Install {TFLM_LIBRARY}, which "
            "this sketch is written for (it matches ops by name), or use the labkit-nn back end (no library).",
            OpVersionWarning, stacklevel=3)
    measured = tflm_arena_bytes(data)
    margin = (measured // 10 + 1024 + 15) // 16 * 16  # TFLM on the board: other alignment, its own bookkeeping
    arena = measured + margin
    if len(data) > board.flash_bytes or arena > board.ram_bytes:
        raise LabkitError(f"the model does not fit the {board.name}: {len(data):,} bytes of model (of "
                          f"{board.flash_bytes:,} of flash) and a {arena:,}-byte arena (of {board.ram_bytes:,} of RAM)")
    env = _env()
    ctx = dict(name=name, NAME=name.upper(), version=labkit.__version__, source=source, library=TFLM_LIBRARY,
               library_version=TFLM_API, library_header=TFLM_HEADER, input=info[0], output=info[1],
               arena_bytes=arena, measured_arena=measured, margin=margin, ops=ops, size=len(data),
               data="\n".join("    " + ", ".join(f"0x{b:02x}" for b in data[i:i + 12]) + ","
                              for i in range(0, len(data), 12)))
    files: dict[str, str | bytes] = {
        fname: env.get_template(template).render(ctx)
        for template, fname in (("tflm_model.h.j2", f"{name}.h"), ("tflm_model.cpp.j2", f"{name}.cpp"),
                                ("tflm_data.h.j2", f"{name}_data.h"), ("tflm_data.cpp.j2", f"{name}_data.cpp"))
    }
    files[f"{name}.tflite"] = bytes(data)
    return files, (info[0], info[1]), dict(weights_bytes=len(data), arena_bytes=arena)
