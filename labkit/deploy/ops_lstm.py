"""Lowering of UNIDIRECTIONAL_SEQUENCE_LSTM, as the TFLite converter emits it for a Keras ``LSTM``
layer in a full-int8 model built with a batch size of 1.

What the converter emits (24 inputs; -1 marks the absent ones):
  0 input x [1, T, F] int8            1-4 input weights (i, f, c, o) [U, F] int8
  5-8 recurrent weights [U, U] int8    9-11 peephole weights: absent
  12-15 gate biases [U] int32          16-17 projection weights and bias: absent
  18 hidden (output) state [1, U] int8 and 19 cell state [1, U] int16: *variable* tensors
  20-23 layer-norm coefficients: absent
Options: fused_activation_function TANH, cell_clip (10.0), proj_clip 0, time_major False.
Five intermediate tensors carry quantization only: four float placeholders for the gate
pre-activations (fixed at Q3.12 when there is no layer norm) and the hidden state's
scale and zero point (``effective_hidden_scale_intermediate``).
The output is h after every step, [1, T, U]; for ``return_sequences=False`` a
STRIDED_SLICE after the LSTM keeps the last step.

The generation-time arithmetic below follows each reference: LiteRT's
``PopulateQuantizedLstmParams8x8_16`` (float32 effective scales) and TFLite Micro's
``PrepareGateParametersInteger`` (double effective scales, its FULLY_CONNECTED and MUL
parameter helpers). The kernel is ``lk_lstm_s8`` in labkit_nn_lstm.c; its header lists how
the two references differ, including LiteRT's missing tanh for cell scales below 2^-15 (which
the converter picks whenever the calibrated cell state stays under 0.5, e.g. for a
16-unit gesture LSTM): there LiteRT's hidden state is o * i, and its build reproduces that.

The hidden and cell state are the op's variable tensors; the C keeps them in the arena
buffers planned for those tensors and resets them at the start of every call (h to its zero
point, c to 0), as ``labkit.reference.run`` now resets the interpreters before every sample.
In the streaming mode (``Graph.carry_state``, from ``generate_c(..., lstm_state="carry")`` on
a model rewritten by labkit.deploy.streaming to take a few steps per call) the kernel does
not reset them: they live through every op in the arena plan, and the generated
``NAME_reset()`` sets them to their zero points at the start of a sequence.
"""

from __future__ import annotations

import math

import numpy as np

from labkit.deploy import quant_math as qm
from labkit.deploy.ir import Graph, Op, Tensor
from labkit.deploy.ops import CArray, Lowered, _check_accumulator, _fail, _require_int8, _scalar, lowering

GATES = ("input", "forget", "cell", "output")
_INPUT_WEIGHTS = (1, 2, 3, 4)
_RECURRENT_WEIGHTS = (5, 6, 7, 8)
_PEEPHOLE = (9, 10, 11)
_BIASES = (12, 13, 14, 15)
_PROJECTION = (16, 17)
_HIDDEN_STATE, _CELL_STATE = 18, 19
_LAYER_NORM = (20, 21, 22, 23)
GATE_SCALE = 2.0**-12  # gate pre-activations are Q3.12 without layer norm
f32 = np.float32


def _cell_scale_power(op: Op, scale: float) -> int:
    """TFLite's CheckedLog2: the cell state scale must be a power of two."""
    log2 = math.log2(scale)
    power = round(log2)
    if abs(log2 - power) >= 1e-3:
        raise _fail(op, f"the int16 cell state's scale {scale} is not a power of two")
    if not -24 <= power <= 0:
        raise _fail(op, f"the cell state's scale 2^{power} is outside the range labkit-nn handles (2^-24 .. 1)")
    return power


def _weights(op: Op, t: Tensor | None, what: str, shape: tuple[int, int]) -> np.ndarray:
    if t is None or not t.is_constant or t.dtype != np.int8:
        raise _fail(op, f"the {what} must be constant int8")
    if t.shape != shape:
        raise _fail(op, f"the {what} have shape {list(t.shape)}, expected {list(shape)}")
    if len(t.scale) != 1 or int(t.zero_point[0]) != 0:
        raise _fail(op, f"the {what} must be quantized per tensor with zero point 0")
    return t.data.astype(np.int32)


def _reject_variants(g: Graph, op: Op) -> None:
    """The LSTM variants the converter can make from other layers: not supported here."""
    ins = list(op.inputs)
    if len(ins) != 24:
        raise _fail(op, f"{len(ins)} inputs; labkit-nn reads the 24-input form of the LSTM")
    if ins[1] < 0 or ins[5] < 0 or ins[12] < 0:
        raise _fail(op, "a CIFG LSTM (coupled input and forget gates, no input gate) is not supported")
    if any(ins[k] >= 0 for k in _PEEPHOLE):
        raise _fail(op, "peephole connections (cell-to-gate weights) are not supported")
    if any(ins[k] >= 0 for k in _PROJECTION):
        raise _fail(op, "a projection layer (projection weights / bias) is not supported")
    if any(ins[k] >= 0 for k in _LAYER_NORM):
        raise _fail(op, "layer normalization (layer-norm coefficients) is not supported")
    o = op.options
    if o.get("diagonal_recurrent_tensors", False):
        raise _fail(op, "diagonal recurrent weights are not supported")
    if o.get("fused_activation_function", "TANH") != "TANH":
        raise _fail(op, f"the cell activation is {o.get('fused_activation_function')}; only tanh is supported")


def _quantized_cell_clip(op: Op, cell_clip: float, cell_scale: float) -> int:
    """The clip on the int16 cell state (-1: none), identical in both references or refused."""
    if not math.isfinite(cell_clip) or cell_clip < 0:
        raise _fail(op, f"cell_clip {cell_clip!r}; it must be finite and not negative (0: no clip)")
    if cell_clip == 0:
        return -1
    # LiteRT: float32 division, applied if the result is > 0; TFLM: double, applied if cell_clip > 0
    litert = int(min(max(float(f32(cell_clip) / f32(cell_scale)), -32768.0), 32767.0))
    tflm = int(min(max(float(cell_clip) / float(cell_scale), -32768.0), 32767.0))
    if litert != tflm or litert <= 0:
        raise _fail(op, f"cell_clip {cell_clip} quantizes differently in LiteRT and TFLM ({litert}, {tflm})")
    return litert


