"""labkit-nn convolution family (CONV_2D, DEPTHWISE_CONV_2D, MAX/AVERAGE_POOL_2D, MEAN):
bit-exact with both reference interpreters over random shapes and options.

Each test case draws one random configuration from its seed (a small, explicit property test:
a failing seed names a reproducible model), builds a tiny tf_keras model with random weights
and biases, converts it to full int8 and verifies 20 random inputs against LiteRT and TFLM.
"""

import numpy as np
import pytest

import labkit  # noqa: F401  (tf_keras before TensorFlow)
from labkit import reference
from labkit.compress.quantize import to_int8_tflite
from labkit.deploy.codegen import generate_c
from labkit.deploy.tflite_reader import read_tflite
from labkit.errors import UnsupportedModelError
from labkit.keras import keras, tf
from labkit.quiet import capture_stderr
from labkit.verify import build_host, random_inputs, run_host, verify

ACTIVATIONS = [None, "relu", "relu6"]


def _randomize(model, rng):
    """Random weights and biases (a fresh layer has zero biases, which would test nothing)."""
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            layer.set_weights([rng.normal(0.0, 0.5, size=w.shape).astype("float32") for w in weights])


def _int8_model(layers, input_shape, rng, per_channel=True):
    inp = keras.Input(input_shape)
    out = inp
    for layer in layers if isinstance(layers, (list, tuple)) else [layers]:
        out = layer(out)
    model = keras.Model(inp, out)
    _randomize(model, rng)
    x = (rng.normal(size=(64, *input_shape)) * rng.uniform(0.5, 2.0) + rng.uniform(-0.5, 0.5)).astype("float32")
    return to_int8_tflite(model, x, seed=0) if per_channel else _per_tensor_int8(model, x)


def _per_tensor_int8(model, x):
    """What to_int8_tflite does, with the converter's per-channel quantization switched off."""
    from labkit.models import with_batch_size

    conv = tf.lite.TFLiteConverter.from_keras_model(with_batch_size(model, 1))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([x[i : i + 1]] for i in range(len(x)))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    conv._experimental_disable_per_channel = True
    with capture_stderr():
        return conv.convert()


def _assert_bit_exact(tflite, config, tmp_path, ops=None):
    kinds = [op.kind for op in read_tflite(tflite).ops]
    if ops is not None:
        assert set(ops) <= set(kinds), (config, kinds)
    report = verify(tflite, samples=20, target="host", workdir=tmp_path)
    for ref_name in ("litert", "tflm"):
        assert report.check(ref_name).mismatched_bytes == 0, (ref_name, config, kinds)


def _spatial(rng, k_max=3, allow_dilation=True):
    """A random window: kernel, strides (1, 2), dilation (1, 2; Keras allows it only with
    stride 1), padding, and an input big enough for a VALID window."""
    k = (int(rng.integers(1, k_max + 1)), int(rng.integers(1, k_max + 1)))
    strides = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    dilation = (1, 1)
    if allow_dilation and strides == (1, 1) and rng.random() < 0.5:
        dilation = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    padding = str(rng.choice(["same", "valid"]))
    h = int(rng.integers((k[0] - 1) * dilation[0] + 1, 9))
    w = int(rng.integers((k[1] - 1) * dilation[1] + 1, 9))
    return dict(kernel_size=k, strides=strides, dilation_rate=dilation, padding=padding), (max(h, 2), max(w, 2))


# ---- CONV_2D --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_conv2d_random_configs_are_bit_exact(seed, tmp_path):
    rng = np.random.default_rng(100 + seed)
    window, (h, w) = _spatial(rng)
    in_ch = int(rng.integers(1, 5))
    config = dict(filters=int(rng.integers(1, 7)), activation=ACTIVATIONS[seed % 3], use_bias=bool(rng.random() < 0.8),
                  **window)
    tfl = _int8_model(keras.layers.Conv2D(**config), (h, w, in_ch), rng)
    _assert_bit_exact(tfl, (h, w, in_ch, config), tmp_path, ops=["CONV_2D"])


def test_grouped_conv2d_is_bit_exact(tmp_path):
    rng = np.random.default_rng(7)
    tfl = _int8_model(keras.layers.Conv2D(6, 3, groups=2, padding="same", activation="relu"), (5, 7, 4), rng)
    g = read_tflite(tfl)
    assert g.tensors[g.ops[0].inputs[1]].shape == (6, 3, 3, 2)  # the filter sees 2 of the 4 channels
    _assert_bit_exact(tfl, "groups=2", tmp_path, ops=["CONV_2D"])


