"""Seeded fuzzing of the .tflite reader, validator and C generator.

Mutants of three small models (an MLP, a CNN, an LSTM), made by truncating the file, flipping
bytes and bits of its flatbuffer structure, overwriting words with edge values, and rewriting
fields through the schema's object API (shapes, types, buffers, quantization, op inputs and
outputs, opcodes, options, op order, graph inputs). Each goes through ``generate_c`` in this
process: it must be refused with a LabkitError or accepted, never raise anything else or hang.
A sample of the accepted mutants is compiled with ASan/UBSan and run, and verified against the
references (each in a child process): the C must run clean, and verify must report bit-exact
or a mismatch (or that no reference runs the model), never crash.

Run more by hand, with another seed:
    .venv/bin/python tests/test_fuzz_tflite.py --seed 7 --mutants 1000
"""

from __future__ import annotations

import functools
import signal
import time
import traceback
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

SEED = 20261202
MUTANTS_PER_MODEL = 130  # x 3 models: >= 300 mutants
SANITIZED_SAMPLE = 6  # accepted mutants compiled with ASan/UBSan and verified
MUTANT_SECONDS = 20  # one mutant through read + validate + generate: far less; more is a hang

_EDGE_INTS = [0, 1, -1, 2, 3, 4, 5, 7, 9, 16, 77, 127, 128, -128, 255, 999, 4096, 65535, 2**31 - 1, -(2**31),
              2**32 - 1, 10**9]
_EDGE_FLOATS = [0.0, -1.0, float("nan"), float("inf"), float("-inf"), 1e-45, 1e-30, 3e38, 1e6]


# ---- the models ------------------------------------------------------------------------------


def build_models(seed: int = 0) -> dict[str, bytes]:
    """Three small int8 models with random (seeded) weights: no training needed to fuzz a reader."""
    from labkit import models
    from labkit.compress.quantize import to_int8_tflite
    from labkit.keras import keras

    rng = np.random.default_rng(seed)
    out = {}
    keras.utils.set_random_seed(seed)
    out["mlp"] = to_int8_tflite(models.mlp((10, 3), 4, hidden=(8,)), rng.normal(size=(64, 10, 3)).astype("float32"),
                                seed=seed)
    keras.utils.set_random_seed(seed)
    out["cnn"] = to_int8_tflite(models.cnn((8, 8, 2), 3, filters=(4,), dense=6),
                                rng.normal(size=(64, 8, 8, 2)).astype("float32"), seed=seed)
    keras.utils.set_random_seed(seed)
    out["lstm"] = to_int8_tflite(models.lstm_classifier((6, 3), 3, units=4),
                                 rng.normal(size=(64, 6, 3)).astype("float32"), seed=seed)
    return out


# ---- mutations ---------------------------------------------------------------------------------


def _load(tflite: bytes):
    return schema.ModelT.InitFromObj(schema.Model.GetRootAs(tflite, 0))


def _pack(model) -> bytes:
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _structure_positions(tflite: bytes) -> np.ndarray:
    """Byte positions outside the constant buffers' data: the flatbuffer's tables, vtables,
    offsets and small vectors, where a flip changes the structure rather than a weight."""
    keep = np.ones(len(tflite), bool)
    m = schema.Model.GetRootAs(tflite, 0)
    for i in range(m.BuffersLength()):
        b = m.Buffers(i)
        n = b.DataLength()
        if n > 16:
            start = b._tab.Vector(b._tab.Offset(4))
            keep[start : start + n] = False
    return np.flatnonzero(keep)


def _sites(obj, out: list) -> list:
    """Every scalar or numeric-vector field reachable from an object-API node: (node, field)."""
    for name, value in vars(obj).items():
        if value is None or isinstance(value, (bytes, str)):
            continue
        if isinstance(value, (bool, int, float, np.integer, np.floating)):
            out.append((obj, name))
        elif isinstance(value, np.ndarray) or (isinstance(value, list) and value and not hasattr(value[0], "__dict__")):
            out.append((obj, name))
        elif isinstance(value, list):
            for v in value:
                _sites(v, out)
        elif hasattr(value, "__dict__"):
            _sites(value, out)
    return out


def _new_int(rng, old: int, n_tensors: int) -> int:
    pick = rng.integers(4)
    if pick == 0:
        return int(rng.integers(-1, n_tensors + 2))
    if pick == 1:
        return old + int(rng.choice([-1, 1]))
    return int(rng.choice(_EDGE_INTS))


def _mutate_field(rng, obj, name: str, n_tensors: int) -> str:
    value = getattr(obj, name)
    if isinstance(value, (bool, np.bool_)):
        setattr(obj, name, not value)
    elif isinstance(value, (float, np.floating)):
        setattr(obj, name, float(rng.choice(_EDGE_FLOATS + [float(value) * 2, float(value) / 1000])))
    elif isinstance(value, (int, np.integer)):
        setattr(obj, name, _new_int(rng, int(value), n_tensors))
    else:
        items = list(np.asarray(value).tolist())
        how = rng.integers(5) if items else 4
        if how == 0:
            k = rng.integers(len(items))
            items[k] = (float(rng.choice(_EDGE_FLOATS)) if isinstance(items[k], float)
                        else _new_int(rng, int(items[k]), n_tensors))
        elif how == 1:
            del items[rng.integers(len(items))]
        elif how == 2:
            items = items[::-1]
        elif how == 3:
            items = items + items[-1:]
        else:
            items = [] if items else [0]
        setattr(obj, name, items)
    return f"{type(obj).__name__[:-1]}.{name}"


