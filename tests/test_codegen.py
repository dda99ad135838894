"""labkit-nn: reading .tflite, generating C, and bit-exactness against both reference interpreters."""

import json
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.deploy import memory
from labkit.deploy.codegen import cfloat, cstring, generate_c, runtime_files
from labkit.deploy.quant_math import LITERT, TFLM, quantize_multiplier
from labkit.deploy.tflite_reader import read_tflite
from labkit.errors import LabkitError, UnsupportedModelError
from labkit.verify import build_host, random_inputs, run_host, verify
from labkit import reference


# ---- quantization arithmetic --------------------------------------------------------


@given(st.floats(min_value=1e-6, max_value=1e3, allow_nan=False))
def test_quantize_multiplier_represents_the_real_value(real):
    for ref in (LITERT, TFLM):
        m, shift = quantize_multiplier(real, ref)
        assert 2**30 <= m < 2**31
        # m * 2^shift / 2^31 is within half a unit in the last place of Q0.31
        assert abs(m * 2.0**shift / 2**31 - real) <= 2.0**shift / 2**32 * 1.0000001


def test_quantize_multiplier_of_zero_and_of_tiny_values():
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(1e-12) == (0, 0)  # below 2^-31: TFLite flushes it to zero


# ---- the reader --------------------------------------------------------------------------


def test_reader_sees_the_ops_and_quantization(gesture_tflite):
    g = read_tflite(gesture_tflite)
    assert [op.kind for op in g.ops] == ["RESHAPE", "FULLY_CONNECTED", "FULLY_CONNECTED", "FULLY_CONNECTED", "SOFTMAX"]
    x, y = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
    assert x.shape == (1, 119, 6) and x.dtype == np.int8
    assert y.shape == (1, 4) and y.dtype == np.int8
    assert float(y.scale[0]) == pytest.approx(1 / 256) and int(y.zero_point[0]) == -128
    fc_weights = g.tensors[g.ops[1].inputs[1]]
    assert fc_weights.is_constant and fc_weights.data.shape == (16, 714)


def test_reader_rejects_a_file_that_is_not_tflite(tmp_path):
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"this is not a flatbuffer at all")
    with pytest.raises(LabkitError, match="not a .tflite"):
        read_tflite(bad)


# ---- C generation and bit-exactness ----------------------------------------------------


def test_generated_c_is_bit_exact_with_both_references(gesture_tflite, tmp_path):
    report = verify(gesture_tflite, samples=200, workdir=tmp_path)
    assert report.samples == 200
    for ref_name in ("litert", "tflm"):
        check = report.check(ref_name)
        assert check.mismatched_bytes == 0, ref_name
    assert report.bit_exact


def test_generated_c_is_clean_under_sanitizers(gesture_tflite, tmp_path):
    cm = generate_c(gesture_tflite, tmp_path / "c", name="gesture")
    inputs = random_inputs(cm, 50, seed=3)
    want = reference.run(gesture_tflite, inputs.reshape(50, 119, 6), "litert")[0].reshape(50, -1)
    exe = build_host(cm, "litert", tmp_path / "build", sanitize=True)
    got = run_host(exe, inputs, cm.output.size, tmp_path / "run")
    assert np.array_equal(got, want)


def test_the_comparison_catches_a_single_changed_weight(gesture_tflite, tmp_path):
    """If the C differed from the model by one weight, verification must say so."""
    cm = generate_c(gesture_tflite, tmp_path / "c", name="gesture")
    src = (tmp_path / "c" / "gesture.c").read_text()
    # change the first weight of the last layer (op 3) by a large step
    m = re.search(r"(op3_fully_connected_weights\[\d+\] = \{\s*)(-?\d+)", src)
    old = int(m.group(2))
    new = old - 100 if old > 0 else old + 100
    (tmp_path / "c" / "gesture.c").write_text(src[: m.start(2)] + str(new) + src[m.end(2):])
    report = verify(gesture_tflite, samples=100, cmodel=cm, workdir=tmp_path / "w", references=("litert",))
    assert not report.bit_exact
    assert report.check("litert").mismatched_bytes > 0


