"""What a model's fields mean, checked once, between reading and lowering.

:func:`labkit.deploy.tflite_reader.read_tflite` has already bounds-checked every byte it read;
here the graph it built is checked for what lowering and the generated C rely on: indexes in
range, constant data the size of its shape, quantization a kernel can use (finite scales > 0,
zero points in the type's range), known enums and fused activations, sane op options, graph
inputs that are not constants, ops in execution order, and output shapes that follow from the
inputs. Anything refused raises one :class:`LabkitError` naming the tensor or op, and the fix
where there is one; anything accepted lowers to C that stays inside its arrays.

Shape rules that need an op's arithmetic (a convolution's output size from its padding and
strides, a slice's extent) are checked by the op's lowering in ``ops*.py``, next to that
arithmetic.
"""

from __future__ import annotations

import math

import numpy as np

from labkit.deploy.ir import Graph, Op, Tensor
from labkit.deploy.tflite_reader import MAX_RANK, InvalidModelError, invalid
from labkit.errors import UnsupportedModelError

MAX_TENSOR_BYTES = 1 << 28  # 256 MiB: far beyond any board, and C's int sizes stay exact
MAX_WINDOW = 1 << 16  # strides, dilations and pooling windows
FUSED = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
_ZERO_POINT_RANGE = {
    np.dtype(np.int8): (-128, 127),
    np.dtype(np.uint8): (0, 255),
    np.dtype(np.int16): (-32768, 32767),
}

# kind: (fewest inputs, most inputs, inputs that must be present, builtin options type)
OP_SIGNATURES: dict[str, tuple[int, int, tuple[int, ...], str | None]] = {
    "FULLY_CONNECTED": (2, 3, (0, 1), "FullyConnectedOptions"),
    "CONV_2D": (2, 3, (0, 1), "Conv2DOptions"),
    "DEPTHWISE_CONV_2D": (2, 3, (0, 1), "DepthwiseConv2DOptions"),
    "MAX_POOL_2D": (1, 1, (0,), "Pool2DOptions"),
    "AVERAGE_POOL_2D": (1, 1, (0,), "Pool2DOptions"),
    "MEAN": (2, 2, (0, 1), "ReducerOptions"),
    "RESHAPE": (1, 2, (0,), "ReshapeOptions"),
    "SQUEEZE": (1, 1, (0,), "SqueezeOptions"),
    "EXPAND_DIMS": (2, 2, (0, 1), "ExpandDimsOptions"),
    "SOFTMAX": (1, 1, (0,), "SoftmaxOptions"),
    "TANH": (1, 1, (0,), None),
    "LOGISTIC": (1, 1, (0,), None),
    "RELU": (1, 1, (0,), None),
    "RELU6": (1, 1, (0,), None),
    "RELU_N1_TO_1": (1, 1, (0,), None),
    "QUANTIZE": (1, 1, (0,), None),
    "DEQUANTIZE": (1, 1, (0,), None),
    "ADD": (2, 2, (0, 1), "AddOptions"),
    "MUL": (2, 2, (0, 1), "MulOptions"),
    "CONCATENATION": (1, 1 << 16, (), "ConcatenationOptions"),
    "PAD": (2, 2, (0, 1), "PadOptions"),
    "PADV2": (2, 3, (0, 1), "PadV2Options"),
    "SLICE": (3, 3, (0, 1, 2), "SliceOptions"),
    "STRIDED_SLICE": (4, 4, (0, 1, 2, 3), "StridedSliceOptions"),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": (1, 24, (0,), "UnidirectionalSequenceLSTMOptions"),
}
# ops whose first input is an activation in the arena (the others may combine constants)
_CONSTANT_OPERANDS_OK = ("ADD", "MUL", "CONCATENATION")
_SAME_SHAPE = ("TANH", "LOGISTIC", "RELU", "RELU6", "RELU_N1_TO_1", "QUANTIZE", "DEQUANTIZE", "SOFTMAX")
_WINDOW_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D")


def _describe(t: Tensor) -> str:
    return f"tensor {t.index}" + (f" '{t.name[:60]}'" if t.name else "")


