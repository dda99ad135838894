/* labkit-nn runtime, convolution family. See labkit_nn_conv.h for what each kernel computes. */
#include "labkit_nn_conv.h"
#include "labkit_nn_dsp.h"

/* The taps k (0 <= k < k_size) of a window starting at input position `origin`, spaced
 * `dilation` apart, that land inside the image [0, in_size): k runs from *first to *end - 1. */
static void lk_taps_inside(int32_t origin, int32_t in_size, int32_t k_size, int32_t dilation, int32_t *first,
                           int32_t *end) {
    if (origin >= 0 && origin + (k_size - 1) * dilation < in_size) { /* the usual case, without divisions */
        *first = 0, *end = k_size;
        return;
    }
    int32_t k0 = origin >= 0 ? 0 : (-origin + dilation - 1) / dilation;
    int32_t k1 = in_size - origin <= 0 ? 0 : (in_size - origin + dilation - 1) / dilation;
    if (k1 > k_size) k1 = k_size;
    if (k1 < k0) k1 = k0; /* no tap inside */
    *first = k0;
    *end = k1;
}

/* The kernels below work on a local copy of their parameters: as far as the compiler knows,
 * the int8_t stores to `output` could change *params (char-sized types may alias anything),
 * and it would re-read every field after each store. */

/* ---- CONV_2D ---------------------------------------------------------------- */

#if !LK_DSP /* the plain C kernel: the reference, and the host build; the DSP path is below */

void lk_conv_s8(const lk_conv_params *params, const int8_t *input, const int8_t *filter, const int32_t *bias,
                int8_t *output, int16_t *scratch) {
    (void)scratch; /* the DSP path's */
    const lk_conv_params copy = *params, *p = &copy;
    const int32_t out_ch_per_group = p->out_ch / (p->in_ch / p->filter_in_ch);
    const int32_t filter_size = p->k_h * p->k_w * p->filter_in_ch; /* one output channel's filter */
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->in_h * p->in_w * p->in_ch;
        for (int32_t y = 0; y < p->out_h; ++y) {
            const int32_t in_y0 = y * p->stride_h - p->pad_top;
            int32_t ky0, ky1;
            lk_taps_inside(in_y0, p->in_h, p->k_h, p->dilation_h, &ky0, &ky1);
            for (int32_t x = 0; x < p->out_w; ++x) {
                const int32_t in_x0 = x * p->stride_w - p->pad_left;
                int32_t kx0, kx1;
                lk_taps_inside(in_x0, p->in_w, p->k_w, p->dilation_w, &kx0, &kx1);
                int8_t *out = output + ((b * p->out_h + y) * p->out_w + x) * p->out_ch;
                for (int32_t o = 0; o < p->out_ch; ++o) {
                    const int8_t *in_g = in_b + (o / out_ch_per_group) * p->filter_in_ch; /* o's group */
                    const int8_t *w_o = filter + o * filter_size;
                    int32_t acc = 0;
                    for (int32_t ky = ky0; ky < ky1; ++ky) {
                        const int32_t in_y = in_y0 + ky * p->dilation_h;
                        for (int32_t kx = kx0; kx < kx1; ++kx) {
                            const int32_t in_x = in_x0 + kx * p->dilation_w;
                            const int8_t *in = in_g + (in_y * p->in_w + in_x) * p->in_ch;
                            const int8_t *w = w_o + (ky * p->k_w + kx) * p->filter_in_ch;
                            for (int32_t i = 0; i < p->filter_in_ch; ++i) {
                                acc += ((int32_t)in[i] + p->input_offset) * (int32_t)w[i];
                            }
                        }
                    }
                    if (bias) acc += bias[o];
                    acc = lk_multiply_by_quantized_multiplier(acc, p->multiplier[o], p->shift[o]);
                    out[o] = (int8_t)lk_clamp(acc + p->output_offset, p->act_min, p->act_max);
                }
            }
        }
    }
}

#else /* LK_DSP */

/* One output channel's requantization for a shift of -23 .. -2 (lk_requantize_e2), the output
 * zero point folded into the rounding word: adding z * 2^e1 before the shift by e1 adds z after
 * it, exactly, and cannot overflow for e1 <= 22. Computed once per call, into the scratch. */
typedef struct {
    int32_t multiplier, round_hi, e1;
} lk_requant_e2;

static void lk_requant_e2_init(lk_requant_e2 *r, int32_t multiplier, int32_t shift, int32_t z) {
    r->multiplier = multiplier;
    r->e1 = -shift - 1;
    r->round_hi = (int32_t)(1u << ((r->e1 - 1) & 31)) + (int32_t)((uint32_t)z << (r->e1 & 31));
}

/* Requantized accumulator `acc` with r's constants, saturated to int8 (SSAT). */
#define LK_REQUANT_E2(acc, m, round_hi, e1) lk_ssat8(lk_requantize_e2((acc), (m), (round_hi), (e1)))

/* DSP path: im2col, four output pixels at a time. Each pixel's window (its taps, one group's
 * input channels: K = k_h * k_w * fic values) is gathered as bytes, the taps outside the image as
 * the input zero point, padded with it to K4 (K rounded up to a multiple of 4), then unpacked into
 * the scratch as int16 with the input offset added (SXTAB16): border taps and padding become 0,
 * and every pixel has the same K4 values, border or not. (A window inside the image whose filter
 * rows are runs of a multiple of 4 bytes is unpacked straight from the input, a pointwise one too:
 * no gathering.) The dot products then take the four
 * pixels by one output channel: per step of 4 values one weight word, unpacked once for the four
 * pixels, and 8 SMLADs; each channel's requantization constants, computed once per call, serve
 * its four outputs. The last step reads the weight word past K: the generator pads the filter array so
 * that the read stays inside it, and it multiplies the window's zeros.
 *
 * Scratch layout (int16, SXTB16's order: a weight word w0 w1 w2 w3 unpacks into (w0, w2) and
 * (w1, w3)): each group of 4 values x0..x3 of a pixel is the two words (x0, x2), (x1, x3); the
 * four pixels' words alternate group by group (32 bytes a group); after them, K4 bytes where a
 * window is gathered; then each output channel's bias and requantization constants (lk_conv_rq).
 * LK_CONV_SCRATCH_BYTES: 9 * K4 + 16 * out_ch bytes. */
#define LK_CONV_PIXELS 4

/* Two words from p (8-byte aligned) into lo and hi, p then 8 bytes on: one LDRD with write-back
 * (GCC splits such a load into LDRs and an ADD when registers are short). */
#define LK_LOAD_PAIR(p, lo, hi) \
    __asm("ldrd %0, %1, [%2], #8" : "=r"(lo), "=r"(hi), "+r"(p) : "m"(*(const uint32_t(*)[2])(p)))
/* The same without moving p (4-byte aligned). */
#define LK_LOAD_PAIR_AT(p, lo, hi) \
    __asm("ldrd %0, %1, [%2]" : "=r"(lo), "=r"(hi) : "r"(p), "m"(*(const int32_t(*)[2])(p)))

/* Pixel j's slots of the scratch from the bytes src[0 .. k4): one load, two SXTAB16 per 4 values. */
static void lk_col_pixel(int16_t *col, int32_t j, const int8_t *src, int32_t k4, uint32_t offset2) {
    uint32_t *d = (uint32_t *)(void *)col + 2 * j;
    for (int32_t n = k4 >> 2; n > 0; --n, src += 4, d += 2 * LK_CONV_PIXELS) {
        const uint32_t v = lk_read4(src);
        d[0] = lk_sxtab16(offset2, v);
        d[1] = lk_sxtab16_ror8(offset2, v);
    }
}

