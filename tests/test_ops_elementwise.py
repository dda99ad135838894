"""Elementwise and data-movement ops, each built in tf_keras, converted to int8 and checked
byte for byte against both reference interpreters (host build)."""

import numpy as np
import pytest

from labkit.compress.quantize import to_int8_tflite
from labkit.deploy import quant_math as qm
from labkit.deploy.tflite_reader import read_tflite
from labkit.keras import keras, tf
from labkit.verify import verify
from tflite_edit import reshape_as_expand_dims, reshape_as_squeeze


@pytest.fixture(autouse=True)
def _seeded():
    """Layer weights are drawn when a model is built: seed first, so every run tests the same models."""
    keras.utils.set_random_seed(0)


def _convert(model, shape, seed=0, scale=1.0, float_io=False):
    x = (np.random.default_rng(seed).normal(size=(64, *shape)) * scale).astype("float32")
    return to_int8_tflite(model, x, float_io=float_io)


def _check(tfl, kinds, tmp_path, samples=25, references=("tflm", "litert")):
    """Bit-exact with the references, built with AddressSanitizer and UBSan (no stray access, no overflow)."""
    ops = {op.kind for op in read_tflite(tfl).ops}
    assert set(kinds) <= ops, f"the converter emitted {sorted(ops)}, not {kinds}"
    report = verify(tfl, samples=samples, workdir=tmp_path, sanitize=True, references=references)
    for ref in references:
        assert report.check(ref).mismatched_bytes == 0, (ref, sorted(ops))
    return report


@pytest.mark.parametrize("shape_b", [(4, 6), (6,), (1, 6)])
def test_add_with_and_without_broadcast(tmp_path, shape_b):
    a = keras.Input((4, 6))
    b = keras.layers.Dense(shape_b[-1])(keras.layers.Flatten()(a)) if shape_b == (6,) else None
    if shape_b == (4, 6):
        out = keras.layers.Add()([keras.layers.Dense(6)(a), keras.layers.Dense(6, activation="relu")(a)])
    elif shape_b == (6,):
        out = keras.layers.Lambda(lambda t: t[0] + t[1][:, None, :])([keras.layers.Dense(6)(a), b])
    else:
        # after tanh the constant cannot be folded into a bias: a real ADD with a constant operand
        h = keras.layers.Activation("tanh")(keras.layers.Dense(6)(a))
        out = keras.layers.Lambda(lambda t: t + tf.constant(np.linspace(-1, 1, 6, dtype="float32")))(h)
    _check(_convert(keras.Model(a, out), (4, 6)), ["ADD"], tmp_path)


def test_residual_add_then_relu_is_fused(tmp_path):
    a = keras.Input((8,))
    h = keras.layers.Dense(8)(a)
    out = keras.layers.ReLU()(keras.layers.Add()([a, h]))
    _check(_convert(keras.Model(a, out), (8,), seed=1), ["ADD"], tmp_path)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_mul_elementwise_and_by_constant(tmp_path, seed):
    """Several seeds: LiteRT's MUL rounds twice (unlike its FULLY_CONNECTED), which one model may not show."""
    keras.utils.set_random_seed(seed)
    a = keras.Input((10,))
    m = keras.layers.Multiply()([keras.layers.Dense(10)(a), keras.layers.Dense(10, activation="sigmoid")(a)])
    out = keras.layers.Lambda(lambda t: t * tf.constant(np.linspace(0.5, 2, 10, dtype="float32")))(m)
    _check(_convert(keras.Model(a, out), (10,), seed=seed), ["MUL"], tmp_path, samples=60)


@pytest.mark.parametrize("activation,kind", [("tanh", "TANH"), ("sigmoid", "LOGISTIC")])
@pytest.mark.parametrize("scale", [0.3, 3.0, 30.0])
def test_tanh_and_logistic(tmp_path, activation, kind, scale):
    a = keras.Input((12,))
    out = keras.layers.Activation(activation)(keras.layers.Dense(12)(a))
    _check(_convert(keras.Model(a, out), (12,), seed=3, scale=scale), [kind], tmp_path, samples=40)


@pytest.mark.parametrize("kind", ["TANH", "LOGISTIC"])
def test_lookup_tables_follow_the_function(kind):
    """Both references' tables are close to the real function: the arithmetic ports are not off by a scale."""
    in_scale, in_zp = 0.05, 3
    out_scale, out_zp = (1 / 128, 0) if kind == "TANH" else (1 / 256, -128)
    x = in_scale * (np.arange(-128, 128) - in_zp)
    y = np.tanh(x) if kind == "TANH" else 1 / (1 + np.exp(-x))
    for table in (qm.litert_lut(kind, in_scale, in_zp, out_scale, out_zp), qm.tflm_lut(kind, in_scale, in_zp, out_scale, out_zp)):
        got = (table.astype(float) - out_zp) * out_scale
        assert np.max(np.abs(got - y)) <= 1.5 * out_scale


