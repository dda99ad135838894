/*
 * labkit-nn runtime: UNIDIRECTIONAL_SEQUENCE_LSTM, full-integer ("8x8->16") version.
 *
 * What the TFLite converter makes of a Keras LSTM layer quantized to int8:
 *   int8 input x_t and int8 hidden state h (the LSTM output), int8 weights,
 *   int32 gate biases, an int16 cell state c with a power-of-two scale 2^cell_scale_power,
 *   gate pre-activations in int16 Q3.12 (scale 2^-12), gate outputs in Q0.15.
 * For each time step t (all four gates read the previous h):
 *   i = sigmoid(W_xi x_t + W_hi h + b_i)     input gate
 *   f = sigmoid(W_xf x_t + W_hf h + b_f)     forget gate
 *   g = tanh   (W_xc x_t + W_hc h + b_c)     cell gate (candidate values)
 *   o = sigmoid(W_xo x_t + W_ho h + b_o)     output gate
 *   c = clip(f * c + i * g)                  new cell state
 *   h = o * tanh(c)                          new hidden state = output[t]
 *
 * The two reference interpreters compute this differently in the last bits, and the
 * kernel follows the one selected by LABKIT_NN_REFERENCE (see labkit_nn_lstm.c). Both
 * requantize with two roundings (gemmlowp style), LiteRT included; they differ in:
 *   LiteRT  (lstm_eval.cc, integer 8x8_16) float32 effective scales; a gate's recurrent part
 *           is added to its saturated input part, then saturated; sigmoid/tanh in gemmlowp
 *           16-bit fixed point; f*c and i*g by rounding shifts stored without saturation.
 *           Its tanh of the cell state handles cell scales 2^-15 .. 2^-9 only: for a smaller
 *           scale it writes nothing and h becomes o * i (the input gate left in its buffer).
 *           The LiteRT build reproduces that too; the TFLM build computes tanh(c).
 *   TFLM    (lstm_eval.h) double effective scales; input and recurrent parts saturated
 *           separately, then added; sigmoid/tanh from a 256-entry table with linear
 *           interpolation; f*c and i*g through multipliers, saturated.
 *
 * State: h and c start from zero (h at its zero point) at the start of every call, so
 * each call classifies one independent window; the reference comparison in labkit.verify
 * resets the interpreters' state before every sample to match.
 */
#ifndef LABKIT_NN_LSTM_H
#define LABKIT_NN_LSTM_H

#include "labkit_nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Gate order in every per-gate array: input, forget, cell, output. */
enum { LK_LSTM_INPUT_GATE = 0, LK_LSTM_FORGET_GATE = 1, LK_LSTM_CELL_GATE = 2, LK_LSTM_OUTPUT_GATE = 3 };

/* Requantization slots in multiplier[] / shift[]. */
enum {
    LK_LSTM_Q_INPUT = 0,        /* 4 slots: input part of gate k -> Q3.12 */
    LK_LSTM_Q_RECURRENT = 4,    /* 4 slots: recurrent part of gate k -> Q3.12 */
    LK_LSTM_Q_HIDDEN = 8,       /* o * tanh(c), Q0.30 -> int8 hidden state */
    LK_LSTM_Q_FORGET_CELL = 9,  /* f * c -> cell scale (TFLM only) */
    LK_LSTM_Q_INPUT_CELL = 10,  /* i * g -> cell scale (TFLM only) */
    LK_LSTM_Q_COUNT = 11
};

typedef struct {
    int32_t time_steps, input_size, units;
    const int8_t *input_weights;     /* [4][units][input_size] */
    const int8_t *recurrent_weights; /* [4][units][units] */
    /* The zero points folded into the biases at generation time:
     * input_bias[k][u] = b_k[u] - input_zero_point * sum_j W_xk[u][j]
     * recurrent_bias[k][u] = - hidden_zero_point * sum_j W_hk[u][j]
     * so each gate is a plain int8 dot product plus a constant. */
    const int32_t *input_bias;     /* [4][units] */
    const int32_t *recurrent_bias; /* [4][units] */
    const int32_t *multiplier;     /* [LK_LSTM_Q_COUNT], Q0.31 */
    const int8_t *shift;           /* [LK_LSTM_Q_COUNT] */
    int32_t hidden_zero_point;     /* zero point of h (and of the output) */
    int32_t cell_scale_power;      /* the cell state's scale is 2^cell_scale_power */
    int32_t cell_clip;             /* |c| <= cell_clip after each update; -1: no clipping */
    /* TFLM's table tanh of the cell state: x * tanh_multiplier >> tanh_shift (rounded)
     * turns the cell state into the table's input format */
    int32_t tanh_multiplier, tanh_shift;
    /* 0: reset h and c at the start of every call (a window per call); 1: carry them from
     * call to call (a stream, a few steps per call; the caller resets them at its start) */
    int32_t carry_state;
} lk_lstm_params;

/* Bytes of scratch lk_lstm_s8 needs: the four gates' int16 values. */
#define LK_LSTM_SCRATCH_BYTES(units) (4 * (units) * (int32_t)sizeof(int16_t))

/* input: [time_steps][input_size]; output: [time_steps][units] (h after every step).
 * hidden_state (units int8) and cell_state (units int16) are reset here (unless
 * p->carry_state: then they continue from the previous call), then carried from step to
 * step; scratch holds LK_LSTM_SCRATCH_BYTES(units) bytes. */
void lk_lstm_s8(const lk_lstm_params *p, const int8_t *input, int8_t *output, int8_t *hidden_state,
                int16_t *cell_state, int16_t *scratch);

#ifdef __cplusplus
}
#endif

#endif /* LABKIT_NN_LSTM_H */