/* Pixel j's slots of the scratch straight from a window inside the image whose rows are runs of
 * row_n bytes, a multiple of 4 (no dilation across a row, no groups), `step` bytes apart in the input. */
static void lk_col_rows(int16_t *col, int32_t j, const int8_t *s, int32_t rows, int32_t row_n, int32_t step,
                        uint32_t offset2) {
    uint32_t *d = (uint32_t *)(void *)col + 2 * j;
    for (int32_t r = rows; r > 0; --r, s += step) {
        const int8_t *src = s;
        for (int32_t n = row_n >> 2; n > 0; --n, src += 4, d += 2 * LK_CONV_PIXELS) {
            const uint32_t v = lk_read4(src);
            d[0] = lk_sxtab16(offset2, v);
            d[1] = lk_sxtab16_ror8(offset2, v);
        }
    }
}

/* `rows` runs of n bytes, `step` bytes apart from s, one after the other to d. A run of 4 bytes or
 * more goes a word at a time (the Cortex-M4 loads and stores unaligned words), its last word ending
 * at its last byte and overlapping the one before it (it rewrites the same bytes), so nothing outside
 * the runs is read or written; a shorter run byte by byte. One function for all the gathering's
 * copies, so that its code is paid once. */
__attribute__((noinline)) static void lk_copy_rows(int8_t *d, const int8_t *s, int32_t rows, int32_t n,
                                                   int32_t step) {
    for (; rows > 0; --rows, s += step, d += n) {
        if (n < 4) {
            for (int32_t i = 0; i < n; ++i) d[i] = s[i];
            continue;
        }
        const uint32_t last = lk_read4(s + n - 4);
        for (int32_t i = 0; i < n - 4; i += 4) {
            const uint32_t v = lk_read4(s + i);
            memcpy(d + i, &v, 4);
        }
        memcpy(d + n - 4, &last, 4);
    }
}

/* The window whose first tap is at (in_y0, in_x0) of batch image in_b, group g, as k4 bytes at
 * `bytes`, for a pixel on the border: all zero points first (taps outside the image and the padding
 * up to k4 add nothing), then in each filter row inside the image its taps inside the image, kx0 ..
 * kx1 - 1, fic input channels each (one run without dilation across a row and groups). lk_conv_s8 takes the windows inside the image (the usual pixel)
 * without it. */
__attribute__((noinline)) static void lk_im2col(const lk_conv_params *p, const int8_t *in_b, int32_t in_y0,
                                                int32_t in_x0, int32_t g, int32_t k4, int8_t *bytes) {
    const int32_t fic = p->filter_in_ch, dw = p->dilation_w;
    const uint32_t zero4 = 0x01010101u * (uint8_t)-p->input_offset;
    for (int32_t i = 0; i < k4; i += 4) memcpy(bytes + i, &zero4, 4);
    int32_t kx0 = 0, kx1 = p->k_w;
    while (kx0 < kx1 && in_x0 + kx0 * dw < 0) ++kx0;
    while (kx1 > kx0 && in_x0 + (kx1 - 1) * dw >= p->in_w) --kx1;
    /* without dilation across a row and without groups, those taps are one run of the input */
    const int run = dw == 1 && fic == p->in_ch;
    const int32_t runs = run ? 1 : kx1 - kx0, n = run ? (kx1 - kx0) * fic : fic;
    for (int32_t ky = 0; ky < p->k_h; ++ky) {
        const int32_t in_y = in_y0 + ky * p->dilation_h;
        if ((uint32_t)in_y >= (uint32_t)p->in_h) continue;
        lk_copy_rows(bytes + (ky * p->k_w + kx0) * fic, in_b + (in_y * p->in_w + in_x0 + kx0 * dw) * p->in_ch + g * fic,
                     runs, n, dw * p->in_ch);
    }
}

/* One output channel's bias and requantization constants (lk_requant_e2's, the output zero point
 * folded in), read together once per channel. */
typedef struct {
    int32_t bias, multiplier, round_hi, e1;
} lk_conv_rq;

/* Output channel o of the four pixels from their accumulators, into out[d[j] + o]: any shift (one
 * above -2 is rare: a multiplier of 1/2 or more) and an activation that clamps inside int8. */
__attribute__((noinline)) static void lk_conv_output4_any(const lk_conv_params *p, const int32_t *acc, int32_t o,
                                                          int8_t *out, const int32_t *d) {
    for (int32_t j = 0; j < LK_CONV_PIXELS; ++j) {
        const int32_t v = lk_requantize(acc[j], p->multiplier[o], p->shift[o]) + p->output_offset;
        out[d[j] + o] = (int8_t)lk_clamp(v, p->act_min, p->act_max);
    }
}

/* Output channels o0 .. o1 - 1 (one group's) of the four pixels in the scratch (K4 values each), one
 * channel at a time: the dot products with its weight row (rows K bytes apart, read as K4: the next
 * row starts K4 - K bytes before where a row's reading ends), then requantized into out[d[j] + o]
 * for pixel j: with SSAT alone when `fast` (every shift in -23 .. -2 and the activation's range all
 * of int8: no activation, or a ReLU / ReLU6 whose range is the output's), else lk_conv_output4_any.
 * A function of its own, so that its inner loop has the registers; GCC's scheduling before
 * register allocation is off for it (it spilled the requantization's temporaries: measured). */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-schedule-insns")))
#endif
__attribute__((noinline)) static void lk_conv_channels(const lk_conv_params *p, const int16_t *col,
                                                       const int8_t *filter, int32_t k, int32_t k4, int32_t o0,
                                                       int32_t o1, int8_t *out, const int32_t *d,
                                                       const lk_conv_rq *rq, int fast) {
    int8_t *const out1 = out + d[1], *const out2 = out + d[2], *const out3 = out + d[3];
    const uint64_t *const col8 = (const uint64_t *)__builtin_assume_aligned(col, 8), *const end = col8 + k4;
    const int8_t *w = filter + o0 * k;
    for (int32_t o = o0; o < o1; ++o, w -= k4 - k) {
        const lk_conv_rq *r = rq + o;
        const int32_t bias_o = r->bias;
        /* the first step of 4 values starts from the bias */
        uint32_t wv = lk_read4(w), wa = lk_sxtb16(wv), wb = lk_sxtb16_ror8(wv);
        w += 4;
        uint64_t x0 = col8[0], x1 = col8[1], x2 = col8[2], x3 = col8[3];
        int32_t a0 = lk_smlad((uint32_t)(x0 >> 32), wb, lk_smlad((uint32_t)x0, wa, bias_o));
        int32_t a1 = lk_smlad((uint32_t)(x1 >> 32), wb, lk_smlad((uint32_t)x1, wa, bias_o));
        int32_t a2 = lk_smlad((uint32_t)(x2 >> 32), wb, lk_smlad((uint32_t)x2, wa, bias_o));
        int32_t a3 = lk_smlad((uint32_t)(x3 >> 32), wb, lk_smlad((uint32_t)x3, wa, bias_o));
        for (const uint64_t *c = col8 + LK_CONV_PIXELS; c != end; c += LK_CONV_PIXELS) {
            wv = lk_read4(w), wa = lk_sxtb16(wv), wb = lk_sxtb16_ror8(wv);
            w += 4;
            uint64_t x = c[0];
            a0 = lk_smlad((uint32_t)x, wa, a0);
            a0 = lk_smlad((uint32_t)(x >> 32), wb, a0);
            x = c[1];
            a1 = lk_smlad((uint32_t)x, wa, a1);
            a1 = lk_smlad((uint32_t)(x >> 32), wb, a1);
            x = c[2];
            a2 = lk_smlad((uint32_t)x, wa, a2);
            a2 = lk_smlad((uint32_t)(x >> 32), wb, a2);
            x = c[3];
            a3 = lk_smlad((uint32_t)x, wa, a3);
            a3 = lk_smlad((uint32_t)(x >> 32), wb, a3);
        }
        if (fast) {
            const int32_t m = r->multiplier, rh = r->round_hi, e1 = r->e1;
            out[o] = (int8_t)LK_REQUANT_E2(a0, m, rh, e1);
            out1[o] = (int8_t)LK_REQUANT_E2(a1, m, rh, e1);
            out2[o] = (int8_t)LK_REQUANT_E2(a2, m, rh, e1);
            out3[o] = (int8_t)LK_REQUANT_E2(a3, m, rh, e1);
        } else {
            const int32_t acc[LK_CONV_PIXELS] = {a0, a1, a2, a3};
            lk_conv_output4_any(p, acc, o, out, d);
        }
    }
}

