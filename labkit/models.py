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
    kernel_size: int = 3,
) -> keras.Model:
    """The classical CNN: (conv, 2x2 max-pool) blocks, flatten, a dense layer, the classifier.

    Convolutions are ``kernel_size`` x ``kernel_size`` with 'same' padding and ReLU; ``dense=0``
    leaves the hidden dense layer out.
    """
    inp = keras.Input(tuple(input_shape), batch_size=batch_size, name="input")
    x = inp
    for i, f in enumerate(filters):
        x = keras.layers.Conv2D(f, kernel_size, padding="same", activation="relu", name=f"conv_{i + 1}")(x)
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
    bn_momentum: float = 0.99,
) -> keras.Model:
    """A MobileNet-style depthwise-separable CNN with width multiplier ``alpha``.

    A strided 3x3 convolution, then per entry of ``filters`` a depthwise 3x3 and a pointwise
    1x1 convolution (each followed by batch normalization and ReLU6, which the converter folds),
    global average pooling and the classifier. ``alpha`` scales every layer's channels.

    ``bn_momentum``: how slowly batch normalization's running mean and variance (the ones used
    at inference) follow the batches. Keras's 0.99 suits long training; for a few hundred steps
    use 0.9, or the running statistics lag behind the weights and test accuracy collapses.
    """
    if alpha <= 0:
        raise ValueError(f"alpha must be positive, got {alpha}")

    def width(c: int) -> int:
        return max(4, int(round(c * alpha)))

    inp = keras.Input(tuple(input_shape), batch_size=batch_size, name="input")
    x = keras.layers.Conv2D(width(filters[0]), 3, strides=2, padding="same", use_bias=False, name="stem")(inp)
    bn = dict(momentum=bn_momentum)
    x = keras.layers.ReLU(6.0, name="stem_relu")(keras.layers.BatchNormalization(name="stem_bn", **bn)(x))
    for i, f in enumerate(filters[1:] if len(filters) > 1 else filters):
        stride = 2 if i > 0 else 1
        x = keras.layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"dw_{i + 1}")(x)
        x = keras.layers.ReLU(6.0, name=f"dw_{i + 1}_relu")(keras.layers.BatchNormalization(name=f"dw_{i + 1}_bn", **bn)(x))
        x = keras.layers.Conv2D(width(f), 1, use_bias=False, name=f"pw_{i + 1}")(x)
        x = keras.layers.ReLU(6.0, name=f"pw_{i + 1}_relu")(keras.layers.BatchNormalization(name=f"pw_{i + 1}_bn", **bn)(x))
    x = keras.layers.GlobalAveragePooling2D(name="global_average")(x)
    return keras.Model(inp, _head(x, n_classes, softmax), name=name or f"ds_cnn_{alpha:g}")


def lstm_classifier(
    input_shape: Sequence[int],
    n_classes: int,
    units: int = 16,
    batch_size: int | None = None,
    softmax: bool = True,
    name: str = "lstm",
    pool: int = 1,
) -> keras.Model:
    """An LSTM over a sequence (time, features), its last output classified by a dense layer.

    ``pool`` > 1 first averages the sequence over that many steps (an AveragePooling1D layer
    named "downsample"): a shorter sequence for the LSTM to learn over.
    Converted with a batch size of 1 (labkit.compress.quantize.to_int8_tflite does it), the
    LSTM becomes one int8 UNIDIRECTIONAL_SEQUENCE_LSTM op that labkit-nn and TFLite Micro run.
    """
    inp = keras.Input(tuple(input_shape), batch_size=batch_size, name="input")
    x = keras.layers.AveragePooling1D(pool, name="downsample")(inp) if pool > 1 else inp
    x = keras.layers.LSTM(units, name="lstm")(x)
    return keras.Model(inp, _head(x, n_classes, softmax), name=name)


