"""Lowering: each supported TFLite op becomes constant arrays, a parameter struct and one
runtime call. One function per op, registered in ``LOWERINGS``; nothing else knows op details.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from labkit.deploy import quant_math as qm
from labkit.deploy.ir import Graph, Op, Tensor
from labkit.errors import UnsupportedModelError


@dataclass
class CArray:
    """A constant array in flash. ``tflm_values`` is set only where the TFLM arithmetic needs other values."""

    ctype: str
    name: str
    values: np.ndarray
    comment: str = ""
    tflm_values: np.ndarray | None = None

    @property
    def nbytes(self) -> int:
        return int(self.values.nbytes)


@dataclass
class Lowered:
    """What one op contributes to the generated C."""

    comment: str  # one line a student can read: what the op does, shapes
    call: str = ""  # C statement; {in0}, {out0}, {scratch} are filled in after memory planning
    arrays: list[CArray] = field(default_factory=list)
    struct: tuple[str, str, dict] | None = None  # (C type, variable name, fields)
    structs: list[tuple] = field(default_factory=list)  # more, for ops that need several
    tflm_fields: dict | None = None  # ``struct`` as the TFLM build needs it, where the references differ
    alias: bool = False  # the output is the input's bytes reinterpreted (RESHAPE): no code, no RAM
    scratch_bytes: int = 0
    macs: int = 0
    # kernel paths the op needs compiled in (labkit_nn_config.h), e.g. "conv_pointwise": the
    # generator leaves out what the model never calls, so it costs no flash
    features: frozenset[str] = frozenset()


LOWERINGS: dict[str, Callable[[Graph, Op, str], Lowered]] = {}


def lowering(*kinds: str):
    def register(fn):
        for k in kinds:
            LOWERINGS[k] = fn
        return fn

    return register


def supported_ops() -> list[str]:
    return sorted(LOWERINGS)


def _fail(op: Op, why: str) -> UnsupportedModelError:
    return UnsupportedModelError(f"op {op.index} ({op.kind}): {why}")


def _require_int8(op: Op, *tensors: Tensor) -> None:
    for t in tensors:
        if t.dtype != np.int8 or len(t.scale) == 0:
            raise _fail(
                op,
                f"tensor '{t.name}' is {t.dtype.name}{'' if len(t.scale) else ' without quantization'}; "
                "labkit-nn needs int8 activations. Convert with full-int8 quantization "
                "(labkit.compress.quantize.to_int8_tflite).",
            )


# One product of the int8 kernels at most: (input - zero point) in [-255, 255] times a weight in [-128, 127].
MAX_PRODUCT = 255 * 128


def _check_accumulator(op: Op, taps: int, bias: Tensor | np.ndarray | None = None) -> None:
    """The int32 accumulator of ``taps`` products plus the bias cannot overflow (that would be
    undefined behaviour in C, in TFLite's kernels as in labkit-nn's)."""
    values = bias.data if isinstance(bias, Tensor) else bias
    largest = int(np.abs(np.asarray(values, np.int64)).max(initial=0)) if values is not None else 0
    if largest + taps * MAX_PRODUCT >= 2**31:
        raise _fail(op, f"a bias of {largest} plus {taps} int8 products can overflow the int32 accumulator; "
                        "check the model's biases and shapes")


def _scalar(t: Tensor) -> tuple[float, int]:
    return float(t.scale[0]), int(t.zero_point[0])


def _multipliers(reals: list[float], name: str) -> tuple[CArray, CArray]:
    lit = [qm.quantize_multiplier(r, qm.LITERT) for r in reals]
    tfl = [qm.quantize_multiplier(r, qm.TFLM) for r in reals]
    big = [r for r, (_, s) in zip(reals, tfl) if s > 30]
    if big:  # a left shift past 31 bits is undefined in C (and in TFLite's own kernels)
        raise qm.OutOfRange(f"a rescale factor of {big[0]:g} (input scale x weight scale / output scale); "
                            "it must be below 2^30. Check the quantization of the model")

    def arr(pairs, k, dtype):
        return np.array([p[k] for p in pairs], dtype)

    m = CArray("int32_t", f"{name}_multiplier", arr(lit, 0, np.int32), "requantization multipliers, Q0.31")
    s = CArray("int8_t", f"{name}_shift", arr(lit, 1, np.int8), "and their power-of-two shifts")
    if lit != tfl:
        m.tflm_values, s.tflm_values = arr(tfl, 0, np.int32), arr(tfl, 1, np.int8)
    return m, s


@lowering("FULLY_CONNECTED")
def _fully_connected(g: Graph, op: Op, name: str) -> Lowered:
    x, w, b = (g.op_inputs(op) + [None])[:3]
    (y,) = g.op_outputs(op)
    _require_int8(op, x, y)
    if w is None or not w.is_constant or w.dtype != np.int8:
        raise _fail(op, "the weights must be constant int8 (a weights-as-input FULLY_CONNECTED is not supported)")
    if np.any(w.zero_point != 0):
        raise _fail(op, "int8 weights must be symmetric (zero point 0), as TFLite's converter makes them")
    if b is not None and (not b.is_constant or b.dtype != np.int32):
        raise _fail(op, "the bias must be constant int32")
    if op.options.get("weights_format", 0) != 0:
        raise _fail(op, "shuffled weights formats are not supported")
    out_features, in_features = w.shape
    batches = x.size // in_features
    if batches * in_features != x.size or y.size != batches * out_features:
        raise _fail(op, f"weights {list(w.shape)} do not take the input {list(x.shape)} to the output "
                        f"{list(y.shape)} (FULLY_CONNECTED weights are [outputs, inputs])")
    if len(w.scale) not in (1, out_features) or (w.per_channel and w.quantized_dimension != 0):
        raise _fail(op, f"the weights must be quantized per tensor or per output feature "
                        f"({len(w.scale)} scales along axis {w.quantized_dimension}, {out_features} outputs)")
    if b is not None and b.size != out_features:
        raise _fail(op, f"the bias has {b.size} values for {out_features} outputs")
    _check_accumulator(op, in_features, b)
    s_in, z_in = _scalar(x)
    s_out, z_out = _scalar(y)
    reals = [s_in * float(ws) / s_out for ws in w.scale]
    mult, shift = _multipliers(reals, name)
    act = op.options.get("fused_activation_function", "NONE")
    lo, hi = qm.activation_range(act, s_out, z_out)
    arrays = [CArray("int8_t", f"{name}_weights", w.data.reshape(-1), f"{out_features} x {in_features} int8 weights")]
    if b is not None:
        arrays.append(CArray("int32_t", f"{name}_bias", b.data.reshape(-1), "int32 biases"))
    arrays += [mult, shift]
    fields = dict(
        batches=batches,
        in_features=in_features,
        out_features=out_features,
        input_offset=-z_in,
        output_offset=z_out,
        act_min=lo,
        act_max=hi,
        multiplier=f"{name}_multiplier",
        shift=f"{name}_shift",
        per_channel=int(w.per_channel),
    )
    bias = f"{name}_bias" if b is not None else "NULL"
    return Lowered(
        comment=f"FULLY_CONNECTED {in_features} -> {out_features}" + (f", {act}" if act != "NONE" else ""),
        call=f"lk_fully_connected_s8(&{name}_params, {{in0}}, {name}_weights, {bias}, {{out0}});",
        arrays=arrays,
        struct=("lk_fully_connected_params", f"{name}_params", fields),
        macs=batches * in_features * out_features,
    )


@lowering("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
def _reshape(g: Graph, op: Op, name: str) -> Lowered:
    x = g.op_inputs(op)[0]
    (y,) = g.op_outputs(op)
    if x.dtype != y.dtype or x.size != y.size:
        raise _fail(op, "input and output must hold the same number of elements of one type")
    return Lowered(comment=f"{op.kind} {list(x.shape)} -> {list(y.shape)}: same bytes, new shape", alias=True)


@lowering("SOFTMAX")
def _softmax(g: Graph, op: Op, name: str) -> Lowered:
    (x,) = [t for t in g.op_inputs(op) if t is not None]
    (y,) = g.op_outputs(op)
    _require_int8(op, x, y)
    s_in, _ = _scalar(x)
    s_out, z_out = _scalar(y)
    if abs(s_out - 1.0 / 256) > 1e-9 or z_out != -128:
        raise _fail(op, f"int8 softmax output must have scale 1/256 and zero point -128 (got {s_out}, {z_out})")
    beta = float(op.options.get("beta", 1.0))
    table = qm.softmax_exp_table(s_in, beta)
    mult, left_shift, diff_min = qm.softmax_fixed_point(s_in, beta)
    depth = x.shape[-1]
    fields = dict(
        rows=x.size // depth,
        depth=depth,
        exp_table=f"{name}_exp_table",
        output_scale=np.float32(s_out),
        output_zero_point=z_out,
        input_multiplier=mult,
        input_left_shift=left_shift,
        diff_min=diff_min,
    )
    return Lowered(
        comment=f"SOFTMAX over {depth} values",
        call=f"lk_softmax_s8(&{name}_params, {{in0}}, {{out0}});",
        arrays=[CArray("float", f"{name}_exp_table", table, "exp(-input_scale * beta * d), d = max - x")],
        struct=("lk_softmax_params", f"{name}_params", fields),
    )


def lower(g: Graph) -> list[Lowered]:
    """Lower every op, or raise one error naming all unsupported ops and what is supported."""
    problems = sorted({op.kind for op in g.ops if op.kind not in LOWERINGS})
    float_ops = [  # QUANTIZE / DEQUANTIZE have a float side by design: float model I/O
        op.kind
        for op in g.ops
        if op.kind not in ("QUANTIZE", "DEQUANTIZE")
        and any(t is not None and t.dtype == np.float32 for t in g.op_inputs(op) + g.op_outputs(op))
    ]
    if float_ops and not problems:
        raise UnsupportedModelError(
            "the model is not quantized (float32 tensors in " + ", ".join(sorted(set(float_ops))) + "). "
            "labkit-nn runs full-int8 models: convert with labkit.compress.quantize.to_int8_tflite(model, x_train), "
            "or TFLiteConverter with optimizations=[tf.lite.Optimize.DEFAULT], a representative_dataset, "
            "target_spec.supported_ops=[tf.lite.OpsSet.TFLITE_BUILTINS_INT8] and int8 input/output types."
        )
    if problems:
        hint = ""
        if float_ops:
            hint = " The model also has float32 tensors: it may not be fully int8-quantized."
        raise UnsupportedModelError(
            f"labkit-nn does not support the op(s) {', '.join(problems)}.{hint} "
            f"Supported ops: {', '.join(supported_ops())}."
        )
    lowered = []
    for op in g.ops:
        try:
            low = LOWERINGS[op.kind](g, op, f"op{op.index}_{op.kind.lower()}")
        except qm.OutOfRange as e:
            raise _fail(op, str(e)) from None
        _check_int32(op, low)
        lowered.append(low)
    return lowered


def _check_int32(op: Op, low: Lowered) -> None:
    """Every integer that goes into a C parameter struct fits its int32 field."""
    structs = ([low.struct] if low.struct else []) + list(low.structs)
    for fields in [s[-1] for s in structs] + ([low.tflm_fields] if low.tflm_fields else []):
        for key, value in fields.items():
            if isinstance(value, (int, np.integer)) and not -(2**31) <= int(value) < 2**31:
                raise _fail(op, f"its parameter {key} = {int(value)} does not fit in 32 bits; the shapes or "
                                "quantization of the model are out of range")


from labkit.deploy import ops_conv  # noqa: E402,F401  (registers the conv-family lowerings)
from labkit.deploy import ops_elementwise  # noqa: E402,F401  (registers the elementwise and data-movement lowerings)
from labkit.deploy import ops_lstm  # noqa: E402,F401  (registers the LSTM lowering)
