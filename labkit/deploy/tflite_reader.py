"""Read any .tflite file into the graph IR, through the flatbuffer schema's generated code.

Every access to the file is bounds-checked (:class:`_Table`): a truncated or corrupted file
becomes one :class:`LabkitError` naming where it broke (``at tensor N`` / ``op N`` / ``buffer N``),
never a ``struct.error`` or ``IndexError``. What the fields *mean* is checked next, by
:func:`labkit.deploy.validate.validate_graph`, before anything is lowered to C.
"""

from __future__ import annotations

import os
import re
import struct

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from labkit.deploy.ir import Graph, Op, Tensor
from labkit.errors import LabkitError, UnsupportedModelError

_OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
_ACTIVATIONS = {v: k for k, v in vars(schema.ActivationFunctionType).items() if not k.startswith("_")}
_PADDINGS = {v: k for k, v in vars(schema.Padding).items() if not k.startswith("_")}
OPTION_TYPES = {v: k for k, v in vars(schema.BuiltinOptions).items() if not k.startswith("_")}
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
MAX_RANK = 8  # TFLite's kernels stop at 6; more is a corrupted shape


class InvalidModelError(LabkitError):
    """A .tflite whose structure or contents are broken (truncated, corrupted, inconsistent)."""


def invalid(problem: str, where: str = "") -> InvalidModelError:
    """The one message for a broken model: ``not a valid .tflite: PROBLEM (at WHERE)``."""
    return InvalidModelError(f"not a valid .tflite: {problem}" + (f" (at {where})" if where else "")
                             + "; convert the model again, or check that the file was copied whole")


class _Table:
    """One flatbuffer table, every read checked against the file's bounds."""

    __slots__ = ("buf", "pos", "vt", "vt_size", "size", "where")

    def __init__(self, buf: bytes, pos: int, where: str):
        self.buf, self.pos, self.where = buf, pos, where
        self.vt = pos - self._get("<i", pos, "its table")
        self.vt_size, self.size = self._get("<H", self.vt, "its vtable"), self._get("<H", self.vt + 2, "its vtable")
        if self.vt_size < 4 or self.vt_size % 2 or self.size < 4:
            raise invalid(f"a table has a malformed vtable ({self.vt_size} / {self.size} bytes)", where)
        self._need(self.vt, self.vt_size, "its vtable")
        self._need(pos, self.size, "its table")

    def _need(self, pos: int, size: int, what: str) -> None:
        if pos < 0 or size < 0 or pos + size > len(self.buf):
            raise invalid(f"{what} lies outside the file ({size} bytes at offset {pos} of {len(self.buf)}; "
                          "truncated or corrupted)", self.where)

    def _get(self, fmt: str, pos: int, what: str):
        self._need(pos, struct.calcsize(fmt), what)
        return struct.unpack_from(fmt, self.buf, pos)[0]

    def _field(self, slot: int, size: int) -> int | None:
        """File position of field ``slot`` (0, 1, ...), or None when it is absent."""
        at = 4 + 2 * slot
        if at + 2 > self.vt_size:
            return None
        off = self._get("<H", self.vt + at, "a vtable entry")
        if off == 0:
            return None
        if off + size > self.size:
            raise invalid(f"field {slot} lies outside its table", self.where)
        return self.pos + off

    def scalar(self, slot: int, fmt: str, default):
        p = self._field(slot, struct.calcsize(fmt))
        return default if p is None else self._get(fmt, p, f"field {slot}")

    def _target(self, slot: int) -> int | None:
        p = self._field(slot, 4)
        return None if p is None else p + self._get("<I", p, f"field {slot}")

    def table(self, slot: int, where: str | None = None) -> "_Table | None":
        t = self._target(slot)
        return None if t is None else _Table(self.buf, t, where or self.where)

    def _vector(self, slot: int, itemsize: int, what: str) -> tuple[int, int] | None:
        t = self._target(slot)
        if t is None:
            return None
        n = self._get("<I", t, what)
        self._need(t + 4, n * itemsize, what)
        return t + 4, n

    def array(self, slot: int, dtype: str, what: str) -> np.ndarray | None:
        v = self._vector(slot, np.dtype(dtype).itemsize, what)
        return None if v is None else np.frombuffer(self.buf, dtype, v[1], v[0]).copy()

    def data(self, slot: int, what: str) -> memoryview | None:
        v = self._vector(slot, 1, what)
        return None if v is None else memoryview(self.buf)[v[0] : v[0] + v[1]]

    def string(self, slot: int, what: str) -> str:
        v = self.data(slot, what)
        return "" if v is None else bytes(v).decode("utf-8", errors="replace")

    def tables(self, slot: int, what: str) -> list["_Table"]:
        v = self._vector(slot, 4, what)
        if v is None:
            return []
        start, n = v
        return [_Table(self.buf, p + self._get("<I", p, what), f"{what} {k}")
                for k, p in enumerate(range(start, start + 4 * n, 4))]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _options(op: _Table, where: str) -> dict:
    """The op's builtin options as a dict with snake_case keys (empty if it has none)."""
    kind = op.scalar(3, "<B", 0)
    if kind == 0:
        return {}
    if kind not in OPTION_TYPES:
        raise invalid(f"unknown builtin options type {kind}", where)
    table = op.table(4)
    if table is None:
        return {"options_type": OPTION_TYPES[kind]}
    try:  # the table's header and bounds are checked above; the schema code reads its fields
        opts = schema.BuiltinOptionsCreator(kind, flatbuffers.table.Table(table.buf, table.pos))
    except (struct.error, ValueError, IndexError, TypeError, OverflowError, UnicodeDecodeError) as e:
        raise invalid(f"its {OPTION_TYPES[kind]} are corrupted ({type(e).__name__})", where) from None
    out = {"options_type": OPTION_TYPES[kind]}
    for key, value in vars(opts).items() if opts is not None else ():
        key = _snake(key)
        if key == "fused_activation_function":
            value = _ACTIVATIONS.get(value, f"unknown activation {value}")
        elif key == "padding":
            value = _PADDINGS.get(value, f"unknown padding {value}")
        elif isinstance(value, np.ndarray):
            value = value.tolist()
        out[key] = value
    return out


