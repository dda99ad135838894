"""labkit-nn's kernels one by one on the emulated Cortex-M4: instructions per MAC, bit-exactness, code bytes.

    .venv/bin/python benchmarks/kernels.py            # -O2, the kit's Cortex-M4 build (DSP paths on)
    .venv/bin/python benchmarks/kernels.py --opt Os   # the same at -Os
    .venv/bin/python benchmarks/kernels.py --no-dsp   # the plain C kernels on the Cortex-M4

Four single-op models (full int8, batch 1, int8 in and out, per-channel weights as the converter
makes them, non-zero biases), the shapes issue 15 compares with Arm's CMSIS-NN:

    FULLY_CONNECTED 256 -> 64; CONV_2D 3x3 16 -> 16 on 16x16, SAME, ReLU;
    CONV_2D 1x1 32 -> 32 on 16x16, ReLU; DEPTHWISE_CONV_2D 3x3 x32 on 16x16, SAME, ReLU.

Each is generated, cross-compiled (arm-none-eabi-gcc, -mcpu=cortex-m4 -mfpu=fpv4-sp-d16
-mfloat-abi=hard) and run in QEMU (mps2-an386, -icount) against both reference interpreters
(TFLite Micro and LiteRT, each with its own build); instructions per inference are read through
the board's timer, exact and repeatable. `empty` is the same program with the kernel call
replaced by a call of an empty function with the same arguments: it is subtracted
before dividing by the MACs. `code B` is the .text the linker keeps from the kernel objects
(labkit_nn*.c) for that model, read from the map: the kernel and the helpers it calls.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import labkit  # noqa: F401  (tf_keras before TensorFlow)
from labkit import verify as V
from labkit.compress.quantize import to_int8_tflite
from labkit.deploy.codegen import generate_c
from labkit.deploy.tflite_reader import read_tflite
from labkit.keras import keras

L = keras.layers
# Arm CMSIS-NN, DSP path at -O2, measured with the same method (issue 15)
CMSIS_NN = {"fc": 2.11, "conv3x3": 2.33, "conv1x1": 2.70, "dw3x3": 8.07}
TARGETS = {"fc": 2.0, "conv3x3": 2.2, "conv1x1": 2.5, "dw3x3": 7.5}


def _models():
    """(key, description, Keras model, calibration data)."""
    rng = np.random.default_rng(15)
    out = []

    def add(key, text, shape, layer):
        keras.utils.set_random_seed(15)
        inp = keras.Input(shape, batch_size=1)
        model = keras.Model(inp, layer(inp))
        for lay in model.layers:
            ws = lay.get_weights()
            if ws:  # random weights with a spread per output channel (per-channel scales differ) and non-zero biases
                w = ws[0]
                spread = rng.uniform(0.2, 1.0, size=w.shape[-1]) if w.ndim > 1 else 1.0
                ws[0] = (rng.normal(size=w.shape) * spread * 0.2).astype("float32")
                if len(ws) > 1:
                    ws[1] = rng.normal(0.1, 0.3, size=ws[1].shape).astype("float32")
                lay.set_weights(ws)
        x = (rng.normal(size=(64, *shape)) * 1.3 + 0.3).astype("float32")
        out.append((key, text, model, x))

    add("fc", "FULLY_CONNECTED 256->64, per-channel", (256,), L.Dense(64))
    add("conv3x3", "CONV_2D 3x3, 16->16, 16x16, SAME, ReLU", (16, 16, 16),
        L.Conv2D(16, 3, padding="same", activation="relu"))
    add("conv1x1", "CONV_2D 1x1, 32->32, 16x16, ReLU", (16, 16, 32), L.Conv2D(32, 1, activation="relu"))
    add("dw3x3", "DEPTHWISE_CONV_2D 3x3 x32, 16x16, SAME, ReLU", (16, 16, 32),
        L.DepthwiseConv2D(3, padding="same", activation="relu"))
    return out


def kernel_code_bytes(link_map: Path) -> int:
    """Bytes of .text kept from the labkit_nn*.o objects, from the linker's map."""
    from labkit.verify import map_sections

    return sum(size for name, _, size, obj in map_sections(link_map)
               if name.startswith(".text") and re.search(r"labkit_nn\w*\.m4\.o$", obj))


