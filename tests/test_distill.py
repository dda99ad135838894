"""Knowledge distillation: the loss formula, where logits are read, QAT students, bad teachers."""

import numpy as np
import pytest

import labkit  # noqa: F401  (tf_keras first)
from labkit.errors import LabkitError


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_loss_equals_the_formula_on_a_hand_computed_case():
    from labkit.compress.distill import distillation_loss

    s = np.array([[1.0, 0.0, -1.0]], np.float32)
    t = np.array([[2.0, 0.0, 0.0]], np.float32)
    T, alpha = 2.0, 0.25
    # by hand: p_t = softmax([1, 0, 0]) = [e, 1, 1] / (e + 2), p_s = softmax([.5, 0, -.5])
    e = np.e
    pt = np.array([e, 1, 1]) / (e + 2)
    ps = np.array([e**0.5, 1, e**-0.5]) / (e**0.5 + 1 + e**-0.5)
    kl = float(np.sum(pt * np.log(pt / ps)))
    ce = -float(np.log(np.exp(0.0) / (e + 1 + e**-1)))  # label 1: logit 0
    want = alpha * T * T * kl + (1 - alpha) * ce
    got = float(distillation_loss(s, t, np.array([1]), temperature=T, alpha=alpha))
    assert got == pytest.approx(want, rel=1e-5)
    # alpha = 0 is plain cross-entropy, a teacher equal to the student has KL 0
    assert float(distillation_loss(s, t, [1], T, 0.0)) == pytest.approx(ce, rel=1e-5)
    assert float(distillation_loss(s, s, [1], T, 1.0)) == pytest.approx(0.0, abs=1e-6)


def test_logits_are_read_before_the_softmax_layer(digits):
    from labkit import models
    from labkit.compress.distill import logits, logits_model

    x = digits[0][:20].reshape(-1, 64)
    m = models.mlp((64,), 10, hidden=(8,))
    z = logits(m, x)
    assert logits_model(m)[1] == "before softmax"
    np.testing.assert_allclose(_softmax(z), m.predict(x, verbose=0), atol=1e-6)
    from labkit.keras import keras

    builtin = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10, activation="softmax")])
    lz = logits(builtin, x)
    assert logits_model(builtin)[1] == "log probabilities"
    np.testing.assert_allclose(_softmax(lz), builtin.predict(x, verbose=0), atol=1e-6)


@pytest.fixture(scope="module")
def teacher(digits):
    from labkit import models, train

    x, y = digits[0].reshape(-1, 64), digits[1]
    train.set_seed(0)
    t = models.mlp((64,), 10, hidden=(64,), name="teacher")
    train.fit_classifier(t, x, y, epochs=20, seed=0)
    return t


def test_distil_trains_the_student_in_place_and_is_seeded(digits, teacher):
    from labkit import models, train
    from labkit.compress.distill import distill

    x, y, xt, yt = digits[0].reshape(-1, 64), digits[1], digits[2].reshape(-1, 64), digits[3]
    runs = []
    for _ in range(2):
        train.set_seed(1)
        student = models.mlp((64,), 10, hidden=(8,), name="student")
        h = distill(student, teacher, x, y, temperature=4, alpha=0.7, epochs=8, learning_rate=1e-2, seed=3,
                      validation_data=(xt, yt))
        runs.append(student.get_weights())
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert "val_accuracy" in h.history
    assert all(np.array_equal(a, b) for a, b in zip(*runs))  # same seed, same weights
    assert train.accuracy(student, xt, yt) > 0.8  # the student itself (with its softmax) learned


def test_qat_student_distils(digits, teacher):
    from labkit import models, train
    from labkit.compress.distill import distill, logits_model
    from labkit.compress.qat import qat_to_int8_tflite, quantization_aware
    from labkit.compress.quantize import evaluate_tflite

    x, y, xt, yt = digits[0].reshape(-1, 64), digits[1], digits[2].reshape(-1, 64), digits[3]
    train.set_seed(2)
    student = models.mlp((64,), 10, hidden=(16,), name="student")
    train.fit_classifier(student, x, y, epochs=3, learning_rate=1e-2, seed=0)
    qat = quantization_aware(student)
    assert logits_model(qat)[1] == "before softmax"
    before = [w.copy() for w in qat.get_weights()]
    acc_before = train.accuracy(qat, xt, yt)
    h = distill(qat, teacher, x, y, epochs=3, learning_rate=3e-3, seed=0)
    assert np.isfinite(h.history["loss"]).all() and h.history["loss"][-1] < h.history["loss"][0]
    assert any(not np.array_equal(a, b) for a, b in zip(before, qat.get_weights()))
    assert train.accuracy(qat, xt, yt) > acc_before
    assert evaluate_tflite(qat_to_int8_tflite(qat, x), xt, yt) > 0.8


def test_bad_teacher_and_options_refused(digits):
    from labkit import models
    from labkit.compress.distill import DistillationError, distill

    x, y = digits[0][:50].reshape(-1, 64), digits[1][:50]
    student = models.mlp((64,), 10, hidden=(8,))
    with pytest.raises(DistillationError, match="outputs 3 classes but the student 'mlp' 10"):
        distill(student, models.mlp((64,), 3, hidden=(8,)), x, y, epochs=1)
    with pytest.raises(DistillationError, match="inputs of shape"):
        distill(student, models.mlp((32,), 10, hidden=(8,)), x, y, epochs=1)
    with pytest.raises(LabkitError, match=r"temperature must be a finite number in \(0, 100\]"):
        distill(student, student, x, y, temperature=0)
    with pytest.raises(LabkitError, match=r"alpha must be a finite number in \[0, 1\]"):
        distill(student, student, x, y, alpha=1.5)
    bad = x.copy()
    bad[3, 5] = np.nan
    with pytest.raises(LabkitError, match="NaN"):
        distill(student, student, bad, y, epochs=1)
