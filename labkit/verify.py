"""Prove that generated C gives the reference interpreter's answers, byte for byte.

The ladder: reference interpreter (Python) -> labkit-nn C on the host (gcc) -> the same C
on an emulated Cortex-M4 -> the board (by hand). Each reference interpreter is compared
with a build of the C that reproduces its arithmetic (see labkit/runtime/labkit_nn.h).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from labkit import reference as ref
from labkit.deploy.codegen import CModel, _env, generate_c
from labkit.errors import LabkitError, ToolMissingError
from labkit.fileio import write_atomic, write_json

TARGETS = ("host", "cortex-m4")
HOST_CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"]
M4_CFLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-O2", "-std=c99",
             "-Wall", "-Wextra", "-Werror", "-ffunction-sections", "-fdata-sections"]
# QEMU's -icount shift=8 advances virtual time 256 ns per instruction; the mps2 board's timer
# counts at 25 MHz, so one instruction is 6.4 ticks and ticks / 6.4, rounded, is exact.
ICOUNT_SHIFT = 8
TICKS_PER_INSTRUCTION = 2**ICOUNT_SHIFT * 25e6 / 1e9
QEMU_CMD = ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none", "-serial", "none",
            "-semihosting-config", "enable=on,target=native", "-icount", f"shift={ICOUNT_SHIFT},align=off,sleep=off"]
BOARD = "Arduino Nano 33 BLE (nRF52840: 1 MB flash, 256 KB RAM)"
SANITIZE_CFLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g"]
_REF_MACRO = {"litert": "LABKIT_NN_REF_LITERT", "tflm": "LABKIT_NN_REF_TFLM"}

_APT = "sudo apt-get install --no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
INSTALL_HINT = {
    "gcc": "install a C compiler: `sudo apt-get install gcc` (Debian/Ubuntu), `xcode-select --install` (macOS)",
    "arm-none-eabi-gcc": f"install the ARM cross-compiler: `{_APT}` (Debian/Ubuntu), "
                         "`brew install --cask gcc-arm-embedded` (macOS)",
    "qemu-system-arm": f"install QEMU: `{_APT}` (Debian/Ubuntu), `brew install qemu` (macOS)",
}


def require_tool(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise ToolMissingError(f"{tool} was not found on PATH; {INSTALL_HINT.get(tool, 'install it and retry')}")
    return path


# What a report measures: arena, MACs and TFLM's arena on every target; the rest on the Cortex-M4 only.
REPORT_METRICS = ("arena_bytes", "macs", "tflm_arena_bytes", "flash_bytes", "ram_bytes",
                  "instructions", "instructions_min", "instructions_max", "instructions_per_mac")


@dataclass
class ReferenceCheck:
    reference: str
    bit_exact: bool
    mismatched_bytes: int
    samples: int


@dataclass
class VerifyReport:
    target: str
    samples: int
    checks: list[ReferenceCheck] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)  # flash, RAM, MACs, instructions ...
    outputs: np.ndarray | None = field(default=None, repr=False)  # the C's outputs, first reference
    not_run: dict = field(default_factory=dict)  # reference -> why it did not run (refused the model, crashed)

    @property
    def bit_exact(self) -> bool:
        """Every reference that ran agrees with its build of the C, byte for byte."""
        return bool(self.checks) and all(c.bit_exact for c in self.checks)

    @property
    def references(self) -> list[str]:
        return [c.reference for c in self.checks]

    def check(self, reference: str) -> ReferenceCheck:
        return next(c for c in self.checks if c.reference == reference)

    def as_dict(self) -> dict:
        d = {"target": self.target, "samples": self.samples, "bit_exact": self.bit_exact,
             "references": "+".join(self.references)}
        for c in self.checks:
            d[f"{c.reference}_bit_exact"] = c.bit_exact
            d[f"{c.reference}_mismatched_bytes"] = c.mismatched_bytes
        for r, why in self.not_run.items():
            d[f"{r}_not_run"] = why
        d["mismatched_bytes"] = sum(c.mismatched_bytes for c in self.checks)
        d.update({k: None for k in REPORT_METRICS})  # every target's report has the same keys (None: not measured there)
        d.update(self.metrics)
        return d


def _run(cmd: list[str], cwd: Path, what: str, timeout: float = 600) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise LabkitError(f"{what} failed (exit {p.returncode}): {' '.join(cmd)}\n{p.stdout}{p.stderr}".rstrip())
    return p


def _write_harness(cmodel: CModel, build_dir: Path) -> Path:
    stream = cmodel.streaming  # a streaming model: reset the state at the start of every sequence
    text = _env().get_template("verify_main.c.j2").render(
        name=cmodel.name, NAME=cmodel.name.upper(), out_ctype=cmodel.output.ctype,
        steps_per_reset=stream["sequence_steps"] // stream["steps_per_call"] if stream else 0)
    return write_atomic(build_dir / "lk_verify_main.c", text)


def build_host(cmodel: CModel, reference: str, build_dir: Path, sanitize: bool = False) -> Path:
    """Compile the model and the verification harness for this machine; returns the executable."""
    cc = require_tool("gcc")
    build_dir.mkdir(parents=True, exist_ok=True)
    main = _write_harness(cmodel, build_dir)
    exe = build_dir / f"{cmodel.name}_{reference}{'_asan' if sanitize else ''}"
    cmd = [cc, *HOST_CFLAGS, *(SANITIZE_CFLAGS if sanitize else []), f"-DLABKIT_NN_REFERENCE={_REF_MACRO[reference]}",
           f"-I{cmodel.out_dir}", str(main), *map(str, cmodel.sources), "-lm", "-o", str(exe)]
    _run(cmd, build_dir, "compiling the generated C")
    return exe


def run_host(exe: Path, inputs: np.ndarray, output_size: int, work: Path, output_dtype=np.int8) -> np.ndarray:
    work.mkdir(parents=True, exist_ok=True)
    (work / "lk_inputs.bin").write_bytes(np.ascontiguousarray(inputs).tobytes())
    _run([str(exe)], work, "running the generated C")
    out = np.frombuffer((work / "lk_outputs.bin").read_bytes(), output_dtype)
    return out.reshape(len(inputs), output_size)


def _runtime_m4() -> Path:
    from labkit.deploy.codegen import runtime_dir

    return runtime_dir() / "cortex_m4"


def build_cortex_m4(cmodel: CModel, reference: str, build_dir: Path) -> tuple[Path, dict]:
    """Cross-compile model + harness for the Cortex-M4, linked into nRF52840-sized memory.

    Returns the ELF and the model's own sizes (model + runtime code and data that the link keeps).
    """
    cc = require_tool("arm-none-eabi-gcc")
    build_dir.mkdir(parents=True, exist_ok=True)
    main = _write_harness(cmodel, build_dir)
    flags = [*M4_CFLAGS, f"-DLABKIT_NN_REFERENCE={_REF_MACRO[reference]}", "-DLK_CORTEX_M4", f"-I{cmodel.out_dir}"]
    objects = []
    for src in cmodel.sources:
        obj = build_dir / f"{src.stem}_{reference}.m4.o"
        _run([cc, *flags, "-c", str(src), "-o", str(obj)], build_dir, "cross-compiling the generated C")
        objects.append(obj)
    elf = build_dir / f"{cmodel.name}_{reference}.elf"
    link_map = build_dir / f"{cmodel.name}_{reference}.map"
    cmd = [cc, *flags, "--specs=rdimon.specs", "-T", str(_runtime_m4() / "nrf52840.ld"), "-Wl,--gc-sections",
           f"-Wl,-Map={link_map}", str(_runtime_m4() / "startup.c"), str(main), *map(str, objects), "-lm",
           "-o", str(elf)]
    p = subprocess.run(cmd, cwd=build_dir, capture_output=True, text=True)
    if p.returncode != 0:
        text = p.stdout + p.stderr
        if "overflow" in text:
            lines = "; ".join(l.split(": ", 1)[-1] for l in text.splitlines() if "overflow" in l)
            raise LabkitError(
                f"the model does not fit the {BOARD}: {lines}. "
                f"It needs {cmodel.weights_bytes} bytes of constants and a {cmodel.arena_bytes}-byte arena: "
                "make it smaller (fewer or narrower layers, pruning) and generate again."
            )
        raise LabkitError(f"linking for the Cortex-M4 failed: {' '.join(cmd)}\n{text}".rstrip())
    return elf, linked_sizes(link_map, [o.name for o in objects])


def map_sections(link_map: Path):
    """``(section, address, size, object file)`` for every input section the linker kept, from its map."""
    section = ""
    in_memory_map = False
    for line in link_map.read_text().splitlines():
        if line.startswith("Linker script and memory map"):
            in_memory_map = True
            continue
        if not in_memory_map:
            continue
        parts = line.split()
        if len(parts) == 1 and parts[0].startswith("."):
            section = parts[0]  # a long section name: address and size follow on the next line
            continue
        if len(parts) >= 3 and parts[-3].startswith("0x") and parts[-2].startswith("0x"):  # not "linker stubs"
            yield (parts[0] if len(parts) == 4 else section), int(parts[-3], 16), int(parts[-2], 16), parts[-1]
        section = ""


def linked_sizes(link_map: Path, object_names: list[str]) -> dict:
    """Flash and RAM that the given objects occupy in the linked program, from the linker's map.

    Only sections kept by --gc-sections count, so kernels a model does not call cost nothing.
    .data counts twice, as the board holds it: its initial values in flash, the variables in RAM.
    """
    flash = ram = 0
    for name, address, size, obj in map_sections(link_map):
        if obj.rsplit("/", 1)[-1] not in object_names:
            continue
        if name.startswith((".ARM.attributes", ".comment")):  # never loaded: not stored on the board
            size = 0
        if address >= 0x20000000:
            ram += size
            if name.startswith(".data"):
                flash += size
        else:
            flash += size
    return {"flash_bytes": flash, "ram_bytes": ram}


def run_cortex_m4(elf: Path, inputs: np.ndarray, output_size: int, work: Path,
                  output_dtype=np.int8) -> tuple[np.ndarray, dict]:
    """Run the ELF in QEMU (mps2-an386); returns the outputs and per-inference instruction counts."""
    qemu = require_tool("qemu-system-arm")
    work.mkdir(parents=True, exist_ok=True)
    (work / "lk_outputs.bin").unlink(missing_ok=True)
    (work / "lk_inputs.bin").write_bytes(np.ascontiguousarray(inputs).tobytes())
    stdout = _run_qemu(qemu, elf, work, 120 + 2 * len(inputs), "labkit-verify: samples=", "the emulated Cortex-M4")
    stats = dict(kv.split("=") for line in stdout.splitlines() if line.startswith("labkit-verify: ticks")
                 for kv in line.split()[1:])
    n = len(inputs)
    out = np.frombuffer((work / "lk_outputs.bin").read_bytes(), output_dtype).reshape(n, output_size)

    def insns(ticks: float) -> int:
        return int(round(ticks / TICKS_PER_INSTRUCTION))

    counts = {
        "instructions": insns(int(stats["ticks_total"]) / max(n, 1)),
        "instructions_min": insns(int(stats["ticks_min"])),
        "instructions_max": insns(int(stats["ticks_max"])),
    }
    return out, counts


def _run_qemu(qemu: str, elf: Path, cwd: Path, timeout: float, done_marker: str, what: str) -> str:
    """Run ``elf`` on the emulated Cortex-M4; its stdout, once it printed ``done_marker`` and exited 0."""
    try:
        p = subprocess.run([qemu, *QEMU_CMD[1:], "-kernel", str(elf)], cwd=cwd, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LabkitError(f"{what} did not finish within {timeout:g} s") from None
    if p.returncode != 0 or done_marker not in p.stdout:
        raise LabkitError(f"{what} failed (exit {p.returncode}):\n{p.stdout[-2000:]}{p.stderr}".rstrip())
    return p.stdout


def random_inputs(cmodel: CModel, samples: int, seed: int = 0) -> np.ndarray:
    """Random samples over every int8 value, or for a float-input model over the range its
    first QUANTIZE can represent (and a little beyond, to exercise clamping)."""
    rng = np.random.default_rng(seed)
    if cmodel.input.quantized:
        return rng.integers(-128, 128, size=(samples, cmodel.input.size), dtype=np.int64).astype(np.int8)
    lo, hi = cmodel.input_range
    pad = 0.05 * (hi - lo)
    return rng.uniform(lo - pad, hi + pad, size=(samples, cmodel.input.size)).astype(np.float32)


def _build_and_run(cmodel: CModel, reference: str, flat: np.ndarray, target: str, workdir: Path, sanitize: bool,
                   report: "VerifyReport") -> np.ndarray:
    """The C built for ``target`` with ``reference``'s arithmetic, run on ``flat``; its outputs. The first
    Cortex-M4 run of a report also records the linked sizes and instruction counts in its metrics."""
    if target == "host":
        exe = build_host(cmodel, reference, workdir / "build", sanitize=sanitize)
        return run_host(exe, flat, cmodel.output.size, workdir / "run", cmodel.output.dtype)
    elf, sizes = build_cortex_m4(cmodel, reference, workdir / "build-m4")
    got, counts = run_cortex_m4(elf, flat, cmodel.output.size, workdir / "run-m4", cmodel.output.dtype)
    if not report.checks:
        report.metrics.update(sizes)
        report.metrics.update(counts)
    return got


def verify(
    model,
    inputs: np.ndarray | None = None,
    samples: int = 100,
    target: str = "host",
    references=("tflm", "litert"),
    workdir: str | os.PathLike | None = None,
    cmodel: CModel | None = None,
    sanitize: bool = False,
    seed: int = 0,
) -> VerifyReport:
    """Build and run the C and compare every output byte with each reference interpreter.

    ``model``: a .tflite (bytes or path), whose C is generated unless ``cmodel`` is given; or a
    folder written by ``labkit codegen`` / ``labkit sketch``, whose C is checked as it is.
    ``inputs``: samples in the model's input type, shape (N, *input shape) or (N, input size);
    random if omitted.

    C generated in the streaming mode (``lstm_state="carry"``: a few time steps per call, the
    LSTM state carried) is checked step by step: ``inputs`` are whole sequences of the
    original model, the C takes each in steps (resetting at its start), and two comparisons
    are made per reference. "REF": every call's output against the reference interpreter
    running the same one-step model (labkit.deploy.streaming) with its own state carried
    between invokes; "REF:sequence": the original model run by the reference on each whole
    sequence against the C after the sequence's last call (for a model that answers per
    step, against all its calls). The second is what the streaming C promises: after a
    window's steps it gives the window classifier's answer, bit for bit.

    Each reference interpreter runs in a child process (:func:`labkit.reference.run_isolated`,
    one for all references): one that refuses the model or crashes is left out, with the reason
    in ``report.not_run``, and the C is checked against the other. If none runs: LabkitError.
    """
    if target not in TARGETS:
        raise LabkitError(f"unknown target {target!r}: use one of {', '.join(TARGETS)}")
    references = tuple(references)
    if not references or any(r not in ref.REFERENCES for r in references):
        raise LabkitError(f"references must be some of {', '.join(ref.REFERENCES)}, not {references!r}")
    if cmodel is None and not isinstance(model, (bytes, bytearray)) and Path(model).is_dir():
        cmodel = CModel.from_folder(model)
        model = cmodel.out_dir / f"{cmodel.name}.tflite"
    if not isinstance(model, (bytes, bytearray)) and not Path(model).is_file():
        raise LabkitError(f"{model}: no such model file or generated folder")
    label = "the model" if isinstance(model, (bytes, bytearray)) else Path(model).name
    model_bytes = model if isinstance(model, (bytes, bytearray)) else Path(model).read_bytes()
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="labkit-verify-")
        workdir = tmp.name
    workdir = Path(workdir).resolve()  # the compilers run inside it
    try:
        if cmodel is None:
            cmodel = generate_c(model_bytes, workdir / "model", name="model")
        if cmodel.streaming:
            return _verify_streaming(model_bytes, cmodel, inputs, samples, target, references, workdir, sanitize,
                                     seed, label)
        if inputs is None:
            inputs = random_inputs(cmodel, samples, seed)
        inputs = np.asarray(inputs)
        if inputs.dtype != cmodel.input.dtype:
            raise LabkitError(
                f"verification inputs must be {cmodel.input.dtype.name} like the model's input (got {inputs.dtype}); "
                + ("quantize them with the model's input scale first" if cmodel.input.quantized else "")
            )
        flat = inputs.reshape(len(inputs), -1)
        if flat.shape[1] != cmodel.input.size:
            raise LabkitError(f"each input must have {cmodel.input.size} values {cmodel.input.shape}, got {flat.shape[1]}")
        report = VerifyReport(target=target, samples=len(flat))
        batch = flat.reshape(len(flat), *cmodel.input.shape[1:])
        wanted = _reference_outputs(model_bytes, batch, references, cmodel, label, report)
        for r in wanted:
            got = _build_and_run(cmodel, r, flat, target, workdir, sanitize, report)
            want = wanted[r]
            # compared as bytes: a float output must match bit for bit too
            mismatched = int(np.count_nonzero(got.view(np.uint8) != np.ascontiguousarray(want).view(np.uint8)))
            report.checks.append(ReferenceCheck(r, mismatched == 0, mismatched, len(flat)))
            if report.outputs is None:
                report.outputs = got
        report.metrics["arena_bytes"] = cmodel.arena_bytes
        report.metrics["macs"] = cmodel.macs
        if "instructions" in report.metrics and cmodel.macs:
            report.metrics["instructions_per_mac"] = round(report.metrics["instructions"] / cmodel.macs, 2)
        return report
    finally:
        if tmp is not None:
            tmp.cleanup()


def _reference_outputs(model: bytes, batch: np.ndarray, references: tuple[str, ...], cmodel: CModel, label: str,
                       report: VerifyReport, steps_per_reset: int = 1, output_size: int | None = None,
                       arena: bool = True) -> dict[str, np.ndarray]:
    """Each reference's outputs as (N, output size), from one child process; TFLM's arena into
    ``report.metrics``; a reference that did not run into ``report.not_run``.
    ``output_size``: what each sample's output must hold (default: the C model's output)."""
    runs = ref.run_isolated(model, batch, references, arena=arena and "tflm" in references, label=label,
                            steps_per_reset=steps_per_reset)
    if isinstance(runs.arena, int):  # for comparison: what TFLite Micro's allocator needs for the same model
        report.metrics["tflm_arena_bytes"] = runs.arena
    size = cmodel.output.size if output_size is None else output_size
    wanted = {}
    for r, run in runs.runs.items():
        if not run.ran:
            report.not_run[r] = run.problem
            continue
        out = run.outputs[0] if len(run.outputs) == 1 else None
        if out is None or out.shape[0] != len(batch) or out[0].size != size or out.dtype != cmodel.output.dtype:
            shapes = ", ".join(f"{list(o.shape[1:])} {o.dtype.name}" for o in run.outputs)
            raise LabkitError(
                f"{ref.NAMES[r]} gives {label} output(s) of shape {shapes}, but the model's output tensor is "
                f"{list(cmodel.output.shape[1:])} {cmodel.output.dtype.name}: the model's shapes are inconsistent; "
                "convert it again")
        wanted[r] = run.outputs[0].reshape(len(batch), -1)
    if not wanted:
        raise LabkitError(f"no reference interpreter runs {label}, so its C cannot be checked: "
                          + "; ".join(report.not_run.values()))
    return wanted


def _verify_streaming(model: bytes, cmodel: CModel, inputs, samples: int, target: str, references: tuple[str, ...],
                      workdir: Path, sanitize: bool, seed: int, label: str) -> VerifyReport:
    """verify() for C in the streaming mode: see its docstring."""
    from labkit.deploy.streaming import streaming_tflite

    stream = cmodel.streaming
    calls, per_call = stream["sequence_steps"] // stream["steps_per_call"], cmodel.input.size
    stepped, _ = streaming_tflite(model, stream["steps_per_call"])
    (orig_in,), (orig_out,) = ref.io_details(model)
    if inputs is None:
        inputs = random_inputs(cmodel, samples * calls, seed).reshape(samples, calls * per_call)
    inputs = np.asarray(inputs)
    if inputs.dtype != cmodel.input.dtype:
        raise LabkitError(f"verification inputs must be {cmodel.input.dtype.name} like the model's input (got "
                          f"{inputs.dtype}); " + ("quantize them with the model's input scale first"
                                                 if cmodel.input.quantized else ""))
    sequences = inputs.reshape(len(inputs), -1)
    if sequences.shape[1] != calls * per_call:
        raise LabkitError(f"each input must be a whole sequence of {calls * per_call} values {list(orig_in.shape)} "
                          f"(the C takes it {per_call} values per call), got {sequences.shape[1]}")
    n = len(sequences)
    steps = sequences.reshape(n * calls, per_call)
    report = VerifyReport(target=target, samples=n)
    # the reference interpreters: the one-step model with their state carried through each
    # sequence, and the original model on each whole sequence
    want_steps = _reference_outputs(stepped, steps.reshape(n * calls, *cmodel.input.shape[1:]), references, cmodel,
                                    label, report, steps_per_reset=calls)
    orig_size = int(np.prod(orig_out.shape[1:]))
    want_seq = _reference_outputs(model, sequences.reshape(n, *orig_in.shape[1:]), references, cmodel, label,
                                  report, output_size=orig_size, arena=False)
    for r in want_steps:
        got = _build_and_run(cmodel, r, steps, target, workdir, sanitize, report)

        def compare(name: str, c_out: np.ndarray, want: np.ndarray, count: int) -> None:
            mismatched = int(np.count_nonzero(np.ascontiguousarray(c_out).view(np.uint8)
                                              != np.ascontiguousarray(want).view(np.uint8)))
            report.checks.append(ReferenceCheck(name, mismatched == 0, mismatched, count))

        compare(r, got, want_steps[r], n * calls)
        if r in want_seq:
            per_seq = got.reshape(n, calls, -1)
            c_seq = per_seq.reshape(n, -1) if stream["output_per_step"] else per_seq[:, -1]
            compare(f"{r}:sequence", c_seq, want_seq[r], n)
        if report.outputs is None:
            report.outputs = got
    report.metrics.update(arena_bytes=cmodel.arena_bytes, macs=cmodel.macs, state_bytes=stream["state_bytes"],
                          steps_per_call=stream["steps_per_call"], calls_per_sequence=calls)
    if "instructions" in report.metrics and cmodel.macs:
        report.metrics["instructions_per_mac"] = round(report.metrics["instructions"] / cmodel.macs, 2)
    return report


# ---- the whole sketch on the emulated board ---------------------------------------------------


def gesture_replay(windows: np.ndarray, rest: int = 3) -> np.ndarray:
    """IMU readings that make the gesture sketch record exactly ``windows``: per gesture a few
    readings at rest (1 g on aZ), one that crosses the trigger (the window's first), the window."""
    windows = np.asarray(windows, np.float32)
    at_rest = np.tile(np.array([0, 0, 1, 0, 0, 0], np.float32), (rest, 1))
    parts = []
    for w in windows:
        parts += [at_rest, w[:1], w]
    return np.concatenate(parts)


def run_sketch_emulated(sketch_dir: str | os.PathLike, workdir: str | os.PathLike, readings: np.ndarray | None = None,
                        serial_input: str = "") -> list[str]:
    """Compile a generated sketch for the Cortex-M4 against labkit's Arduino-API layer, replay
    ``readings`` (n, 6: aX, aY, aZ in g, gX, gY, gZ in deg/s) through its IMU and
    ``serial_input`` through Serial, run it in QEMU until the sketch asks for more than there
    is, and return what it printed on Serial, line by line.

    ``workdir/sketch_sizes.json`` gets the flash and static RAM of the sketch's own objects as
    linked (the .ino, the model and its kernels; not the emulated Arduino layer or the C library)."""
    from labkit.deploy.codegen import CModel, cstring, cvalues

    sketch_dir, workdir = Path(sketch_dir).resolve(), Path(workdir).resolve()  # the compilers run inside workdir
    ino = sketch_dir / f"{sketch_dir.name}.ino"
    if not ino.is_file():
        raise LabkitError(f"{sketch_dir} holds no {ino.name}: not a sketch folder")
    manifests = [m for m in sketch_dir.glob("*.json") if (sketch_dir / f"{m.stem}.tflite").exists()]
    sources = CModel.from_folder(sketch_dir).sources if manifests else []  # a sketch without a model: no C
    cc, cxx = require_tool("arm-none-eabi-gcc"), require_tool("arm-none-eabi-g++")
    qemu = require_tool("qemu-system-arm")
    workdir.mkdir(parents=True, exist_ok=True)
    emu = _runtime_m4().parent / "arduino_emu"
    readings = np.zeros((0, 6), np.float32) if readings is None else np.asarray(readings, np.float32).reshape(-1, 6)
    rows = ",\n".join("    {" + cvalues(r, "float") + "}" for r in readings) or "    {0}"
    replay = write_atomic(workdir / "lk_replay.c", (
        "/* Input replayed by the emulated board, written by labkit */\n"
        f"const int lk_replay_count = {len(readings)};\n"
        f"const float lk_replay[{max(len(readings), 1)}][6] = {{\n{rows}\n}};\n"
        f"const char lk_serial_input[] = {cstring(serial_input)};\n"))
    # the model builds' flags (the board's CPU, -O2, warnings, and each function and object in its own section
    # so that --gc-sections drops what the sketch never calls, as the Arduino core builds); each file its own
    # language standard
    cpu = [f for f in M4_CFLAGS if not f.startswith("-std=")]
    inc = [f"-I{emu}", f"-I{sketch_dir}"]
    objs = []

    def compile_one(compiler, src, extra):
        obj = workdir / (Path(src).name + ".o")
        _run([compiler, *cpu, *inc, *extra, "-c", str(src), "-o", str(obj)], workdir, f"compiling {Path(src).name}")
        objs.append(obj)

    # As the Arduino IDE does: the .ino is C++ with Arduino.h included first; .c files are C.
    compile_one(cxx, ino, ["-x", "c++", "-std=gnu++14", "-fno-exceptions", "-fno-rtti", "-include", "Arduino.h"])
    compile_one(cxx, emu / "arduino_emu.cpp", ["-std=gnu++14", "-fno-exceptions", "-fno-rtti"])
    for src in sources:
        compile_one(cc, src, ["-std=gnu11"])
    compile_one(cc, replay, ["-std=gnu11"])
    elf, link_map = workdir / f"{sketch_dir.name}.elf", workdir / f"{sketch_dir.name}.map"
    # linked as C: the sketch uses no exceptions, RTTI or new, so no C++ library is needed
    p = subprocess.run([cc, *cpu, "--specs=rdimon.specs", "-T", str(_runtime_m4() / "nrf52840.ld"), "-Wl,--gc-sections",
                        f"-Wl,-Map={link_map}", str(_runtime_m4() / "startup.c"), *map(str, objs), "-lm", "-o", str(elf)],
                       cwd=workdir, capture_output=True, text=True)
    if p.returncode != 0:
        raise LabkitError(f"linking the sketch for the Cortex-M4 failed:\n{p.stdout}{p.stderr}".rstrip())
    # the sketch's own code and data (the .ino, the model, the kernels), without the emulated Arduino
    # layer and the C library: what the sketch adds to a board's core
    own = [o.name for o in objs if o.name not in ("arduino_emu.cpp.o", "lk_replay.c.o")]
    write_json(workdir / "sketch_sizes.json", linked_sizes(link_map, own))
    timeout = 120 + len(readings) // 50 + len(serial_input) // 500
    return _run_qemu(qemu, elf, workdir, timeout, "#end of replay", "the emulated sketch").splitlines()
