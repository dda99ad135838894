"""Structured pruning: smaller shapes, the surviving weights copied exactly, still trains, smaller on the board."""

import shutil

import numpy as np
import pytest

import labkit  # noqa: F401  (tf_keras before TensorFlow)
from labkit import models
from labkit.compress import structured
from labkit.compress.structured import StructuredPruningError
from labkit.errors import LabkitError
from labkit.keras import keras
from labkit.measure import count_macs
from labkit.train import set_seed


@pytest.fixture(scope="module")
def conv_net(digits):
    from labkit.train import fit_classifier

    x, y, _, _ = digits
    set_seed(0)
    m = models.cnn((8, 8, 1), 10, filters=(8, 16), dense=32)
    fit_classifier(m, x[..., None], y, epochs=8, seed=0)
    return m


def _acc(model, x, y):
    return float(np.mean(np.argmax(model.predict(x, verbose=0), axis=-1) == y))


def test_cnn_loses_half_its_filters_and_units(conv_net):
    small = structured.prune_structured(conv_net, 0.5)
    assert small.get_layer("conv_1").kernel.shape == (3, 3, 1, 4)
    assert small.get_layer("conv_2").kernel.shape == (3, 3, 4, 8)  # its inputs follow conv_1
    assert small.get_layer("dense").kernel.shape == (2 * 2 * 8, 16)  # through pooling and flatten
    assert small.get_layer("logits").kernel.shape == (16, 10)  # the classifier keeps its 10 outputs
    assert small.output_shape == conv_net.output_shape
    assert [l.name for l in small.layers] == [l.name for l in conv_net.layers]
    assert count_macs(small) <= 0.5 * count_macs(conv_net)


