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


_KERNELS_AGAINST_PLAIN_C = r"""
/* The DSP paths of lk_conv_s8, lk_depthwise_conv_s8 and lk_mean_s8 against the plain C kernels (compiled
 * from the same file with LABKIT_NN_NO_DSP, renamed ref_*), on seeded random parameters that no converted
 * model reaches easily: any input and output offset, activation ranges narrower than int8, shifts outside
 * -23 .. -2 (the generic requantization), multipliers of 1/2 and more. */
#include <stdio.h>
#include <string.h>
#include "labkit_nn_conv.h"
void ref_conv_s8(const lk_conv_params *, const int8_t *, const int8_t *, const int32_t *, int8_t *, int16_t *);
void ref_depthwise_conv_s8(const lk_depthwise_conv_params *, const int8_t *, const int8_t *, const int32_t *, int8_t *,
                           int16_t *);
void ref_mean_s8(const lk_mean_params *, const int8_t *, int8_t *);
static uint32_t s = 2463534242u;
static uint32_t rnd(void) { s ^= s << 13; s ^= s >> 17; s ^= s << 5; return s; }
static int32_t pick(int32_t lo, int32_t hi) { return lo + (int32_t)(rnd() % (uint32_t)(hi - lo + 1)); }
static int8_t input[4096], filter[4096 + 3], out_a[4096], out_b[4096], shift[64];
static int32_t bias[64], multiplier[64];
static int64_t scratch[1024];
/* out = (in + pad_before + pad_after - dilated kernel) / stride + 1, with random padding under the kernel */
static int32_t out_size(int32_t in, int32_t k, int32_t d, int32_t st, int32_t *pad) {
    const int32_t span = (k - 1) * d + 1, before = pick(0, span - 1), after = pick(0, span - 1);
    *pad = before;
    return in + before + after < span ? 0 : (in + before + after - span) / st + 1;
}
static void requantization(int32_t n, int32_t *in_off, int32_t *out_off, int32_t *lo, int32_t *hi) {
    for (int32_t o = 0; o < n; ++o) {
        multiplier[o] = (int32_t)(0x40000000u | (rnd() & 0x3FFFFFFFu));
        shift[o] = (int8_t)(rnd() % 4 ? pick(-14, -2) : pick(-30, 1)); /* now and then outside -23 .. -2 */
        bias[o] = pick(-20000, 20000);
    }
    *in_off = pick(-127, 128), *out_off = pick(-128, 127);
    *lo = -128, *hi = 127;
    if (rnd() % 2) *lo = pick(-128, 0), *hi = pick(*lo, 127);
}
/* Random input and filter values. */
static void randomize(void) {
    for (size_t i = 0; i < sizeof input; ++i) input[i] = (int8_t)rnd();
    for (size_t i = 0; i < sizeof filter; ++i) filter[i] = (int8_t)rnd();
}
/* p's requantization, 4 times in 5 the DSP paths' usual case: every shift in -23 .. -2, no clamping. */
static void usual_requantization(lk_conv_params *p) {
    requantization(p->out_ch, &p->input_offset, &p->output_offset, &p->act_min, &p->act_max);
    if (rnd() % 5) {
        for (int32_t o = 0; o < p->out_ch; ++o) shift[o] = (int8_t)pick(-23, -2);
        p->act_min = -128, p->act_max = 127;
    }
    p->multiplier = multiplier, p->shift = shift;
}
/* 1 if the plain C and the DSP CONV_2D kernels give different bytes for p (with or without a bias). */
static int conv_differs(const lk_conv_params *p) {
    const int32_t n = p->batches * p->out_h * p->out_w * p->out_ch;
    const int32_t *b = rnd() % 4 ? bias : NULL;
    ref_conv_s8(p, input, filter, b, out_a, NULL);
    lk_conv_s8(p, input, filter, b, out_b, (int16_t *)scratch);
    return memcmp(out_a, out_b, (size_t)n) != 0;
}
int main(void) {
    int bad = 0, convs = 0, dws = 0, means = 0, pointwise = 0, small = 0;
    for (int t = 0; t < TRIALS; ++t) {
        randomize();
        lk_conv_params p;
        memset(&p, 0, sizeof p);
        const int32_t groups = pick(1, 3);
        p.batches = pick(1, 2), p.in_h = pick(1, 9), p.in_w = pick(1, 9);
        p.filter_in_ch = rnd() % 3 ? pick(1, 6) : 4 * pick(1, 4), p.in_ch = groups * p.filter_in_ch;
        p.out_ch = groups * pick(1, 7), p.k_h = pick(1, 4), p.k_w = pick(1, 4);
        p.stride_h = pick(1, 2), p.stride_w = pick(1, 2), p.dilation_h = pick(1, 2), p.dilation_w = pick(1, 2);
        if (rnd() % 3 == 0) p.k_h = p.k_w = 1; /* pointwise, often */
        p.out_h = out_size(p.in_h, p.k_h, p.dilation_h, p.stride_h, &p.pad_top);
        p.out_w = out_size(p.in_w, p.k_w, p.dilation_w, p.stride_w, &p.pad_left);
        if (rnd() % 2 && p.k_h == 1 && p.k_w == 1) p.pad_top = p.pad_left = 0, p.out_h = (p.in_h - 1) / p.stride_h + 1,
                                                   p.out_w = (p.in_w - 1) / p.stride_w + 1;
        requantization(p.out_ch, &p.input_offset, &p.output_offset, &p.act_min, &p.act_max);
        p.multiplier = multiplier, p.shift = shift;
        const int32_t n = p.batches * p.out_h * p.out_w * p.out_ch;
        if (n > 0 && p.batches * p.in_h * p.in_w * p.in_ch <= 4096 && n <= 4096 &&
            LK_CONV_SCRATCH_BYTES(p.k_h, p.k_w, p.filter_in_ch, p.out_ch) <= (int)sizeof scratch) {
            const int32_t *b = rnd() % 4 ? bias : NULL;
            ref_conv_s8(&p, input, filter, b, out_a, NULL);
            lk_conv_s8(&p, input, filter, b, out_b, (int16_t *)scratch);
            ++convs;
            if (memcmp(out_a, out_b, (size_t)n) && bad++ < 5)
                printf("conv %d: %ldx%ldx%ld k %ldx%ld g %ld -> %ld\n", t, (long)p.in_h, (long)p.in_w, (long)p.in_ch,
                       (long)p.k_h, (long)p.k_w, (long)groups, (long)p.out_ch);
        }
        lk_depthwise_conv_params q;
        memset(&q, 0, sizeof q);
        q.batches = pick(1, 2), q.in_h = pick(1, 9), q.in_w = pick(1, 9), q.in_ch = pick(1, 13);
        q.depth_multiplier = rnd() % 3 ? 1 : pick(2, 3), q.out_ch = q.in_ch * q.depth_multiplier;
        q.k_h = pick(1, 5), q.k_w = pick(1, 5), q.stride_h = pick(1, 2), q.stride_w = pick(1, 2);
        if (rnd() % 4 == 0) q.k_h = q.k_w = 3; /* the unrolled 3x3 path, often */
        q.dilation_h = pick(1, 2), q.dilation_w = pick(1, 2);
        q.out_h = out_size(q.in_h, q.k_h, q.dilation_h, q.stride_h, &q.pad_top);
        q.out_w = out_size(q.in_w, q.k_w, q.dilation_w, q.stride_w, &q.pad_left);
        requantization(q.out_ch, &q.input_offset, &q.output_offset, &q.act_min, &q.act_max);
        q.multiplier = multiplier, q.shift = shift;
        const int32_t m = q.batches * q.out_h * q.out_w * q.out_ch;
        if (m > 0 && q.batches * q.in_h * q.in_w * q.in_ch <= 4096 && m <= 4096 &&
            LK_DEPTHWISE_SCRATCH_BYTES(q.k_h, q.k_w, q.out_ch, q.depth_multiplier) <= (int)sizeof scratch) {
            const int32_t *b = rnd() % 4 ? bias : NULL;
            ref_depthwise_conv_s8(&q, input, filter, b, out_a, NULL);
            lk_depthwise_conv_s8(&q, input, filter, b, out_b, (int16_t *)scratch);
            ++dws;
            if (memcmp(out_a, out_b, (size_t)m) && bad++ < 5)
                printf("depthwise %d: %ldx%ldx%ld k %ldx%ld x%ld\n", t, (long)q.in_h, (long)q.in_w, (long)q.in_ch,
                       (long)q.k_h, (long)q.k_w, (long)q.depth_multiplier);
        }
        /* MEAN: channels in 4s (the DSP path) mostly; now and then over more than 256 values (the int16
         * sums' blocks) or over inputs all -128 or all 127 (the int16 sums' extremes) */
        lk_mean_params r;
        r.outer = pick(1, 3), r.reduce = pick(1, 40), r.inner = rnd() % 4 ? 4 * pick(1, 8) : pick(1, 9);
        if (rnd() % 4 == 0) r.outer = 1, r.reduce = pick(250, 520), r.inner = 4 * pick(1, 2);
        if (rnd() % 4 == 0) memset(input, rnd() % 2 ? -128 : 127, sizeof input);
        r.input_zero_point = pick(-128, 127), r.output_zero_point = pick(-128, 127);
        r.multiplier = (int32_t)(0x40000000u | (rnd() & 0x3FFFFFFFu)), r.shift = rnd() % 4 ? pick(-14, -1) : pick(-30, 2);
        const int32_t k = r.outer * r.inner;
        if (r.outer * r.reduce * r.inner <= 4096) {
            ref_mean_s8(&r, input, out_a);
            lk_mean_s8(&r, input, out_b);
            ++means;
            if (memcmp(out_a, out_b, (size_t)k) && bad++ < 5)
                printf("mean %d: %ldx%ldx%ld\n", t, (long)r.outer, (long)r.reduce, (long)r.inner);
        }
    }
    /* lk_conv_s8's small pointwise path (1x1, stride 1, 4 or 8 input channels, every shift in -23 .. -2, no
     * clamping), which the draws above seldom reach: mostly that case, now and then one that leaves it */
    for (int t = 0; t < TRIALS / 2; ++t) {
        randomize();
        lk_conv_params p;
        memset(&p, 0, sizeof p);
        p.batches = pick(1, 2), p.in_h = p.out_h = pick(1, 9), p.in_w = p.out_w = pick(1, 9);
        p.in_ch = p.filter_in_ch = 4 * pick(1, 2), p.out_ch = pick(1, 9);
        p.k_h = p.k_w = p.stride_h = p.stride_w = p.dilation_h = p.dilation_w = 1;
        usual_requantization(&p);
        ++pointwise;
        if (conv_differs(&p) && bad++ < 5)
            printf("pointwise %d: %ldx%ldx%ld -> %ld\n", t, (long)p.in_h, (long)p.in_w, (long)p.in_ch, (long)p.out_ch);
    }
    /* lk_conv_s8's small-filter path (out_ch * K4 <= 256, out_ch a multiple of 4, one group, every shift in
     * -23 .. -2, no clamping): stems over 1 to 6 channels, small 1-D and 2-D filters, stride, dilation and
     * padding as above; now and then one that leaves it */
    for (int t = 0; t < TRIALS / 2; ++t) {
        randomize();
        lk_conv_params p;
        memset(&p, 0, sizeof p);
        p.batches = pick(1, 2), p.in_h = pick(1, 9), p.in_w = pick(1, 9);
        p.in_ch = p.filter_in_ch = pick(1, 6), p.out_ch = 4 * pick(1, 2);
        p.k_h = pick(1, 3), p.k_w = pick(1, 3);
        if (rnd() % 4 == 0) p.k_h = 1, p.k_w = pick(3, 7); /* a 1-D filter */
        p.stride_h = pick(1, 2), p.stride_w = pick(1, 2), p.dilation_h = pick(1, 2), p.dilation_w = rnd() % 5 ? 1 : 2;
        p.out_h = out_size(p.in_h, p.k_h, p.dilation_h, p.stride_h, &p.pad_top);
        p.out_w = out_size(p.in_w, p.k_w, p.dilation_w, p.stride_w, &p.pad_left);
        usual_requantization(&p);
        const int32_t k4 = LK_CONV_K4(p.k_h, p.k_w, p.filter_in_ch);
        if (p.out_h > 0 && p.out_w > 0 && p.out_ch * k4 <= 256) {
            small += LK_CONV_SMALL_FILTER(k4, p.out_ch, p.k_w * p.in_ch, p.dilation_w, 1);
            if (conv_differs(&p) && bad++ < 5)
                printf("small %d: %ldx%ldx%ld k %ldx%ld -> %ld\n", t, (long)p.in_h, (long)p.in_w, (long)p.in_ch,
                       (long)p.k_h, (long)p.k_w, (long)p.out_ch);
        }
    }
    printf("convs=%d depthwise=%d means=%d pointwise=%d small=%d bad=%d\n", convs, dws, means, pointwise, small, bad);
    return 0;
}
"""


