"""Lowering of elementwise and data-movement ops: ADD, MUL, TANH, LOGISTIC, RELU, RELU6,
RELU_N1_TO_1, QUANTIZE, DEQUANTIZE, CONCATENATION, PAD, PADV2, SLICE, STRIDED_SLICE.

The data-movement ops all become one strided copy (see ``lk_walk`` in
labkit_nn_elementwise.h): what differs is only which elements are visited, and where they go.
"""

from __future__ import annotations

import numpy as np

from labkit.deploy import quant_math as qm
from labkit.deploy.ir import Graph, Op, Tensor
from labkit.deploy.ops import CArray, Lowered, _fail, _multipliers, _require_int8, _scalar, lowering

MAX_DIMS = 5


def _dims(shape, op: Op) -> list[int]:
    shape = list(shape) or [1]
    if len(shape) > MAX_DIMS:
        raise _fail(op, f"tensors of more than {MAX_DIMS} dimensions are not supported")
    return [1] * (MAX_DIMS - len(shape)) + [int(s) for s in shape]


def _strides(dims: list[int]) -> list[int]:
    out, acc = [0] * len(dims), 1
    for d in range(len(dims) - 1, -1, -1):
        out[d], acc = acc, acc * dims[d]
    return out


def _broadcast_strides(in_shape, out_dims: list[int], op: Op) -> list[int]:
    dims = _dims(in_shape, op)
    strides = _strides(dims)
    for d, (n, m) in enumerate(zip(dims, out_dims)):
        if n == 1 and m != 1:
            strides[d] = 0  # repeat along this dimension
        elif n != m:
            raise _fail(op, f"shapes {list(in_shape)} and {out_dims} do not broadcast")
    return strides


def _walk(dims, a=None, b=None, out=None) -> str:
    zero = [0] * MAX_DIMS

    def arr(v):
        return "{" + ", ".join(str(int(x)) for x in v) + "}"

    return (f"{{ .dims = {arr(dims)}, .stride_a = {arr(a or zero)}, .stride_b = {arr(b or zero)}, "
            f".stride_out = {arr(out or zero)} }}")


def _operand(t: Tensor, k: int, name: str, arrays: list[CArray]) -> str:
    """A non-constant input is a place in the arena; a constant one becomes a flash array."""
    if not t.is_constant:
        return f"{{in{k}}}"
    arr = CArray("int8_t", f"{name}_input{k}", t.data.reshape(-1), f"constant operand {k}, shape {list(t.shape)}")
    arrays.append(arr)
    return arr.name


# ---- arithmetic ----------------------------------------------------------------------------


@lowering("ADD")
def _add(g: Graph, op: Op, name: str) -> Lowered:
    a, b = g.op_inputs(op)[:2]
    (y,) = g.op_outputs(op)
    _require_int8(op, a, b, y)
    (sa, za), (sb, zb), (so, zo) = _scalar(a), _scalar(b), _scalar(y)
    left_shift = 20
    twice_max = 2.0 * float(max(np.float32(sa), np.float32(sb)))
    reals = [sa / twice_max, sb / twice_max, twice_max / ((1 << left_shift) * so)]
    mults = [_multipliers([r], f"{name}_{k}") for k, r in enumerate(reals)]
    if any(m.tflm_values is not None for m, _ in mults):
        raise _fail(op, "an ADD rescale factor is out of the range TFLite supports")
    (ma, sha), (mb, shb), (mo, sho) = [(int(m.values[0]), int(s.values[0])) for m, s in mults]
    out_dims = _dims(y.shape, op)
    arrays: list[CArray] = []
    pa, pb = _operand(a, 0, name, arrays), _operand(b, 1, name, arrays)
    lo, hi = qm.activation_range(op.options.get("fused_activation_function", "NONE"), so, zo)
    fields = dict(
        walk=_walk(out_dims, _broadcast_strides(a.shape, out_dims, op), _broadcast_strides(b.shape, out_dims, op),
                   _strides(out_dims)),
        a_offset=-za, b_offset=-zb, output_offset=zo, left_shift=left_shift,
        a_multiplier=ma, a_shift=sha, b_multiplier=mb, b_shift=shb, output_multiplier=mo, output_shift=sho,
        act_min=lo, act_max=hi,
    )
    return Lowered(
        comment=f"ADD {list(a.shape)} + {list(b.shape)} -> {list(y.shape)}",
        call=f"lk_add_s8(&{name}_params, {pa}, {pb}, {{out0}});",
        arrays=arrays,
        struct=("lk_add_params", f"{name}_params", fields),
    )