@pytest.mark.parametrize("layer,kind", [(keras.layers.ReLU(), "RELU"), (keras.layers.ReLU(max_value=6.0), "RELU6")])
def test_standalone_relu(tmp_path, layer, kind):
    a = keras.Input((6, 4))
    c = keras.layers.Concatenate(axis=-1)([a, keras.layers.Dense(4)(a)])
    out = layer(c)  # after a concatenation there is no op to fuse it into
    _check(_convert(keras.Model(a, out), (6, 4), seed=4, scale=4.0), [kind], tmp_path)


@pytest.mark.parametrize("axis", [1, 2, -1])
def test_concatenation(tmp_path, axis):
    a = keras.Input((3, 4, 2))
    b = keras.layers.Dense(2)(a)
    out = keras.layers.Concatenate(axis=axis)([a, b, a])
    _check(_convert(keras.Model(a, out), (3, 4, 2), seed=5), ["CONCATENATION"], tmp_path)


def test_zero_padding(tmp_path):
    a = keras.Input((5, 4, 3))
    out = keras.layers.ZeroPadding2D(((1, 2), (0, 3)))(keras.layers.Dense(3)(a))
    _check(_convert(keras.Model(a, out), (5, 4, 3), seed=6), ["PAD"], tmp_path)


@pytest.mark.parametrize("slicer", [
    lambda t: t[:, 1:5:2, :],
    lambda t: t[:, ::-1, 1:],
    lambda t: t[:, 2, :],           # shrink axis
    lambda t: t[:, -3:, :-1],
])
def test_strided_slice(tmp_path, slicer):
    a = keras.Input((7, 5))
    out = keras.layers.Lambda(slicer)(keras.layers.Dense(5)(a))
    tfl = _convert(keras.Model(a, out), (7, 5), seed=7)
    kinds = {op.kind for op in read_tflite(tfl).ops}
    assert kinds & {"STRIDED_SLICE", "SLICE"}
    _check(tfl, [], tmp_path)


@pytest.mark.parametrize("begin,size", [([0, 1, 2], [1, 2, 3]), ([0, 0, 1], [1, -1, 4]), ([0, 3, 0], [1, 1, -1])])
def test_slice(tmp_path, begin, size):
    a = keras.Input((4, 6))
    out = keras.layers.Lambda(lambda t: tf.slice(t, begin, size))(keras.layers.Dense(6)(a))
    _check(_convert(keras.Model(a, out), (4, 6), seed=10), ["SLICE"], tmp_path)


@pytest.mark.parametrize("value", [0.5, -2.0])
def test_pad_with_a_constant_value_is_padv2(tmp_path, value):
    a = keras.Input((4, 6))
    out = keras.layers.Lambda(lambda t: tf.pad(t, [[0, 0], [1, 2], [0, 1]], constant_values=value))(keras.layers.Dense(6)(a))
    _check(_convert(keras.Model(a, out), (4, 6), seed=11), ["PADV2"], tmp_path)


def test_clip_to_plus_minus_one_is_relu_n1_to_1(tmp_path):
    a = keras.Input((4, 6))
    # after a PAD the clip cannot be fused into the layer before it: a RELU_N1_TO_1 op of its own
    out = keras.layers.Lambda(lambda t: tf.clip_by_value(tf.pad(t, [[0, 0], [1, 0], [0, 0]]), -1.0, 1.0))(
        keras.layers.Dense(6)(a))
    # TFLite Micro has no RELU_N1_TO_1 kernel ("Didn't find op for builtin opcode"): LiteRT is the reference
    _check(_convert(keras.Model(a, out), (4, 6), seed=12, scale=2.0), ["RELU_N1_TO_1"], tmp_path, references=("litert",))


@pytest.mark.parametrize("rewrite,kind", [(reshape_as_expand_dims, "EXPAND_DIMS"), (reshape_as_squeeze, "SQUEEZE")])
def test_expand_dims_and_squeeze_as_other_converters_write_them(tmp_path, rewrite, kind):
    a = keras.Input((4, 6))
    x = keras.layers.Reshape((4, 1, 6))(keras.layers.Dense(6)(a))  # inserts an axis: EXPAND_DIMS once rewritten
    x = keras.layers.Conv2D(3, (2, 1))(x)
    out = keras.layers.Reshape((3, 3))(x)  # drops the size-1 axis: SQUEEZE once rewritten
    _check(rewrite(_convert(keras.Model(a, out), (4, 6), seed=13)), [kind], tmp_path)


def test_cropping_becomes_a_slice(tmp_path):
    a = keras.Input((9, 4))
    out = keras.layers.Cropping1D((2, 3))(keras.layers.Dense(4)(a))
    tfl = _convert(keras.Model(a, out), (9, 4), seed=8)
    assert {op.kind for op in read_tflite(tfl).ops} & {"STRIDED_SLICE", "SLICE"}
    _check(tfl, [], tmp_path)


def test_float_input_and_output_with_quantize_and_dequantize(tmp_path):
    a = keras.Input((16,))
    out = keras.layers.Dense(4, activation="softmax")(keras.layers.Dense(8, activation="relu")(a))
    tfl = _convert(keras.Model(a, out), (16,), seed=9, float_io=True)
    report = _check(tfl, ["QUANTIZE", "DEQUANTIZE"], tmp_path, samples=40)
    assert report.outputs.dtype == np.float32