def test_references_really_differ_so_each_needs_its_own_build(gesture_tflite, tmp_path):
    """The LiteRT-arithmetic build compared with TFLM disagrees somewhere: the two modes are not a formality."""
    cm = generate_c(gesture_tflite, tmp_path / "c", name="gesture")
    inputs = random_inputs(cm, 300, seed=7)
    exe = build_host(cm, "litert", tmp_path / "build")
    got = run_host(exe, inputs, cm.output.size, tmp_path / "run")
    tflm = reference.run(gesture_tflite, inputs.reshape(300, 119, 6), "tflm")[0].reshape(300, -1)
    litert = reference.run(gesture_tflite, inputs.reshape(300, 119, 6), "litert")[0].reshape(300, -1)
    assert np.array_equal(got, litert)
    assert np.count_nonzero(litert != tflm) > 0


def test_generated_files_and_header_facts(gesture_tflite, tmp_path):
    cm = generate_c(gesture_tflite, tmp_path, name="gesture", labels=["punch", "flex", 'say "hi"', "circle"])
    names = {p.name for p in cm.files}
    assert {"gesture.c", "gesture.h", "labkit_nn.c", "labkit_nn.h", "labkit_nn_config.h"} <= names
    assert {p.name for p in runtime_files()} <= names  # every kernel file travels with the model
    assert all((tmp_path / n).is_file() for n in names)
    h = (tmp_path / "gesture.h").read_text()
    assert f"#define GESTURE_ARENA_BYTES {cm.arena_bytes}" in h
    assert "int gesture_invoke(const int8_t *input, int8_t *output);" in h
    c = (tmp_path / "gesture.c").read_text()
    assert "malloc" not in c and "malloc" not in (tmp_path / "labkit_nn.c").read_text()
    assert r'"say \"hi\""' in c
    # weights counted: every FC weight plus biases/multipliers/tables
    g = read_tflite(gesture_tflite)
    fc_weights = sum(g.tensors[op.inputs[1]].size for op in g.ops if op.kind == "FULLY_CONNECTED")
    assert cm.weights_bytes > fc_weights
    assert cm.macs == 714 * 16 + 16 * 8 + 8 * 4


def test_arena_equals_the_lower_bound_for_a_chain(gesture_tflite, tmp_path):
    cm = generate_c(gesture_tflite, tmp_path, name="gesture")
    # input (714 -> 720 aligned) and the first layer's output (16) are live together
    assert cm.arena_bytes == cm.arena_lower_bound == 720 + 16
    assert cm.arena_bytes < reference.tflm_arena_bytes(gesture_tflite)


def test_unsupported_op_is_named_with_the_supported_list(tmp_path):
    from labkit.compress.quantize import to_int8_tflite
    from labkit.keras import keras, tf

    inp = keras.Input((8,))
    out = keras.layers.Lambda(lambda t: tf.abs(t))(keras.layers.Dense(4)(inp))
    model = keras.Model(inp, out)
    tfl = to_int8_tflite(model, np.random.default_rng(0).normal(size=(50, 8)).astype("float32"))
    with pytest.raises(UnsupportedModelError) as e:
        generate_c(tfl, tmp_path)
    msg = str(e.value)
    assert "ABS" in msg and "Supported ops:" in msg and "FULLY_CONNECTED" in msg


def test_float_model_gets_told_how_to_quantize(float_tflite, tmp_path):
    with pytest.raises(UnsupportedModelError, match="not quantized.*to_int8_tflite"):
        generate_c(float_tflite, tmp_path)


@pytest.mark.parametrize("bad", ["", "1model", "my-model", "int", "setup", "a b"])
def test_bad_c_names_are_refused(gesture_tflite, tmp_path, bad):
    with pytest.raises(LabkitError, match="cannot name a C model"):
        generate_c(gesture_tflite, tmp_path, name=bad)


def test_wrong_number_of_labels(gesture_tflite, tmp_path):
    with pytest.raises(LabkitError, match="3 labels given but the model has 4 outputs"):
        generate_c(gesture_tflite, tmp_path, labels=["a", "b", "c"])


def test_c_literals():
    assert cfloat(1.0) == "1.0f" and cfloat(0.5) == "0.5f"
    for v in (0.1, 1e-5, 3.0e38, -2.5e-7):  # 9 significant digits round-trip any float32 exactly
        assert np.float32(float(cfloat(v)[:-1])) == np.float32(v)
    assert cstring('a"b\\c') == '"a\\"b\\\\c"'
    assert cstring("é") == '"\\303\\251"'
    assert "?" not in cstring("what??!")


