/* labkit-nn runtime kernels. See labkit_nn.h for what each computes and why. */
#include "labkit_nn.h"
#include "labkit_nn_dsp.h"

#include <math.h>

/* ---- FULLY_CONNECTED -------------------------------------------------------- */

#if LK_DSP

/* The requantization of each reference, as lk_fully_connected_requantize computes it. */
static inline int32_t lk_fc_requantize(int32_t acc, int32_t multiplier, int shift) {
#if LABKIT_NN_REFERENCE == LABKIT_NN_REF_LITERT
    return lk_fully_connected_requantize(acc, multiplier, shift);
#else
    return lk_requantize(acc, multiplier, shift);
#endif
}

/* Output feature o from its accumulator: requantized, offset, clamped to the activation's range. */
static inline int8_t lk_fc_output(const lk_fully_connected_params *p, int32_t acc, int32_t o) {
    int32_t c = p->per_channel ? o : 0;
    acc = lk_fc_requantize(acc, p->multiplier[c], p->shift[c]) + p->output_offset;
    return (int8_t)lk_clamp(acc, p->act_min, p->act_max);
}

/* One row of weights against the unpacked input words, SMLAD twice. */
#define LK_FC_ROW(acc, w, xa, xb)                                    \
    do {                                                             \
        uint32_t wv_ = lk_read4(w);                                  \
        acc = lk_smlad(lk_sxtb16(wv_), xa, acc);                       \
        acc = lk_smlad(lk_sxtb16_ror8(wv_), xb, acc);                 \
    } while (0)

/* DSP path: three output features per pass, so each word of input is loaded and unpacked (with
 * the offset added by SXTAB16) once for three weight rows (four need more registers than the
 * M4 has: measured slower); the last one or two rows are paired with themselves, their extra
 * results dropped (one loop: less code). */
void lk_fully_connected_s8(const lk_fully_connected_params *params, const int8_t *input, const int8_t *weights,
                           const int32_t *bias, int8_t *output) {
    const lk_fully_connected_params copy = *params, *p = &copy;
    const int32_t n = p->in_features, n4 = n >> 2;
    const uint32_t offset2 = lk_pack2(p->input_offset);
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in = input + b * n;
        int8_t *out = output + b * p->out_features;
        for (int32_t o = 0; o < p->out_features; o += 3) {
            const int32_t left = p->out_features - o; /* rows from o on: 3 or more, 2, or 1 */
            const int32_t o1 = left > 1 ? o + 1 : o, o2 = left > 2 ? o + 2 : o1;
            const int8_t *w0 = weights + o * n, *w1 = weights + o1 * n, *w2 = weights + o2 * n;
            int32_t a0 = 0, a1 = 0, a2 = 0;
            if (bias) a0 = bias[o], a1 = bias[o1], a2 = bias[o2];
            const int8_t *x = in, *x_end = in + 4 * n4;
            while (x != x_end) { /* (an 8-input step needs more registers: measured slower) */
                uint32_t xv = lk_read4(x), xa = lk_sxtab16(offset2, xv), xb = lk_sxtab16_ror8(offset2, xv);
                LK_FC_ROW(a0, w0, xa, xb);
                LK_FC_ROW(a1, w1, xa, xb);
                LK_FC_ROW(a2, w2, xa, xb);
                x += 4, w0 += 4, w1 += 4, w2 += 4;
            }
            for (int32_t i = n & 3; i > 0; --i) {
                int32_t v = (int32_t)*x++ + p->input_offset;
                a0 += v * (int32_t)*w0++;
                a1 += v * (int32_t)*w1++;
                a2 += v * (int32_t)*w2++;
            }
            out[o] = lk_fc_output(p, a0, o);
            out[o1] = lk_fc_output(p, a1, o1);
            out[o2] = lk_fc_output(p, a2, o2);
        }
    }
}

#else /* the plain C kernel: the reference, and the host build */

void lk_fully_connected_s8(const lk_fully_connected_params *p, const int8_t *input, const int8_t *weights,
                           const int32_t *bias, int8_t *output) {
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in = input + b * p->in_features;
        for (int32_t o = 0; o < p->out_features; ++o) {
            const int8_t *w = weights + o * p->in_features;
            int32_t acc = 0;
            for (int32_t i = 0; i < p->in_features; ++i) {
                acc += ((int32_t)in[i] + p->input_offset) * (int32_t)w[i];
            }
            if (bias) acc += bias[o];
            int32_t c = p->per_channel ? o : 0;
            acc = lk_fully_connected_requantize(acc, p->multiplier[c], p->shift[c]);
            output[b * p->out_features + o] = (int8_t)lk_clamp(acc + p->output_offset, p->act_min, p->act_max);
        }
    }
}