#if LK_CONV_POINTWISE
/* A 1x1 convolution with stride 1 and 4 or 8 input channels (k4), the rare shifts and clamping
 * activations aside: n pixels (consecutive in the input and the output) at a time, unpacked once
 * into the scratch (K4 int16 each, in SXTB16's order), then one output channel at a time with its
 * weights and requantization constants held in registers across the n pixels. With so few products
 * per output, this is what pays: lk_conv_channels would unpack a channel's weights again for every
 * four pixels and reload its constants. */
#define LK_CONV_PW_PIXELS 16

#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-schedule-insns")))
#endif
__attribute__((noinline)) static void lk_conv_pw_small(const int16_t *col, int32_t n, const int8_t *filter,
                                                       int32_t k4, int32_t out_ch, int8_t *out,
                                                       const lk_conv_rq *rq) {
    for (int32_t o = 0; o < out_ch; ++o, filter += k4, ++rq) {
        const int32_t bias = rq->bias, m = rq->multiplier, rh = rq->round_hi, e1 = rq->e1;
        const uint32_t w0 = lk_read4(filter), wa0 = lk_sxtb16(w0), wb0 = lk_sxtb16_ror8(w0);
        const uint32_t *c = (const uint32_t *)__builtin_assume_aligned(col, 8);
        int8_t *d = out + o;
        if (k4 == 8) {
            const uint32_t w1 = lk_read4(filter + 4), wa1 = lk_sxtb16(w1), wb1 = lk_sxtb16_ror8(w1);
            for (int32_t j = n; j > 0; --j, d += out_ch) {
                uint32_t x0, x1, x2, x3;
                LK_LOAD_PAIR(c, x0, x1);
                LK_LOAD_PAIR(c, x2, x3);
                const int32_t a = lk_smlad(x3, wb1, lk_smlad(x2, wa1, lk_smlad(x1, wb0, lk_smlad(x0, wa0, bias))));
                *d = (int8_t)LK_REQUANT_E2(a, m, rh, e1);
            }
        } else {
            for (int32_t j = n; j > 0; --j, d += out_ch) {
                uint32_t x0, x1;
                LK_LOAD_PAIR(c, x0, x1);
                const int32_t a = lk_smlad(x1, wb0, lk_smlad(x0, wa0, bias));
                *d = (int8_t)LK_REQUANT_E2(a, m, rh, e1);
            }
        }
    }
}
#endif

#if LK_CONV_SMALL
/* A convolution with a small filter (out_ch * K4 <= 256, out_ch a multiple of 4, rows of 4 bytes or more,
 * no dilation across a row, one group: LK_CONV_SMALL_FILTER), the rare shifts and clamping activations aside: a stem over a few input channels, a small
 * 1-D convolution. Its weights are unpacked once per call into the scratch, and each output pixel
 * then takes its output channels 4 at a time: per step of 4 values of the window, the window's two
 * words once and each channel's two weight words, 8 SMLADs. A window inside the image is read a word
 * at a time straight from the input (lk_word_at), one on the border gathered first. Scratch: the
 * weights (int16, channel group by channel group, step by step, channel by channel: 2 words each),
 * one pixel's window unpacked (K4 int16), where its words are (3 int32 per 4 values) and a window
 * gathered (K4 bytes): (2 * out_ch + 6) * K4 bytes (LK_CONV_SCRATCH_BYTES). */
/* Output channels 0 .. out_ch - 1 of one pixel from its unpacked window x (steps words of 2). */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-schedule-insns")))
#endif
__attribute__((noinline)) static void lk_conv_small_pixel(const uint32_t *x, const uint32_t *wq, int32_t steps,
                                                          int32_t out_ch, int8_t *out, const lk_conv_rq *r) {
    for (int32_t o = out_ch; o > 0; o -= 4, r += 4, out += 4) {
        int32_t a0 = r[0].bias, a1 = r[1].bias, a2 = r[2].bias, a3 = r[3].bias;
        const uint32_t *c = x;
        for (int32_t s = steps; s > 0; --s) {
            uint32_t x0, x1, w0, w1;
            LK_LOAD_PAIR(c, x0, x1);
            LK_LOAD_PAIR(wq, w0, w1);
            a0 = lk_smlad(x1, w1, lk_smlad(x0, w0, a0));
            LK_LOAD_PAIR(wq, w0, w1);
            a1 = lk_smlad(x1, w1, lk_smlad(x0, w0, a1));
            LK_LOAD_PAIR(wq, w0, w1);
            a2 = lk_smlad(x1, w1, lk_smlad(x0, w0, a2));
            LK_LOAD_PAIR(wq, w0, w1);
            a3 = lk_smlad(x1, w1, lk_smlad(x0, w0, a3));
        }
        int32_t rh, e1; /* each channel's round_hi and e1 in one LDRD */
        LK_LOAD_PAIR_AT(&r[0].round_hi, rh, e1);
        out[0] = (int8_t)LK_REQUANT_E2(a0, r[0].multiplier, rh, e1);
        LK_LOAD_PAIR_AT(&r[1].round_hi, rh, e1);
        out[1] = (int8_t)LK_REQUANT_E2(a1, r[1].multiplier, rh, e1);
        LK_LOAD_PAIR_AT(&r[2].round_hi, rh, e1);
        out[2] = (int8_t)LK_REQUANT_E2(a2, r[2].multiplier, rh, e1);
        LK_LOAD_PAIR_AT(&r[3].round_hi, rh, e1);
        out[3] = (int8_t)LK_REQUANT_E2(a3, r[3].multiplier, rh, e1);
    }
}

/* The whole convolution on that path; rq holds every channel's constants (fast). */
/* Where a window inside the image has word g of its K4 values (values 4g .. 4g + 3, filter row by
 * filter row), from the window's first tap: the 4 bytes at a when they lie in one filter row (shift
 * 0); else the row's last 4 bytes at a shifted right by `shift` bits (its last 4 - shift / 8 values)
 * joined by the first bytes of the next row at b, or by zero points after the last row (b < 0). */
