"""Quantization beyond full-int8 PTQ: dynamic range, float16, QAT, the per-layer error report, device measures.

The fixed small problem: scikit-learn's 8x8 digits (1,437 training, 360 test images), a small CNN
trained 10 epochs with seed 0. Stated margin: every int8 model (PTQ and QAT) within 2 points
(0.02) of the float model's test accuracy, i.e. at most 7 of the 360 test images differ.
"""

import shutil

import numpy as np
import pytest

import labkit  # noqa: F401  (tf_keras before TensorFlow)
from labkit import reference
from labkit.compress import qat, report
from labkit.compress.quantize import (evaluate_tflite, tflite_kind, to_dynamic_range_tflite, to_float16_tflite,
                                      to_float_tflite, to_int8_tflite)
from labkit.errors import LabkitError

MARGIN = 0.02


@pytest.fixture(scope="module")
def digits():
    from labkit.datasets import load_digits

    train, test = load_digits().split(test_size=0.2, seed=0)
    return (train.x.astype("float32")[..., None] / 255, train.y, test.x.astype("float32")[..., None] / 255, test.y)


@pytest.fixture(scope="module")
def float_model(digits):
    from labkit.models import cnn
    from labkit.train import fit_classifier, set_seed

    x, y, _, _ = digits
    set_seed(0)
    m = cnn((8, 8, 1), 10, filters=(8, 16), dense=32)
    fit_classifier(m, x, y, epochs=10, seed=0)
    return m


@pytest.fixture(scope="module")
def float_acc(float_model, digits):
    from labkit.train import accuracy

    return accuracy(float_model, digits[2], digits[3])


@pytest.fixture(scope="module")
def int8_model(float_model, digits):
    return to_int8_tflite(float_model, digits[0])


@pytest.fixture(scope="module")
def qat_model(float_model, digits):
    x, y, _, _ = digits
    m = qat.quantization_aware(float_model)
    qat.fine_tune_qat(m, x, y, epochs=2, seed=0)
    return m


def test_full_int8_has_int8_io_and_batch_one(int8_model):
    (inp,), (out,) = reference.io_details(int8_model)
    assert inp.dtype == np.int8 and out.dtype == np.int8
    assert inp.shape == (1, 8, 8, 1) and out.shape == (1, 10)
    assert tflite_kind(int8_model) == "int8"


def test_int8_accuracy_within_the_stated_margin_of_float(int8_model, float_acc, digits):
    assert float_acc > 0.85
    assert evaluate_tflite(int8_model, digits[2], digits[3]) >= float_acc - MARGIN


def test_other_conversions_kinds_sizes_and_accuracy(float_model, int8_model, float_acc, digits):
    f32, dyn, f16 = to_float_tflite(float_model), to_dynamic_range_tflite(float_model), to_float16_tflite(float_model)
    assert [tflite_kind(m) for m in (f32, dyn, f16)] == ["float32", "dynamic range", "float16"]
    for m in (f32, dyn, f16):  # float input and output, batch size 1
        (inp,), (out,) = reference.io_details(m)
        assert inp.dtype == np.float32 and out.dtype == np.float32 and inp.shape[0] == 1
    assert len(int8_model) < len(f16) < len(f32) and len(dyn) < len(f16)
    assert len(int8_model) < 0.6 * len(f32)  # a tiny model: the graph is a good part of the file
    assert evaluate_tflite(f32, digits[2], digits[3]) == pytest.approx(float_acc, abs=1 / len(digits[3]))
    for m in (dyn, f16):
        assert evaluate_tflite(m, digits[2], digits[3]) >= float_acc - MARGIN


def test_qat_model_converts_to_int8_within_the_margin(qat_model, float_acc, digits):
    assert any(type(l).__name__ == "QuantizeWrapperV2" for l in qat_model.layers)
    tfl = qat.qat_to_int8_tflite(qat_model, digits[0])
    (inp,), (out,) = reference.io_details(tfl)
    assert inp.dtype == np.int8 and out.dtype == np.int8 and inp.shape == (1, 8, 8, 1)
    assert tflite_kind(tfl) == "int8"
    assert evaluate_tflite(tfl, digits[2], digits[3]) >= float_acc - MARGIN


