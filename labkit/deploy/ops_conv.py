"""Lowering of the convolution family: CONV_2D, DEPTHWISE_CONV_2D, MAX_POOL_2D, AVERAGE_POOL_2D, MEAN.

The kernels are in labkit/runtime/labkit_nn_conv.c. Everything that TFLite computes once, at
model-preparation time (padding, requantization multipliers, activation ranges), is computed
here the same way, so the C only runs the integer loops.
"""

from __future__ import annotations

import numpy as np

from labkit.deploy import quant_math as qm
from labkit.deploy.ir import Graph, Op, Tensor
from labkit.deploy.ops import (CArray, Lowered, _check_accumulator, _fail, _multipliers, _require_int8, _scalar,
                               lowering)


def _out_size(padding: str, in_size: int, k: int, stride: int, dilation: int) -> int:
    """TFLite's ComputeOutSize."""
    effective = (k - 1) * dilation + 1
    if padding == "SAME":
        return (in_size + stride - 1) // stride
    return (in_size + stride - effective) // stride


def _pad_before(in_size: int, k: int, stride: int, dilation: int, out_size: int) -> int:
    """Padding before the first row/column, as TFLite's ComputePaddingHeightWidth: half the
    total padding rounded down (the odd row or column goes at the end). 0 for VALID."""
    effective = (k - 1) * dilation + 1
    total = max((out_size - 1) * stride + effective - in_size, 0)
    return total // 2


def _spatial(op: Op, x: Tensor, y: Tensor, k_h: int, k_w: int, dilation_h: int = 1, dilation_w: int = 1) -> dict:
    """Shapes, strides and padding of a 2D sliding-window op, checked against the output tensor."""
    if len(x.shape) != 4 or len(y.shape) != 4:
        raise _fail(op, f"expected 4D NHWC tensors, got {list(x.shape)} -> {list(y.shape)}")
    padding = op.options.get("padding", "SAME")
    if padding not in ("SAME", "VALID"):
        raise _fail(op, f"padding {padding} is not supported")
    stride_h, stride_w = int(op.options.get("stride_h", 1)), int(op.options.get("stride_w", 1))
    if min(stride_h, stride_w, dilation_h, dilation_w) < 1:
        raise _fail(op, "strides and dilations must be at least 1")
    batches, in_h, in_w, _ = x.shape
    _, out_h, out_w, _ = y.shape
    want = (_out_size(padding, in_h, k_h, stride_h, dilation_h), _out_size(padding, in_w, k_w, stride_w, dilation_w))
    if (out_h, out_w) != want or y.shape[0] != batches:
        raise _fail(op, f"output shape {list(y.shape)} does not follow from the input {list(x.shape)} "
                        f"({padding} padding would give {want[0]} x {want[1]})")
    return dict(
        batches=batches,
        in_h=in_h,
        in_w=in_w,
        out_h=out_h,
        out_w=out_w,
        stride_h=stride_h,
        stride_w=stride_w,
        pad_top=_pad_before(in_h, k_h, stride_h, dilation_h, out_h),
        pad_left=_pad_before(in_w, k_w, stride_w, dilation_w, out_w),
        padding=padding,
    )


def _weights(op: Op, g: Graph, out_ch: int, quantized_dimension: int) -> tuple[Tensor, Tensor | None]:
    ins = g.op_inputs(op) + [None, None]
    w, b = ins[1], ins[2]
    if w is None or not w.is_constant or w.dtype != np.int8 or len(w.scale) == 0:
        raise _fail(op, "the filter must be a constant int8 quantized tensor")
    if np.any(w.zero_point != 0):
        raise _fail(op, "int8 filters must be symmetric (zero point 0), as TFLite's converter makes them")
    if len(w.scale) not in (1, out_ch) or (len(w.scale) > 1 and w.quantized_dimension != quantized_dimension):
        raise _fail(op, f"the filter must be quantized per tensor or per output channel "
                        f"({len(w.scale)} scales along axis {w.quantized_dimension}, {out_ch} channels)")
    if b is not None and (not b.is_constant or b.dtype != np.int32 or b.size != out_ch):
        raise _fail(op, "the bias must be a constant int32 vector, one value per output channel")
    return w, b


