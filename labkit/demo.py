"""``labkit demo``: the whole pipeline once, thin but real.

gesture data -> MLP -> seeded training -> full-int8 .tflite -> labkit-nn C -> built with gcc
and for an emulated Cortex-M4, run on the whole test set, every output byte compared with both
reference interpreters -> Arduino sketch folder -> report.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np

from labkit.errors import LabkitError
from labkit.datasets.gestures import normalize_imu
from labkit.fileio import save_keras_model, write_atomic, write_json, write_npz

MARKER = ".labkit-demo"


def prepare_out_dir(out: str | os.PathLike) -> Path:
    """Make ``out`` ready for the demo's files without ever overwriting someone else's.

    Accepted: a new folder, an empty one, or one an earlier demo wrote (it holds MARKER).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise LabkitError(f"--out {out} is a file, not a folder: give a folder path (it will be created)")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise LabkitError(
            f"--out {out} is not empty and was not written by labkit demo; nothing was changed. "
            "Choose a new or empty folder."
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(out / MARKER, "written by labkit demo; it may overwrite this folder's files\n")
    except PermissionError:
        raise LabkitError(f"--out {out} is not writable: choose a folder you can write to") from None
    except OSError as e:
        raise LabkitError(f"--out {out} cannot be used: {e.strerror}") from None
    return out


def run_demo(out: str | os.PathLike = "labkit-demo", seed: int = 0, log=print) -> dict:
    """Run the pipeline; write the model, C, sketch and report.json under ``out``; return the report."""
    t0 = time.perf_counter()
    out = prepare_out_dir(out)
    from labkit import datasets, models, train
    from labkit.compress import quantize
    from labkit.deploy.sketch import write_sketch
    from labkit.reference import tflm_arena_bytes
    from labkit.verify import require_tool, verify

    require_tool("gcc")  # fail before training, not after

    log("1/6 data: synthetic IMU gestures (119 samples x aX,aY,aZ,gX,gY,gZ)")
    ds = datasets.make_gestures(n_per_class=200, seed=seed)
    train_ds, test_ds = ds.split(test_size=0.25, seed=seed)
    x_train, x_test = normalize_imu(train_ds.x), normalize_imu(test_ds.x)
    labels = list(ds.info.class_names)

    log(f"2/6 model + training: MLP on {len(x_train)} gestures")
    train.set_seed(seed)  # the initial weights are drawn when the model is built
    model = models.mlp(x_train.shape[1:], len(labels), hidden=(32, 16))
    train.fit_classifier(model, x_train, train_ds.y, epochs=40, batch_size=32, seed=seed)
    float_acc = train.accuracy(model, x_test, test_ds.y)
    # the model and its data, for trying `labkit prune` / `labkit quantize` on it
    save_keras_model(model, out / "gesture_model.keras")
    write_npz(out / "train.npz", x=x_train, y=train_ds.y)
    write_npz(out / "test.npz", x=x_test, y=test_ds.y)

    log("3/6 full-int8 quantization")
    tflite = quantize.to_int8_tflite(model, x_train, seed=seed)
    write_atomic(out / "gesture_model.tflite", tflite)
    int8_acc = quantize.evaluate_tflite(tflite, x_test, test_ds.y)

    log("4/6 labkit-nn C + Arduino sketch")
    sketch_dir, cmodel = write_sketch(
        tflite, out, sketch="gesture_demo", name="gesture_model", labels=labels, app="gesture",
        source="gesture_model.tflite",
    )

    q_test = quantize.quantize(x_test, cmodel.input.scale, cmodel.input.zero_point)
    targets = ["host"]
    missing = [t for t in ("arm-none-eabi-gcc", "qemu-system-arm") if shutil.which(t) is None]
    if missing:
        log(f"   (no {' or '.join(missing)}: the emulated Cortex-M4 rung is left out; `make test` installs them)")
    else:
        targets.append("cortex-m4")
    log(f"5/6 verification: C on {' and '.join(targets)} vs LiteRT and TFLite Micro, {len(x_test)} test gestures")
    reports = [verify(tflite, inputs=q_test, cmodel=cmodel, workdir=out / "build", target=t) for t in targets]
    m4 = reports[-1].metrics if "cortex-m4" in targets else {}

    log("6/6 report")
    result = {
        "float_accuracy": round(float_acc, 4),
        "int8_accuracy": round(int8_acc, 4),
        "bit_exact": all(r.bit_exact for r in reports),
        "mismatched_bytes": sum(c.mismatched_bytes for r in reports for c in r.checks),
        "verified_on": "+".join(targets),
        "references": "litert+tflm",
        "test_samples": reports[0].samples,
        "model_bytes": len(tflite),
        "weights_bytes": cmodel.weights_bytes,
        "arena_bytes": cmodel.arena_bytes,
        "tflm_arena_bytes": tflm_arena_bytes(tflite),
        "flash_bytes": m4.get("flash_bytes"),
        "ram_bytes": m4.get("ram_bytes"),
        "macs": cmodel.macs,
        "instructions": m4.get("instructions"),
        "sketch_dir": str(sketch_dir),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    return result


def format_report(report: dict) -> str:
    width = max(map(len, report))
    return "\n".join(f"{k:<{width}}  {str(v).lower() if isinstance(v, bool) else v}" for k, v in report.items())


def save_report(report: dict, out: str | os.PathLike) -> Path:
    return write_json(Path(out) / "report.json", report)
