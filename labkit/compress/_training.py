"""Seeded (re)training shared by the compression techniques: fine-tuning after pruning, QAT.

Like :func:`labkit.train.fit_classifier`, but it accepts callbacks (pruning needs them) and sees
through the wrappers that pruning and quantization-aware training put around layers when it
decides whether the model ends in a softmax.
"""

from __future__ import annotations

import numpy as np

from labkit.keras import keras


def _unwrap(layer):
    while hasattr(layer, "layer") and isinstance(getattr(layer, "layer"), keras.layers.Layer):
        layer = layer.layer  # PruneLowMagnitude, QuantizeWrapperV2, ...
    return layer


def ends_in_softmax(model) -> bool:
    """True when the model's last layer is a softmax (so the loss gets probabilities, not logits)."""
    last = model
    while isinstance(last, keras.Model):
        last = _unwrap(last.layers[-1])
    return isinstance(last, keras.layers.Softmax) or getattr(last, "activation", None) is keras.activations.softmax


def compile_classifier(model, learning_rate: float = 1e-3) -> None:
    """Adam and sparse categorical cross-entropy (from logits unless the model ends in a softmax)."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=not ends_in_softmax(model)),
        metrics=["accuracy"],
    )


def fit(model, x: np.ndarray, y: np.ndarray, epochs: int = 2, batch_size: int = 32, learning_rate: float = 1e-3,
        seed: int = 0, callbacks=(), validation_data=None, verbose: int = 0) -> keras.callbacks.History:
    """Seed, compile and train ``model`` (in place)."""
    keras.utils.set_random_seed(seed)
    compile_classifier(model, learning_rate)
    return model.fit(x, y, epochs=epochs, batch_size=batch_size, callbacks=list(callbacks),
                     validation_data=validation_data, verbose=verbose, shuffle=True)


def copy_model(model) -> keras.Model:
    """A new model with the same architecture and a copy of the weights (not compiled)."""
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone
