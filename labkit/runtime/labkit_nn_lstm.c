/* labkit-nn runtime: the int8 LSTM (UNIDIRECTIONAL_SEQUENCE_LSTM). See labkit_nn_lstm.h. */
#include "labkit_nn.h"
#include "labkit_nn_dsp.h"

/* ---- small integer helpers -------------------------------------------------------- */

static int32_t lk16_sat(int32_t x) { return x < -32768 ? -32768 : (x > 32767 ? 32767 : x); }

/* The int8 dot product of one weight row with a vector (the zero points are in the biases).
 * DSP path: 4 products per step, unpacked by SXTB16 and summed by SMLAD (labkit_nn_dsp.h). */
static int32_t lk_dot_s8(const int8_t *w, const int8_t *x, int32_t n) {
#if LK_DSP
    return lk_dot_s8_dsp(w, x, n, 0);
#else
    int32_t acc = 0;
    for (int32_t j = 0; j < n; ++j) acc += (int32_t)w[j] * (int32_t)x[j];
    return acc;
#endif
}

#if LABKIT_NN_REFERENCE == LABKIT_NN_REF_TFLM

/* ---- TFLite Micro: sigmoid and tanh by table ---------------------------------------- */

/* sigmoid(i / 24) in Q0.16 for i = 0..255, the table TFLite Micro interpolates in
 * (tanh(x) = 2 sigmoid(2x) - 1 lets tanh use it too). */
static const uint16_t lk_sigmoid_table[256] = {
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794, 41432, 42064, 42688,
    43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409,
    51865, 52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110,
    61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186,
    63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900,
    64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208,
    65221, 65234, 65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433, 65438, 65442, 65445, 65449,
    65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
    65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530,
    65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535,
};

/* sigmoid of a Q3.12 value, Q0.15 out. The input times 3 is |x| * 2^-12 * 24 * 2^9: the
 * table index (x / 24) and 9 bits of interpolation fraction. */
static int32_t lk_sigmoid_q15(int32_t x) {
    int32_t v = x * 3;
    uint32_t a = (uint32_t)(v < 0 ? -v : v);
    uint32_t index = a >> 9;
    uint32_t r;
    if (index >= 255) {
        r = 0x7FFFu << 10;
    } else {
        uint32_t lo = lk_sigmoid_table[index], hi = lk_sigmoid_table[index + 1];
        r = (lo << 9) + (a & 0x1FFu) * (hi - lo);
    }
    r = v >= 0 ? r + (1u << 9) : (1u << 25) - r + (1u << 9) - 1; /* sigmoid(-x) = 1 - sigmoid(x) */
    return (int32_t)(r >> 10);
}

/* tanh of x * multiplier / 2^shift (rounded), where that product has 8 fraction bits for
 * the table (tanh(y) = 2 sigmoid(2y) - 1 folded in), Q0.15 out. */
static int32_t lk_tanh_q15(int32_t x, int32_t multiplier, int32_t shift) {
    int32_t round = shift > 0 ? 1 << (shift - 1) : 0;
    int32_t v = (x * multiplier + round) >> shift;
    uint32_t a = (uint32_t)(v < 0 ? -v : v);
    uint32_t index = a >> 8;
    int32_t r;
    if (index >= 255) {
        r = 0xFFFF << 8;
    } else {
        uint32_t lo = lk_sigmoid_table[index], hi = lk_sigmoid_table[index + 1];
        r = (int32_t)((lo << 8) + (a & 0xFFu) * (hi - lo));
    }
    r = v >= 0 ? r - (1 << 23) + (1 << 7) : -r + (1 << 23) + (1 << 7) - 1;
    return r >> 8;
}

#else /* LABKIT_NN_REF_LITERT */

/* ---- LiteRT: gemmlowp fixed point on 16 bits ---------------------------------------
 * A Qm value here is an int16 with m integer bits and 15 - m fraction bits. Additions wrap
 * like int16 arithmetic unless a comment says they saturate. */

