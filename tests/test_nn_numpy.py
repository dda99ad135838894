"""Tests for labkit.course.nn_numpy: forward and back-propagation against finite differences and TensorFlow."""

from __future__ import annotations

import numpy as np
import pytest

from labkit.course import nn_numpy as nn
from labkit.errors import LabkitError


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(12, 3)), rng.normal(size=12)


# --- activations -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(nn.ACTIVATIONS))
def test_activation_derivatives_match_finite_differences(name):
    f, df = nn.get_activation(name)
    z = np.linspace(-4, 4, 81) + 0.013  # keep away from z = 0, where ReLU's derivative jumps
    eps = 1e-6
    assert np.allclose(df(z), (f(z + eps) - f(z - eps)) / (2 * eps), rtol=1e-5, atol=1e-6)


def test_activation_values():
    z = np.array([-2.0, 0.5])
    assert np.allclose(nn.ACTIVATIONS["relu"][0](z), [0.0, 0.5])
    assert np.allclose(nn.ACTIVATIONS["leaky_relu"][0](z), [-2.0 * nn.LEAKY_SLOPE, 0.5])
    assert np.allclose(nn.ACTIVATIONS["sigmoid"][0](np.array([0.0, -1000.0, 1000.0])), [0.5, 0.0, 1.0])


def test_unknown_activation_lists_choices():
    with pytest.raises(LabkitError, match="relu"):
        nn.get_activation("relu6")


# --- init, forward ----------------------------------------------------------------------------


def test_init_shapes_and_seed():
    p = nn.init_params((3, 5, 2), seed=1)
    assert [(w.shape, b.shape) for w, b in p] == [((3, 5), (5,)), ((5, 2), (2,))]
    q = nn.init_params((3, 5, 2), seed=1)
    assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(p, q))
    g = nn.init_params((3, 5, 2), seed=1, init="glorot", bias_scale=0)
    assert all(np.all(b == 0) for _, b in g)
    assert np.abs(g[0][0]).max() <= np.sqrt(6 / 8)


@pytest.mark.parametrize("sizes", [(3,), (0, 2), ()])
def test_init_rejects_bad_sizes(sizes):
    with pytest.raises(LabkitError):
        nn.init_params(sizes)


def test_forward_is_relu_of_affine(data):
    x, _ = data
    (w1, b1), (w2, b2) = p = nn.init_params((3, 4, 1), seed=2)
    out, cache = nn.forward(p, x)
    assert np.allclose(out, np.maximum(x @ w1 + b1, 0) @ w2 + b2)
    assert len(cache) == 2 and cache[1][0].shape == (12, 4)


def test_forward_wrong_input_width_is_explained():
    with pytest.raises(LabkitError, match="3 input feature"):
        nn.forward(nn.init_params((3, 2)), np.ones((4, 2)))


def test_one_dimensional_input_is_a_column():
    p = nn.init_params((1, 4, 1), seed=0)
    assert np.allclose(nn.predict(p, np.linspace(0, 1, 5)), nn.predict(p, np.linspace(0, 1, 5)[:, None]))


# --- backward ---------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", sorted(nn.ACTIVATIONS))
def test_backward_matches_finite_differences(data, activation):
    x, y = data
    p = nn.init_params((3, 5, 4, 1), seed=3)
    _, grads = nn.loss_and_grads(p, x, y, activation)
    assert nn.max_abs_diff(grads, nn.numerical_grads(p, x, y, activation)) < 1e-6


def test_softmax_cross_entropy_gradient(data):
    x, _ = data
    y = np.arange(12) % 3
    p = nn.init_params((3, 6, 3), seed=4)
    loss, grads = nn.loss_and_grads(p, x, y, "tanh", loss="softmax_cross_entropy")
    assert loss > 0
    assert nn.max_abs_diff(grads, nn.numerical_grads(p, x, y, "tanh", loss="softmax_cross_entropy")) < 1e-6


def test_softmax_cross_entropy_rejects_bad_labels():
    with pytest.raises(LabkitError, match="label"):
        nn.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3]))


def test_mae_loss_gradient_is_sign():
    loss, d = nn.mae_loss(np.array([[1.0], [-2.0]]), np.array([0.0, 0.0]))
    assert loss == pytest.approx(1.5)
    assert np.allclose(d, [[0.5], [-0.5]])


