"""Networks within networks: replace a layer by a smaller sub-network that approximates it.

Each replacement starts from the original layer's weights through a closed-form
factorisation, so the new model computes (nearly) what the old one did before any training;
a short fine-tune, with distillation from the original model (:mod:`labkit.compress.distill`),
recovers the rest. ``W`` is a Conv2D kernel of shape (k_h, k_w, C_in, C_out), or a Dense
kernel (N_in, N_out); every truncation keeps the largest singular values.

``("separable", m)`` — Conv2D k×k → DepthwiseConv2D k×k (depth multiplier m, no bias) +
    1×1 Conv2D (the bias and activation). Init: for each input channel c, the matrix
    W[:, :, c, :] reshaped to (k_h·k_w, C_out) is factorised by SVD, U S Vᵀ; its m leading
    rank-1 terms give the m depthwise filters of channel c (u_j·√s_j) and their pointwise rows
    (√s_j·v_j). Exact when m = min(k_h·k_w, C_out).
``("bottleneck", r)`` — Conv2D k×k → 1×1 reduce to r channels, k×k r→r, 1×1 expand (bias,
    activation). Init: a truncated Tucker-2 decomposition by higher-order SVD: the reduce
    matrix is the r leading left singular vectors of W unfolded along C_in, the expand matrix
    those along C_out (transposed), the core W projected on both. Exact when r ≥ max(C_in, C_out)
    (r is taken at most C_in on the reduce side and C_out on the expand side).
``("spatial", r)`` — Conv2D k×k → k×1 Conv2D to r channels, then 1×k Conv2D (bias, activation)
    (Tai et al. 2016). Init: W rearranged as a (k_h·C_in, k_w·C_out) matrix, truncated to
    rank r by SVD; the left factor U√S gives the vertical filters, √S Vᵀ the horizontal ones.
    Exact when r = min(k_h·C_in, k_w·C_out).
``("lowrank", r)`` — Dense → Dense(r, no bias) + Dense (bias, activation). Init: truncated SVD
    W ≈ (U_r √S_r)(√S_r V_rᵀ), exact when r = min(N_in, N_out).
``("width", f)`` — any Dense/Conv1D/Conv2D but the classifier: remove the fraction f of its
    units/filters (:func:`labkit.compress.structured.prune_structured`, L1 saliency).

Strides and padding are carried over (exactly: every factor is linear and the first ones have
no bias, so zero padding commutes with them). A layer a replacement does not know (another
type, a dilated or grouped convolution, the classifier asked to lose units) is kept as it is
and listed in :attr:`Replaced.kept`. Supported models: chains of layers, as for
:mod:`labkit.compress.structured`.

    result = replace_layers(model, {"conv_2": ("separable", 1), "dense": ("lowrank", 8)})
    distill(result.model, model, x_train, y_train, epochs=3)   # or fine_tune_replaced(...)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from labkit.compress.structured import PRUNABLE, _chain, _weight_layers, prune_structured
from labkit.errors import LabkitError
from labkit.keras import keras

KINDS = ("keep", "separable", "bottleneck", "spatial", "lowrank", "width")
CONV_KINDS = ("separable", "bottleneck", "spatial")


class ReplacementError(LabkitError, ValueError):
    """A plan that layer replacement cannot follow."""


@dataclass
class Replaced:
    """The new model (not compiled), what replaced what, and the layers kept with the reason."""

    model: keras.Model
    replaced: dict[str, tuple] = field(default_factory=dict)  # original layer name -> choice
    groups: dict[str, list[str]] = field(default_factory=dict)  # original layer name -> its new layers
    kept: list[tuple[str, str, str]] = field(default_factory=list)  # (layer, type, why it was kept)


# --- closed forms ------------------------------------------------------------------------------

def separable_factors(kernel: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """(depthwise kernel (k_h, k_w, C_in, m), pointwise kernel (1, 1, C_in·m, C_out)) approximating ``kernel``."""
    kh, kw, ci, co = kernel.shape
    dw = np.zeros((kh, kw, ci, m), np.float64)
    pw = np.zeros((ci * m, co), np.float64)
    for c in range(ci):
        u, s, vt = np.linalg.svd(kernel[:, :, c, :].reshape(kh * kw, co).astype(np.float64), full_matrices=False)
        for j in range(min(m, len(s))):
            root = np.sqrt(s[j])
            dw[:, :, c, j] = (u[:, j] * root).reshape(kh, kw)
            pw[c * m + j] = vt[j] * root
    return dw.astype(np.float32), pw.reshape(1, 1, ci * m, co).astype(np.float32)


def _leading(matrix: np.ndarray, r: int) -> np.ndarray:
    u, _, _ = np.linalg.svd(matrix, full_matrices=False)
    return u[:, :r]


def bottleneck_factors(kernel: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(reduce (1, 1, C_in, r_in), core (k_h, k_w, r_in, r_out), expand (1, 1, r_out, C_out)) by HOSVD."""
    kh, kw, ci, co = kernel.shape
    w = kernel.astype(np.float64)
    ri, ro = min(r, ci), min(r, co)
    u_in = _leading(w.transpose(2, 0, 1, 3).reshape(ci, -1), ri)
    u_out = _leading(w.transpose(3, 0, 1, 2).reshape(co, -1), ro)
    core = np.einsum("hwio,ia,ob->hwab", w, u_in, u_out)
    return (u_in.reshape(1, 1, ci, ri).astype(np.float32), core.astype(np.float32),
            u_out.T.reshape(1, 1, ro, co).astype(np.float32))


