"""Magnitude pruning: target sparsity reached, masks kept through training, schedules, export."""

import gzip

import numpy as np
import pytest

import labkit  # noqa: F401  (tf_keras before TensorFlow)
from labkit.compress import prune
from labkit.compress.prune import PruningError
from labkit.errors import LabkitError
from labkit.keras import keras


@pytest.fixture(scope="module")
def trained(digits):
    from labkit.models import mlp
    from labkit.train import fit_classifier, set_seed

    x, y, _, _ = digits
    set_seed(0)
    m = mlp((8, 8), 10, hidden=(32, 16))
    fit_classifier(m, x, y, epochs=15, seed=0)
    return m


def _acc(model, x, y):
    return float(np.mean(np.argmax(model.predict(x, verbose=0), axis=-1) == y))


@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.8, 0.95])
def test_one_shot_reaches_the_target_in_every_layer(trained, sparsity):
    pruned = prune.prune_magnitude(trained, sparsity)
    report = prune.sparsity_report(pruned)
    for _, row in report.iloc[:-1].iterrows():
        assert row["zeros"] == round(sparsity * row["weights"])
    assert report.iloc[-1]["weight"] == "total"
    assert prune.overall_sparsity(pruned) == pytest.approx(sparsity, abs=1e-3)
    # the original is untouched, and the biases are never pruned
    assert prune.overall_sparsity(trained) == 0.0
    assert np.array_equal(pruned.get_layer("dense_1").bias.numpy(), trained.get_layer("dense_1").bias.numpy())


def test_pruned_weights_are_the_smallest(trained):
    pruned = prune.prune_magnitude(trained, 0.6)
    w0, w1 = trained.get_layer("dense_1").kernel.numpy(), pruned.get_layer("dense_1").kernel.numpy()
    assert np.abs(w0[w1 == 0]).max() <= np.abs(w0[w1 != 0]).min()
    assert np.array_equal(w1[w1 != 0], w0[w1 != 0])


def test_global_scope_uses_one_threshold(trained):
    pruned = prune.prune_magnitude(trained, 0.8, scope="global")
    report = prune.sparsity_report(pruned)
    assert report.iloc[-1]["zeros"] == round(0.8 * report.iloc[-1]["weights"])
    per_layer = report.iloc[:-1]["sparsity"].to_numpy()
    assert per_layer.max() - per_layer.min() > 0.05  # layers lose different fractions
    kernels = [pruned.get_layer(n).kernel.numpy() for n in ("dense_1", "dense_2", "logits")]
    originals = [trained.get_layer(n).kernel.numpy() for n in ("dense_1", "dense_2", "logits")]
    pruned_max = max(np.abs(o[k == 0]).max() for o, k in zip(originals, kernels))
    kept_min = min(np.abs(o[k != 0]).min() for o, k in zip(originals, kernels))
    assert pruned_max <= kept_min


def test_only_named_layers(trained):
    pruned = prune.prune_magnitude(trained, 0.5, layers=["dense_1"])
    assert (pruned.get_layer("dense_1").kernel.numpy() == 0).mean() == pytest.approx(0.5, abs=1e-3)
    assert (pruned.get_layer("logits").kernel.numpy() == 0).sum() == 0
    with pytest.raises(PruningError, match="no layer named 'nope'"):
        prune.prune_magnitude(trained, 0.5, layers=["nope"])


@pytest.mark.parametrize("bad", [1.0, 1.5, -0.1, float("nan"), "lots"])
def test_sparsity_outside_0_1_is_refused(trained, bad):
    with pytest.raises(PruningError, match=r"\[0, 1\)") as e:
        prune.prune_magnitude(trained, bad)
    assert isinstance(e.value, LabkitError)


def test_unknown_scope_is_refused(trained):
    with pytest.raises(PruningError, match="'layer'.*'global'"):
        prune.prune_magnitude(trained, 0.5, scope="everything")


def test_model_without_prunable_layers_is_refused():
    inp = keras.Input((4, 4))
    m = keras.Model(inp, keras.layers.Softmax()(keras.layers.Flatten()(inp)), name="no_weights")
    with pytest.raises(PruningError, match="no prunable layers.*Dense") as e:
        prune.prune_magnitude(m, 0.5)
    assert "Flatten" in str(e.value) and isinstance(e.value, LabkitError)
    with pytest.raises(PruningError, match="no prunable layers"):
        prune.sparsity_report(m)


def test_mask_is_kept_through_retraining(trained, digits):
    x, y, xt, yt = digits
    pruned = prune.prune_magnitude(trained, 0.7)
    zeros_before = pruned.get_layer("dense_1").kernel.numpy() == 0
    before = pruned.get_layer("dense_1").kernel.numpy().copy()
    prune.fine_tune_pruned(pruned, x, y, epochs=2, seed=0)
    after = pruned.get_layer("dense_1").kernel.numpy()
    assert np.array_equal(after == 0, zeros_before)  # exactly the same weights are zero
    assert not np.array_equal(after, before)  # and the others did train
    assert prune.overall_sparsity(pruned) == pytest.approx(0.7, abs=1e-3)
    assert _acc(pruned, xt, yt) > 0.6


