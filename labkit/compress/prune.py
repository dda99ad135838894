"""Magnitude pruning: set the smallest weights to zero, retrain the rest (Han et al. 2015).

Three ways to get there, all on tf_keras models:

* **one-shot** — :func:`prune_magnitude` zeroes the ``sparsity`` fraction of smallest-magnitude
  weights, per layer or over the whole network at once (``scope="global"``), and nothing else;
* **prune and retrain** — :func:`fine_tune_pruned` trains the survivors while the pruned weights
  stay at zero (:class:`KeepMasks`), and :func:`prune_iteratively` repeats prune-then-retrain
  over rising sparsities, Han et al.'s best recipe;
* **gradual, with a schedule** — :func:`prune_with_schedule` uses tensorflow-model-optimization's
  ``prune_low_magnitude`` with a ``PolynomialDecay`` whose update frequency is computed from the
  number of training steps (:func:`polynomial_schedule`). tfmot's default ``frequency=100``
  silently gives 0 % sparsity on a run of fewer than 100 steps, and misses the target whenever
  the pruning span is not a multiple of it; :func:`schedule_final_sparsity` says what a schedule
  really reaches.

What is pruned: every weight tensor called ``kernel`` (Dense, Conv*, the LSTM's input and
recurrent kernels, depthwise and pointwise kernels), never biases or normalization
parameters. :func:`sparsity_report` counts the zeros per layer; :func:`strip` removes tfmot's
wrappers before export. Pruned weights are still stored and multiplied in a dense int8 kernel:
what unstructured sparsity buys on a microcontroller is a smaller *compressed* file, not less
flash or time (see :mod:`labkit.compress.structured` for what does).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from labkit.train import copy_model, fit_classifier
from labkit.errors import LabkitError
from labkit.keras import keras

SCOPES = ("layer", "global")


class PruningError(LabkitError, ValueError):
    """A model, sparsity or schedule that pruning cannot work with."""


@dataclass(frozen=True)
class PrunableWeight:
    """One prunable weight tensor: its layer, its variable and a printable name."""

    layer: keras.layers.Layer
    variable: object  # tf.Variable

    @property
    def name(self) -> str:
        short = self.variable.name.split("/")[-1].split(":")[0]
        return f"{self.layer.name}/{short}"


def check_sparsity(sparsity: float, what: str = "sparsity") -> float:
    """``sparsity`` as a float in [0, 1), else a :class:`PruningError` saying so."""
    try:
        s = float(sparsity)
    except (TypeError, ValueError):
        raise PruningError(f"{what} must be a number in [0, 1), got {sparsity!r}") from None
    if not 0.0 <= s < 1.0:
        raise PruningError(
            f"{what} must be in [0, 1) (the fraction of weights set to zero; 0.8 = 80 %), got {sparsity!r}"
        )
    return s


def _all_layers(model) -> list:
    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out.extend(_all_layers(layer))
        else:
            out.append(layer)
    return out


def _unwrapped(layer):
    return getattr(layer, "layer", layer) if type(layer).__name__ == "PruneLowMagnitude" else layer


def prunable_weights(model, layers: Iterable[str] | None = None) -> list[PrunableWeight]:
    """The kernels magnitude pruning works on, in layer order (nested models included).

    ``layers``: names of the layers to prune (default: every layer with a kernel).
    """
    wanted = None if layers is None else list(layers)
    found, names = [], []
    for layer in _all_layers(model):
        inner = _unwrapped(layer)
        names.append(inner.name)
        if wanted is not None and inner.name not in wanted:
            continue
        for v in inner.trainable_weights:
            short = v.name.split("/")[-1].split(":")[0]
            if short.endswith("kernel"):
                found.append(PrunableWeight(inner, v))
    if wanted is not None:
        missing = [n for n in wanted if n not in names]
        if missing:
            raise PruningError(f"no layer named {', '.join(map(repr, missing))} in the model; its layers are: "
                               f"{', '.join(names)}")
    if not found:
        kinds = ", ".join(sorted({type(_unwrapped(l)).__name__ for l in _all_layers(model)})) or "none"
        raise PruningError(
            f"the model {model.name!r} has no prunable layers{' among ' + ', '.join(wanted) if wanted else ''}: "
            "magnitude pruning needs layers with a kernel (Dense, Conv1D, Conv2D, DepthwiseConv2D, "
            f"SeparableConv2D, LSTM, ...); its layers are: {kinds}"
        )
    return found


def _check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise PruningError(f"scope must be 'layer' (each layer to the same sparsity) or 'global' (one threshold "
                           f"over all layers), got {scope!r}")
    return scope


def _smallest(values: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask of the k smallest values (ties broken by position, so exactly k)."""
    mask = np.zeros(values.size, bool)
    if k > 0:
        mask[np.argsort(values.ravel(), kind="stable")[:k]] = True
    return mask.reshape(values.shape)


