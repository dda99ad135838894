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


def _head(x, n_classes: int, softmax: bool):
    x = keras.layers.Dense(n_classes, name="logits")(x)
    return keras.layers.Softmax(name="probabilities")(x) if softmax else x


def cnn1d(
    input_shape: Sequence[int],
    n_classes: int,
    filters: Sequence[int] = (8, 16),
    kernel_size: int = 5,
    batch_size: int | None = None,
    softmax: bool = True,
    name: str = "cnn1d",
) -> keras.Model:
    """A 1-D CNN for sensor windows (time, channels): conv-pool blocks, global average, dense."""
    inp = keras.Input(tuple(input_shape), batch_size=batch_size, name="input")
    x = inp
    for i, f in enumerate(filters):
        x = keras.layers.Conv1D(f, kernel_size, padding="same", activation="relu", name=f"conv_{i + 1}")(x)
        x = keras.layers.MaxPooling1D(2, name=f"pool_{i + 1}")(x)
    x = keras.layers.GlobalAveragePooling1D(name="global_average")(x)
    return keras.Model(inp, _head(x, n_classes, softmax), name=name)


def cnn(
    input_shape: Sequence[int],
    n_classes: int,
    filters: Sequence[int] = (16, 32),
    dense: int = 128,
    batch_size: int | None = None,
    softmax: bool = True,
    name: str = "cnn",
) -> keras.Model:
    """The classical CNN: (3x3 conv, 2x2 max-pool) blocks, flatten, a dense layer, the classifier."""
    inp = keras.Input(tuple(input_shape), batch_size=batch_size, name="input")
    x = inp
    for i, f in enumerate(filters):
        x = keras.layers.Conv2D(f, 3, padding="same", activation="relu", name=f"conv_{i + 1}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool_{i + 1}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    if dense:
        x = keras.layers.Dense(dense, activation="relu", name="dense")(x)
    return keras.Model(inp, _head(x, n_classes, softmax), name=name)


def ds_cnn(
    input_shape: Sequence[int],
    n_classes: int,
    alpha: float = 1.0,
    filters: Sequence[int] = (16, 32, 64),
    batch_size: int | None = None,
    softmax: bool = True,
    name: str | None = None,
) -> keras.Model:
    """A MobileNet-style depthwise-separable CNN with width multiplier ``alpha``.

    A strided 3x3 convolution, then per entry of ``filters`` a depthwise 3x3 and a pointwise
    1x1 convolution (each followed by batch normalization and ReLU6, which the converter folds),
    global average pooling and the classifier. ``alpha`` scales every layer's channels.
    """
    if alpha <= 0:
        raise ValueError(f"alpha must be positive, got {alpha}")

    def width(c: int) -> int:
        return max(4, int(round(c * alpha)))

    inp = keras.Input(tuple(input_shape), batch_size=batch_size, name="input")
    x = keras.layers.Conv2D(width(filters[0]), 3, strides=2, padding="same", use_bias=False, name="stem")(inp)
    x = keras.layers.ReLU(6.0, name="stem_relu")(keras.layers.BatchNormalization(name="stem_bn")(x))
    for i, f in enumerate(filters[1:] if len(filters) > 1 else filters):
        stride = 2 if i > 0 else 1
        x = keras.layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"dw_{i + 1}")(x)
        x = keras.layers.ReLU(6.0, name=f"dw_{i + 1}_relu")(keras.layers.BatchNormalization(name=f"dw_{i + 1}_bn")(x))
        x = keras.layers.Conv2D(width(f), 1, use_bias=False, name=f"pw_{i + 1}")(x)
        x = keras.layers.ReLU(6.0, name=f"pw_{i + 1}_relu")(keras.layers.BatchNormalization(name=f"pw_{i + 1}_bn")(x))
    x = keras.layers.GlobalAveragePooling2D(name="global_average")(x)
    return keras.Model(inp, _head(x, n_classes, softmax), name=name or f"ds_cnn_{alpha:g}")


def lstm_classifier(
    input_shape: Sequence[int],
    n_classes: int,
    units: int = 16,
    batch_size: int | None = None,
    softmax: bool = True,
    name: str = "lstm",
) -> keras.Model:
    """An LSTM over a sequence (time, features), its last output classified by a dense layer.

    Converted with a batch size of 1 (labkit.compress.quantize.to_int8_tflite does it), the
    LSTM becomes one int8 UNIDIRECTIONAL_SEQUENCE_LSTM op that labkit-nn and TFLite Micro run.
    """
    inp = keras.Input(tuple(input_shape), batch_size=batch_size, name="input")
    x = keras.layers.LSTM(units, name="lstm")(inp)
    return keras.Model(inp, _head(x, n_classes, softmax), name=name)


def with_batch_size(model: keras.Model, batch_size: int | None = 1) -> keras.Model:
    """``model`` called on an input with a fixed batch size (the same layers and weights).

    The TFLite converter turns a dynamic batch into SHAPE/PACK/STRIDED_SLICE ops that
    microcontroller runtimes reject; a batch of 1 gives a static graph.
    """
    if model.input_shape[0] == batch_size:
        return model
    inp = keras.Input(model.input_shape[1:], batch_size=batch_size, name="input")
    return keras.Model(inp, model(inp), name=model.name)
