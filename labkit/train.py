"""Seeded training with the defaults a small edge model needs."""

from __future__ import annotations

import numpy as np

from labkit.datacheck import check_classifier_data, check_int, check_training_options
from labkit.keras import keras


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow: the same seed gives bit-identical weights on this CPU."""
    keras.utils.set_random_seed(seed)


def _unwrap(layer):
    while isinstance(getattr(layer, "layer", None), keras.layers.Layer):
        layer = layer.layer  # PruneLowMagnitude, QuantizeWrapperV2, ...
    return layer


def ends_in_softmax(model: keras.Model) -> bool:
    """True when the model's last layer is a softmax, seen through nested models and the wrappers
    that pruning and quantization-aware training put around layers."""
    last = model
    while isinstance(last, keras.Model):
        last = _unwrap(last.layers[-1])
    return isinstance(last, keras.layers.Softmax) or getattr(last, "activation", None) is keras.activations.softmax


def compile_classifier(model: keras.Model, learning_rate: float = 1e-3) -> None:
    """Adam and sparse categorical cross-entropy (from logits unless the model ends in a softmax)."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=not ends_in_softmax(model)),
        metrics=["accuracy"],
    )


def fit_classifier(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    epochs: int = 30,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    patience: int | None = None,
    seed: int = 0,
    verbose: int = 0,
    callbacks=(),
) -> keras.callbacks.History:
    """Compile ``model`` (Adam, sparse categorical cross-entropy) and train it in place, seeded.

    The seed fixes the order of the batches and dropout; the initial weights were drawn when
    the model was built, so call :func:`set_seed` before building it for a repeatable run.

    ``patience``: stop early when the validation loss has not improved for that many
    epochs, and keep the best weights. ``callbacks``: more Keras callbacks (pruning needs one).

    Before any training, arrays are checked (:mod:`labkit.datacheck`): samples shaped like the
    model's input, no NaN or infinite value, one label per sample, each a class the model outputs;
    and ``epochs`` >= 0, ``batch_size`` >= 1, ``learning_rate`` in (0, 1]. A problem raises a
    :class:`~labkit.errors.DatasetError` (or :class:`~labkit.errors.LabkitError`) saying which.
    """
    epochs, batch_size, learning_rate = check_training_options(epochs, batch_size, learning_rate)
    if patience is not None:
        patience = check_int(patience, "patience", 0)
    if isinstance(x, np.ndarray):
        check_classifier_data(model, x, y if isinstance(y, (np.ndarray, list, tuple)) else None, as_float32=False)
    if validation_data is not None and len(validation_data) >= 2 and isinstance(validation_data[0], np.ndarray):
        check_classifier_data(model, validation_data[0], validation_data[1], "validation_data x", "validation_data y",
                              as_float32=False)
    set_seed(seed)
    compile_classifier(model, learning_rate)
    callbacks = list(callbacks)
    if patience is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss" if validation_data is not None else "loss",
                patience=patience,
                restore_best_weights=True,
            )
        )
    return model.fit(
        x,
        y,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=validation_data,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=True,
    )


def copy_model(model: keras.Model) -> keras.Model:
    """A new model with the same architecture and a copy of the weights (not compiled)."""
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> float:
    """Fraction of samples whose highest-scoring class is the label."""
    pred = model.predict(x, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(pred, axis=-1) == y))
