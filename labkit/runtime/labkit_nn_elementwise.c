/* labkit-nn elementwise and data-movement kernels. See labkit_nn_elementwise.h. */
#include "labkit_nn_elementwise.h"

#include <math.h>

/* Advance a multi-dimensional index by one element; move each operand's offset along. */
static void lk_walk_next(const lk_walk *w, int32_t *index, int32_t *off_a, int32_t *off_b, int32_t *off_out) {
    for (int d = LK_MAX_DIMS - 1; d >= 0; --d) {
        ++index[d];
        *off_a += w->stride_a[d];
        *off_b += w->stride_b[d];
        *off_out += w->stride_out[d];
        if (index[d] < w->dims[d]) return;
        *off_a -= w->stride_a[d] * w->dims[d];
        *off_b -= w->stride_b[d] * w->dims[d];
        *off_out -= w->stride_out[d] * w->dims[d];
        index[d] = 0;
    }
}

static int32_t lk_walk_size(const lk_walk *w) {
    int32_t n = 1;
    for (int d = 0; d < LK_MAX_DIMS; ++d) n *= w->dims[d];
    return n;
}

void lk_add_s8(const lk_add_params *p, const int8_t *a, const int8_t *b, int8_t *out) {
    int32_t index[LK_MAX_DIMS] = {0};
    int32_t ia = 0, ib = 0, io = 0;
    const int32_t n = lk_walk_size(&p->walk);
    for (int32_t i = 0; i < n; ++i) {
        /* both inputs to a common scale with 20 bits of headroom, add, then to the output scale */
        int32_t va = (a[ia] + p->a_offset) * (1 << p->left_shift);
        int32_t vb = (b[ib] + p->b_offset) * (1 << p->left_shift);
        va = lk_multiply_by_quantized_multiplier(va, p->a_multiplier, p->a_shift);
        vb = lk_multiply_by_quantized_multiplier(vb, p->b_multiplier, p->b_shift);
        int32_t sum = lk_multiply_by_quantized_multiplier(va + vb, p->output_multiplier, p->output_shift);
        out[io] = (int8_t)lk_clamp(sum + p->output_offset, p->act_min, p->act_max);
        lk_walk_next(&p->walk, index, &ia, &ib, &io);
    }
}

void lk_mul_s8(const lk_mul_params *p, const int8_t *a, const int8_t *b, int8_t *out) {
    int32_t index[LK_MAX_DIMS] = {0};
    int32_t ia = 0, ib = 0, io = 0;
    const int32_t n = lk_walk_size(&p->walk);
    for (int32_t i = 0; i < n; ++i) {
        int32_t prod = (a[ia] + p->a_offset) * (b[ib] + p->b_offset);
        int32_t v = lk_multiply_by_quantized_multiplier(prod, p->output_multiplier, p->output_shift);
        out[io] = (int8_t)lk_clamp(v + p->output_offset, p->act_min, p->act_max);
        lk_walk_next(&p->walk, index, &ia, &ib, &io);
    }
}

void lk_lookup_s8(const int8_t *table, const int8_t *input, int8_t *output, int32_t size) {
    for (int32_t i = 0; i < size; ++i) output[i] = table[input[i] + 128];
}

void lk_relu_s8(const lk_relu_params *p, const int8_t *input, int8_t *output) {
    for (int32_t i = 0; i < p->size; ++i) {
        int32_t v = lk_multiply_by_quantized_multiplier(input[i] - p->input_zero_point, p->multiplier, p->shift);
        output[i] = (int8_t)lk_clamp(v + p->output_zero_point, p->act_min, p->act_max);
    }
}

void lk_quantize_f32_s8(const float *input, int8_t *output, int32_t size, double scale, int32_t zero_point) {
    for (int32_t i = 0; i < size; ++i) {
        long q = lround((double)input[i] / scale) + zero_point; /* ties away from zero, like TfLiteRound */
        output[i] = (int8_t)(q < -128 ? -128 : (q > 127 ? 127 : q));
    }
}

void lk_dequantize_s8_f32(const int8_t *input, float *output, int32_t size, double scale, int32_t zero_point) {
    for (int32_t i = 0; i < size; ++i) output[i] = (float)(scale * (double)(input[i] - zero_point));
}

void lk_strided_copy_s8(const lk_copy_params *p, const int8_t *a, int8_t *out) {
    int32_t index[LK_MAX_DIMS] = {0};
    int32_t ia = p->base_a, unused = 0, io = p->base_out;
    const int32_t n = lk_walk_size(&p->walk);
    for (int32_t i = 0; i < n; ++i) {
        out[io] = a[ia];
        lk_walk_next(&p->walk, index, &ia, &unused, &io);
    }
}

void lk_fill_s8(int8_t *out, int32_t size, int8_t value) {
    for (int32_t i = 0; i < size; ++i) out[i] = value;
}