/* x as an int16_t would hold it after a wrapping (two's complement) conversion. */
static int32_t lk16_wrap(int32_t x) { return ((x & 0xFFFF) ^ 0x8000) - 0x8000; }

/* (a * b * 2) / 2^16, rounded: the product of two Q0.15-style values. */
static int32_t lk16_mul(int32_t a, int32_t b) {
    if (a == -32768 && b == -32768) return 32767;
    int32_t ab = a * b;
    int32_t nudge = ab >= 0 ? (1 << 14) : (1 - (1 << 14));
    return (ab + nudge) / (1 << 15); /* C division truncates, as gemmlowp's does */
}

/* x * 2^exponent for exponent >= 0, saturating. */
static int32_t lk16_shift_left_sat(int32_t x, int exponent) {
    int32_t threshold = (1 << (15 - exponent)) - 1;
    if (x > threshold) return 32767;
    if (x < -threshold) return -32768;
    return x * (1 << exponent);
}

/* exp(a) for a in [-1/4, 0), Q0.15: Taylor series around -1/8. */
static int32_t lk16_exp_on_interval(int32_t a) {
    const int32_t exp_minus_one_eighth = 28918, one_third = 10923;
    int32_t x = lk16_wrap(a + (1 << 12)); /* a + 1/8 */
    int32_t x2 = lk16_mul(x, x);
    int32_t x3 = lk16_mul(x2, x);
    int32_t x4 = lk16_mul(x2, x2);
    int32_t x4_over_4 = lk_rounding_divide_by_pot(x4, 2);
    int32_t poly = lk_rounding_divide_by_pot(lk16_wrap(lk16_mul(lk16_wrap(x4_over_4 + x3), one_third) + x2), 1);
    return lk16_sat(exp_minus_one_eighth + lk16_mul(exp_minus_one_eighth, lk16_wrap(x + poly)));
}

/* exp(a) for a <= 0 given in Q(integer_bits); Q0.15 out. exp of the part in [-1/4, 0),
 * times exp(-2^k) for each bit k of the rest. */
static int32_t lk16_exp_on_negative_values(int32_t a, int integer_bits) {
    static const int16_t exp_of_neg_pot[7] = {25520, 19875, 12055, 4435, 600, 11, 0}; /* exp(-2^k), k=-2..4 */
    const int fraction_bits = 15 - integer_bits;
    const int32_t one_quarter = 1 << (fraction_bits - 2);
    int32_t a_mod_quarter_minus_quarter = lk16_wrap((a & (one_quarter - 1)) - one_quarter);
    int32_t result = lk16_exp_on_interval(lk16_shift_left_sat(a_mod_quarter_minus_quarter, integer_bits));
    int32_t remainder = lk16_wrap(a_mod_quarter_minus_quarter - a);
    for (int k = 0; k < 7; ++k) {
        int exponent = k - 2;
        if (integer_bits > exponent && (remainder & (1 << (fraction_bits + exponent)))) {
            result = lk16_mul(result, exp_of_neg_pot[k]);
        }
    }
    if (integer_bits > 5) { /* below -32 the result is 0 */
        int32_t clamp = lk_rounding_divide_by_pot(-(1 << (36 - integer_bits)), 16);
        if (a < clamp) result = 0;
    }
    return a == 0 ? 32767 : result;
}

/* Newton-Raphson for 1 / (1 + a), a in [0, 1) in Q0.15: result in Q2.13. */
static int32_t lk16_reciprocal_q2(int32_t a) {
    int32_t sum = a + 32767;
    int32_t half_denominator = (sum + (sum >= 0 ? 1 : -1)) / 2;
    const int32_t c48_over_17 = 23130, c_neg32_over_17 = -15420, one_q2 = 1 << 13;
    int32_t x = lk16_wrap(c48_over_17 + lk16_mul(half_denominator, c_neg32_over_17));
    for (int i = 0; i < 3; ++i) {
        int32_t one_minus = lk16_wrap(one_q2 - lk16_mul(half_denominator, x));
        x = lk16_wrap(x + lk16_shift_left_sat(lk16_mul(x, one_minus), 2));
    }
    return x;
}