typedef struct {
    int32_t a, b, shift;
} lk_word_at;

__attribute__((noinline)) static void lk_conv_small(const lk_conv_params *p, const int8_t *input, const int8_t *filter, int32_t k,
                          int32_t k4, int16_t *scratch, const lk_conv_rq *rq, int8_t *output) {
    const int32_t out_ch = p->out_ch, steps = k4 >> 2;
    const uint32_t offset2 = lk_pack2(p->input_offset), zero4 = 0x01010101u * (uint8_t)-p->input_offset;
    uint32_t *const wq = (uint32_t *)(void *)scratch, *const x = wq + out_ch * (k4 >> 1);
    lk_word_at *const at = (lk_word_at *)(void *)(x + (k4 >> 1));
    int8_t *const bytes = (int8_t *)(at + steps); /* a window on the border, gathered */
    uint32_t *w = wq;
    for (int32_t o0 = 0; o0 < out_ch; o0 += 4) { /* the weights, in the order lk_conv_small_pixel reads them */
        for (int32_t s = 0; s < steps; ++s) {
            for (int32_t o = o0; o < o0 + 4; ++o, w += 2) {
                const uint32_t v = lk_read4(filter + o * k + 4 * s);
                w[0] = lk_sxtb16(v), w[1] = lk_sxtb16_ror8(v);
            }
        }
    }
    const int32_t row_n = p->k_w * p->in_ch, row_step = p->dilation_h * p->in_w * p->in_ch;
    const int32_t span_h = (p->k_h - 1) * p->dilation_h, span_w = (p->k_w - 1) * p->dilation_w;
    for (int32_t g = 0; g < steps; ++g) { /* a window's rows are read a word at a time */
        const int32_t r = 4 * g / row_n, c = 4 * g % row_n;
        if (c + 4 <= row_n) {
            at[g].a = r * row_step + c, at[g].b = 0, at[g].shift = 0;
        } else {
            at[g].a = r * row_step + row_n - 4, at[g].b = r + 1 < p->k_h ? (r + 1) * row_step : -1;
            at[g].shift = 8 * (4 - (row_n - c));
        }
    }
    /* the output columns [x_in0, x_in1) whose windows' columns all lie inside the image */
    const int32_t lim = p->in_w + p->pad_left - span_w, x_in0 = (p->pad_left + p->stride_w - 1) / p->stride_w;
    const int32_t x_in1 = lim <= 0 ? 0 : (lim + p->stride_w - 1) / p->stride_w < p->out_w ? (lim + p->stride_w - 1) / p->stride_w : p->out_w;
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->in_h * p->in_w * p->in_ch;
        for (int32_t y = 0; y < p->out_h; ++y) {
            const int32_t in_y0 = y * p->stride_h - p->pad_top;
            const int row_inside = in_y0 >= 0 && in_y0 + span_h < p->in_h;
            for (int32_t xo = 0; xo < p->out_w; ++xo, output += out_ch) {
                const int32_t in_x0 = xo * p->stride_w - p->pad_left;
                uint32_t *d = x;
                if (row_inside && xo >= x_in0 && xo < x_in1) {
                    const int8_t *const base = in_b + (in_y0 * p->in_w + in_x0) * p->in_ch; /* inside the image */
                    const lk_word_at *t = at;
                    for (int32_t g = steps; g > 0; --g, ++t, d += 2) {
                        uint32_t v = lk_read4(base + t->a);
                        if (t->shift) v = (v >> t->shift) | ((t->b >= 0 ? lk_read4(base + t->b) : zero4) << (32 - t->shift));
                        d[0] = lk_sxtab16(offset2, v);
                        d[1] = lk_sxtab16_ror8(offset2, v);
                    }
                } else {
                    lk_im2col(p, in_b, in_y0, in_x0, 0, k4, bytes);
                    const int8_t *src = bytes;
                    for (int32_t g = steps; g > 0; --g, src += 4, d += 2) {
                        const uint32_t v = lk_read4(src);
                        d[0] = lk_sxtab16(offset2, v);
                        d[1] = lk_sxtab16_ror8(offset2, v);
                    }
                }
                lk_conv_small_pixel(x, wq, steps, out_ch, output, rq);
            }
        }
    }
}
#endif