def _graph_mutation(rng, model) -> str:
    """Mutations a bit flip rarely makes: op order, transposed weights, constant inputs, activations."""
    g = model.subgraphs[0]
    ops = g.operators
    kind = rng.integers(7)
    if kind == 0 and len(ops) > 1:
        i, j = rng.choice(len(ops), 2, replace=False)
        ops[i], ops[j] = ops[j], ops[i]
        return "ops swapped"
    if kind == 1 and len(ops) > 1:
        del ops[rng.integers(len(ops))]
        return "op deleted"
    if kind == 2:
        weights = [g.tensors[op.inputs[1]] for op in ops if op.inputs is not None and len(op.inputs) > 1
                   and op.inputs[1] >= 0 and g.tensors[op.inputs[1]].shape is not None
                   and len(g.tensors[op.inputs[1]].shape) >= 2]
        if weights:
            t = weights[rng.integers(len(weights))]
            t.shape = list(np.asarray(t.shape)[::-1])
            return "weights transposed"
    if kind == 3:
        constants = [i for i, t in enumerate(g.tensors) if t.buffer and model.buffers[t.buffer].data is not None
                     and len(model.buffers[t.buffer].data)]
        if constants:
            g.inputs = [int(rng.choice(constants))]
            return "graph input made constant"
    if kind == 4:
        with_act = [op.builtinOptions for op in ops if hasattr(op.builtinOptions, "fusedActivationFunction")]
        if with_act:
            with_act[rng.integers(len(with_act))].fusedActivationFunction = int(rng.integers(0, 8))
            return "fused activation"
    if kind == 5:
        quantized = [t.quantization for t in g.tensors if t.quantization is not None and t.quantization.scale is not None]
        if quantized:
            quantized[rng.integers(len(quantized))].quantizedDimension = int(rng.integers(-1, 5))
            return "quantized dimension"
    code = model.operatorCodes[rng.integers(len(model.operatorCodes))]
    code.builtinCode = code.deprecatedBuiltinCode = int(rng.choice([3, 4, 9, 14, 18, 22, 25, 28, 34, 44, 45, 150]))
    return "opcode changed"


def mutate(rng, tflite: bytes) -> tuple[str, bytes]:
    """One mutant of ``tflite`` and what was done to it."""
    how = rng.integers(10)
    if how == 0:
        k = int(rng.integers(0, len(tflite)))
        return f"truncated to {k}", tflite[:k]
    if how in (1, 2, 3):
        buf = bytearray(tflite)
        where = _structure_positions(tflite)
        for _ in range(int(rng.integers(1, 4))):
            p = int(rng.choice(where))
            if how == 1:
                buf[p] = int(rng.integers(256))
            elif how == 2:
                buf[p] ^= 1 << int(rng.integers(8))
            else:
                p -= p % 4
                word = int(rng.choice([0, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, len(tflite), 1, 4, 8]))
                buf[p : p + 4] = word.to_bytes(4, "little")
        return ["byte set", "bit flipped", "word set"][how - 1], bytes(buf)
    for _ in range(20):  # schema-level: until the object API packs it
        model = _load(tflite)
        n = len(model.subgraphs[0].tensors)
        if how < 7:
            sites = _sites(model, [])
            what = ", ".join(_mutate_field(rng, *sites[rng.integers(len(sites))], n) for _ in range(rng.integers(1, 3)))
        else:
            what = _graph_mutation(rng, model)
        try:
            return what, _pack(model)
        except Exception:  # noqa: BLE001  (a value the schema's types cannot hold: draw another)
            continue
    return "unchanged", tflite


# ---- running them ---------------------------------------------------------------------------------


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def run_mutants(models: dict[str, bytes], seed: int, per_model: int, workdir: Path, log: list | None = None):
    """Every mutant through generate_c. Returns (counts, failures, accepted mutants); ``log``
    gets (model, mutation, outcome) for each."""
    from labkit.deploy.codegen import generate_c
    from labkit.errors import LabkitError

    from labkit.deploy import codegen

    rng = np.random.default_rng(seed)
    counts = {"mutants": 0, "refused": 0, "accepted": 0}
    failures, accepted = [], []
    previous = signal.signal(signal.SIGALRM, _alarm)
    make_env = codegen._env
    codegen._env = functools.lru_cache(maxsize=None)(make_env)  # the templates compiled once, not per mutant
    try:
        for name, tflite in models.items():
            for i in range(per_model):
                what, mutant = mutate(rng, tflite)
                counts["mutants"] += 1
                signal.alarm(MUTANT_SECONDS)
                try:
                    cm = generate_c(mutant, workdir / f"{name}_{i}", name="m")
                except LabkitError as e:
                    counts["refused"] += 1
                    if log is not None:
                        log.append((name, what, str(e)))
                    if not str(e).strip() or "\n" in str(e):  # one line, naming the problem
                        failures.append((name, i, what, f"message not one line: {str(e)[:300]!r}"))
                except Hang:
                    failures.append((name, i, what, f"no answer within {MUTANT_SECONDS} s"))
                except Exception as e:  # noqa: BLE001  (what the test is looking for)
                    tb = traceback.extract_tb(e.__traceback__)[-1]
                    failures.append((name, i, what, f"{type(e).__name__}: {e} ({Path(tb.filename).name}:{tb.lineno})"))
                else:
                    counts["accepted"] += 1
                    if mutant != tflite:
                        accepted.append((name, i, what, mutant, cm))
                finally:
                    signal.alarm(0)
    finally:
        signal.signal(signal.SIGALRM, previous)
        codegen._env = make_env
    return counts, failures, accepted


