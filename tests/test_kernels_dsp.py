"""The Cortex-M4 DSP paths of the kernels (labkit/runtime/labkit_nn_dsp.h and the LK_DSP branches):
bit-exact with both references on the emulated board, on shapes that take every branch of them.

The host build compiles the plain C kernels; only the Cortex-M4 build takes the SIMD paths, so
these run in QEMU. Seeded: every run draws the same weights and data."""

import subprocess

import numpy as np
import pytest

from labkit.compress.quantize import to_int8_tflite
from labkit.deploy.codegen import runtime_dir
from labkit.deploy.tflite_reader import read_tflite
from labkit.keras import keras
from labkit.verify import M4_CFLAGS, require_tool, verify

L = keras.layers


def _randomize(model, rng):
    for layer in model.layers:
        ws = layer.get_weights()
        if ws:  # per-channel spreads (so per-channel scales differ) and non-zero biases
            out = [(rng.normal(size=w.shape) * rng.uniform(0.1, 1.0, size=w.shape[-1])).astype("float32")
                   for w in ws[:1]]
            out += [rng.normal(0.2, 0.5, size=w.shape).astype("float32") for w in ws[1:]]
            layer.set_weights(out)


def _m4_bit_exact(model, shape, seed, tmp_path, kinds):
    rng = np.random.default_rng(seed)
    _randomize(model, rng)
    x = (rng.normal(size=(48, *shape)) * rng.uniform(0.5, 3.0) + rng.uniform(-1, 1)).astype("float32")
    tfl = to_int8_tflite(model, x, seed=0)
    ops = [op.kind for op in read_tflite(tfl).ops]
    assert set(kinds) <= set(ops), ops
    report = verify(tfl, samples=6, target="cortex-m4", workdir=tmp_path, seed=seed)
    for ref in ("tflm", "litert"):
        assert report.check(ref).mismatched_bytes == 0, (ref, ops)
    return report


def test_the_cortex_m4_build_takes_the_dsp_paths(tmp_path):
    """__ARM_FEATURE_DSP is set for -mcpu=cortex-m4, so LK_DSP is 1 there, and 0 on the host."""
    src = tmp_path / "probe.c"
    src.write_text('#include "labkit_nn_dsp.h"\n#if LK_DSP != EXPECT\n#error LK_DSP\n#endif\nint probe;\n')
    inc = f"-I{runtime_dir()}"
    subprocess.run([require_tool("arm-none-eabi-gcc"), *M4_CFLAGS, "-DEXPECT=1", inc, "-c", str(src),
                    "-o", str(tmp_path / "m4.o")], check=True)
    subprocess.run([require_tool("gcc"), "-std=c99", "-DEXPECT=0", inc, "-c", str(src), "-o", str(tmp_path / "h.o")],
                   check=True)


def test_one_product_requantization_equals_the_two_roundings(tmp_path):
    """lk_requantize and lk_requantize_e2 (one 64-bit product, used by the DSP paths) against the reference helper."""
    (tmp_path / "labkit_nn_config.h").write_text("")
    src = tmp_path / "rq.c"
    src.write_text(r"""
#include <stdio.h>
#include "labkit_nn.h"
#include "labkit_nn_dsp.h"
static unsigned long long s = 88172645463325252ull;
static unsigned long long rnd(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s; }
int main(void) {
    long bad = 0;
    for (long i = 0; i < 3000000; ++i) {
        int32_t m = (int32_t)((rnd() & 0x3FFFFFFF) | 0x40000000);
        if (i % 8 == 0) m = 0x40000000 + (int32_t)(rnd() % 256);
        if (i % 97 == 0) m = 0x7FFFFFFF - (int32_t)(rnd() % 256);
        int shift = (int)(rnd() % 40) - 31;
        if (shift > 8) shift = -(int)(rnd() % 12);
        int32_t x;
        switch (rnd() % 4) {
            case 0: x = (int32_t)rnd(); break;
            case 1: x = (int32_t)(rnd() % 200001) - 100000; break;
            case 2: x = (int32_t)(rnd() % 2001) - 1000; break;
            default: x = (int32_t)rnd() >> (rnd() % 31);
        }
        if (shift > 0) x >>= shift;
        int32_t want = lk_multiply_by_quantized_multiplier(x, m, shift);
        if (lk_requantize(x, m, shift) != want) {
            if (bad++ < 5) printf("x=%ld m=%ld shift=%d\n", (long)x, (long)m, shift);
        }
        if (shift <= -2 && lk_requantize_e2(x, m, (int32_t)(1u << (-shift - 2)), -shift - 1) != want) {
            if (bad++ < 5) printf("e2: x=%ld m=%ld shift=%d\n", (long)x, (long)m, shift);
        }
    }
    printf("bad=%ld\n", bad);
    return bad != 0;
}
""")
    exe = tmp_path / "rq"
    subprocess.run([require_tool("gcc"), "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{tmp_path}",
                    f"-I{runtime_dir()}", str(src), "-o", str(exe)], check=True)
    p = subprocess.run([str(exe)], capture_output=True, text=True)
    assert p.returncode == 0 and "bad=0" in p.stdout, p.stdout


