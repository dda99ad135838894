/* labkit-nn runtime, convolution family. See labkit_nn_conv.h for what each kernel computes. */
#include "labkit_nn_conv.h"
#include "labkit_nn_dsp.h"

/* The taps k (0 <= k < k_size) of a window starting at input position `origin`, spaced
 * `dilation` apart, that land inside the image [0, in_size): k runs from *first to *end - 1. */
static void lk_taps_inside(int32_t origin, int32_t in_size, int32_t k_size, int32_t dilation, int32_t *first,
                           int32_t *end) {
    int32_t k0 = origin >= 0 ? 0 : (-origin + dilation - 1) / dilation;
    int32_t k1 = in_size - origin <= 0 ? 0 : (in_size - origin + dilation - 1) / dilation;
    if (k1 > k_size) k1 = k_size;
    if (k1 < k0) k1 = k0; /* no tap inside */
    *first = k0;
    *end = k1;
}

#if LK_DSP
/* Output channel o of a CONV_2D or DEPTHWISE_CONV_2D from its accumulator. */
#define lk_conv_output(p, acc, o) \
    ((int8_t)lk_clamp(lk_requantize((acc), (p)->multiplier[o], (p)->shift[o]) + (p)->output_offset, (p)->act_min, (p)->act_max))

/* lk_conv_output2 for any shift (one above -2 is rare: a multiplier of 1/2 or more) */
__attribute__((noinline)) static void lk_conv_output2_any(const lk_conv_params *p, int32_t o, int32_t a0, int32_t a1,
                                                          int8_t *out0, int8_t *out1) {
    out0[o] = lk_conv_output(p, a0, o);
    if (out1) out1[o] = lk_conv_output(p, a1, o);
}

/* Output channel o of two pixels from their accumulators a0 and a1 (out1 NULL: only the first):
 * what depends on the channel only is computed once. */
static inline __attribute__((always_inline)) void lk_conv_output2(const lk_conv_params *p, int32_t o, int32_t a0, int32_t a1, int8_t *out0,
                                                                     int8_t *out1) {
    const int32_t m = p->multiplier[o], shift = p->shift[o];
    const int32_t z = p->output_offset, lo = p->act_min, hi = p->act_max;
    if (shift <= -2) {
        const int e1 = -shift - 1;
        const int32_t round_hi = (int32_t)(1u << (e1 - 1));
        out0[o] = (int8_t)lk_clamp(lk_requantize_e2(a0, m, round_hi, e1) + z, lo, hi);
        if (out1) out1[o] = (int8_t)lk_clamp(lk_requantize_e2(a1, m, round_hi, e1) + z, lo, hi);
    } else {
        lk_conv_output2_any(p, o, a0, a1, out0, out1);
    }
}
#endif

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

/* DSP path: im2col. For a pair of output pixels, the window each one sees (its taps, one group's
 * input channels) is copied into the scratch as int16 with the input offset added (SXTAB16), and
 * zeros where a tap falls outside the image: every pixel then has the same K = k_h * k_w * fic
 * values, border or not, and each value is unpacked once for all the group's output channels.
 * The dot products then take two pixels by two output channels, 16 MACs per step of 4 values in
 * 8 SMLADs, each weight word unpacked once for both pixels and each scratch word used for both
 * channels.
 *
 * The scratch layout follows SXTB16's: a weight word w0 w1 w2 w3 unpacks into (w0, w2) and
 * (w1, w3), so each group of 4 values of a pixel is stored as the two words (x0, x2), (x1, x3);
 * the pixels of a pair alternate group by group (16 bytes: pixel 0's two words, pixel 1's). */

/* The int16 slot of value i of pixel j (0 or 1) of a pair. */
static inline int32_t lk_col_slot(int32_t i, int32_t j) {
    return 8 * (i >> 2) + 4 * j + ((i & 1) << 1) + ((i & 2) >> 1);
}

/* Values i .. i + n - 1 of pixel j's window: src[0 .. n) plus the input offset, or zeros (src NULL).
 * Whole groups of 4 go a word at a time: one load, two SXTAB16, two stores. */
static void lk_col_fill(int16_t *col, int32_t j, int32_t i, const int8_t *src, int32_t n, int32_t offset) {
    for (; n > 0 && (i & 3); ++i, --n) col[lk_col_slot(i, j)] = (int16_t)(src ? *src++ + offset : 0);
    uint32_t *d = (uint32_t *)(void *)(col + lk_col_slot(i, j));
    if (src) {
        const uint32_t offset2 = lk_pack2(offset);
        for (; n >= 4; n -= 4, i += 4, src += 4, d += 4) {
            uint32_t v = lk_read4(src);
            d[0] = lk_sxtab16(offset2, v);
            d[1] = lk_sxtab16_ror8(offset2, v);
        }
    } else {
        for (; n >= 4; n -= 4, i += 4, d += 4) d[0] = d[1] = 0;
    }
    for (; n > 0; ++i, --n) col[lk_col_slot(i, j)] = (int16_t)(src ? *src++ + offset : 0);
}

