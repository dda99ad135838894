"""The two reference interpreters, behind one function each.

* LiteRT (``ai_edge_litert``) with ``OpResolverType.BUILTIN_REF``: TFLite's reference kernels.
  The default resolver (XNNPACK/optimized) can differ by one LSB, so it is never used here.
* The ``tflite-micro`` Python interpreter: what runs on a microcontroller with TFLM.

Measured on this kit's pinned versions, the two do not agree bit for bit. LiteRT 2.3
requantizes FULLY_CONNECTED with a single rounding (TFLM: two), computes int8 softmax, tanh
and logistic from float tables (TFLM: gemmlowp fixed point), and clamps RELU6 after
rescaling (TFLM: without); for small LSTM cell-state scales LiteRT's integer tanh of the
cell is skipped altogether (h = o * i). labkit-nn C can match either reference
(LABKIT_NN_REFERENCE in labkit_nn_config.h; TFLM by default, the microcontroller
runtime), and ``labkit verify`` checks each build against its own reference.

Samples are independent: :func:`run` resets the interpreter's variable tensors before every
sample. Both interpreters otherwise keep a stateful op's state between invokes (measured:
an LSTM's hidden and cell state carry over, so the same window gives a different answer the
second time), which would make each sample's result depend on the ones before it. A window
classifier must start every window from a zero state, as the generated C does.
"""

from __future__ import annotations

import os
import pickle
import re
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from labkit.errors import LabkitError
from labkit.quiet import capture_stderr

REFERENCES = ("litert", "tflm")
NAMES = {"litert": "LiteRT (BUILTIN_REF)", "tflm": "TFLite Micro"}


def _as_bytes(model) -> bytes:
    if isinstance(model, (bytes, bytearray)):
        return bytes(model)
    with open(model, "rb") as f:
        return f.read()


def run(model, inputs: np.ndarray | Sequence[np.ndarray], reference: str = "litert",
        steps_per_reset: int = 1) -> list[np.ndarray]:
    """Run ``model`` on a batch and return one array per model output, with a leading batch axis.

    ``inputs`` holds one array per model input (or one array for a single-input model),
    each with the samples along the first axis, already in the model's input dtype.
    ``steps_per_reset``: the interpreter's state (an LSTM's) is reset before every sample (1,
    the default), or only before every ``steps_per_reset``-th: a model that takes one step of a
    sequence per invoke (labkit.deploy.streaming) then carries its state through the sequence.
    """
    model = _as_bytes(model)
    if isinstance(inputs, np.ndarray):
        inputs = [inputs]
    if isinstance(steps_per_reset, bool) or not isinstance(steps_per_reset, (int, np.integer)) or steps_per_reset < 1:
        raise LabkitError(f"steps_per_reset must be a whole number >= 1, got {steps_per_reset!r}")
    if reference == "litert":
        return _run_litert(model, inputs, int(steps_per_reset))
    if reference == "tflm":
        return _run_tflm(model, inputs, int(steps_per_reset))
    raise LabkitError(f"unknown reference interpreter {reference!r}: use one of {', '.join(REFERENCES)}")


