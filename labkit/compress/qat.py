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