@lowering("MUL")
def _mul(g: Graph, op: Op, name: str) -> Lowered:
    a, b = g.op_inputs(op)[:2]
    (y,) = g.op_outputs(op)
    _require_int8(op, a, b, y)
    (sa, za), (sb, zb), (so, zo) = _scalar(a), _scalar(b), _scalar(y)
    m, s = _multipliers([sa * sb / so], name)
    out_dims = _dims(y.shape, op)
    arrays: list[CArray] = []
    pa, pb = _operand(a, 0, name, arrays), _operand(b, 1, name, arrays)
    lo, hi = qm.activation_range(op.options.get("fused_activation_function", "NONE"), so, zo)
    fields = dict(
        walk=_walk(out_dims, _broadcast_strides(a.shape, out_dims, op), _broadcast_strides(b.shape, out_dims, op),
                   _strides(out_dims)),
        a_offset=-za, b_offset=-zb, output_offset=zo,
        output_multiplier=f"{name}_multiplier[0]", output_shift=f"{name}_shift[0]",
        act_min=lo, act_max=hi,
    )
    return Lowered(
        comment=f"MUL {list(a.shape)} * {list(b.shape)} -> {list(y.shape)}",
        call=f"lk_mul_s8(&{name}_params, {pa}, {pb}, {{out0}});",
        arrays=arrays + [m, s],
        struct=("lk_mul_params", f"{name}_params", fields),
        macs=y.size,
    )


# ---- functions of one value ------------------------------------------------------------------


@lowering("TANH", "LOGISTIC")
def _lut(g: Graph, op: Op, name: str) -> Lowered:
    x = g.op_inputs(op)[0]
    (y,) = g.op_outputs(op)
    _require_int8(op, x, y)
    args = (op.kind, *_scalar(x), *_scalar(y))
    table = CArray("int8_t", f"{name}_table", qm.litert_lut(*args), f"{op.kind.lower()} of every int8 input, from -128",
                   tflm_values=qm.tflm_lut(*args))
    if np.array_equal(table.values, table.tflm_values):
        table.tflm_values = None
    return Lowered(
        comment=f"{op.kind} of {x.size} values, by table",
        call=f"lk_lookup_s8({name}_table, {{in0}}, {{out0}}, {x.size});",
        arrays=[table],
    )


