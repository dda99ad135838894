"""Property tests over random configurations: FULLY_CONNECTED, SOFTMAX, ADD and MUL with
broadcasting, CONCATENATION, PAD and STRIDED_SLICE, each built in tf_keras with random shapes,
weights and data ranges (so random quantization parameters), converted to int8 and compared
byte for byte with both reference interpreters on the host, under AddressSanitizer and UBSan.

Seeded: every run draws the same configurations; the configuration is in each failure message."""

import numpy as np
import pytest

from labkit.compress.quantize import to_int8_tflite
from labkit.deploy.tflite_reader import read_tflite
from labkit.keras import keras, tf
from labkit.verify import verify

L = keras.layers
SEEDS = range(5)


def _bit_exact(model, x, tmp_path, config, kinds) -> set[str]:
    """Convert, check that ``kinds`` are among the ops, compare with both references; the ops."""
    tfl = to_int8_tflite(model, x, seed=0)
    ops = [op.kind for op in read_tflite(tfl).ops]
    assert set(kinds) <= set(ops), (config, ops)
    report = verify(tfl, samples=25, target="host", workdir=tmp_path, sanitize=True)
    for ref in ("litert", "tflm"):
        assert report.check(ref).mismatched_bytes == 0, (ref, config, ops)
    return set(ops)


def _data(rng, shape, n=48):
    """Calibration data with a random spread and offset: the converter's scales and zero points vary."""
    return (rng.normal(size=(n, *shape)) * rng.uniform(0.2, 5.0) + rng.uniform(-1.0, 1.0)).astype("float32")


def _randomize(model, rng):
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            layer.set_weights([(rng.normal(0, rng.uniform(0.1, 1.0), size=w.shape)).astype("float32") for w in weights])


def _after_dense(fn, shape, rng, tmp_path, config, kinds) -> set[str]:
    """``fn`` applied to a Dense layer's output (random weights, so a random input scale), checked."""
    inp = keras.Input(shape)
    model = keras.Model(inp, L.Lambda(fn)(L.Dense(shape[-1])(inp)))
    _randomize(model, rng)
    return _bit_exact(model, _data(rng, shape), tmp_path, config, kinds)


@pytest.mark.parametrize("seed", SEEDS)
def test_fully_connected_random_configs(seed, tmp_path):
    rng = np.random.default_rng(100 + seed)
    keras.utils.set_random_seed(seed)
    n_in, n_out = int(rng.integers(1, 70)), int(rng.integers(1, 40))
    config = dict(n_in=n_in, n_out=n_out, activation=[None, "relu", "relu6"][seed % 3], use_bias=bool(seed % 2 == 0),
                  rank=2 if seed < 3 else 3)
    shape = (n_in,) if config["rank"] == 2 else (int(rng.integers(2, 5)), n_in)  # rank 3: FC over the last axis
    inp = keras.Input(shape)
    model = keras.Model(inp, L.Dense(n_out, activation=config["activation"], use_bias=config["use_bias"])(inp))
    _randomize(model, rng)
    _bit_exact(model, _data(rng, shape), tmp_path, config, ["FULLY_CONNECTED"])


@pytest.mark.parametrize("seed", SEEDS)
def test_softmax_random_configs(seed, tmp_path):
    rng = np.random.default_rng(200 + seed)
    keras.utils.set_random_seed(seed)
    n = int(rng.integers(2, 40))
    config = dict(classes=n, logit_scale=float(rng.uniform(0.3, 20.0)), rank=2 if seed % 2 else 3)
    shape = (8,) if config["rank"] == 2 else (3, 8)  # rank 3: softmax over the last axis of each row
    inp = keras.Input(shape)
    logits = L.Lambda(lambda t: t * config["logit_scale"])(L.Dense(n)(inp))
    model = keras.Model(inp, L.Softmax()(logits))
    _randomize(model, rng)
    _bit_exact(model, _data(rng, shape), tmp_path, config, ["SOFTMAX"])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("op", ["ADD", "MUL"])
