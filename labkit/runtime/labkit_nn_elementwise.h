/*
 * labkit-nn elementwise and data-movement kernels: ADD, MUL, table look-ups (TANH,
 * LOGISTIC), RELU/RELU6, QUANTIZE/DEQUANTIZE, and one strided copy that serves
 * CONCATENATION, PAD, SLICE and STRIDED_SLICE.
 */
#ifndef LABKIT_NN_ELEMENTWISE_H
#define LABKIT_NN_ELEMENTWISE_H

#include "labkit_nn.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LK_MAX_DIMS 5

/* Walks an index over `dims` (outermost first); each operand moves by its own stride per
 * dimension (a stride of 0 repeats the operand along that dimension: broadcasting). */
typedef struct {
    int32_t dims[LK_MAX_DIMS];
    int32_t stride_a[LK_MAX_DIMS];
    int32_t stride_b[LK_MAX_DIMS];
    int32_t stride_out[LK_MAX_DIMS];
} lk_walk;

/* ADD: out = act(requant(requant(a) + requant(b))), TFLite's 20-bit-headroom scheme. */
typedef struct {
    lk_walk walk;
    int32_t a_offset, b_offset, output_offset; /* minus the inputs' zero points; output zero point */
    int32_t left_shift;
    int32_t a_multiplier, a_shift, b_multiplier, b_shift, output_multiplier, output_shift;
    int32_t act_min, act_max;
} lk_add_params;

void lk_add_s8(const lk_add_params *p, const int8_t *a, const int8_t *b, int8_t *out);

/* MUL: out = act(requant((a + a_offset) * (b + b_offset))). */
typedef struct {
    lk_walk walk;
    int32_t a_offset, b_offset, output_offset;
    int32_t output_multiplier, output_shift;
    int32_t act_min, act_max;
} lk_mul_params;

void lk_mul_s8(const lk_mul_params *p, const int8_t *a, const int8_t *b, int8_t *out);

/* out[i] = table[in[i] + 128]: any int8 -> int8 function of one value. */
void lk_lookup_s8(const int8_t *table, const int8_t *input, int8_t *output, int32_t size);

/* RELU / RELU6 on their own: requantize to the output scale, then clamp. */
typedef struct {
    int32_t size, input_zero_point, output_zero_point;
    int32_t multiplier, shift, act_min, act_max;
} lk_relu_params;

void lk_relu_s8(const lk_relu_params *p, const int8_t *input, int8_t *output);

/* QUANTIZE float -> int8 and DEQUANTIZE int8 -> float, in double precision as TFLite does. */
void lk_quantize_f32_s8(const float *input, int8_t *output, int32_t size, double scale, int32_t zero_point);
void lk_dequantize_s8_f32(const int8_t *input, float *output, int32_t size, double scale, int32_t zero_point);

/* Copy the elements `walk` visits: from a + base_a (stride_a) to out + base_out (stride_out). */
typedef struct {
    lk_walk walk;
    int32_t base_a, base_out;
} lk_copy_params;

void lk_strided_copy_s8(const lk_copy_params *p, const int8_t *a, int8_t *out);
void lk_fill_s8(int8_t *out, int32_t size, int8_t value);

#ifdef __cplusplus
}
#endif

#endif /* LABKIT_NN_ELEMENTWISE_H */