def _quantization(t: _Table, where: str) -> tuple[np.ndarray, np.ndarray, int]:
    q = t.table(4)
    if q is None:
        return np.zeros(0, np.float32), np.zeros(0, np.int64), 0
    scale = q.array(2, "<f4", "its quantization scales")
    zp = q.array(3, "<i8", "its quantization zero points")
    return (np.zeros(0, np.float32) if scale is None else scale.astype(np.float32),
            np.zeros(0, np.int64) if zp is None else zp.astype(np.int64),
            int(q.scalar(6, "<i", 0)))


def _tensor(t: _Table, i: int, buffers: list[_Table], buf: bytes) -> Tensor:
    where = f"tensor {i}"
    kind = t.scalar(1, "<b", 0)
    if kind not in _DTYPES:
        name = next((k for k, v in vars(schema.TensorType).items() if v == kind), None)
        if name is None:
            raise invalid(f"unknown tensor type {kind}", where)
        raise UnsupportedModelError(f"tensor {i} is {name}, a type labkit-nn does not handle; "
                                    "labkit-nn runs full-int8 models (labkit.compress.quantize.to_int8_tflite)")
    dtype = np.dtype(_DTYPES[kind])
    shape = t.array(0, "<i4", "its shape")
    shape = () if shape is None else tuple(int(s) for s in shape)
    if len(shape) > MAX_RANK:
        raise invalid(f"a shape of rank {len(shape)} (at most {MAX_RANK})", where)
    if any(s < 0 for s in shape):
        raise UnsupportedModelError(
            f"tensor {i} has the dynamic shape {list(shape)}; labkit-nn needs fixed shapes. Build the model "
            "with a fixed batch size of 1 (keras.Input(..., batch_size=1)) before converting it")
    scale, zero_point, qdim = _quantization(t, where)
    b = t.scalar(2, "<I", 0)
    if b >= len(buffers):
        raise invalid(f"buffer index {b}, but the model has {len(buffers)} buffers", where)
    data = _buffer_data(buffers[b], b, buf)
    values = None
    if data is not None and len(data):
        size = int(np.prod(shape, dtype=object)) if shape else 1
        if size * dtype.itemsize != len(data):
            raise invalid(f"its shape {list(shape)} of {dtype.name} needs {size * dtype.itemsize} bytes, "
                          f"its constant buffer {b} holds {len(data)}", where)
        values = np.frombuffer(data, dtype).reshape(shape).copy()
    return Tensor(index=i, name=t.string(3, "its name"), shape=shape, dtype=dtype, scale=scale,
                  zero_point=zero_point, quantized_dimension=qdim, data=values,
                  is_variable=bool(t.scalar(5, "<B", 0)))


