/*
 * labkit-nn runtime: the int8 kernels that labkit-generated models call.
 *
 * Plain C99, no malloc, no library beyond libc/libm. Each kernel is written out
 * plainly, with the integer arithmetic the TensorFlow Lite reference kernels use, so
 * that its outputs are bit-identical to a reference interpreter's.
 *
 * Two references exist and they differ in the last bit (measured with labkit's pinned
 * versions), so the arithmetic to reproduce is chosen at compile time:
 *   LABKIT_NN_REF_TFLM    TensorFlow Lite Micro (the default): gemmlowp fixed point throughout.
 *   LABKIT_NN_REF_LITERT  TensorFlow Lite / LiteRT: single-rounding FULLY_CONNECTED, softmax,
 *                         tanh and logistic from float tables, RELU6 rescaled, and the LSTM's
 *                         own variant (see labkit_nn_lstm.h).
 * labkit_nn_config.h (written by the code generator) sets LABKIT_NN_REFERENCE;
 * a -DLABKIT_NN_REFERENCE=... on the compiler's command line overrides it.
 */
#ifndef LABKIT_NN_H
#define LABKIT_NN_H

#include <stdint.h>
#include <stddef.h>

#include "labkit_nn_config.h"

#define LABKIT_NN_REF_LITERT 1
#define LABKIT_NN_REF_TFLM 2
#ifndef LABKIT_NN_REFERENCE
#define LABKIT_NN_REFERENCE LABKIT_NN_REF_TFLM
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- fixed-point helpers ------------------------------------------------ */

/* (a * b * 2) / 2^32, rounded to nearest; the one overflow case saturates. */
static inline int32_t lk_sat_rounding_doubling_high_mul(int32_t a, int32_t b) {
    if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
    int64_t ab = (int64_t)a * (int64_t)b;
    int64_t nudge = ab >= 0 ? (1LL << 30) : (1 - (1LL << 30));
    return (int32_t)((ab + nudge) / (1LL << 31)); /* C division truncates, as gemmlowp's does */
}

/* x / 2^exponent, rounded to nearest with ties away from zero. */
static inline int32_t lk_rounding_divide_by_pot(int32_t x, int exponent) {
    int32_t mask = (int32_t)((1LL << exponent) - 1);
    int32_t remainder = x & mask;
    int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* x * multiplier * 2^shift, where multiplier is a Q0.31 number in [0.5, 1): how an int32
 * accumulator is rescaled to an output's int8 scale. gemmlowp's two roundings (the doubled
 * high product, then the shift), as both references do for every op but one. */
static inline int32_t lk_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int shift) {
    int left_shift = shift > 0 ? shift : 0;
    int right_shift = shift > 0 ? 0 : -shift;
    return lk_rounding_divide_by_pot(
        lk_sat_rounding_doubling_high_mul((int32_t)((uint32_t)x << left_shift), multiplier), right_shift);
}

/* The one exception, measured: LiteRT's FULLY_CONNECTED rescales with a single rounding of
 * the 64-bit product; TFLite Micro's with the two above. */
static inline int32_t lk_fully_connected_requantize(int32_t x, int32_t multiplier, int shift) {
#if LABKIT_NN_REFERENCE == LABKIT_NN_REF_LITERT
    int total_shift = 31 - shift;
    int64_t round = (int64_t)1 << (total_shift - 1);
    return (int32_t)(((int64_t)x * multiplier + round) >> total_shift);
#else
    return lk_multiply_by_quantized_multiplier(x, multiplier, shift);
#endif
}

static inline int32_t lk_clamp(int32_t x, int32_t lo, int32_t hi) {
    return x < lo ? lo : (x > hi ? hi : x);
}

/* ---- kernels -------------------------------------------------------------- */

/* FULLY_CONNECTED: out[b][o] = act(requant(bias[o] + sum_i (in[b][i] + input_offset) * w[o][i])) */
typedef struct {
    int32_t batches, in_features, out_features;
    int32_t input_offset;      /* minus the input zero point */
    int32_t output_offset;     /* the output zero point */
    int32_t act_min, act_max;  /* fused activation, as an int8 range */
    const int32_t *multiplier; /* one per output feature, or one for all */
    const int8_t *shift;
    int32_t per_channel;
} lk_fully_connected_params;

void lk_fully_connected_s8(const lk_fully_connected_params *p, const int8_t *input, const int8_t *weights,
                           const int32_t *bias, int8_t *output);

/* SOFTMAX over the last axis. */
typedef struct {
    int32_t rows, depth;
    /* LiteRT: exp_table[d] = expf(-input_scale * beta * d) for d = max - x in 0..255 */
    const float *exp_table;
    float output_scale;
    int32_t output_zero_point;
    /* TFLM: beta * input_scale as a fixed-point multiplier, and the smallest difference kept */
    int32_t input_multiplier, input_left_shift, diff_min;
} lk_softmax_params;

void lk_softmax_s8(const lk_softmax_params *p, const int8_t *input, int8_t *output);

#include "labkit_nn_conv.h"
#include "labkit_nn_elementwise.h"
#include "labkit_nn_lstm.h"

#ifdef __cplusplus
}
#endif

#endif /* LABKIT_NN_H */