/* sigmoid of a Q(integer_bits) value, Q0.15 out: 1 / (1 + exp(-|a|)), mirrored for a < 0. */
static int32_t lk16_logistic(int32_t a, int integer_bits) {
    if (a == 0) return 1 << 14;
    int32_t abs_a = a > 0 ? a : lk16_wrap(-a);
    int32_t e = lk16_exp_on_negative_values(lk16_wrap(-abs_a), integer_bits);
    int32_t positive = lk16_shift_left_sat(lk16_reciprocal_q2(e), 1); /* 1 / (1 + e) in Q0.15 */
    return a > 0 ? positive : lk16_wrap(32767 - positive);
}

/* tanh of a Q(integer_bits) value, Q0.15 out: (1 - exp(-2|a|)) / (1 + exp(-2|a|)), odd. */
static int32_t lk16_tanh(int32_t a, int integer_bits) {
    if (a == 0) return 0;
    int32_t n = a < 0 ? a : lk16_wrap(-a);                            /* -|a| */
    int32_t e = lk16_exp_on_negative_values(n, integer_bits + 1);      /* same bits read as 2 * (-|a|) */
    int32_t t = lk16_shift_left_sat(lk16_wrap(lk16_reciprocal_q2(e) - (1 << 13)), 2); /* 2/(1+e) - 1 */
    return a < 0 ? lk16_wrap(-t) : t;
}

#endif

/* ---- the LSTM ------------------------------------------------------------------------ */

