"""Full-int8 conversion, the float<->int8 helpers, and evaluation through the reference interpreter."""

import numpy as np
import pytest

from labkit import reference
from labkit.compress.quantize import dequantize, evaluate_tflite, quantize, to_int8_tflite
from labkit.errors import LabkitError
from labkit.models import mlp, with_batch_size


def test_int8_model_has_int8_io_and_batch_one(gesture_tflite):
    (inp,), (out,) = reference.io_details(gesture_tflite)
    assert inp.dtype == np.int8 and out.dtype == np.int8
    assert inp.shape == (1, 119, 6) and out.shape == (1, 4)


def test_int8_accuracy_close_to_float(gesture_model, gesture_tflite, gesture_data):
    from labkit.train import accuracy

    _, _, x_test, y_test, _ = gesture_data
    float_acc = accuracy(gesture_model, x_test, y_test)
    int8_acc = evaluate_tflite(gesture_tflite, x_test, y_test)
    assert float_acc >= 0.85
    assert int8_acc >= float_acc - 0.03


def test_litert_and_tflm_agree_on_predictions(gesture_tflite, gesture_data):
    _, _, x_test, y_test, _ = gesture_data
    a = evaluate_tflite(gesture_tflite, x_test, y_test, interpreter="litert")
    b = evaluate_tflite(gesture_tflite, x_test, y_test, interpreter="tflm")
    assert abs(a - b) <= 1 / len(y_test) * 2  # they differ at most in the last bit of a few scores


def test_quantize_rounds_half_away_from_zero_like_c():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 0.49, 300.0, -300.0], np.float32)
    assert quantize(x, 1.0, 0).tolist() == [1, 2, 3, -1, -2, 0, 127, -128]
    assert quantize(np.array([0.0]), 0.5, -3).tolist() == [-3]
    q = np.arange(-128, 128, dtype=np.int8)
    assert np.array_equal(quantize(dequantize(q, 0.05, 7), 0.05, 7), q)


def test_representative_data_of_the_wrong_shape_is_refused(gesture_model):
    with pytest.raises(LabkitError, match=r"shape \(N, 119, 6\)"):
        to_int8_tflite(gesture_model, np.zeros((10, 6, 119), np.float32))


def test_representative_data_must_be_finite_floats(gesture_model):
    with pytest.raises(LabkitError, match="finite float"):
        to_int8_tflite(gesture_model, np.zeros((10, 119, 6), np.int8))
    bad = np.zeros((10, 119, 6), np.float32)
    bad[3, 4, 5] = np.nan
    with pytest.raises(LabkitError, match="finite float"):
        to_int8_tflite(gesture_model, bad)


def test_reference_run_checks_input_dtype(gesture_tflite):
    with pytest.raises(LabkitError, match="dtype int8"):
        reference.run(gesture_tflite, np.zeros((2, 119, 6), np.float32))


def test_with_batch_size_keeps_the_weights():
    m = mlp((5,), 3, hidden=(4,))
    fixed = with_batch_size(m, 1)
    assert fixed.input_shape == (1, 5)
    x = np.random.default_rng(0).normal(size=(1, 5)).astype("float32")
    assert np.allclose(m.predict(x, verbose=0), fixed.predict(x, verbose=0))


def test_tflm_arena_is_reported(gesture_tflite):
    n = reference.tflm_arena_bytes(gesture_tflite)
    assert 714 < n < 64 * 1024
