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

/* Two words from p (8-byte aligned) into lo and hi, p then 8 bytes on: one LDRD with write-back
 * (GCC splits such a load into LDRs and an ADD when registers are short). */
#define LK_LOAD_PAIR(p, lo, hi) \
    __asm("ldrd %0, %1, [%2], #8" : "=r"(lo), "=r"(hi), "+r"(p) : "m"(*(const uint32_t(*)[2])(p)))

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

void lk_conv_s8(const lk_conv_params *params, const int8_t *input, const int8_t *filter, const int32_t *bias,
                int8_t *output, int16_t *scratch) {
    const lk_conv_params copy = *params, *p = &copy;
    const int32_t groups = p->in_ch / p->filter_in_ch, out_ch_per_group = p->out_ch / groups;
    const int32_t k = p->k_h * p->k_w * p->filter_in_ch, k4 = (k + 3) & ~3; /* one output channel's filter */
    const int32_t pixels = p->out_h * p->out_w, image = p->in_h * p->in_w * p->in_ch;
    const uint32_t offset2 = lk_pack2(p->input_offset);
    int8_t *bytes = (int8_t *)(void *)(scratch + LK_CONV_PIXELS * k4); /* where a window is gathered */
    /* every output channel's bias and constants, after the pixels (LK_CONV_SCRATCH_BYTES: more of
     * them for a 1x1 filter of 4 or 8 values, lk_conv_pw_small's) */
    lk_conv_rq *rq = (lk_conv_rq *)(void *)((int8_t *)scratch + (p->k_h * p->k_w == 1 && k4 <= 8 ? 32 : 9) * k4);
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

/* The four sums of a quad of channels requantized (each channel's constants in r[0..3]), clamped
 * unless the activation's range is all of int8, stored: the tail of lk_dw_inside and lk_dw_border. */
#define LK_DW_STORE4(a0, a1, a2, a3, r, full, lo, hi, out)                                              \
    do {                                                                                               \
        int32_t v0 = LK_REQUANT_E2(a0, r[0].multiplier, r[0].round_hi, r[0].e1);                       \
        int32_t v1 = LK_REQUANT_E2(a1, r[1].multiplier, r[1].round_hi, r[1].e1);                       \
        int32_t v2 = LK_REQUANT_E2(a2, r[2].multiplier, r[2].round_hi, r[2].e1);                       \
        int32_t v3 = LK_REQUANT_E2(a3, r[3].multiplier, r[3].round_hi, r[3].e1);                       \
        if (!(full)) {                                                                                 \
            v0 = lk_clamp(v0, lo, hi), v1 = lk_clamp(v1, lo, hi);                                      \
            v2 = lk_clamp(v2, lo, hi), v3 = lk_clamp(v3, lo, hi);                                      \
        }                                                                                              \
        out[0] = (int8_t)v0, out[1] = (int8_t)v1, out[2] = (int8_t)v2, out[3] = (int8_t)v3;            \
    } while (0)

/* The quads of channels of a pixel whose window lies inside the image, when every channel's
 * requantization constants are in r: a function of its own, so that its loops have the registers
 * (GCC's scheduling before register allocation off, as for lk_conv_channels). */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-schedule-insns")))
#endif
__attribute__((noinline)) static void lk_dw_inside(const int8_t *xq, const uint32_t *w, const int32_t *tap_offset,
                                                   int32_t taps, int32_t quads, const int32_t *bias,
                                                   const lk_requant_e2 *r, uint32_t offset2, int full, int32_t lo,
                                                   int32_t hi, int8_t *out) {
    for (int32_t q = quads; q > 0; --q, xq += 4, out += 4, r += 4) {
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        if (bias) a0 = bias[0], a1 = bias[1], a2 = bias[2], a3 = bias[3], bias += 4;
        const int32_t *off = tap_offset;
        for (int32_t t = taps; t > 0; --t, w += 2) LK_DW_TAP4(xq + *off++, w);
        LK_DW_STORE4(a0, a1, a2, a3, r, full, lo, hi, out);
    }
}

/* lk_dw_inside for a pixel on the border: its taps inside the image are `rows` rows of `cols`
 * taps, off0 / w0 the offsets and weights of the first (a row of the filter is k_w taps). */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-schedule-insns")))
#endif
__attribute__((noinline)) static void lk_dw_border(const int8_t *xq, const uint32_t *w0, const int32_t *off0,
                                                   int32_t rows, int32_t cols, int32_t k_w, int32_t taps,
                                                   int32_t quads, const int32_t *bias, const lk_requant_e2 *r,
                                                   uint32_t offset2, int full, int32_t lo, int32_t hi, int8_t *out) {
    for (int32_t q = quads; q > 0; --q, xq += 4, out += 4, r += 4, w0 += 2 * taps) {
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        if (bias) a0 = bias[0], a1 = bias[1], a2 = bias[2], a3 = bias[3], bias += 4;
        const int32_t *off_row = off0;
        const uint32_t *w_row = w0;
        for (int32_t ry = rows; ry > 0; --ry, off_row += k_w, w_row += 2 * k_w) {
            const int32_t *off = off_row;
            const uint32_t *w = w_row;
            for (int32_t c = cols; c > 0; --c, w += 2) LK_DW_TAP4(xq + *off++, w);
        }
        LK_DW_STORE4(a0, a1, a2, a3, r, full, lo, hi, out);
    }
}

/* DSP path. With a depth multiplier of 1, 4 channels at a time: first, once per call, the scratch
 * gets each tap's offset in the input (from the window's first tap) and the weights unpacked as the
 * taps use them (per group of 4 channels, tap by tap, the two words SXTB16 makes); then a pixel
 * whose window lies inside the image walks its taps in one loop, a border pixel the rows and
 * columns inside. Channels left over (and every channel for a depth multiplier above 1) go one by
 * one as in the plain kernel. */
void lk_depthwise_conv_s8(const lk_depthwise_conv_params *params, const int8_t *input, const int8_t *filter,
                          const int32_t *bias, int8_t *output, int16_t *scratch) {
    const lk_depthwise_conv_params copy = *params, *p = &copy;
    const int32_t ch = p->in_ch, out_ch = p->out_ch, taps = p->k_h * p->k_w;
    const uint32_t offset2 = lk_pack2(p->input_offset);
    const int32_t row = p->in_w * ch; /* one input row */
    const int32_t quads = p->depth_multiplier == 1 ? out_ch >> 2 : 0;
    int32_t *tap_offset = (int32_t *)(void *)scratch;
    uint32_t *wq = (uint32_t *)(void *)(scratch + 2 * ((taps + 1) & ~1)); /* 8-byte aligned */
    lk_requant_e2 *rq = (lk_requant_e2 *)(void *)(wq + 2 * quads * taps);  /* one per channel of the quads */
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
            lk_requant_e2_init(&rq[o], p->multiplier[o], shift, p->output_offset);
        }
    }
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->in_h * row;
        for (int32_t y = 0; y < p->out_h; ++y) {
            const int32_t in_y0 = y * p->stride_h - p->pad_top;
            int32_t ky0, ky1;
            lk_taps_inside(in_y0, p->in_h, p->k_h, p->dilation_h, &ky0, &ky1);
            for (int32_t x = 0; x < p->out_w; ++x) {
                const int32_t in_x0 = x * p->stride_w - p->pad_left;
                int32_t kx0, kx1;
                lk_taps_inside(in_x0, p->in_w, p->k_w, p->dilation_w, &kx0, &kx1);
                const int inside = ky0 == 0 && ky1 == p->k_h && kx0 == 0 && kx1 == p->k_w;
                int8_t *out = output + ((b * p->out_h + y) * p->out_w + x) * out_ch;
                const int8_t *in_px = in_b + in_y0 * row + in_x0 * ch; /* tap (0, 0), maybe outside */
                if (fast && inside) { /* the usual pixel */
                    lk_dw_inside(in_px, wq, tap_offset, taps, quads, bias, rq, offset2, full, lo, hi, out);
                } else if (fast) { /* a border pixel: the rows ky0 .. ky1 - 1 and columns kx0 .. kx1 - 1 of taps */
                    const int32_t first = ky0 * p->k_w + kx0;
                    lk_dw_border(in_px, wq + 2 * first, tap_offset + first, ky1 - ky0, kx1 - kx0, p->k_w, taps, quads, bias,
                                 rq, offset2, full, lo, hi, out);
                }
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

void lk_mean_s8(const lk_mean_params *params, const int8_t *input, int8_t *output) {
    const lk_mean_params copy = *params, *p = &copy;
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