def magnitude_masks(model, sparsity: float, scope: str = "layer",
                    layers: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Masks (True = keep) that prune the ``sparsity`` fraction of smallest-magnitude weights.

    ``scope="layer"``: every kernel loses the same fraction. ``scope="global"``: one threshold
    for all kernels together, so layers with many small weights lose more.
    """
    sparsity = check_sparsity(sparsity)
    _check_scope(scope)
    weights = prunable_weights(model, layers)
    values = [np.abs(w.variable.numpy()) for w in weights]
    if scope == "layer":
        return {w.name: ~_smallest(v, int(round(sparsity * v.size))) for w, v in zip(weights, values)}
    flat = np.concatenate([v.ravel() for v in values])
    pruned = _smallest(flat, int(round(sparsity * flat.size)))
    masks, start = {}, 0
    for w, v in zip(weights, values):
        masks[w.name] = ~pruned[start : start + v.size].reshape(v.shape)
        start += v.size
    return masks


def masks_from_zeros(model, layers: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Masks that keep exactly the weights that are not zero now (to retrain a pruned model)."""
    return {w.name: w.variable.numpy() != 0 for w in prunable_weights(model, layers)}


def apply_masks(model, masks: dict[str, np.ndarray]) -> None:
    """Multiply each kernel by its mask, in place."""
    for w in prunable_weights(model):
        if w.name in masks:
            w.variable.assign(w.variable.numpy() * masks[w.name])


def prune_magnitude(model, sparsity: float, scope: str = "layer", layers: Iterable[str] | None = None,
                    copy: bool = True) -> keras.Model:
    """One-shot magnitude pruning: the smallest ``sparsity`` fraction of the weights set to zero.

    Returns a pruned copy (``copy=False``: prunes ``model`` itself). No retraining: follow with
    :func:`fine_tune_pruned`, or use :func:`prune_iteratively`.
    """
    masks = magnitude_masks(model, sparsity, scope, layers)
    target = copy_model(model) if copy else model
    apply_masks(target, masks)
    return target


class KeepMasks(keras.callbacks.Callback):
    """Keeps pruned weights at zero while training: re-applies the masks after every batch."""

    def __init__(self, masks: dict[str, np.ndarray]):
        super().__init__()
        self.masks = masks
        self._pairs = None

    def on_train_begin(self, logs=None):
        weights = {w.name: w.variable for w in prunable_weights(self.model)}
        unknown = sorted(set(self.masks) - set(weights))
        if unknown:
            raise PruningError(f"masks for unknown weights {unknown}; the model has {sorted(weights)}")
        self._pairs = [(weights[name], mask.astype(weights[name].dtype.as_numpy_dtype))
                       for name, mask in self.masks.items()]
        self._apply()

    def _apply(self):
        for variable, mask in self._pairs:
            variable.assign(variable * mask)

    def on_train_batch_end(self, batch, logs=None):
        self._apply()


def fine_tune_pruned(model, x: np.ndarray, y: np.ndarray, epochs: int = 2, masks: dict[str, np.ndarray] | None = None,
                     batch_size: int = 32, learning_rate: float = 1e-3, seed: int = 0,
                     validation_data=None) -> keras.callbacks.History:
    """Retrain a pruned model (in place) while its pruned weights stay zero.

    ``masks`` default: keep the weights that are non-zero now. The model keeps its
    regularizers (L1 or L2 in Han et al.'s experiments) while it retrains.
    """
    masks = masks_from_zeros(model) if masks is None else masks
    return fit_classifier(model, x, y, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed,
               callbacks=[KeepMasks(masks)], validation_data=validation_data)


def prune_iteratively(model, x: np.ndarray, y: np.ndarray, sparsities: Sequence[float], epochs: int = 1,
                      scope: str = "layer", layers: Iterable[str] | None = None, batch_size: int = 32,
                      learning_rate: float = 1e-3, seed: int = 0,
                      evaluate: tuple[np.ndarray, np.ndarray] | None = None,
                      callback: Callable[[float, keras.Model], None] | None = None) -> tuple[keras.Model, pd.DataFrame]:
    """Prune and retrain, again and again: to each sparsity in turn (ascending), ``epochs`` of retraining each.

    Works on a copy. Returns the final model and a table with one row per step: the sparsity
    and, with ``evaluate=(x_test, y_test)``, the test accuracy after retraining.
    ``callback(sparsity, model)`` is called after every step (to save a snapshot, say).
    """
    steps = sorted(check_sparsity(s) for s in sparsities)
    if not steps:
        raise PruningError("give at least one sparsity to prune to, e.g. sparsities=[0.5, 0.7, 0.8, 0.9]")
    _check_scope(scope)
    pruned = copy_model(model)
    rows = []
    for i, s in enumerate(steps):
        prune_magnitude(pruned, s, scope=scope, layers=layers, copy=False)
        if epochs:
            fine_tune_pruned(pruned, x, y, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                             seed=seed + i)
        row = {"sparsity": s}
        if evaluate is not None:
            row["accuracy"] = _accuracy(pruned, *evaluate)
        rows.append(row)
        if callback is not None:
            callback(s, pruned)
    return pruned, pd.DataFrame(rows)


def _accuracy(model, x, y) -> float:
    pred = model.predict(x, batch_size=512, verbose=0)
    return float(np.mean(np.argmax(pred, axis=-1) == y))


# --- gradual pruning with tensorflow-model-optimization ------------------------------------------

def _tfmot():
    import labkit.keras  # noqa: F401  (tf_keras first)
    import tensorflow_model_optimization as tfmot

    return tfmot


def polynomial_schedule(target_sparsity: float, total_steps: int, begin_fraction: float = 0.0,
                        end_fraction: float = 0.75, updates: int | None = None, initial_sparsity: float = 0.0,
                        exponent: int = 3):
    """tfmot's ``PolynomialDecay`` from ``initial_sparsity`` to ``target_sparsity``, with a frequency that works.

    The sparsity rises between ``begin_fraction`` and ``end_fraction`` of the ``total_steps``
    training steps (the rest retrains at the final sparsity), in ``updates`` mask updates
    (default: one every step up to 20 updates). The frequency is chosen so that the last update
    falls exactly on ``end_step``, where the schedule reaches the target.
    """
    target = check_sparsity(target_sparsity, "target_sparsity")
    initial = check_sparsity(initial_sparsity, "initial_sparsity")
    total_steps = int(total_steps)
    if not 0.0 <= begin_fraction < end_fraction <= 1.0:
        raise PruningError(f"need 0 <= begin_fraction < end_fraction <= 1, got {begin_fraction} and {end_fraction}")
    begin = int(round(begin_fraction * total_steps))
    span = int(round(end_fraction * total_steps)) - begin
    if span < 1:
        raise PruningError(f"{total_steps} training steps leave no room to prune between {begin_fraction:g} and "
                           f"{end_fraction:g} of training: train longer (more epochs or smaller batches)")
    updates = min(span, 20) if updates is None else int(updates)
    if not 1 <= updates <= span:
        raise PruningError(f"updates must be between 1 and {span} (the steps between begin and end), got {updates}")
    frequency = span // updates
    end = begin + frequency * updates
    return _tfmot().sparsity.keras.PolynomialDecay(initial_sparsity=initial, final_sparsity=target, begin_step=begin,
                                                   end_step=end, power=exponent, frequency=frequency)


def schedule_final_sparsity(schedule, total_steps: int) -> float:
    """The sparsity a tfmot schedule has applied when ``total_steps`` training steps are done.

    tfmot updates the masks at steps 1, 2, ... ``total_steps`` where ``(step - begin_step) %
    frequency == 0`` and ``begin_step <= step <= end_step``; the last such update is what the
    model keeps. 0 when no update happens at all (tfmot's default frequency of 100 on a short run).
    """
    cfg = schedule.get_config()["config"]
    begin, end, freq = int(cfg["begin_step"]), int(cfg["end_step"]), int(cfg["frequency"])
    last_end = total_steps if end < 0 else min(end, total_steps)
    if last_end < max(begin, 1):
        return 0.0
    last = begin + ((last_end - begin) // freq) * freq
    if last < 1:
        return 0.0
    if "final_sparsity" not in cfg:  # ConstantSparsity
        return float(cfg["target_sparsity"])
    progress = min(1.0, (last - begin) / max(end - begin, 1))
    s0, s1, power = float(cfg["initial_sparsity"]), float(cfg["final_sparsity"]), float(cfg["power"])
    return s1 + (s0 - s1) * (1.0 - progress) ** power


def prune_with_schedule(model, x: np.ndarray, y: np.ndarray, target_sparsity: float, epochs: int = 2,
                        batch_size: int = 32, learning_rate: float = 1e-3, begin_fraction: float = 0.0,
                        end_fraction: float = 0.75, updates: int | None = None, schedule=None, seed: int = 0,
                        validation_data=None, strip_wrappers: bool = True) -> keras.Model:
    """Gradual magnitude pruning while training, with tensorflow-model-optimization (per layer).

    Trains a copy of ``model`` for ``epochs`` with every prunable layer wrapped by tfmot's
    ``prune_low_magnitude`` and a :func:`polynomial_schedule` computed from the number of steps
    (or your own ``schedule``, checked to reach the target). Returns the pruned model,
    stripped of the wrappers unless ``strip_wrappers=False``.
    """
    target = check_sparsity(target_sparsity, "target_sparsity")
    prunable_weights(model)  # a clear error for a model with nothing to prune
    tfmot = _tfmot()
    steps = int(np.ceil(len(x) / batch_size)) * int(epochs)
    if schedule is None:
        schedule = polynomial_schedule(target, steps, begin_fraction, end_fraction, updates)
    reached = schedule_final_sparsity(schedule, steps)
    if reached < target - 1e-6:
        cfg = schedule.get_config()["config"]
        raise PruningError(
            f"this schedule stops at {reached:.1%} sparsity after {steps} steps, not {target:.1%}: it updates the "
            f"mask every {cfg['frequency']} steps from step {cfg['begin_step']} to {cfg['end_step']}. Make "
            "end_step - begin_step a multiple of the frequency and end_step <= the number of steps, or use "
            "labkit.compress.prune.polynomial_schedule(target, steps)"
        )
    wrapped = tfmot.sparsity.keras.prune_low_magnitude(copy_model(model), pruning_schedule=schedule)
    fit_classifier(wrapped, x, y, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep()], validation_data=validation_data)
    return strip(wrapped) if strip_wrappers else wrapped


def strip(model) -> keras.Model:
    """The model without tfmot's pruning wrappers (the zeros stay): what you save and convert."""
    if not any(type(l).__name__ == "PruneLowMagnitude" for l in _all_layers(model)):
        return model
    return _tfmot().sparsity.keras.strip_pruning(model)


def sparsity_report(model, layers: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per prunable weight tensor: its shape, size, zeros and sparsity; a total row last."""
    rows = []
    for w in prunable_weights(model, layers):
        v = w.variable.numpy()
        zeros = int(np.count_nonzero(v == 0))
        rows.append({"weight": w.name, "shape": "x".join(map(str, v.shape)), "weights": int(v.size),
                     "zeros": zeros, "sparsity": zeros / v.size})
    table = pd.DataFrame(rows)
    total_w, total_z = int(table["weights"].sum()), int(table["zeros"].sum())
    total = {"weight": "total", "shape": "", "weights": total_w, "zeros": total_z, "sparsity": total_z / total_w}
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True)


def overall_sparsity(model, layers: Iterable[str] | None = None) -> float:
    """Fraction of zeros over all prunable weights."""
    return float(sparsity_report(model, layers).iloc[-1]["sparsity"])
