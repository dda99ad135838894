/* labkit-nn runtime, convolution family. See labkit_nn_conv.h for what each kernel computes. */
#include "labkit_nn_conv.h"

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

/* The kernels below work on a local copy of their parameters: as far as the compiler knows,
 * the int8_t stores to `output` could change *params (char-sized types may alias anything),
 * and it would re-read every field after each store. */

/* ---- CONV_2D ---------------------------------------------------------------- */

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

/* ---- DEPTHWISE_CONV_2D -------------------------------------------------------- */

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
