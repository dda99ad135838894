"""The emulated Cortex-M4 rung: the same C, cross-compiled and run in QEMU, bit for bit.

In CI the ARM compiler and QEMU are installed by `make test`; a missing tool fails here.
"""

import numpy as np
import pytest

from labkit import cli
from labkit.deploy.codegen import generate_c
from labkit.errors import LabkitError
from labkit.verify import build_cortex_m4, random_inputs, run_cortex_m4, verify
from tflite_edit import reshape_as_squeeze


def test_cortex_m4_is_bit_exact_with_both_references(gesture_tflite, tmp_path):
    report = verify(gesture_tflite, samples=100, target="cortex-m4", workdir=tmp_path)
    assert report.check("litert").mismatched_bytes == 0
    assert report.check("tflm").mismatched_bytes == 0
    m = report.metrics
    assert m["flash_bytes"] > m["arena_bytes"] > 0
    assert m["ram_bytes"] >= m["arena_bytes"]
    assert m["instructions_min"] <= m["instructions"] <= m["instructions_max"]
    # every MAC needs at least a load, a multiply-accumulate and loop overhead in plain C
    assert 2 < m["instructions_per_mac"] < 30


def test_instruction_counts_are_repeatable(gesture_tflite, tmp_path):
    cm = generate_c(gesture_tflite, tmp_path / "c", name="gesture")
    elf, _ = build_cortex_m4(cm, "litert", tmp_path / "b")
    inputs = random_inputs(cm, 5, seed=11)
    out1, c1 = run_cortex_m4(elf, inputs, cm.output.size, tmp_path / "r1")
    out2, c2 = run_cortex_m4(elf, inputs, cm.output.size, tmp_path / "r2")
    assert c1 == c2 and np.array_equal(out1, out2)


def test_instruction_count_grows_with_the_work(tmp_path):
    """Twice the MACs in the big layer: clearly more instructions (the counter measures the model, not noise)."""
    from labkit.compress.quantize import to_int8_tflite
    from labkit.keras import keras

    x = np.random.default_rng(0).normal(size=(64, 64)).astype("float32")
    counts = []
    for units in (32, 64):
        inp = keras.Input((64,))
        model = keras.Model(inp, keras.layers.Dense(4)(keras.layers.Dense(units, activation="relu")(inp)))
        tfl = to_int8_tflite(model, x)
        counts.append(verify(tfl, samples=3, target="cortex-m4", workdir=tmp_path / str(units),
                             references=("litert",)).metrics["instructions"])
    assert 1.6 < counts[1] / counts[0] < 2.2


def test_model_too_large_for_the_board_fails_with_the_sizes(tmp_path):
    from labkit.compress.quantize import to_int8_tflite
    from labkit.keras import keras

    inp = keras.Input((1200,))
    model = keras.Model(inp, keras.layers.Dense(1000)(inp))  # 1.2 MB of int8 weights > 1 MB flash
    tfl = to_int8_tflite(model, np.random.default_rng(0).normal(size=(20, 1200)).astype("float32"), samples=20)
    with pytest.raises(LabkitError) as e:
        verify(tfl, samples=2, target="cortex-m4", workdir=tmp_path, references=("litert",))
    msg = str(e.value)
    assert "does not fit" in msg and "1 MB flash" in msg and "FLASH" in msg and "overflowed" in msg


def test_model_whose_arena_is_too_large_for_the_ram_fails_with_the_sizes(tmp_path):
    from labkit.compress.quantize import to_int8_tflite
    from labkit.keras import keras

    inp = keras.Input((200, 200, 4))  # 160,000 int8 inputs and as many outputs: 320 KB of arena > 256 KB RAM
    model = keras.Model(inp, keras.layers.DepthwiseConv2D(1)(inp))  # a few bytes of weights
    tfl = to_int8_tflite(model, np.random.default_rng(0).normal(size=(4, 200, 200, 4)).astype("float32"), samples=4)
    with pytest.raises(LabkitError) as e:
        verify(tfl, samples=1, target="cortex-m4", workdir=tmp_path, references=("litert",))
    msg = str(e.value)
    assert "does not fit" in msg and "256 KB RAM" in msg and "RAM" in msg and "overflowed" in msg
    # the two tensors and the depthwise kernel's 64-byte scratch: tap offsets 8, weights 8, 4 channels'
    # requantization constants 48 (LK_DEPTHWISE_SCRATCH_BYTES)
    assert "320064-byte arena" in msg


