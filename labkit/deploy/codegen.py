"""labkit-nn code generation: an int8 .tflite in, a readable C99 model out.

    generate_c("gesture.tflite", "out/", name="gesture")  ->  gesture.h, gesture.c,
                                                             labkit_nn.h/.c, labkit_nn_config.h
The folder is self-contained: copy it into any C project or Arduino sketch.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import jinja2
import numpy as np

import labkit
from labkit.deploy import memory, ops
from labkit.deploy.ir import Graph, Tensor
from labkit.deploy.quant_math import LITERT, TFLM
from labkit.deploy.tflite_reader import read_tflite
from labkit.errors import LabkitError, UnsupportedModelError
from labkit.fileio import write_atomic

_C_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_C_KEYWORDS = set(
    "auto break case char const continue default do double else enum extern float for goto if inline int long "
    "register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while "
    "main setup loop".split()
)


@dataclass
class TensorInfo:
    shape: tuple[int, ...]
    size: int
    scale: float  # 0 for a float32 tensor
    zero_point: int
    ctype: str = "int8_t"  # or "float" for a model with float input/output (QUANTIZE/DEQUANTIZE inside)
    offset: int = 0

    @property
    def quantized(self) -> bool:
        return self.ctype == "int8_t"

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.int8 if self.quantized else np.float32)


@dataclass
class CModel:
    """What was generated, and what it costs."""

    name: str
    out_dir: Path
    files: list[Path]
    input: TensorInfo
    output: TensorInfo
    arena_bytes: int
    arena_lower_bound: int
    weights_bytes: int
    macs: int
    ops: list[str]
    reference: str
    labels: list[str] = field(default_factory=list)
    input_range: tuple[float, float] = (-128.0, 127.0)  # float values the input quantizes without clamping

    @property
    def sources(self) -> list[Path]:
        return [f for f in self.files if f.suffix == ".c"]

    def manifest(self) -> dict:
        """What a folder of generated C holds, so it can be verified later as it is."""
        d = {k: v for k, v in vars(self).items() if k not in ("out_dir", "files", "input", "output")}
        d["input"], d["output"] = vars(self.input), vars(self.output)
        d["files"] = [f.name for f in self.files]
        d["input_range"] = list(self.input_range)
        return d

    @classmethod
    def from_folder(cls, folder: str | os.PathLike) -> "CModel":
        """The CModel of a folder written by generate_c (it holds NAME.json and NAME.tflite)."""
        folder = Path(folder).resolve()
        found = sorted(folder.glob("*.json"))
        found = [f for f in found if (folder / f"{f.stem}.tflite").exists()]
        if len(found) != 1:
            raise LabkitError(
                f"{folder} does not hold one labkit-generated model (NAME.json next to NAME.tflite); "
                "generate one with `labkit codegen MODEL.tflite -o DIR`"
            )
        d = json.loads(found[0].read_text())
        for k in ("input", "output"):
            d[k] = TensorInfo(**{**d[k], "shape": tuple(d[k]["shape"])})
        d["files"] = [folder / f for f in d["files"]]
        d["input_range"] = tuple(d["input_range"])
        missing = [f.name for f in d["files"] if not f.exists()]
        if missing:
            raise LabkitError(f"{folder} is missing {', '.join(missing)}: generate the model again")
        return cls(out_dir=folder, **d)


# ---- C literals ---------------------------------------------------------------


def cfloat(v) -> str:
    v = float(np.float32(v))
    if math.isnan(v):
        return "NAN"
    if math.isinf(v):
        return "INFINITY" if v > 0 else "-INFINITY"
    s = "%.9g" % v
    if not any(c in s for c in ".e"):
        s += ".0"
    return s + "f"


def cliteral(v) -> str:
    if isinstance(v, (float, np.floating)):
        return cfloat(v)
    if isinstance(v, (bool, np.bool_)):
        return str(int(v))
    return str(v)


def cvalues(values: np.ndarray, ctype: str, wrap: bool = False, per_line: int = 16) -> str:
    fmt = cfloat if ctype == "float" else (lambda x: str(int(x)))
    items = [fmt(x) for x in np.asarray(values).reshape(-1)]
    if not wrap:
        return ", ".join(items)
    if ctype == "float":
        per_line = 6
    lines = ["    " + ", ".join(items[i : i + per_line]) + "," for i in range(0, len(items), per_line)]
    return "\n".join(lines)


def cstring(s: str) -> str:
    out = []
    for ch in str(s):
        if ch in '"\\':
            out.append("\\" + ch)
        elif 32 <= ord(ch) < 127 and ch != "?":  # '?' avoided: trigraphs
            out.append(ch)
        else:
            for b in ch.encode("utf-8"):
                out.append("\\%03o" % b)
    return '"' + "".join(out) + '"'


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("labkit.deploy", "templates"),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(cfloat=cfloat, cliteral=cliteral, cvalues=cvalues, cstring=cstring)
    return env


def check_c_name(name: str) -> str:
    if not _C_IDENT.match(name or "") or name in _C_KEYWORDS:
        raise LabkitError(
            f"{name!r} cannot name a C model: use letters, digits and underscores, starting with a letter "
            "(e.g. gesture_model), and not a C keyword"
        )
    return name


def runtime_dir() -> Path:
    return Path(str(resources.files("labkit") / "runtime"))


def runtime_files() -> list[Path]:
    """The labkit-nn kernels (labkit_nn*.h / .c) that every generated model ships with."""
    return sorted(p for p in runtime_dir().glob("labkit_nn*.[ch]") if p.is_file())


# ---- memory ---------------------------------------------------------------------


def _plan_memory(g: Graph, lowered: list[ops.Lowered]) -> tuple[memory.MemoryPlan, dict[int, int]]:
    """Plan the arena; returns the plan and, for each tensor, the key of the buffer holding it."""
    holder = {}  # tensor index -> buffer key (aliased tensors share their input's buffer)
    for op, low in zip(g.ops, lowered):
        if low.alias:
            src = op.inputs[0]
            holder[op.outputs[0]] = holder.get(src, src)
    n = len(g.ops)
    spans: dict[int, list[int]] = {}
    sizes: dict[int, int] = {}

    def touch(t: int, step: int):
        tensor = g.tensors[t]
        if tensor.is_constant:
            return
        key = holder.get(t, t)
        lo, hi = spans.get(key, [step, step])
        spans[key] = [min(lo, step), max(hi, step)]
        sizes[key] = max(sizes.get(key, 0), tensor.nbytes)

    for t in g.inputs:
        touch(t, -1)
    for i, op in enumerate(g.ops):
        for t in list(op.inputs) + list(op.outputs):
            if t >= 0:
                touch(t, i)
    for t in g.outputs:
        touch(t, n)
    buffers = [memory.Buffer(k, sizes[k], lo, hi) for k, (lo, hi) in spans.items()]
    buffers += [memory.Buffer(("scratch", i), low.scratch_bytes, i, i) for i, low in enumerate(lowered) if low.scratch_bytes]
    return memory.plan(buffers, n), holder


# ---- generation -----------------------------------------------------------------


def _io_info(t: Tensor, what: str) -> TensorInfo:
    if t.dtype == np.float32:
        return TensorInfo(tuple(t.shape), t.size, 0.0, 0, ctype="float")
    if t.dtype != np.int8 or len(t.scale) == 0:
        raise UnsupportedModelError(
            f"the model's {what} '{t.name}' is {t.dtype.name}; labkit-nn needs an int8 (or float32) {what}. "
            f"Convert with inference_{what}_type=tf.int8 (labkit.compress.quantize.to_int8_tflite does)."
        )
    return TensorInfo(tuple(t.shape), t.size, float(t.scale[0]), int(t.zero_point[0]))


def generate_c(
    model,
    out_dir: str | os.PathLike,
    name: str = "model",
    labels: list[str] | None = None,
    reference: str = TFLM,
    source: str | None = None,
) -> CModel:
    """Write ``name.h``/``name.c`` and the runtime for an int8 .tflite (bytes or path) into ``out_dir``.

    ``reference``: whose integer arithmetic the C reproduces bit for bit, "tflm" (TFLite
    Micro, the default: the microcontroller runtime) or "litert" (TFLite / LiteRT).
    """
    check_c_name(name)
    if Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise LabkitError(f"{out_dir} is a file, not a folder: give -o a folder for the generated C (it is created if missing)")
    if reference not in (LITERT, TFLM):
        raise LabkitError(f"reference must be '{LITERT}' or '{TFLM}', not {reference!r}")
    if source is None:
        source = os.path.basename(str(model)) if not isinstance(model, (bytes, bytearray)) else "(in-memory model)"
    g = read_tflite(model)
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise UnsupportedModelError(
            f"the model has {len(g.inputs)} inputs and {len(g.outputs)} outputs; labkit-nn generates models with one of each"
        )
    lowered = ops.lower(g)  # first: its errors (unsupported op, float model) say the most
    x_info = _io_info(g.tensors[g.inputs[0]], "input")
    y_info = _io_info(g.tensors[g.outputs[0]], "output")
    if labels is not None:
        labels = [str(l) for l in labels]
        if len(labels) != y_info.size:
            raise LabkitError(f"{len(labels)} labels given but the model has {y_info.size} outputs")

    mem, holder = _plan_memory(g, lowered)
    x_info.offset = mem.offset_of(holder.get(g.inputs[0], g.inputs[0]))
    y_info.offset = mem.offset_of(holder.get(g.outputs[0], g.outputs[0]))

    def ptr(t: int) -> str:
        tensor = g.tensors[t]
        off = mem.offset_of(holder.get(t, t))
        expr = f"arena.bytes + {off}"
        ctype = {np.dtype(np.int8): None, np.dtype(np.int16): "int16_t", np.dtype(np.int32): "int32_t",
                 np.dtype(np.float32): "float"}.get(tensor.dtype)
        return f"({ctype} *)({expr})" if ctype else expr

    steps = []
    for op, low in zip(g.ops, lowered):
        fill = {f"in{k}": ptr(t) for k, t in enumerate(op.inputs) if t >= 0 and not g.tensors[t].is_constant}
        fill.update({f"out{k}": ptr(t) for k, t in enumerate(op.outputs)})
        if low.scratch_bytes:
            fill["scratch"] = f"arena.bytes + {mem.offset_of(('scratch', op.index))}"
        steps.append(
            dict(
                index=op.index,
                comment=low.comment,
                call=low.call.format(**fill) if low.call else "",
                arrays=low.arrays,
                structs=([(*low.struct, low.tflm_fields) if low.tflm_fields else low.struct] if low.struct else [])
                + low.structs,
            )
        )

    names: dict[object, list[str]] = {}
    for t, key in [(t, holder.get(t, t)) for t in range(len(g.tensors))]:
        if any(b.key == key for b in mem.buffers) and not g.tensors[t].is_constant:
            names.setdefault(key, []).append(f"{g.tensors[t].name} {list(g.tensors[t].shape)}")
    placed = sorted(
        (
            dict(offset=b.offset, size=b.size, label=("scratch of op %d" % b.key[1]) if isinstance(b.key, tuple) else " = ".join(names.get(b.key, [])))
            for b in mem.buffers
        ),
        key=lambda d: (d["offset"], d["size"]),
    )
    weights_bytes = sum(a.nbytes for low in lowered for a in low.arrays)
    macs = sum(low.macs for low in lowered)
    ctx = dict(
        name=name,
        NAME=name.upper(),
        guard=f"{name.upper()}_H",
        version=labkit.__version__,
        source=source,
        steps=steps,
        labels=labels or [],
        input=x_info,
        output=y_info,
        arena_bytes=mem.arena_bytes,
        strategy=mem.strategy,
        placed=placed,
        weights_bytes=weights_bytes,
        macs=macs,
    )
    out_dir = Path(out_dir).resolve()  # builds run elsewhere: keep the paths absolute
    env = _env()
    files = [
        write_atomic(out_dir / f"{name}.h", env.get_template("model.h.j2").render(ctx)),
        write_atomic(out_dir / f"{name}.c", env.get_template("model.c.j2").render(ctx)),
        write_atomic(out_dir / "labkit_nn_config.h", env.get_template("config.h.j2").render(reference=reference)),
    ]
    for f in runtime_files():
        files.append(write_atomic(out_dir / f.name, f.read_text()))
    model_bytes = model if isinstance(model, (bytes, bytearray)) else Path(model).read_bytes()
    files.append(write_atomic(out_dir / f"{name}.tflite", bytes(model_bytes)))
    input_range = (-128.0, 127.0)
    if not x_info.quantized:
        first = next((op for op in g.ops if g.inputs[0] in op.inputs and op.kind == "QUANTIZE"), None)
        if first is not None:
            q = g.tensors[first.outputs[0]]
            sq, zq = float(q.scale[0]), int(q.zero_point[0])
            input_range = ((-128 - zq) * sq, (127 - zq) * sq)
    cmodel = CModel(
        input_range=input_range,
        name=name,
        out_dir=out_dir,
        files=files,
        input=x_info,
        output=y_info,
        arena_bytes=mem.arena_bytes,
        arena_lower_bound=mem.lower_bound,
        weights_bytes=weights_bytes,
        macs=macs,
        ops=[op.kind for op in g.ops],
        reference=reference,
        labels=labels or [],
    )
    write_atomic(out_dir / f"{name}.json", json.dumps(cmodel.manifest(), indent=2) + "\n")
    return cmodel
