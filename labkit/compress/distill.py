"""Knowledge distillation: a small student learns from a trained teacher's softened outputs (Hinton et al. 2015).

The teacher's logits z_t and the student's z_s are softened by a temperature T, p = softmax(z / T),
and the student minimises, per sample,

    loss = alpha * T**2 * KL(p_t || p_s) + (1 - alpha) * cross_entropy(y, softmax(z_s))

(T**2 keeps the soft term's gradients the same size whatever T; alpha = 0 is plain training).

    from labkit.compress.distill import distill
    distill(student, teacher, x_train, y_train, temperature=4, alpha=0.7, epochs=5)

**Where the logits come from.** The kit's classifiers end in a ``Softmax`` layer
(:mod:`labkit.models`): the logits are then the *input of that layer*, read from the layer
before it — for the teacher and for the student, so the student's own model keeps its softmax
and is trained in place. A model whose last layer has ``activation="softmax"`` built in gives
its logits as log-probabilities, ``log p`` (equal to the logits minus a per-sample constant,
which softmax(./T) ignores, so the softened distribution is the same; probabilities are clipped
at 1e-30 first). A model without a softmax at the end outputs logits already.

The teacher runs once over ``x`` before training (its logits are targets, like the labels), so
distilling costs about as much as training the student alone. Students made
quantization-aware (:func:`labkit.compress.qat.quantization_aware`) distil the same way: the
logits are read before tfmot's wrapped softmax.
"""

from __future__ import annotations

import numpy as np

from labkit.datacheck import check_classifier_data, check_float, check_training_options
from labkit.errors import LabkitError
from labkit.keras import keras
from labkit.train import set_seed

__all__ = ["DistillationError", "logits_model", "logits", "distillation_loss", "distill", "check_teacher"]


class DistillationError(LabkitError, ValueError):
    """A teacher, a student or a setting that distillation cannot work with."""


def _unwrap(layer):
    while isinstance(getattr(layer, "layer", None), keras.layers.Layer):
        layer = layer.layer  # tfmot's QuantizeWrapperV2, PruneLowMagnitude
    return layer


def _last_layer(model):
    """(the model whose last layer ends the graph, that last layer unwrapped) through nested models."""
    outer = model
    while True:
        last = outer.layers[-1]
        if isinstance(last, keras.Model) and not isinstance(_unwrap(last), keras.layers.Softmax):
            outer = last
            continue
        return outer, _unwrap(last), last


def logits_model(model) -> tuple[keras.Model, str]:
    """A model sharing ``model``'s layers whose output is its logits, and how they are read.

    The second value is ``"before softmax"`` (the input of a final Softmax layer), ``"log
    probabilities"`` (a final layer with a built-in softmax activation) or ``"outputs"`` (no
    softmax at the end: the outputs are logits).
    """
    if not isinstance(model, keras.Model):
        raise DistillationError(f"expected a tf_keras Model, got {type(model).__name__}")
    outer, last, wrapped = _last_layer(model)
    if isinstance(last, keras.layers.Softmax):
        pre = wrapped.input
        if outer is not model:  # a nested model (e.g. with_batch_size): call its logits part on the outer input
            inner = keras.Model(outer.inputs, pre)
            return keras.Model(model.inputs, inner(model.inputs)), "before softmax"
        return keras.Model(model.inputs, pre), "before softmax"
    if getattr(last, "activation", None) is keras.activations.softmax:
        from labkit.keras import tf

        out = keras.layers.Lambda(lambda p: tf.math.log(tf.maximum(p, 1e-30)), name="log_probabilities")(model.output)
        return keras.Model(model.inputs, out), "log probabilities"
    return model, "outputs"


