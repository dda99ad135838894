"""Arduino sketch folders for the Nano 33 BLE (Sense), with the labkit-nn model inside.

The folder is named after its .ino, as the Arduino IDE and arduino-cli require, and holds
everything the sketch needs but the Arduino core and (for the gesture app) the IMU library:
no ML library. Two apps:
  gesture  the capture sketch's trigger, a 119 x 6 window into the model, label + scores +
           microseconds on Serial, the RGB LED per class;
  serial   any model: one line of numbers in, the answer out.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import labkit
from labkit.deploy.codegen import CModel, _env, generate_c
from labkit.errors import LabkitError

APPS = ("gesture", "serial")


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


def check_sketch_name(sketch: str) -> str:
    if not _SKETCH_NAME.match(sketch or ""):
        raise LabkitError(
            f"{sketch!r} cannot name an Arduino sketch: use up to 63 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit (e.g. gesture_demo)"
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
) -> tuple[Path, CModel]:
    """Write ``out_dir/sketch/sketch.ino`` with the model beside it; returns (folder, CModel).

    The folder appears complete or not at all; an existing folder is replaced only if labkit
    wrote it (it holds ``sketch.ino`` and the model's ``name.json``).
    """
    check_sketch_name(sketch)
    if app not in APPS:
        raise LabkitError(f"unknown app {app!r}: use one of {', '.join(APPS)}")
    if board not in BOARDS:
        raise LabkitError(f"unknown board {board!r}: use one of {', '.join(BOARDS)}")
    b = BOARDS[board]
    folder = Path(out_dir) / sketch
    if folder.exists() and not folder.is_dir():
        raise LabkitError(f"{folder} exists and is not a folder: choose another output folder")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / f"{sketch}.ino").exists():
        raise LabkitError(f"{folder} is not empty and is not a labkit sketch; nothing was changed. "
                          "Choose another output folder or sketch name.")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{sketch}.", dir=out_dir) as tmp:
        staging = Path(tmp) / sketch
        cmodel = generate_c(model, staging, name=name, labels=labels, source=source)
        _check_fits(cmodel, b)
        ctx = dict(
            sketch=sketch, name=name, NAME=name.upper(), version=labkit.__version__,
            source=source or "(in-memory model)", labels=cmodel.labels,
            weights_bytes=cmodel.weights_bytes, arena_bytes=cmodel.arena_bytes,
            board_name=b.name, imu_header=b.imu_header, imu_library=b.imu_library,
        )
        if app == "gesture":
            from labkit.datasets.gestures import FULL_SCALE, SAMPLES_PER_GESTURE, TRIGGER_G

            if not cmodel.input.quantized or cmodel.input.size != SAMPLES_PER_GESTURE * 6:
                raise LabkitError(
                    f"--app gesture needs a model whose int8 input is a window of {SAMPLES_PER_GESTURE} x 6 "
                    f"readings (aX,aY,aZ,gX,gY,gZ); this one takes {cmodel.input.ctype} {list(cmodel.input.shape)}. "
                    "Use --app serial for other models."
                )
            ctx.update(trigger_g=TRIGGER_G, samples=SAMPLES_PER_GESTURE, full_scale=FULL_SCALE)
            text = _env().get_template("sketch_gesture.ino.j2").render(ctx)
        else:
            if not cmodel.input.quantized or not cmodel.output.quantized:
                raise LabkitError("--app serial needs a model with int8 input and output "
                                  "(convert with labkit.compress.quantize.to_int8_tflite)")
            ctx.update(input_size=cmodel.input.size, input_note=f", {input_note}" if input_note else "")
            text = _env().get_template("sketch_serial.ino.j2").render(ctx)
        (staging / f"{sketch}.ino").write_text(text)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    cmodel = CModel.from_folder(folder)
    return folder, cmodel