def _check_tensor(t: Tensor) -> None:
    where = f"tensor {t.index}"
    nbytes = math.prod(t.shape) * t.dtype.itemsize  # Python integers: numpy's int64 product could wrap
    if nbytes > MAX_TENSOR_BYTES:
        raise invalid(f"its shape {list(t.shape)} holds {nbytes} bytes (more than {MAX_TENSOR_BYTES})", where)
    if t.is_variable and t.is_constant:
        raise invalid("a variable (state) tensor with constant data", where)
    n = len(t.scale)
    if len(t.zero_point) != n:
        raise invalid(f"{n} quantization scale(s) but {len(t.zero_point)} zero point(s)", where)
    if n == 0:
        return
    bad = [float(s) for s in t.scale if not (math.isfinite(float(s)) and float(s) > 0)]
    if bad:
        raise invalid(f"quantization scale {bad[0]!r}; every scale must be finite and above 0", where)
    lo, hi = _ZERO_POINT_RANGE.get(t.dtype, (-(2**31), 2**31 - 1))
    off = [int(z) for z in t.zero_point if not lo <= int(z) <= hi]
    if off:
        raise invalid(f"zero point {off[0]} is outside the {t.dtype.name} range [{lo}, {hi}]", where)
    if n > 1:
        qd, rank = t.quantized_dimension, len(t.shape)
        if qd < 0 or (qd < rank and t.shape[qd] != n) or (qd >= rank and t.dtype != np.int32):
            # (an int32 bias may carry its filter's axis, as TFLite Micro's example models do: unused here)
            raise invalid(f"{n} per-channel scales along axis {qd} of a {list(t.shape)} tensor", where)


def _check_not_empty(t: Tensor) -> None:
    """Tensors that ops compute with hold at least one element (an LSTM's intermediates, which
    only carry quantization, may be empty)."""
    if any(d == 0 for d in t.shape):
        raise UnsupportedModelError(f"{_describe(t)} has the empty shape {list(t.shape)}; labkit-nn needs "
                                    "tensors with at least one element")


def _check_indexes(g: Graph) -> None:
    n = len(g.tensors)
    for what, idx in (("graph input", g.inputs), ("graph output", g.outputs)):
        for k, t in enumerate(idx):
            if not 0 <= t < n:
                raise invalid(f"{what} {k} is tensor {t}, but the model has {n} tensors", "the graph")
        if len(set(idx)) != len(idx):
            raise invalid(f"a tensor is listed twice as a {what}", "the graph")
    for op in g.ops:
        where = f"op {op.index} ({op.kind})"
        for k, t in enumerate(op.inputs):
            if not -1 <= t < n:
                raise invalid(f"input {k} is tensor {t}, but the model has {n} tensors", where)
        for k, t in enumerate(op.outputs):
            if not 0 <= t < n:
                raise invalid(f"output {k} is tensor {t}, but the model has {n} tensors", where)
        for k, t in enumerate(op.intermediates):
            if not 0 <= t < n:
                raise invalid(f"intermediate {k} is tensor {t}, but the model has {n} tensors", where)
        if len(set(op.outputs)) != len(op.outputs):
            raise invalid("a tensor is listed twice as its output", where)


def _check_dataflow(g: Graph) -> None:
    """Graph inputs are not constants; every tensor is written once, before any op reads it."""
    for t in g.inputs:
        if g.tensors[t].is_constant:
            raise invalid(f"graph input {_describe(g.tensors[t])} has constant data; an input is what the "
                          "caller provides each time", "the graph")
    ready = set(g.inputs) | {t.index for t in g.tensors if t.is_constant or t.is_variable}
    written = set(g.inputs)
    for op in g.ops:
        where = f"op {op.index} ({op.kind})"
        for t in op.inputs:
            if t >= 0 and t not in ready:
                later = any(t in o.outputs for o in g.ops[op.index + 1 :])
                raise invalid(f"it reads {_describe(g.tensors[t])} "
                              + ("before the op that writes it runs: the ops are not in execution order"
                                 if later else "that no op writes and that is not a graph input"), where)
        for t in op.outputs:
            tensor = g.tensors[t]
            if t in written or tensor.is_constant or tensor.is_variable:
                what = ("a graph input" if t in g.inputs else "a constant" if tensor.is_constant
                        else "a variable (state) tensor" if tensor.is_variable else "written by an earlier op")
                raise invalid(f"its output {_describe(tensor)} is {what}", where)
            written.add(t)
            ready.add(t)
    for t in g.outputs:
        if t not in written:
            raise invalid(f"graph output {_describe(g.tensors[t])} is not written by any op", "the graph")


