"""labkit.course.conv: convolution and pooling by hand agree with Keras; the cost formulas with labkit.measure."""

import numpy as np
import pytest

from labkit.course import conv
from labkit.errors import LabkitError
from labkit.keras import keras
from labkit.measure import layer_table


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("k", [1, 3, 4])
def test_conv2d_matches_keras(rng, padding, stride, k):
    image = rng.normal(size=(9, 11, 3))
    layer = keras.layers.Conv2D(5, k, strides=stride, padding=padding)
    expected = layer(image[None].astype("float32")).numpy()[0]
    kernel, bias = layer.get_weights()
    got = conv.conv2d(image, kernel, bias, stride=stride, padding=padding)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_conv2d_two_dimensional_in_and_out():
    image = np.arange(16, dtype=float).reshape(4, 4)
    out = conv.conv2d(image, np.ones((2, 2)))
    assert out.shape == (3, 3)
    assert out[0, 0] == 0 + 1 + 4 + 5
    # the kernel is not flipped (cross-correlation, as in Conv2D)
    assert conv.conv2d(image, np.array([[1.0, 0.0], [0.0, 0.0]]))[1, 2] == image[1, 2]


def test_conv2d_rejects_mismatched_channels():
    with pytest.raises(LabkitError, match="channels"):
        conv.conv2d(np.zeros((5, 5, 2)), np.zeros((3, 3, 3, 4)))
    with pytest.raises(LabkitError, match="padding"):
        conv.conv2d(np.zeros((5, 5)), np.zeros((3, 3)), padding="full")


@pytest.mark.parametrize("mode,layer", [("max", keras.layers.MaxPooling2D), ("average", keras.layers.AveragePooling2D)])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("size,stride", [(2, None), (3, 2), (3, 1)])
def test_pool2d_matches_keras(rng, mode, layer, padding, size, stride):
    image = rng.normal(size=(7, 10, 2))
    expected = layer(size, strides=stride, padding=padding)(image[None].astype("float32")).numpy()[0]
    got = conv.pool2d(image, size, stride, padding, mode)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_output_size_and_same_padding():
    for n in range(3, 20):
        for k in (1, 2, 3, 5):
            for s in (1, 2, 3):
                for p in ("valid", "same"):
                    if p == "valid" and k > n:
                        continue
                    keras_n = keras.layers.Conv2D(1, k, strides=s, padding=p).compute_output_shape((None, n, n, 1))[1]
                    assert conv.output_size(n, k, s, p) == keras_n
    assert conv.same_padding(28, 3, 1) == (1, 1)
    assert conv.same_padding(28, 4, 1) == (1, 2)  # the odd zero goes after
    with pytest.raises(LabkitError, match="does not fit"):
        conv.output_size(3, 5)


def test_filters_detect_what_they_say():
    step = np.zeros((6, 6))
    step[:, 3:] = 1.0  # a vertical edge
    vertical = conv.conv2d(step, conv.FILTERS["vertical edges"])
    horizontal = conv.conv2d(step, conv.FILTERS["horizontal edges"])
    assert np.abs(vertical).max() > 0 and np.abs(horizontal).max() == 0
    np.testing.assert_allclose(conv.conv2d(np.ones((5, 5)), conv.FILTERS["blur"]), 1.0, atol=1e-6)


def _measured(layer, shape):
    inp = keras.Input(shape)
    row = layer_table(keras.Model(inp, layer(inp))).iloc[0]
    return {"params": int(row["params"]), "MACs": int(row["MACs"])}


@pytest.mark.parametrize("k,c_in,c_out,hw", [(3, 32, 64, 14), (5, 3, 16, 32), (1, 8, 4, 7)])
def test_cost_formulas_match_the_measured_layers(k, c_in, c_out, hw):
    assert conv.conv_cost(k, c_in, c_out, hw, hw) == _measured(keras.layers.Conv2D(c_out, k, padding="same"), (hw, hw, c_in))
    assert conv.separable_cost(k, c_in, c_out, hw, hw) == _measured(
        keras.layers.SeparableConv2D(c_out, k, padding="same"), (hw, hw, c_in))
    std, sep = conv.conv_cost(k, c_in, c_out, hw, hw, bias=False), conv.separable_cost(k, c_in, c_out, hw, hw, bias=False)
    assert sep["MACs"] / std["MACs"] == pytest.approx(1 / c_out + 1 / k**2)