def test_iterative_pruning_table_and_snapshots(trained, digits):
    x, y, xt, yt = digits
    seen = []
    final, table = prune.prune_iteratively(trained, x, y, [0.7, 0.4], epochs=1, evaluate=(xt, yt),
                                           callback=lambda s, m: seen.append((s, prune.overall_sparsity(m))))
    assert table["sparsity"].tolist() == [0.4, 0.7]  # ascending, whatever the order given
    assert [s for s, _ in seen] == [0.4, 0.7]
    assert [round(v, 3) for _, v in seen] == [0.4, 0.7]
    assert (table["accuracy"] > 0.6).all()
    assert prune.overall_sparsity(final) == pytest.approx(0.7, abs=1e-3)
    with pytest.raises(PruningError, match="at least one sparsity"):
        prune.prune_iteratively(trained, x, y, [], epochs=1)


@pytest.mark.parametrize("steps", [3, 45, 100, 333, 1000])
def test_polynomial_schedule_reaches_the_target(steps):
    sched = prune.polynomial_schedule(0.8, steps)
    cfg = sched.get_config()["config"]
    assert cfg["end_step"] <= steps
    assert (cfg["end_step"] - cfg["begin_step"]) % cfg["frequency"] == 0
    assert prune.schedule_final_sparsity(sched, steps) == pytest.approx(0.8)


def test_tfmots_default_frequency_trap_is_detected(trained, digits):
    import tensorflow_model_optimization as tfmot

    x, y, _, _ = digits
    steps = int(np.ceil(len(x) / 32))  # one epoch: 45 steps, fewer than the default frequency of 100
    naive = tfmot.sparsity.keras.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=steps)
    assert prune.schedule_final_sparsity(naive, steps) == 0.0
    uneven = tfmot.sparsity.keras.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=250, frequency=100)
    assert 0.0 < prune.schedule_final_sparsity(uneven, 300) < 0.8
    with pytest.raises(PruningError, match="stops at 0.0% sparsity.*multiple of the frequency"):
        prune.prune_with_schedule(trained, x, y, 0.8, epochs=1, schedule=naive)
    with pytest.raises(PruningError, match="no room to prune"):
        prune.polynomial_schedule(0.8, 1, end_fraction=0.3)


def test_gradual_pruning_with_tfmot_reaches_the_target_and_strips(trained, digits):
    x, y, xt, yt = digits
    pruned = prune.prune_with_schedule(trained, x, y, 0.7, epochs=3, seed=0)
    assert not any(type(l).__name__ == "PruneLowMagnitude" for l in pruned.layers)
    for _, row in prune.sparsity_report(pruned).iterrows():
        assert row["sparsity"] == pytest.approx(0.7, abs=0.01)
    assert _acc(pruned, xt, yt) > 0.85
    assert prune.overall_sparsity(trained) == 0.0  # tfmot shares layers: labkit prunes a copy


def test_strip_keeps_zeros_and_wrapped_model_can_be_stripped(trained, digits):
    x, y, _, _ = digits
    wrapped = prune.prune_with_schedule(trained, x, y, 0.5, epochs=1, strip_wrappers=False)
    assert any(type(l).__name__ == "PruneLowMagnitude" for l in wrapped.layers)
    stripped = prune.strip(wrapped)
    assert not any(type(l).__name__ == "PruneLowMagnitude" for l in stripped.layers)
    assert prune.overall_sparsity(stripped) == pytest.approx(0.5, abs=0.01)
    assert prune.strip(trained) is trained


def test_stripped_pruned_model_converts_and_compresses(trained, digits):
    from labkit import reference
    from labkit.compress.quantize import evaluate_tflite, to_int8_tflite

    x, y, xt, yt = digits
    pruned = prune.prune_with_schedule(trained, x, y, 0.7, epochs=3, seed=0)
    dense_tfl, pruned_tfl = to_int8_tflite(trained, x), to_int8_tflite(pruned, x)
    (inp,), (out,) = reference.io_details(pruned_tfl)
    assert inp.dtype == np.int8 and out.dtype == np.int8 and inp.shape[0] == 1
    assert len(pruned_tfl) == len(dense_tfl)  # the zeros are stored: same size ...
    assert len(gzip.compress(pruned_tfl)) < 0.8 * len(gzip.compress(dense_tfl))  # ... but they compress
    assert evaluate_tflite(pruned_tfl, xt, yt) > 0.85


def test_keep_masks_refuses_unknown_weights(trained, digits):
    x, y, _, _ = digits
    m = prune.prune_magnitude(trained, 0.5)
    with pytest.raises(PruningError, match="unknown weights"):
        prune.fine_tune_pruned(m, x[:64], y[:64], epochs=1, masks={"nope/kernel": np.ones(3, bool)})