void lk_conv_s8(const lk_conv_params *params, const int8_t *input, const int8_t *filter, const int32_t *bias,
                int8_t *output, int16_t *scratch) {
    const lk_conv_params copy = *params, *p = &copy;
    const int32_t groups = p->in_ch / p->filter_in_ch, out_ch_per_group = p->out_ch / groups;
    const int32_t k = p->k_h * p->k_w * p->filter_in_ch, k4 = (k + 3) & ~3; /* one output channel's filter */
    const int32_t pixels = p->out_h * p->out_w, image = p->in_h * p->in_w * p->in_ch;
    const uint32_t offset2 = lk_pack2(p->input_offset);
    int8_t *bytes = (int8_t *)(void *)(scratch + LK_CONV_PIXELS * k4); /* where a window is gathered */
    /* every output channel's bias and constants, after the pixels (LK_CONV_SCRATCH_BYTES: more room
     * for a 1x1 filter of 4 or 8 values, lk_conv_pw_small's, and for lk_conv_small's weights) */
    const int small = LK_CONV_SMALL && LK_CONV_SMALL_FILTER(k4, p->out_ch, p->k_w * p->filter_in_ch, p->dilation_w, groups);
    lk_conv_rq *rq = (lk_conv_rq *)(void *)((int8_t *)scratch + LK_CONV_COL_BYTES(p->k_h * p->k_w, k4, p->out_ch, small));
    int fast = p->act_min == -128 && p->act_max == 127;    /* else lk_conv_output4_any for all */
    for (int32_t o = 0; o < p->out_ch; ++o) {
        const int32_t shift = p->shift[o];
        lk_requant_e2 r = {0, 0, 0};
        if (shift > -2 || shift < -23) fast = 0; /* rare */
        else lk_requant_e2_init(&r, p->multiplier[o], shift, p->output_offset);
        rq[o].bias = bias ? bias[o] : 0, rq[o].multiplier = r.multiplier, rq[o].round_hi = r.round_hi, rq[o].e1 = r.e1;
    }
    /* A pointwise (1x1) convolution's window is one input pixel's channels, never padded: with a
     * multiple of 4 channels it is unpacked straight from the input, without gathering. */
    const int pointwise = LK_CONV_POINTWISE && p->k_h == 1 && p->k_w == 1 && groups == 1 && p->pad_top == 0 &&
                          p->pad_left == 0 && (p->in_ch & 3) == 0;
#if LK_CONV_POINTWISE
    if (pointwise && fast && k4 <= 8 && p->stride_h == 1 && p->stride_w == 1) {
        /* every pixel's input is the next in_ch bytes: unpacked LK_CONV_PW_PIXELS at a time */
        const int32_t total = p->batches * pixels;
        for (int32_t px = 0; px < total; px += LK_CONV_PW_PIXELS) {
            const int32_t n = total - px < LK_CONV_PW_PIXELS ? total - px : LK_CONV_PW_PIXELS;
            const int8_t *src = input + px * k4;
            uint32_t *d = (uint32_t *)(void *)scratch;
            for (int32_t i = n * k4 >> 2; i > 0; --i, src += 4, d += 2) {
                const uint32_t v = lk_read4(src);
                d[0] = lk_sxtab16(offset2, v);
                d[1] = lk_sxtab16_ror8(offset2, v);
            }
            lk_conv_pw_small(scratch, n, filter, k4, p->out_ch, output + px * p->out_ch, rq);
        }
        return;
    }
#endif
#if LK_CONV_SMALL
    if (small && fast) {
        lk_conv_small(p, input, filter, k, k4, scratch, rq, output);
        return;
    }
#endif
    /* Without dilation across a row and without groups, each filter row of a window inside the image is
     * one run of row_n bytes of the input, row_step bytes after the previous one. */
    const int run = p->dilation_w == 1 && groups == 1;
    const int32_t row_n = p->k_w * p->filter_in_ch, row_step = p->dilation_h * p->in_w * p->in_ch;
    const int32_t span_h = (p->k_h - 1) * p->dilation_h, span_w = (p->k_w - 1) * p->dilation_w;
    const uint32_t zero4 = 0x01010101u * (uint8_t)-p->input_offset;
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * image;
        int32_t y = 0, x = 0; /* the output pixel a block starts at */
        for (int32_t px = 0; px < pixels; px += LK_CONV_PIXELS) {
            /* pixel j of the block: its output offset d[j] and its window's first tap (iy[j], ix[j]);
             * the last block may have fewer pixels: the last one is repeated (and stored again) */
            int32_t d[LK_CONV_PIXELS], iy[LK_CONV_PIXELS], ix[LK_CONV_PIXELS];
            for (int32_t j = 0, dj = 0; j < LK_CONV_PIXELS; ++j) {
                d[j] = dj, iy[j] = y * p->stride_h - p->pad_top, ix[j] = x * p->stride_w - p->pad_left;
                if (px + j + 1 < pixels) { /* on to the next pixel, row by row */
                    dj += p->out_ch;
                    if (++x == p->out_w) x = 0, ++y;
                }
            }
            for (int32_t g = 0; g < groups; ++g) {
                for (int32_t j = 0; j < LK_CONV_PIXELS; ++j) {
                    const int32_t in_y0 = iy[j], in_x0 = ix[j];
                    if (pointwise) {
                        lk_col_pixel(scratch, j, in_b + (in_y0 * p->in_w + in_x0) * p->in_ch, k4, offset2);
                    } else if (run && in_y0 >= 0 && in_y0 + span_h < p->in_h && in_x0 >= 0 && in_x0 + span_w < p->in_w) {
                        /* the usual pixel: its window inside the image, each filter row one run of the input */
                        const int8_t *const s = in_b + (in_y0 * p->in_w + in_x0) * p->in_ch; /* tap (0, 0) */
                        if ((row_n & 3) == 0) {
                            lk_col_rows(scratch, j, s, p->k_h, row_n, row_step, offset2);
                        } else {
                            memcpy(bytes + k4 - 4, &zero4, 4); /* the padding up to K4 */
                            lk_copy_rows(bytes, s, p->k_h, row_n, row_step);
                            lk_col_pixel(scratch, j, bytes, k4, offset2);
                        }
                    } else {
                        lk_im2col(p, in_b, in_y0, in_x0, g, k4, bytes);
                        lk_col_pixel(scratch, j, bytes, k4, offset2);
                    }
                }
                lk_conv_channels(p, scratch, filter, k, k4, g * out_ch_per_group, (g + 1) * out_ch_per_group,
                                 output + (b * pixels + px) * p->out_ch, d, rq, fast);
            }
        }
    }
}

#endif /* LK_DSP */

/* ---- DEPTHWISE_CONV_2D -------------------------------------------------------- */

#if !LK_DSP /* the plain C kernel: the reference, and the host build; the DSP path is below */

void lk_depthwise_conv_s8(const lk_depthwise_conv_params *params, const int8_t *input, const int8_t *filter,
                          const int32_t *bias, int8_t *output, int16_t *scratch) {
    (void)scratch; /* the DSP path's */
    const lk_depthwise_conv_params copy = *params, *p = &copy;
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->in_h * p->in_w * p->in_ch;
        for (int32_t y = 0; y < p->out_h; ++y) {
            const int32_t in_y0 = y * p->stride_h - p->pad_top;
            int32_t ky0, ky1;
            lk_taps_inside(in_y0, p->in_h, p->k_h, p->dilation_h, &ky0, &ky1);
            for (int32_t x = 0; x < p->out_w; ++x) {
                const int32_t in_x0 = x * p->stride_w - p->pad_left;
                int32_t kx0, kx1;
                lk_taps_inside(in_x0, p->in_w, p->k_w, p->dilation_w, &kx0, &kx1);
                int8_t *out = output + ((b * p->out_h + y) * p->out_w + x) * p->out_ch;
                for (int32_t o = 0; o < p->out_ch; ++o) {
                    const int32_t c = o / p->depth_multiplier; /* the input channel o filters */
                    int32_t acc = 0;
                    for (int32_t ky = ky0; ky < ky1; ++ky) {
                        const int32_t in_y = in_y0 + ky * p->dilation_h;
                        for (int32_t kx = kx0; kx < kx1; ++kx) {
                            const int32_t in_x = in_x0 + kx * p->dilation_w;
                            int32_t v = in_b[(in_y * p->in_w + in_x) * p->in_ch + c];
                            int32_t w = filter[(ky * p->k_w + kx) * p->out_ch + o];
                            acc += (v + p->input_offset) * w;
                        }
                    }
                    if (bias) acc += bias[o];
                    acc = lk_multiply_by_quantized_multiplier(acc, p->multiplier[o], p->shift[o]);
                    out[o] = (int8_t)lk_clamp(acc + p->output_offset, p->act_min, p->act_max);
                }
            }
        }
    }
}

#else /* LK_DSP */

/* Output channel o of one pixel, requantized (lk_requantize_e2 for the usual shift of -2 or less). */
static inline int8_t lk_dw_output(const lk_depthwise_conv_params *p, int32_t acc, int32_t o) {
    const int32_t shift = p->shift[o];
    if (shift <= -2) {
        const int e1 = -shift - 1;
        acc = lk_requantize_e2(acc, p->multiplier[o], (int32_t)(1u << (e1 - 1)), e1);
    } else {
        acc = lk_requantize(acc, p->multiplier[o], shift);
    }
    return (int8_t)lk_clamp(acc + p->output_offset, p->act_min, p->act_max);
}

/* One filter tap for 4 adjacent channels: the input word unpacked with the offset added (SXTAB16),
 * the weights' two words from the scratch, unpacked once per call; 4 separate products (a
 * depthwise tap sums over no channel): SMLABB / SMLATT multiply the bottom / top halves. */
#define LK_DW_TAP4(xp, wp)                                                                        \
    do {                                                                                          \
        uint32_t xv_ = lk_read4(xp), wa_ = (wp)[0], wb_ = (wp)[1];                                \
        uint32_t xa_ = lk_sxtab16(offset2, xv_), xb_ = lk_sxtab16_ror8(offset2, xv_);              \
        a0 = lk_smlabb(xa_, wa_, a0);                                                              \
        a2 = lk_smlatt(xa_, wa_, a2);                                                              \
        a1 = lk_smlabb(xb_, wb_, a1);                                                              \
        a3 = lk_smlatt(xb_, wb_, a3);                                                              \
    } while (0)

