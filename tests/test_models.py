"""Model builders: shapes, parameter counts worked out by hand, and what they convert to."""

import numpy as np
import pytest

from labkit import models
from labkit.compress.quantize import to_int8_tflite
from labkit.deploy.tflite_reader import read_tflite


def test_mlp_parameters():
    m = models.mlp((119, 6), 4, hidden=(32, 16))
    assert m.count_params() == (714 * 32 + 32) + (32 * 16 + 16) + (16 * 4 + 4)
    assert m.output_shape == (None, 4)


def test_cnn_parameters_count_the_input_channels():
    m = models.cnn((32, 32, 3), 10, filters=(16, 32), dense=128)
    # conv: k*k*in*out + out; the first sees 3 channels, the second 16
    conv1, conv2 = 3 * 3 * 3 * 16 + 16, 3 * 3 * 16 * 32 + 32
    flatten = 8 * 8 * 32
    assert m.count_params() == conv1 + conv2 + (flatten * 128 + 128) + (128 * 10 + 10)


@pytest.mark.parametrize("alpha", [0.25, 0.5, 1.0])
def test_ds_cnn_width_multiplier_scales_the_model(alpha):
    small = models.ds_cnn((16, 16, 1), 4, alpha=alpha)
    full = models.ds_cnn((16, 16, 1), 4, alpha=1.0)
    assert small.output_shape == (None, 4)
    assert small.count_params() <= full.count_params()
    pw = [l for l in small.layers if l.name.startswith("pw_") and l.name.count("_") == 1]
    assert pw[-1].filters == max(4, round(64 * alpha))


def test_ds_cnn_rejects_a_bad_alpha():
    with pytest.raises(ValueError, match="alpha"):
        models.ds_cnn((16, 16, 1), 4, alpha=0)


def test_cnn1d_and_lstm_convert_to_microcontroller_ops():
    x = np.random.default_rng(0).normal(size=(30, 40, 6)).astype("float32")
    ops = {op.kind for op in read_tflite(to_int8_tflite(models.cnn1d((40, 6), 3), x)).ops}
    assert {"CONV_2D", "MAX_POOL_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"} <= ops
    lstm_ops = [op.kind for op in read_tflite(to_int8_tflite(models.lstm_classifier((40, 6), 3, units=8), x)).ops]
    assert lstm_ops.count("UNIDIRECTIONAL_SEQUENCE_LSTM") == 1
    assert "WHILE" not in lstm_ops