def test_qat_trains_with_the_right_loss(float_model, digits):
    """The QAT model ends in a wrapped softmax: the loss must still get probabilities, not logits."""
    from labkit.train import ends_in_softmax

    m = qat.quantization_aware(float_model)
    assert ends_in_softmax(m) and ends_in_softmax(float_model)
    qat.fine_tune_qat(m, digits[0][:64], digits[1][:64], epochs=1)
    assert m.loss.get_config()["from_logits"] is False


def test_qat_refuses_a_nested_model(float_model):
    from labkit.models import with_batch_size

    with pytest.raises(qat.QATError, match="nested model") as e:
        qat.quantization_aware(with_batch_size(float_model, 1))
    assert isinstance(e.value, LabkitError)


@pytest.mark.parametrize("bad, match", [
    (np.zeros((10, 8, 8), np.float32), r"shape \(N, 8, 8, 1\)"),
    (np.zeros((10, 8, 8, 1), np.uint8), "finite float"),
    (np.full((10, 8, 8, 1), np.inf, np.float32), "finite float"),
])
def test_representative_data_of_the_wrong_shape_or_dtype_is_refused(float_model, qat_model, bad, match):
    with pytest.raises(LabkitError, match=match):
        to_int8_tflite(float_model, bad)
    with pytest.raises(LabkitError, match=match):
        qat.qat_to_int8_tflite(qat_model, bad)


def test_round_weights_to_fewer_bits(float_model):
    """PTQ at 3 bits: every convolution channel, and each dense layer as a whole, on 7 levels -3..3 of
    max |w| / 3; the largest weight kept exactly, every other within half a step; biases untouched."""
    r = qat.round_weights(float_model, bits=3)
    assert r is not float_model
    for layer in float_model.layers:
        if not layer.weights:
            continue
        (w, b), (wr, br) = layer.get_weights(), r.get_layer(layer.name).get_weights()
        np.testing.assert_array_equal(b, br)
        groups = ([(w[..., c], wr[..., c]) for c in range(w.shape[-1])] if layer.name.startswith("conv")
                  else [(w, wr)])
        for orig, rounded in groups:
            step = np.abs(orig).max() / 3
            codes = rounded / step
            np.testing.assert_allclose(codes, np.round(codes), atol=1e-4)
            assert np.abs(np.round(codes)).max() == 3 and len(np.unique(np.round(codes))) <= 7
            assert np.abs(orig - rounded).max() <= step / 2 * (1 + 1e-5)
    assert not np.array_equal(float_model.get_layer("dense").get_weights()[0], r.get_layer("dense").get_weights()[0])


def test_qat_with_4_bit_weights_converts_to_int8_holding_4_bit_codes(float_model, digits):
    x, y, xt, yt = digits
    m = qat.quantization_aware(float_model, weight_bits=4)
    qat.fine_tune_qat(m, x, y, epochs=1, seed=0)
    tfl = qat.qat_to_int8_tflite(m, x)
    assert tflite_kind(tfl) == "int8"
    for op, n in (("CONV_2D", 2), ("FULLY_CONNECTED", 2)):
        for k in range(n):
            codes = report.int8_op_io(tfl, xt[0], op, occurrence=k)["weights"].values
            assert codes.dtype == np.int8 and np.abs(codes.astype(int)).max() <= 7, (op, k)
    assert evaluate_tflite(tfl, xt, yt) > 0.5  # it still classifies (chance: 0.1)


@pytest.mark.parametrize("bits", [1, 9, 4.0, True, "4"])
def test_weight_bits_out_of_range_are_refused(float_model, bits):
    with pytest.raises(qat.QATError, match="weight_bits must be a whole number of bits from 2 to 8"):
        qat.quantization_aware(float_model, weight_bits=bits)
    with pytest.raises(qat.QATError, match="from 2 to 8"):
        qat.round_weights(float_model, bits=bits)


def test_fewer_bits_refuse_layers_they_do_not_cover():
    from labkit.models import ds_cnn

    m = ds_cnn((8, 8, 1), 10, alpha=0.25, filters=(4, 8))
    for call in (lambda: qat.quantization_aware(m, weight_bits=4), lambda: qat.round_weights(m, bits=4)):
        with pytest.raises(qat.QATError, match=r"Dense, Conv1D and Conv2D layers only.*stem_bn.*dw_1") as e:
            call()
        assert isinstance(e.value, LabkitError)


