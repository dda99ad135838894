"""Where a model's instructions go on the emulated Cortex-M4: one line per op of labkit-nn's C.

    .venv/bin/python benchmarks/op_profile.py ds-cnn        # the README's DS-CNN (alpha 0.5, 16x16x3)
    .venv/bin/python benchmarks/op_profile.py cnn           # the README's CNN 32x32x3
    .venv/bin/python benchmarks/op_profile.py model.tflite  # any int8 .tflite labkit-nn runs

The model's C is generated and run in QEMU (mps2-an386, -icount) as `labkit verify` does, once
as it is and once per op with that op's kernel call replaced by a call of an empty function:
the difference is what the op costs, exact and repeatable. The ops' MACs come from the lowering;
instructions per MAC are printed where the op has MACs.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

import labkit  # noqa: F401  (tf_keras before TensorFlow)
from labkit import verify as V
from labkit.deploy import ops
from labkit.deploy.codegen import generate_c
from labkit.deploy.tflite_reader import read_tflite

_EMPTY = ("static void __attribute__((noinline)) lk_bench_empty(const void *p, ...) {\n"
          "    __asm volatile(\"\" : : \"r\"(p) : \"memory\");\n}\n")


def _builtin(key: str) -> bytes:
    """The README's whole-model rows (benchmarks/verify_models.py), seeded weights."""
    from labkit import models, train
    from labkit.compress.quantize import to_int8_tflite

    train.set_seed(0)
    rng = np.random.default_rng(0)
    if key == "ds-cnn":
        return to_int8_tflite(models.ds_cnn((16, 16, 3), 4, alpha=0.5),
                              rng.normal(size=(64, 16, 16, 3)).astype("float32"))
    return to_int8_tflite(models.cnn((32, 32, 3), 10, dense=32), rng.normal(size=(64, 32, 32, 3)).astype("float32"))


def profile(tflite: bytes, work: Path) -> tuple[int, int, list[tuple[str, str, int, int]]]:
    """(instructions, MACs, [(op, kernel, instructions, MACs)]) of one inference."""
    cm = generate_c(tflite, work / "model", name="model")
    src = (cm.out_dir / "model.c").read_text()
    calls = list(re.finditer(r"^\s*(lk_\w+)\(&(op\d+)_\w+_params", src, flags=re.M))
    inputs = V.random_inputs(cm, 1)
    g = read_tflite(tflite)
    macs_of = {f"op{op.index}": low.macs for op, low in zip(g.ops, ops.lower(g))}

    def run(text: str, tag: str) -> int:
        folder = work / tag
        shutil.copytree(cm.out_dir, folder)
        (folder / "model.c").write_text(text)
        placed = cm.placed_in(folder)
        elf, _ = V.build_cortex_m4(placed, "tflm", work / f"{tag}-build")
        _, counts = V.run_cortex_m4(elf, inputs, placed.output.size, work / f"{tag}-run")
        return counts["instructions"]

    total = run(src, "full")
    rows = []
    for i, c in enumerate(calls):
        text = src[:c.start(1)] + "lk_bench_empty" + src[c.end(1):]
        text = text.replace("\nint model_run(void) {", "\n" + _EMPTY + "\nint model_run(void) {", 1)
        rows.append((c.group(2), c.group(1), total - run(text, f"op{i}"), macs_of[c.group(2)]))
        print(f"measured {c.group(2)}", file=sys.stderr)
    return total, cm.macs, rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", help="ds-cnn, cnn, or a .tflite file")
    args = ap.parse_args(argv)
    tfl = _builtin(args.model) if args.model in ("ds-cnn", "cnn") else Path(args.model).read_bytes()
    with tempfile.TemporaryDirectory(prefix="labkit-profile-") as tmp:
        total, macs, rows = profile(tfl, Path(tmp))
    print(f"{args.model}: {total:,} instructions, {macs:,} MACs, {total / macs:.2f} per MAC")
    print("| op | kernel | instructions | share | MACs | instr/MAC |")
    print("|---|---|---|---|---|---|")
    for op, kernel, ins, m in rows:
        per = f"{ins / m:.2f}" if m else "-"
        print(f"| {op} | {kernel} | {ins:,} | {100 * ins / total:.1f} % | {m:,} | {per} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