def _buffer_data(b: _Table, index: int, buf: bytes) -> memoryview | None:
    data = b.data(0, "its data")
    if data is not None and len(data):
        return data
    offset, size = b.scalar(1, "<Q", 0), b.scalar(2, "<Q", 0)
    if offset > 1 and size:  # data stored after the flatbuffer (models over 2 GB)
        if offset + size > len(buf):
            raise invalid(f"its {size} bytes at offset {offset} lie outside the file", f"buffer {index}")
        return memoryview(buf)[offset : offset + size]
    return None


def _indexes(t: _Table, slot: int, what: str) -> tuple[int, ...]:
    v = t.array(slot, "<i4", what)
    return () if v is None else tuple(int(x) for x in v)


def read_tflite(model: bytes | str | os.PathLike, validate: bool = True) -> Graph:
    """Parse a .tflite model (bytes or a path) into a :class:`Graph` of its main subgraph.

    With ``validate`` (the default) the graph is checked by
    :func:`labkit.deploy.validate.validate_graph`: anything returned is safe to lower to C.
    """
    if not isinstance(model, (bytes, bytearray, memoryview)):
        path = str(model)
        try:
            with open(path, "rb") as f:
                model = f.read()
        except OSError as e:
            raise LabkitError(f"cannot read model {path}: {e.strerror}") from None
    buf = bytes(model)
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise LabkitError("not a .tflite model (the file does not carry the TFL3 identifier)")
    root = _Table(buf, struct.unpack_from("<I", buf, 0)[0], "the model table")
    subgraphs = root.tables(2, "subgraph")
    if not subgraphs:
        raise UnsupportedModelError("the model has no subgraph")
    if len(subgraphs) > 1:
        raise UnsupportedModelError(
            f"the model has {len(subgraphs)} subgraphs (control flow such as WHILE or IF); labkit-nn "
            "supports single-graph models. For an LSTM, build it with a fixed batch size of 1 "
            "(Input(batch_size=1)) so the converter fuses it into one UNIDIRECTIONAL_SEQUENCE_LSTM op."
        )
    sg = subgraphs[0]
    codes = root.tables(1, "operator code")
    buffers = root.tables(4, "buffer")
    tensors = [_tensor(t, i, buffers, buf) for i, t in enumerate(sg.tables(0, "tensor"))]
    ops = []
    for i, o in enumerate(sg.tables(3, "op")):
        where = f"op {i}"
        index = o.scalar(0, "<I", 0)
        if index >= len(codes):
            raise invalid(f"operator code {index}, but the model has {len(codes)}", where)
        code = codes[index]
        builtin = max(code.scalar(0, "<b", 0), code.scalar(3, "<i", 0))
        if builtin == schema.BuiltinOperator.CUSTOM:
            name = "CUSTOM:" + code.string(1, "its custom code")
        else:
            name = _OP_NAMES.get(builtin, f"BUILTIN_{builtin}")
        ops.append(Op(index=i, kind=name, version=int(code.scalar(2, "<i", 1)),
                      inputs=_indexes(o, 1, "its inputs"), outputs=_indexes(o, 2, "its outputs"),
                      options=_options(o, where), intermediates=_indexes(o, 8, "its intermediates")))
    g = Graph(tensors=tensors, ops=ops, inputs=list(_indexes(sg, 1, "the graph inputs")),
              outputs=list(_indexes(sg, 2, "the graph outputs")), description=root.string(3, "the description"))
    if validate:
        from labkit.deploy.validate import validate_graph

        validate_graph(g)
    return g
