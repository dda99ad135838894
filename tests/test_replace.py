"""Layer replacement (closed-form init, exact at full rank), int8 bit-exactness, and the annealing search."""

import numpy as np
import pytest

import labkit  # noqa: F401  (tf_keras first)


@pytest.fixture(scope="module")
def small_cnn():
    from labkit import models, train

    train.set_seed(0)
    return models.cnn((8, 8, 1), 10, filters=(6, 8), dense=12)


@pytest.fixture(scope="module")
def probe_x():
    return np.random.default_rng(0).uniform(0, 1, (40, 8, 8, 1)).astype(np.float32)


@pytest.mark.parametrize("layer,kind", [("conv_2", "separable"), ("conv_2", "bottleneck"), ("conv_2", "spatial"),
                                        ("conv_1", "separable"), ("conv_1", "spatial"), ("dense", "lowrank")])
def test_full_rank_replacement_is_exact(small_cnn, probe_x, layer, kind):
    from labkit.compress.replace import full_rank, replace_layers

    by_name = {l.name: l for l in small_cnn.layers}
    r = replace_layers(small_cnn, {layer: (kind, full_rank(by_name[layer], kind))})
    assert r.replaced == {layer: (kind, full_rank(by_name[layer], kind))} and not r.kept
    assert len(r.groups[layer]) >= 2  # really a sub-network
    np.testing.assert_allclose(r.model.predict(probe_x, verbose=0), small_cnn.predict(probe_x, verbose=0), atol=2e-6)


def _relative_error(kernel, kind, rank):
    from labkit.compress import replace as rp

    if kind == "lowrank":
        a, b = rp.lowrank_factors(kernel, rank)
        approx = a @ b
    elif kind == "separable":
        dw, pw = rp.separable_factors(kernel, rank)
        kh, kw, ci, co = kernel.shape
        approx = np.einsum("hwcj,cjo->hwco", dw, pw.reshape(ci, rank, co))
    elif kind == "spatial":
        v, h = rp.spatial_factors(kernel, rank)
        approx = np.einsum("hcr,wro->hwco", v[:, 0], h[0])
    else:
        red, core, exp = rp.bottleneck_factors(kernel, rank)
        approx = np.einsum("ia,hwab,bo->hwio", red[0, 0], core, exp[0, 0])
    return float(np.linalg.norm(approx - kernel) / np.linalg.norm(kernel))


@pytest.mark.parametrize("kind,shape", [("lowrank", (40, 24)), ("separable", (3, 3, 5, 12)),
                                        ("spatial", (3, 3, 5, 7)), ("bottleneck", (3, 3, 6, 8))])
def test_error_falls_as_rank_rises(kind, shape):
    from labkit.compress.replace import full_rank

    kernel = np.random.default_rng(3).normal(size=shape).astype(np.float32)

    class Fake:  # full_rank reads the kernel's shape only
        pass

    fake = Fake()
    fake.kernel = kernel
    top = full_rank(fake, kind)
    errors = [_relative_error(kernel, kind, r) for r in range(1, top + 1)]
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    assert errors[0] > 0.3 and errors[-1] < 1e-5


def test_int8_bit_exact_on_host_for_every_replacement(small_cnn, probe_x):
    from labkit.compress.quantize import to_int8_tflite
    from labkit.compress.replace import replace_layers
    from labkit.verify import verify

    plans = [{"conv_1": ("spatial", 2), "conv_2": ("separable", 2), "dense": ("lowrank", 3)},
             {"conv_1": ("width", 0.5), "conv_2": ("bottleneck", 3), "dense": ("width", 0.25)}]
    for plan in plans:
        r = replace_layers(small_cnn, plan)
        assert r.replaced == plan and not r.kept
        report = verify(to_int8_tflite(r.model, probe_x), samples=20, target="host")
        assert report.bit_exact, plan


def test_replaced_model_on_cortex_m4_bit_exact(small_cnn, probe_x):
    from labkit.compress.quantize import to_int8_tflite
    from labkit.compress.replace import replace_layers
    from labkit.verify import verify

    r = replace_layers(small_cnn, {"conv_1": ("bottleneck", 3), "conv_2": ("separable", 1), "dense": ("lowrank", 2)})
    after = verify(to_int8_tflite(r.model, probe_x), samples=3, target="cortex-m4", references=("tflm",))
    assert after.bit_exact and after.metrics["flash_bytes"] > 0
    # on a model this small the depthwise kernel's code outweighs the weights saved: flash is measured, not assumed


