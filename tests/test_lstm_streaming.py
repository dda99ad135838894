"""labkit-nn's streaming LSTM: the generated C takes a few time steps per call and carries the LSTM state
between calls (``lstm_state="carry"``). ``verify`` checks it two ways against both reference
interpreters: every call against the reference running the same one-step model with its own state
carried, and after each sequence's last call against the original model run on the whole window."""

import numpy as np
import pytest

import labkit  # noqa: F401  (tf_keras before TensorFlow)
from labkit import reference
from labkit.compress.quantize import to_int8_tflite
from labkit.deploy.codegen import CModel, generate_c
from labkit.deploy.streaming import streaming_tflite
from labkit.errors import LabkitError, UnsupportedModelError
from labkit.keras import keras
from labkit.verify import verify

REFS = ("litert", "tflm")


def _model(units, features, steps, head, seed):
    """Input -> LSTM -> head, random weights, converted to full int8. head: "last" (return_sequences=False,
    Dense, Softmax), "per_step" (Dense on every step), "flatten" (Flatten + Dense: mixes the steps)."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((steps, features), batch_size=1)
    h = keras.layers.LSTM(units, return_sequences=head != "last")(inp)
    if head == "flatten":
        h = keras.layers.Flatten()(h)
    out = keras.layers.Dense(3)(h)
    if head == "last":
        out = keras.layers.Softmax()(out)
    x = np.random.default_rng(seed).normal(size=(64, steps, features)).astype("float32")
    return to_int8_tflite(keras.Model(inp, out), x, seed=0)


@pytest.fixture(scope="module")
def models():
    return {"last": _model(8, 6, 20, "last", 1), "per_step": _model(4, 3, 12, "per_step", 2),
            "flatten": _model(4, 3, 5, "flatten", 3)}


@pytest.mark.parametrize("head,steps_per_call", [("last", 1), ("last", 4), ("per_step", 1), ("per_step", 3)])
def test_streaming_c_is_bit_exact_step_by_step_and_per_window(models, tmp_path, head, steps_per_call):
    cm = generate_c(models[head], tmp_path / "c", name="m", lstm_state="carry", steps_per_call=steps_per_call)
    report = verify(tmp_path / "c", samples=6, target="host", sanitize=True, workdir=tmp_path / "w", seed=3)
    steps = 20 if head == "last" else 12
    for ref in REFS:
        assert report.check(ref).mismatched_bytes == 0 and report.check(ref).samples == 6 * steps // steps_per_call
        assert report.check(f"{ref}:sequence").mismatched_bytes == 0 and report.check(f"{ref}:sequence").samples == 6
    assert report.bit_exact
    units = 8 if head == "last" else 4
    assert cm.input.size == steps_per_call * (6 if head == "last" else 3)
    assert cm.streaming["state_bytes"] == units + 2 * units  # int8 h and int16 c
    assert report.metrics["calls_per_sequence"] == steps // steps_per_call


def test_the_state_is_carried_and_reset(models, tmp_path):
    """Fed one step per call, the C's answer changes as the sequence goes on (the state is carried); after
    NAME_reset() the same sequence gives the same answers again; without a reset it would not."""
    from labkit.verify import build_host, run_host

    tfl = models["last"]
    cm = generate_c(tfl, tmp_path / "c", name="m", lstm_state="carry")
    seq = np.random.default_rng(4).integers(-128, 128, size=(20, 6)).astype(np.int8)
    exe = build_host(cm, "tflm", tmp_path / "b", sanitize=True)  # its harness resets every 20 calls
    got = run_host(exe, np.concatenate([seq, seq]), cm.output.size, tmp_path / "r")
    assert np.array_equal(got[:20], got[20:])  # reset at the start of the second sequence
    assert len({bytes(r) for r in got[:20]}) > 5  # the answer moves as steps arrive
    whole = reference.run(tfl, seq[None], "tflm")[0].reshape(-1)
    assert np.array_equal(got[19], whole)  # after the window's 20 steps: the window classifier's answer
    # the references carry their state the same way; without the reset the second sequence differs
    stepped, _ = streaming_tflite(tfl, 1)
    carried = reference.run(stepped, np.concatenate([seq, seq])[:, None], "tflm", steps_per_reset=40)[0]
    assert not np.array_equal(carried[:20], carried[20:])


def test_the_state_lives_in_the_arena_apart_from_every_other_tensor(models, tmp_path):
    cm = generate_c(models["last"], tmp_path / "c", name="m", lstm_state="carry")
    per_window = generate_c(models["last"], tmp_path / "w", name="m")
    state = cm.streaming["state"]
    assert sorted((s["ctype"], s["count"]) for s in state) == [("int16_t", 8), ("int8_t", 8)]
    c_text = (tmp_path / "c" / "m.c").read_text()
    assert "void m_reset(void)" in c_text and "void m_reset(void);" in (tmp_path / "c" / "m.h").read_text()
    # nothing else overlaps the state's bytes: the plan listed in m.c
    import re

    spans = [(int(a), int(b), what) for a, b, what in
             re.findall(r"^ \*\s+(\d+) \.\.\s+(\d+)  (.*)$", c_text, flags=re.M)]
    for s in state:
        lo, hi = s["offset"], s["offset"] + s["count"] * (2 if s["ctype"] == "int16_t" else 1)
        assert [w for a, b, w in spans if a < hi and lo < b] == [next(w for a, b, w in spans if a == lo and b == hi)]
    assert cm.arena_bytes <= cm.arena_lower_bound + 64 and "m_reset" not in (tmp_path / "w" / "m.c").read_text()
    # the manifest records the mode: a folder is verified as what it is
    assert CModel.from_folder(tmp_path / "c").streaming["steps_per_call"] == 1
    assert per_window.streaming is None


def test_gesture_lstm_streams_on_cortex_m4(tmp_path):
    """The 119-step gesture LSTM, one IMU reading per call, on the emulated Cortex-M4."""
    tfl = _model(16, 6, 119, "last", 5)
    report = verify(tfl, samples=3, target="cortex-m4", workdir=tmp_path,
                    cmodel=generate_c(tfl, tmp_path / "c", name="g", lstm_state="carry"))
    for ref in REFS:
        assert report.check(ref).mismatched_bytes == 0 and report.check(f"{ref}:sequence").mismatched_bytes == 0
    assert report.metrics["macs"] == 4 * (6 + 16) * 16 + 16 * 3  # one step of the LSTM, then the Dense
    assert report.metrics["instructions"] > report.metrics["macs"]
    assert report.metrics["state_bytes"] == 48 and report.metrics["calls_per_sequence"] == 119


def test_models_that_cannot_stream_are_refused_by_name(models, tmp_path):
    with pytest.raises(UnsupportedModelError, match=r"op 1 \(RESHAPE\) mixes time steps"):
        generate_c(models["flatten"], tmp_path / "a", lstm_state="carry")
    with pytest.raises(UnsupportedModelError, match="steps_per_call 3 must be a whole number that divides the 20"):
        generate_c(models["last"], tmp_path / "b", lstm_state="carry", steps_per_call=3)
    inp = keras.Input((10, 3), batch_size=1)
    dense = to_int8_tflite(keras.Model(inp, keras.layers.Dense(2)(inp)),
                           np.random.default_rng(0).normal(size=(20, 10, 3)).astype("float32"))
    with pytest.raises(UnsupportedModelError, match="no LSTM reading its input"):
        generate_c(dense, tmp_path / "c", lstm_state="carry")
    # the first step kept instead of the last: the answer would need the whole window first
    inp = keras.Input((6, 3), batch_size=1)
    first = keras.layers.Lambda(lambda h: h[:, 0])(keras.layers.LSTM(4, return_sequences=True)(inp))
    sliced = to_int8_tflite(keras.Model(inp, keras.layers.Dense(2)(first)),
                            np.random.default_rng(0).normal(size=(20, 6, 3)).astype("float32"))
    with pytest.raises(UnsupportedModelError, match=r"op 1 \(STRIDED_SLICE\) does not keep only the last time step"):
        generate_c(sliced, tmp_path / "f", lstm_state="carry")
    with pytest.raises(LabkitError, match="steps_per_call=4 is for lstm_state='carry'"):
        generate_c(models["last"], tmp_path / "d", steps_per_call=4)
    with pytest.raises(LabkitError, match="lstm_state must be 'reset'"):
        generate_c(models["last"], tmp_path / "e", lstm_state="keep")
    with pytest.raises(LabkitError, match="steps_per_reset must be a whole number"):
        reference.run(models["last"], np.zeros((1, 20, 6), np.int8), "tflm", steps_per_reset=0)
    assert not any((tmp_path / d).exists() for d in "abcdef")


def test_codegen_and_verify_cli(models, tmp_path, capsys):
    from labkit import cli

    model = tmp_path / "lstm.tflite"
    model.write_bytes(models["last"])
    assert cli.main(["codegen", str(model), "-o", str(tmp_path / "c"), "--lstm-state", "carry",
                     "--steps-per-call", "2"]) == 0
    assert "streaming: 2 of 20 time steps per call, LSTM state carried (24 bytes, inside the arena)" in \
        capsys.readouterr().out
    assert cli.main(["verify", str(tmp_path / "c"), "--samples", "3"]) == 0
    table = capsys.readouterr().out
    rows = dict(line.split(None, 1) for line in table.splitlines())
    assert rows["tflm:sequence_bit_exact"].strip() == rows["litert_bit_exact"].strip() == "true"
    assert rows["calls_per_sequence"].strip() == "10"
