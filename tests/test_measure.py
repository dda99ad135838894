"""MAC and parameter counts, checked against counts worked out by hand and against labkit-nn's own."""

import numpy as np

from labkit import models
from labkit.compress.quantize import to_int8_tflite
from labkit.deploy.codegen import generate_c
from labkit.keras import keras
from labkit.measure import count_macs, layer_table


def test_hand_counts():
    inp = keras.Input((10, 10, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(inp)          # 10*10*8 * 3*3*3
    x = keras.layers.DepthwiseConv2D(3, padding="valid")(x)     # 8*8*8 * 3*3
    x = keras.layers.SeparableConv2D(4, 3)(x)                   # 6*6*8*9 + 6*6*8*4
    x = keras.layers.Dense(5)(keras.layers.Flatten()(x))        # 144 * 5
    m = keras.Model(inp, x)
    assert count_macs(m) == 10 * 10 * 8 * 27 + 8 * 8 * 8 * 9 + (6 * 6 * 8 * 9 + 6 * 6 * 8 * 4) + 144 * 5
    lstm = models.lstm_classifier((20, 6), 3, units=8)
    assert count_macs(lstm) == 20 * 4 * 8 * (6 + 8) + 8 * 3


def test_table_totals():
    m = models.cnn((32, 32, 3), 10, filters=(16, 32), dense=128)
    t = layer_table(m)
    assert t.iloc[-1]["layer"] == "total"
    assert t.iloc[-1]["params"] == m.count_params()
    conv1 = t[t["layer"] == "conv_1"].iloc[0]
    assert conv1["params"] == 3 * 3 * 3 * 16 + 16 and conv1["output shape"] == "32x32x16"
    assert conv1["MACs"] == 32 * 32 * 16 * 27


def test_keras_count_equals_the_generated_c_count(tmp_path):
    """The MACs labkit-nn counts in the int8 graph equal the ones counted from the Keras layers."""
    m = models.ds_cnn((16, 16, 3), 4, alpha=0.5)
    tfl = to_int8_tflite(m, np.random.default_rng(0).normal(size=(20, 16, 16, 3)).astype("float32"))
    c = generate_c(tfl, tmp_path)
    conv_like = sum(r["MACs"] for _, r in layer_table(m).iterrows() if r["layer"] != "total")
    # the C also counts pooling and the global average as one add per value read
    assert conv_like <= c.macs <= conv_like * 1.2


def test_variable_length_sequences_are_counted_per_time_step():
    """A model for sequences of any length (time axis None): the costs of one time step, and the
    unknown axis shown as '?', instead of shapes that silently lose an axis."""
    inp = keras.Input((None, 6))
    x = keras.layers.LSTM(8, return_sequences=True)(inp)
    m = keras.Model(inp, keras.layers.Dense(3)(x))
    assert count_macs(m) == 4 * 8 * (6 + 8) + 8 * 3
    t = layer_table(m)
    assert t[t["type"] == "LSTM"].iloc[0]["output shape"] == "?x8"
    seq5 = keras.Input((5, 6))
    m5 = keras.Model(seq5, keras.layers.Dense(3)(keras.layers.LSTM(8, return_sequences=True)(seq5)))
    assert count_macs(m5) == 5 * count_macs(m)