def logits(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The logits of ``model`` on ``x`` (see :func:`logits_model` for where they are read)."""
    m, _ = logits_model(model)
    return np.asarray(m.predict(np.asarray(x, np.float32), batch_size=batch_size, verbose=0), np.float32)


def _classes(model) -> int:
    shape = model.output_shape
    if isinstance(shape, list):
        raise DistillationError(f"{model.name!r} has {len(shape)} outputs; distillation needs one classifier output")
    return int(shape[-1])


def check_teacher(student, teacher) -> None:
    """Refuse a teacher that does not classify into the student's classes or does not take its inputs."""
    s, t = _classes(student), _classes(teacher)
    if s != t:
        raise DistillationError(
            f"the teacher {teacher.name!r} outputs {t} classes but the student {student.name!r} {s}: a teacher must "
            "score the same classes, in the same order, as the student (use the model the student approximates)"
        )
    si, ti = tuple(student.input_shape[1:]), tuple(teacher.input_shape[1:])
    if si != ti:
        raise DistillationError(f"the teacher {teacher.name!r} takes inputs of shape {ti} but the student {si}: "
                                "both must read the same samples")


def distillation_loss(student_logits, teacher_logits, y, temperature: float = 4.0, alpha: float = 0.7):
    """Mean over the batch of alpha*T^2*KL(softmax(t/T) || softmax(s/T)) + (1-alpha)*CE(y, softmax(s)).

    Works on NumPy arrays or tensors; returns a scalar tensor.
    """
    from labkit.keras import tf

    s = tf.cast(student_logits, tf.float32)
    t = tf.cast(teacher_logits, tf.float32)
    y = tf.cast(tf.reshape(y, [-1]), tf.int32)
    T = float(temperature)
    log_ps = tf.nn.log_softmax(s / T, axis=-1)
    log_pt = tf.nn.log_softmax(t / T, axis=-1)
    kl = tf.reduce_sum(tf.exp(log_pt) * (log_pt - log_ps), axis=-1)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=s)
    return tf.reduce_mean(alpha * T * T * kl + (1.0 - alpha) * ce)


def _packed_loss(temperature: float, alpha: float):
    """A Keras loss reading y_true = [label, teacher logits ...] and y_pred = student logits."""

    def loss(y_true, y_pred):
        return distillation_loss(y_pred, y_true[:, 1:], y_true[:, 0], temperature, alpha)

    return loss


def _packed_accuracy(y_true, y_pred):
    from labkit.keras import tf

    return tf.cast(tf.equal(tf.argmax(y_pred, axis=-1, output_type=tf.int32), tf.cast(y_true[:, 0], tf.int32)),
                   tf.float32)


def check_distill_options(temperature, alpha) -> tuple[float, float]:
    """``temperature`` in (0, 100] and ``alpha`` in [0, 1], or a :class:`LabkitError` naming the range."""
    t = check_float(temperature, "temperature", 0.0, 100.0, low_open=True,
                    why="the teacher's logits are divided by it; 1 = as they are, 2 to 10 is usual")
    a = check_float(alpha, "alpha", 0.0, 1.0, why="the weight of the teacher's soft targets; 0 = labels only")
    return t, a


def distill(student, teacher, x: np.ndarray, y: np.ndarray, temperature: float = 4.0, alpha: float = 0.7,
            epochs: int = 5, batch_size: int = 32, learning_rate: float = 1e-3, seed: int = 0,
            validation_data: tuple[np.ndarray, np.ndarray] | None = None, verbose: int = 0) -> keras.callbacks.History:
    """Train ``student`` in place on ``(x, y)`` with ``teacher``'s softened logits as well as the labels.

    The student may be quantization-aware (:func:`labkit.compress.qat.quantization_aware`).
    ``validation_data=(x_val, y_val)`` reports the student's loss and accuracy on them each epoch.
    Returns the Keras History (``loss``, ``accuracy`` per epoch).
    """
    epochs, batch_size, learning_rate = check_training_options(epochs, batch_size, learning_rate)
    temperature, alpha = check_distill_options(temperature, alpha)
    check_teacher(student, teacher)
    x, y = check_classifier_data(student, np.asarray(x), np.asarray(y))
    x = np.asarray(x, np.float32)
    t_logits = logits(teacher, x)
    target = np.concatenate([np.asarray(y, np.float32).reshape(-1, 1), t_logits], axis=1)
    val = None
    if validation_data is not None:
        vx, vy = check_classifier_data(student, np.asarray(validation_data[0]), np.asarray(validation_data[1]),
                                       "validation_data x", "validation_data y")
        vx = np.asarray(vx, np.float32)
        val = (vx, np.concatenate([np.asarray(vy, np.float32).reshape(-1, 1), logits(teacher, vx)], axis=1))
    trainer, _ = logits_model(student)
    set_seed(seed)
    trainer.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=_packed_loss(temperature, alpha),
                    metrics=[_packed_accuracy])
    history = trainer.fit(x, target, epochs=epochs, batch_size=batch_size, validation_data=val, verbose=verbose,
                          shuffle=True)
    for key in list(history.history):
        if "_packed_accuracy" in key:
            history.history[key.replace("_packed_accuracy", "accuracy")] = history.history.pop(key)
    return history