def test_per_tensor_quantized_conv_is_bit_exact(tmp_path):
    rng = np.random.default_rng(8)
    layers = [keras.layers.Conv2D(5, 3, padding="same", activation="relu"),
              keras.layers.DepthwiseConv2D(3, depth_multiplier=2, strides=2, padding="same")]
    tfl = _int8_model(layers, (6, 7, 3), rng, per_channel=False)
    g = read_tflite(tfl)
    assert all(len(g.tensors[op.inputs[1]].scale) == 1 for op in g.ops)  # one scale per filter
    _assert_bit_exact(tfl, "per-tensor", tmp_path, ops=["CONV_2D", "DEPTHWISE_CONV_2D"])


@pytest.mark.parametrize("seed", range(2))
def test_conv1d_becomes_conv2d_and_is_bit_exact(seed, tmp_path):
    rng = np.random.default_rng(200 + seed)
    config = dict(filters=int(rng.integers(2, 6)), kernel_size=int(rng.integers(1, 4)), strides=1 + seed,
                  dilation_rate=2 - seed, padding=["same", "valid"][seed], activation=ACTIVATIONS[seed + 1])
    tfl = _int8_model(keras.layers.Conv1D(**config), (int(rng.integers(6, 12)), int(rng.integers(1, 4))), rng)
    _assert_bit_exact(tfl, config, tmp_path, ops=["CONV_2D"])


# ---- DEPTHWISE_CONV_2D ----------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_depthwise_conv2d_random_configs_are_bit_exact(seed, tmp_path):
    rng = np.random.default_rng(300 + seed)
    window, (h, w) = _spatial(rng)
    in_ch = int(rng.integers(1, 5))
    config = dict(depth_multiplier=1 + seed % 2, activation=ACTIVATIONS[seed % 3], use_bias=bool(rng.random() < 0.8),
                  **window)
    tfl = _int8_model(keras.layers.DepthwiseConv2D(**config), (h, w, in_ch), rng)
    _assert_bit_exact(tfl, (h, w, in_ch, config), tmp_path, ops=["DEPTHWISE_CONV_2D"])


def test_separable_conv2d_is_bit_exact(tmp_path):
    rng = np.random.default_rng(9)
    layer = keras.layers.SeparableConv2D(4, 3, depth_multiplier=2, strides=2, padding="same", activation="relu6")
    tfl = _int8_model(layer, (7, 6, 3), rng)
    _assert_bit_exact(tfl, "separable", tmp_path, ops=["DEPTHWISE_CONV_2D", "CONV_2D"])


# ---- pooling ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_pooling_random_configs_are_bit_exact(seed, tmp_path):
    rng = np.random.default_rng(400 + seed)
    window, (h, w) = _spatial(rng, allow_dilation=False)
    kind = [keras.layers.MaxPooling2D, keras.layers.AveragePooling2D][seed % 2]
    config = dict(pool_size=window["kernel_size"], strides=window["strides"], padding=window["padding"])
    layers = [kind(**config)]
    if seed >= 4:  # after a ReLU conv: the input's zero point sits at -128
        layers.insert(0, keras.layers.Conv2D(3, 1, activation="relu"))
    tfl = _int8_model(layers, (h, w, int(rng.integers(1, 5))), rng)
    _assert_bit_exact(tfl, (h, w, kind.__name__, config), tmp_path,
                      ops=["MAX_POOL_2D" if seed % 2 == 0 else "AVERAGE_POOL_2D"])


# ---- MEAN --------------------------------------------------------------------------------------


@pytest.mark.parametrize("keepdims", [False, True])
def test_global_average_pooling_is_a_mean_and_bit_exact(keepdims, tmp_path):
    rng = np.random.default_rng(500 + keepdims)
    layers = [keras.layers.Conv2D(5, 3, padding="same"), keras.layers.GlobalAveragePooling2D(keepdims=keepdims)]
    tfl = _int8_model(layers, (5, 7, 3), rng)
    g = read_tflite(tfl)
    mean = next(op for op in g.ops if op.kind == "MEAN")
    axes = g.tensors[mean.inputs[1]]
    assert axes.is_constant and sorted(axes.data.tolist()) == [1, 2]  # the axes come as a constant tensor
    assert mean.options["keep_dims"] == keepdims
    assert g.tensors[mean.outputs[0]].shape == ((1, 1, 1, 5) if keepdims else (1, 5))
    _assert_bit_exact(tfl, f"keepdims={keepdims}", tmp_path, ops=["MEAN"])


def test_mean_over_time_and_over_many_values_is_bit_exact(tmp_path):
    """GlobalAveragePooling1D (MEAN over axis 1 of [1, T, C]), and a long reduction (240 values)."""
    rng = np.random.default_rng(11)
    _assert_bit_exact(_int8_model(keras.layers.GlobalAveragePooling1D(), (240, 3), rng), "gap1d", tmp_path / "a",
                      ops=["MEAN"])


