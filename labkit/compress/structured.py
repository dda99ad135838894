"""Structured pruning: remove whole units, filters and channels, and rebuild a smaller dense model.

Unstructured pruning leaves the zeros in place: an int8 kernel on a microcontroller still
stores and multiplies them, so flash, RAM and time stay the same. Removing a whole filter of a
convolution (or a unit of a dense layer) removes its weights *and* its output channel, and with
it the matching input weights of the next layer: every tensor shrinks, and so do flash, RAM and
instructions.

:func:`prune_structured` ranks the units of each layer by a saliency criterion — the L1 norm of
its weights (Li et al. 2017, "Pruning filters for efficient ConvNets"), the L2 norm, or its mean
absolute activation on data you give — keeps the most salient, and rebuilds the model with
the surviving weights copied in. Fine-tune afterwards (:func:`fine_tune`) to recover accuracy.

Supported: chains of layers (Sequential models, or functional models without branches), in
which Dense, Conv1D and Conv2D layers are pruned and DepthwiseConv, BatchNormalization,
LayerNormalization, pooling, activations, Dropout and Flatten follow the channels that remain.
The last weight layer (the classifier) keeps all its outputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from labkit.train import fit_classifier
from labkit.compress.prune import PruningError, check_sparsity
from labkit.keras import keras

CRITERIA = ("l1", "l2", "activation")
PRUNABLE = ("Dense", "Conv1D", "Conv2D")
# layers that act on each channel separately: the kept channels pass straight through
PASS_THROUGH = ("Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "ThresholdedReLU", "Softmax", "Dropout",
                "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "AlphaDropout",
                "MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D", "GlobalAveragePooling1D",
                "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "ZeroPadding1D",
                "ZeroPadding2D", "Cropping1D", "Cropping2D", "UpSampling1D", "UpSampling2D", "Rescaling")


class StructuredPruningError(PruningError):
    """A model or setting that structured pruning cannot handle."""


def _chain(model) -> tuple[keras.Model, list]:
    """(innermost model, its layers without the input) when the model is a simple chain; else an error."""
    inner = model
    while True:
        body = [l for l in inner.layers if not isinstance(l, keras.layers.InputLayer)]
        if len(body) == 1 and isinstance(body[0], keras.Model):
            inner = body[0]  # e.g. with_batch_size(model): the real layers are one level down
            continue
        break
    if isinstance(inner, keras.Sequential):
        return inner, body
    config = inner.get_config()
    previous = config["input_layers"][0][0] if len(config["input_layers"]) == 1 else None
    if previous is None or len(config["output_layers"]) != 1:
        raise StructuredPruningError("structured pruning handles models with one input and one output")
    for entry in config["layers"]:
        if entry["class_name"] == "InputLayer":
            continue
        nodes = entry["inbound_nodes"]
        sources = [n[0] for node in nodes for n in node] if nodes and isinstance(nodes[0], list) else None
        if sources != [previous]:
            raise StructuredPruningError(
                f"layer {entry['config']['name']!r} does not simply follow {previous!r}: structured pruning "
                "handles chains of layers (Sequential models, functional models without branches, "
                "skip connections or shared layers)"
            )
        previous = entry["config"]["name"]
    return inner, body


def _kernel_axes(layer) -> tuple[int, int]:
    """(input-channel axis, output-unit axis) of a Dense/Conv kernel."""
    k = layer.kernel.shape.rank
    return k - 2, k - 1


def _weight_layers(body) -> list:
    return [l for l in body if type(l).__name__ in PRUNABLE or type(l).__name__ in
            ("DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D", "LSTM", "GRU")]


def default_layers(model) -> list[str]:
    """The layers :func:`prune_structured` prunes by default: every Dense/Conv1D/Conv2D but the last weight layer."""
    _, body = _chain(model)
    weights = _weight_layers(body)
    return [l.name for l in weights[:-1] if type(l).__name__ in PRUNABLE]


def unit_saliency(model, criterion: str = "l1", x: np.ndarray | None = None,
                  layers: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Saliency of every output unit / filter of the given layers (default: :func:`default_layers`).

    ``"l1"``: sum of |w| of the unit's weights; ``"l2"``: their Euclidean norm; ``"activation"``:
    the unit's mean absolute output over the samples ``x``.
    """
    if criterion not in CRITERIA:
        raise StructuredPruningError(f"criterion must be one of {', '.join(CRITERIA)}, got {criterion!r}")
    inner, body = _chain(model)
    names = default_layers(model) if layers is None else list(layers)
    by_name = {l.name: l for l in body}
    for n in names:
        if n not in by_name:
            raise StructuredPruningError(f"no layer named {n!r}; the model's layers are: {', '.join(by_name)}")
        if type(by_name[n]).__name__ not in PRUNABLE:
            raise StructuredPruningError(f"layer {n!r} is a {type(by_name[n]).__name__}; structured pruning removes "
                                         f"units of {', '.join(PRUNABLE)} layers")
    if criterion == "activation":
        if x is None:
            raise StructuredPruningError("criterion='activation' needs samples: pass x (a few hundred training samples)")
        probe = keras.Model(inner.inputs, [by_name[n].output for n in names])
        outs = probe.predict(np.asarray(x, np.float32), batch_size=256, verbose=0)
        outs = outs if isinstance(outs, list) else [outs]
        return {n: np.abs(o).reshape(-1, o.shape[-1]).mean(axis=0) for n, o in zip(names, outs)}
    result = {}
    for n in names:
        k = by_name[n].kernel.numpy()
        axes = tuple(range(k.ndim - 1))
        result[n] = np.abs(k).sum(axis=axes) if criterion == "l1" else np.sqrt((k ** 2).sum(axis=axes))
    return result


