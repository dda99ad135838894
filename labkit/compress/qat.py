"""Quantization-aware training (QAT) with tensorflow-model-optimization.

Post-training quantization rounds a trained float model; QAT lets the model *train* with the
rounding in the loop: tfmot wraps every layer so that the forward pass quantizes weights and
activations to int8 ("fake quantization") while gradients flow as if it did not (the
straight-through estimator). A few epochs of fine-tuning teach the weights to sit where
rounding hurts least. The converter then reads the ranges learned in training.

    qat = quantization_aware(model)                 # wrapped copy, float weights kept
    fine_tune_qat(qat, x_train, y_train, epochs=2)  # a low learning rate: it is fine-tuning
    tflite = qat_to_int8_tflite(qat, x_train)       # full int8, int8 in/out, batch size 1

Fewer bits for the weights (``weight_bits=4``: 15 levels, −7 … 7) keep 8-bit activations and the same
full-int8 .tflite (the converter stores the 4-bit codes in int8); :func:`round_weights` is the
post-training counterpart, rounding a float model's weights the same way before ``to_int8_tflite``.
Weights are symmetric, per output channel for convolutions and per tensor for dense layers, as
in tfmot's default 8-bit scheme (the converter refuses per-channel fake quantization of a dense
layer's weights).
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


_LOW_BIT_LAYERS = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D)


def _check_weight_bits(model, bits) -> int:
    """``bits`` as an int in 2 … 8; below 8, every layer with weights one that low-bit weights support."""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 2 <= bits <= 8:
        raise QATError(f"weight_bits must be a whole number of bits from 2 to 8, got {bits!r}")
    if bits < 8:
        other = [l.name for l in model.layers if l.weights and (type(l) not in _LOW_BIT_LAYERS)]
        if other:
            raise QATError(f"weights of fewer than 8 bits are supported in Dense, Conv1D and Conv2D layers only; "
                           f"{model.name!r} also has weights in {', '.join(other)}: use weight_bits=8 for it")
    return int(bits)


def _per_channel(layer) -> bool:
    return not isinstance(layer, keras.layers.Dense)  # convolutions per output channel, dense per tensor


def _low_bit_config(bits: int):
    """A tfmot QuantizeConfig: ``bits``-bit symmetric weights, an 8-bit activation (tfmot's default otherwise)."""
    Q = _tfmot().quantization.keras

    class LowBitWeights(Q.QuantizeConfig):
        def get_weights_and_quantizers(self, layer):
            return [(layer.kernel, Q.quantizers.LastValueQuantizer(
                num_bits=bits, per_axis=_per_channel(layer), symmetric=True, narrow_range=True))]

        def get_activations_and_quantizers(self, layer):
            return [(layer.activation, Q.quantizers.MovingAverageQuantizer(
                num_bits=8, per_axis=False, symmetric=False, narrow_range=False))]

        def set_quantize_weights(self, layer, quantize_weights):
            layer.kernel = quantize_weights[0]

        def set_quantize_activations(self, layer, quantize_activations):
            layer.activation = quantize_activations[0]

        def get_output_quantizers(self, layer):
            return []

        def get_config(self):
            return {}

    return LowBitWeights


def quantization_aware(model, weight_bits: int = 8) -> keras.Model:
    """A copy of ``model`` with tfmot's int8 fake-quantization around every layer (not compiled).

    ``weight_bits`` below 8 fake-quantizes the weights of Dense, Conv1D and Conv2D layers to that many
    bits (activations stay 8-bit); it converts to full int8 like any QAT model.
    """
    if not isinstance(model, keras.Model):
        raise QATError(f"expected a tf_keras Model, got {type(model).__name__}")
    if any(isinstance(l, keras.Model) for l in model.layers):
        raise QATError("the model contains a nested model: quantize the inner model, or rebuild it flat "
                       "(labkit's model builders give flat models)")
    weight_bits = _check_weight_bits(model, weight_bits)
    tfmot = _tfmot()
    try:
        if weight_bits == 8:
            return tfmot.quantization.keras.quantize_model(copy_model(model))
        Q, config = tfmot.quantization.keras, _low_bit_config(weight_bits)

        def annotate(layer):  # a fresh layer; Dense and convolutions marked for the low-bit config
            fresh = layer.__class__.from_config(layer.get_config())
            return Q.quantize_annotate_layer(fresh, config()) if type(layer) in _LOW_BIT_LAYERS else fresh

        annotated = keras.models.clone_model(model, clone_function=annotate)
        annotated.set_weights(model.get_weights())
        with Q.quantize_scope({"LowBitWeights": config}):
            return Q.quantize_apply(Q.quantize_annotate_model(annotated))
    except (ValueError, RuntimeError) as e:
        raise QATError(
            f"tensorflow-model-optimization cannot make {model.name!r} quantization-aware: {e}. Supported: "
            "Sequential or functional tf_keras models of built-in layers (Dense, Conv, pooling, BatchNormalization, "
            "activations ...)"
        ) from None


def round_weights(model, bits: int = 4) -> keras.Model:
    """A copy of ``model`` whose Dense, Conv1D and Conv2D weights are rounded to ``bits`` bits, as
    :func:`quantization_aware` rounds them (symmetric, narrow range: scale = max |w| / (2**(bits-1) - 1),
    per output channel for convolutions, per tensor for dense layers): post-training quantization of the
    weights at fewer bits, to convert with ``to_int8_tflite`` like any float model. Biases are kept."""
    if not isinstance(model, keras.Model):
        raise QATError(f"expected a tf_keras Model, got {type(model).__name__}")
    bits = _check_weight_bits(model, bits)
    levels = 2 ** (bits - 1) - 1
    out = copy_model(model)
    for layer in out.layers:
        if type(layer) in _LOW_BIT_LAYERS:
            kernel, *rest = layer.get_weights()
            flat = np.abs(kernel).reshape(-1, kernel.shape[-1])
            top = flat.max(axis=0) if _per_channel(layer) else flat.max()
            scale = np.where(top > 0, top / levels, 1.0).astype(np.float32)
            layer.set_weights([(np.round(kernel / scale) * scale).astype(kernel.dtype), *rest])
    return out


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
