"""Recurrent networks by hand, and the text corpus of lesson 06.

- :func:`rnn_step` / :func:`rnn_forward`: a simple (Elman) RNN cell, the recurrence
  ``h_t = tanh(x_t W_x + h_{t-1} W_h + b)``, unrolled over time;
- :func:`rnn_gradient_norms`: how much ``h_T`` still depends on ``h_{T-k}`` (why gradients vanish);
- :func:`lstm_step` / :func:`lstm_forward`: the LSTM cell with its input, forget and output gates,
  returning every gate's activity so it can be plotted;
- :func:`stdlib_corpus`, :class:`CharCodec`, :func:`next_char_windows`: a character-level data set
  from Python's own standard-library source (a fixed list of modules, always installed, offline);
- :func:`sample` and :func:`generate`: text from a trained character LSTM, temperature included,
  computed with :func:`lstm_step` on the trained weights.

Weights use Keras's layout (row vectors: ``x @ kernel``), so the numbers can be checked against
``SimpleRNN`` and ``LSTM`` layers: :func:`layer_weights` reads them from a layer. Keras stacks the
LSTM's four blocks in the order input, forget, cell candidate, output.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from labkit.errors import LabkitError

__all__ = [
    "STDLIB_MODULES",
    "GATES",
    "sigmoid",
    "rnn_step",
    "rnn_forward",
    "rnn_gradient_norms",
    "lstm_step",
    "lstm_forward",
    "layer_weights",
    "stdlib_corpus",
    "CharCodec",
    "next_char_windows",
    "softmax_with_temperature",
    "sample",
    "generate",
]

#: The standard-library modules whose source forms the text corpus (pure Python, present in every
#: CPython 3.10-3.12, about 300,000 characters together). A fixed list, so a run is reproducible
#: for a given Python version; the source differs a little from one version to the next.
STDLIB_MODULES = (
    "textwrap", "shlex", "glob", "fnmatch", "bisect", "heapq", "colorsys", "calendar", "string",
    "copy", "queue", "sched", "graphlib", "fractions", "csv", "functools", "contextlib", "pprint",
    "random", "json.encoder", "json.decoder", "posixpath", "base64",
)

#: The LSTM's gates as :func:`lstm_forward` names them, in Keras's order of the weight blocks.
GATES = ("input", "forget", "candidate", "output")


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-z), without overflow warnings for large |z|."""
    z = np.asarray(z, np.float64)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


# --- a simple RNN --------------------------------------------------------------------------------

def rnn_step(x_t: np.ndarray, h_prev: np.ndarray, W_x: np.ndarray, W_h: np.ndarray, b: np.ndarray) -> np.ndarray:
    """One step of a simple RNN: ``h_t = tanh(x_t @ W_x + h_prev @ W_h + b)``.

    x_t (..., features), h_prev (..., units), W_x (features, units), W_h (units, units), b (units,).
    """
    return np.tanh(np.asarray(x_t) @ W_x + np.asarray(h_prev) @ W_h + b)


def rnn_forward(x: np.ndarray, W_x: np.ndarray, W_h: np.ndarray, b: np.ndarray,
                h0: np.ndarray | None = None) -> np.ndarray:
    """The RNN unrolled over a sequence x (T, features) or a batch (n, T, features).

    Returns every hidden state, (T, units) or (n, T, units): the same cell, the same weights,
    applied at every time step to the input and to the previous state.
    """
    x = np.asarray(x, np.float64)
    if x.ndim not in (2, 3):
        raise LabkitError(f"x must be (time, features) or (batch, time, features), got shape {x.shape}")
    h = np.zeros(x.shape[:-2] + (W_h.shape[0],)) if h0 is None else np.asarray(h0, np.float64)
    states = []
    for t in range(x.shape[-2]):
        h = rnn_step(x[..., t, :], h, W_x, W_h, b)
        states.append(h)
    return np.stack(states, axis=-2)


def rnn_gradient_norms(hs: np.ndarray, W_h: np.ndarray) -> np.ndarray:
    """``||d h_T / d h_{T-k}||`` (spectral norm) for k = 0 .. T-1, for one sequence's states hs (T, units).

    Back-propagation through time multiplies one Jacobian per step,
    ``d h_t / d h_{t-1} = diag(1 - h_t^2) W_h^T``: when these shrink vectors (small weights, or
    saturated tanh units), the product — and the gradient reaching early steps — vanishes
    geometrically; when they stretch them, it explodes.
    """
    hs = np.asarray(hs, np.float64)
    if hs.ndim != 2:
        raise LabkitError(f"hs must be one sequence's hidden states (time, units), got shape {hs.shape}")
    J = np.eye(hs.shape[1])
    norms = [1.0]
    for t in range(hs.shape[0] - 1, 0, -1):
        step = (1 - hs[t] ** 2)[:, None] * W_h.T  # d h_t / d h_{t-1}
        J = J @ step
        norms.append(float(np.linalg.norm(J, 2)))
    return np.array(norms)


