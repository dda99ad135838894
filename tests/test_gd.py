"""Tests for labkit.course.gd: the line's cost and gradient, batch / mini-batch / SGD paths, the bumpy landscape."""

from __future__ import annotations

import numpy as np
import pytest

from labkit.course import gd
from labkit.datasets import noisy_line
from labkit.errors import LabkitError


@pytest.fixture(scope="module")
def line():
    ds = noisy_line(n=50, slope=2.0, offset=1.0, noise=0.5, x_range=(0.0, 2.0), seed=0)
    return ds.x[:, 0].astype(np.float64), ds.y.astype(np.float64)


def test_mse_and_predict(line):
    x, y = line
    assert gd.mse(x, y, 2.0, 1.0) == pytest.approx(np.mean((2 * x + 1 - y) ** 2))
    assert np.allclose(gd.predict(x, 2.0, 1.0), 2 * x + 1)
    # (n, 1) features, as the data set stores them, give the same cost
    assert gd.mse(x[:, None], y, 2.0, 1.0) == pytest.approx(gd.mse(x, y, 2.0, 1.0))


def test_mse_zero_on_exact_line():
    x = np.linspace(0, 1, 11)
    assert gd.mse(x, 3 * x - 2, 3.0, -2.0) == pytest.approx(0.0)
    assert gd.mse_grad(x, 3 * x - 2, 3.0, -2.0) == pytest.approx((0.0, 0.0))


@pytest.mark.parametrize("point", [(0.0, 0.0), (4.0, -1.0), (-1.0, 3.5), (2.13, 0.88)])
def test_gradient_matches_finite_differences(line, point):
    x, y = line
    w, b = point
    eps = 1e-6
    numeric = (
        (gd.mse(x, y, w + eps, b) - gd.mse(x, y, w - eps, b)) / (2 * eps),
        (gd.mse(x, y, w, b + eps) - gd.mse(x, y, w, b - eps)) / (2 * eps),
    )
    assert gd.mse_grad(x, y, w, b) == pytest.approx(numeric, rel=1e-6, abs=1e-8)


def test_cost_grid_orientation_and_values(line):
    x, y = line
    slopes, offsets = np.array([0.0, 1.0, 2.0]), np.array([-1.0, 1.0])
    grid = gd.cost_grid(x, y, slopes, offsets)
    assert grid.shape == (2, 3)  # (offsets, slopes), as plt.contour(slopes, offsets, grid) expects
    assert grid[1, 2] == pytest.approx(gd.mse(x, y, 2.0, 1.0))
    assert grid[0, 0] == pytest.approx(gd.mse(x, y, 0.0, -1.0))


def test_closed_form_matches_polyfit_and_zero_gradient(line):
    x, y = line
    slope, offset = gd.closed_form(x, y)
    assert (slope, offset) == pytest.approx(tuple(np.polyfit(x, y, 1)), rel=1e-10)
    assert gd.mse_grad(x, y, slope, offset) == pytest.approx((0.0, 0.0), abs=1e-10)


def test_closed_form_needs_spread():
    with pytest.raises(LabkitError, match="spread"):
        gd.closed_form(np.ones(5), np.arange(5.0))


def test_hessian_and_stable_learning_rate(line):
    x, y = line
    h = gd.hessian(x)
    assert np.allclose(h, h.T)
    limit = gd.max_stable_lr(x)
    assert limit == pytest.approx(2 / np.linalg.eigvalsh(h)[-1])
    # just below the limit converges, just above it diverges
    assert not gd.gradient_descent(x, y, lr=0.95 * limit, steps=300).diverged
    assert gd.gradient_descent(x, y, lr=1.05 * limit, steps=300).diverged


