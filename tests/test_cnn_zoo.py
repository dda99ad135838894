"""labkit.course.cnn_zoo: AlexNet and SqueezeNet as their papers count them, MobileNet blocks, int8 weight bytes."""

from __future__ import annotations

import pytest

from labkit.course import cnn_zoo
from labkit.errors import LabkitError
from labkit.keras import keras


def test_alexnet_and_squeezenet_have_the_published_parameter_counts():
    # single-tower AlexNet: 62,378,344 (the figure every framework's AlexNet reports); SqueezeNet 1.1: 1,235,496
    assert cnn_zoo.alexnet().count_params() == 62_378_344
    assert cnn_zoo.squeezenet().count_params() == 1_235_496
    keras.backend.clear_session()


def test_mobilenet_blocks_counted_by_hand():
    v1 = cnn_zoo.mobilenet_v1_block((14, 14, 64), 64)
    assert v1.count_params() == 9 * 64 + 4 * 64 + 64 * 64 + 4 * 64  # depthwise, BN, pointwise, BN
    v2 = cnn_zoo.mobilenet_v2_block((28, 28, 32), 32, expansion=6)
    assert v2.count_params() == 32 * 192 + 4 * 192 + 9 * 192 + 4 * 192 + 192 * 32 + 4 * 32
    assert any(type(layer).__name__ == "Add" for layer in v2.layers)  # same shape in and out: residual
    narrower = cnn_zoo.mobilenet_v2_block((28, 28, 32), 24)
    assert not any(type(layer).__name__ == "Add" for layer in narrower.layers)
    # the projection is linear: no ReLU after the last batch normalisation
    after_project = [la for la in v2.layers if la.name == "project_bn"][0]
    assert all(type(la).__name__ != "ReLU" for la in v2.layers[v2.layers.index(after_project):])
    with pytest.raises(LabkitError):
        cnn_zoo.mobilenet_v2_block((8, 8, 4), 4, expansion=0)


def test_int8_weight_bytes_by_hand():
    i = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(4, 3, use_bias=False)(i)          # 36 weights, a folded bias of 4 int32
    x = keras.layers.BatchNormalization()(x)                  # folded: nothing
    x = keras.layers.MaxPooling2D()(x)                        # no weights
    x = keras.layers.Flatten()(x)                             # 2 x 2 x 4 = 16 values
    out = keras.layers.Dense(3)(x)                            # 48 weights, 3 int32 biases
    model = keras.Model(i, out)
    assert cnn_zoo.int8_weight_bytes(model) == 36 + 4 * 4 + 48 + 3 * 4


def test_int8_weight_bytes_refuses_layers_it_cannot_count():
    model = keras.Sequential([keras.Input((5, 3)), keras.layers.LSTM(4)])
    with pytest.raises(LabkitError, match="LSTM"):
        cnn_zoo.int8_weight_bytes(model)
