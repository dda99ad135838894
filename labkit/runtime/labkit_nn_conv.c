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
#endif

/* The kernels below work on a local copy of their parameters: as far as the compiler knows,
 * the int8_t stores to `output` could change *params (char-sized types may alias anything),
 * and it would re-read every field after each store. */

/* ---- CONV_2D ---------------------------------------------------------------- */

#if !LK_DSP /* the plain C kernel: the reference, and the host build; the DSP path is below */

void lk_conv_s8(const lk_conv_params *params, const int8_t *input, const int8_t *filter, const int32_t *bias,
                int8_t *output) {
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

/* acc[pixel][channel] += sum over n of (x_pixel[i] + offset) * w_channel[i], for two pixels and two
 * output channels at once: each input word is unpacked once for two channels, each weight word
 * once for two pixels; 16 MACs in 8 SMLADs per step of 4. */
#define LK_DOT_2X2(x0, x1, w0, w1, n)                                                             \
    do {                                                                                          \
        const int8_t *xp0_ = (x0), *xp1_ = (x1), *wp0_ = (w0), *wp1_ = (w1);                      \
        const int8_t *end_ = xp0_ + ((n) & ~3);                                                   \
        while (xp0_ != end_) {                                                                    \
            uint32_t wv_ = lk_read4(wp0_), wa0_ = lk_sxtb16(wv_), wb0_ = lk_sxtb16_ror8(wv_);      \
            wv_ = lk_read4(wp1_);                                                                 \
            uint32_t wa1_ = lk_sxtb16(wv_), wb1_ = lk_sxtb16_ror8(wv_);                            \
            uint32_t xv_ = lk_read4(xp0_), xa_ = lk_sxtab16(offset2, xv_);                         \
            uint32_t xb_ = lk_sxtab16_ror8(offset2, xv_);                                         \
            a00 = lk_smlad(xa_, wa0_, a00);                                                        \
            a00 = lk_smlad(xb_, wb0_, a00);                                                        \
            a01 = lk_smlad(xa_, wa1_, a01);                                                        \
            a01 = lk_smlad(xb_, wb1_, a01);                                                        \
            xv_ = lk_read4(xp1_), xa_ = lk_sxtab16(offset2, xv_), xb_ = lk_sxtab16_ror8(offset2, xv_); \
            a10 = lk_smlad(xa_, wa0_, a10);                                                        \
            a10 = lk_smlad(xb_, wb0_, a10);                                                        \
            a11 = lk_smlad(xa_, wa1_, a11);                                                        \
            a11 = lk_smlad(xb_, wb1_, a11);                                                        \
            xp0_ += 4, xp1_ += 4, wp0_ += 4, wp1_ += 4;                                           \
        }                                                                                         \
        for (int32_t i_ = 0; i_ < ((n) & 3); ++i_) {                                              \
            int32_t v0_ = xp0_[i_] + p->input_offset, v1_ = xp1_[i_] + p->input_offset;           \
            a00 += v0_ * wp0_[i_], a01 += v0_ * wp1_[i_];                                         \
            a10 += v1_ * wp0_[i_], a11 += v1_ * wp1_[i_];                                         \
        }                                                                                         \
    } while (0)

/* acc[2 * pixel + channel] += sum over 4 * n4 (n4 > 0) of x_pixel[i] * w_channel[i], no offset: the
 * 1x1 convolution folds it into the biases. A function of its own, so that its loop has the
 * registers to itself (inlined, GCC spilled 10 values per step; here 4). */
__attribute__((noinline)) static void lk_dot_2x2(const int8_t *x0, const int8_t *x1, const int8_t *w0,
                                                 const int8_t *w1, int32_t n4, int32_t *acc) {
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    do {
        uint32_t wv = lk_read4(w0), wa0 = lk_sxtb16(wv), wb0 = lk_sxtb16_ror8(wv);
        wv = lk_read4(w1);
        uint32_t wa1 = lk_sxtb16(wv), wb1 = lk_sxtb16_ror8(wv);
        uint32_t xv = lk_read4(x0), xa = lk_sxtb16(xv), xb = lk_sxtb16_ror8(xv);
        a00 = lk_smlad(xa, wa0, a00);
        a00 = lk_smlad(xb, wb0, a00);
        a01 = lk_smlad(xa, wa1, a01);
        a01 = lk_smlad(xb, wb1, a01);
        xv = lk_read4(x1), xa = lk_sxtb16(xv), xb = lk_sxtb16_ror8(xv);
        a10 = lk_smlad(xa, wa0, a10);
        a10 = lk_smlad(xb, wb0, a10);
        a11 = lk_smlad(xa, wa1, a11);
        a11 = lk_smlad(xb, wb1, a11);
        x0 += 4, x1 += 4, w0 += 4, w1 += 4;
    } while (--n4);
    acc[0] = a00, acc[1] = a01, acc[2] = a10, acc[3] = a11;
}

/* CONV_2D 1x1 without padding or groups: a matrix product, output channels by pixels, two by
 * two. With no padding every pixel sees every weight, so the input offset goes into the bias
 * once per channel: bias + offset * sum(w), and the inner loop multiplies raw int8 values. */
static void lk_conv_1x1_dsp(const lk_conv_params *p, const int8_t *input, const int8_t *filter, const int32_t *bias,
                            int8_t *output) {
    const int32_t k = p->in_ch, n4 = k >> 2, px_step = p->stride_w * k;
    for (int32_t o = 0; o < p->out_ch; o += 2) {
        const int two_ch = o + 1 < p->out_ch;
        const int8_t *w0 = filter + o * k, *w1 = two_ch ? w0 + k : w0;
        int32_t sum0 = 0, sum1 = 0;
        for (int32_t i = 0; i < k; ++i) sum0 += w0[i], sum1 += w1[i];
        const int32_t b0 = (bias ? bias[o] : 0) + p->input_offset * sum0;
        const int32_t b1 = (bias && two_ch ? bias[o + 1] : 0) + p->input_offset * sum1;
        const int32_t m0 = p->multiplier[o], m1 = p->multiplier[two_ch ? o + 1 : o];
        const int s0 = p->shift[o], s1 = p->shift[two_ch ? o + 1 : o];
        const int32_t z = p->output_offset, lo = p->act_min, hi = p->act_max;
        for (int32_t b = 0; b < p->batches; ++b) {
            for (int32_t y = 0; y < p->out_h; ++y) {
                const int8_t *in_row = input + ((b * p->in_h + y * p->stride_h) * p->in_w) * k;
                int8_t *out_row = output + (b * p->out_h + y) * p->out_w * p->out_ch + o;
                for (int32_t x = 0; x < p->out_w; x += 2) {
                    const int two_px = x + 1 < p->out_w;
                    const int8_t *x0 = in_row + x * px_step, *x1 = two_px ? x0 + px_step : x0;
                    int32_t acc[4] = {b0, b1, b0, b1};
                    if (n4) lk_dot_2x2(x0, x1, w0, w1, n4, acc);
                    for (int32_t i = n4 * 4; i < k; ++i) {
                        acc[0] += x0[i] * w0[i], acc[1] += x0[i] * w1[i];
                        acc[2] += x1[i] * w0[i], acc[3] += x1[i] * w1[i];
                    }
                    int8_t *out0 = out_row + x * p->out_ch, *out1 = out0 + p->out_ch;
                    out0[0] = (int8_t)lk_clamp(lk_requantize(acc[0], m0, s0) + z, lo, hi);
                    if (two_px) out1[0] = (int8_t)lk_clamp(lk_requantize(acc[2], m0, s0) + z, lo, hi);
                    if (two_ch) {
                        out0[1] = (int8_t)lk_clamp(lk_requantize(acc[1], m1, s1) + z, lo, hi);
                        if (two_px) out1[1] = (int8_t)lk_clamp(lk_requantize(acc[3], m1, s1) + z, lo, hi);
                    }
                }
            }
        }
    }
}

/* DSP path. Output pixels go in pairs along a row when both see the same filter taps (all but
 * the border columns of a SAME convolution), output channels in pairs of one group; a pixel or a
 * channel without a partner is paired with itself and its second result dropped. Without
 * dilation along x and without groups the taps of one filter row are one contiguous run of
 * input and of weights. */
void lk_conv_s8(const lk_conv_params *params, const int8_t *input, const int8_t *filter, const int32_t *bias,
                int8_t *output) {
    const lk_conv_params copy = *params, *p = &copy;
    const int32_t fic = p->filter_in_ch, in_ch = p->in_ch;
    const int32_t out_ch_per_group = p->out_ch / (in_ch / fic);
    const int32_t filter_size = p->k_h * p->k_w * fic;
    const int contiguous = p->dilation_w == 1 && fic == in_ch;
    const uint32_t offset2 = lk_pack2(p->input_offset);
    if (p->k_h == 1 && p->k_w == 1 && fic == in_ch && p->pad_top == 0 && p->pad_left == 0) {
        lk_conv_1x1_dsp(p, input, filter, bias, output);
        return;
    }
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->in_h * p->in_w * in_ch;
        for (int32_t y = 0; y < p->out_h; ++y) {
            const int32_t in_y0 = y * p->stride_h - p->pad_top;
            int32_t ky0, ky1;
            lk_taps_inside(in_y0, p->in_h, p->k_h, p->dilation_h, &ky0, &ky1);
            for (int32_t x = 0; x < p->out_w;) {
                const int32_t in_x0 = x * p->stride_w - p->pad_left;
                int32_t kx0, kx1, kx0b = -1, kx1b = -1;
                lk_taps_inside(in_x0, p->in_w, p->k_w, p->dilation_w, &kx0, &kx1);
                if (x + 1 < p->out_w) lk_taps_inside(in_x0 + p->stride_w, p->in_w, p->k_w, p->dilation_w, &kx0b, &kx1b);
                const int two_px = kx0b == kx0 && kx1b == kx1;
                const int32_t px1 = two_px ? p->stride_w * in_ch : 0; /* the second pixel's input, from the first's */
                int8_t *out0 = output + ((b * p->out_h + y) * p->out_w + x) * p->out_ch;
                int8_t *out1 = out0 + p->out_ch;
                for (int32_t o = 0; o < p->out_ch;) {
                    const int32_t group = out_ch_per_group == p->out_ch ? 0 : o / out_ch_per_group;
                    const int two_ch = o + 1 < p->out_ch && (o + 1) / out_ch_per_group == group;
                    const int8_t *w0 = filter + o * filter_size, *w1 = two_ch ? w0 + filter_size : w0;
                    int32_t a00 = bias ? bias[o] : 0, a01 = bias && two_ch ? bias[o + 1] : 0;
                    int32_t a10 = a00, a11 = a01;
                    for (int32_t ky = ky0; ky < ky1; ++ky) {
                        const int32_t row = ((in_y0 + ky * p->dilation_h) * p->in_w + in_x0) * in_ch + group * fic;
                        const int8_t *wr0 = w0 + ky * p->k_w * fic, *wr1 = w1 + ky * p->k_w * fic;
                        if (contiguous) {
                            const int8_t *xr = in_b + row + kx0 * in_ch;
                            LK_DOT_2X2(xr, xr + px1, wr0 + kx0 * fic, wr1 + kx0 * fic, (kx1 - kx0) * fic);
                        } else {
                            for (int32_t kx = kx0; kx < kx1; ++kx) {
                                const int8_t *xr = in_b + row + kx * p->dilation_w * in_ch;
                                LK_DOT_2X2(xr, xr + px1, wr0 + kx * fic, wr1 + kx * fic, fic);
                            }
                        }
                    }
                    out0[o] = lk_conv_output(p, a00, o);
                    if (two_px) out1[o] = lk_conv_output(p, a10, o);
                    if (two_ch) {
                        out0[o + 1] = lk_conv_output(p, a01, o + 1);
                        if (two_px) out1[o + 1] = lk_conv_output(p, a11, o + 1);
                    }
                    o += two_ch ? 2 : 1;
                }
                x += two_px ? 2 : 1;
            }
        }
    }
}