@lowering("UNIDIRECTIONAL_SEQUENCE_LSTM")
def _lstm(g: Graph, op: Op, name: str) -> Lowered:
    _reject_variants(g, op)
    ins = g.op_inputs(op)
    x = ins[0]
    (y,) = g.op_outputs(op)
    h_state, c_state = ins[_HIDDEN_STATE], ins[_CELL_STATE]
    _require_int8(op, x, y)
    if len(x.shape) != 3:
        raise _fail(op, f"the input has shape {list(x.shape)}; expected [batch, time, features]")
    time_major = bool(op.options.get("time_major", False))
    batch, steps = (x.shape[1], x.shape[0]) if time_major else (x.shape[0], x.shape[1])
    if batch != 1:
        raise _fail(op, f"batch size {batch}: build the model with Input(..., batch_size=1)")
    features = x.shape[2]
    if len(ins[_INPUT_WEIGHTS[0]].shape) != 2:
        raise _fail(op, f"the input-to-input weights have shape {list(ins[_INPUT_WEIGHTS[0]].shape)}; expected [units, features]")
    units = ins[_INPUT_WEIGHTS[0]].shape[0]
    if y.size != steps * units:
        raise _fail(op, f"the output has shape {list(y.shape)}, expected {steps} steps of {units} units")

    # the two states: variable tensors that the kernel resets and carries from step to step
    for t, dtype, what in ((h_state, np.int8, "hidden state"), (c_state, np.int16, "cell state")):
        if t is None or t.dtype != dtype or t.size != units or len(t.scale) != 1:
            raise _fail(op, f"the {what} must be a quantized {np.dtype(dtype).name} tensor of {units} values")
        if t.is_constant:
            raise _fail(op, f"the {what} has constant data; labkit-nn expects a variable state tensor")
    if int(c_state.zero_point[0]) != 0:
        raise _fail(op, "the int16 cell state must have zero point 0")
    if len(op.intermediates) != 5:
        raise _fail(op, f"{len(op.intermediates)} intermediate tensors; the int8 LSTM records 5 "
                        "(convert with full-int8 quantization)")
    hidden = g.tensors[op.intermediates[4]]
    if len(hidden.scale) != 1:
        raise _fail(op, "the hidden-state intermediate tensor carries no quantization")

    w_x = [_weights(op, ins[k], f"input-to-{GATES[i]} weights", (units, features))
           for i, k in enumerate(_INPUT_WEIGHTS)]
    w_h = [_weights(op, ins[k], f"recurrent-to-{GATES[i]} weights", (units, units))
           for i, k in enumerate(_RECURRENT_WEIGHTS)]
    biases = []
    for i, k in enumerate(_BIASES):
        b = ins[k]
        if b is None or not b.is_constant or b.dtype != np.int32 or b.size != units:
            raise _fail(op, f"the {GATES[i]} gate bias must be constant int32 with {units} values")
        biases.append(b.data.reshape(-1).astype(np.int64))

    s_x, z_x = _scalar(x)
    s_h, z_h = _scalar(h_state)
    s_c = float(c_state.scale[0])
    s_hidden, z_hidden = _scalar(hidden)  # LiteRT's hidden-state parameters (TFLM reads h_state's)
    if z_hidden != z_h:
        raise _fail(op, f"the hidden state's zero point differs between its tensor ({z_h}) and the "
                        f"intermediate the converter recorded ({z_hidden})")
    power = _cell_scale_power(op, s_c)
    clip = _quantized_cell_clip(op, float(op.options.get("cell_clip", 0.0)), s_c)

    # zero points folded into constant biases: sum_j (x_j - z_x) w_j + b = sum_j x_j w_j + (b - z_x sum_j w_j)
    input_bias = np.concatenate([b - z_x * w.sum(axis=1) for b, w in zip(biases, w_x)])
    recurrent_bias = np.concatenate([-z_h * w.sum(axis=1) for w in w_h])
    for arr, taps in ((input_bias, features), (recurrent_bias, units)):
        if np.abs(arr).max(initial=0) >= 2**31:
            raise _fail(op, "a folded bias overflows int32")
        _check_accumulator(op, taps, arr)

    # requantization scales, in the slot order of labkit_nn_lstm.h
    w_scale_x = [float(ins[k].scale[0]) for k in _INPUT_WEIGHTS]
    w_scale_h = [float(ins[k].scale[0]) for k in _RECURRENT_WEIGHTS]
    # LiteRT: float32 products divided by the Q3.12 scale (mulss, divss in its binary); the
    # hidden scale std::pow(2, -15) / scale * std::pow(2, -15) in double, stored as float
    litert_reals = [float(f32(f32(w) * f32(s_x)) / f32(GATE_SCALE)) for w in w_scale_x]
    litert_reals += [float(f32(f32(w) * f32(s_h)) / f32(GATE_SCALE)) for w in w_scale_h]
    litert_reals.append(float(f32(2.0**-15 / float(f32(s_hidden)) * 2.0**-15)))
    litert_reals += [2.0**-15, 2.0**-30 / s_c]  # unused by LiteRT's kernel (it shifts), kept for the layout
    # TFLM: double products (GetQuantizedConvolutionMultipler, CreateInterGateMulParams: mulsd, divsd)
    tflm_reals = [float(s_x) * w / GATE_SCALE for w in w_scale_x]
    tflm_reals += [float(s_h) * w / GATE_SCALE for w in w_scale_h]
    tflm_reals.append(2.0**-15 * 2.0**-15 / float(s_h))
    tflm_reals += [2.0**-15 * s_c / s_c, 2.0**-15 * 2.0**-15 / s_c]
    # Both references requantize the LSTM with two roundings (LiteRT's tensor_utils too), so
    # both decompose the scales the two-rounding way; all these scales are below 1 anyway.
    lit = [qm.quantize_multiplier(r, qm.TFLM) for r in litert_reals]
    tfl = [qm.quantize_multiplier(r, qm.TFLM) for r in tflm_reals]
    if max(s for _, s in lit + tfl) > 30:
        raise _fail(op, "a gate's rescale factor is 2^30 or more; check the quantization of the model")
    mult = CArray("int32_t", f"{name}_multiplier", np.array([m for m, _ in lit], np.int32),
                  "requantization multipliers, Q0.31: input part of i, f, c, o; recurrent part; h; f*c; i*g")
    shift = CArray("int8_t", f"{name}_shift", np.array([s for _, s in lit], np.int8), "and their shifts")
    if [m for m, _ in lit] != [m for m, _ in tfl]:
        mult.tflm_values = np.array([m for m, _ in tfl], np.int32)
    if [s for _, s in lit] != [s for _, s in tfl]:
        shift.tflm_values = np.array([s for _, s in tfl], np.int8)

    # TFLM's table tanh of the cell state: scale the input by 3 * 2^(15 + power - 3)
    left = 15 + power - 3
    tanh_multiplier, tanh_shift = (3, -left) if left < 0 else (3 << left, 0)

    arrays = [
        CArray("int8_t", f"{name}_input_weights", np.concatenate(w_x).astype(np.int8).reshape(-1),
               f"4 gates (i, f, c, o) x {units} x {features} input weights"),
        CArray("int8_t", f"{name}_recurrent_weights", np.concatenate(w_h).astype(np.int8).reshape(-1),
               f"4 gates x {units} x {units} recurrent weights"),
        CArray("int32_t", f"{name}_input_bias", input_bias.astype(np.int32),
               "gate biases with the input zero point folded in"),
        CArray("int32_t", f"{name}_recurrent_bias", recurrent_bias.astype(np.int32),
               "the hidden-state zero point folded into constants"),
        mult,
        shift,
    ]
    fields = dict(
        time_steps=steps,
        input_size=features,
        units=units,
        input_weights=f"{name}_input_weights",
        recurrent_weights=f"{name}_recurrent_weights",
        input_bias=f"{name}_input_bias",
        recurrent_bias=f"{name}_recurrent_bias",
        multiplier=f"{name}_multiplier",
        shift=f"{name}_shift",
        hidden_zero_point=z_h,
        cell_scale_power=power,
        cell_clip=clip,
        tanh_multiplier=tanh_multiplier,
        tanh_shift=tanh_shift,
        carry_state=int(g.carry_state),
    )
    comment = (f"LSTM {features} -> {units} units over {steps} step{'s' if steps > 1 else ''} "
               + ("(state carried from call to call)" if g.carry_state else "(state reset each call)"))
    if not -15 <= power <= -9:
        # see labkit_nn_lstm.c: LiteRT's integer tanh has no case for this many integer bits
        comment += f"; cell scale 2^{power}: LiteRT skips tanh(c), its build reproduces h = o * i"
    # the states live in the arena buffers planned for the two variable tensors
    return Lowered(
        comment=comment,
        call=(f"lk_lstm_s8(&{name}_params, {{in0}}, {{out0}}, {{in{_HIDDEN_STATE}}}, {{in{_CELL_STATE}}}, "
              f"(int16_t *)({{scratch}}));"),
        arrays=arrays,
        struct=("lk_lstm_params", f"{name}_params", fields),
        scratch_bytes=4 * units * 2,
        macs=steps * 4 * (features + units) * units,
    )