def _options(op: Op, expected: str | None) -> None:
    where = f"op {op.index} ({op.kind})"
    o = op.options
    got = o.get("options_type")
    if expected and got and got != expected:
        raise invalid(f"it carries {got}, but {op.kind} takes {expected}", where)
    act = o.get("fused_activation_function", "NONE")
    if op.kind == "UNIDIRECTIONAL_SEQUENCE_LSTM":
        pass  # its activation is the cell's (tanh): the lowering checks it
    elif act.startswith("unknown"):
        raise invalid(f"{act} as its fused activation", where)
    elif act not in FUSED:
        raise UnsupportedModelError(f"op {op.index} ({op.kind}): fused activation {act} is not supported "
                                    f"(labkit-nn fuses {', '.join(FUSED)}); apply it as a separate layer")
    if op.kind in _WINDOW_OPS:
        if str(o.get("padding", "SAME")) not in ("SAME", "VALID"):
            raise invalid(f"{o.get('padding')} as its padding", where)
        keys = ["stride_h", "stride_w", "dilation_h_factor", "dilation_w_factor", "filter_height", "filter_width"]
        for key in keys:
            v = o.get(key, 1)
            if not 1 <= int(v) <= MAX_WINDOW:
                raise invalid(f"{key} = {v}; it must be between 1 and {MAX_WINDOW}", where)
    if op.kind == "SOFTMAX":
        beta = float(o.get("beta", 1.0))
        if not (math.isfinite(beta) and beta > 0):
            raise invalid(f"softmax beta {beta!r}; it must be finite and above 0", where)


def _shape_of(t: Tensor) -> list[int]:
    return list(t.shape) or [1]


def _strip(shape: list[int]) -> list[int]:
    """The shape without its leading 1s ([1, 1, 4] and [4] hold the same elements the same way)."""
    while len(shape) > 1 and shape[0] == 1:
        shape = shape[1:]
    return list(shape)


def _constant_ints(op: Op, t: Tensor, what: str) -> np.ndarray:
    if not t.is_constant or t.dtype not in (np.int32, np.int64):
        raise UnsupportedModelError(f"op {op.index} ({op.kind}): the {what} must be a constant int32 tensor")
    return np.asarray(t.data, np.int64).reshape(-1)


