"""labkit.course.sequences: the RNN and LSTM by hand agree with Keras; the corpus, codec and sampling."""

import numpy as np
import pytest

from labkit import models
from labkit.course import sequences as sq
from labkit.errors import LabkitError
from labkit.keras import keras


def test_rnn_forward_matches_simple_rnn(rng):
    x = rng.normal(size=(3, 7, 4)).astype("float32")
    layer = keras.layers.SimpleRNN(5, return_sequences=True)
    expected = layer(x).numpy()
    np.testing.assert_allclose(sq.rnn_forward(x, *sq.layer_weights(layer)), expected, atol=1e-5)
    one = sq.rnn_forward(x[0], *sq.layer_weights(layer))
    assert one.shape == (7, 5)
    np.testing.assert_allclose(one, expected[0], atol=1e-5)


def test_lstm_forward_matches_keras_and_exposes_the_gates(rng):
    x = rng.normal(size=(2, 9, 3)).astype("float32")
    layer = keras.layers.LSTM(6, return_sequences=True)
    expected = layer(x).numpy()
    trace = sq.lstm_forward(x, *sq.layer_weights(layer))
    np.testing.assert_allclose(trace["h"], expected, atol=1e-5)
    assert set(trace) == {"h", "c", *sq.GATES}
    for gate in ("input", "forget", "output"):
        assert trace[gate].shape == (2, 9, 6)
        assert np.all((trace[gate] > 0) & (trace[gate] < 1))
    assert np.all(np.abs(trace["candidate"]) < 1)
    # the cell update, step by step
    i, f, g, c = trace["input"][0], trace["forget"][0], trace["candidate"][0], trace["c"][0]
    np.testing.assert_allclose(c[1:], f[1:] * c[:-1] + i[1:] * g[1:], atol=1e-12)


def test_lstm_step_with_a_state(rng):
    kernel, recurrent, bias = rng.normal(size=(3, 8)), rng.normal(size=(2, 8)), rng.normal(size=8)
    h, c, gates = sq.lstm_step(np.ones(3), np.array([0.5, -0.5]), np.array([1.0, 2.0]), kernel, recurrent, bias)
    z = np.ones(3) @ kernel + np.array([0.5, -0.5]) @ recurrent + bias
    f = 1 / (1 + np.exp(-z[2:4]))
    assert gates["forget"] == pytest.approx(f)
    assert c == pytest.approx(f * [1.0, 2.0] + gates["input"] * gates["candidate"])
    assert h == pytest.approx(gates["output"] * np.tanh(c))


def test_gradient_norms_vanish_and_explode():
    rng = np.random.default_rng(0)  # the setting of lesson 06
    x = rng.normal(size=(60, 3))
    w_in = rng.normal(scale=0.3, size=(3, 16))
    q, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    small = sq.rnn_gradient_norms(sq.rnn_forward(x, w_in, 0.5 * q, np.zeros(16)), 0.5 * q)
    large = sq.rnn_gradient_norms(sq.rnn_forward(x, w_in, 3.0 * q, np.zeros(16)), 3.0 * q)
    assert small[0] == 1.0 and len(small) == 60
    assert small[-1] < 1e-15 and large[-1] > 1e5
    w_in, q = w_in[:, :8], np.linalg.qr(rng.normal(size=(8, 8)))[0]
    # one step back: the Jacobian diag(1 - h^2) W^T, checked by finite differences
    hs = sq.rnn_forward(x[:2], w_in, 0.5 * q, np.zeros(8))
    eps, h1 = 1e-6, hs[0]
    jac = np.stack([(sq.rnn_step(x[1], h1 + eps * e, w_in, 0.5 * q, 0) - sq.rnn_step(x[1], h1 - eps * e, w_in, 0.5 * q, 0))
                    / (2 * eps) for e in np.eye(8)], axis=1)
    assert sq.rnn_gradient_norms(hs, 0.5 * q)[1] == pytest.approx(np.linalg.norm(jac, 2), rel=1e-5)


def test_layer_weights_refuses_other_layers():
    with pytest.raises(LabkitError, match="SimpleRNN or LSTM"):
        sq.layer_weights(keras.layers.Dense(3))


def test_stdlib_corpus_is_fixed_and_ascii():
    text = sq.stdlib_corpus()
    assert text == sq.stdlib_corpus()
    assert 200_000 < len(text) < 500_000
    assert text.isascii() and "\t" not in text
    assert "def " in text and "return" in text
    assert sq.stdlib_corpus(["bisect"]).startswith('"""Bisection algorithms."""')
    with pytest.raises(LabkitError, match="not part of"):
        sq.stdlib_corpus(["no_such_module_here"])
    with pytest.raises(LabkitError, match="source"):
        sq.stdlib_corpus(["sys"])  # built in: no source file


def test_codec_round_trip_and_windows():
    codec = sq.CharCodec.from_text("hello world")
    assert codec.chars == " dehlorw"
    ids = codec.encode("hello")
    assert ids.dtype == np.int32 and codec.decode(ids) == "hello"
    with pytest.raises(LabkitError, match="alphabet"):
        codec.encode("hi!")
    x, y = sq.next_char_windows(np.arange(10), 4)
    assert x.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert y.tolist() == [[1, 2, 3, 4], [5, 6, 7, 8]]
    x2, _ = sq.next_char_windows(np.arange(10), 4, step=1)
    assert len(x2) == 6
    with pytest.raises(LabkitError, match="too short"):
        sq.next_char_windows(np.arange(3), 4)


def test_temperature_and_sampling():
    logits = np.log([0.5, 0.3, 0.15, 0.05])
    np.testing.assert_allclose(sq.softmax_with_temperature(logits, 1.0), [0.5, 0.3, 0.15, 0.05])
    assert sq.softmax_with_temperature(logits, 0.05)[0] > 0.99
    assert sq.softmax_with_temperature(logits, 1000)[3] == pytest.approx(0.25, abs=1e-3)
    assert sq.sample(logits, 0, np.random.default_rng(0)) == 0
    draws = [sq.sample(logits, 1.0, np.random.default_rng(s)) for s in range(400)]
    assert abs(np.mean(np.array(draws) == 0) - 0.5) < 0.1
    with pytest.raises(LabkitError, match="positive"):
        sq.softmax_with_temperature(logits, -1)


def test_generate_runs_the_keras_model_step_by_step():
    codec = sq.CharCodec.from_text("abcdef \n")
    keras.utils.set_random_seed(0)
    model = models.char_lstm(len(codec), units=8, embedding_dim=4)
    prime = "abc de"
    # greedy decoding by hand with Keras, one character at a time
    text = prime
    for _ in range(5):
        logits = model.predict(codec.encode(text)[None], verbose=0)[0, -1]
        text += codec.chars[int(np.argmax(logits))]
    assert sq.generate(model, codec, prime, length=5, temperature=0) == text
    a = sq.generate(model, codec, prime, length=30, temperature=1.0, seed=3)
    assert a == sq.generate(model, codec, prime, length=30, temperature=1.0, seed=3)
    assert a.startswith(prime) and len(a) == len(prime) + 30
    # with a context as long as the text, restarting from zeros changes nothing
    assert sq.generate(model, codec, prime, length=5, temperature=0, context=100) == text
    with pytest.raises(LabkitError, match="Embedding"):
        sq.generate(models.mlp((4,), 2), codec, "a")