def test_batch_descent_converges_to_closed_form(line):
    x, y = line
    path = gd.gradient_descent(x, y, lr=0.3, steps=300, start=(-0.5, 3.5))
    assert (path.slope, path.offset) == pytest.approx(gd.closed_form(x, y), abs=1e-6)
    assert path.params.shape == (301, 2) and path.cost.shape == (301,)
    assert tuple(path.params[0]) == (-0.5, 3.5)
    assert np.all(np.diff(path.cost) <= 1e-12)  # a stable learning rate never increases the cost
    assert path.samples_seen[-1] == 300 * len(x)
    assert path.epochs[-1] == pytest.approx(300)


def test_batch_step_is_the_update_rule(line):
    x, y = line
    path = gd.gradient_descent(x, y, lr=0.1, steps=1, start=(1.0, 2.0))
    g = gd.mse_grad(x, y, 1.0, 2.0)
    assert path.params[1] == pytest.approx((1.0 - 0.1 * g[0], 2.0 - 0.1 * g[1]))


def test_learning_rate_too_small_and_too_large(line):
    x, y = line
    best = gd.mse(x, y, *gd.closed_form(x, y))
    small = gd.gradient_descent(x, y, lr=0.01, steps=100, start=(-0.5, 3.5))
    right = gd.gradient_descent(x, y, lr=0.3, steps=100, start=(-0.5, 3.5))
    large = gd.gradient_descent(x, y, lr=0.5, steps=100, start=(-0.5, 3.5))
    assert small.final_cost - best > 0.01
    assert right.final_cost - best < 1e-3
    assert large.diverged and not right.diverged and not small.diverged


def test_huge_learning_rate_overflows_to_inf_without_warning(line):
    x, y = line
    with np.errstate(all="raise"):
        path = gd.gradient_descent(x, y, lr=10.0, steps=2000)
    assert path.diverged and np.isinf(path.final_cost)


@pytest.mark.parametrize("batch_size, updates_per_epoch", [(1, 50), (10, 5), (7, 8), (50, 1)])
def test_minibatch_counts_and_coverage(line, batch_size, updates_per_epoch):
    x, y = line
    path = gd.gradient_descent(x, y, lr=0.05, epochs=3, batch_size=batch_size, seed=1)
    assert len(path) - 1 == 3 * updates_per_epoch
    assert path.samples_seen[-1] == 3 * len(x)  # every sample used once per epoch
    assert path.epochs[-1] == pytest.approx(3.0)


def test_minibatch_epoch_equals_explicit_loop(line):
    x, y = line
    rng = np.random.default_rng(5)
    order = rng.permutation(len(x))
    w, b = 0.0, 0.0
    for first in range(0, len(x), 10):
        idx = order[first:first + 10]
        gw, gb = gd.mse_grad(x[idx], y[idx], w, b)
        w, b = w - 0.05 * gw, b - 0.05 * gb
    path = gd.gradient_descent(x, y, lr=0.05, epochs=1, batch_size=10, seed=5)
    assert path.params[-1] == pytest.approx((w, b), rel=1e-12)


def test_seeded_paths_repeat_and_seeds_differ(line):
    x, y = line
    a = gd.gradient_descent(x, y, lr=0.05, epochs=2, batch_size=1, seed=3)
    b = gd.gradient_descent(x, y, lr=0.05, epochs=2, batch_size=1, seed=3)
    c = gd.gradient_descent(x, y, lr=0.05, epochs=2, batch_size=1, seed=4)
    assert np.array_equal(a.params, b.params)
    assert not np.array_equal(a.params, c.params)


def test_sgd_reaches_the_neighbourhood_faster_per_epoch(line):
    x, y = line
    best = gd.mse(x, y, *gd.closed_form(x, y))
    batch = gd.gradient_descent(x, y, lr=0.05, epochs=10, start=(-0.5, 3.5))
    sgd = gd.gradient_descent(x, y, lr=0.05, epochs=10, batch_size=1, start=(-0.5, 3.5))
    assert sgd.final_cost - best < batch.final_cost - best


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 51}, "batch_size"),
        ({"lr": 0.0}, "learning rate"),
        ({"steps": 5, "epochs": 1}, "not both"),
        ({"steps": -1}, "steps"),
    ],
)
def test_gradient_descent_rejects_bad_arguments(line, kwargs, message):
    x, y = line
    with pytest.raises(LabkitError, match=message):
        gd.gradient_descent(x, y, **kwargs)