def _check_fraction(value, what: str = "fraction") -> float:
    try:
        return check_sparsity(value, what)
    except PruningError:
        raise StructuredPruningError(
            f"{what} must be in [0, 1) (the fraction of units/filters removed from each pruned layer; 0.5 = half), "
            f"got {value!r}"
        ) from None


def _fractions(fraction, names: list[str]) -> dict[str, float]:
    if isinstance(fraction, Mapping):
        unknown = sorted(set(fraction) - set(names))
        if unknown:
            raise StructuredPruningError(f"fractions given for {unknown}, which are not pruned layers; those are {names}")
        return {n: _check_fraction(fraction.get(n, 0.0), f"fraction for {n!r}") for n in names}
    f = _check_fraction(fraction)
    return {n: f for n in names}


def _keep_indices(saliency: np.ndarray, fraction: float) -> np.ndarray:
    n = saliency.size
    keep = max(1, n - int(round(fraction * n)))
    order = np.argsort(-saliency, kind="stable")  # most salient first
    return np.sort(order[:keep])


def prune_structured(model, fraction: float | Mapping[str, float] = 0.5, criterion: str = "l1",
                     layers: Iterable[str] | None = None, x: np.ndarray | None = None) -> keras.Model:
    """A smaller model without the least salient ``fraction`` of units/filters of each pruned layer.

    ``fraction``: one value for every layer, or ``{layer name: fraction}``. ``layers``: the
    Dense/Conv layers to prune (default: all but the classifier). The new model has the same
    layer names and input (batch size included), its weights copied from ``model``; it is not
    compiled. Fine-tune it (:func:`fine_tune`) to recover the accuracy lost.
    """
    inner, body = _chain(model)
    names = default_layers(model) if layers is None else list(layers)
    if not names:
        raise StructuredPruningError(
            f"the model {model.name!r} has no layer whose units can be removed: structured pruning needs a "
            f"{', '.join(PRUNABLE)} layer followed by another weight layer (the last one, the classifier, keeps "
            "its outputs)"
        )
    fractions = _fractions(fraction, names)
    saliency = unit_saliency(model, criterion, x, names)
    last_weight = _weight_layers(body)[-1].name
    if last_weight in names:
        raise StructuredPruningError(f"{last_weight!r} is the model's last weight layer: its outputs are the model's "
                                     "outputs and cannot be removed")

    inp = keras.Input(model.input_shape[1:], batch_size=model.input_shape[0], name=inner.layers[0].name
                      if isinstance(inner.layers[0], keras.layers.InputLayer) else "input")
    t = inp
    keep = None  # indices of the channels (last axis) that survive in the current tensor; None = all
    plan = []  # (new layer, weights)
    for layer in body:
        kind = type(layer).__name__
        cfg = layer.get_config()
        weights = layer.get_weights()
        if kind in PRUNABLE:
            in_axis, out_axis = _kernel_axes(layer)
            if keep is not None:
                weights[0] = np.take(weights[0], keep, axis=in_axis)
            if layer.name in names:
                chosen = _keep_indices(saliency[layer.name], fractions[layer.name])
                weights[0] = np.take(weights[0], chosen, axis=out_axis)
                if layer.use_bias:
                    weights[1] = weights[1][chosen]
                cfg["units" if kind == "Dense" else "filters"] = int(len(chosen))
                keep = chosen if len(chosen) < layer.kernel.shape[-1] else None
            else:
                keep = None
            if kind != "Dense" and cfg.get("groups", 1) != 1:
                raise StructuredPruningError(f"layer {layer.name!r} is a grouped convolution, which is not supported")
        elif kind in ("DepthwiseConv1D", "DepthwiseConv2D"):
            if keep is not None:
                mult = int(layer.depth_multiplier)
                weights[0] = np.take(weights[0], keep, axis=weights[0].ndim - 2)
                keep = np.array([c * mult + j for c in keep for j in range(mult)])
                if layer.use_bias:
                    weights[1] = weights[1][keep]
        elif kind in ("BatchNormalization", "LayerNormalization"):
            if keep is not None:
                axis = cfg["axis"]
                axes = axis if isinstance(axis, (list, tuple)) else [axis]
                if [a % len(layer.input_shape) for a in axes] != [len(layer.input_shape) - 1]:
                    raise StructuredPruningError(f"{layer.name!r} normalizes over axis {axis}, not the channels")
                weights = [w[keep] for w in weights]
        elif kind == "Flatten":
            if keep is not None:
                shape = layer.input_shape[1:]
                channels = shape[-1]
                positions = int(np.prod(shape[:-1]))
                keep = (np.arange(positions)[:, None] * channels + keep[None, :]).ravel()
        elif kind in PASS_THROUGH:
            pass
        elif keep is not None:
            raise StructuredPruningError(
                f"layer {layer.name!r} ({kind}) follows a pruned layer, and structured pruning does not know how "
                f"to shrink it; supported after a pruned layer: {', '.join(PRUNABLE)}, DepthwiseConv, "
                "BatchNormalization, LayerNormalization, Flatten, pooling, activations, dropout"
            )
        new = type(layer).from_config(cfg)
        t = new(t)
        plan.append((new, weights))
    if keep is not None:
        raise StructuredPruningError("the model's output would lose units: do not prune the last weight layer")
    smaller = keras.Model(inp, t, name=model.name)
    for new, weights in plan:
        new.set_weights(weights)
    return smaller