def _run_litert(model: bytes, inputs: Sequence[np.ndarray], steps_per_reset: int = 1) -> list[np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_content=model, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    in_details = interp.get_input_details()
    out_details = interp.get_output_details()
    _check_inputs(inputs, [(d["shape"], d["dtype"]) for d in in_details])
    n = len(inputs[0])
    outs = [np.empty((n, *d["shape"][1:]), d["dtype"]) for d in out_details]
    for i in range(n):
        if i % steps_per_reset == 0:
            interp.reset_all_variables()  # each sample from a fresh state (see module docstring)
        for d, x in zip(in_details, inputs):
            interp.set_tensor(d["index"], x[i : i + 1])
        interp.invoke()
        for o, d in zip(outs, out_details):
            o[i] = interp.get_tensor(d["index"])[0]
    return outs


def _run_tflm(model: bytes, inputs: Sequence[np.ndarray], steps_per_reset: int = 1) -> list[np.ndarray]:
    interp = _tflm_interpreter(model)
    n = len(inputs[0])
    in_details = [interp.get_input_details(k) for k in range(len(inputs))]
    _check_inputs(inputs, [(d["shape"], d["dtype"]) for d in in_details])
    from ai_edge_litert import schema_py_generated as schema

    n_out = schema.Model.GetRootAs(model, 0).Subgraphs(0).OutputsLength()
    outs = None
    for i in range(n):
        if i % steps_per_reset == 0:
            interp.reset()  # each sample from a fresh state (see module docstring)
        for k, x in enumerate(inputs):
            interp.set_input(x[i : i + 1], k)
        interp.invoke()
        got = [interp.get_output(k) for k in range(n_out)]
        if outs is None:
            outs = [np.empty((n, *o.shape[1:]), o.dtype) for o in got]
        for o, g in zip(outs, got):
            o[i] = g[0]
    return outs or []


def _tflm_interpreter(model: bytes):
    from tflite_micro.python.tflite_micro import runtime as tflm

    # The arena given here is only an upper bound; what the model uses is recorded.
    return tflm.Interpreter.from_bytes(model, arena_size=max(len(model) * 10, 4 << 20))


def _check_inputs(inputs, expected):
    if len(inputs) != len(expected):
        raise LabkitError(f"the model has {len(expected)} input(s) but {len(inputs)} array(s) were given")
    for k, (x, (shape, dtype)) in enumerate(zip(inputs, expected)):
        if tuple(x.shape[1:]) != tuple(shape[1:]) or x.dtype != dtype:
            raise LabkitError(
                f"input {k}: expected samples of shape {tuple(shape[1:])} and dtype {np.dtype(dtype).name}, "
                f"got shape {tuple(x.shape[1:])} and dtype {x.dtype.name} "
                "(quantize float data with the model's input scale and zero point first)"
            )


def tflm_arena_bytes(model) -> int:
    """Bytes of tensor arena TFLite Micro needs for ``model``, as its recording allocator reports.

    Measured in a child process (see :func:`run_isolated`), so a model that makes TFLite Micro
    abort gives a LabkitError instead of ending the caller's process.
    """
    results = run_isolated(model, None, references=(), arena=True)
    if isinstance(results.arena, str):
        raise LabkitError(results.arena)
    return results.arena


def _tflm_arena_bytes(model: bytes) -> int:
    """TFLM prints the arena to the C-level stderr only (``print_allocations``), so the file
    descriptor is redirected to a temporary file while it prints."""
    interp = _tflm_interpreter(model)
    with capture_stderr() as out:
        interp.print_allocations()
    text = out.text
    m = re.search(r"Arena allocation total (\d+) bytes", text)
    if not m:
        raise LabkitError("could not read TFLite Micro's arena size from print_allocations()")
    return int(m.group(1))


class IODetail:
    """Shape, dtype and quantization of one model input or output."""

    def __init__(self, d: dict):
        self.name = d["name"]
        self.shape = tuple(int(s) for s in d["shape"])
        self.dtype = np.dtype(d["dtype"])
        self.scale, self.zero_point = float(d["quantization"][0]), int(d["quantization"][1])

    def __repr__(self):
        return f"IODetail({self.name!r}, {self.shape}, {self.dtype.name}, scale={self.scale}, zero_point={self.zero_point})"


def io_details(model) -> tuple[list[IODetail], list[IODetail]]:
    """The model's inputs and outputs, as LiteRT reports them."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        interp = Interpreter(model_content=_as_bytes(model))
    except ValueError as e:
        detail = "; ".join(l.strip() for l in str(e).splitlines() if l.strip())
        raise LabkitError(f"LiteRT cannot read the model: {detail} (labkit codegen MODEL names what is wrong)") from None
    return [IODetail(d) for d in interp.get_input_details()], [IODetail(d) for d in interp.get_output_details()]


# ---- the references in a child process ------------------------------------------------------
#
# Both interpreters are C++: on a malformed model they can abort (SIGABRT) or crash, which would
# end the caller's process with no message (a notebook kernel dies, `labkit verify` leaves its
# temporary folders). run_isolated runs them in one child process per call (python -m
# labkit.reference), which reports each reference's outputs as soon as it has them; if the child
# dies, the reference it was running is named as the one that crashed, and a fresh child runs
# the references that had not run yet.


@dataclass
class ReferenceRun:
    """What one reference interpreter gave: its outputs, or why there are none."""

    reference: str
    outputs: list[np.ndarray] | None = None
    problem: str = ""  # why it did not run: it refused the model, or crashed

    @property
    def ran(self) -> bool:
        return self.outputs is not None


@dataclass
class IsolatedRuns:
    runs: dict[str, ReferenceRun]
    arena: int | str | None = None  # TFLM's arena bytes, the reason it could not be measured, or None (not asked)


def _signal_name(returncode: int) -> str:
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit {returncode}"


def _last_line(text: str) -> str:
    lines = [l.strip() for l in text.splitlines() if l.strip() and not l.startswith("Traceback")]
    return lines[-1][:300] if lines else ""


def run_isolated(model, inputs: np.ndarray | Sequence[np.ndarray] | None, references=REFERENCES,
                 arena: bool = False, label: str = "the model", timeout: float | None = None,
                 steps_per_reset: int = 1) -> IsolatedRuns:
    """Run ``references`` (and, with ``arena``, TFLM's arena measurement) on ``model`` in a child
    process; a reference that refuses the model or crashes is reported in its ``problem``.
    ``steps_per_reset`` as in :func:`run`."""
    model = _as_bytes(model)
    if isinstance(inputs, np.ndarray):
        inputs = [inputs]
    inputs = [np.ascontiguousarray(x) for x in inputs or []]
    n = len(inputs[0]) if inputs else 0
    timeout = timeout or 120 + 0.5 * n
    for r in references:
        if r not in REFERENCES:
            raise LabkitError(f"unknown reference interpreter {r!r}: use one of {', '.join(REFERENCES)}")
    out = IsolatedRuns({r: ReferenceRun(r) for r in references})
    todo = [r for r in references] + (["arena"] if arena else [])
    while todo:
        done = _child(model, inputs, todo, out, label, timeout, steps_per_reset)
        todo = [t for t in todo if t not in done]
    return out


def _who(task: str) -> str:
    return NAMES["tflm"] + "'s arena measurement" if task == "arena" else NAMES[task]


def _record(out: IsolatedRuns, task: str, outputs, problem: str) -> None:
    if task == "arena":
        out.arena = outputs if problem == "" else problem
    else:
        out.runs[task].outputs, out.runs[task].problem = outputs, problem


def _child(model: bytes, inputs, tasks: list[str], out: IsolatedRuns, label: str, timeout: float,
           steps_per_reset: int = 1) -> set[str]:
    """One child process working through ``tasks``; returns the tasks it settled."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    done: set[str] = set()
    current = None
    with tempfile.TemporaryFile() as err:
        p = subprocess.Popen([sys.executable, "-m", "labkit.reference"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=err, env=env)
        try:
            try:
                pickle.dump({"model": model, "inputs": inputs, "tasks": tasks, "steps_per_reset": steps_per_reset},
                            p.stdin, protocol=4)
                p.stdin.close()
            except BrokenPipeError:
                pass
            timed_out: list[bool] = []
            timer = threading.Timer(timeout, lambda: (timed_out.append(True), p.kill()))
            timer.start()
            try:
                while True:
                    try:
                        msg = pickle.load(p.stdout)
                    except (EOFError, pickle.UnpicklingError):
                        break
                    if msg[0] == "start":
                        current = msg[1]
                    elif msg[0] == "result":
                        _, task, outputs, problem = msg
                        _record(out, task, outputs, problem)
                        done.add(task)
                        current = None
                p.wait()
            finally:
                timer.cancel()
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    if len(done) < len(tasks):
        # the child died: the task it had started crashed it (or, before any, it could not start)
        task = current or next(t for t in tasks if t not in done)
        who = _who(task)
        if timed_out:
            why = f"{who} did not finish within {timeout:g} s on {label}"
        else:
            detail = _last_line(stderr)
            why = f"{who} crashed on {label} ({_signal_name(p.returncode)})" + (f": {detail}" if detail else "")
        _record(out, task, None, why)
        done.add(task)
    return done


def _worker() -> None:
    """The child's side of run_isolated: a request on stdin, one message per step on stdout."""
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever the interpreters print at C level goes to stderr, not into the channel
    request = pickle.load(sys.stdin.buffer)
    model, inputs = request["model"], request["inputs"]

    def send(*msg):
        pickle.dump(msg, channel, protocol=4)
        channel.flush()

    crash = os.environ.get("LABKIT_TEST_REFERENCE_CRASH")  # tests: die as a crashing interpreter would
    for task in request["tasks"]:
        send("start", task)
        if task == crash:
            os.kill(os.getpid(), signal.SIGSEGV)
        try:
            if task == "arena":
                result = _tflm_arena_bytes(model)
            else:
                result = run(model, inputs, reference=task, steps_per_reset=request.get("steps_per_reset", 1))
            send("result", task, result, "")
        except Exception as e:  # noqa: BLE001  (the interpreter refused the model: report why)
            what = _who(task)
            detail = "; ".join(l.strip() for l in str(e).splitlines() if l.strip()) or type(e).__name__
            detail = re.sub(r"\.(?=[A-Z])", ". ", detail)  # LiteRT runs its sentences together
            send("result", task, None, f"{what} refused the model: {detail[:400]}")
    channel.close()


if __name__ == "__main__":
    _worker()