# --- the LSTM ------------------------------------------------------------------------------------

def lstm_step(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias):
    """One LSTM step; returns ``(h, c, gates)``.

    ``z = x_t @ kernel + h_prev @ recurrent_kernel + bias`` is split into four blocks of ``units``:

    - input gate      i = sigmoid(z_i)   how much of the new candidate to write
    - forget gate     f = sigmoid(z_f)   how much of the old cell state to keep
    - candidate       g = tanh(z_g)      what could be written
    - output gate     o = sigmoid(z_o)   how much of the cell to show as the output

    ``c = f * c_prev + i * g`` and ``h = o * tanh(c)``. ``gates`` maps the names in
    :data:`GATES` to i, f, g, o.
    """
    z = np.asarray(x_t, np.float64) @ kernel + np.asarray(h_prev, np.float64) @ recurrent_kernel + bias
    zi, zf, zg, zo = np.split(z, 4, axis=-1)
    i, f, g, o = sigmoid(zi), sigmoid(zf), np.tanh(zg), sigmoid(zo)
    c = f * c_prev + i * g
    h = o * np.tanh(c)
    return h, c, {"input": i, "forget": f, "candidate": g, "output": o}


def lstm_forward(x, kernel, recurrent_kernel, bias, h0=None, c0=None) -> dict[str, np.ndarray]:
    """The LSTM over a sequence x (T, features) or a batch (n, T, features).

    Returns a dict of arrays shaped (T, units) (or (n, T, units)): ``"h"`` (outputs), ``"c"``
    (cell state) and one per gate in :data:`GATES`. ``out["h"][..., -1, :]`` is what a Keras
    ``LSTM`` layer returns without ``return_sequences``.
    """
    x = np.asarray(x, np.float64)
    if x.ndim not in (2, 3):
        raise LabkitError(f"x must be (time, features) or (batch, time, features), got shape {x.shape}")
    units = recurrent_kernel.shape[0]
    if kernel.shape != (x.shape[-1], 4 * units):
        raise LabkitError(
            f"kernel must be (features, 4*units) = ({x.shape[-1]}, {4 * units}), got {kernel.shape}"
        )
    h = np.zeros(x.shape[:-2] + (units,)) if h0 is None else np.asarray(h0, np.float64)
    c = np.zeros_like(h) if c0 is None else np.asarray(c0, np.float64)
    trace: dict[str, list] = {k: [] for k in ("h", "c", *GATES)}
    for t in range(x.shape[-2]):
        h, c, gates = lstm_step(x[..., t, :], h, c, kernel, recurrent_kernel, bias)
        trace["h"].append(h)
        trace["c"].append(c)
        for k in GATES:
            trace[k].append(gates[k])
    return {k: np.stack(v, axis=-2) for k, v in trace.items()}


def layer_weights(layer) -> tuple[np.ndarray, ...]:
    """(kernel, recurrent_kernel, bias) of a Keras SimpleRNN or LSTM layer, as float64 arrays."""
    kind = type(layer).__name__
    if kind not in ("SimpleRNN", "LSTM"):
        raise LabkitError(f"layer_weights reads a SimpleRNN or LSTM layer, not a {kind}")
    if not getattr(layer.cell, "use_bias", True):
        raise LabkitError("layer_weights expects a layer with a bias (use_bias=True)")
    kernel, recurrent, bias = (np.asarray(w, np.float64) for w in layer.get_weights())
    return kernel, recurrent, bias


# --- a character-level text corpus ---------------------------------------------------------------

def stdlib_corpus(modules: Sequence[str] = STDLIB_MODULES) -> str:
    """The source code of ``modules``, concatenated: Python code as a text corpus.

    Read through ``inspect.getsource``, so it needs only the Python installation itself. Tabs
    become four spaces and the few non-ASCII characters (names in comments) are dropped, which
    keeps the alphabet small.
    """
    if not modules:
        raise LabkitError("give at least one module name")
    parts = []
    for name in modules:
        try:
            source = inspect.getsource(importlib.import_module(name))
        except ImportError:
            raise LabkitError(f"module {name!r} is not part of this Python's standard library") from None
        except (OSError, TypeError):
            raise LabkitError(
                f"the source of module {name!r} is not installed (only compiled files?): install your "
                "distribution's full Python package (e.g. Debian's libpython3-stdlib with its .py files) "
                "or pass modules=... with ones that have source"
            ) from None
        parts.append(source.expandtabs(4).encode("ascii", "ignore").decode("ascii"))
    return "\n\n".join(parts)