def test_cli_verify_all_targets(gesture_tflite, tmp_path, capsys):
    path = tmp_path / "g.tflite"
    path.write_bytes(gesture_tflite)
    assert cli.main(["verify", str(path), "--target", "all", "--samples", "20"]) == 0
    out = capsys.readouterr().out
    lines = {l.split()[0]: l.split()[1:] for l in out.splitlines() if l.strip()}
    assert lines["target"] == ["host", "cortex-m4"]
    assert lines["bit_exact"] == ["true", "true"]
    assert lines["instructions"][0] == "-" and int(lines["instructions"][1]) > 0


def test_missing_emulator_says_how_to_install(gesture_tflite, tmp_path, monkeypatch):
    import shutil

    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda t: None if t == "qemu-system-arm" else real_which(t))
    with pytest.raises(LabkitError, match="qemu-system-arm was not found.*apt-get install"):
        verify(gesture_tflite, samples=2, target="cortex-m4", workdir=tmp_path)


def test_cli_verify_with_a_dataset(gesture_tflite, gesture_data, tmp_path, capsys):
    path = tmp_path / "g.tflite"
    path.write_bytes(gesture_tflite)
    np.savez(tmp_path / "test.npz", x=gesture_data[2][:30])
    assert cli.main(["verify", str(path), "--data", str(tmp_path / "test.npz"), "--json"]) == 0
    import json

    report = json.loads(capsys.readouterr().out)
    assert report["samples"] == 30 and report["bit_exact"] is True


def test_cli_verify_with_a_bad_dataset(gesture_tflite, tmp_path, capsys):
    path = tmp_path / "g.tflite"
    path.write_bytes(gesture_tflite)
    np.savez(tmp_path / "bad.npz", images=np.zeros((3, 119, 6), np.float32))
    assert cli.main(["verify", str(path), "--data", str(tmp_path / "bad.npz")]) == 2
    assert "expected one named 'x'" in capsys.readouterr().err
    np.save(tmp_path / "wrong.npy", np.zeros((3, 6, 119), np.float32))
    assert cli.main(["verify", str(path), "--data", str(tmp_path / "wrong.npy")]) == 2
    assert "the model takes (119, 6)" in capsys.readouterr().err


def test_verify_a_generated_folder_checks_its_c_as_it_is(gesture_tflite, tmp_path):
    out = tmp_path / "gen"
    generate_c(gesture_tflite, out, name="gesture")
    assert verify(out, samples=30, workdir=tmp_path / "w1").bit_exact
    # a hand edit in the shipped C is caught: the folder is not regenerated
    src = (out / "gesture.c").read_text().replace(".act_min = -128,", ".act_min = -100,", 1)
    (out / "gesture.c").write_text(src)
    report = verify(out, samples=30, workdir=tmp_path / "w2")
    assert not report.bit_exact


def test_a_folder_without_a_generated_model_is_refused(tmp_path):
    with pytest.raises(LabkitError, match="does not hold one labkit-generated model"):
        verify(tmp_path, samples=2)


def test_residual_and_concatenation_model_on_both_targets(tmp_path):
    """A small CNN with a residual ADD and a CONCATENATION, bit-exact on host and Cortex-M4."""
    from labkit.compress.quantize import to_int8_tflite
    from labkit.keras import keras
    from labkit.reference import tflm_arena_bytes

    keras.utils.set_random_seed(3)
    inp = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    r = keras.layers.Conv2D(8, 3, padding="same")(x)
    x = keras.layers.ReLU()(keras.layers.Add()([x, r]))
    b1 = keras.layers.Conv2D(4, 1, activation="relu")(x)
    b2 = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = keras.layers.Concatenate()([b1, b2])
    x = keras.layers.MaxPooling2D()(x)
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    tfl = to_int8_tflite(keras.Model(inp, out), np.random.default_rng(3).normal(size=(40, 12, 12, 3)).astype("float32"))
    for target in ("host", "cortex-m4"):
        report = verify(tfl, samples=10, target=target, workdir=tmp_path / target)
        assert report.check("tflm").mismatched_bytes == 0 and report.check("litert").mismatched_bytes == 0, target
    assert report.metrics["arena_bytes"] <= tflm_arena_bytes(tfl)