/* A quad of channels' requantization constants (lk_requant_e2's), field by field, so that each
 * pair of channels' is one LDRD. */
typedef struct {
    int32_t multiplier[4], round_hi[4], e1[4];
} lk_dw_rq4;

/* Two adjacent int32 of the scratch in one load: GCC splits a 64-bit load of a pair into two LDRs,
 * hence the asm; s + i must be 4-byte aligned, i a constant (the LDRD's offset). */
#define LK_DW_PAIR(s, i, lo, hi) \
    __asm("ldrd %0, %1, [%2, %3]" : "=r"(lo), "=r"(hi) : "r"(s), "i"(4 * (i)), "m"(*(const int32_t(*)[2])((s) + (i))))

/* One output byte, the low byte of v (int8 already): GCC merges 4 byte stores into a word with 4
 * BFIs, 2 instructions more, hence the asm. */
#define LK_DW_STRB(dst, v) __asm("strb %1, %0" : "=m"(dst) : "r"(v))

/* Channel i of a quad requantized with r's constants, saturated to int8. */
#define LK_DW_REQUANT(acc, m, h, e) lk_ssat8(lk_requantize_e2((acc), (m), (h), (e)))

/* The four sums of a quad of channels requantized (the quad's constants in *r), clamped unless the
 * activation's range is all of int8, stored a byte at a time (4 STRB: fewer instructions than
 * packing them into a word): the tail of lk_dw_3x3 and lk_dw_taps. */
#define LK_DW_STORE4(a0, a1, a2, a3, r, full, lo, hi, out)                                              \
    do {                                                                                               \
        int32_t m0, m1, m2, m3, h0, h1, h2, h3, e0, e1, e2, e3;                                        \
        const int32_t *k_ = (const int32_t *)(const void *)(r);                                        \
        LK_DW_PAIR(k_, 0, m0, m1); LK_DW_PAIR(k_, 4, h0, h1); LK_DW_PAIR(k_, 8, e0, e1);               \
        int32_t v0 = LK_DW_REQUANT(a0, m0, h0, e0), v1 = LK_DW_REQUANT(a1, m1, h1, e1);                \
        LK_DW_PAIR(k_, 2, m2, m3); LK_DW_PAIR(k_, 6, h2, h3); LK_DW_PAIR(k_, 10, e2, e3);              \
        int32_t v2 = LK_DW_REQUANT(a2, m2, h2, e2), v3 = LK_DW_REQUANT(a3, m3, h3, e3);                \
        if (!(full)) {                                                                                 \
            v0 = lk_clamp(v0, lo, hi), v1 = lk_clamp(v1, lo, hi);                                      \
            v2 = lk_clamp(v2, lo, hi), v3 = lk_clamp(v3, lo, hi);                                      \
        }                                                                                              \
        LK_DW_STRB(out[0], v0); LK_DW_STRB(out[1], v1); LK_DW_STRB(out[2], v2); LK_DW_STRB(out[3], v3); \
    } while (0)

/* What lk_dw_3x3 and lk_dw_taps share, set once per call: passed as one pointer rather than a
 * dozen arguments per call. */
typedef struct {
    const uint32_t *w;       /* the unpacked weights: quad by quad, tap by tap, 2 words a tap */
    const int32_t *bias;     /* or NULL */
    const lk_dw_rq4 *rq;     /* one per quad */
    int32_t quads, taps, k_w;
    int32_t col_step, row_step; /* bytes from a tap to the next of its filter row / column */
    int32_t x_step, out_ch;     /* bytes from an output pixel's window / output to the next one's */
    uint32_t offset2;
    int32_t full, lo, hi;
} lk_dw_ctx;

/* The quads of channels of n adjacent output pixels of a row whose 3x3 windows lie inside the
 * image, x the window's first tap of the first: the 9 taps unrolled, the weights at fixed offsets
 * from one pointer. A function of its own, so that its loops have the registers (GCC's scheduling
 * before register allocation off, as for lk_conv_channels). */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-schedule-insns")))
#endif
__attribute__((noinline)) static void lk_dw_3x3(const lk_dw_ctx *c, const int8_t *x, int32_t n, int8_t *out) {
    const uint32_t offset2 = c->offset2;
    const int full = c->full;
    for (; n > 0; --n, x += c->x_step, out += c->out_ch) {
        const uint32_t *w = c->w;
        const int32_t *bias = c->bias;
        const lk_dw_rq4 *r = c->rq;
        const int8_t *xq = x;
        int8_t *o = out;
        for (int32_t q = c->quads; q > 0; --q, xq += 4, o += 4, ++r, w += 18) {
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            if (bias) a0 = bias[0], a1 = bias[1], a2 = bias[2], a3 = bias[3], bias += 4;
            const int32_t cs = c->col_step, rs = c->row_step;
            const int8_t *p = xq;
            LK_DW_TAP4(p, w);
            LK_DW_TAP4(p + cs, w + 2);
            LK_DW_TAP4(p + 2 * cs, w + 4);
            p += rs;
            LK_DW_TAP4(p, w + 6);
            LK_DW_TAP4(p + cs, w + 8);
            LK_DW_TAP4(p + 2 * cs, w + 10);
            p += rs;
            LK_DW_TAP4(p, w + 12);
            LK_DW_TAP4(p + cs, w + 14);
            LK_DW_TAP4(p + 2 * cs, w + 16);
            LK_DW_STORE4(a0, a1, a2, a3, r, full, c->lo, c->hi, o);
        }
    }
}

/* Any other window (another kernel size, or a pixel on the border): n adjacent output pixels whose
 * taps inside the image are the same `rows` rows of `cols` taps, from tap `first` of the filter; x
 * the first pixel's first tap inside. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-schedule-insns")))
#endif
__attribute__((noinline)) static void lk_dw_taps(const lk_dw_ctx *c, const int8_t *x, int32_t first, int32_t rows,
                                                 int32_t cols, int32_t n, int8_t *out) {
    const uint32_t offset2 = c->offset2;
    const int32_t cs = c->col_step, rs = c->row_step, w_row = 2 * c->k_w;
    const int full = c->full;
    for (; n > 0; --n, x += c->x_step, out += c->out_ch) {
        const uint32_t *w0 = c->w + 2 * first;
        const int32_t *bias = c->bias;
        const lk_dw_rq4 *r = c->rq;
        const int8_t *xq = x;
        int8_t *o = out;
        for (int32_t q = c->quads; q > 0; --q, xq += 4, o += 4, ++r, w0 += 2 * c->taps) {
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            if (bias) a0 = bias[0], a1 = bias[1], a2 = bias[2], a3 = bias[3], bias += 4;
            const int8_t *p = xq;
            const uint32_t *w = w0;
            if (cols == 3) { /* a 3x3 window's rows, unrolled */
                for (int32_t ry = rows; ry > 0; --ry, p += rs, w += w_row) {
                    LK_DW_TAP4(p, w);
                    LK_DW_TAP4(p + cs, w + 2);
                    LK_DW_TAP4(p + 2 * cs, w + 4);
                }
            } else if (cols == 2) { /* its rows on the left or right border */
                for (int32_t ry = rows; ry > 0; --ry, p += rs, w += w_row) {
                    LK_DW_TAP4(p, w);
                    LK_DW_TAP4(p + cs, w + 2);
                }
            } else {
                for (int32_t ry = rows; ry > 0; --ry, p += rs, w += w_row) {
                    for (int32_t k = 0; k < cols; ++k) LK_DW_TAP4(p + k * cs, w + 2 * k);
                }
            }
            LK_DW_STORE4(a0, a1, a2, a3, r, full, c->lo, c->hi, o);
        }
    }
}

