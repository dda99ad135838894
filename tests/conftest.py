"""Shared fixtures: one small trained gesture model and its int8 .tflite, built once per session."""

import numpy as np
import pytest

import labkit  # noqa: F401  (tf_keras before TensorFlow)


@pytest.fixture(scope="session")
def gesture_data():
    from labkit.datasets import make_gestures
    from labkit.datasets import normalize_imu

    ds = make_gestures(n_per_class=60, seed=1)
    train, test = ds.split(test_size=0.25, seed=1)
    return normalize_imu(train.x), train.y, normalize_imu(test.x), test.y, list(ds.info.class_names)


@pytest.fixture(scope="session")
def gesture_model(gesture_data):
    from labkit import models, train

    x, y, _, _, labels = gesture_data
    train.set_seed(0)  # the initial weights are drawn when the model is built
    m = models.mlp(x.shape[1:], len(labels), hidden=(16, 8))
    train.fit_classifier(m, x, y, epochs=15, seed=0)
    return m


@pytest.fixture(scope="session")
def gesture_tflite(gesture_model, gesture_data):
    from labkit.compress.quantize import to_int8_tflite

    return to_int8_tflite(gesture_model, gesture_data[0], seed=0)


@pytest.fixture(scope="session")
def float_tflite(gesture_model):
    """The same model converted without quantization: labkit-nn must refuse it clearly."""
    from labkit.compress.quantize import to_float_tflite

    return to_float_tflite(gesture_model)


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's 8x8 digits scaled to [0, 1]: (x_train, y_train, x_test, y_test)."""
    from labkit.datasets import load_digits

    train, test = load_digits().split(test_size=0.2, seed=0)
    return train.x.astype("float32") / 255, train.y, test.x.astype("float32") / 255, test.y


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# ---- a real browser: Debian's Chromium driven by Playwright ---------------------------------------------
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser():
    """Chromium, headless. Missing, it fails (never skips): CI installs it with scripts/system-deps.sh.
    Never `playwright install`: it downloads a browser build, which fails offline."""
    import os

    path = os.environ.get("LABKIT_CHROMIUM", CHROMIUM)
    if not os.access(path, os.X_OK):
        pytest.fail(f"the browser tests need Chromium at {path}: install it with `sudo apt-get install "
                    "--no-install-recommends chromium` (make test does, as root on Debian/Ubuntu), or set "
                    "LABKIT_CHROMIUM to a Chromium or Chrome binary", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path)
        try:
            yield b
        finally:
            b.close()
