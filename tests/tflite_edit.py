"""Rewrite a converted .tflite through the schema's object API, to build models that other
converters write but the pinned one does not (labkit-nn reads any int8 .tflite)."""

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema


def _opcode(model, builtin) -> int:
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = builtin
    code.version = 1
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _reshapes(model):
    """(op, shape before, shape after) of every RESHAPE in the main graph."""
    g = model.subgraphs[0]
    for op in g.operators:
        code = model.operatorCodes[op.opcodeIndex]
        if max(code.builtinCode, code.deprecatedBuiltinCode) == schema.BuiltinOperator.RESHAPE:
            yield op, list(g.tensors[op.inputs[0]].shape), list(g.tensors[op.outputs[0]].shape)


def _pack(model) -> bytes:
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _load(tflite: bytes):
    return schema.ModelT.InitFromObj(schema.Model.GetRootAs(tflite, 0))


def reshape_as_squeeze(tflite: bytes) -> bytes:
    """The model with its RESHAPE ops that only drop size-1 axes written as SQUEEZE ops."""
    model = _load(tflite)
    squeeze = _opcode(model, schema.BuiltinOperator.SQUEEZE)
    rewritten = 0
    for op, before, after in _reshapes(model):
        dropped = [i for i, n in enumerate(before) if n == 1 and i > 0]
        if not dropped or [n for i, n in enumerate(before) if i not in dropped] != after:
            continue
        options = schema.SqueezeOptionsT()
        options.squeezeDims = dropped
        op.opcodeIndex, op.inputs = squeeze, [op.inputs[0]]
        op.builtinOptionsType, op.builtinOptions = schema.BuiltinOptions.SqueezeOptions, options
        rewritten += 1
    assert rewritten, "no RESHAPE that only drops size-1 axes"
    return _pack(model)


def reshape_as_expand_dims(tflite: bytes) -> bytes:
    """The model with its RESHAPE ops that only insert one size-1 axis written as EXPAND_DIMS ops
    (the axis as a constant int32 tensor, as TensorFlow's converter writes it for tf.expand_dims)."""
    model = _load(tflite)
    g = model.subgraphs[0]
    expand = _opcode(model, schema.BuiltinOperator.EXPAND_DIMS)
    rewritten = 0
    for op, before, after in _reshapes(model):
        axes = [i for i in range(len(after)) if after[i] == 1 and after[:i] + after[i + 1:] == before]
        if len(after) != len(before) + 1 or not axes:
            continue
        buffer = schema.BufferT()
        buffer.data = np.array([axes[-1]], "<i4").view(np.uint8)
        model.buffers.append(buffer)
        axis = schema.TensorT()
        axis.shape, axis.type, axis.buffer, axis.name = [1], schema.TensorType.INT32, len(model.buffers) - 1, b"axis"
        g.tensors.append(axis)
        op.opcodeIndex, op.inputs = expand, [op.inputs[0], len(g.tensors) - 1]
        op.builtinOptionsType, op.builtinOptions = schema.BuiltinOptions.ExpandDimsOptions, schema.ExpandDimsOptionsT()
        rewritten += 1
    assert rewritten, "no RESHAPE that only inserts a size-1 axis"
    return _pack(model)
