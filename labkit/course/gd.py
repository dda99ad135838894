"""Gradient descent, written out in numpy: fitting ``y = slope * x + offset`` (lesson 02).

The model has two parameters, so every quantity can be printed and drawn: the mean-squared-error
cost over a grid of (slope, offset), its gradient, the path of the parameters under batch,
stochastic and mini-batch updates, and the closed-form answer they should converge to.

A second, made-up cost with two minima and a saddle point (:func:`bumpy_cost`) shows what
gradient descent and its noisy variant do on a landscape that is not a bowl (lesson 03).

Everything is float64 and seeded: the same call gives the same path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from labkit.errors import LabkitError

__all__ = [
    "Path",
    "predict",
    "mse",
    "mse_grad",
    "cost_grid",
    "closed_form",
    "hessian",
    "max_stable_lr",
    "gradient_descent",
    "bumpy_cost",
    "bumpy_grad",
    "BUMPY_SADDLE",
    "BUMPY_MINIMA",
    "descend",
]


def _xy(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flatten a (n,) or (n, 1) feature and a (n,) target to float64 vectors of the same length."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1 or len(x) != len(y) or len(x) == 0:
        raise LabkitError(
            f"gd works on one feature: x must have shape (n,) or (n, 1) and y shape (n,), "
            f"got x {np.shape(x)} and y {np.shape(y)}"
        )
    return x, y


def predict(x: np.ndarray, slope, offset) -> np.ndarray:
    """The model: ``slope * x + offset``."""
    return slope * np.asarray(x, dtype=np.float64) + offset


def mse(x: np.ndarray, y: np.ndarray, slope: float, offset: float) -> float:
    """Mean squared error ``mean((slope * x + offset - y) ** 2)``: the cost, as Keras's ``"mse"``."""
    x, y = _xy(x, y)
    return float(np.mean((slope * x + offset - y) ** 2))


def mse_grad(x: np.ndarray, y: np.ndarray, slope: float, offset: float) -> tuple[float, float]:
    """Gradient of :func:`mse`: ``(2 mean(err * x), 2 mean(err))`` with ``err = slope*x + offset - y``."""
    x, y = _xy(x, y)
    err = slope * x + offset - y
    return float(2 * np.mean(err * x)), float(2 * np.mean(err))


def cost_grid(
    x: np.ndarray, y: np.ndarray, slopes: np.ndarray, offsets: np.ndarray
) -> np.ndarray:
    """The cost at every (slope, offset) pair: shape ``(len(offsets), len(slopes))``.

    That orientation is what ``plt.contour(slopes, offsets, grid)`` expects.
    """
    x, y = _xy(x, y)
    s = np.asarray(slopes, dtype=np.float64)[None, :, None]
    o = np.asarray(offsets, dtype=np.float64)[:, None, None]
    return np.mean((s * x + o - y) ** 2, axis=-1)