@lowering("RELU", "RELU6", "RELU_N1_TO_1", "QUANTIZE", "DEQUANTIZE")
def _requantize(g: Graph, op: Op, name: str) -> Lowered:
    x = g.op_inputs(op)[0]
    (y,) = g.op_outputs(op)
    if op.kind == "QUANTIZE" and x.dtype == np.float32:
        _require_int8(op, y)
        s, z = _scalar(y)
        return Lowered(comment=f"QUANTIZE {x.size} floats to int8",
                       call=f"lk_quantize_f32_s8({{in0}}, {{out0}}, {x.size}, {s!r}, {z});")
    if op.kind == "DEQUANTIZE":
        if x.dtype != np.int8 or y.dtype != np.float32:
            raise _fail(op, "only int8 -> float32 DEQUANTIZE is supported")
        s, z = _scalar(x)
        return Lowered(comment=f"DEQUANTIZE {x.size} int8 values to float",
                       call=f"lk_dequantize_s8_f32({{in0}}, {{out0}}, {x.size}, {s!r}, {z});")
    _require_int8(op, x, y)
    (si, zi), (so, zo) = _scalar(x), _scalar(y)
    if op.kind == "QUANTIZE":  # int8 -> int8: a change of scale
        real, lo, hi = si / so, -128, 127
    else:  # RELU*: TFLite divides the scales in float here, and clamps as a fused activation would
        real = float(np.float32(si) / np.float32(so))
        lo, hi = qm.activation_range(op.kind, so, zo)
    lit, tfl = qm.quantize_multiplier(real, qm.LITERT), qm.quantize_multiplier(real, qm.TFLM)
    if tfl[1] > 30:
        raise _fail(op, f"input/output scale ratio {real:g} is out of the supported range (below 2^30)")
    fields = dict(size=x.size, input_zero_point=zi, output_zero_point=zo,
                  multiplier=lit[0], shift=lit[1], act_min=lo, act_max=hi)
    tflm_fields = dict(fields, multiplier=tfl[0], shift=tfl[1]) if tfl != lit else None
    if op.kind == "RELU6":
        # TFLite Micro clamps RELU6 in the input's quantization and copies, without rescaling:
        # multiplier 2^30 with shift 1 is exactly x1, the clamp is [zero, six] in input units.
        six = zi + int(np.sign(np.float32(6.0) / np.float32(si)) * np.floor(abs(np.float32(6.0) / np.float32(si)) + 0.5))
        tflm_fields = dict(fields, input_zero_point=0, output_zero_point=0, multiplier=1 << 30, shift=1,
                           act_min=max(-128, zi), act_max=min(127, six))
    return Lowered(
        comment=f"{op.kind} of {x.size} values",
        call=f"lk_relu_s8(&{name}_params, {{in0}}, {{out0}});",
        struct=("lk_relu_params", f"{name}_params", fields),
        tflm_fields=tflm_fields,
    )


# ---- data movement ----------------------------------------------------------------------------


def _same_quantization(op: Op, a: Tensor, y: Tensor) -> None:
    if y.dtype != np.int8:
        raise _fail(op, f"the output is {y.dtype.name}; labkit-nn moves int8 data only (full-int8 models)")
    if a.dtype != y.dtype or (len(a.scale) and (_scalar(a) != _scalar(y))):
        raise _fail(op, f"input '{a.name}' and the output are quantized differently; labkit-nn copies bytes here, "
                        "as TFLite Micro does, so they must share scale and zero point")


@lowering("CONCATENATION")
def _concatenation(g: Graph, op: Op, name: str) -> Lowered:
    (y,) = g.op_outputs(op)
    ins = g.op_inputs(op)
    if op.options.get("fused_activation_function", "NONE") != "NONE":
        raise _fail(op, "a fused activation on CONCATENATION is not supported")
    axis = int(op.options.get("axis", 0))
    axis = axis + len(y.shape) if axis < 0 else axis
    out_dims = _dims(y.shape, op)
    axis5 = axis + MAX_DIMS - len(y.shape)
    out_strides = _strides(out_dims)
    arrays: list[CArray] = []
    calls, structs = [], []
    offset = 0
    for k, t in enumerate(ins):
        _same_quantization(op, t, y)
        dims = _dims(t.shape, op)
        src = _operand(t, k, name, arrays)
        fields = dict(walk=_walk(dims, a=_strides(dims), out=out_strides), base_a=0, base_out=offset * out_strides[axis5])
        structs.append((f"{name}_part{k}", fields))
        calls.append(f"lk_strided_copy_s8(&{name}_part{k}, {src}, {{out0}});")
        offset += dims[axis5]
    return Lowered(comment=f"CONCATENATION of {len(ins)} tensors along axis {axis} -> {list(y.shape)}",
                   call=" ".join(calls), arrays=arrays, structs=[("lk_copy_params", n, f) for n, f in structs])