def _empty_instructions(cm, work: Path) -> int:
    """Instructions of the same program with the kernel call taken out of the model's run function."""
    folder = work / "empty"
    shutil.copytree(cm.out_dir, folder)
    src = folder / f"{cm.name}.c"
    text, n = re.subn(r"^(\s*)lk_\w+\((&op\d+_\w+_params)", r"\1lk_bench_empty(\2", src.read_text(), flags=re.M)
    assert n == 1, n
    empty = ("static void __attribute__((noinline)) lk_bench_empty(const void *p, const void *in, const void *w,\n"
             "                                                    const void *b, void *out, ...) {\n"
             "    __asm volatile(\"\" : : \"r\"(p), \"r\"(in), \"r\"(w), \"r\"(b), \"r\"(out) : \"memory\");\n}\n")
    text = text.replace("\nint model_run(void) {", "\n" + empty + "\nint model_run(void) {", 1)
    src.write_text(text)
    cme = cm.placed_in(folder)
    elf, _ = V.build_cortex_m4(cme, "tflm", work / "empty-build")
    _, counts = V.run_cortex_m4(elf, V.random_inputs(cme, 2), cme.output.size, work / "empty-run")
    return counts["instructions"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--opt", default="O2", choices=["O2", "Os", "O3"], help="optimisation level (default O2)")
    ap.add_argument("--no-dsp", action="store_true", help="build the plain C kernels (-DLABKIT_NN_NO_DSP)")
    ap.add_argument("--asm", action="store_true", help="the DSP paths' inline-assembly form (-DLK_DSP_ASM), as GCC < 10 builds them")
    ap.add_argument("--samples", type=int, default=3, help="random inputs per model and reference (default 3)")
    ap.add_argument("--only", nargs="*", default=None, help="keys: fc conv3x3 conv1x1 dw3x3")
    args = ap.parse_args(argv)
    V.M4_CFLAGS[:] = [f"-{args.opt}" if f == "-O2" else f for f in V.M4_CFLAGS]
    if args.no_dsp:
        V.M4_CFLAGS.append("-DLABKIT_NN_NO_DSP")
    if args.asm:
        V.M4_CFLAGS.append("-DLK_DSP_ASM")
    t0 = time.perf_counter()
    rows = []
    all_ok = True
    for key, text, model, x in _models():
        if args.only and key not in args.only:
            continue
        tfl = to_int8_tflite(model, x, seed=0)
        g = read_tflite(tfl)
        kinds = [op.kind for op in g.ops]
        assert len(kinds) == 1, kinds
        w = g.tensors[g.ops[0].inputs[1]]
        assert len(w.scale) > 1, f"{key}: the converter made per-tensor weights"
        with tempfile.TemporaryDirectory(prefix="labkit-kernels-") as tmp:
            work = Path(tmp)
            cm = generate_c(tfl, work / "model", name="model")
            report = V.verify(tfl, samples=args.samples, target="cortex-m4", workdir=work / "v", cmodel=cm, seed=1)
            code = kernel_code_bytes(work / "v" / "build-m4" / "model_tflm.map")
            empty = _empty_instructions(cm, work)
        ins = report.metrics["instructions"]
        per_mac = (ins - empty) / cm.macs
        exact = {r: report.check(r).bit_exact for r in ("tflm", "litert")}
        ok = all(exact.values())
        all_ok &= ok
        met = per_mac <= TARGETS[key]
        rows.append([text, f"{cm.macs:,}", f"{ins:,}", f"{empty:,}", f"{per_mac:.2f}", f"{CMSIS_NN[key]:.2f}",
                     f"{per_mac / CMSIS_NN[key]:.2f}", f"{TARGETS[key]:.1f} {'met' if met and ok else 'not met'}",
                     str(exact["tflm"]).lower(), str(exact["litert"]).lower(), f"{code:,}"])
        print(f"measured {key}", file=sys.stderr)
    cnn_ops, cnn_code = cnn_kernel_code()
    head = ["shape", "MACs", "instructions", "empty", "instr/MAC", "CMSIS-NN", "ratio", "target",
            "tflm bit_exact", "litert bit_exact", "code B"]
    flags = " ".join(f for f in V.M4_CFLAGS if f.startswith(("-O", "-D")))
    print(f"labkit-nn kernels on the emulated Cortex-M4 ({flags}; CMSIS-NN: its DSP path at -O2)")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print(f"kernel code one CNN links (README's CNN 32x32x3: {', '.join(cnn_ops)}): {cnn_code:,} B")
    print(f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    return 0 if all_ok else 1


def cnn_kernel_code() -> tuple[list[str], int]:
    """Kernel code bytes the README's CNN (benchmarks/verify_models.py) links, as built here."""
    from labkit import models, train

    train.set_seed(0)
    x = np.random.default_rng(0).normal(size=(16, 32, 32, 3)).astype("float32")
    tfl = to_int8_tflite(models.cnn((32, 32, 3), 10, dense=32), x, seed=0)
    with tempfile.TemporaryDirectory(prefix="labkit-kernels-") as tmp:
        cm = generate_c(tfl, Path(tmp) / "model", name="model")
        V.build_cortex_m4(cm, "tflm", Path(tmp) / "b")
        return sorted(set(cm.ops)), kernel_code_bytes(Path(tmp) / "b" / "model_tflm.map")


if __name__ == "__main__":
    sys.exit(main())