/* One pixel's window (output pixel (y, x) of batch image in_b, group g) into slot j of the scratch:
 * row by row of the filter, the taps inside the image as runs of input (one run per row without
 * dilation or groups: the row's taps are adjacent in memory), zeros for the others. */
static void lk_im2col(const lk_conv_params *p, const int8_t *in_b, int32_t y, int32_t x, int32_t g, int32_t j,
                      int16_t *col) {
    const int32_t fic = p->filter_in_ch, in_y0 = y * p->stride_h - p->pad_top, in_x0 = x * p->stride_w - p->pad_left;
    const int32_t row_n = p->k_w * fic, offset = p->input_offset;
    const int contiguous = p->dilation_w == 1 && fic == p->in_ch;
    int32_t kx0 = 0, kx1 = p->k_w;
    if (in_x0 < 0 || in_x0 + (p->k_w - 1) * p->dilation_w >= p->in_w) {
        lk_taps_inside(in_x0, p->in_w, p->k_w, p->dilation_w, &kx0, &kx1);
    }
    for (int32_t ky = 0, i = 0; ky < p->k_h; ++ky, i += row_n) {
        const int32_t in_y = in_y0 + ky * p->dilation_h;
        if (in_y < 0 || in_y >= p->in_h || kx0 == kx1) {
            lk_col_fill(col, j, i, NULL, row_n, 0);
            continue;
        }
        /* tap kx0, the first inside the image */
        const int8_t *src = in_b + (in_y * p->in_w + in_x0 + kx0 * p->dilation_w) * p->in_ch + g * fic;
        if (kx0) lk_col_fill(col, j, i, NULL, kx0 * fic, 0);
        if (contiguous) {
            lk_col_fill(col, j, i + kx0 * fic, src, (kx1 - kx0) * fic, offset);
        } else {
            for (int32_t kx = kx0; kx < kx1; ++kx, src += p->dilation_w * p->in_ch) {
                lk_col_fill(col, j, i + kx * fic, src, fic, offset);
            }
        }
        if (kx1 < p->k_w) lk_col_fill(col, j, i + kx1 * fic, NULL, (p->k_w - kx1) * fic, 0);
    }
}

#if LK_CONV_POINTWISE
/* The windows of pixels (y0, x0) and (y1, x1) of a pointwise convolution: each is one input pixel's
 * channels, unpacked a word at a time as lk_col_fill does (the pair's slots alternate every 4). */
__attribute__((noinline)) static void lk_col_pointwise(const lk_conv_params *p, const int8_t *in_b, int32_t y0,
                                                       int32_t x0, int32_t y1, int32_t x1, int16_t *col) {
    const int32_t sx = p->stride_w * p->in_ch, sy = p->stride_h * p->in_w * p->in_ch, n = p->in_ch;
    const int8_t *s0 = in_b + y0 * sy + x0 * sx, *s1 = in_b + y1 * sy + x1 * sx;
    const uint32_t offset2 = lk_pack2(p->input_offset);
    uint32_t *d = (uint32_t *)__builtin_assume_aligned(col, 8);
    for (int32_t n4 = n >> 2; n4 > 0; --n4, s0 += 4, s1 += 4, d += 4) {
        const uint32_t v0 = lk_read4(s0), v1 = lk_read4(s1);
        d[0] = lk_sxtab16(offset2, v0);
        d[1] = lk_sxtab16_ror8(offset2, v0);
        d[2] = lk_sxtab16(offset2, v1);
        d[3] = lk_sxtab16_ror8(offset2, v1);
    }
    if (n & 3) {
        lk_col_fill(col, 0, n & ~3, s0, n & 3, p->input_offset);
        lk_col_fill(col, 1, n & ~3, s1, n & 3, p->input_offset);
    }
}
#else
#define lk_col_pointwise(p, in_b, y0, x0, y1, x1, col) ((void)0) /* never reached: the model has no 1x1 */
#endif

/* Output channels o0 .. o1 - 1 (one group's) of the pixel pair in the scratch (K values each),
 * two channels at a time: the dot products with their weight rows, then requantized into out0
 * and out1 (out1 NULL: no second pixel). A function of its own, so that its inner loop has the
 * registers to itself. */
