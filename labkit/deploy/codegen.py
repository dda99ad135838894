"""labkit-nn code generation: an int8 .tflite in, a readable C99 model out.

    generate_c("gesture.tflite", "out/", name="gesture")  ->  gesture.h, gesture.c,
                                                             labkit_nn.h/.c, labkit_nn_config.h
The folder is self-contained: copy it into any C project or Arduino sketch.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import dataclasses
import functools
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
from labkit.fileio import build_folder, check_replaceable, sha256, write_atomic

_C_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
C_NAME_MAX = 48  # the longest function it makes (NAME_dequantize_output) stays within 63 characters
_C_KEYWORDS = set(
    # C99/C11/C23 and C++ keywords (the sketch is C++), the Arduino entry points, main
    "auto break case char const continue default do double else enum extern float for goto if inline int long "
    "register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while "
    "_Alignas _Alignof _Atomic _Bool _Complex _Generic _Imaginary _Noreturn _Static_assert _Thread_local "
    "alignas alignof bool constexpr false nullptr static_assert thread_local true typeof typeof_unqual "
    "and and_eq asm bitand bitor catch char8_t char16_t char32_t class compl concept consteval constinit "
    "const_cast co_await co_return co_yield decltype delete dynamic_cast explicit export friend mutable "
    "namespace new noexcept not not_eq operator or or_eq private protected public reinterpret_cast requires "
    "static_cast template this throw try typeid typename using virtual wchar_t xor xor_eq "
    "main setup loop".split()
)
# NAME.h would shadow these headers for code compiled with the model's folder on its include path
_HEADER_NAMES = {h.lower() for h in (
    "assert complex ctype errno fenv float inttypes iso646 limits locale math setjmp signal stdalign stdarg "
    "stdatomic stdbool stddef stdint stdio stdlib stdnoreturn string tgmath threads time uchar wchar wctype "
    "Arduino Arduino_LSM9DS1 Arduino_BMI270_BMM150 Chirale_TensorFlowLite labkit labkit_nn labkit_nn_config "
    "lk_verify_main lk_replay lk_replay_imu".split())}


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
    generation: str = ""  # stamped into NAME.c and NAME.h: which files belong together
    streaming: dict | None = None  # lstm_state="carry": steps_per_call, sequence_steps, state_bytes ... (else None)

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

    def placed_in(self, folder: str | os.PathLike) -> "CModel":
        """The same model, its files in ``folder``."""
        folder = Path(folder).resolve()  # builds run elsewhere: keep the paths absolute
        return dataclasses.replace(self, out_dir=folder, files=[folder / f.name for f in self.files])

    @classmethod
    def from_folder(cls, folder: str | os.PathLike) -> "CModel":
        """The CModel of a folder written by generate_c (it holds NAME.json and NAME.tflite).

        Refuses a folder whose files do not belong together: NAME.json records the sha256 of
        NAME.tflite, and NAME.c / NAME.h carry the generation NAME.json names. The C may be
        edited by hand (``verify`` then checks it as it is); a file of another model may not."""
        folder = Path(folder).resolve()
        found = sorted(folder.glob("*.json"))
        found = [f for f in found if (folder / f"{f.stem}.tflite").exists()]
        if len(found) != 1:
            raise LabkitError(
                f"{folder} does not hold one labkit-generated model (NAME.json next to NAME.tflite); "
                "generate one with `labkit codegen MODEL.tflite -o DIR`"
            )
        path = found[0]
        again = "generate the model again (labkit codegen MODEL.tflite -o DIR)"
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            written = d["sha256"]
            if not (isinstance(d, dict) and str(d.get("made_by", "")).startswith("labkit") and isinstance(written, dict)):
                raise KeyError("made_by")
            kwargs = {f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d and f.name != "out_dir"}
            for k in ("input", "output"):
                kwargs[k] = TensorInfo(**{**d[k], "shape": tuple(int(n) for n in d[k]["shape"])})
            names = [str(f) for f in d["files"]]
            kwargs["input_range"] = tuple(float(v) for v in d["input_range"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise LabkitError(f"{path} is not a manifest this labkit wrote (damaged, edited, or from an older "
                              f"version: {type(e).__name__} {e}): {again}") from None
        check_c_name(kwargs.get("name", ""))
        bad = [n for n in names if Path(n).name != n or n in ("", ".", "..")]
        if bad or any(info.ctype not in ("int8_t", "float") for info in (kwargs["input"], kwargs["output"])):
            raise LabkitError(f"{path} lists files or types labkit does not write ({bad[:3]}): {again}")
        name = kwargs["name"]
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise LabkitError(f"{folder} is missing {', '.join(missing)}: {again}")
        tflite = f"{name}.tflite"
        if path.stem != name or tflite not in names or written.get(tflite) != sha256(folder / tflite):
            raise LabkitError(f"{folder / tflite} is not the model {path.name} was generated from (the folder mixes "
                              f"files of two generations, or one was replaced): {again}")
        stamp = f"generation {kwargs.get('generation') or '?'}"
        for n in (f"{name}.c", f"{name}.h"):
            if n not in names or stamp not in (folder / n).read_text(encoding="utf-8", errors="replace")[:4096]:
                raise LabkitError(f"{folder / n} does not belong to {path.name} (it is not of {stamp}: a file of "
                                  f"another model or generation): {again}")
        kwargs["files"] = [folder / n for n in names]
        return cls(out_dir=folder, **kwargs)


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


LABEL_MAX = 255  # characters; as UTF-8 in a C string, within the 4095 bytes every C99 compiler takes
COMMENT_MAX = 240  # characters of one name or text in a comment; longer ones are cut, saying so


def ccomment(text, limit: int = COMMENT_MAX) -> str:
    """``text`` made safe inside a C or C++ comment, ``/* ... */`` or ``// ...``, on one line.

    Nothing can end the comment early or carry it on: ``*/`` and ``/*`` are split, ``??`` too
    (trigraphs: ``??/`` is a backslash), backslashes (line splices), newlines, control and
    non-ASCII characters (bidirectional controls among them) become ``U+XXXX``; at most
    ``limit`` characters of the text are kept."""
    text = str(text)
    cut = ""
    if len(text) > limit:
        text, cut = text[:limit], f" ... ({len(text):,} characters)"
    out = "".join(ch if 32 <= ord(ch) < 127 and ch != "\\" else ("U+%04X" % ord(ch)) for ch in text)
    out = re.sub(r"\*(?=/)", "* ", out)
    out = re.sub(r"/(?=\*)", "/ ", out)
    out = re.sub(r"\?(?=\?)", "? ", out)
    return out + cut


@functools.lru_cache(maxsize=1)  # one environment: it compiles each template once, not on every call
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("labkit.deploy", "templates"),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(cfloat=cfloat, cliteral=cliteral, cvalues=cvalues, cstring=cstring, ccomment=ccomment)
    return env


def check_c_name(name: str) -> str:
    """``name`` if it can prefix the generated C's identifiers and name its files, else a LabkitError with the rule."""
    name = name if isinstance(name, str) else ""
    why = None
    if not _C_IDENT.fullmatch(name):
        why = "use only letters, digits and underscores, starting with a letter or an underscore"
    elif len(name) > C_NAME_MAX:
        why = f"it has {len(name)} characters; use at most {C_NAME_MAX}"
    elif name in _C_KEYWORDS:
        why = "it is a C or C++ keyword (or main/setup/loop)"
    elif name.startswith("__") or re.match(r"^_[A-Z]", name):
        why = "names starting with __ or _ and a capital letter are reserved in C"
    elif name.lower() in _HEADER_NAMES or name.lower().startswith("labkit_nn"):
        why = f"it is reserved: {name}.h (or {name}.json) would clash with a standard, Arduino or labkit file"
    if why:
        shown = repr(name if len(name) <= 60 else name[:60] + "...")
        raise LabkitError(
            f"{shown} cannot name a C model: {why}. The rule: [A-Za-z_][A-Za-z0-9_]*, at most {C_NAME_MAX} "
            "characters, not a C/C++ keyword (e.g. gesture_model)"
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
    if g.carry_state:  # state kept between calls: its bytes are never shared with another tensor
        for t in {t for op in g.ops for t in op.inputs if t >= 0 and g.tensors[t].is_variable}:
            touch(t, -1)
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
            f"the model's {what} '{ccomment(t.name, 80)}' is {t.dtype.name}; labkit-nn needs an int8 (or float32) {what}. "
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
    force: bool = False,
    lstm_state: str = "reset",
    steps_per_call: int = 1,
) -> CModel:
    """Write ``name.h``/``name.c`` and the runtime for an int8 .tflite (bytes or path) into ``out_dir``.

    ``reference``: whose integer arithmetic the C reproduces bit for bit, "tflm" (TFLite
    Micro, the default: the microcontroller runtime) or "litert" (TFLite / LiteRT).
    ``out_dir`` must be new, empty, or a folder labkit made and nobody changed since
    (``force=True``: changed too); it is built aside and moved into place whole.
    ``source``: the model's name in the files' comments (only its file name is used).
    ``lstm_state``: for a model with an LSTM, "reset" (the default) runs a whole window per
    call from a zero state; "carry" makes C that takes ``steps_per_call`` time steps per call
    and keeps the LSTM state between calls, with ``name_reset()`` to start a new sequence
    (see labkit.deploy.streaming).
    """
    check_c_name(name)
    check_replaceable(out_dir, force)  # before any work
    files, cmodel = render_c(model, name=name, labels=labels, reference=reference, source=source,
                             lstm_state=lstm_state, steps_per_call=steps_per_call)

    def build(staging: Path):
        for fname, data in files.items():
            write_atomic(staging / fname, data)
        return None, f"{name}.json", cmodel.manifest()

    build_folder(out_dir, build, made_by="labkit codegen", force=force)
    return cmodel.placed_in(out_dir)


def display_name(source, model=None) -> str:
    """What the generated files call the model: its file name, never a path of this machine."""
    if source is None:
        if isinstance(model, (bytes, bytearray)) or model is None:
            return "(in-memory model)"
        source = model
    return Path(str(source).replace("\\", "/")).name or "(in-memory model)"


def _check_labels(labels, outputs: int) -> list[str]:
    labels = [str(l) for l in labels]
    if len(labels) != outputs:
        raise LabkitError(f"{len(labels)} labels given but the model has {outputs} outputs")
    empty = [i for i, l in enumerate(labels) if not l.strip()]
    if empty:
        raise LabkitError(f"label {empty[0] + 1} of {len(labels)} is empty: give one name per output, e.g. punch,flex")
    long = [i for i, l in enumerate(labels) if len(l) > LABEL_MAX]
    if long:
        raise LabkitError(f"label {long[0] + 1} has {len(labels[long[0]]):,} characters: use at most {LABEL_MAX} "
                          "(it becomes a C string the board prints)")
    seen: dict[str, str] = {}
    for l in labels:
        if l.casefold() in seen:
            other = seen[l.casefold()]
            case = "" if other == l else f" ({other!r} and {l!r} differ only in case)"
            raise LabkitError(f"the label {l!r} is given twice{case}: each output needs its own name")
        seen[l.casefold()] = l
    return labels


def render_c(model, name: str = "model", labels: list[str] | None = None, reference: str = TFLM,
             source: str | None = None, lstm_state: str = "reset",
             steps_per_call: int = 1) -> tuple[dict[str, str | bytes], CModel]:
    """The files ``generate_c`` writes, by name, and the CModel that describes them (placed nowhere yet:
    ``cmodel.placed_in(folder)`` once they are there). Writes nothing."""
    check_c_name(name)
    if reference not in (LITERT, TFLM):
        raise LabkitError(f"reference must be '{LITERT}' or '{TFLM}', not {reference!r}")
    if lstm_state not in ("reset", "carry"):
        raise LabkitError(f"lstm_state must be 'reset' (a window per call) or 'carry' (steps per call, state kept), "
                          f"not {lstm_state!r}")
    if lstm_state == "reset" and steps_per_call != 1:
        raise LabkitError(f"steps_per_call={steps_per_call!r} is for lstm_state='carry' (--lstm-state carry); a model "
                          "whose state is reset each call takes its whole window per call")
    source = display_name(source, model)
    model_bytes = bytes(model) if isinstance(model, (bytes, bytearray)) else Path(model).read_bytes()
    stream = None
    if lstm_state == "carry":
        from labkit.deploy.streaming import streaming_tflite

        stepped, stream = streaming_tflite(model_bytes, steps_per_call)
        g = read_tflite(stepped)
        g.carry_state = True
    else:
        g = read_tflite(model_bytes)
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise UnsupportedModelError(
            f"the model has {len(g.inputs)} inputs and {len(g.outputs)} outputs; labkit-nn generates models with one of each"
        )
    lowered = ops.lower(g)  # first: its errors (unsupported op, float model) say the most
    x_info = _io_info(g.tensors[g.inputs[0]], "input")
    y_info = _io_info(g.tensors[g.outputs[0]], "output")
    if labels is not None:
        labels = _check_labels(labels, y_info.size)

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
            names.setdefault(key, []).append(f"{ccomment(g.tensors[t].name)} {list(g.tensors[t].shape)}")
    placed = sorted(
        (
            dict(offset=b.offset, size=b.size, label=("scratch of op %d" % b.key[1]) if isinstance(b.key, tuple) else " = ".join(names.get(b.key, [])))
            for b in mem.buffers
        ),
        key=lambda d: (d["offset"], d["size"]),
    )
    for step in steps:  # what becomes code, not comment: identifiers only
        for ident in [a.name for a in step["arrays"]] + [st[1] for st in step["structs"]]:
            if not _C_IDENT.fullmatch(ident):
                raise AssertionError(f"labkit bug: {ident!r} is not a C identifier")
    weights_bytes = sum(a.nbytes for low in lowered for a in low.arrays)
    streaming = None
    if stream is not None:  # the state tensors, reset by NAME_reset() to their zero points
        state = [dict(offset=mem.offset_of(holder.get(t, t)), count=g.tensors[t].size,
                      ctype="int16_t" if g.tensors[t].dtype == np.int16 else "int8_t",
                      zero_point=int(g.tensors[t].zero_point[0]) if len(g.tensors[t].zero_point) else 0,
                      label=f"{ccomment(g.tensors[t].name)} {list(g.tensors[t].shape)}")
                 for t in sorted({t for op in g.ops for t in op.inputs if t >= 0 and g.tensors[t].is_variable})]
        streaming = dict(stream.as_dict(), state_bytes=sum(s["count"] * (2 if s["ctype"] == "int16_t" else 1)
                                                            for s in state), state=state)
    generation = hashlib.sha256(json.dumps([hashlib.sha256(model_bytes).hexdigest(), name, labels, reference,
                                            labkit.__version__] + ([streaming] if streaming else []))
                                .encode()).hexdigest()[:16]
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
        generation=generation,
        streaming=streaming,
    )
    env = _env()
    files: dict[str, str | bytes] = {
        f"{name}.h": env.get_template("model.h.j2").render(ctx),
        f"{name}.c": env.get_template("model.c.j2").render(ctx),
        "labkit_nn_config.h": env.get_template("config.h.j2").render(
            reference=reference, features=sorted(set().union(*(low.features for low in lowered)))),
    }
    for f in runtime_files():
        files[f.name] = f.read_text()
    files[f"{name}.tflite"] = model_bytes
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
        out_dir=Path(),
        files=[Path(f) for f in files],
        input=x_info,
        output=y_info,
        arena_bytes=mem.arena_bytes,
        arena_lower_bound=mem.lower_bound,
        weights_bytes=weights_bytes,
        macs=macs,
        ops=[op.kind for op in g.ops],
        reference=reference,
        labels=labels or [],
        generation=generation,
        streaming=streaming,
    )
    return files, cmodel