def _requantization(x: Tensor, w: Tensor, y: Tensor, out_ch: int, name: str) -> list[CArray]:
    """One multiplier and shift per output channel; a per-tensor filter scale is broadcast,
    as TFLite's PopulateConvolutionQuantizationParams does."""
    s_in, _ = _scalar(x)
    s_out, _ = _scalar(y)
    scales = [float(w.scale[c if len(w.scale) > 1 else 0]) for c in range(out_ch)]
    return list(_multipliers([s_in * ws / s_out for ws in scales], name))


def _activation(op: Op, y: Tensor) -> tuple[str, int, int]:
    act = op.options.get("fused_activation_function", "NONE")
    s_out, z_out = _scalar(y)
    try:
        lo, hi = qm.activation_range(act, s_out, z_out)
    except ValueError:
        raise _fail(op, f"fused activation {act} is not supported") from None
    return act, lo, hi


def _describe(kind: str, sp: dict, k_h: int, k_w: int, extra: str, act: str) -> str:
    s = f"{kind} {k_h}x{k_w}{extra}, {sp['in_h']}x{sp['in_w']} -> {sp['out_h']}x{sp['out_w']}"
    if sp["stride_h"] != 1 or sp["stride_w"] != 1:
        s += f", stride {sp['stride_h']}x{sp['stride_w']}"
    s += f", {sp['padding']}"
    return s + (f", {act}" if act != "NONE" else "")