def test_shape_mismatch_is_explained():
    with pytest.raises(LabkitError, match="one feature"):
        gd.mse(np.ones((4, 2)), np.ones(4), 1.0, 0.0)
    with pytest.raises(LabkitError, match="one feature"):
        gd.mse(np.ones(4), np.ones(5), 1.0, 0.0)


def test_path_repr_is_short_and_rounded(line):
    x, y = line
    text = repr(gd.gradient_descent(x, y, lr=0.3, steps=10))
    assert text.startswith("Path(updates=10, lr=0.3, batch_size=50, slope=")
    assert "array" not in text


# --- the bumpy landscape ------------------------------------------------------------------------


def test_bumpy_stationary_points():
    for point in (gd.BUMPY_SADDLE, *gd.BUMPY_MINIMA):
        assert gd.bumpy_grad(*point) == pytest.approx([0.0, 0.0], abs=1e-12)
    (g1, _), (l1, _) = gd.BUMPY_MINIMA
    assert g1 < gd.BUMPY_SADDLE[0] < l1
    assert gd.bumpy_cost(*gd.BUMPY_MINIMA[0]) < gd.bumpy_cost(*gd.BUMPY_MINIMA[1]) < gd.bumpy_cost(*gd.BUMPY_SADDLE)
    # the saddle: a maximum along w1, a minimum along w2
    s1, s2 = gd.BUMPY_SADDLE
    assert gd.bumpy_cost(s1 + 0.1, s2) < gd.bumpy_cost(s1, s2) > gd.bumpy_cost(s1 - 0.1, s2)
    assert gd.bumpy_cost(s1, s2 + 0.1) > gd.bumpy_cost(s1, s2)


def test_bumpy_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    eps = 1e-6
    for w1, w2 in rng.uniform(-2, 2, (10, 2)):
        numeric = [
            (gd.bumpy_cost(w1 + eps, w2) - gd.bumpy_cost(w1 - eps, w2)) / (2 * eps),
            (gd.bumpy_cost(w1, w2 + eps) - gd.bumpy_cost(w1, w2 - eps)) / (2 * eps),
        ]
        assert gd.bumpy_grad(w1, w2) == pytest.approx(numeric, rel=1e-6, abs=1e-8)


def test_descend_stalls_at_saddle_and_noise_escapes():
    start = (gd.BUMPY_SADDLE[0], 1.8)
    plain = gd.descend(gd.bumpy_grad, start, lr=0.05, steps=300)
    assert plain.shape == (301, 2)
    assert plain[-1] == pytest.approx(gd.BUMPY_SADDLE, abs=1e-6)
    noisy = gd.descend(gd.bumpy_grad, start, lr=0.05, steps=300, noise=1.0, seed=1)
    assert abs(noisy[-1, 0] - gd.BUMPY_SADDLE[0]) > 0.5


def test_descend_from_local_minimum_stays_without_noise_and_annealing_settles():
    local = gd.BUMPY_MINIMA[1]
    assert gd.descend(gd.bumpy_grad, local, lr=0.1, steps=100)[-1] == pytest.approx(local)
    ends = np.array([gd.descend(gd.bumpy_grad, local, lr=0.1, steps=300, noise=5.0, anneal=True, seed=s)[-1]
                     for s in range(20)])
    assert np.all(np.isfinite(ends))
    assert np.sum(ends[:, 0] < gd.BUMPY_SADDLE[0]) >= 12  # the lesson's exercise relies on this
    # annealed noise ends at zero, so the final steps settle in a valley
    assert np.all(np.abs(ends[:, 1]) < 0.3)


def test_descend_rejects_bad_arguments():
    with pytest.raises(LabkitError):
        gd.descend(gd.bumpy_grad, (0, 0), lr=0)
    with pytest.raises(LabkitError):
        gd.descend(gd.bumpy_grad, (0, 0), noise=-1)