#endif /* LK_DSP */

/* ---- DEPTHWISE_CONV_2D -------------------------------------------------------- */

#if !LK_DSP /* the plain C kernel: the reference, and the host build; the DSP path is below */

void lk_depthwise_conv_s8(const lk_depthwise_conv_params *params, const int8_t *input, const int8_t *filter,
                          const int32_t *bias, int8_t *output) {
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

/* One filter tap for 4 adjacent channels: the input word unpacked with the offset added, the
 * weight word unpacked alike, and 4 separate products (a depthwise tap sums over no channel):
 * SMLABB / SMLATT multiply the bottom / top halves. */
#define LK_DW_TAP4(xp, wp)                                                                        \
    do {                                                                                          \
        uint32_t xv_ = lk_read4(xp), wv_ = lk_read4(wp);                                          \
        uint32_t xa_ = lk_sxtab16(offset2, xv_), xb_ = lk_sxtab16_ror8(offset2, xv_);              \
        uint32_t wa_ = lk_sxtb16(wv_), wb_ = lk_sxtb16_ror8(wv_);                                  \
        a0 = lk_smlabb(xa_, wa_, a0);                                                              \
        a2 = lk_smlatt(xa_, wa_, a2);                                                              \
        a1 = lk_smlabb(xb_, wb_, a1);                                                              \
        a3 = lk_smlatt(xb_, wb_, a3);                                                              \
    } while (0)

/* DSP path: with a depth multiplier of 1, 4 channels at a time, the taps walked by pointer
 * (unrolling a 3x3 window's 9 taps was measured slower: GCC spills their addresses). Channels left over (and every channel for a depth multiplier
 * above 1) go one by one as in the plain kernel. */
void lk_depthwise_conv_s8(const lk_depthwise_conv_params *params, const int8_t *input, const int8_t *filter,
                          const int32_t *bias, int8_t *output) {
    const lk_depthwise_conv_params copy = *params, *p = &copy;
    const int32_t ch = p->in_ch, out_ch = p->out_ch;
    const uint32_t offset2 = lk_pack2(p->input_offset);
    const int32_t row = p->in_w * ch; /* one input row */
    const int32_t y_step = p->dilation_h * row, x_step = p->dilation_w * ch, w_row = p->k_w * out_ch;
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
                int8_t *out = output + ((b * p->out_h + y) * p->out_w + x) * out_ch;
                const int8_t *in_px = in_b + in_y0 * row + in_x0 * ch; /* tap (0, 0), maybe outside */
                int32_t o = 0;
                if (p->depth_multiplier == 1) {
                    for (; o + 4 <= out_ch; o += 4) {
                        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                        if (bias) a0 = bias[o], a1 = bias[o + 1], a2 = bias[o + 2], a3 = bias[o + 3];
                        const int8_t *xr = in_px + ky0 * y_step + kx0 * x_step + o;
                        const int8_t *wr = filter + (ky0 * p->k_w + kx0) * out_ch + o;
                        for (int32_t ky = ky0; ky < ky1; ++ky) {
                            const int8_t *xp = xr, *wp = wr;
                            for (int32_t kx = kx1 - kx0; kx > 0; --kx) {
                                LK_DW_TAP4(xp, wp);
                                xp += x_step, wp += out_ch;
                            }
                            xr += y_step, wr += w_row;
                        }
                        out[o] = lk_conv_output(p, a0, o);
                        out[o + 1] = lk_conv_output(p, a1, o + 1);
                        out[o + 2] = lk_conv_output(p, a2, o + 2);
                        out[o + 3] = lk_conv_output(p, a3, o + 3);
                    }
                }
                for (; o < out_ch; ++o) {
                    const int32_t c = o / p->depth_multiplier; /* the input channel o filters */
                    int32_t acc = bias ? bias[o] : 0;
                    for (int32_t ky = ky0; ky < ky1; ++ky) {
                        for (int32_t kx = kx0; kx < kx1; ++kx) {
                            int32_t v = in_px[ky * p->dilation_h * row + kx * p->dilation_w * ch + c];
                            acc += (v + p->input_offset) * filter[(ky * p->k_w + kx) * out_ch + o];
                        }
                    }
                    out[o] = lk_conv_output(p, acc, o);
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
