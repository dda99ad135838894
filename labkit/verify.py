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
from labkit.fileio import write_atomic

HOST_CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"]
SANITIZE_CFLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g"]
_REF_MACRO = {"litert": "LABKIT_NN_REF_LITERT", "tflm": "LABKIT_NN_REF_TFLM"}

INSTALL_HINT = {
    "gcc": "install a C compiler: `sudo apt-get install gcc` (Debian/Ubuntu), `xcode-select --install` (macOS)",
}


def require_tool(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise ToolMissingError(f"{tool} was not found on PATH; {INSTALL_HINT.get(tool, 'install it and retry')}")
    return path


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
    outputs: np.ndarray | None = field(default=None, repr=False)  # the C's outputs, litert build

    @property
    def bit_exact(self) -> bool:
        return all(c.bit_exact for c in self.checks)

    def check(self, reference: str) -> ReferenceCheck:
        return next(c for c in self.checks if c.reference == reference)

    def as_dict(self) -> dict:
        d = {"target": self.target, "samples": self.samples, "bit_exact": self.bit_exact}
        for c in self.checks:
            d[f"{c.reference}_bit_exact"] = c.bit_exact
            d[f"{c.reference}_mismatched_bytes"] = c.mismatched_bytes
        return d


def _run(cmd: list[str], cwd: Path, what: str, timeout: float = 600) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise LabkitError(f"{what} failed (exit {p.returncode}): {' '.join(cmd)}\n{p.stdout}{p.stderr}".rstrip())
    return p


def build_host(cmodel: CModel, reference: str, build_dir: Path, sanitize: bool = False) -> Path:
    """Compile the model and the verification harness for this machine; returns the executable."""
    cc = require_tool("gcc")
    build_dir.mkdir(parents=True, exist_ok=True)
    main = write_atomic(build_dir / "lk_verify_main.c", _env().get_template("verify_main.c.j2").render(
        name=cmodel.name, NAME=cmodel.name.upper()))
    exe = build_dir / f"{cmodel.name}_{reference}{'_asan' if sanitize else ''}"
    cmd = [cc, *HOST_CFLAGS, *(SANITIZE_CFLAGS if sanitize else []), f"-DLABKIT_NN_REFERENCE={_REF_MACRO[reference]}",
           f"-I{cmodel.out_dir}", str(main), *map(str, cmodel.sources), "-lm", "-o", str(exe)]
    _run(cmd, build_dir, "compiling the generated C")
    return exe


def run_host(exe: Path, inputs: np.ndarray, output_size: int, work: Path) -> np.ndarray:
    work.mkdir(parents=True, exist_ok=True)
    (work / "lk_inputs.bin").write_bytes(np.ascontiguousarray(inputs, np.int8).tobytes())
    _run([str(exe)], work, "running the generated C")
    out = np.frombuffer((work / "lk_outputs.bin").read_bytes(), np.int8)
    return out.reshape(len(inputs), output_size)


def random_inputs(cmodel: CModel, samples: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-128, 128, size=(samples, cmodel.input.size), dtype=np.int64).astype(np.int8)


def verify(
    model,
    inputs: np.ndarray | None = None,
    samples: int = 100,
    target: str = "host",
    references=("litert", "tflm"),
    workdir: str | os.PathLike | None = None,
    cmodel: CModel | None = None,
    sanitize: bool = False,
    seed: int = 0,
) -> VerifyReport:
    """Generate (unless ``cmodel`` is given), build and run the C; compare with each reference.

    ``inputs``: int8 samples, shape (N, *input shape) or (N, input size); random if omitted.
    """
    if target != "host":
        raise LabkitError(f"unknown target {target!r}: use 'host'")
    model_bytes = model if isinstance(model, (bytes, bytearray)) else Path(model).read_bytes()
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="labkit-verify-")
        workdir = tmp.name
    workdir = Path(workdir)
    try:
        if cmodel is None:
            cmodel = generate_c(model_bytes, workdir / "model", name="model")
        if inputs is None:
            inputs = random_inputs(cmodel, samples, seed)
        inputs = np.asarray(inputs)
        if inputs.dtype != np.int8:
            raise LabkitError(f"verification inputs must be int8 (got {inputs.dtype}); quantize them with the model's input scale first")
        flat = inputs.reshape(len(inputs), -1)
        if flat.shape[1] != cmodel.input.size:
            raise LabkitError(f"each input must have {cmodel.input.size} values {cmodel.input.shape}, got {flat.shape[1]}")
        report = VerifyReport(target=target, samples=len(flat))
        batch = flat.reshape(len(flat), *cmodel.input.shape[1:])
        for r in references:
            exe = build_host(cmodel, r, workdir / "build", sanitize=sanitize)
            got = run_host(exe, flat, cmodel.output.size, workdir / "run")
            want = ref.run(model_bytes, batch, reference=r)[0].reshape(len(flat), -1)
            mismatched = int(np.count_nonzero(got != want))
            report.checks.append(ReferenceCheck(r, mismatched == 0, mismatched, len(flat)))
            if r == references[0]:
                report.outputs = got
        return report
    finally:
        if tmp is not None:
            tmp.cleanup()