__attribute__((noinline)) static void lk_conv_channels(const lk_conv_params *p, const int16_t *col,
                                                       const int8_t *filter, const int32_t *bias, int32_t k,
                                                       int32_t o0, int32_t o1, int8_t *out0, int8_t *out1) {
    for (int32_t o = o0; o < o1; o += 2) {
        const int two_ch = o + 1 < o1;
        const int8_t *w0 = filter + o * k, *w1 = two_ch ? w0 + k : w0;
        int32_t a00 = bias ? bias[o] : 0, a01 = bias && two_ch ? bias[o + 1] : 0;
        int32_t a10 = a00, a11 = a01;
        const uint32_t *c = (const uint32_t *)__builtin_assume_aligned(col, 8);
        for (int32_t n4 = k >> 2; n4 > 0; --n4) {
            const uint32_t x0a = c[0], x0b = c[1], x1a = c[2], x1b = c[3];
            c += 4;
            uint32_t wv = lk_read4(w0), wa = lk_sxtb16(wv), wb = lk_sxtb16_ror8(wv);
            w0 += 4;
            a00 = lk_smlad(x0a, wa, a00);
            a00 = lk_smlad(x0b, wb, a00);
            a10 = lk_smlad(x1a, wa, a10);
            a10 = lk_smlad(x1b, wb, a10);
            wv = lk_read4(w1), wa = lk_sxtb16(wv), wb = lk_sxtb16_ror8(wv);
            w1 += 4;
            a01 = lk_smlad(x0a, wa, a01);
            a01 = lk_smlad(x0b, wb, a01);
            a11 = lk_smlad(x1a, wa, a11);
            a11 = lk_smlad(x1b, wb, a11);
        }
        const int16_t *t = (const int16_t *)c; /* the last, partial group: slots 0 2 1 of each pixel */
        for (int32_t i = 0; i < (k & 3); ++i) {
            const int32_t s = ((i & 1) << 1) + ((i & 2) >> 1);
            a00 += t[s] * w0[i], a01 += t[s] * w1[i];
            a10 += t[4 + s] * w0[i], a11 += t[4 + s] * w1[i];
        }
        lk_conv_output2(p, o, a00, a10, out0, out1);
        if (two_ch) lk_conv_output2(p, o + 1, a01, a11, out0, out1);
    }
}

void lk_conv_s8(const lk_conv_params *params, const int8_t *input, const int8_t *filter, const int32_t *bias,
                int8_t *output, int16_t *scratch) {
    const lk_conv_params copy = *params, *p = &copy;
    const int32_t groups = p->in_ch / p->filter_in_ch, out_ch_per_group = p->out_ch / groups;
    const int32_t k = p->k_h * p->k_w * p->filter_in_ch; /* one output channel's filter */
    const int32_t pixels = p->out_h * p->out_w, image = p->in_h * p->in_w * p->in_ch;
    /* A pointwise (1x1) convolution's window is one input pixel's channels, never padded: it is
     * unpacked straight from the input, without lk_im2col's taps and borders. */
    const int pointwise = LK_CONV_POINTWISE && p->k_h == 1 && p->k_w == 1 && groups == 1 && p->pad_top == 0 &&
                          p->pad_left == 0;
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * image;
        int32_t y0 = 0, x0 = 0; /* pixel px */
        for (int32_t px = 0; px < pixels; px += 2) {
            const int two_px = px + 1 < pixels; /* else the pixel is paired with itself */
            int32_t y1 = y0, x1 = x0 + 1;
            if (x1 == p->out_w) x1 = 0, ++y1;
            if (!two_px) y1 = y0, x1 = x0;
            int8_t *out0 = output + (b * pixels + px) * p->out_ch;
            for (int32_t g = 0; g < groups; ++g) {
                if (pointwise) {
                    lk_col_pointwise(p, in_b, y0, x0, y1, x1, scratch);
                } else {
                    lk_im2col(p, in_b, y0, x0, g, 0, scratch);
                    lk_im2col(p, in_b, y1, x1, g, 1, scratch);
                }
                lk_conv_channels(p, scratch, filter, bias, k, g * out_ch_per_group, (g + 1) * out_ch_per_group,
                                 out0, two_px ? out0 + p->out_ch : NULL);
            }
            y0 = y1, x0 = x1 + 1;
            if (x0 == p->out_w) x0 = 0, ++y0;
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

/* Output channel o of one pixel (lk_conv_output2 for one accumulator). */
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
                for (int32_t q = 0; q < quads; ++q) {
                    const int32_t o = 4 * q;
                    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                    if (bias) a0 = bias[o], a1 = bias[o + 1], a2 = bias[o + 2], a3 = bias[o + 3];
                    const uint32_t *w = wq + 2 * q * taps;
                    const int8_t *xq = in_px + o;
                    if (inside) {
                        const int32_t *off = tap_offset;
                        for (int32_t t = taps; t > 0; --t, w += 2) LK_DW_TAP4(xq + *off++, w);
                    } else {
                        for (int32_t ky = ky0; ky < ky1; ++ky) {
                            for (int32_t t = ky * p->k_w + kx0; t < ky * p->k_w + kx1; ++t) {
                                LK_DW_TAP4(xq + tap_offset[t], w + 2 * t);
                            }
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