void lk_lstm_s8(const lk_lstm_params *p, const int8_t *input, int8_t *output, int8_t *hidden_state,
                int16_t *cell_state, int16_t *scratch) {
    const int32_t n = p->units, m = p->input_size;
    const int32_t *mult = p->multiplier;
    const int8_t *sh = p->shift;

    /* A window per call starts from a zero state: h = 0 (its zero point), c = 0. A stream
     * (carry_state) continues from where the previous call left them. */
    if (!p->carry_state) {
        for (int32_t u = 0; u < n; ++u) {
            hidden_state[u] = (int8_t)p->hidden_zero_point;
            cell_state[u] = 0;
        }
    }

    for (int32_t t = 0; t < p->time_steps; ++t) {
        const int8_t *x = input + t * m;

        /* 1. The four gate pre-activations in Q3.12, from x_t and the previous h:
         *    W_x x_t + b and W_h h are requantized separately and added. */
        for (int k = 0; k < 4; ++k) {
            int16_t *gate = scratch + k * n;
            for (int32_t u = 0; u < n; ++u) {
                int32_t row = k * n + u;
                int32_t acc_x = p->input_bias[row] + lk_dot_s8(p->input_weights + row * m, x, m);
                int32_t acc_h = p->recurrent_bias[row] + lk_dot_s8(p->recurrent_weights + row * n, hidden_state, n);
                int32_t from_x = lk_multiply_by_quantized_multiplier(acc_x, mult[LK_LSTM_Q_INPUT + k], sh[LK_LSTM_Q_INPUT + k]);
                int32_t from_h = lk_multiply_by_quantized_multiplier(acc_h, mult[LK_LSTM_Q_RECURRENT + k], sh[LK_LSTM_Q_RECURRENT + k]);
#if LABKIT_NN_REFERENCE == LABKIT_NN_REF_TFLM
                /* TFLM: two int16 FULLY_CONNECTED outputs, then a saturating add */
                gate[u] = (int16_t)lk16_sat(lk16_sat(from_x) + lk16_sat(from_h));
#else
                /* LiteRT: the input part saturated, the recurrent part added to it, saturated */
                gate[u] = (int16_t)lk16_sat(from_h + lk16_sat(from_x));
#endif
            }
        }

        /* 2. Activations: sigmoid for the input, forget and output gates, tanh for the cell
         *    gate; Q3.12 in, Q0.15 out. */
        for (int32_t u = 0; u < 4 * n; ++u) {
            int is_cell_gate = u / n == LK_LSTM_CELL_GATE;
#if LABKIT_NN_REFERENCE == LABKIT_NN_REF_TFLM
            scratch[u] = (int16_t)(is_cell_gate ? lk_tanh_q15(scratch[u], 3, 0) : lk_sigmoid_q15(scratch[u]));
#else
            scratch[u] = (int16_t)(is_cell_gate ? lk16_tanh(scratch[u], 3) : lk16_logistic(scratch[u], 3));
#endif
        }

        const int16_t *in_gate = scratch + LK_LSTM_INPUT_GATE * n;
        const int16_t *forget_gate = scratch + LK_LSTM_FORGET_GATE * n;
        const int16_t *cell_gate = scratch + LK_LSTM_CELL_GATE * n;
        const int16_t *out_gate = scratch + LK_LSTM_OUTPUT_GATE * n;
        for (int32_t u = 0; u < n; ++u) {
            /* 3. The cell state: c = f * c + i * g (f, i, g in Q0.15), saturated, clipped. */
            int32_t fc = (int32_t)forget_gate[u] * cell_state[u];
            int32_t ig = (int32_t)in_gate[u] * cell_gate[u];
#if LABKIT_NN_REFERENCE == LABKIT_NN_REF_TFLM
            fc = lk16_sat(lk_multiply_by_quantized_multiplier(fc, mult[LK_LSTM_Q_FORGET_CELL], sh[LK_LSTM_Q_FORGET_CELL]));
            ig = lk16_sat(lk_multiply_by_quantized_multiplier(ig, mult[LK_LSTM_Q_INPUT_CELL], sh[LK_LSTM_Q_INPUT_CELL]));
#else
            /* rounding shifts, stored as int16 without saturation (they wrap, as in LiteRT) */
            fc = lk16_wrap(lk_rounding_divide_by_pot(fc, 15));                       /* Q0.15 * cell -> cell */
            ig = lk16_wrap(lk_rounding_divide_by_pot(ig, 30 + p->cell_scale_power)); /* Q0.30 -> cell */
#endif
            int32_t c = lk16_sat(fc + ig);
            if (p->cell_clip >= 0) c = lk_clamp(c, -p->cell_clip, p->cell_clip);
            cell_state[u] = (int16_t)c;

            /* 4. The hidden state: h = o * tanh(c), Q0.30 requantized to int8. */
#if LABKIT_NN_REFERENCE == LABKIT_NN_REF_TFLM
            int32_t tanh_c = lk_tanh_q15(c, p->tanh_multiplier, p->tanh_shift);
#else
            /* LiteRT's integer tanh takes 0..6 integer bits (cell scales 2^-15 .. 2^-9). For other
             * scales it returns without writing its output buffer, which still holds the input
             * gate, so LiteRT computes h = o * i there; reproduced, to stay bit-exact with it. */
            int32_t bits = 15 + p->cell_scale_power;
            int32_t tanh_c = (bits >= 0 && bits <= 6) ? lk16_tanh(c, bits) : in_gate[u];
#endif
            int32_t h = lk_multiply_by_quantized_multiplier((int32_t)out_gate[u] * tanh_c, mult[LK_LSTM_Q_HIDDEN], sh[LK_LSTM_Q_HIDDEN]);
            hidden_state[u] = (int8_t)lk_clamp(h + p->hidden_zero_point, -128, 127);
        }

        /* 5. The output at step t is the new hidden state. */
        for (int32_t u = 0; u < n; ++u) output[t * n + u] = hidden_state[u];
    }
}