def check_accepted(name, i, what, mutant, cm, workdir: Path, reference: str = "tflm") -> str:
    """The accepted mutant verified with its C built under ASan/UBSan (any report fails the run
    of the C, a LabkitError naming it); returns the outcome. If no reference interpreter runs the
    mutant, its sanitized C still runs on random inputs."""
    from labkit.errors import LabkitError
    from labkit.verify import build_host, random_inputs, run_host, verify

    inputs = random_inputs(cm, 20, seed=1)
    for r in (reference, {"tflm": "litert", "litert": "tflm"}[reference]):  # the other if this one refuses it
        try:
            report = verify(mutant, inputs=inputs, workdir=workdir / r, references=(r,), sanitize=True)
        except LabkitError as e:
            if "no reference interpreter runs" not in str(e):
                raise
            continue
        if report.bit_exact:
            return f"bit-exact with {r} (ASan/UBSan clean)"
        return f"mismatch with {r} reported (ASan/UBSan clean)"
    exe = build_host(cm, reference, workdir / "asan", sanitize=True)
    run_host(exe, inputs, cm.output.size, workdir / "asan-run", cm.output.dtype)
    return "clean under ASan/UBSan; no reference runs it"


# ---- the test -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_models():
    return build_models(seed=0)


def test_fuzzed_models_are_refused_clearly_or_give_memory_safe_c(fuzz_models, tmp_path):
    start = time.monotonic()
    counts, failures, accepted = run_mutants(fuzz_models, SEED, MUTANTS_PER_MODEL, tmp_path / "gen")
    assert counts["mutants"] >= 300
    assert not failures, "\n".join(map(str, failures[:20]))
    assert counts["refused"] >= 100, counts  # the mutations do break models ...
    assert len(accepted) >= SANITIZED_SAMPLE, counts  # ... and leave some that still run
    rng = np.random.default_rng(SEED)
    by_model = {}
    for a in accepted:
        by_model.setdefault(a[0], []).append(a)
    shuffled = [[pool[k] for k in rng.permutation(len(pool))] for pool in by_model.values()]
    rounds = max(len(p) for p in shuffled)
    sample = [p[r] for r in range(rounds) for p in shuffled if r < len(p)][:SANITIZED_SAMPLE]  # round robin
    mutated = time.monotonic()
    assert mutated - start < 150, f"{counts['mutants']} mutants took {mutated - start:.0f} s"
    outcomes = [check_accepted(*a, tmp_path / f"check{k}", reference=("tflm", "litert")[k % 2])
                for k, a in enumerate(sample)]
    assert len(outcomes) == SANITIZED_SAMPLE
    print(counts, outcomes, f"mutants {mutated - start:.0f} s, checks {time.monotonic() - mutated:.0f} s")


if __name__ == "__main__":
    import argparse
    import collections
    import tempfile

    import labkit  # noqa: F401  (tf_keras before TensorFlow)

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--mutants", type=int, default=600, help="in all, spread over the three models")
    ap.add_argument("--check", type=int, default=10, help="accepted mutants to compile with sanitizers and verify")
    args = ap.parse_args()
    t0 = time.monotonic()
    models = build_models(seed=0)
    with tempfile.TemporaryDirectory(prefix="labkit-fuzz-") as tmp:
        counts, failures, accepted = run_mutants(models, args.seed, args.mutants // len(models), Path(tmp))
        print(counts, f"{time.monotonic() - t0:.0f} s")
        for f in failures:
            print("FAILURE", f)
        rng = np.random.default_rng(args.seed)
        picks = rng.choice(len(accepted), min(args.check, len(accepted)), replace=False) if accepted else []
        outcomes = collections.Counter()
        for k in picks:
            a = accepted[int(k)]
            try:
                outcomes[check_accepted(*a, Path(tmp) / f"check{k}", reference=("tflm", "litert")[int(k) % 2])] += 1
            except Exception as e:  # noqa: BLE001
                print("CHECK FAILURE", a[:3], type(e).__name__, str(e)[:500])
        print(dict(outcomes), f"{time.monotonic() - t0:.0f} s")