def test_add_and_mul_with_random_broadcasting(seed, op, tmp_path):
    rng = np.random.default_rng(300 + seed + (50 if op == "MUL" else 0))
    keras.utils.set_random_seed(seed)
    shape = tuple(int(v) for v in rng.integers(1, 6, size=int(rng.integers(1, 4))))
    # the second operand: the same shape, or some axes squeezed to 1 (broadcast along them)
    other = tuple(1 if rng.random() < 0.4 else s for s in shape)
    config = dict(shape=shape, other=other)
    inp = keras.Input((*shape[:-1], 4))
    a = L.Dense(shape[-1])(inp)  # (batch, *shape)
    keep_one = (slice(None),) + tuple(slice(0, 1) if o == 1 else slice(None) for o in other)
    b = L.Lambda(lambda t: t[keep_one])(L.Dense(shape[-1], activation="tanh")(inp))  # size 1 where `other` is
    out = L.Add()([a, b]) if op == "ADD" else L.Multiply()([a, b])
    model = keras.Model(inp, out)
    _randomize(model, rng)
    _bit_exact(model, _data(rng, (*shape[:-1], 4)), tmp_path, config, [op])


@pytest.mark.parametrize("seed", SEEDS)
def test_concatenation_random_configs(seed, tmp_path):
    rng = np.random.default_rng(400 + seed)
    keras.utils.set_random_seed(seed)
    rank = int(rng.integers(1, 4))
    shape = tuple(int(v) for v in rng.integers(1, 6, size=rank))
    axis = int(rng.integers(1, rank + 1))  # along any axis but the batch
    pieces = int(rng.integers(2, 4))
    config = dict(shape=shape, axis=axis, pieces=pieces)
    inp = keras.Input(shape)
    # each piece its own scale (a Dense with its own weights) and size along the axis
    parts = []
    for _ in range(pieces):
        width = int(rng.integers(1, 4))
        if axis == rank:
            parts.append(L.Dense(width)(inp))
        else:  # `width` copies of the piece side by side along `axis`
            parts.append(L.Lambda(lambda t, w=width: tf.concat([t] * w, axis))(L.Dense(shape[-1])(inp)))
    model = keras.Model(inp, L.Concatenate(axis=axis)(parts))
    _randomize(model, rng)
    _bit_exact(model, _data(rng, shape), tmp_path, config, ["CONCATENATION"])


@pytest.mark.parametrize("seed", SEEDS)
def test_pad_random_configs(seed, tmp_path):
    rng = np.random.default_rng(500 + seed)
    keras.utils.set_random_seed(seed)
    shape = tuple(int(v) for v in rng.integers(1, 6, size=3))
    pads = [[0, 0]] + [[int(rng.integers(0, 3)), int(rng.integers(0, 3))] for _ in shape]
    pads[1 + int(rng.integers(0, 3))][1] += 1  # pad somewhere, at least
    _after_dense(lambda t: tf.pad(t, pads), shape, rng, tmp_path, dict(shape=shape, pads=pads), ["PAD"])


@pytest.mark.parametrize("seed", SEEDS)
def test_strided_slice_random_configs(seed, tmp_path):
    rng = np.random.default_rng(600 + seed)
    keras.utils.set_random_seed(seed)
    shape = tuple(int(v) for v in rng.integers(2, 8, size=3))
    index = [slice(None)]
    for n in shape:
        step = int(rng.choice([1, 1, 2, 3, -1, -2]))
        a, b = sorted(int(v) for v in rng.integers(0, n + 1, size=2))
        if a == b:
            a, b = 0, n
        index.append(slice(a, b, step) if step > 0 else slice(b - 1, (a - 1) if a > 0 else None, step))
    config = dict(shape=shape, index=index)
    kinds = _after_dense(lambda t: t[tuple(index)], shape, rng, tmp_path, config, [])
    assert kinds & {"STRIDED_SLICE", "SLICE"}, (config, kinds)  # SLICE when every step is 1