/* DSP path. With a depth multiplier of 1, 4 channels at a time: first, once per call, the scratch
 * gets each tap's offset in the input (from the window's first tap; for the rare path), the weights
 * unpacked as the taps use them (per group of 4 channels, tap by tap, the two words SXTB16 makes)
 * and each group's requantization constants (lk_dw_rq4); then each row of output pixels goes in
 * runs: the pixels whose windows' columns lie inside the image in one call (a 3x3 window inside
 * the image unrolled), each other pixel in one call with the rows and columns of its taps inside.
 * Channels left over (and every channel for a depth multiplier above 1) go one by one as in the
 * plain kernel. */
void lk_depthwise_conv_s8(const lk_depthwise_conv_params *params, const int8_t *input, const int8_t *filter,
                          const int32_t *bias, int8_t *output, int16_t *scratch) {
    const lk_depthwise_conv_params copy = *params, *p = &copy;
    const int32_t ch = p->in_ch, out_ch = p->out_ch, taps = p->k_h * p->k_w;
    const uint32_t offset2 = lk_pack2(p->input_offset);
    const int32_t row = p->in_w * ch; /* one input row */
    const int32_t quads = p->depth_multiplier == 1 ? out_ch >> 2 : 0;
    int32_t *tap_offset = (int32_t *)(void *)scratch;
    uint32_t *wq = (uint32_t *)(void *)(scratch + 2 * ((taps + 1) & ~1)); /* 8-byte aligned */
    lk_dw_rq4 *rq = (lk_dw_rq4 *)(void *)(wq + 2 * quads * taps); /* one per quad */
    const int32_t lo = p->act_min, hi = p->act_max;
    const int full = lo == -128 && hi == 127;
    int fast = quads > 0; /* every channel's shift in -23 .. -2: rq holds their constants */
    if (quads) {
        for (int32_t ky = 0; ky < p->k_h; ++ky) {
            for (int32_t kx = 0; kx < p->k_w; ++kx) {
                const int32_t t = ky * p->k_w + kx;
                tap_offset[t] = ky * p->dilation_h * row + kx * p->dilation_w * ch;
                for (int32_t q = 0; q < quads; ++q) {
                    uint32_t v = lk_read4(filter + t * out_ch + 4 * q);
                    wq[2 * (q * taps + t)] = lk_sxtb16(v);
                    wq[2 * (q * taps + t) + 1] = lk_sxtb16_ror8(v);
                }
            }
        }
        for (int32_t o = 0; o < 4 * quads; ++o) {
            const int32_t shift = p->shift[o];
            fast = fast && shift <= -2 && shift >= -23;
            lk_requant_e2 r;
            lk_requant_e2_init(&r, p->multiplier[o], shift, p->output_offset);
            rq[o >> 2].multiplier[o & 3] = r.multiplier, rq[o >> 2].round_hi[o & 3] = r.round_hi;
            rq[o >> 2].e1[o & 3] = r.e1;
        }
    }
    const lk_dw_ctx ctx = {wq, bias, rq, quads, taps, p->k_w, p->dilation_w * ch, p->dilation_h * row,
                           p->stride_w * ch, out_ch, offset2, full, lo, hi};
    /* the output columns [x_in0, x_in1) whose windows' columns all lie inside the image */
    const int32_t span_w = (p->k_w - 1) * p->dilation_w, lim = p->in_w + p->pad_left - span_w;
    const int32_t x_in0 = (p->pad_left + p->stride_w - 1) / p->stride_w;
    int32_t x_in1 = lim > 0 ? (lim + p->stride_w - 1) / p->stride_w : 0;
    if (x_in1 > p->out_w) x_in1 = p->out_w;
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->in_h * row;
        for (int32_t y = 0; y < p->out_h; ++y) {
            const int32_t in_y0 = y * p->stride_h - p->pad_top;
            int32_t ky0, ky1;
            lk_taps_inside(in_y0, p->in_h, p->k_h, p->dilation_h, &ky0, &ky1);
            int8_t *out_row = output + (b * p->out_h + y) * p->out_w * out_ch;
            const int8_t *in_row = in_b + (in_y0 + ky0 * p->dilation_h) * row; /* its first tap row inside */
            for (int32_t x = 0; fast && x < p->out_w;) {
                const int32_t in_x0 = x * p->stride_w - p->pad_left;
                if (x == x_in0 && x_in1 > x_in0) { /* the run of pixels inside in x */
                    const int32_t n = x_in1 - x_in0;
                    if (p->k_h == 3 && p->k_w == 3 && ky0 == 0 && ky1 == 3) {
                        lk_dw_3x3(&ctx, in_row + in_x0 * ch, n, out_row + x * out_ch);
                    } else {
                        lk_dw_taps(&ctx, in_row + in_x0 * ch, ky0 * p->k_w, ky1 - ky0, p->k_w, n, out_row + x * out_ch);
                    }
                    x = x_in1;
                    continue;
                }
                int32_t kx0, kx1; /* a pixel on the left or right border */
                lk_taps_inside(in_x0, p->in_w, p->k_w, p->dilation_w, &kx0, &kx1);
                lk_dw_taps(&ctx, in_row + (in_x0 + kx0 * p->dilation_w) * ch, ky0 * p->k_w + kx0, ky1 - ky0, kx1 - kx0,
                           1, out_row + x * out_ch);
                ++x;
            }
            if (fast && 4 * quads == out_ch) continue;
            for (int32_t x = 0; x < p->out_w; ++x) { /* the rest, pixel by pixel */
                const int32_t in_x0 = x * p->stride_w - p->pad_left;
                int32_t kx0, kx1;
                lk_taps_inside(in_x0, p->in_w, p->k_w, p->dilation_w, &kx0, &kx1);
                int8_t *out = out_row + x * out_ch;
                const int8_t *in_px = in_b + in_y0 * row + in_x0 * ch; /* tap (0, 0), maybe outside */
                for (int32_t q = fast ? quads : 0; q < quads; ++q) { /* rare: a shift outside -23 .. -2 */
                    const int32_t o = 4 * q;
                    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                    if (bias) a0 = bias[o], a1 = bias[o + 1], a2 = bias[o + 2], a3 = bias[o + 3];
                    const uint32_t *w = wq + 2 * q * taps;
                    const int8_t *xq = in_px + o;
                    for (int32_t ky = ky0; ky < ky1; ++ky) {
                        for (int32_t t = ky * p->k_w + kx0; t < ky * p->k_w + kx1; ++t) {
                            LK_DW_TAP4(xq + tap_offset[t], w + 2 * t);
                        }
                    }
                    out[o] = lk_dw_output(p, a0, o);
                    out[o + 1] = lk_dw_output(p, a1, o + 1);
                    out[o + 2] = lk_dw_output(p, a2, o + 2);
                    out[o + 3] = lk_dw_output(p, a3, o + 3);
                }
                for (int32_t o = 4 * quads; o < out_ch; ++o) {
                    const int32_t c = o / p->depth_multiplier; /* the input channel o filters */
                    int32_t acc = bias ? bias[o] : 0;
                    for (int32_t ky = ky0; ky < ky1; ++ky) {
                        for (int32_t kx = kx0; kx < kx1; ++kx) {
                            int32_t v = in_px[ky * p->dilation_h * row + kx * p->dilation_w * ch + c];
                            acc += (v + p->input_offset) * filter[(ky * p->k_w + kx) * out_ch + o];
                        }
                    }
                    out[o] = lk_dw_output(p, acc, o);
                }
            }
        }
    }
}