def structure_report(before, after) -> pd.DataFrame:
    """Units/filters, parameters and MACs of every weight layer, before and after structured pruning."""
    from labkit.measure import layer_macs

    _, b_body = _chain(before)
    _, a_body = _chain(after)
    a_by_name = {l.name: l for l in a_body}
    rows = []
    for layer in _weight_layers(b_body):
        other = a_by_name.get(layer.name)
        if other is None:
            continue
        rows.append({"layer": layer.name, "type": type(layer).__name__,
                     "units before": int(layer.output_shape[-1]), "units after": int(other.output_shape[-1]),
                     "params before": int(layer.count_params()), "params after": int(other.count_params()),
                     "MACs before": layer_macs(layer), "MACs after": layer_macs(other)})
    table = pd.DataFrame(rows)
    total = {"layer": "total", "type": ""}
    for col in table.columns[2:]:
        total[col] = int(table[col].sum())
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True)


def fine_tune(model, x: np.ndarray, y: np.ndarray, epochs: int = 2, batch_size: int = 32,
              learning_rate: float = 1e-3, seed: int = 0, validation_data=None) -> keras.callbacks.History:
    """Train a pruned model (in place) to recover the accuracy that pruning cost."""
    return fit_classifier(model, x, y, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed,
               validation_data=validation_data)