@dataclass(frozen=True)
class CharCodec:
    """Characters to integer ids and back; ``chars[i]`` is the character with id ``i``."""

    chars: str

    @classmethod
    def from_text(cls, text: str) -> CharCodec:
        """The alphabet of ``text``, sorted (so the same text always gives the same ids)."""
        if not text:
            raise LabkitError("cannot build an alphabet from empty text")
        return cls("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        index = {c: i for i, c in enumerate(self.chars)}
        try:
            return np.fromiter((index[c] for c in text), dtype=np.int32, count=len(text))
        except KeyError as e:
            raise LabkitError(f"character {e.args[0]!r} is not in the alphabet of {len(self)} characters") from None

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in np.asarray(ids).ravel())


def next_char_windows(ids: np.ndarray, seq_len: int, step: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Training pairs for next-character prediction, sequence to sequence.

    ``x[n] = ids[s : s+seq_len]`` and ``y[n] = ids[s+1 : s+seq_len+1]``: at every position the
    target is the character that follows. Windows start every ``step`` characters (default
    ``seq_len``: consecutive, non-overlapping windows).
    """
    ids = np.asarray(ids)
    step = seq_len if step is None else step
    if seq_len < 1 or step < 1:
        raise LabkitError(f"seq_len and step must be >= 1, got {seq_len} and {step}")
    starts = np.arange(0, len(ids) - seq_len, step)
    if not len(starts):
        raise LabkitError(f"a text of {len(ids)} characters is too short for windows of {seq_len} + 1")
    rows = starts[:, None] + np.arange(seq_len)
    return ids[rows], ids[rows + 1]


# --- sampling ------------------------------------------------------------------------------------

def softmax_with_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities ``softmax(logits / temperature)`` along the last axis.

    Temperature 1 keeps the model's probabilities; below 1 sharpens them towards the most
    likely choice (safer, repetitive), above 1 flattens them towards uniform (more surprising,
    more mistakes).
    """
    if temperature <= 0:
        raise LabkitError(f"temperature must be positive, got {temperature} (use sample(..., 0) for argmax)")
    z = np.asarray(logits, np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=-1, keepdims=True)


def sample(logits: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
    """One index drawn from ``softmax(logits / temperature)``; temperature 0 takes the argmax."""
    logits = np.asarray(logits, np.float64).ravel()
    if temperature == 0:
        return int(np.argmax(logits))
    p = softmax_with_temperature(logits, temperature)
    return int(rng.choice(len(p), p=p))


def _char_model_weights(model):
    kinds = {type(l).__name__: l for l in model.layers}
    if not {"Embedding", "LSTM", "Dense"} <= set(kinds):
        raise LabkitError(
            "generate() runs an Embedding -> LSTM -> Dense character model (labkit.models.char_lstm); "
            f"this model has {[type(l).__name__ for l in model.layers]}"
        )
    dense = kinds["Dense"]
    if getattr(dense, "activation", None) is not None and dense.activation.__name__ != "linear":
        raise LabkitError("the model's Dense layer must output logits (no activation)")
    embedding = np.asarray(kinds["Embedding"].get_weights()[0], np.float64)
    w, b = (np.asarray(v, np.float64) for v in dense.get_weights())
    return embedding, layer_weights(kinds["LSTM"]), (w, b)


def generate(model, codec: CharCodec, prime: str, length: int = 200, temperature: float = 1.0,
             seed: int = 0, context: int | None = None) -> str:
    """Text from a trained character LSTM: ``prime`` followed by ``length`` sampled characters.

    The model (Embedding -> LSTM -> Dense logits, see :func:`labkit.models.char_lstm`) is run
    with :func:`lstm_step` on its trained weights: the recurrence the lesson wrote by hand, and
    much faster than calling Keras per character. Seeded: the same arguments give the same text.

    ``context=None`` carries h and c along the whole text. A model trained on windows of
    ``seq_len`` characters, each starting from a zero state, has never seen a state older than
    that; ``context=seq_len`` matches its training: each next character is predicted from the
    last ``context`` characters only, read from a zero state (``context`` times more work).
    """
    if not prime:
        raise LabkitError("prime must hold at least one character to start from")
    if context is not None and context < 1:
        raise LabkitError(f"context must be a positive number of characters or None, got {context}")
    embedding, (kernel, recurrent, bias), (w, b) = _char_model_weights(model)
    units = recurrent.shape[0]
    rng = np.random.default_rng(seed)
    ids = list(codec.encode(prime))

    def run(chars, h, c):
        for i in chars:
            h, c, _ = lstm_step(embedding[i], h, c, kernel, recurrent, bias)
        return h, c

    zero = np.zeros(units)
    h, c = run(ids, zero, zero) if context is None else (zero, zero)
    for _ in range(length):
        if context is not None:
            h, c = run(ids[-context:], zero, zero)
        ids.append(sample(h @ w + b, temperature, rng))
        if context is None:
            h, c = run(ids[-1:], h, c)
    return prime + codec.decode(ids[len(prime):])