#endif /* LK_DSP */

/* ---- SOFTMAX ---------------------------------------------------------------- */

/* Softmax runs once per inference on a few values: compiled for size where the compiler is GCC
 * (measured on the README's CNN: 1,436 B of code at -O2, about half at -Os, for a few hundred
 * instructions more per inference). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__OPTIMIZE__) && !defined(__OPTIMIZE_SIZE__)
#pragma GCC push_options
#pragma GCC optimize("Os")
#define LK_SOFTMAX_OS 1
#endif

#if LABKIT_NN_REFERENCE == LABKIT_NN_REF_TFLM

/* gemmlowp-style fixed point: a raw int32 with a given number of integer bits. */
static int32_t lk_add_wrap(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }

/* x * 2^exponent with saturation (exponent > 0) or rounding (exponent < 0). */
static int32_t lk_sat_rounding_mul_by_pot(int32_t x, int exponent) {
    if (exponent < 0) return lk_rounding_divide_by_pot(x, -exponent);
    if (exponent == 0) return x;
    int32_t threshold = (int32_t)((1LL << (31 - exponent)) - 1);
    if (x > threshold) return INT32_MAX;
    if (x < -threshold) return INT32_MIN;
    return (int32_t)((uint32_t)x << exponent);
}

/* exp(a) for a in [-1/4, 0), Q0.31 in and out: Taylor series around -1/8. */
static int32_t lk_exp_on_interval_neg_quarter_to_0(int32_t a) {
    const int32_t exp_minus_one_eighth = 1895147668;
    const int32_t one_third = 715827883;
    int32_t x = lk_add_wrap(a, 1 << 28); /* a + 1/8 */
    int32_t x2 = lk_sat_rounding_doubling_high_mul(x, x);
    int32_t x3 = lk_sat_rounding_doubling_high_mul(x2, x);
    int32_t x4 = lk_sat_rounding_doubling_high_mul(x2, x2);
    int32_t x4_over_4 = lk_rounding_divide_by_pot(x4, 2);
    int32_t poly = lk_rounding_divide_by_pot(
        lk_add_wrap(lk_sat_rounding_doubling_high_mul(lk_add_wrap(x4_over_4, x3), one_third), x2), 1);
    return lk_add_wrap(exp_minus_one_eighth,
                       lk_sat_rounding_doubling_high_mul(exp_minus_one_eighth, lk_add_wrap(x, poly)));
}