def _shapes(g: Graph, op: Op) -> None:
    """Output shapes that follow from the inputs without an op's arithmetic."""
    where = f"op {op.index} ({op.kind})"
    ins = g.op_inputs(op)
    y = g.tensors[op.outputs[0]]
    x = ins[0] if ins else None
    ranks = {"SOFTMAX": (1, MAX_RANK), "CONCATENATION": (1, MAX_RANK), **{k: (4, 4) for k in _WINDOW_OPS}}
    lo, hi = ranks.get(op.kind, (0, MAX_RANK))
    for t in [x, y] if x is not None else [y]:
        if not lo <= len(t.shape) <= hi:
            raise UnsupportedModelError(f"op {op.index} ({op.kind}): {_describe(t)} has rank {len(t.shape)}; "
                                        f"{op.kind} takes " + (f"rank {lo}" if lo == hi else f"rank {lo} or more"))
    if op.kind in _SAME_SHAPE and _shape_of(x) != _shape_of(y):
        raise invalid(f"output shape {list(y.shape)} differs from its input's {list(x.shape)}", where)
    if op.kind in ("ADD", "MUL"):
        try:
            want = list(np.broadcast_shapes(tuple(_shape_of(ins[0])), tuple(_shape_of(ins[1]))))
        except ValueError:
            raise invalid(f"shapes {list(ins[0].shape)} and {list(ins[1].shape)} do not broadcast", where) from None
        if _strip(want) != _strip(_shape_of(y)):
            raise invalid(f"output shape {list(y.shape)}, but {list(ins[0].shape)} and {list(ins[1].shape)} "
                          f"broadcast to {want}", where)
    if op.kind == "FULLY_CONNECTED":
        w = ins[1]
        if len(w.shape) != 2:
            raise invalid(f"weights of shape {list(w.shape)}; FULLY_CONNECTED weights are [outputs, inputs]", where)
        out_features, in_features = w.shape
        if x.size % in_features or y.size != x.size // in_features * out_features:
            raise invalid(f"weights [{out_features}, {in_features}] do not take the input {list(x.shape)} to the "
                          f"output {list(y.shape)} (weights must be [outputs, inputs])", where)
    if op.kind in ("PAD", "PADV2"):
        pads = _constant_ints(op, ins[1], "paddings")
        rank = len(x.shape)
        if pads.size != 2 * rank or len(y.shape) != rank:
            raise invalid(f"paddings of {pads.size} values for a rank-{rank} input (need {rank} x 2)", where)
        pads = pads.reshape(rank, 2)
        if (pads < 0).any():
            raise invalid(f"negative padding {pads.min()}", where)
        want = [int(d + a + b) for d, (a, b) in zip(x.shape, pads)]
        if want != list(y.shape):
            raise invalid(f"output shape {list(y.shape)}, but padding {list(x.shape)} gives {want}", where)
        if op.kind == "PADV2" and len(ins) > 2 and ins[2] is not None and (ins[2].dtype != x.dtype or ins[2].size != 1):
            raise invalid("the pad value must be one value of the input's type", where)
    if op.kind == "CONCATENATION":
        rank = len(y.shape)
        axis = int(op.options.get("axis", 0))
        if not -rank <= axis < max(rank, 1):
            raise invalid(f"axis {axis} for a rank-{rank} output", where)
        axis %= max(rank, 1)
        parts = [t for t in ins if t is not None]
        if len(parts) != len(ins) or not parts:
            raise invalid("an input is missing", where)
        for t in parts:
            if len(t.shape) != rank or any(a != b for d, (a, b) in enumerate(zip(t.shape, y.shape)) if d != axis):
                raise invalid(f"input {list(t.shape)} does not fit the output {list(y.shape)} along axis {axis}", where)
        if rank and sum(t.shape[axis] for t in parts) != y.shape[axis]:
            raise invalid(f"the inputs' sizes along axis {axis} do not add up to the output's {y.shape[axis]}", where)
    if op.kind == "MEAN":
        _constant_ints(op, ins[1], "axes")
    if op.kind in ("SLICE", "STRIDED_SLICE"):
        for k, what in enumerate(("begin", "end" if op.kind == "STRIDED_SLICE" else "size", "strides")[: len(ins) - 1]):
            v = _constant_ints(op, ins[k + 1], what)
            if v.size != len(x.shape):
                raise invalid(f"{what} has {v.size} values for a rank-{len(x.shape)} input", where)
    if op.kind in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS") and (x.size != y.size or x.dtype != y.dtype):
        raise invalid(f"it turns {list(x.shape)} {x.dtype.name} into {list(y.shape)} {y.dtype.name}", where)


def _check_op(g: Graph, op: Op) -> None:
    sig = OP_SIGNATURES.get(op.kind)
    if sig is None:
        return  # lowering names every unsupported op at once
    lo, hi, required, options = sig
    where = f"op {op.index} ({op.kind})"
    if not lo <= len(op.inputs) <= hi:
        raise invalid(f"{len(op.inputs)} inputs; {op.kind} takes {lo}" + (f" to {hi}" if hi != lo else ""), where)
    missing = [k for k in required if op.inputs[k] < 0]
    if missing:
        raise invalid(f"its required input {missing[0]} is missing", where)
    if len(op.outputs) != 1:
        raise invalid(f"{len(op.outputs)} outputs; {op.kind} has one", where)
    if op.kind not in _CONSTANT_OPERANDS_OK and g.tensors[op.inputs[0]].is_constant:
        raise UnsupportedModelError(f"op {op.index} ({op.kind}) computes on a constant input only; fold it "
                                    "into a constant when converting (the TFLite converter does by default)")
    _options(op, options)
    _shapes(g, op)


def validate_graph(g: Graph) -> Graph:
    """Check ``g`` as described in the module docstring; returns it, or raises LabkitError."""
    for t in g.tensors:
        _check_tensor(t)
    _check_indexes(g)
    used = set(g.inputs) | set(g.outputs) | {t for op in g.ops for t in op.inputs + op.outputs if t >= 0}
    for t in sorted(used):
        _check_not_empty(g.tensors[t])
    _check_dataflow(g)
    for op in g.ops:
        _check_op(g, op)
    return g


__all__ = ["InvalidModelError", "validate_graph", "OP_SIGNATURES"]