def test_unknown_loss():
    with pytest.raises(LabkitError, match="mse"):
        nn.loss_and_grads(nn.init_params((1, 1)), np.ones(2), np.ones(2), loss="hinge")


def test_max_abs_diff_checks_shapes():
    p = nn.init_params((2, 3, 1))
    q = nn.init_params((2, 4, 1))
    with pytest.raises(LabkitError):
        nn.max_abs_diff(p, q)
    assert nn.max_abs_diff(p, p) == 0.0


# --- against TensorFlow -----------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "leaky_relu", "elu", "softplus", "swish"])
def test_gradients_match_tensorflow(data, activation):
    x, y = data
    p = nn.init_params((3, 5, 4, 1), seed=5)
    loss, grads = nn.loss_and_grads(p, x, y, activation)
    tf_loss, tf_grads = nn.tf_gradients(p, x, y, activation)
    assert loss == pytest.approx(tf_loss, rel=1e-12)
    assert nn.max_abs_diff(grads, tf_grads) < 1e-6


def test_classification_gradients_match_tensorflow(data):
    x, _ = data
    y = np.arange(12) % 3
    p = nn.init_params((3, 6, 3), seed=6)
    loss, grads = nn.loss_and_grads(p, x, y, loss="softmax_cross_entropy")
    tf_loss, tf_grads = nn.tf_gradients(p, x, y, loss="softmax_cross_entropy")
    assert loss == pytest.approx(tf_loss, rel=1e-12)
    assert nn.max_abs_diff(grads, tf_grads) < 1e-6


def test_keras_round_trip(data):
    x, _ = data
    p = nn.init_params((3, 4, 2), seed=7)
    model = nn.to_keras(p, "relu")
    assert np.allclose(model.predict(x, verbose=0), nn.predict(p, x), atol=1e-12)
    back = nn.from_keras(model)
    assert nn.max_abs_diff(p, back) == 0.0


def test_from_keras_rejects_non_dense():
    from labkit.keras import keras

    model = keras.Sequential([keras.Input((4, 1)), keras.layers.Conv1D(2, 2), keras.layers.Flatten()])
    with pytest.raises(LabkitError, match="Dense"):
        nn.from_keras(model)


# --- kinks, activation pattern ------------------------------------------------------------------


def test_kinks_of_a_single_hidden_unit_is_its_hinge():
    p = [(np.array([[2.0]]), np.array([-1.0])), (np.array([[1.0]]), np.array([0.0]))]  # relu(2x - 1)
    k = nn.kinks(p, np.linspace(-1, 1, 2001))
    assert k == pytest.approx([0.5], abs=1e-3)


def test_network_is_linear_between_kinks():
    p = nn.init_params((1, 8, 8, 1), seed=8)
    grid = np.linspace(-3, 3, 3001)
    k = nn.kinks(p, grid)
    assert 0 < len(k) <= 8 + 8 * 9  # at most: one per unit of layer 1, more from layer 2
    y = nn.predict(p, grid)[:, 0]
    edges = np.r_[grid[0], k, grid[-1]]
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (grid > lo + 0.01) & (grid < hi - 0.01)
        if sel.sum() >= 3:
            slope = np.diff(y[sel]) / np.diff(grid[sel])
            assert np.allclose(slope, slope[0], atol=1e-8)


def test_activation_pattern_shape_and_grid_order():
    p = nn.init_params((1, 5, 3, 1), seed=9)
    assert nn.activation_pattern(p, np.linspace(0, 1, 7)).shape == (7, 8)
    assert nn.activation_pattern(nn.init_params((1, 1)), np.ones(3)).shape == (3, 0)
    with pytest.raises(LabkitError, match="sorted"):
        nn.kinks(p, np.array([0.0, 2.0, 1.0]))


# --- dropout ------------------------------------------------------------------------------------


def test_dropout_training_and_inference():
    a = np.full((400, 500), 3.0)
    out = nn.dropout(a, 0.25, np.random.default_rng(0))
    assert np.mean(out == 0) == pytest.approx(0.25, abs=0.01)
    assert np.unique(out[out != 0]) == pytest.approx([4.0])
    assert out.mean() == pytest.approx(3.0, rel=0.02)
    assert np.array_equal(nn.dropout(a, 0.25, training=False), a)
    assert np.array_equal(nn.dropout(a, 0.0, np.random.default_rng(0)), a)
    with pytest.raises(LabkitError):
        nn.dropout(a, 1.0)