/* exp(a) for a <= 0 given with 5 integer bits (Q5.26); result Q0.31. */
static int32_t lk_exp_on_negative_values(int32_t a) {
    const int fractional_bits = 26;
    const int32_t one_quarter = 1 << (fractional_bits - 2);
    const int32_t mask = one_quarter - 1;
    int32_t a_mod_quarter_minus_quarter = (a & mask) - one_quarter;
    int32_t result = lk_exp_on_interval_neg_quarter_to_0(lk_sat_rounding_mul_by_pot(a_mod_quarter_minus_quarter, 5));
    int32_t remainder = a_mod_quarter_minus_quarter - a;
    /* exp(-2^k) for k = -2..4, multiplied in for each bit set in the remainder */
    static const int32_t exp_of_neg_pot[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    for (int k = 0; k < 7; ++k) {
        if (remainder & (1 << (fractional_bits - 2 + k))) {
            result = lk_sat_rounding_doubling_high_mul(result, exp_of_neg_pot[k]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* 1 / (1 + x) for x in [0, 1), Q0.31, by three Newton-Raphson steps in Q2.29. */
static int32_t lk_one_over_one_plus_x(int32_t a) {
    int64_t sum = (int64_t)a + INT32_MAX;
    int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    const int32_t c48_over_17 = 1515870810, c_neg32_over_17 = -1010580540;
    const int32_t one_q2 = 1 << 29;
    int32_t x = lk_add_wrap(c48_over_17, lk_sat_rounding_doubling_high_mul(half_denominator, c_neg32_over_17));
    for (int i = 0; i < 3; ++i) {
        int32_t hd_x = lk_sat_rounding_doubling_high_mul(half_denominator, x);
        int32_t one_minus = lk_add_wrap(one_q2, -hd_x);
        x = lk_add_wrap(x, lk_sat_rounding_mul_by_pot(lk_sat_rounding_doubling_high_mul(x, one_minus), 2));
    }
    return lk_sat_rounding_mul_by_pot(x, 1);
}

static int lk_count_leading_zeros(uint32_t x) {
    int n = 0;
    if (x == 0) return 32;
    while (!(x & 0x80000000u)) { x <<= 1; ++n; }
    return n;
}

/* exp(beta * input_scale * diff) for diff = x - max <= 0, Q0.31 */
#define LK_SOFTMAX_KEEP 16 /* the exps of a row of up to this many values are kept (64 B of stack) */

static int32_t lk_softmax_exp(const lk_softmax_params *p, int32_t diff) {
    int32_t scaled = lk_sat_rounding_doubling_high_mul((int32_t)((uint32_t)diff << p->input_left_shift),
                                                       p->input_multiplier);
    return lk_exp_on_negative_values(scaled);
}

void lk_softmax_s8(const lk_softmax_params *p, const int8_t *input, int8_t *output) {
    for (int32_t r = 0; r < p->rows; ++r) {
        const int8_t *in = input + r * p->depth;
        int8_t *out = output + r * p->depth;
        int32_t max_in = -128;
        for (int32_t c = 0; c < p->depth; ++c) if (in[c] > max_in) max_in = in[c];

        /* each value's exp is computed once and kept for the outputs while the row is short enough */
        int32_t exps[LK_SOFTMAX_KEEP];
        const int keep = p->depth <= LK_SOFTMAX_KEEP;
        int32_t sum_of_exps = 0; /* Q12.19 */
        for (int32_t c = 0; c < p->depth; ++c) {
            int32_t diff = in[c] - max_in;
            if (diff >= p->diff_min) {
                int32_t e = lk_softmax_exp(p, diff);
                if (keep) exps[c] = e;
                sum_of_exps = lk_add_wrap(sum_of_exps, lk_rounding_divide_by_pot(e, 12));
            }
        }
        int headroom_plus_one = lk_count_leading_zeros((uint32_t)sum_of_exps);
        int num_bits_over_unit = 12 - headroom_plus_one;
        int32_t shifted_sum_minus_one = (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - (1u << 31));
        int32_t shifted_scale = lk_one_over_one_plus_x(shifted_sum_minus_one);

        for (int32_t c = 0; c < p->depth; ++c) {
            int32_t diff = in[c] - max_in;
            if (diff >= p->diff_min) {
                int32_t e = keep ? exps[c] : lk_softmax_exp(p, diff);
                int32_t unsat = lk_rounding_divide_by_pot(lk_sat_rounding_doubling_high_mul(shifted_scale, e),
                                                          num_bits_over_unit + 31 - 8);
                out[c] = (int8_t)lk_clamp(unsat - 128, -128, 127);
            } else {
                out[c] = -128;
            }
        }
    }
}

#else /* LABKIT_NN_REF_LITERT */

void lk_softmax_s8(const lk_softmax_params *p, const int8_t *input, int8_t *output) {
    for (int32_t r = 0; r < p->rows; ++r) {
        const int8_t *in = input + r * p->depth;
        int8_t *out = output + r * p->depth;
        int32_t max_in = -128;
        for (int32_t c = 0; c < p->depth; ++c) if (in[c] > max_in) max_in = in[c];
        float sum = 0.0f;
        for (int32_t c = 0; c < p->depth; ++c) sum += p->exp_table[max_in - in[c]];
        /* Kept as separate float statements: a fused multiply-add would round differently. */
        float denominator = sum * p->output_scale;
        float inv = 1.0f / denominator;
        for (int32_t c = 0; c < p->depth; ++c) {
            float prob = p->exp_table[max_in - in[c]] * inv;
            int32_t q = (int32_t)roundf(prob) + p->output_zero_point;
            out[c] = (int8_t)lk_clamp(q, -128, 127);
        }
    }
}

#endif

#ifdef LK_SOFTMAX_OS
#pragma GCC pop_options
#endif