#endif /* LK_DSP */

/* ---- MAX_POOL_2D / AVERAGE_POOL_2D ----------------------------------------------- */

void lk_max_pool_s8(const lk_pool_params *params, const int8_t *input, int8_t *output) {
    const lk_pool_params copy = *params, *p = &copy;
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->in_h * p->in_w * p->channels;
        for (int32_t y = 0; y < p->out_h; ++y) {
            for (int32_t x = 0; x < p->out_w; ++x) {
                const int32_t in_y0 = y * p->stride_h - p->pad_top, in_x0 = x * p->stride_w - p->pad_left;
                int32_t ky0, ky1, kx0, kx1;
                lk_taps_inside(in_y0, p->in_h, p->k_h, 1, &ky0, &ky1);
                lk_taps_inside(in_x0, p->in_w, p->k_w, 1, &kx0, &kx1);
                int8_t *out = output + ((b * p->out_h + y) * p->out_w + x) * p->channels;
                for (int32_t c = 0; c < p->channels; ++c) {
                    int32_t best = -128;
                    for (int32_t iy = in_y0 + ky0; iy < in_y0 + ky1; ++iy) {
                        for (int32_t ix = in_x0 + kx0; ix < in_x0 + kx1; ++ix) {
                            int32_t v = in_b[(iy * p->in_w + ix) * p->channels + c];
                            if (v > best) best = v;
                        }
                    }
                    out[c] = (int8_t)lk_clamp(best, p->act_min, p->act_max);
                }
            }
        }
    }
}

void lk_average_pool_s8(const lk_pool_params *params, const int8_t *input, int8_t *output) {
    const lk_pool_params copy = *params, *p = &copy;
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->in_h * p->in_w * p->channels;
        for (int32_t y = 0; y < p->out_h; ++y) {
            for (int32_t x = 0; x < p->out_w; ++x) {
                const int32_t in_y0 = y * p->stride_h - p->pad_top, in_x0 = x * p->stride_w - p->pad_left;
                int32_t ky0, ky1, kx0, kx1;
                lk_taps_inside(in_y0, p->in_h, p->k_h, 1, &ky0, &ky1);
                lk_taps_inside(in_x0, p->in_w, p->k_w, 1, &kx0, &kx1);
                /* taps inside the image only; never 0, TFLite's padding keeps every window on it */
                const int32_t count = (ky1 - ky0) * (kx1 - kx0);
                int8_t *out = output + ((b * p->out_h + y) * p->out_w + x) * p->channels;
                for (int32_t c = 0; c < p->channels; ++c) {
                    int32_t acc = 0;
                    for (int32_t iy = in_y0 + ky0; iy < in_y0 + ky1; ++iy) {
                        for (int32_t ix = in_x0 + kx0; ix < in_x0 + kx1; ++ix) {
                            acc += in_b[(iy * p->in_w + ix) * p->channels + c];
                        }
                    }
                    /* acc / count rounded half away from zero (C division truncates) */
                    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    out[c] = (int8_t)lk_clamp(acc, p->act_min, p->act_max);
                }
            }
        }
    }
}

/* ---- MEAN ---------------------------------------------------------------------- */

#if LK_DSP
/* MEAN's DSP path when inner is a multiple of 4: the sums of 4 adjacent channels from one word per
 * reduced row, SXTAB16 adding its bytes (c0, c2) and (c1, c3) into two int16 pairs: exact for up to
 * 256 rows (|sum| <= 256 * 128 = 32768, -32768 .. 32512 fits an int16), so longer reductions go
 * in blocks of 256 whose int16 sums are added into int32. Requantized with lk_requantize_e2 for
 * the usual shift (-23 .. -2; the constants once per call), lk_requantize otherwise: the same
 * bytes as lk_multiply_by_quantized_multiplier. */
static void lk_mean_s8_quads(const lk_mean_params *p, const int8_t *input, int8_t *output) {
    const int32_t inner = p->inner, reduce = p->reduce, multiplier = p->multiplier, shift = p->shift;
    const int32_t start = -p->input_zero_point * reduce, z = p->output_zero_point;
    const int e2 = shift <= -2 && shift >= -23;
    lk_requant_e2 r = {0, 0, 0};
    if (e2) lk_requant_e2_init(&r, multiplier, shift, z);
    for (int32_t o = 0; o < p->outer; ++o, input += reduce * inner) {
        for (int32_t i = 0; i < inner; i += 4, output += 4) {
            int32_t s0 = start, s1 = start, s2 = start, s3 = start;
            const int8_t *x = input + i;
            for (int32_t n = reduce; n > 0; n -= 256) {
                uint32_t even = 0, odd = 0; /* (c0, c2) and (c1, c3) */
                for (int32_t k = n < 256 ? n : 256; k > 0; --k, x += inner) {
                    const uint32_t v = lk_read4(x);
                    even = lk_sxtab16(even, v), odd = lk_sxtab16_ror8(odd, v);
                }
                s0 += (int16_t)even, s2 += (int32_t)even >> 16, s1 += (int16_t)odd, s3 += (int32_t)odd >> 16;
            }
            if (e2) {
                output[0] = (int8_t)LK_REQUANT_E2(s0, r.multiplier, r.round_hi, r.e1);
                output[1] = (int8_t)LK_REQUANT_E2(s1, r.multiplier, r.round_hi, r.e1);
                output[2] = (int8_t)LK_REQUANT_E2(s2, r.multiplier, r.round_hi, r.e1);
                output[3] = (int8_t)LK_REQUANT_E2(s3, r.multiplier, r.round_hi, r.e1);
            } else {
                output[0] = (int8_t)lk_ssat8(lk_requantize(s0, multiplier, shift) + z);
                output[1] = (int8_t)lk_ssat8(lk_requantize(s1, multiplier, shift) + z);
                output[2] = (int8_t)lk_ssat8(lk_requantize(s2, multiplier, shift) + z);
                output[3] = (int8_t)lk_ssat8(lk_requantize(s3, multiplier, shift) + z);
            }
        }
    }
}
#endif

void lk_mean_s8(const lk_mean_params *params, const int8_t *input, int8_t *output) {
    const lk_mean_params copy = *params, *p = &copy;
#if LK_DSP
    if ((p->inner & 3) == 0) {
        lk_mean_s8_quads(p, input, output);
        return;
    }
#endif
    for (int32_t o = 0; o < p->outer; ++o) {
        const int8_t *in = input + o * p->reduce * p->inner;
        for (int32_t i = 0; i < p->inner; ++i) {
            int32_t sum = 0;
            for (int32_t r = 0; r < p->reduce; ++r) sum += in[r * p->inner + i];
            sum -= p->input_zero_point * p->reduce;
            int32_t q = lk_multiply_by_quantized_multiplier(sum, p->multiplier, p->shift);
            output[o * p->inner + i] = (int8_t)lk_clamp(q + p->output_zero_point, -128, 127);
        }
    }
}
