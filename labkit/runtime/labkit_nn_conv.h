/*
 * labkit-nn runtime, convolution family: CONV_2D, DEPTHWISE_CONV_2D, MAX_POOL_2D,
 * AVERAGE_POOL_2D and MEAN, on int8 NHWC tensors.
 *
 * Conventions shared by every kernel here (they are TFLite's):
 *   - tensors are NHWC: element (b, y, x, c) of an H x W x C image is at ((b*H + y)*W + x)*C + c;
 *   - a CONV_2D filter is [out_ch][k_h][k_w][in_ch / groups], a DEPTHWISE_CONV_2D filter is
 *     [k_h][k_w][in_ch * depth_multiplier];
 *   - output pixel (y, x) looks at input rows y*stride_h - pad_top + ky*dilation_h (and the same
 *     for columns); taps that fall outside the image are skipped (zero padding in real numbers);
 *   - weights are symmetric int8 (zero point 0) with one scale per output channel (a per-tensor
 *     scale is repeated), so each output channel has its own requantization multiplier and shift.
 *
 * Requantization: both references rescale the int32 accumulator of these ops with gemmlowp's
 * two roundings (lk_multiply_by_quantized_multiplier; measured with labkit's pinned versions),
 * so the two LABKIT_NN_REFERENCE builds differ only if the generated multiplier tables do.
 */
#ifndef LABKIT_NN_CONV_H
#define LABKIT_NN_CONV_H

#include "labkit_nn.h"

/* CONV_2D's DSP pointwise (1x1) path is compiled in unless the generated labkit_nn_config.h says
 * the model has no 1x1 convolution (a runtime built on its own keeps it). */
#ifndef LK_CONV_POINTWISE
#define LK_CONV_POINTWISE 1
#endif
/* Its path for small filters (out_ch * K4 <= 256), likewise. */
#ifndef LK_CONV_SMALL
#define LK_CONV_SMALL 1
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* CONV_2D: out[b][y][x][o] = act(requant(bias[o] + sum over ky, kx, i of
 *          (in[b][y*sh - pad_top + ky*dh][x*sw - pad_left + kx*dw][g*filter_in_ch + i] + input_offset)
 *          * filter[o][ky][kx][i]))   where g = o / (out_ch / groups) */
typedef struct {
    int32_t batches;
    int32_t in_h, in_w, in_ch;
    int32_t out_h, out_w, out_ch;
    int32_t k_h, k_w, filter_in_ch; /* filter_in_ch = in_ch / groups (in_ch unless grouped) */
    int32_t stride_h, stride_w;
    int32_t dilation_h, dilation_w;
    int32_t pad_top, pad_left;
    int32_t input_offset;      /* minus the input zero point */
    int32_t output_offset;     /* the output zero point */
    int32_t act_min, act_max;  /* fused activation, as an int8 range */
    const int32_t *multiplier; /* one per output channel */
    const int8_t *shift;
} lk_conv_params;

/* Bytes of scratch lk_conv_s8 needs for a k_h x k_w x filter_in_ch filter: on a core with the DSP
 * extension, the windows of four output pixels as int16, one window as bytes (K4 = K rounded up to
 * a multiple of 4, K = k_h * k_w * filter_in_ch: 9 * K4 bytes) and each output channel's bias and
 * requantization constants (4 int32); for a 1x1 filter of K4 <= 8 values, 16 pixels' worth (32 * K4
 * bytes) instead of the 9 * K4; for a small filter (LK_CONV_SMALL_FILTER) at least (2 * out_ch + 6) *
 * K4, its weights unpacked and one window. The plain C kernel does not use
 * it. 8-byte aligned. The DSP path also reads each weight row as K4 bytes: when K is not a multiple
 * of 4, the filter array needs K4 - K readable bytes after its last row (the generator adds them). */
#define LK_CONV_K4(k_h, k_w, filter_in_ch) (((k_h) * (k_w) * (filter_in_ch) + 3) / 4 * 4)
#define LK_CONV_COL_BYTES_4PX(taps, k4) (((taps) == 1 && (k4) <= 8 ? 32 : 9) * (k4))
/* A filter lk_conv_s8's small-filter path takes: out_ch a multiple of 4, out_ch * K4 <= 256, filter
 * rows of 4 bytes or more (row_n = k_w * filter_in_ch), no dilation across a row, one group. */