def spatial_factors(kernel: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    """(vertical kernel (k_h, 1, C_in, r), horizontal kernel (1, k_w, r, C_out)) by truncated SVD."""
    kh, kw, ci, co = kernel.shape
    m = kernel.astype(np.float64).transpose(0, 2, 1, 3).reshape(kh * ci, kw * co)
    u, s, vt = np.linalg.svd(m, full_matrices=False)
    r_eff = min(r, len(s))
    root = np.sqrt(s[:r_eff])
    a = np.zeros((kh * ci, r))
    b = np.zeros((r, kw * co))
    a[:, :r_eff] = u[:, :r_eff] * root
    b[:r_eff] = root[:, None] * vt[:r_eff]
    vertical = a.reshape(kh, ci, r)[:, None]
    horizontal = b.reshape(r, kw, co).transpose(1, 0, 2)[None]
    return vertical.astype(np.float32), horizontal.astype(np.float32)


def lowrank_factors(kernel: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    """(first (N_in, r), second (r, N_out)) with first @ second the rank-r truncated SVD of ``kernel``."""
    u, s, vt = np.linalg.svd(kernel.astype(np.float64), full_matrices=False)
    r_eff = min(r, len(s))
    first = np.zeros((kernel.shape[0], r))
    second = np.zeros((r, kernel.shape[1]))
    root = np.sqrt(s[:r_eff])
    first[:, :r_eff] = u[:, :r_eff] * root
    second[:r_eff] = root[:, None] * vt[:r_eff]
    return first.astype(np.float32), second.astype(np.float32)


def full_rank(layer, kind: str) -> int:
    """The size at which ``kind`` reproduces ``layer`` exactly."""
    k = layer.kernel.shape
    if kind == "separable":
        return int(min(k[0] * k[1], k[3]))
    if kind == "bottleneck":
        return int(max(k[2], k[3]))
    if kind == "spatial":
        return int(min(k[0] * k[2], k[1] * k[3]))
    if kind == "lowrank":
        return int(min(k[-2], k[-1]))
    raise ReplacementError(f"{kind!r} has no rank")


def params_of(layer, choice: tuple) -> int:
    """Parameters ``layer`` would have after ``choice`` (``width``: its own units only)."""
    kind, size = choice[0], (choice[1] if len(choice) > 1 else None)
    k = tuple(int(d) for d in layer.kernel.shape)
    bias = k[-1] if layer.use_bias else 0
    if kind == "keep":
        return int(layer.count_params())
    if kind == "separable":
        return k[0] * k[1] * k[2] * size + k[2] * size * k[3] + bias
    if kind == "bottleneck":
        ri, ro = min(size, k[2]), min(size, k[3])
        return k[2] * ri + k[0] * k[1] * ri * ro + ro * k[3] + bias
    if kind == "spatial":
        return k[0] * k[2] * size + k[1] * size * k[3] + bias
    if kind == "lowrank":
        return k[0] * size + size * k[1] + bias
    if kind == "width":
        keep = max(1, k[-1] - int(round(size * k[-1])))
        return int(np.prod(k[:-1])) * keep + (keep if layer.use_bias else 0)
    raise ReplacementError(f"unknown replacement {kind!r}")


# --- the plan ------------------------------------------------------------------------------------

def _why_not(layer, kind: str, classifier: str) -> str | None:
    """None when ``kind`` can replace ``layer``, else the reason it is kept."""
    t = type(layer).__name__
    if kind == "keep":
        return None
    if kind == "width":
        if t not in PRUNABLE:
            return f"a {t} has no units to remove (width works on {', '.join(PRUNABLE)})"
        if layer.name == classifier:
            return "the classifier keeps all its outputs"
        return None
    if kind in CONV_KINDS:
        if t != "Conv2D":
            return f"{kind} replaces Conv2D layers, not a {t}"
        if tuple(layer.dilation_rate) != (1, 1) or getattr(layer, "groups", 1) != 1:
            return "dilated and grouped convolutions are not replaced"
        if kind == "spatial" and tuple(layer.kernel_size) == (1, 1):
            return "a 1x1 convolution has no spatial extent to split"
        return None
    if kind == "lowrank":
        return None if t == "Dense" else f"lowrank replaces Dense layers, not a {t}"
    return f"unknown replacement {kind!r}"


def check_choice(choice, name: str = "choice") -> tuple:
    """A plan entry as a tuple: ("keep",), (kind, whole number >= 1) or ("width", fraction in [0, 1))."""
    if isinstance(choice, str):
        choice = (choice,)
    choice = tuple(choice)
    if not choice or choice[0] not in KINDS:
        raise ReplacementError(f"{name}: the replacement must be one of {', '.join(KINDS)}, got {choice!r}")
    kind = choice[0]
    if kind == "keep":
        return ("keep",)
    if len(choice) != 2:
        raise ReplacementError(f"{name}: write ({kind!r}, size), e.g. ({kind!r}, {0.5 if kind == 'width' else 4})")
    size = choice[1]
    if kind == "width":
        f = float(size)
        if not 0.0 <= f < 1.0:
            raise ReplacementError(f"{name}: the width fraction removed must be in [0, 1), got {size!r}")
        return (kind, f)
    if isinstance(size, bool) or not float(size).is_integer() or int(size) < 1:
        raise ReplacementError(f"{name}: the {kind} rank must be a whole number >= 1, got {size!r}")
    return (kind, int(size))


def describe(choice: tuple) -> str:
    kind = choice[0]
    if kind == "keep":
        return "kept"
    if kind == "width":
        return f"width -{choice[1]:.0%}"
    return f"{kind} {'m' if kind == 'separable' else 'r'}={choice[1]}"


def replaceable(model) -> dict[str, list[str]]:
    """Every weight layer and the replacement kinds that apply to it (empty: it would be kept)."""
    _, body = _chain(model)
    weights = _weight_layers(body)
    classifier = weights[-1].name if weights else ""
    return {l.name: [k for k in KINDS[1:] if _why_not(l, k, classifier) is None] for l in weights}


def _new_layers(layer, choice) -> list[tuple[keras.layers.Layer, list[np.ndarray]]]:
    kind, size = choice
    n = layer.name
    w = layer.get_weights()
    kernel, bias = w[0], (w[1:] if layer.use_bias else [])
    act = layer.activation
    if kind == "lowrank":
        a, b = lowrank_factors(kernel, size)
        return [(keras.layers.Dense(size, use_bias=False, name=f"{n}_a"), [a]),
                (keras.layers.Dense(kernel.shape[1], activation=act, use_bias=layer.use_bias, name=f"{n}_b"),
                 [b, *bias])]
    k, strides, pad = tuple(layer.kernel_size), tuple(layer.strides), layer.padding
    co = kernel.shape[3]
    if kind == "separable":
        dw, pw = separable_factors(kernel, size)
        return [(keras.layers.DepthwiseConv2D(k, strides=strides, padding=pad, depth_multiplier=size,
                                              use_bias=False, name=f"{n}_depthwise"), [dw]),
                (keras.layers.Conv2D(co, 1, activation=act, use_bias=layer.use_bias, name=f"{n}_pointwise"),
                 [pw, *bias])]
    if kind == "bottleneck":
        red, core, exp = bottleneck_factors(kernel, size)
        return [(keras.layers.Conv2D(red.shape[3], 1, use_bias=False, name=f"{n}_reduce"), [red]),
                (keras.layers.Conv2D(core.shape[3], k, strides=strides, padding=pad, use_bias=False,
                                     name=f"{n}_core"), [core]),
                (keras.layers.Conv2D(co, 1, activation=act, use_bias=layer.use_bias, name=f"{n}_expand"),
                 [exp, *bias])]
    if kind == "spatial":
        v, h = spatial_factors(kernel, size)
        return [(keras.layers.Conv2D(size, (k[0], 1), strides=(strides[0], 1), padding=pad, use_bias=False,
                                     name=f"{n}_vertical"), [v]),
                (keras.layers.Conv2D(co, (1, k[1]), strides=(1, strides[1]), padding=pad, activation=act,
                                     use_bias=layer.use_bias, name=f"{n}_horizontal"), [h, *bias])]
    raise ReplacementError(f"unknown replacement {kind!r}")


def replace_layers(model, plan: Mapping[str, tuple]) -> Replaced:
    """A new model with the layers of ``plan`` ({layer name: choice}) replaced, initialised in closed form.

    Choices are listed in this module's docstring. Layers not in the plan are copied as they
    are; a planned layer that its replacement does not apply to is kept and listed. The model
    is not compiled; fine-tune it (:func:`fine_tune_replaced`).
    """
    _, body = _chain(model)
    by_name = {l.name: l for l in body}
    plan = {name: check_choice(c, f"plan[{name!r}]") for name, c in dict(plan).items()}
    unknown = [n for n in plan if n not in by_name]
    if unknown:
        raise ReplacementError(f"no layer named {', '.join(map(repr, unknown))}; the model's layers are: "
                               f"{', '.join(by_name)}")
    weights = _weight_layers(body)
    classifier = weights[-1].name if weights else ""
    result = Replaced(model=None)
    for name, choice in plan.items():
        why = _why_not(by_name[name], choice[0], classifier)
        if why is not None:
            result.kept.append((name, type(by_name[name]).__name__, why))
    kept = {k[0] for k in result.kept}
    active = {n: c for n, c in plan.items() if n not in kept and c[0] != "keep"}
    widths = {n: c[1] for n, c in active.items() if c[0] == "width"}
    source = prune_structured(model, widths, criterion="l1", layers=list(widths)) if widths else model
    inner, body = _chain(source)
    inp = keras.Input(model.input_shape[1:], batch_size=model.input_shape[0], name=inner.layers[0].name
                      if isinstance(inner.layers[0], keras.layers.InputLayer) else "input")
    t = inp
    todo = []
    for layer in body:
        choice = active.get(layer.name)
        if choice is not None and choice[0] != "width":
            new = _new_layers(layer, choice)
            result.groups[layer.name] = [l.name for l, _ in new]
        else:
            new = [(type(layer).from_config(layer.get_config()), layer.get_weights())]
            result.groups[layer.name] = [layer.name]
        for l, w in new:
            t = l(t)
            todo.append((l, w))
        if choice is not None:
            result.replaced[layer.name] = choice
    result.model = keras.Model(inp, t, name=model.name)
    for l, w in todo:
        l.set_weights(w)
    for l in _weight_layers(body):  # weight layers of unknown kinds are listed too
        if l.name not in plan and not any(_why_not(l, k, classifier) is None for k in KINDS[1:]):
            result.kept.append((l.name, type(l).__name__, "no replacement applies to this layer type"))
    return result


def layer_report(before, replaced: Replaced) -> pd.DataFrame:
    """Per weight layer of ``before``: kind, parameters and MACs before and after, and the replacement."""
    from labkit.measure import layer_macs

    _, b_body = _chain(before)
    _, a_body = _chain(replaced.model)
    a_by_name = {l.name: l for l in a_body}
    rows = []
    for layer in _weight_layers(b_body):
        new = [a_by_name[n] for n in replaced.groups.get(layer.name, [layer.name]) if n in a_by_name]
        choice = replaced.replaced.get(layer.name, ("keep",))
        kind_after = " + ".join(type(l).__name__ for l in new)
        rows.append({"layer": layer.name, "kind before": type(layer).__name__,
                     "params before": int(layer.count_params()), "MACs before": layer_macs(layer),
                     "replacement": describe(choice), "kind after": kind_after,
                     "params after": int(sum(l.count_params() for l in new)),
                     "MACs after": int(sum(layer_macs(l) for l in new))})
    table = pd.DataFrame(rows)
    total = {"layer": "total (weight layers)", "kind before": "", "replacement": "", "kind after": ""}
    for col in ("params before", "MACs before", "params after", "MACs after"):
        total[col] = int(table[col].sum()) if len(table) else 0
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True)


def fine_tune_replaced(student, teacher, x: np.ndarray, y: np.ndarray, epochs: int = 3, distil: bool = True,
                       temperature: float = 4.0, alpha: float = 0.7, batch_size: int = 32,
                       learning_rate: float = 1e-3, seed: int = 0, validation_data=None):
    """Fine-tune a replaced model in place: distilled from ``teacher`` (the original), or on the labels alone."""
    if epochs == 0:
        return None
    if distil:
        from labkit.compress.distill import distill

        return distill(student, teacher, x, y, temperature=temperature, alpha=alpha, epochs=epochs,
                       batch_size=batch_size, learning_rate=learning_rate, seed=seed, validation_data=validation_data)
    from labkit.train import fit_classifier

    return fit_classifier(student, x, y, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed,
                          validation_data=validation_data)