def cnn_gap(
    input_shape: Sequence[int],
    n_classes: int,
    filters: Sequence[int] = (16, 32, 64),
    kernel_size: int = 3,
    batch_size: int | None = None,
    softmax: bool = True,
    name: str = "cnn_gap",
) -> keras.Model:
    """A fully convolutional CNN: conv blocks, then global average pooling instead of flatten + dense.

    Every entry of ``filters`` is a convolution ('same', ReLU), each but the last followed by a
    2x2 max-pool; global average pooling then reduces each channel to one number, and one dense
    layer classifies them. (Dense after averaging equals a 1x1 convolution to ``n_classes``
    channels followed by averaging: both are linear.) The head's parameters no longer grow
    with the image size.
    """
    inp = keras.Input(tuple(input_shape), batch_size=batch_size, name="input")
    x = inp
    for i, f in enumerate(filters):
        x = keras.layers.Conv2D(f, kernel_size, padding="same", activation="relu", name=f"conv_{i + 1}")(x)
        if i < len(filters) - 1:
            x = keras.layers.MaxPooling2D(2, name=f"pool_{i + 1}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="global_average")(x)
    return keras.Model(inp, _head(x, n_classes, softmax), name=name)


def inception_module(
    input_shape: Sequence[int] = (28, 28, 192),
    f1: int = 64,
    f3: int = 128,
    f5: int = 32,
    pool_proj: int = 32,
    reduce3: int = 96,
    reduce5: int = 16,
    reduce: bool = True,
    name: str | None = None,
) -> keras.Model:
    """One inception module (GoogLeNet), as a model of its own.

    Four branches side by side on the same input, concatenated along the channels: a 1x1
    convolution (``f1``), a 3x3 (``f3``), a 5x5 (``f5``) and a 3x3 max-pool. ``reduce=False`` is
    the *naive* module: the 3x3 and 5x5 see all input channels, and the pool branch passes
    them all on. ``reduce=True`` puts 1x1 convolutions first (``reduce3``, ``reduce5`` channels)
    and after the pool (``pool_proj``), which cuts parameters and MACs. The defaults are
    GoogLeNet's module 3a (28x28x192 in, 256 channels out).
    """
    inp = keras.Input(tuple(input_shape), name="input")

    def conv(x, filters, k, branch):
        return keras.layers.Conv2D(filters, k, padding="same", activation="relu", name=branch)(x)

    b1 = conv(inp, f1, 1, "1x1")
    b3 = conv(conv(inp, reduce3, 1, "3x3_reduce") if reduce else inp, f3, 3, "3x3")
    b5 = conv(conv(inp, reduce5, 1, "5x5_reduce") if reduce else inp, f5, 5, "5x5")
    bp = keras.layers.MaxPooling2D(3, strides=1, padding="same", name="pool")(inp)
    if reduce:
        bp = conv(bp, pool_proj, 1, "pool_proj")
    out = keras.layers.Concatenate(name="concat")([b1, b3, b5, bp])
    return keras.Model(inp, out, name=name or ("inception_reduced" if reduce else "inception_naive"))


def transfer_head(
    base: keras.Model,
    n_classes: int,
    feature_layer: str,
    freeze: bool = True,
    softmax: bool = True,
    name: str = "transfer",
) -> keras.Model:
    """A new classifier on the features a trained ``base`` computes at ``feature_layer``.

    The layers up to ``feature_layer`` are kept with their trained weights (frozen when
    ``freeze``: only the new head trains); the layers after it are dropped and a new dense
    layer with ``n_classes`` outputs is put on top.
    """
    try:
        features = base.get_layer(feature_layer).output
    except ValueError:
        names = [l.name for l in base.layers]
        raise ValueError(f"{base.name} has no layer {feature_layer!r}; its layers are {names}") from None
    extractor = keras.Model(base.input, features, name=f"{base.name}_features")
    extractor.trainable = not freeze
    inp = keras.Input(base.input_shape[1:], name="input")
    x = extractor(inp, training=False)
    x = keras.layers.Dense(n_classes, name="new_logits")(x)
    if softmax:
        x = keras.layers.Softmax(name="probabilities")(x)
    return keras.Model(inp, x, name=name)


def gesture_lstm(
    input_shape: Sequence[int],
    n_classes: int,
    units: int = 32,
    pool: int = 4,
    batch_size: int | None = None,
    softmax: bool = True,
    name: str = "gesture_lstm",
) -> keras.Model:
    """An LSTM for IMU windows that trains quickly and converts to one int8 LSTM op.

    The window is first averaged over ``pool`` samples (119 samples at 119 Hz become 29 at
    about 30 Hz): a gesture lasts up to a second, and an LSTM learns far more easily over 29
    steps than over 119, where the gradient has to travel back four times as far. The averaging
    is a layer of the model (AveragePooling1D, which converts to AVERAGE_POOL_2D), so the board
    feeds the raw window. Converted with a batch size of 1, the LSTM becomes one
    UNIDIRECTIONAL_SEQUENCE_LSTM op.
    """
    return lstm_classifier(input_shape, n_classes, units=units, batch_size=batch_size, softmax=softmax, name=name,
                           pool=pool)


def lstm_tagger(
    input_shape: Sequence[int],
    n_classes: int,
    units: int = 16,
    batch_size: int | None = None,
    softmax: bool = True,
    name: str = "lstm_tagger",
) -> keras.Model:
    """Sequence to sequence: an LSTM returning its output at every step, each classified.

    Output (time, n_classes): one prediction per time step (e.g. "which activity, now?"),
    where :func:`lstm_classifier` (sequence to one) gives one per sequence.
    """
    inp = keras.Input(tuple(input_shape), batch_size=batch_size, name="input")
    x = keras.layers.LSTM(units, return_sequences=True, name="lstm")(inp)
    return keras.Model(inp, _head(x, n_classes, softmax), name=name)


def char_lstm(
    vocab_size: int,
    units: int = 128,
    embedding_dim: int = 32,
    batch_size: int | None = None,
    name: str = "char_lstm",
) -> keras.Model:
    """A character-level language model: embedding, one LSTM, logits for the next character.

    Input: character ids (batch, time), any length. Output: (batch, time, vocab_size) logits,
    one distribution over the next character at every position (sequence to sequence).
    :func:`labkit.course.sequences.generate` samples text from it.
    """
    inp = keras.Input((None,), batch_size=batch_size, dtype="int32", name="chars")
    x = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")(inp)
    x = keras.layers.LSTM(units, return_sequences=True, name="lstm")(x)
    x = keras.layers.Dense(vocab_size, name="logits")(x)
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