@lowering("CONV_2D")
def _conv_2d(g: Graph, op: Op, name: str) -> Lowered:
    x = g.op_inputs(op)[0]
    (y,) = g.op_outputs(op)
    _require_int8(op, x, y)
    out_ch = y.shape[-1]
    w, b = _weights(op, g, out_ch, quantized_dimension=0)
    if len(w.shape) != 4 or w.shape[0] != out_ch:
        raise _fail(op, f"filter shape {list(w.shape)} is not [out_ch, k_h, k_w, in_ch]")
    _, k_h, k_w, filter_in_ch = w.shape
    in_ch = x.shape[-1]
    if in_ch % filter_in_ch or out_ch % (in_ch // filter_in_ch):
        raise _fail(op, f"{in_ch} input channels do not split into groups of {filter_in_ch}")
    groups = in_ch // filter_in_ch
    _check_accumulator(op, k_h * k_w * filter_in_ch, b)
    dilation_h, dilation_w = int(op.options.get("dilation_h_factor", 1)), int(op.options.get("dilation_w_factor", 1))
    sp = _spatial(op, x, y, k_h, k_w, dilation_h, dilation_w)
    act, lo, hi = _activation(op, y)
    _, z_in = _scalar(x)
    _, z_out = _scalar(y)
    shape = f"{out_ch} x {k_h} x {k_w} x {filter_in_ch}"
    # The DSP path reads each weight row as whole words (LK_CONV_SCRATCH_BYTES): the last row's
    # last word needs up to 3 bytes past the filter, zeros here (they multiply the window's zeros).
    k = k_h * k_w * filter_in_ch
    k4 = (k + 3) // 4 * 4
    # LK_CONV_SMALL_FILTER: the DSP path's small-filter case
    small = (out_ch % 4 == 0 and out_ch * k4 <= 256 and k_w * filter_in_ch >= 4
             and int(op.options.get("dilation_w_factor", 1)) == 1 and groups == 1)
    pad = np.zeros(k4 - k, dtype=np.int8)
    arrays = [CArray("int8_t", f"{name}_filter", np.concatenate([w.data.reshape(-1), pad]),
                     f"{shape} int8 filter" + (f", then {pad.size} zero bytes the DSP path may read" if pad.size else ""))]
    if b is not None:
        arrays.append(CArray("int32_t", f"{name}_bias", b.data.reshape(-1), "int32 biases"))
    arrays += _requantization(x, w, y, out_ch, name)
    fields = dict(
        batches=sp["batches"], in_h=sp["in_h"], in_w=sp["in_w"], in_ch=in_ch,
        out_h=sp["out_h"], out_w=sp["out_w"], out_ch=out_ch,
        k_h=k_h, k_w=k_w, filter_in_ch=filter_in_ch,
        stride_h=sp["stride_h"], stride_w=sp["stride_w"],
        dilation_h=dilation_h, dilation_w=dilation_w,
        pad_top=sp["pad_top"], pad_left=sp["pad_left"],
        input_offset=-z_in, output_offset=z_out, act_min=lo, act_max=hi,
        multiplier=f"{name}_multiplier", shift=f"{name}_shift",
    )  # fmt: skip
    extra = f", {in_ch} -> {out_ch} channels"
    if groups > 1:
        extra += f" in {groups} groups"
    if dilation_h != 1 or dilation_w != 1:
        extra += f", dilation {dilation_h}x{dilation_w}"
    bias = f"{name}_bias" if b is not None else "NULL"
    return Lowered(
        comment=_describe("CONV_2D", sp, k_h, k_w, extra, act),
        call=f"lk_conv_s8(&{name}_params, {{in0}}, {name}_filter, {bias}, {{out0}}, (int16_t *)({{scratch}}));",
        arrays=arrays,
        struct=("lk_conv_params", f"{name}_params", fields),
        # LK_CONV_SCRATCH_BYTES: the DSP path's im2col of four output pixels (int16), one window (bytes)
        # and each output channel's bias and requantization constants (4 int32); a 1x1 filter of up to
        # 8 values unpacks 16 pixels (int16) instead; a small filter's path its unpacked weights too
        scratch_bytes=max((32 if k_h * k_w == 1 and k4 <= 8 else 9) * k4, (2 * out_ch + 6) * k4 if small else 0)
        + 16 * out_ch,
        macs=sp["batches"] * sp["out_h"] * sp["out_w"] * out_ch * k_h * k_w * filter_in_ch,
        # the DSP path's pointwise case (lk_conv_s8): 1x1, one group, no padding, a multiple of 4 channels;
        # its small-filter case (lk_conv_small)
        features=frozenset({"conv_pointwise"} if (k_h, k_w, groups, sp["pad_top"], sp["pad_left"], in_ch % 4)
                           == (1, 1, 1, 0, 0, 0) else set()) | frozenset({"conv_small"} if small else set()),
    )


@lowering("DEPTHWISE_CONV_2D")
def _depthwise_conv_2d(g: Graph, op: Op, name: str) -> Lowered:
    x = g.op_inputs(op)[0]
    (y,) = g.op_outputs(op)
    _require_int8(op, x, y)
    in_ch, out_ch = x.shape[-1], y.shape[-1]
    w, b = _weights(op, g, out_ch, quantized_dimension=3)
    if len(w.shape) != 4 or w.shape[0] != 1 or w.shape[3] != out_ch:
        raise _fail(op, f"filter shape {list(w.shape)} is not [1, k_h, k_w, out_ch]")
    if out_ch % in_ch:
        raise _fail(op, f"{out_ch} output channels are not a multiple of the {in_ch} input channels")
    # The multiplier follows from the shapes (TFLite's kernels ignore the deprecated option).
    depth_multiplier = out_ch // in_ch
    _, k_h, k_w, _ = w.shape
    _check_accumulator(op, k_h * k_w, b)
    dilation_h, dilation_w = int(op.options.get("dilation_h_factor", 1)), int(op.options.get("dilation_w_factor", 1))
    sp = _spatial(op, x, y, k_h, k_w, dilation_h, dilation_w)
    act, lo, hi = _activation(op, y)
    _, z_in = _scalar(x)
    _, z_out = _scalar(y)
    arrays = [CArray("int8_t", f"{name}_filter", w.data.reshape(-1), f"{k_h} x {k_w} x {out_ch} int8 filter")]
    if b is not None:
        arrays.append(CArray("int32_t", f"{name}_bias", b.data.reshape(-1), "int32 biases"))
    arrays += _requantization(x, w, y, out_ch, name)
    fields = dict(
        batches=sp["batches"], in_h=sp["in_h"], in_w=sp["in_w"], in_ch=in_ch,
        out_h=sp["out_h"], out_w=sp["out_w"], out_ch=out_ch,
        k_h=k_h, k_w=k_w, depth_multiplier=depth_multiplier,
        stride_h=sp["stride_h"], stride_w=sp["stride_w"],
        dilation_h=dilation_h, dilation_w=dilation_w,
        pad_top=sp["pad_top"], pad_left=sp["pad_left"],
        input_offset=-z_in, output_offset=z_out, act_min=lo, act_max=hi,
        multiplier=f"{name}_multiplier", shift=f"{name}_shift",
    )  # fmt: skip
    # LK_DEPTHWISE_SCRATCH_BYTES: the DSP path's tap offsets (int32), unpacked weights (int16) and
    # per-channel requantization constants (3 int32)
    taps = k_h * k_w
    scratch = (4 * ((taps + 1) // 2 * 2) + 8 * (out_ch // 4) * taps + 12 * (out_ch // 4 * 4)
               if depth_multiplier == 1 and out_ch >= 4 else 0)
    extra = f", {in_ch} channels" + (f" x {depth_multiplier}" if depth_multiplier > 1 else "")
    if dilation_h != 1 or dilation_w != 1:
        extra += f", dilation {dilation_h}x{dilation_w}"
    bias = f"{name}_bias" if b is not None else "NULL"
    return Lowered(
        comment=_describe("DEPTHWISE_CONV_2D", sp, k_h, k_w, extra, act),
        call=(f"lk_depthwise_conv_s8(&{name}_params, {{in0}}, {name}_filter, {bias}, {{out0}}, "
              + ("(int16_t *)({scratch})" if scratch else "NULL") + ");"),
        arrays=arrays,
        struct=("lk_depthwise_conv_params", f"{name}_params", fields),
        scratch_bytes=scratch,
        macs=sp["batches"] * sp["out_h"] * sp["out_w"] * out_ch * k_h * k_w,
    )


@lowering("MAX_POOL_2D", "AVERAGE_POOL_2D")
def _pool_2d(g: Graph, op: Op, name: str) -> Lowered:
    x = g.op_inputs(op)[0]
    (y,) = g.op_outputs(op)
    _require_int8(op, x, y)
    if _scalar(x) != _scalar(y):
        raise _fail(op, f"int8 pooling needs the output quantized like the input (got {_scalar(x)} -> {_scalar(y)})")
    k_h, k_w = int(op.options.get("filter_height", 1)), int(op.options.get("filter_width", 1))
    if k_h * k_w * 128 >= 2**31:
        raise _fail(op, f"a {k_h}x{k_w} window sums more int8 values than an int32 holds")
    sp = _spatial(op, x, y, k_h, k_w)
    if x.shape[-1] != y.shape[-1]:
        raise _fail(op, "pooling must keep the number of channels")
    act, lo, hi = _activation(op, y)
    channels = x.shape[-1]
    fields = dict(
        batches=sp["batches"], in_h=sp["in_h"], in_w=sp["in_w"], channels=channels,
        out_h=sp["out_h"], out_w=sp["out_w"], k_h=k_h, k_w=k_w,
        stride_h=sp["stride_h"], stride_w=sp["stride_w"],
        pad_top=sp["pad_top"], pad_left=sp["pad_left"], act_min=lo, act_max=hi,
    )  # fmt: skip
    fn = "lk_max_pool_s8" if op.kind == "MAX_POOL_2D" else "lk_average_pool_s8"
    return Lowered(
        comment=_describe(op.kind, sp, k_h, k_w, f", {channels} channels", act),
        call=f"{fn}(&{name}_params, {{in0}}, {{out0}});",
        struct=("lk_pool_params", f"{name}_params", fields),
        # no multiplies: one compare or add per window tap, counted so the work is visible
        macs=sp["batches"] * sp["out_h"] * sp["out_w"] * channels * k_h * k_w,
    )


def _mean_axes(op: Op, x: Tensor, axis: Tensor | None) -> list[int]:
    if axis is None or not axis.is_constant:
        raise _fail(op, "the axes must be a constant tensor")
    rank = len(x.shape)
    axes = set()
    for a in np.asarray(axis.data).reshape(-1).tolist():
        if not -rank <= a < rank:
            raise _fail(op, f"axis {a} is out of range for a rank-{rank} input")
        axes.add(a + rank if a < 0 else a)
    return sorted(axes)


@lowering("MEAN")
def _mean(g: Graph, op: Op, name: str) -> Lowered:
    ins = g.op_inputs(op) + [None]
    x, axis = ins[0], ins[1]
    (y,) = g.op_outputs(op)
    _require_int8(op, x, y)
    axes = _mean_axes(op, x, axis)
    # Axes of size 1 change nothing; the others to reduce must be adjacent, so the input is
    # [outer][reduce][inner] in memory.
    big = [i for i, d in enumerate(x.shape) if d > 1]
    reduced = [i for i in big if i in axes]
    kept = [i for i in big if i not in axes]
    if reduced and any(reduced[0] < k < reduced[-1] for k in kept):
        raise _fail(op, f"MEAN over non-adjacent axes {axes} of a {list(x.shape)} tensor is not supported")
    dims = list(x.shape)
    first = reduced[0] if reduced else len(dims)
    last = reduced[-1] if reduced else len(dims) - 1
    outer = int(np.prod(dims[:first], dtype=np.int64))
    reduce = int(np.prod(dims[first : last + 1], dtype=np.int64)) if reduced else 1
    inner = int(np.prod(dims[last + 1 :], dtype=np.int64))
    if reduce * 128 >= 2**31:
        raise _fail(op, f"a mean over {reduce} values sums more int8 values than an int32 holds")
    if outer * inner != y.size:
        raise _fail(op, f"output shape {list(y.shape)} does not follow from reducing {list(x.shape)} over {axes}")
    s_in, z_in = _scalar(x)
    s_out, z_out = _scalar(y)
    # TFLite's reference QuantizedMeanOrSum (LiteRT and TFLM alike): input_scale / output_scale as a
    # multiplier, then 1/reduce folded into it with integer arithmetic.
    pairs = {qm.quantize_multiplier(s_in / s_out, ref) for ref in (qm.LITERT, qm.TFLM)}
    if len(pairs) != 1:
        raise _fail(op, f"input/output scale ratio {s_in / s_out:g} is out of the supported range")
    ((multiplier, shift),) = pairs
    if shift > 30:
        raise _fail(op, f"input/output scale ratio {s_in / s_out:g} is out of the supported range (below 2^30)")
    extra = min(reduce.bit_length() - 1, 32, 31 + shift)
    multiplier = (multiplier << extra) // reduce
    shift -= extra
    fields = dict(
        outer=outer, reduce=reduce, inner=inner,
        input_zero_point=z_in, output_zero_point=z_out,
        multiplier=multiplier, shift=shift,
    )  # fmt: skip
    keep = bool(op.options.get("keep_dims", False))
    return Lowered(
        comment=f"MEAN over axes {axes} ({reduce} values each), {list(x.shape)} -> {list(y.shape)}"
        + (", keep_dims" if keep else ""),
        call=f"lk_mean_s8(&{name}_params, {{in0}}, {{out0}});",
        struct=("lk_mean_params", f"{name}_params", fields),
        # one accumulate per input value
        macs=x.size,
    )