def test_backward_with_dropout_masks_the_gradient(data):
    x, y = data
    p = nn.init_params((3, 6, 1), seed=10)
    out, cache = nn.forward(p, x, dropout_rate=0.5, rng=np.random.default_rng(0))
    mask = cache[0][2]
    assert set(np.unique(mask)) <= {0.0, 2.0}
    _, dout = nn.mse_loss(out, y)
    grads = nn.backward(p, cache, dout)
    dropped_everywhere = np.all(mask == 0, axis=0)  # units dropped for every sample get no gradient
    assert np.all(grads[0][0][:, dropped_everywhere] == 0)


# --- fit -----------------------------------------------------------------------------------------


def test_fit_matches_keras_adam_step_for_step():
    from labkit.keras import keras
    from labkit.train import set_seed

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 6, (20, 1)).astype(np.float32)
    y = np.sin(x[:, 0]).astype(np.float32)
    set_seed(0)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    start = nn.from_keras(model)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    model.fit(x, y, epochs=20, batch_size=20, shuffle=False, verbose=0)
    params, history = nn.fit(start, x, y, epochs=20, lr=0.01)
    assert np.allclose(model.predict(x, verbose=0), nn.predict(params, x), atol=1e-4)
    assert len(history["loss"]) == 20


def test_fit_sgd_is_plain_gradient_descent(data):
    x, y = data
    p = nn.init_params((3, 4, 1), seed=11)
    new, _ = nn.fit(p, x, y, epochs=1, lr=0.1, optimizer="sgd")
    _, grads = nn.loss_and_grads(p, x, y)
    expected = [(w - 0.1 * dw, b - 0.1 * db) for (w, b), (dw, db) in zip(p, grads)]
    assert nn.max_abs_diff(new, expected) < 1e-12


def test_fit_does_not_change_its_input_and_is_seeded(data):
    x, y = data
    p = nn.init_params((3, 4, 1), seed=12)
    before = [(w.copy(), b.copy()) for w, b in p]
    a, _ = nn.fit(p, x, y, epochs=5, dropout_rate=0.3, batch_size=4, seed=1)
    b, _ = nn.fit(p, x, y, epochs=5, dropout_rate=0.3, batch_size=4, seed=1)
    assert nn.max_abs_diff(p, before) == 0.0
    assert nn.max_abs_diff(a, b) == 0.0


def test_fit_l2_shrinks_weights_and_reports_validation(data):
    x, y = data
    p = nn.init_params((3, 16, 1), seed=13)
    plain, _ = nn.fit(p, x, y, epochs=300, lr=0.01)
    ridge, hist = nn.fit(p, x, y, epochs=300, lr=0.01, l2=0.05, validation_data=(x, y))
    norm = lambda q: sum(float(np.sum(w**2)) for w, _ in q)  # noqa: E731
    assert norm(ridge) < norm(plain)
    assert len(hist["val_mse"]) == 300
    assert hist["val_mse"][-1] == pytest.approx(nn.mse_loss(nn.predict(ridge, x), y)[0])
    # the reported loss includes the penalty
    assert hist["loss"][-1] > nn.mse_loss(nn.predict(ridge, x), y)[0]


def test_fit_learns_a_sine():
    x = np.linspace(0, 2 * np.pi, 40)[:, None]
    y = np.sin(x[:, 0])
    p = nn.init_params((1, 16, 16, 1), seed=0, init="glorot", bias_scale=0)
    trained, hist = nn.fit(p, x - np.pi, y, epochs=1500, lr=0.01)
    assert hist["loss"][-1] < 0.01 < hist["loss"][0]


@pytest.mark.parametrize(
    "kwargs", [{"loss": "softmax_cross_entropy"}, {"optimizer": "rmsprop"}, {"lr": 0}, {"batch_size": 0}, {"l2": -1}]
)
def test_fit_rejects_bad_arguments(data, kwargs):
    x, y = data
    with pytest.raises(LabkitError):
        nn.fit(nn.init_params((3, 2, 1)), x, y, epochs=1, **kwargs)