# LSTM, ADD and RESHAPE are in test_ops_lstm, the residual model above, and the gesture MLP
EVERY_OP_MODEL_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D", "AVERAGE_POOL_2D", "MEAN",
                      "SQUEEZE", "SOFTMAX", "LOGISTIC", "TANH", "RELU", "RELU6", "MUL", "CONCATENATION", "PAD",
                      "STRIDED_SLICE", "QUANTIZE", "DEQUANTIZE"}


@pytest.fixture(scope="module")
def every_op_model():
    """One float-in, float-out int8 model holding every listed op but LSTM, ADD and RESHAPE."""
    from labkit.compress.quantize import to_int8_tflite
    from labkit.deploy.tflite_reader import read_tflite
    from labkit.keras import keras

    keras.utils.set_random_seed(4)
    inp = keras.Input((10, 10, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu6")(inp)
    x = keras.layers.Concatenate()([keras.layers.MaxPooling2D(2)(x), keras.layers.AveragePooling2D(2)(x)])
    x = keras.layers.Lambda(lambda t: t[:, 1:5, :, ::2])(x)  # STRIDED_SLICE
    x = keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2)(x)
    x = keras.layers.Multiply()([x, keras.layers.Activation("sigmoid")(x)])
    x = keras.layers.ZeroPadding2D(((1, 0), (0, 2)))(keras.layers.Activation("tanh")(x))
    x = keras.layers.ReLU()(x)  # after a PAD: a RELU op of its own
    g = keras.layers.ReLU(max_value=6.0)(keras.layers.GlobalAveragePooling2D(keepdims=True)(x))  # MEAN, RELU6
    g = keras.layers.Dense(5, activation="softmax")(g)  # on (1, 1, 16): FULLY_CONNECTED keeps the axes
    out = keras.layers.Reshape((5,))(g)  # a RESHAPE that drops size-1 axes: rewritten as a SQUEEZE
    x_cal = np.random.default_rng(4).normal(size=(40, 10, 10, 3)).astype("float32")
    tfl = reshape_as_squeeze(to_int8_tflite(keras.Model(inp, out), x_cal, float_io=True))
    kinds = {op.kind for op in read_tflite(tfl).ops}
    assert EVERY_OP_MODEL_OPS <= kinds, f"the model lacks {sorted(EVERY_OP_MODEL_OPS - kinds)}"
    return tfl


def test_every_listed_op_is_bit_exact_on_the_cortex_m4(every_op_model, tmp_path):
    """Together with the LSTM, depthwise-separable and residual models above and in test_ops_*, every
    op labkit-nn lists runs bit for bit on the emulated Cortex-M4 - not only on the host."""
    report = verify(every_op_model, samples=20, target="cortex-m4", workdir=tmp_path)
    assert report.check("tflm").mismatched_bytes == 0 and report.check("litert").mismatched_bytes == 0
    assert report.metrics["arena_bytes"] <= report.metrics["tflm_arena_bytes"]


def test_every_listed_op_is_bit_exact_and_clean_under_sanitizers_on_the_host(every_op_model, tmp_path):
    """The same kernels built with AddressSanitizer and UBSan: no out-of-bounds access, no overflow."""
    report = verify(every_op_model, samples=20, target="host", workdir=tmp_path, sanitize=True)
    assert report.check("tflm").mismatched_bytes == 0 and report.check("litert").mismatched_bytes == 0
    assert report.metrics["arena_bytes"] <= report.metrics["tflm_arena_bytes"]