def test_snr_helpers():
    x = np.array([3.0, -4.0])
    assert report.snr_db(x, x) == float("inf")
    assert report.snr_db(x, x * 0.9) == pytest.approx(20.0)  # error 10 % of the signal: 20 dB
    w = np.random.default_rng(0).normal(size=(64, 16))
    assert 35 < report.weight_snr_db(w) < 50  # about 6 dB per bit


def test_error_report_rows_and_values(float_model, int8_model, digits):
    rep = report.quantization_error_report(float_model, int8_model, digits[0], samples=50)
    assert rep["layer"].tolist() == ["conv_1", "pool_1", "conv_2", "pool_2", "flatten", "dense", "logits",
                                     "probabilities"]
    assert rep["op"].tolist()[:2] == ["CONV_2D", "MAX_POOL_2D"] and rep["op"].iloc[-1] == "SOFTMAX"
    assert (rep["output SNR (dB)"] > 25).all()
    assert (rep["error (steps)"] < 2).all()
    assert rep["weight SNR (dB)"].notna().sum() == 4  # the four layers with kernels
    assert rep.set_index("layer").loc["dense", "output shape"] == "32"


def test_error_report_points_at_a_calibration_bug(float_model, digits):
    """Calibrated on 0..255 pixels while the model sees 0..1: the SNR collapses at the first layer."""
    buggy = to_int8_tflite(float_model, digits[0] * 255)
    rep = report.quantization_error_report(float_model, buggy, digits[0], samples=50).set_index("layer")
    assert rep.loc["conv_1", "output SNR (dB)"] < 15


def test_error_report_refuses_other_inputs(float_model, int8_model, digits):
    with pytest.raises(LabkitError, match="shape"):
        report.quantization_error_report(float_model, int8_model, digits[0][..., 0])
    with pytest.raises(LabkitError, match="full-int8"):
        report.quantization_error_report(float_model, to_float_tflite(float_model), digits[0])


def test_int8_dense_layer_by_hand_is_bit_exact(int8_model, digits):
    """What lesson 08's exercise computes: int32 accumulation and requantization of the classifier."""
    for k in range(5):
        io = report.int8_op_io(int8_model, digits[2][k], "FULLY_CONNECTED", occurrence=-1)
        x, w, b, out = io["input"], io["weights"], io["bias"], io["output"]
        acc = (x.values.astype(np.int32) - x.zero_point) @ w.values.astype(np.int32).T + b.values
        y = np.clip(np.round(acc * (x.scale * w.scale / out.scale)) + out.zero_point, -128, 127)
        assert np.abs(y - out.values).max() <= 1
    with pytest.raises(LabkitError, match="no LSTM op"):
        report.int8_op_io(int8_model, digits[2][0], "LSTM")


def test_measure_model_on_the_devices_terms(float_model, digits):
    from labkit.compress.prune import prune_magnitude
    from labkit.measure import measure_model

    device = shutil.which("arm-none-eabi-gcc") is not None and shutil.which("qemu-system-arm") is not None
    dense = measure_model(float_model, digits[0], device=device, samples=3)
    sparse = measure_model(prune_magnitude(float_model, 0.8), digits[0], device=device, samples=3)
    assert set(dense) == {"params", "nonzero_params", "macs", "tflite_bytes", "gzip_bytes", "flash_bytes",
                          "ram_bytes", "instructions"}
    assert dense["params"] == float_model.count_params()
    assert 0.99 * dense["params"] <= dense["nonzero_params"] <= dense["params"]  # a few biases may stay 0
    assert sparse["nonzero_params"] < 0.35 * sparse["params"]
    assert sparse["macs"] == dense["macs"] and sparse["tflite_bytes"] == dense["tflite_bytes"]
    assert sparse["gzip_bytes"] < dense["gzip_bytes"]
    if not device:
        assert dense["flash_bytes"] is None
        pytest.skip("ARM cross-compiler or QEMU missing: flash, RAM and instructions not measured")
    assert sparse["flash_bytes"] == dense["flash_bytes"] and sparse["ram_bytes"] == dense["ram_bytes"]
    assert dense["instructions"] > dense["macs"]
    with pytest.raises(LabkitError, match="representative_x"):
        measure_model(float_model)