@pytest.mark.parametrize("seed", [0, 1])
def test_conv_and_fully_connected_dsp_paths(seed, tmp_path):
    """CONV_2D: odd channel counts, stride 2, dilation, padding on every side (an even kernel under SAME
    pads one more row and column at the end), 1x1 with stride, groups; FULLY_CONNECTED with an input
    length that is not a multiple of 4 and a row count not a multiple of 3."""
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(50 + seed)
    h, w = int(rng.integers(9, 13)), int(rng.integers(7, 11))
    c_in = [3, 5][seed]
    inp = keras.Input((h, w, c_in))
    x = L.Conv2D(7, 3, strides=2, padding="same", activation="relu")(inp)  # odd channels, stride 2
    x = L.Conv2D(5, 3, dilation_rate=2, padding="same")(x)  # dilation, padding on both sides
    x = L.Conv2D(6, 4, padding="same", activation="relu6")(x)  # even kernel: 1 before, 2 after
    x = L.Conv2D(9, 1, strides=2)(x)  # 1x1, stride 2, odd output channels
    x = L.Conv2D(6, 3, groups=3, padding="valid")(L.ZeroPadding2D(1)(x))  # grouped
    x = L.Conv2D(8, 1, activation="relu")(x)  # 1x1, stride 1
    x = L.Flatten()(x)
    out = L.Dense(7)(L.Dense(int(rng.integers(9, 30)), activation="relu")(x))
    _m4_bit_exact(keras.Model(inp, out), (h, w, c_in), seed, tmp_path, ["CONV_2D", "FULLY_CONNECTED"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conv_im2col_random_configs(seed, tmp_path):
    """CONV_2D's im2col path on random configurations: kernel 1..5 by 1..5, stride 1 or 2, dilation,
    SAME (padding on every side) or VALID, groups, channel counts that are and are not multiples of 4
    (whole-word and value-by-value im2col, K with a partial group of 4), odd and even output channel
    counts and pixel counts (a pixel or a channel left without a partner)."""
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(90 + seed)
    h, w = int(rng.integers(5, 12)), int(rng.integers(5, 12))
    c = int(rng.choice([1, 3, 4, 8, 5]))
    inp = keras.Input((h, w, c))
    x = inp
    for _ in range(3):
        groups = int(rng.choice([1, 1, 2])) if c % 2 == 0 else 1
        out = int(rng.integers(1, 5)) * groups if groups > 1 else int(rng.integers(1, 14))
        k_h, k_w = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        dilation = int(rng.choice([1, 1, 2]))
        stride = 1 if dilation > 1 else int(rng.choice([1, 2]))
        x = L.Conv2D(out, (k_h, k_w), strides=stride, dilation_rate=dilation, groups=groups, padding="same",
                     activation=str(rng.choice(["relu", "linear", "relu6"])))(x)
        c = out
    x = L.Conv2D(int(rng.integers(3, 9)), 2, padding="valid")(x)
    out = L.Dense(4)(L.Flatten()(x))
    _m4_bit_exact(keras.Model(inp, out), (h, w, inp.shape[-1]), seed, tmp_path, ["CONV_2D"])


@pytest.mark.parametrize("seed", [0, 1])
def test_depthwise_dsp_paths(seed, tmp_path):
    """DEPTHWISE_CONV_2D: channels in 4s and a remainder, stride 2, dilation, 5x5, an even kernel,
    depth multiplier 2 and 3 (the per-channel path)."""
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(70 + seed)
    h, w, c = int(rng.integers(8, 12)), int(rng.integers(7, 11)), [6, 9][seed]
    inp = keras.Input((h, w, c))
    x = L.DepthwiseConv2D(3, padding="same", activation="relu")(inp)  # 4 + 2 (or 4 + 4 + 1) channels
    x = L.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2)(x)
    x = L.DepthwiseConv2D(3, dilation_rate=2, padding="same", activation="relu6")(x)
    x = L.DepthwiseConv2D(4, padding="same")(x)  # padding on every side, unequal
    x = L.DepthwiseConv2D(5, padding="same", depth_multiplier=3)(x)
    x = L.DepthwiseConv2D(3, padding="valid")(x)
    out = L.Dense(5)(L.GlobalAveragePooling2D()(x))
    _m4_bit_exact(keras.Model(inp, out), (h, w, c), seed, tmp_path, ["DEPTHWISE_CONV_2D"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_depthwise_random_configs(seed, tmp_path):
    """DEPTHWISE_CONV_2D's DSP path (tap offsets and unpacked weights in the scratch; inside and border
    pixels) on random configurations: kernel 1..5 by 1..5, stride 1 or 2, dilation, SAME or VALID,
    4 to 13 channels (groups of 4 and a remainder), a depth multiplier of 1 mostly, 2 at times."""
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(110 + seed)
    h, w, c = int(rng.integers(6, 13)), int(rng.integers(6, 13)), int(rng.integers(4, 14))
    inp = keras.Input((h, w, c))
    x = inp
    for _ in range(3):
        k_h, k_w = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        dilation = int(rng.choice([1, 1, 2]))
        stride = 1 if dilation > 1 else int(rng.choice([1, 2]))
        padding = str(rng.choice(["same", "same", "valid"])) if min(x.shape[1:3]) > (max(k_h, k_w) - 1) * dilation else "same"
        x = L.DepthwiseConv2D((k_h, k_w), strides=stride, dilation_rate=dilation, padding=padding,
                              depth_multiplier=int(rng.choice([1, 1, 1, 2])) if x.shape[-1] < 12 else 1,
                              activation=str(rng.choice(["relu", "linear", "relu6"])))(x)
    out = L.Dense(4)(L.GlobalAveragePooling2D()(x))
    _m4_bit_exact(keras.Model(inp, out), (h, w, c), seed, tmp_path, ["DEPTHWISE_CONV_2D"])


def test_flash_counts_only_what_the_board_stores(tmp_path):
    """.ARM.attributes and .comment (address 0, never loaded) are not flash; .text, .rodata, .data are."""
    from labkit.verify import linked_sizes

    o = "/b/model_tflm.m4.o"
    (tmp_path / "m.map").write_text(
        "Discarded input sections\n .text.unused  0x00000000  0x40 " + o + "\n"
        "Linker script and memory map\n"
        f" .text.lk_fully_connected_s8\n                0x00000100      0x2a0 {o}\n"
        f" .rodata        0x00000400       0x40 {o}\n"
        f" .data          0x20000000        0x8 {o}\n"
        f" .bss           0x20000008       0x10 {o}\n"
        f" .comment       0x00000000       0x27 {o}\n"
        f" .ARM.attributes\n                0x00000000       0x34 {o}\n")
    assert linked_sizes(tmp_path / "m.map", ["model_tflm.m4.o"]) == {"flash_bytes": 0x2a0 + 0x40 + 8,
                                                                     "ram_bytes": 0x18}