def test_dsp_kernels_against_the_plain_c_kernels_on_random_parameters(tmp_path):
    """lk_conv_s8's and lk_depthwise_conv_s8's DSP paths equal the plain C kernels (themselves bit-exact with
    both references, tests/test_ops_conv.py) byte for byte on the emulated Cortex-M4, over 600 seeded random
    configurations each: 1 to 6 input channels per group (3: a K that is no multiple of 4, the padded last
    weight word) and multiples of 4 (the pointwise path), odd channel counts, groups, kernels 1..5, stride 2,
    dilation, random padding on every side, batches of 2, pixel counts that leave 1 to 3 pixels of the last
    block of four, depth multipliers 2 and 3; and parameters a converted model seldom has: activation
    ranges narrower than int8, shifts outside -23 .. -2, bias-less layers; lk_mean_s8's on 600 random shapes
    (channels in 4s or not, reductions over more than 256 values, inputs all -128 or all 127). Then 300 pointwise
    convolutions of 4 or 8 input channels with stride 1, most on lk_conv_s8's small pointwise path (16 pixels a
    pass: odd pixel counts and chunks of fewer than 16), some just off it; and up to 300 convolutions with a small
    filter (out_ch * K4 <= 256: stems over 1 to 6 channels, 1-D filters), most on its small-filter path."""
    from labkit import verify as V

    cc = require_tool("arm-none-eabi-gcc")
    (tmp_path / "labkit_nn_config.h").write_text("")
    src = tmp_path / "against_plain_c.c"
    src.write_text(_KERNELS_AGAINST_PLAIN_C)
    conv = runtime_dir() / "labkit_nn_conv.c"
    flags = [*M4_CFLAGS, f"-I{tmp_path}", f"-I{runtime_dir()}", "-DTRIALS=600"]
    renames = [f"-D{k}=ref_{k[3:]}" for k in ("lk_conv_s8", "lk_depthwise_conv_s8", "lk_max_pool_s8",
                                              "lk_average_pool_s8", "lk_mean_s8")]
    subprocess.run([cc, *flags, "-DLABKIT_NN_NO_DSP", *renames, "-c", str(conv), "-o", str(tmp_path / "ref.o")],
                   check=True)
    subprocess.run([cc, *flags, "-c", str(conv), "-o", str(tmp_path / "dsp.o")], check=True)
    elf = tmp_path / "against_plain_c.elf"
    subprocess.run([cc, *flags, "--specs=rdimon.specs", "-T", str(runtime_dir() / "cortex_m4" / "nrf52840.ld"),
                    "-Wl,--gc-sections", str(runtime_dir() / "cortex_m4" / "startup.c"), str(src),
                    str(tmp_path / "ref.o"), str(tmp_path / "dsp.o"), "-lm", "-o", str(elf)], check=True)
    out = V._run_qemu(require_tool("qemu-system-arm"), elf, tmp_path, 300, "bad=", "the kernels' comparison")
    counts = dict(kv.split("=") for kv in out.strip().splitlines()[-1].split())
    assert counts["bad"] == "0", out
    assert int(counts["convs"]) > 300 and int(counts["depthwise"]) > 300 and int(counts["means"]) > 300, out
    assert int(counts["pointwise"]) == 300 and int(counts["small"]) > 150, out
