"""Arduino sketch folders for the Nano 33 BLE (Sense), with the labkit-nn model inside.

The folder is named after its .ino, as the Arduino IDE and arduino-cli require, and holds
everything the sketch needs: no ML library is installed on the board side.
"""

from __future__ import annotations

import os
from pathlib import Path

import labkit
from labkit.deploy.codegen import CModel, _env, check_c_name, generate_c
from labkit.errors import LabkitError
from labkit.fileio import write_atomic


def write_sketch(
    model,
    out_dir: str | os.PathLike,
    sketch: str = "labkit_model",
    name: str = "model",
    labels: list[str] | None = None,
    input_note: str = "",
    source: str | None = None,
) -> tuple[Path, CModel]:
    """Write ``out_dir/sketch/sketch.ino`` plus the generated model; returns (folder, CModel)."""
    check_c_name(sketch)
    folder = Path(out_dir) / sketch
    if folder.exists() and not folder.is_dir():
        raise LabkitError(f"{folder} exists and is not a folder: choose another output folder")
    cmodel = generate_c(model, folder, name=name, labels=labels, source=source)
    text = _env().get_template("sketch_serial.ino.j2").render(
        sketch=sketch,
        name=name,
        NAME=name.upper(),
        version=labkit.__version__,
        source=source or "(in-memory model)",
        input_size=cmodel.input.size,
        input_note=f", {input_note}" if input_note else "",
        labels=cmodel.labels,
        weights_bytes=cmodel.weights_bytes,
        arena_bytes=cmodel.arena_bytes,
    )
    write_atomic(folder / f"{sketch}.ino", text)
    return folder, cmodel