def test_unknown_layers_kept_and_listed(probe_x):
    from labkit.compress.replace import ReplacementError, layer_report, replace_layers
    from labkit.keras import keras

    m = keras.Sequential([keras.Input((8, 8)), keras.layers.Conv1D(6, 3, name="c1d"),
                          keras.layers.LSTM(5, name="lstm"), keras.layers.Dense(10, name="out"),
                          keras.layers.Softmax(name="probabilities")])
    r = replace_layers(m, {"c1d": ("separable", 2), "lstm": ("lowrank", 2), "out": ("width", 0.5)})
    kept = {name: why for name, _, why in r.kept}
    assert set(kept) == {"c1d", "lstm", "out"}
    assert "Conv2D layers, not a Conv1D" in kept["c1d"] and "classifier" in kept["out"]
    assert not r.replaced
    x = probe_x[..., 0]
    np.testing.assert_array_equal(r.model.predict(x, verbose=0), m.predict(x, verbose=0))
    assert list(layer_report(m, r)["replacement"][:3]) == ["kept"] * 3
    with pytest.raises(ReplacementError, match="no layer named 'nope'"):
        replace_layers(m, {"nope": ("lowrank", 2)})
    with pytest.raises(ReplacementError, match="must be one of keep, separable"):
        replace_layers(m, {"out": ("tucker", 2)})
    with pytest.raises(ReplacementError, match="whole number >= 1"):
        replace_layers(m, {"out": ("lowrank", 0)})


def test_layer_report_counts(small_cnn):
    from labkit.compress.replace import layer_report, replace_layers

    r = replace_layers(small_cnn, {"dense": ("lowrank", 4)})
    t = layer_report(small_cnn, r).set_index("layer")
    n_in = 2 * 2 * 8
    assert t.loc["dense", "params after"] == n_in * 4 + 4 * 12 + 12
    assert t.loc["dense", "MACs after"] == n_in * 4 + 4 * 12
    assert t.loc["dense", "kind after"] == "Dense + Dense"
    assert t.loc["total (weight layers)", "params after"] == r.model.count_params()


@pytest.fixture(scope="module")
def digits_cnn(digits):
    from labkit import models, train

    x, y = digits[0][..., None], digits[1]
    train.set_seed(0)
    m = models.cnn((8, 8, 1), 10, filters=(8, 16), dense=32)
    train.fit_classifier(m, x, y, epochs=6, learning_rate=3e-3, seed=0)
    return m


def test_anneal_meets_the_budget_and_repeats(digits, digits_cnn):
    from labkit.compress.anneal import Budget, anneal

    x, y, xt, yt = digits[0][..., None][:400], digits[1][:400], digits[2][..., None][:200], digits[3][:200]
    budget = Budget("params", 1500)
    kw = dict(steps=4, epochs=1, learning_rate=3e-3, seed=5, start_probes=2)
    a = anneal(digits_cnn, x, y, xt, yt, budget, **kw)
    b = anneal(digits_cnn, x, y, xt, yt, budget, **kw)
    assert a.plan == b.plan and a.accuracy == b.accuracy and a.history == b.history  # seeded
    assert a.cost <= 1500 and a.plan
    assert len(a.history) == 4 and {"accepted", "temperature", "cost"} <= set(a.history[0])
    # the schedule: a layer's temperature falls after an accepted move, rises after a rejected one
    for h in a.history:
        later = [g for g in a.history if g["layer"] == h["layer"] and g["step"] > h["step"]]
        if later:
            ratio = later[0]["temperature"] / h["temperature"]
            assert ratio == pytest.approx(0.7 if h["accepted"] else 1.5, rel=1e-3) or \
                later[0]["temperature"] in (0.001, 0.2)


def test_anneal_budget_that_cannot_be_met(digits, digits_cnn):
    from labkit.compress.anneal import Budget, BudgetError, anneal

    x, y = digits[0][..., None][:100], digits[1][:100]
    with pytest.raises(BudgetError, match=r"params budget of 50 parameters cannot be met: the smallest model the "
                                          r"replacements reach takes [\d,]+ parameters"):
        anneal(digits_cnn, x, y, x, y, Budget("params", 50), steps=1)


def test_distilled_fine_tune_recovers_accuracy(digits, digits_cnn):
    from labkit.compress.replace import fine_tune_replaced, replace_layers
    from labkit.train import accuracy

    x, y, xt, yt = digits[0][..., None], digits[1], digits[2][..., None], digits[3]
    r = replace_layers(digits_cnn, {"conv_2": ("separable", 1), "dense": ("lowrank", 4)})
    before = accuracy(r.model, xt, yt)
    fine_tune_replaced(r.model, digits_cnn, x, y, epochs=2, learning_rate=3e-3)
    assert accuracy(r.model, xt, yt) > before
