"""labkit-nn UNIDIRECTIONAL_SEQUENCE_LSTM: the fused int8 LSTM the converter makes from a tf_keras
``LSTM`` layer with a batch size of 1, bit-exact with both reference interpreters.

Configurations cover 4/8/16 units, 3/6 input features, 5/20/119 steps, ``return_sequences``
on and off, each followed by Dense. One of them is calibrated on small inputs so that the
converter picks a cell-state scale below 2^-15, where LiteRT's integer tanh of the cell state
does nothing (see labkit_nn_lstm.c); each build still matches its own reference.
"""

import dataclasses

import numpy as np
import pytest

import labkit  # noqa: F401  (tf_keras before TensorFlow)
from labkit import reference
from labkit.compress.quantize import quantize, to_int8_tflite
from labkit.deploy.codegen import generate_c
from labkit.deploy.ops import LOWERINGS
from labkit.deploy.tflite_reader import read_tflite
from labkit.errors import UnsupportedModelError
from labkit.keras import keras
from labkit.verify import build_host, random_inputs, run_host, verify

REFS = ("litert", "tflm")


def _lstm_model(units, features, steps, return_sequences, seed, data_scale=1.0, bias_scale=0.5):
    """Input -> LSTM -> Dense, random weights and biases, converted to full int8."""
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    inp = keras.Input((steps, features), batch_size=1)
    lstm = keras.layers.LSTM(units, return_sequences=return_sequences)
    h = lstm(inp)
    if return_sequences:
        h = keras.layers.Flatten()(h)
    model = keras.Model(inp, keras.layers.Dense(3)(h))
    kernel, recurrent, bias = lstm.get_weights()
    lstm.set_weights([kernel, recurrent, bias + rng.normal(0.0, bias_scale, size=bias.shape).astype("float32")])
    x = (rng.normal(size=(64, steps, features)) * data_scale).astype("float32")
    return to_int8_tflite(model, x, seed=0)


CONFIGS = {
    # name: (units, features, steps, return_sequences, seed, data_scale, bias_scale)
    "u4_f3_t5_seq": (4, 3, 5, True, 1, 1.0),
    "u8_f6_t20_last": (8, 6, 20, False, 2, 1.0),
    "u8_f3_t20_seq_small_cell": (8, 3, 20, True, 3, 0.05, 0.0),
}


@pytest.fixture(scope="module")
def lstm_models():
    return {name: _lstm_model(*cfg) for name, cfg in CONFIGS.items()}


@pytest.fixture(scope="module")
def gesture_lstm(gesture_data):
    """A small gesture classifier: LSTM(16) over the 119 x 6 IMU window, Dense(4), Softmax."""
    x, y, _, _, labels = gesture_data
    keras.utils.set_random_seed(0)
    inp = keras.Input(x.shape[1:])
    out = keras.layers.Softmax()(keras.layers.Dense(len(labels))(keras.layers.LSTM(16)(inp)))
    model = keras.Model(inp, out)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    return to_int8_tflite(model, x, seed=0)


def _lstm_op(tflite):
    g = read_tflite(tflite)
    (op,) = [op for op in g.ops if op.kind == "UNIDIRECTIONAL_SEQUENCE_LSTM"]
    return g, op


# ---- what the converter emits ------------------------------------------------------------


def test_reader_sees_the_fused_lstm_its_state_and_intermediates(gesture_lstm):
    g, op = _lstm_op(gesture_lstm)
    assert [o.kind for o in g.ops] == ["UNIDIRECTIONAL_SEQUENCE_LSTM", "STRIDED_SLICE", "FULLY_CONNECTED", "SOFTMAX"]
    assert len(op.inputs) == 24
    absent = [k for k, t in enumerate(op.inputs) if t < 0]
    assert absent == [9, 10, 11, 16, 17, 20, 21, 22, 23]  # no peephole, projection, layer norm
    hidden, cell = g.tensors[op.inputs[18]], g.tensors[op.inputs[19]]
    assert hidden.is_variable and cell.is_variable and not hidden.is_constant
    assert hidden.dtype == np.int8 and cell.dtype == np.int16 and hidden.shape == cell.shape == (1, 16)
    assert len(op.intermediates) == 5
    assert g.tensors[op.intermediates[4]].zero_point[0] == hidden.zero_point[0]
    assert op.options["fused_activation_function"] == "TANH" and not op.options["time_major"]


