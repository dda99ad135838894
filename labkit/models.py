"""Model builders (tf_keras). Each returns an uncompiled ``keras.Model``.

Pass ``batch_size=1`` for a model that converts to a TFLite graph with static shapes
(TFLite Micro and labkit-nn need them); :func:`with_batch_size` does it for a trained model.
"""

from __future__ import annotations

from typing import Sequence

from labkit.keras import keras


def mlp(
    input_shape: Sequence[int],
    n_classes: int,
    hidden: Sequence[int] = (32, 16),
    dropout: float = 0.0,
    batch_size: int | None = None,
    softmax: bool = True,
    name: str = "mlp",
) -> keras.Model:
    """A multilayer perceptron: flatten, ``hidden`` ReLU layers, a ``n_classes`` output."""
    inp = keras.Input(tuple(input_shape), batch_size=batch_size, name="input")
    x = keras.layers.Flatten(name="flatten")(inp) if len(input_shape) > 1 else inp
    for i, units in enumerate(hidden):
        x = keras.layers.Dense(units, activation="relu", name=f"dense_{i + 1}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dropout_{i + 1}")(x)
    x = keras.layers.Dense(n_classes, name="logits")(x)
    if softmax:
        x = keras.layers.Softmax(name="probabilities")(x)
    return keras.Model(inp, x, name=name)


def with_batch_size(model: keras.Model, batch_size: int | None = 1) -> keras.Model:
    """``model`` called on an input with a fixed batch size (the same layers and weights).

    The TFLite converter turns a dynamic batch into SHAPE/PACK/STRIDED_SLICE ops that
    microcontroller runtimes reject; a batch of 1 gives a static graph.
    """
    if model.input_shape[0] == batch_size:
        return model
    inp = keras.Input(model.input_shape[1:], batch_size=batch_size, name="input")
    return keras.Model(inp, model(inp), name=model.name)