# ---- memory planning ----------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 500), st.integers(-1, 8), st.integers(0, 4)), min_size=1, max_size=12))
def test_memory_plan_never_overlaps_live_buffers(specs):
    buffers = [memory.Buffer(i, size, first, min(first + length, 9)) for i, (size, first, length) in enumerate(specs)]
    plan = memory.plan(buffers, 8)
    for a in plan.buffers:
        assert a.offset % memory.ALIGN == 0
        assert a.offset + a.size <= plan.arena_bytes
        for b in plan.buffers:
            if a is not b and a.overlaps_in_time(b):
                assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset
    assert plan.arena_bytes >= plan.lower_bound


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 2000), min_size=2, max_size=10))
def test_memory_plan_of_a_chain_reaches_the_lower_bound(sizes):
    # tensor k is written by op k-1 and read by op k
    buffers = [memory.Buffer(k, s, k - 1, k) for k, s in enumerate(sizes)]
    plan = memory.plan(buffers, len(sizes) - 1)
    assert plan.arena_bytes == plan.lower_bound
    assert plan.lower_bound == max(
        math.ceil(a / 8) * 8 + math.ceil(b / 8) * 8 for a, b in zip(sizes, sizes[1:])
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 3000), st.integers(0, 700)), min_size=2, max_size=10))
def test_memory_plan_of_a_chain_with_scratch_reaches_the_lower_bound(specs):
    # tensor k is written by op k-1 and read by op k; op k also needs scratch[k] bytes (0: none), as the LSTM does
    sizes, scratch = [s for s, _ in specs], [x for _, x in specs[:-1]]
    buffers = [memory.Buffer(k, s, k - 1, k) for k, s in enumerate(sizes)]
    buffers += [memory.Buffer(("scratch", k), x, k, k) for k, x in enumerate(scratch) if x]
    plan = memory.plan(buffers, len(sizes) - 1)
    a8 = lambda n: math.ceil(n / 8) * 8  # noqa: E731
    assert plan.arena_bytes == plan.lower_bound == max(
        a8(sizes[k]) + a8(sizes[k + 1]) + a8(scratch[k]) for k in range(len(scratch)))
    for a in plan.buffers:
        for b in plan.buffers:
            if a is not b and a.overlaps_in_time(b):
                assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset


# ---- the command line ---------------------------------------------------------------------


@pytest.fixture
def model_file(gesture_tflite, tmp_path):
    path = tmp_path / "gesture.tflite"
    path.write_bytes(gesture_tflite)
    return path


def test_codegen_command_writes_a_folder_that_verify_checks(model_file, tmp_path, capsys):
    from labkit import cli

    model = model_file
    assert cli.main(["codegen", str(model), "-o", str(tmp_path / "out"), "--name", "my_model"]) == 0
    assert "arena: 736 bytes" in capsys.readouterr().out
    header = (tmp_path / "out" / "my_model.h").read_text()
    assert "int my_model_invoke(const int8_t *input, int8_t *output);" in header
    assert (tmp_path / "out" / "labkit_nn.c").is_file()
    assert cli.main(["verify", str(tmp_path / "out"), "--samples", "5", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["bit_exact"] and report["mismatched_bytes"] == 0 and report["samples"] == 5
    assert report["tflm_arena_bytes"] > report["arena_bytes"] == 736
    assert report["instructions"] is None and report["flash_bytes"] is None  # measured on the Cortex-M4 only


@pytest.mark.parametrize("argv,words", [
    (["codegen", "{model}", "-o", "{file}"], "is a file, not a folder"),
    (["codegen", "{tmp}/missing.tflite", "-o", "{tmp}/out"], "missing.tflite"),
    (["verify", "{tmp}/missing.tflite"], "missing.tflite"),
])
def test_codegen_and_verify_mistakes_give_one_line_not_a_traceback(model_file, tmp_path, capsys, argv, words):
    from labkit import cli

    model, file = model_file, tmp_path / "notes.txt"
    file.write_text("mine")
    assert cli.main([a.format(model=model, file=file, tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("labkit: error:") and words in err and "Traceback" not in err
    assert file.read_text() == "mine"


@pytest.mark.parametrize("samples", ["0", "-3", "many"])
def test_verify_refuses_a_bad_sample_count(model_file, capsys, samples):
    from labkit import cli

    with pytest.raises(SystemExit) as e:
        cli.main(["verify", str(model_file), "--samples", samples])
    assert e.value.code == 2 and "--samples" in capsys.readouterr().err