def closed_form(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The least-squares line, solved exactly: ``slope = cov(x, y) / var(x)``, ``offset = ȳ - slope x̄``."""
    x, y = _xy(x, y)
    xm, ym = x.mean(), y.mean()
    var = np.mean((x - xm) ** 2)
    if var == 0:
        raise LabkitError("all x values are equal: no line is better than another, give x some spread")
    slope = np.mean((x - xm) * (y - ym)) / var
    return float(slope), float(ym - slope * xm)


def hessian(x: np.ndarray) -> np.ndarray:
    """Second derivatives of the MSE cost (constant for a line): ``2 [[mean x², mean x], [mean x, 1]]``."""
    x, _ = _xy(x, np.zeros(np.shape(x)[0]))
    return 2 * np.array([[np.mean(x * x), np.mean(x)], [np.mean(x), 1.0]])


def max_stable_lr(x: np.ndarray) -> float:
    """Batch gradient descent on the line converges for learning rates below ``2 / λ_max(H)``."""
    return float(2.0 / np.linalg.eigvalsh(hessian(x))[-1])


@dataclass(frozen=True)
class Path:
    """Where gradient descent went: one row per point visited, the start included.

    ``params[k]`` is ``(slope, offset)`` after ``k`` updates, ``cost[k]`` the cost on the *whole*
    data set there, and ``samples_seen[k]`` how many samples the first ``k`` updates used
    (divide by ``n`` for epochs).
    """

    params: np.ndarray
    cost: np.ndarray
    samples_seen: np.ndarray
    lr: float
    batch_size: int
    n_samples: int

    @property
    def epochs(self) -> np.ndarray:
        """Passes over the data after each update: ``samples_seen / n_samples``."""
        return self.samples_seen / self.n_samples

    @property
    def slope(self) -> float:
        return float(self.params[-1, 0])

    @property
    def offset(self) -> float:
        return float(self.params[-1, 1])

    @property
    def final_cost(self) -> float:
        return float(self.cost[-1])

    @property
    def diverged(self) -> bool:
        return not np.all(np.isfinite(self.cost)) or self.cost[-1] > 10 * self.cost[0] + 1e-12

    def __len__(self) -> int:
        return len(self.params)

    def __repr__(self) -> str:
        return (
            f"Path(updates={len(self) - 1}, lr={self.lr:g}, batch_size={self.batch_size}, "
            f"slope={self.slope:.4f}, offset={self.offset:.4f}, cost={self.final_cost:.4f})"
        )


def gradient_descent(
    x: np.ndarray,
    y: np.ndarray,
    lr: float = 0.1,
    steps: int | None = None,
    epochs: int | None = None,
    start: tuple[float, float] = (0.0, 0.0),
    batch_size: int | None = None,
    seed: int = 0,
) -> Path:
    """Fit the line by gradient descent: ``(slope, offset) -= lr * gradient``.

    - ``batch_size=None`` (or ``n``): **batch** gradient descent, the gradient of the whole data set;
    - ``batch_size=1``: **stochastic** gradient descent, one sample per update;
    - ``1 < batch_size < n``: **mini-batch**: the data are shuffled every epoch and cut into batches.

    Give either ``steps`` (number of updates) or ``epochs`` (passes over the data); the default
    is 100 updates. Costs that overflow are kept as ``inf`` rather than raising, so a learning
    rate that is too large shows up as a diverging path.
    """
    x, y = _xy(x, y)
    n = len(x)
    bs = n if batch_size is None else int(batch_size)
    if not 1 <= bs <= n:
        raise LabkitError(f"batch_size must be between 1 and the number of samples ({n}), got {batch_size}")
    if not lr > 0:
        raise LabkitError(f"the learning rate must be positive, got {lr}")
    if steps is not None and epochs is not None:
        raise LabkitError("give steps (updates) or epochs (passes over the data), not both")
    per_epoch = -(-n // bs)
    if epochs is not None:
        steps = int(epochs) * per_epoch
    elif steps is None:
        steps = 100
    if steps < 0:
        raise LabkitError(f"steps must be >= 0, got {steps}")

    rng = np.random.default_rng(seed)
    theta = np.array(start, dtype=np.float64)
    params = np.empty((steps + 1, 2))
    cost = np.empty(steps + 1)
    seen = np.zeros(steps + 1, dtype=np.int64)
    params[0] = theta
    order = np.arange(n)
    with np.errstate(over="ignore", invalid="ignore"):
        cost[0] = np.mean((theta[0] * x + theta[1] - y) ** 2)
        for k in range(steps):
            if bs == n:
                idx = order
            else:
                pos = k % per_epoch
                if pos == 0:
                    order = rng.permutation(n)
                idx = order[pos * bs : (pos + 1) * bs]
            err = theta[0] * x[idx] + theta[1] - y[idx]
            grad = np.array([2 * np.mean(err * x[idx]), 2 * np.mean(err)])
            theta = theta - lr * grad
            params[k + 1] = theta
            cost[k + 1] = np.mean((theta[0] * x + theta[1] - y) ** 2)
            seen[k + 1] = seen[k] + len(idx)
    cost[~np.isfinite(cost)] = np.inf
    return Path(params, cost, seen, float(lr), bs, n)


# --- a landscape that is not a bowl ----------------------------------------------------------

_TILT = 0.3
# Stationary points along w2 = 0: the roots of 4 w1^3 - 4 w1 + tilt, in increasing order.
_ROOTS = np.sort(np.roots([4.0, 0.0, -4.0, _TILT]).real)

#: Where the gradient of :func:`bumpy_cost` vanishes: the saddle point between the valleys ...
BUMPY_SADDLE = (float(_ROOTS[1]), 0.0)
#: ... and the two minima, the deep (global) one first, then the shallow (local) one.
BUMPY_MINIMA = ((float(_ROOTS[0]), 0.0), (float(_ROOTS[2]), 0.0))


def bumpy_cost(w1, w2):
    """A made-up cost of two weights with a deep valley (left), a shallow one (right) and a saddle.

    ``(w1² - 1)² + tilt * w1 + w2²``: two valleys near w1 = -1 (global minimum) and w1 = +1
    (local minimum). Between them, near (0, 0), the cost goes *up* along w1 and *down* along
    w2: a **saddle point**, where the gradient is zero although it is no minimum.
    Exact positions: :data:`BUMPY_MINIMA` and :data:`BUMPY_SADDLE`.
    """
    w1 = np.asarray(w1, dtype=np.float64)
    w2 = np.asarray(w2, dtype=np.float64)
    return (w1**2 - 1) ** 2 + _TILT * w1 + w2**2


def bumpy_grad(w1, w2) -> np.ndarray:
    """Gradient of :func:`bumpy_cost`: ``[4 w1 (w1² - 1) + tilt, 2 w2]``."""
    w1 = np.asarray(w1, dtype=np.float64)
    w2 = np.asarray(w2, dtype=np.float64)
    return np.array([4 * w1 * (w1**2 - 1) + _TILT, 2 * w2])


def descend(
    grad: Callable[[float, float], np.ndarray],
    start: tuple[float, float],
    lr: float = 0.05,
    steps: int = 200,
    noise: float = 0.0,
    anneal: bool = False,
    seed: int = 0,
) -> np.ndarray:
    """Gradient descent on any two-parameter cost; returns the path, shape ``(steps + 1, 2)``.

    ``noise`` adds Gaussian noise of that standard deviation to every gradient, the way a
    mini-batch's gradient scatters around the full one: ``noise=0`` is plain gradient
    descent, ``noise>0`` behaves like SGD. ``anneal=True`` lowers the noise linearly to zero
    over the steps (as a decaying learning rate does), so the path can settle at the end.
    A path that runs off to infinity is kept as ``inf``/``nan`` from there on.
    """
    if not lr > 0 or noise < 0 or steps < 0:
        raise LabkitError(f"need lr > 0, noise >= 0 and steps >= 0, got lr={lr}, noise={noise}, steps={steps}")
    rng = np.random.default_rng(seed)
    w = np.array(start, dtype=np.float64)
    path = np.empty((steps + 1, 2))
    path[0] = w
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(steps):
            g = np.asarray(grad(w[0], w[1]), dtype=np.float64)
            if noise:
                scale = noise * (1 - k / steps) if anneal else noise
                g = g + rng.normal(0.0, scale, 2)
            w = w - lr * g
            path[k + 1] = w
    return path