# ---- bit-exactness -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CONFIGS))
def test_lstm_is_bit_exact_with_both_references(lstm_models, name, tmp_path):
    report = verify(lstm_models[name], samples=16, target="host", workdir=tmp_path, seed=5)
    for ref in REFS:
        assert report.check(ref).mismatched_bytes == 0, ref
    units, features, steps = CONFIGS[name][:3]
    g, op = _lstm_op(lstm_models[name])
    lowered = LOWERINGS[op.kind](g, op, "op0")
    assert lowered.macs == steps * 4 * (features + units) * units  # 4 gates x (input + recurrent) x units
    assert lowered.scratch_bytes == 4 * units * 2  # the four gates' int16 values


def test_small_cell_scale_takes_litert_s_no_tanh_path(lstm_models):
    """Below 2^-15 LiteRT's int16 tanh has no case for the cell state: the two references part ways."""
    tflite = lstm_models["u8_f3_t20_seq_small_cell"]
    g, op = _lstm_op(tflite)
    assert g.tensors[op.inputs[19]].scale[0] < 2.0**-15
    x = np.random.default_rng(2).integers(-128, 128, size=(8, 20, 3)).astype(np.int8)
    litert = reference.run(tflite, x, "litert")[0].astype(int)
    tflm = reference.run(tflite, x, "tflm")[0].astype(int)
    assert np.abs(litert - tflm).max() > 2  # not a last-bit difference


def test_gesture_lstm_on_real_windows(gesture_lstm, gesture_data, tmp_path):
    _, _, x_test, _, _ = gesture_data
    (inp,), _ = reference.io_details(gesture_lstm)
    windows = quantize(x_test[:12], inp.scale, inp.zero_point)
    report = verify(gesture_lstm, inputs=windows, target="host", workdir=tmp_path)
    assert report.check("litert").mismatched_bytes == 0
    assert report.check("tflm").mismatched_bytes == 0


def test_gesture_lstm_on_cortex_m4(gesture_lstm, tmp_path):
    report = verify(gesture_lstm, samples=10, target="cortex-m4", workdir=tmp_path, seed=1)
    for ref in REFS:
        assert report.check(ref).mismatched_bytes == 0, ref
    assert report.metrics["arena_bytes"] <= reference.tflm_arena_bytes(gesture_lstm)
    cm = generate_c(gesture_lstm, tmp_path / "c", name="gesture_lstm")
    assert cm.arena_bytes == cm.arena_lower_bound  # LSTM (with its scratch) -> FC -> SOFTMAX: a chain
    assert report.metrics["macs"] == 119 * 4 * (6 + 16) * 16 + 16 * 4
    assert report.metrics["instructions"] > report.metrics["macs"]


def test_gesture_lstm_is_clean_under_sanitizers(gesture_lstm, tmp_path):
    cm = generate_c(gesture_lstm, tmp_path / "c", name="gesture_lstm")
    inputs = random_inputs(cm, 12, seed=4)
    for ref in REFS:
        want = reference.run(gesture_lstm, inputs.reshape(12, 119, 6), ref)[0].reshape(12, -1)
        exe = build_host(cm, ref, tmp_path / f"build_{ref}", sanitize=True)
        got = run_host(exe, inputs, cm.output.size, tmp_path / f"run_{ref}")
        assert np.array_equal(got, want), ref


# ---- state between samples ------------------------------------------------------------------


def test_every_window_starts_from_a_zero_state(lstm_models):
    """Both references would carry the LSTM state from one invoke to the next; reference.run resets it."""
    tflite = lstm_models["u8_f6_t20_last"]
    rng = np.random.default_rng(9)
    a, b = (rng.integers(-128, 128, size=(1, 20, 6)).astype(np.int8) for _ in range(2))
    for ref in REFS:
        out = reference.run(tflite, np.concatenate([a, b, a, a]), ref)[0]
        alone = reference.run(tflite, b, ref)[0]
        assert np.array_equal(out[0], out[2]) and np.array_equal(out[2], out[3]), ref
        assert np.array_equal(out[1], alone[0]), ref


# ---- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "slots, words",
    [
        ({9: 12, 10: 13, 11: 15}, "peephole"),
        ({16: 1}, "projection"),
        ({20: 12, 21: 13, 22: 14, 23: 15}, "layer normalization"),
        ({1: None, 5: None, 12: None}, "CIFG"),
    ],
)
def test_lstm_variants_are_refused_by_name(lstm_models, slots, words):
    g, op = _lstm_op(lstm_models["u4_f3_t5_seq"])
    inputs = list(op.inputs)
    for k, src in slots.items():
        inputs[k] = -1 if src is None else op.inputs[src]
    bad = dataclasses.replace(op, inputs=tuple(inputs))
    with pytest.raises(UnsupportedModelError, match=words):
        LOWERINGS["UNIDIRECTIONAL_SEQUENCE_LSTM"](g, bad, "op0")