#define LK_CONV_SMALL_FILTER(k4, out_ch, row_n, dilation_w, groups) \
    ((out_ch) % 4 == 0 && (out_ch) * (k4) <= 256 && (row_n) >= 4 && (dilation_w) == 1 && (groups) == 1)
#define LK_CONV_COL_BYTES(taps, k4, out_ch, small)                                                   \
    ((small) && (2 * (out_ch) + 6) * (k4) > LK_CONV_COL_BYTES_4PX(taps, k4) ? (2 * (out_ch) + 6) * (k4) \
                                                                           : LK_CONV_COL_BYTES_4PX(taps, k4))
/* (enough for any dilation and groups: the generator plans the exact figure) */
#define LK_CONV_SCRATCH_BYTES(k_h, k_w, filter_in_ch, out_ch)                                              \
    (LK_CONV_COL_BYTES((k_h) * (k_w), LK_CONV_K4(k_h, k_w, filter_in_ch), out_ch,                         \
                       LK_CONV_SMALL_FILTER(LK_CONV_K4(k_h, k_w, filter_in_ch), out_ch, (k_w) * (filter_in_ch), 1, 1)) + \
     16 * (out_ch))

void lk_conv_s8(const lk_conv_params *p, const int8_t *input, const int8_t *filter, const int32_t *bias,
                int8_t *output, int16_t *scratch);

/* DEPTHWISE_CONV_2D: each input channel c is convolved on its own with depth_multiplier
 * filters; output channel o = c * depth_multiplier + m. */
typedef struct {
    int32_t batches;
    int32_t in_h, in_w, in_ch;
    int32_t out_h, out_w, out_ch; /* out_ch = in_ch * depth_multiplier */
    int32_t k_h, k_w, depth_multiplier;
    int32_t stride_h, stride_w;
    int32_t dilation_h, dilation_w;
    int32_t pad_top, pad_left;
    int32_t input_offset, output_offset;
    int32_t act_min, act_max;
    const int32_t *multiplier; /* one per output channel */
    const int8_t *shift;
} lk_depthwise_conv_params;

/* Bytes of scratch lk_depthwise_conv_s8 needs: on a core with the DSP extension and with a depth
 * multiplier of 1, each tap's input offset (int32), the weights of every 4 channels unpacked
 * (int16) and each channel's requantization constants (3 int32), 0 otherwise; the plain C kernel
 * does not use it. 8-byte aligned. */
#define LK_DEPTHWISE_SCRATCH_BYTES(k_h, k_w, out_ch, depth_multiplier)                                     \
    ((depth_multiplier) == 1 && (out_ch) >= 4                                                            \
         ? 4 * (((k_h) * (k_w) + 1) / 2 * 2) + 8 * ((out_ch) / 4) * (k_h) * (k_w) + 12 * ((out_ch) / 4 * 4) \
         : 0)

void lk_depthwise_conv_s8(const lk_depthwise_conv_params *p, const int8_t *input, const int8_t *filter,
                          const int32_t *bias, int8_t *output, int16_t *scratch);

/* MAX_POOL_2D / AVERAGE_POOL_2D over k_h x k_w windows of each channel. The output has the
 * input's scale and zero point, so no requantization: only the fused activation's clamp.
 * The average divides by the number of window taps inside the image, rounding half away
 * from zero. */
typedef struct {
    int32_t batches;
    int32_t in_h, in_w, channels;
    int32_t out_h, out_w;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w;
    int32_t pad_top, pad_left;
    int32_t act_min, act_max;
} lk_pool_params;

void lk_max_pool_s8(const lk_pool_params *p, const int8_t *input, int8_t *output);
void lk_average_pool_s8(const lk_pool_params *p, const int8_t *input, int8_t *output);

/* MEAN over a run of adjacent axes: the input viewed as [outer][reduce][inner] becomes
 * [outer][inner] (GlobalAveragePooling2D: outer = batch, reduce = H*W, inner = C).
 * out = requant(sum - input_zero_point * reduce) + output_zero_point, with
 * multiplier * 2^shift = input_scale / (output_scale * reduce) folded at generation time. */
typedef struct {
    int32_t outer, reduce, inner;
    int32_t input_zero_point, output_zero_point;
    int32_t multiplier, shift;
} lk_mean_params;

void lk_mean_s8(const lk_mean_params *p, const int8_t *input, int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* LABKIT_NN_CONV_H */
