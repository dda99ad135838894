"""Quantization-aware training (QAT) with tensorflow-model-optimization.

Post-training quantization rounds a trained float model; QAT lets the model *train* with the
rounding in the loop: tfmot wraps every layer so that the forward pass quantizes weights and
activations to int8 ("fake quantization") while gradients flow as if it did not (the
straight-through estimator). A few epochs of fine-tuning teach the weights to sit where
rounding hurts least. The converter then reads the ranges learned in training.

    qat = quantization_aware(model)                 # wrapped copy, float weights kept
    fine_tune_qat(qat, x_train, y_train, epochs=2)  # a low learning rate: it is fine-tuning
    tflite = qat_to_int8_tflite(qat, x_train)       # full int8, int8 in/out, batch size 1
"""

from __future__ import annotations

import numpy as np

from labkit.train import copy_model, fit_classifier
from labkit.errors import LabkitError
from labkit.keras import keras


class QATError(LabkitError, ValueError):
    """A model that quantization-aware training cannot wrap."""


def _tfmot():
    import labkit.keras  # noqa: F401  (tf_keras first)
    import tensorflow_model_optimization as tfmot

    return tfmot


def quantization_aware(model) -> keras.Model:
    """A copy of ``model`` with tfmot's int8 fake-quantization around every layer (not compiled)."""
    if not isinstance(model, keras.Model):
        raise QATError(f"expected a tf_keras Model, got {type(model).__name__}")
    if any(isinstance(l, keras.Model) for l in model.layers):
        raise QATError("the model contains a nested model: quantize the inner model, or rebuild it flat "
                       "(labkit's model builders give flat models)")
    tfmot = _tfmot()
    try:
        return tfmot.quantization.keras.quantize_model(copy_model(model))
    except (ValueError, RuntimeError) as e:
        raise QATError(
            f"tensorflow-model-optimization cannot make {model.name!r} quantization-aware: {e}. Supported: "
            "Sequential or functional tf_keras models of built-in layers (Dense, Conv, pooling, BatchNormalization, "
            "activations ...)"
        ) from None


def fine_tune_qat(qat_model, x: np.ndarray, y: np.ndarray, epochs: int = 2, batch_size: int = 32,
                  learning_rate: float = 1e-4, seed: int = 0, validation_data=None) -> keras.callbacks.History:
    """Train a :func:`quantization_aware` model (in place); a low learning rate, since it starts trained."""
    return fit_classifier(qat_model, x, y, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed,
               validation_data=validation_data)


def qat_to_int8_tflite(qat_model, representative_x: np.ndarray, samples: int = 200, seed: int = 0) -> bytes:
    """Full-int8 .tflite (int8 input and output, batch size 1) from a quantization-aware model."""
    from labkit.compress.quantize import to_int8_tflite

    return to_int8_tflite(qat_model, representative_x, samples=samples, seed=seed)


def prefer_qat(model, ptq_tflite: bytes, x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, *,
               qat: bool | None = None, epochs: int = 2, seed: int = 0, log=print) -> tuple[bytes, bool]:
    """(int8 .tflite, whether it is the quantization-aware one) for a trained ``model``.

    ``qat``: None tries QAT (``epochs`` of fine-tuning on ``x``, ``y``) and keeps it when its int8
    accuracy on (``x_val``, ``y_val``) is higher than post-training quantization's (``ptq_tflite``);
    True always uses it (a model tfmot cannot wrap is then an error); False returns ``ptq_tflite``.
    """
    from labkit.compress.quantize import evaluate_tflite

    if qat is False:
        return ptq_tflite, False
    try:
        q = quantization_aware(model)
        fine_tune_qat(q, x, y, epochs=max(1, epochs), seed=seed)
        qtfl = qat_to_int8_tflite(q, x, seed=seed)
    except LabkitError as e:
        if qat:
            raise
        log(f"quantization-aware training left out: {e}")
        return ptq_tflite, False
    if qat:
        return qtfl, True
    a_ptq, a_qat = evaluate_tflite(ptq_tflite, x_val, y_val), evaluate_tflite(qtfl, x_val, y_val)
    log(f"int8 accuracy on the validation split: post-training {a_ptq:.4f}, quantization-aware {a_qat:.4f}")
    return (qtfl, True) if a_qat > a_ptq else (ptq_tflite, False)
