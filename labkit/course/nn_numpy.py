"""A small multilayer perceptron in plain numpy: forward and back-propagation written out (lesson 03).

The parameters are a list of ``(W, b)`` pairs, one per dense layer, with ``W`` of shape
``(inputs, units)`` — the same layout as a Keras ``Dense`` kernel, so weights copy both ways
(:func:`to_keras`, :func:`from_keras`) and the gradients can be checked against TensorFlow's
(:func:`tf_gradients`). Hidden layers use one activation; the output layer is linear (a
regression output, or logits for :func:`softmax_cross_entropy`).

For one dense layer ``z = a_prev @ W + b``, ``a = f(z)``, back-propagation is::

    dz      = da * f'(z)          # through the activation, element by element
    dW      = a_prev.T @ dz       # each weight: its input times the error signal
    db      = dz.sum(axis=0)      # summed over the samples of the batch
    da_prev = dz @ W.T            # the error signal handed to the layer below
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from labkit.errors import LabkitError

Params = list[tuple[np.ndarray, np.ndarray]]

__all__ = [
    "ACTIVATIONS",
    "LEAKY_SLOPE",
    "get_activation",
    "init_params",
    "forward",
    "backward",
    "mse_loss",
    "mae_loss",
    "softmax_cross_entropy",
    "loss_and_grads",
    "numerical_grads",
    "max_abs_diff",
    "activation_pattern",
    "kinks",
    "dropout",
    "predict",
    "fit",
    "to_keras",
    "from_keras",
    "tf_gradients",
]

#: Slope of leaky ReLU for negative inputs.
LEAKY_SLOPE = 0.1


def _sigmoid(z):
    # Two branches so that neither exp() overflows.
    z = np.asarray(z, dtype=np.float64)
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def _softplus(z):
    return np.logaddexp(0.0, z)


#: name -> (function, derivative), both element-wise on numpy arrays.
ACTIVATIONS: dict[str, tuple[Callable, Callable]] = {
    "linear": (lambda z: np.asarray(z, dtype=np.float64), lambda z: np.ones_like(z, dtype=np.float64)),
    "sigmoid": (_sigmoid, lambda z: _sigmoid(z) * (1 - _sigmoid(z))),
    "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (np.asarray(z) > 0).astype(np.float64)),
    "leaky_relu": (
        lambda z: np.where(np.asarray(z) > 0, z, LEAKY_SLOPE * np.asarray(z)),
        lambda z: np.where(np.asarray(z) > 0, 1.0, LEAKY_SLOPE),
    ),
    "elu": (
        lambda z: np.where(np.asarray(z) > 0, z, np.expm1(np.minimum(z, 0.0))),
        lambda z: np.where(np.asarray(z) > 0, 1.0, np.exp(np.minimum(z, 0.0))),
    ),
    "softplus": (_softplus, _sigmoid),
    "swish": (
        lambda z: np.asarray(z) * _sigmoid(z),
        lambda z: _sigmoid(z) + np.asarray(z) * _sigmoid(z) * (1 - _sigmoid(z)),
    ),
}


def get_activation(name: str) -> tuple[Callable, Callable]:
    """``(f, f')`` for an activation name of :data:`ACTIVATIONS`."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise LabkitError(f"unknown activation {name!r}: choose one of {sorted(ACTIVATIONS)}") from None


def init_params(sizes: Sequence[int], seed: int = 0, init: str = "he", bias_scale: float = 0.1) -> Params:
    """Random weights for layer sizes such as ``(2, 16, 16, 1)``.

    ``init="he"``: kernels from N(0, 2 / inputs), good for ReLU; ``init="glorot"``: uniform in
    ±sqrt(6 / (inputs + units)), Keras's default for ``Dense``. Biases are drawn from
    N(0, bias_scale²): usually they start at zero (``bias_scale=0``, as Keras does); small random
    ones make a gradient check more thorough.
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise LabkitError(f"sizes must list at least an input and an output size, all >= 1, got {sizes}")
    if init not in ("he", "glorot"):
        raise LabkitError(f"init must be 'he' or 'glorot', got {init!r}")
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        if init == "he":
            w = rng.normal(0.0, np.sqrt(2.0 / n_in), (n_in, n_out))
        else:
            limit = np.sqrt(6.0 / (n_in + n_out))
            w = rng.uniform(-limit, limit, (n_in, n_out))
        b = rng.normal(0.0, bias_scale, n_out) if bias_scale else np.zeros(n_out)
        params.append((w, b))
    return params


def _as_2d(x: np.ndarray, params: Params) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    n_in = params[0][0].shape[0]
    if x.ndim != 2 or x.shape[1] != n_in:
        raise LabkitError(f"the network takes {n_in} input feature(s) per sample, got x of shape {x.shape}")
    return x


def forward(
    params: Params,
    x: np.ndarray,
    activation: str = "relu",
    dropout_rate: float = 0.0,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, list]:
    """Run the network; returns the output ``(n, units_out)`` and the cache back-propagation needs.

    The cache holds, for each layer, its input ``a_prev``, its pre-activation ``z`` and the
    dropout mask applied to its output (``None`` without dropout). ``dropout_rate > 0`` applies
    inverted dropout after every hidden layer, as in training; leave it at 0 for predictions.
    """
    f, _ = get_activation(activation)
    if not 0 <= dropout_rate < 1:
        raise LabkitError(f"dropout rate must be in [0, 1), got {dropout_rate}")
    if dropout_rate and rng is None:
        rng = np.random.default_rng()
    a = _as_2d(x, params)
    cache = []
    for i, (w, b) in enumerate(params):
        z = a @ w + b
        mask = None
        if i == len(params) - 1:
            out = z  # linear output layer
        else:
            out = f(z)
            if dropout_rate:
                mask = (rng.random(out.shape) >= dropout_rate) / (1 - dropout_rate)
                out = out * mask
        cache.append((a, z, mask))
        a = out
    return a, cache


def backward(params: Params, cache: list, dout: np.ndarray, activation: str = "relu") -> Params:
    """Back-propagate ``dout`` = dLoss/dOutput; returns ``[(dW, db), ...]`` in the order of ``params``."""
    _, df = get_activation(activation)
    grads: Params = [None] * len(params)  # type: ignore[list-item]
    dz = np.asarray(dout, dtype=np.float64)  # the output layer is linear: dz = dout
    for i in range(len(params) - 1, -1, -1):
        a_prev = cache[i][0]
        w, _ = params[i]
        grads[i] = (a_prev.T @ dz, dz.sum(axis=0))
        if i > 0:
            da_prev = dz @ w.T
            _, z_prev, mask = cache[i - 1]
            if mask is not None:
                da_prev = da_prev * mask  # dropped units pass no gradient back
            dz = da_prev * df(z_prev)
    return grads


def mae_loss(pred: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean absolute error over all outputs and its (sub)gradient with respect to ``pred``."""
    pred = np.asarray(pred, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(pred.shape)
    diff = pred - y
    return float(np.mean(np.abs(diff))), np.sign(diff) / diff.size


def mse_loss(pred: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean squared error over all outputs and its gradient with respect to ``pred``."""
    pred = np.asarray(pred, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(pred.shape)
    diff = pred - y
    return float(np.mean(diff**2)), 2 * diff / diff.size


def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of softmax(logits) against integer labels ``y``, and its gradient.

    The gradient has the famous simple form ``(softmax(logits) - onehot(y)) / n``.
    """
    logits = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y).astype(np.int64).ravel()
    n, k = logits.shape
    if len(y) != n or y.min() < 0 or y.max() >= k:
        raise LabkitError(f"need one label in 0..{k - 1} per row of logits {logits.shape}, got labels {y.shape}")
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -float(np.mean(log_p[np.arange(n), y]))
    d = np.exp(log_p)
    d[np.arange(n), y] -= 1.0
    return loss, d / n


_LOSSES = {"mse": mse_loss, "mae": mae_loss, "softmax_cross_entropy": softmax_cross_entropy}


def loss_and_grads(
    params: Params, x: np.ndarray, y: np.ndarray, activation: str = "relu", loss: str = "mse"
) -> tuple[float, Params]:
    """Forward pass, loss, backward pass: the loss and the gradient of every parameter."""
    if loss not in _LOSSES:
        raise LabkitError(f"unknown loss {loss!r}: choose one of {sorted(_LOSSES)}")
    out, cache = forward(params, x, activation)
    value, dout = _LOSSES[loss](out, y)
    return value, backward(params, cache, dout, activation)


def numerical_grads(
    params: Params, x: np.ndarray, y: np.ndarray, activation: str = "relu", loss: str = "mse", eps: float = 1e-6
) -> Params:
    """The same gradients by central finite differences: slow, but needs no calculus."""

    def value() -> float:
        return loss_and_grads(params, x, y, activation, loss)[0]

    grads = []
    for w, b in params:
        pair = []
        for arr in (w, b):
            g = np.zeros_like(arr)
            for idx in np.ndindex(arr.shape):
                old = arr[idx]
                arr[idx] = old + eps
                up = value()
                arr[idx] = old - eps
                down = value()
                arr[idx] = old
                g[idx] = (up - down) / (2 * eps)
            pair.append(g)
        grads.append(tuple(pair))
    return grads


def max_abs_diff(a: Params, b: Params) -> float:
    """Largest absolute difference between two parameter (or gradient) lists of the same shapes."""
    if len(a) != len(b):
        raise LabkitError(f"the lists have {len(a)} and {len(b)} layers")
    worst = 0.0
    for (wa, ba), (wb, bb) in zip(a, b):
        for p, q in ((wa, wb), (ba, bb)):
            p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
            if p.shape != q.shape:
                raise LabkitError(f"shapes differ: {p.shape} and {q.shape}")
            worst = max(worst, float(np.max(np.abs(p - q))) if p.size else 0.0)
    return worst


def activation_pattern(params: Params, x: np.ndarray) -> np.ndarray:
    """Which hidden ReLU units are on (pre-activation > 0), per sample: bool ``(n, hidden units)``.

    Between two inputs with the same pattern a ReLU network is one linear (affine) function.
    """
    _, cache = forward(params, x, "relu")
    hidden = [z > 0 for _, z, _ in cache[:-1]]  # the output layer is linear: no switch there
    if not hidden:
        return np.zeros((len(cache[0][0]), 0), dtype=bool)
    return np.concatenate(hidden, axis=1)


def kinks(params: Params, x_grid: np.ndarray) -> np.ndarray:
    """Inputs of a 1-D ReLU network where some unit switches on or off: the corners of its graph.

    Found on ``x_grid`` (sorted): the midpoint of each pair of neighbours whose patterns differ.
    """
    x_grid = np.asarray(x_grid, dtype=np.float64).ravel()
    if np.any(np.diff(x_grid) <= 0):
        raise LabkitError("x_grid must be sorted in increasing order, e.g. np.linspace(lo, hi, 2001)")
    pattern = activation_pattern(params, x_grid[:, None])
    change = np.any(pattern[1:] != pattern[:-1], axis=1)
    return (x_grid[1:][change] + x_grid[:-1][change]) / 2


def dropout(
    a: np.ndarray, rate: float, rng: np.random.Generator | None = None, training: bool = True
) -> np.ndarray:
    """Inverted dropout, as Keras does it.

    Training: each value is set to 0 with probability ``rate`` and the survivors are divided by
    ``1 - rate``, so the expected value of every unit stays the same. Inference
    (``training=False``): the input is returned unchanged — every unit is kept, nothing rescaled.
    """
    if not 0 <= rate < 1:
        raise LabkitError(f"dropout rate must be in [0, 1), got {rate}")
    a = np.asarray(a, dtype=np.float64)
    if not training or rate == 0:
        return a
    rng = np.random.default_rng() if rng is None else rng
    keep = rng.random(a.shape) >= rate
    return np.where(keep, a / (1 - rate), 0.0)


def predict(params: Params, x: np.ndarray, activation: str = "relu") -> np.ndarray:
    """The network's output for ``x`` (no dropout): shape ``(n, units_out)``."""
    return forward(params, x, activation)[0]


def fit(
    params: Params,
    x: np.ndarray,
    y: np.ndarray,
    epochs: int = 500,
    lr: float = 0.01,
    l2: float = 0.0,
    dropout_rate: float = 0.0,
    batch_size: int | None = None,
    activation: str = "relu",
    loss: str = "mse",
    optimizer: str = "adam",
    validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    seed: int = 0,
) -> tuple[Params, dict[str, list[float]]]:
    """Train a regression network the way Keras does it; returns new params and a history.

    - ``loss``: ``"mse"`` or ``"mae"``; ``optimizer``: ``"adam"`` (β1 = 0.9, β2 = 0.999, ε = 1e-7,
      as ``keras.optimizers.Adam``) or ``"sgd"`` (plain gradient descent, ``keras.optimizers.SGD``);
    - ``l2`` adds ``l2 * sum(W**2)`` over the kernels (Keras's ``kernel_regularizer=l2(...)``);
    - ``dropout_rate`` drops hidden units during training only (inverted dropout, as ``Dropout``);
    - ``batch_size=None`` uses the whole set for every update.

    The history has ``loss`` (the objective per epoch, averaged over its batches: the loss with
    dropout active, plus the L2 term) and, with ``validation_data``, ``val_mse`` (plain mean
    squared error with all units kept).
    """
    if epochs < 0 or not lr > 0 or l2 < 0:
        raise LabkitError(f"need epochs >= 0, lr > 0 and l2 >= 0, got epochs={epochs}, lr={lr}, l2={l2}")
    if loss not in ("mse", "mae"):
        raise LabkitError(f"fit trains regression networks: loss must be 'mse' or 'mae', got {loss!r}")
    if optimizer not in ("adam", "sgd"):
        raise LabkitError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    loss_fn = _LOSSES[loss]
    x = _as_2d(x, params)
    y = np.asarray(y, dtype=np.float64).reshape(len(x), -1)
    n = len(x)
    bs = n if batch_size is None else int(batch_size)
    if not 1 <= bs <= n:
        raise LabkitError(f"batch_size must be between 1 and {n}, got {batch_size}")
    rng = np.random.default_rng(seed)
    # All parameters live in one flat vector (theta), the layers' W and b are views into it, so
    # each Adam step is a handful of whole-vector operations.
    shapes = [p.shape for pair in params for p in pair]  # W1, b1, W2, b2, ...
    sizes = [int(np.prod(sh)) for sh in shapes]
    theta = np.concatenate([np.asarray(p, dtype=np.float64).ravel() for pair in params for p in pair])
    grad = np.zeros_like(theta)
    offsets = np.cumsum([0] + sizes)
    views = [theta[a:b].reshape(sh) for a, b, sh in zip(offsets[:-1], offsets[1:], shapes)]
    grad_views = [grad[a:b].reshape(sh) for a, b, sh in zip(offsets[:-1], offsets[1:], shapes)]
    current = [(views[2 * i], views[2 * i + 1]) for i in range(len(views) // 2)]
    kernel_mask = np.concatenate([np.full(n, i % 2 == 0) for i, n in enumerate(sizes)])  # L2: kernels only
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    beta1, beta2, eps = 0.9, 0.999, 1e-7
    history: dict[str, list[float]] = {"loss": []}
    if validation_data is not None:
        history["val_mse"] = []

    t = 0
    for _ in range(epochs):
        order = np.arange(n) if bs == n else rng.permutation(n)
        losses = []
        for start in range(0, n, bs):
            idx = order[start : start + bs]
            out, cache = forward(current, x[idx], activation, dropout_rate, rng)
            value, dout = loss_fn(out, y[idx])
            for view, g in zip(grad_views, (g for pair in backward(current, cache, dout, activation) for g in pair)):
                view[...] = g
            if l2:
                value += l2 * float(np.sum(theta[kernel_mask] ** 2))
                grad[kernel_mask] += 2 * l2 * theta[kernel_mask]
            losses.append(value)
            t += 1
            if optimizer == "sgd":
                theta -= lr * grad
                continue
            alpha = lr * np.sqrt(1 - beta2**t) / (1 - beta1**t)
            m += (grad - m) * (1 - beta1)
            v += (grad * grad - v) * (1 - beta2)
            theta -= alpha * m / (np.sqrt(v) + eps)
        history["loss"].append(float(np.mean(losses)))
        if validation_data is not None:
            xv, yv = validation_data
            history["val_mse"].append(mse_loss(predict(current, xv, activation), yv)[0])
    return [(w.copy(), b.copy()) for w, b in current], history


# --- TensorFlow side: the same network in Keras ------------------------------------------------

def to_keras(params: Params, activation: str = "relu", dtype: str = "float64"):
    """A Keras ``Sequential`` of ``Dense`` layers holding exactly these weights (float64 by default)."""
    from labkit.keras import keras, tf

    get_activation(activation)  # raises for an unknown name
    layers = [keras.Input((params[0][0].shape[0],), dtype=dtype)]
    for i, (w, _) in enumerate(params):
        last = i == len(params) - 1
        if last or activation == "linear":
            act = None
        elif activation == "leaky_relu":
            act = lambda z: tf.maximum(z, LEAKY_SLOPE * z)  # noqa: E731  (exact in float64)
        else:
            act = activation
        layers.append(keras.layers.Dense(w.shape[1], activation=act, dtype=dtype, name=f"dense_{i + 1}"))
    model = keras.Sequential(layers)
    for layer, (w, b) in zip(model.layers, params):
        layer.set_weights([np.asarray(w, dtype=dtype), np.asarray(b, dtype=dtype)])
    return model


def from_keras(model) -> Params:
    """The ``(W, b)`` pairs of a Keras model made only of ``Dense`` layers (float64 copies)."""
    params = []
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if len(weights) != 2 or weights[0].ndim != 2:
            raise LabkitError(
                f"layer {layer.name!r} is not a Dense layer with a bias: from_keras reads Dense-only models"
            )
        params.append((weights[0].astype(np.float64), weights[1].astype(np.float64)))
    return params


def tf_gradients(
    params: Params, x: np.ndarray, y: np.ndarray, activation: str = "relu", loss: str = "mse"
) -> tuple[float, Params]:
    """The loss and gradients computed by TensorFlow (``GradientTape``), in float64, for comparison."""
    from labkit.keras import keras, tf

    model = to_keras(params, activation, dtype="float64")
    x = _as_2d(x, params)
    with tf.GradientTape() as tape:
        out = model(tf.constant(x), training=True)
        if loss == "mse":
            value = tf.reduce_mean(tf.square(out - tf.constant(np.asarray(y, np.float64).reshape(out.shape))))
        elif loss == "softmax_cross_entropy":
            value = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(
                tf.constant(np.asarray(y).ravel()), out
            )
        else:
            raise LabkitError(f"unknown loss {loss!r}: choose one of {sorted(_LOSSES)}")
    grads = tape.gradient(value, model.trainable_variables)
    pairs = [(grads[2 * i].numpy(), grads[2 * i + 1].numpy()) for i in range(len(params))]
    return float(value.numpy()), pairs
