"""The search space: define-by-run (Optuna), over the kit's model families.

:func:`suggest_model` asks an Optuna trial (or :class:`optuna.trial.FixedTrial` with the best
trial's parameters, to build that model again) for a family and its architecture and training
settings, and returns an untrained tf_keras model with the settings. Which questions are asked
depends on the earlier answers: an LSTM has no kernel size, a 1-D CNN has one per block.

Sensor windows (N, time, channels): ``mlp``, ``cnn1d``, ``ds_cnn1d`` (depthwise-separable),
``lstm``; images (N, height, width, channels): ``cnn``, ``ds_cnn`` (MobileNet-style, width α);
feature vectors (N, features): ``mlp``.
"""

from __future__ import annotations

from dataclasses import dataclass

from labkit.errors import LabkitError

SENSOR_FAMILIES = ("mlp", "cnn1d", "ds_cnn1d", "lstm")
IMAGE_FAMILIES = ("cnn", "ds_cnn")
VECTOR_FAMILIES = ("mlp",)
FAMILIES = tuple(dict.fromkeys(SENSOR_FAMILIES + IMAGE_FAMILIES))


def families_for(input_shape: tuple[int, ...]) -> tuple[str, ...]:
    """The families that take inputs of this shape (without the batch axis)."""
    return {1: VECTOR_FAMILIES, 2: SENSOR_FAMILIES, 3: IMAGE_FAMILIES}.get(len(input_shape), ())


def check_families(names, input_shape: tuple[int, ...]) -> tuple[str, ...]:
    """``names`` (None: all that fit the data) checked against the data's shape."""
    fitting = families_for(input_shape)
    if not fitting:
        raise LabkitError(f"samples of shape {input_shape}: expected feature vectors (N, features), sensor windows "
                          "(N, time, channels) or images (N, height, width, channels)")
    if names is None:
        return fitting
    names = tuple(dict.fromkeys(n.strip() for n in names if n.strip()))
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        raise LabkitError(f"--family {','.join(unknown)}: unknown; the families are {', '.join(FAMILIES)}")
    wrong = [n for n in names if n not in fitting]
    if wrong or not names:
        raise LabkitError(f"--family {','.join(wrong or names)} does not take samples of shape {input_shape}; "
                          f"for these use {', '.join(fitting)}")
    return names


@dataclass
class Candidate:
    """An untrained model and how to train it."""

    model: object
    family: str
    learning_rate: float
    batch_size: int
    epochs: int
    dropout: float


def suggest_model(trial, input_shape, n_classes: int, families, max_epochs: int = 20) -> Candidate:
    """Ask ``trial`` for one candidate of ``families`` taking ``input_shape``; build it (untrained)."""
    from labkit.keras import keras

    input_shape = tuple(int(d) for d in input_shape)
    family = trial.suggest_categorical("family", list(families))
    dropout = trial.suggest_float("dropout", 0.0, 0.4)
    layers = keras.layers
    inp = keras.Input(input_shape, name="input")
    x = inp
    if len(input_shape) == 2:  # sensor window: optionally average neighbouring samples first
        steps = input_shape[0]
        choices = [p for p in ((2, 4, 8) if family == "lstm" else (1, 2, 4, 8)) if p <= steps] or [1]
        pool = trial.suggest_categorical(f"{family}_downsample", choices)
        if pool > 1:
            x = layers.AveragePooling1D(pool, name="downsample")(x)
    if family == "mlp":
        if len(input_shape) > 1:
            x = layers.Flatten(name="flatten")(x)
        for i in range(trial.suggest_int("mlp_layers", 1, 3)):
            x = layers.Dense(trial.suggest_int(f"mlp_units_{i + 1}", 4, 128, log=True), activation="relu",
                             name=f"dense_{i + 1}")(x)
            if dropout:
                x = layers.Dropout(dropout, name=f"dropout_{i + 1}")(x)
    elif family in ("cnn1d", "ds_cnn1d"):
        kernel = trial.suggest_categorical(f"{family}_kernel", [3, 5, 7])
        stride = trial.suggest_categorical(f"{family}_stride", [1, 2])
        blocks = trial.suggest_int(f"{family}_blocks", 1, 3)
        for i in range(blocks):
            f = trial.suggest_int(f"{family}_filters_{i + 1}", 4, 64, log=True)
            s = stride if i == 0 else 1
            if family == "cnn1d" or i == 0:
                x = layers.Conv1D(f, kernel, strides=s, padding="same", activation="relu", name=f"conv_{i + 1}")(x)
            else:
                x = layers.DepthwiseConv1D(kernel, padding="same", activation="relu", name=f"dw_{i + 1}")(x)
                x = layers.Conv1D(f, 1, activation="relu", name=f"pw_{i + 1}")(x)
            pool = trial.suggest_categorical(f"{family}_pool_{i + 1}", [1, 2, 4])
            if pool > 1 and x.shape[1] >= pool:
                x = layers.MaxPooling1D(pool, name=f"pool_{i + 1}")(x)
        x = layers.GlobalAveragePooling1D(name="global_average")(x)
        if dropout:
            x = layers.Dropout(dropout, name="dropout")(x)
    elif family == "lstm":
        x = layers.LSTM(trial.suggest_int("lstm_units", 4, 48, log=True), name="lstm")(x)
        if dropout:
            x = layers.Dropout(dropout, name="dropout")(x)
    elif family == "cnn":
        kernel = trial.suggest_categorical("cnn_kernel", [3, 5])
        for i in range(trial.suggest_int("cnn_blocks", 1, 3)):
            f = trial.suggest_int(f"cnn_filters_{i + 1}", 4, 64, log=True)
            x = layers.Conv2D(f, kernel, padding="same", activation="relu", name=f"conv_{i + 1}")(x)
            if min(x.shape[1], x.shape[2]) >= 2:
                x = layers.MaxPooling2D(2, name=f"pool_{i + 1}")(x)
        head = trial.suggest_categorical("cnn_head", ["flatten", "gap"])
        x = (layers.Flatten(name="flatten") if head == "flatten" else layers.GlobalAveragePooling2D(name="gap"))(x)
        dense = trial.suggest_categorical("cnn_dense", [0, 16, 32, 64])
        if dense:
            x = layers.Dense(dense, activation="relu", name="dense")(x)
        if dropout:
            x = layers.Dropout(dropout, name="dropout")(x)
    elif family == "ds_cnn":
        from labkit.models import ds_cnn

        alpha = trial.suggest_categorical("ds_cnn_alpha", [0.25, 0.5, 0.75, 1.0])
        blocks = trial.suggest_int("ds_cnn_blocks", 1, 3)
        body = ds_cnn(input_shape, n_classes, alpha=alpha, filters=(16, 32, 64, 128)[: blocks + 1], softmax=False,
                      bn_momentum=0.9)
        x = body.get_layer("global_average").output
        inp = body.input
        if dropout:
            x = layers.Dropout(dropout, name="dropout")(x)
    else:
        raise LabkitError(f"unknown family {family!r}; the families are {', '.join(FAMILIES)}")
    x = layers.Dense(n_classes, name="logits")(x)
    x = layers.Softmax(name="probabilities")(x)
    model = keras.Model(inp, x, name=family)
    learning_rate = trial.suggest_float("learning_rate", 3e-4, 3e-2, log=True)
    batch_size = trial.suggest_categorical("batch_size", [16, 32, 64])
    epochs = trial.suggest_int("epochs", max(1, max_epochs // 3), max_epochs)
    return Candidate(model, family, learning_rate, batch_size, epochs, dropout)