def test_surviving_filters_are_copied_exactly(conv_net, digits):
    x = digits[0][:20, ..., None]
    small = structured.prune_structured(conv_net, 0.5, criterion="l1")
    kept = np.sort(np.argsort(-structured.unit_saliency(conv_net, "l1")["conv_1"], kind="stable")[:4])
    before = keras.Model(conv_net.inputs, conv_net.get_layer("pool_1").output).predict(x, verbose=0)
    after = keras.Model(small.inputs, small.get_layer("pool_1").output).predict(x, verbose=0)
    np.testing.assert_allclose(after, before[..., kept], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("build", [
    lambda: models.mlp((8, 8), 10, hidden=(32, 16)),
    lambda: models.cnn((8, 8, 1), 10, filters=(8, 16), dense=32),
    lambda: models.cnn1d((24, 3), 4, filters=(8, 16)),
    lambda: models.ds_cnn((16, 16, 3), 4, alpha=0.5),
    lambda: models.with_batch_size(models.cnn((8, 8, 1), 10, filters=(4, 8), dense=8), 1),
], ids=["mlp", "cnn", "cnn1d", "ds_cnn", "batch1"])
def test_rebuild_without_pruning_gives_the_same_model(build):
    """fraction 0 rebuilds the model layer by layer: the same outputs prove the rebuilding right."""
    set_seed(1)
    m = build()
    x = np.random.default_rng(0).normal(size=(m.input_shape[0] or 5, *m.input_shape[1:])).astype("float32")
    for layer in m.layers:  # non-trivial batch-norm statistics
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([w + np.random.default_rng(2).uniform(0.1, 0.5, w.shape) for w in layer.get_weights()])
    same = structured.prune_structured(m, 0.0)
    assert same.input_shape == m.input_shape  # batch size kept too
    np.testing.assert_allclose(same.predict(x, verbose=0), m.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_depthwise_and_batchnorm_follow_the_pruned_channels():
    set_seed(0)
    m = models.ds_cnn((16, 16, 3), 4, alpha=1.0)
    small = structured.prune_structured(m, 0.5)
    assert small.get_layer("stem").kernel.shape[-1] == 8
    assert small.get_layer("stem_bn").gamma.shape == (8,)
    assert small.get_layer("dw_1").depthwise_kernel.shape == (3, 3, 8, 1)
    assert small.get_layer("pw_1").kernel.shape == (1, 1, 8, 16)
    assert small.get_layer("logits").kernel.shape == (32, 4)


def test_activation_criterion_and_per_layer_fractions(conv_net, digits):
    x = digits[0][:100, ..., None]
    small = structured.prune_structured(conv_net, {"conv_2": 0.75}, criterion="activation", x=x)
    assert small.get_layer("conv_1").kernel.shape[-1] == 8
    assert small.get_layer("conv_2").kernel.shape[-1] == 4
    assert small.get_layer("dense").kernel.shape == (2 * 2 * 4, 32)
    s = structured.unit_saliency(conv_net, "activation", x=x)
    assert set(s) == {"conv_1", "conv_2", "dense"} and s["conv_2"].shape == (16,)


def test_smaller_model_still_trains(conv_net, digits):
    x, y, xt, yt = digits
    small = structured.prune_structured(conv_net, 0.5)
    before = _acc(small, xt[..., None], yt)
    history = structured.fine_tune(small, x[..., None], y, epochs=4, seed=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    after = _acc(small, xt[..., None], yt)
    assert after > 0.8 and after >= before


def test_structure_report(conv_net):
    small = structured.prune_structured(conv_net, 0.5)
    report = structured.structure_report(conv_net, small)
    assert report["layer"].tolist() == ["conv_1", "conv_2", "dense", "logits", "total"]
    total = report.iloc[-1]
    assert total["params before"] == conv_net.count_params() and total["params after"] == small.count_params()
    assert total["MACs before"] == count_macs(conv_net) and total["MACs after"] == count_macs(small)
    assert report.set_index("layer").loc["logits", "units after"] == 10


@pytest.mark.parametrize("bad", [1.0, -0.5, 2])
def test_fraction_outside_0_1_is_refused(conv_net, bad):
    with pytest.raises(StructuredPruningError, match=r"\[0, 1\)"):
        structured.prune_structured(conv_net, bad)


def test_clear_errors(conv_net):
    with pytest.raises(StructuredPruningError, match="last weight layer"):
        structured.prune_structured(conv_net, 0.5, layers=["conv_1", "logits"])
    with pytest.raises(StructuredPruningError, match="needs samples"):
        structured.prune_structured(conv_net, 0.5, criterion="activation")
    with pytest.raises(StructuredPruningError, match="criterion must be one of"):
        structured.prune_structured(conv_net, 0.5, criterion="random")
    with pytest.raises(StructuredPruningError, match="not pruned layers"):
        structured.prune_structured(conv_net, {"pool_1": 0.5})
    with pytest.raises(StructuredPruningError, match="is a MaxPooling2D"):
        structured.prune_structured(conv_net, 0.5, layers=["pool_1"])


def test_model_with_nothing_to_remove_is_refused():
    inp = keras.Input((6,))
    only_classifier = keras.Model(inp, keras.layers.Dense(3, name="logits")(inp))
    with pytest.raises(StructuredPruningError, match="no layer whose units can be removed") as e:
        structured.prune_structured(only_classifier, 0.5)
    assert isinstance(e.value, LabkitError)


def test_branching_model_is_refused():
    inp = keras.Input((6,))
    a = keras.layers.Dense(8, name="a")(inp)
    b = keras.layers.Dense(8, name="b")(inp)
    out = keras.layers.Dense(3, name="out")(keras.layers.Add(name="add")([a, b]))
    with pytest.raises(StructuredPruningError, match="chains of layers"):
        structured.prune_structured(keras.Model(inp, out), 0.5)


def test_smaller_int8_model_on_the_board(conv_net, digits):
    """Structured pruning that removes >= 50 % of the MACs shrinks int8 flash, RAM and instructions."""
    from labkit.measure import measure_model

    x = digits[0][..., None]
    small = structured.prune_structured(conv_net, 0.5)
    device = shutil.which("arm-none-eabi-gcc") is not None and shutil.which("qemu-system-arm") is not None
    before = measure_model(conv_net, x, device=device, samples=3)
    after = measure_model(small, x, device=device, samples=3)
    assert after["macs"] <= 0.5 * before["macs"]
    assert after["tflite_bytes"] < before["tflite_bytes"]
    if not device:
        pytest.skip("ARM cross-compiler or QEMU missing: flash and instructions not measured")
    assert after["flash_bytes"] < before["flash_bytes"]
    assert after["ram_bytes"] < before["ram_bytes"]
    assert after["instructions"] < 0.75 * before["instructions"]