@lowering("PAD", "PADV2")
def _pad(g: Graph, op: Op, name: str) -> Lowered:
    ins = g.op_inputs(op)
    x, paddings = ins[0], ins[1]
    (y,) = g.op_outputs(op)
    _same_quantization(op, x, y)
    if paddings is None or not paddings.is_constant:
        raise _fail(op, "the paddings must be constant")
    value = int(y.zero_point[0]) if len(y.zero_point) else 0
    if op.kind == "PADV2" and len(ins) > 2 and ins[2] is not None:
        if not ins[2].is_constant:
            raise _fail(op, "the pad value must be constant")
        value = int(ins[2].data.reshape(-1)[0])
    pads = paddings.data.reshape(-1, 2)
    lead = MAX_DIMS - len(x.shape)
    out_dims, in_dims = _dims(y.shape, op), _dims(x.shape, op)
    out_strides = _strides(out_dims)
    base = sum(int(pads[d][0]) * out_strides[d + lead] for d in range(len(x.shape)))
    fields = dict(walk=_walk(in_dims, a=_strides(in_dims), out=out_strides), base_a=0, base_out=base)
    return Lowered(
        comment=f"{op.kind} {list(x.shape)} -> {list(y.shape)} with {value}",
        call=f"lk_fill_s8({{out0}}, {y.size}, {value}); lk_strided_copy_s8(&{name}_params, {{in0}}, {{out0}});",
        struct=("lk_copy_params", f"{name}_params", fields),
    )


def _slice_plan(op: Op, in_shape, begin, end, strides, begin_mask=0, end_mask=0, shrink_mask=0):
    """Per dimension (start, step, count), as TFLite's strided-slice logic computes them."""
    plan = []
    for d, dim in enumerate(in_shape):
        stride = int(strides[d])
        if stride == 0:
            raise _fail(op, "a slice stride of 0 is invalid")
        if begin_mask & (1 << d):
            start = 0 if stride > 0 else dim - 1
        else:
            start = int(begin[d])
            start += dim if start < 0 else 0
            start = min(max(start, 0), dim) if stride > 0 else min(max(start, -1), dim - 1)
        if shrink_mask & (1 << d):
            stop = start + 1
        elif end_mask & (1 << d):
            stop = dim if stride > 0 else -1
        else:
            stop = int(end[d])
            stop += dim if stop < 0 else 0
            stop = min(max(stop, 0), dim) if stride > 0 else min(max(stop, -1), dim - 1)
        count = max(0, -(-(stop - start) // stride)) if stride > 0 else max(0, -(-(start - stop) // -stride))
        plan.append((start, stride, count))
    return plan


@lowering("SLICE", "STRIDED_SLICE")
def _slice(g: Graph, op: Op, name: str) -> Lowered:
    ins = g.op_inputs(op)
    x = ins[0]
    (y,) = g.op_outputs(op)
    _same_quantization(op, x, y)
    if any(t is None or not t.is_constant for t in ins[1:]):
        raise _fail(op, "begin, end/size and strides must be constant")
    rank = len(x.shape)
    if op.kind == "SLICE":
        begin, size = ins[1].data.reshape(-1), ins[2].data.reshape(-1)
        end = [int(b) + (int(s) if s >= 0 else x.shape[d] - int(b)) for d, (b, s) in enumerate(zip(begin, size))]
        plan = _slice_plan(op, x.shape, begin, end, [1] * rank)
    else:
        o = op.options
        if o.get("ellipsis_mask", 0) or o.get("new_axis_mask", 0) or o.get("offset", False):
            raise _fail(op, "ellipsis, new-axis and offset forms of STRIDED_SLICE are not supported")
        begin, end, strides = (t.data.reshape(-1) for t in ins[1:4])
        plan = _slice_plan(op, x.shape, begin, end, strides, o.get("begin_mask", 0), o.get("end_mask", 0),
                           o.get("shrink_axis_mask", 0))
    counts = [c for _, _, c in plan]
    if int(np.prod(counts)) != y.size:
        raise _fail(op, f"slice of {counts} elements does not match the output shape {list(y.shape)}")
    in_dims = _dims(x.shape, op)
    lead = MAX_DIMS - rank
    in_strides = _strides(in_dims)
    dims = [1] * lead + counts
    a_strides = [0] * lead + [step * in_strides[d + lead] for d, (_, step, _) in enumerate(plan)]
    base = sum(start * in_strides[d + lead] for d, (start, _, _) in enumerate(plan))
    fields = dict(walk=_walk(dims, a=a_strides, out=_strides(dims)), base_a=base, base_out=0)
    return Lowered(
        comment=f"{op.kind} {list(x.shape)} -> {list(y.shape)}",
        call=f"lk_strided_copy_s8(&{name}_params, {{in0}}, {{out0}});",
        struct=("lk_copy_params", f"{name}_params", fields),
    )