def test_mean_with_the_input_quantization_on_its_output_is_bit_exact(tmp_path):
    """Older TFLite kernels took another path (a truncating integer mean) when MEAN's input and
    output share scale and zero point; both pinned references requantize as usual. The converter
    never makes such a MEAN, so the flatbuffer is edited to get one."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    rng = np.random.default_rng(13)
    tfl = _int8_model(keras.layers.GlobalAveragePooling2D(), (5, 7, 3), rng)
    model = schema.ModelT.InitFromPackedBuf(tfl, 0)
    sg = model.subgraphs[0]
    src, dst = sg.tensors[sg.inputs[0]].quantization, sg.tensors[sg.outputs[0]].quantization
    dst.scale, dst.zeroPoint = list(src.scale), list(src.zeroPoint)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    edited = bytes(builder.Output())
    g = read_tflite(edited)
    x, y = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
    assert (x.scale[0], x.zero_point[0]) == (y.scale[0], y.zero_point[0])
    _assert_bit_exact(edited, "same quantization", tmp_path, ops=["MEAN"])


def test_mean_over_non_adjacent_axes_is_refused_clearly(tmp_path):
    rng = np.random.default_rng(12)
    layer = keras.layers.Lambda(lambda t: tf.reduce_mean(t, axis=[1, 3]))
    tfl = _int8_model(layer, (4, 5, 3), rng)
    with pytest.raises(UnsupportedModelError, match="MEAN over non-adjacent axes"):
        generate_c(tfl, tmp_path)


# ---- a whole depthwise-separable CNN ------------------------------------------------------------


@pytest.fixture(scope="module")
def mobilenet_block():
    """Conv2D -> DepthwiseConv2D -> 1x1 Conv2D -> GlobalAveragePooling2D -> Dense -> Softmax."""
    rng = np.random.default_rng(2024)
    L = keras.layers
    layers = [
        L.Conv2D(8, 3, strides=2, padding="same", activation="relu6"),
        L.DepthwiseConv2D(3, padding="same", activation="relu6"),
        L.Conv2D(16, 1, activation="relu6"),
        L.GlobalAveragePooling2D(),
        L.Dense(4),
        L.Softmax(),
    ]
    return _int8_model(layers, (16, 16, 3), rng)


def test_mobilenet_block_ops_and_costs(mobilenet_block, tmp_path):
    cm = generate_c(mobilenet_block, tmp_path, name="cnn")
    assert cm.ops == ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"]
    convs = 8 * 8 * 8 * 3 * 3 * 3 + 8 * 8 * 8 * 3 * 3 + 8 * 8 * 16 * 8
    assert cm.macs == convs + 8 * 8 * 16 + 16 * 4  # MEAN counts one accumulate per input value
    assert cm.arena_bytes == cm.arena_lower_bound  # a plain chain: the largest (input + output) of one op
    assert cm.arena_bytes <= reference.tflm_arena_bytes(mobilenet_block)
    c = (tmp_path / "cnn.c").read_text()
    assert "lk_depthwise_conv_s8(" in c and "malloc" not in (tmp_path / "labkit_nn_conv.c").read_text()


def test_mobilenet_block_is_bit_exact_on_host(mobilenet_block, tmp_path):
    report = verify(mobilenet_block, samples=20, target="host", workdir=tmp_path)
    assert report.check("litert").mismatched_bytes == 0
    assert report.check("tflm").mismatched_bytes == 0


def test_mobilenet_block_is_bit_exact_on_cortex_m4(mobilenet_block, tmp_path):
    report = verify(mobilenet_block, samples=20, target="cortex-m4", workdir=tmp_path)
    assert report.check("litert").mismatched_bytes == 0
    assert report.check("tflm").mismatched_bytes == 0
    m = report.metrics
    assert m["arena_bytes"] <= reference.tflm_arena_bytes(mobilenet_block)
    assert m["instructions"] > m["macs"] > 0 and m["flash_bytes"] > 0 and m["ram_bytes"] >= m["arena_bytes"]
    print("\nmobilenet block on cortex-m4:", {k: m[k] for k in sorted(m)},
          "tflm arena:", reference.tflm_arena_bytes(mobilenet_block))


def test_mobilenet_block_is_clean_under_sanitizers(mobilenet_block, tmp_path):
    cm = generate_c(mobilenet_block, tmp_path / "c", name="cnn")
    inputs = random_inputs(cm, 20, seed=5)
    for ref_name in ("litert", "tflm"):
        want = reference.run(mobilenet_block, inputs.reshape(20, *cm.input.shape[1:]), ref_name)[0].reshape(20, -1)
        exe = build_host(cm, ref_name, tmp_path / "build", sanitize=True)
        got = run_host(exe, inputs, cm.output.size, tmp_path / "run")
        assert np.array_equal(got, want), ref_name
