"""Read any .tflite file into the graph IR, through the flatbuffer schema's generated code."""

from __future__ import annotations

import os
import re

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from labkit.deploy.ir import Graph, Op, Tensor
from labkit.errors import LabkitError, UnsupportedModelError

_OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
_ACTIVATIONS = {v: k for k, v in vars(schema.ActivationFunctionType).items() if not k.startswith("_")}
_PADDINGS = {v: k for k, v in vars(schema.Padding).items() if not k.startswith("_")}
_DTYPES = {
    schema.TensorType.FLOAT32: np.float32,
    schema.TensorType.FLOAT16: np.float16,
    schema.TensorType.INT32: np.int32,
    schema.TensorType.UINT8: np.uint8,
    schema.TensorType.INT64: np.int64,
    schema.TensorType.BOOL: np.bool_,
    schema.TensorType.INT16: np.int16,
    schema.TensorType.INT8: np.int8,
}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _options(opts) -> dict:
    if opts is None:
        return {}
    out = {}
    for key, value in vars(opts).items():
        key = _snake(key)
        if key == "fused_activation_function":
            value = _ACTIVATIONS.get(value, str(value))
        elif key == "padding":
            value = _PADDINGS.get(value, str(value))
        elif isinstance(value, np.ndarray):
            value = value.tolist()
        out[key] = value
    return out


def read_tflite(model: bytes | str | os.PathLike) -> Graph:
    """Parse a .tflite model (bytes or a path) into a :class:`Graph` of its main subgraph."""
    if not isinstance(model, (bytes, bytearray)):
        path = str(model)
        try:
            with open(path, "rb") as f:
                model = f.read()
        except OSError as e:
            raise LabkitError(f"cannot read model {path}: {e.strerror}") from None
    buf = bytes(model)
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise LabkitError("not a .tflite model (the file does not carry the TFL3 identifier)")
    m = schema.ModelT.InitFromPackedBuf(buf, 0)
    if not m.subgraphs:
        raise UnsupportedModelError("the model has no subgraph")
    if len(m.subgraphs) > 1:
        raise UnsupportedModelError(
            f"the model has {len(m.subgraphs)} subgraphs (control flow such as WHILE or IF); labkit-nn "
            "supports single-graph models. For an LSTM, build it with a fixed batch size of 1 "
            "(Input(batch_size=1)) so the converter fuses it into one UNIDIRECTIONAL_SEQUENCE_LSTM op."
        )
    sg = m.subgraphs[0]

    def buffer_data(t) -> np.ndarray | None:
        b = m.buffers[t.buffer] if t.buffer < len(m.buffers) else None
        if b is None:
            return None
        dtype = _DTYPES[t.type]
        if b.data is not None and len(b.data):
            raw = np.asarray(b.data, dtype=np.uint8).tobytes()
        elif getattr(b, "offset", 0) > 1 and getattr(b, "size", 0):
            raw = buf[b.offset : b.offset + b.size]
        else:
            return None
        shape = tuple(int(s) for s in t.shape) if t.shape is not None else ()
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()

    tensors = []
    for i, t in enumerate(sg.tensors):
        if t.type not in _DTYPES:
            raise UnsupportedModelError(f"tensor {i} has a type labkit-nn does not handle (TensorType {t.type})")
        q = t.quantization
        scale = np.asarray(q.scale if q is not None and q.scale is not None else [], np.float32)
        zp = np.asarray(q.zeroPoint if q is not None and q.zeroPoint is not None else [], np.int64)
        tensors.append(
            Tensor(
                index=i,
                name=(t.name or b"").decode(errors="replace") if isinstance(t.name, bytes) else str(t.name or ""),
                shape=tuple(int(s) for s in t.shape) if t.shape is not None else (),
                dtype=np.dtype(_DTYPES[t.type]),
                scale=scale,
                zero_point=zp,
                quantized_dimension=int(q.quantizedDimension) if q is not None else 0,
                data=buffer_data(t),
                is_variable=bool(t.isVariable),
            )
        )

    ops = []
    for i, o in enumerate(sg.operators):
        code = m.operatorCodes[o.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        if builtin == schema.BuiltinOperator.CUSTOM:
            name = "CUSTOM:" + (code.customCode.decode() if isinstance(code.customCode, bytes) else str(code.customCode))
        else:
            name = _OP_NAMES.get(builtin, f"BUILTIN_{builtin}")
        ops.append(
            Op(
                index=i,
                kind=name,
                version=int(code.version),
                inputs=tuple(int(x) for x in (o.inputs if o.inputs is not None else [])),
                outputs=tuple(int(x) for x in (o.outputs if o.outputs is not None else [])),
                options=_options(o.builtinOptions),
                intermediates=tuple(int(x) for x in (o.intermediates if o.intermediates is not None else [])),
            )
        )
    desc = m.description.decode(errors="replace") if isinstance(m.description, bytes) else str(m.description or "")
    return Graph(
        tensors=tensors,
        ops=ops,
        inputs=[int(x) for x in sg.inputs],
        outputs=[int(x) for x in sg.outputs],
        description=desc,
    )
