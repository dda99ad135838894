"""The builders lessons 05 and 06 add: counts worked out by hand, and what they convert to."""

import numpy as np
import pytest

from labkit import models
from labkit.compress.quantize import to_int8_tflite
from labkit.deploy.tflite_reader import read_tflite
from labkit.keras import keras
from labkit.measure import count_macs


def test_cnn_kernel_size_five_is_the_slide_architecture():
    m = models.cnn((32, 32, 3), 10, filters=(16, 32), dense=128, kernel_size=5)
    assert m.get_layer("conv_1").count_params() == 5 * 5 * 3 * 16 + 16  # not the slide's 416
    assert m.get_layer("conv_2").count_params() == 5 * 5 * 16 * 32 + 32  # not 832
    assert m.get_layer("flatten").output_shape == (None, 2048)
    assert models.cnn((32, 32, 3), 10).get_layer("conv_1").kernel_size == (3, 3)  # default unchanged


def test_cnn_gap_has_a_tiny_head_and_takes_any_size():
    m = models.cnn_gap((28, 28, 1), 10, filters=(16, 32, 64))
    head = m.get_layer("logits").count_params()
    assert head == 64 * 10 + 10
    assert m.count_params() == (9 * 16 + 16) + (9 * 16 * 32 + 32) + (9 * 32 * 64 + 64) + head
    assert not [l for l in m.layers if isinstance(l, keras.layers.Flatten)]
    any_size = models.cnn_gap((None, None, 1), 10, filters=(16, 32, 64))
    any_size.set_weights(m.get_weights())
    assert any_size.predict(np.zeros((1, 40, 36, 1), "float32"), verbose=0).shape == (1, 10)


def test_inception_naive_and_reduced_counts():
    naive = models.inception_module(reduce=False)
    reduced = models.inception_module(reduce=True)
    assert naive.output_shape == (None, 28, 28, 64 + 128 + 32 + 192)
    assert reduced.output_shape == (None, 28, 28, 256)
    hw = 28 * 28
    assert count_macs(naive) == hw * (192 * 64 + 9 * 192 * 128 + 25 * 192 * 32)
    assert count_macs(reduced) == hw * (192 * 64 + 192 * 96 + 9 * 96 * 128 + 192 * 16 + 25 * 16 * 32 + 192 * 32)
    assert naive.count_params() == (192 * 64 + 64) + (9 * 192 * 128 + 128) + (25 * 192 * 32 + 32)


def test_transfer_head_freezes_the_base():
    base = models.cnn((12, 12, 1), 3, filters=(4, 8), dense=16)
    before = [w.copy() for w in base.get_weights()]
    head = models.transfer_head(base, 5, feature_layer="flatten")
    trainable = sum(int(np.prod(w.shape)) for w in head.trainable_weights)
    assert trainable == 3 * 3 * 8 * 5 + 5 and head.output_shape == (None, 5)
    x = np.random.default_rng(0).random((20, 12, 12, 1)).astype("float32")
    head.compile("adam", "sparse_categorical_crossentropy")
    head.fit(x, np.arange(20) % 5, epochs=2, verbose=0)
    for a, b in zip(before, base.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="no layer"):
        models.transfer_head(base, 5, feature_layer="nope")


def test_ds_cnn_bn_momentum_reaches_every_batch_norm():
    m = models.ds_cnn((16, 16, 1), 4, alpha=0.5, bn_momentum=0.9)
    bns = [l for l in m.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert bns and all(l.momentum == 0.9 for l in bns)
    assert all(l.momentum == 0.99 for l in models.ds_cnn((16, 16, 1), 4).layers
               if isinstance(l, keras.layers.BatchNormalization))


def test_gesture_lstm_converts_to_one_lstm_op():
    m = models.gesture_lstm((119, 6), 4, units=8, pool=4)
    assert m.get_layer("downsample").output_shape == (None, 29, 6)
    assert m.count_params() == 4 * (8 * (6 + 8) + 8) + (8 * 4 + 4)
    assert count_macs(m) == 29 * 4 * 8 * (6 + 8) + 8 * 4
    x = np.random.default_rng(0).normal(size=(30, 119, 6)).astype("float32") * 0.3
    ops = [op.kind for op in read_tflite(to_int8_tflite(m, x)).ops]
    assert ops.count("UNIDIRECTIONAL_SEQUENCE_LSTM") == 1
    assert "AVERAGE_POOL_2D" in ops and "WHILE" not in ops


def test_lstm_tagger_and_char_lstm_shapes():
    tagger = models.lstm_tagger((50, 6), 3, units=4)
    assert tagger.output_shape == (None, 50, 3)
    assert tagger.count_params() == models.lstm_classifier((50, 6), 3, units=4).count_params()
    char = models.char_lstm(40, units=16, embedding_dim=8)
    assert char.count_params() == 40 * 8 + 4 * (16 * (8 + 16) + 16) + (16 * 40 + 40)
    out = char.predict(np.zeros((2, 7), "int32"), verbose=0)
    assert out.shape == (2, 7, 40)
