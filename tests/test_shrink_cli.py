"""``labkit shrink``: files and keys written, the per-layer table, one line and exit 2 for bad input."""

import json
import shutil

import numpy as np
import pytest

import labkit  # noqa: F401  (tf_keras first)
from labkit.cli import main

ARM = shutil.which("arm-none-eabi-gcc") is not None and shutil.which("qemu-system-arm") is not None
KEYS = ("params_before", "params_after", "flash_before", "flash_after", "accuracy_before", "accuracy_after",
        "int8_accuracy_after", "instructions_before", "instructions_after")


@pytest.fixture(scope="module")
def files(tmp_path_factory, digits):
    from labkit import models, train

    d = tmp_path_factory.mktemp("shrink")
    x, y, xt, yt = digits[0][..., None][:600], digits[1][:600], digits[2][..., None][:200], digits[3][:200]
    train.set_seed(0)
    m = models.cnn((8, 8, 1), 10, filters=(8, 16), dense=32)
    train.fit_classifier(m, x, y, epochs=3, learning_rate=3e-3, seed=0)
    m.save(d / "m.keras")
    np.savez(d / "train.npz", x=x, y=y)
    np.savez(d / "test.npz", x=xt, y=yt)
    bad = x.copy()
    bad[7, 2, 3, 0] = np.nan
    np.savez(d / "nan.npz", x=bad, y=y)
    return d


def _run(files, *extra):
    return main(["shrink", str(files / "m.keras"), "--data", str(files / "train.npz"), "--test",
                 str(files / "test.npz"), *extra])


def test_params_budget_writes_the_three_files(files, capsys):
    out = files / "out" / "small.keras"
    assert _run(files, "--params-ratio", "0.5", "--distill", "--steps", "2", "--epochs", "1",
                "--learning-rate", "3e-3", "-o", str(out)) == 0
    printed = capsys.readouterr().out
    assert "params before" in printed and "MACs after" in printed and "total (weight layers)" in printed
    report = json.loads((files / "out" / "small.json").read_text())
    assert set(KEYS) <= set(report)
    assert report["params_after"] <= 0.5 * report["params_before"] < report["params_before"]
    assert out.is_file() and (files / "out" / "small.tflite").read_bytes()[4:8] == b"TFL3"
    from labkit.compress.commands import load_model

    assert load_model(str(out)).count_params() == report["params_after"]
    if ARM:
        assert report["flash_after"] > 0 and report["instructions_after"] > 0


@pytest.mark.skipif(not ARM, reason="flash is measured with the ARM cross-compiler")
def test_flash_budget_met_and_unmeetable(files, capsys):
    out = files / "f" / "small.keras"
    assert _run(files, "--flash", "1M", "--steps", "0", "--epochs", "0", "-o", str(out)) == 0
    report = json.loads((files / "f" / "small.json").read_text())
    assert report["budget"] == {"kind": "flash", "limit": 1024**2} and report["flash_after"] <= 1024**2
    capsys.readouterr()
    assert _run(files, "--flash", "1K", "-o", str(files / "g" / "s.keras")) == 2
    err = [l for l in capsys.readouterr().err.splitlines() if l.startswith("labkit: error")]
    assert len(err) == 1 and "flash budget of 1,024 B of flash cannot be met: the smallest model the replacements " \
                               "reach takes" in err[0]
    assert not (files / "g").exists()


@pytest.mark.parametrize("extra,message", [
    ((), "give exactly one budget: --flash SIZE"),
    (("--flash", "20K", "--params-ratio", "0.5"), "give exactly one budget"),
    (("--params-ratio", "0"), r"--params-ratio must be a finite number in (0, 1], got 0"),
    (("--params-ratio", "abc"), "--params-ratio must be a number, got 'abc'"),
    (("--flash", "12Q"), "--flash '12Q': not a size I know"),
    (("--params-ratio", "0.5", "--steps", "-1"), "--steps must be in [0, 1000], got -1"),
    (("--params-ratio", "0.5", "--alpha", "2"), "--alpha must be a finite number in [0, 1], got 2"),
    (("--params-ratio", "0.5", "--temperature", "0"), "--temperature must be a finite number in (0, 100]"),
    (("--params-ratio", "0.5", "--epochs", "1.5"), "--epochs must be a whole number"),
    (("--params-ratio", "0.5", "-o", "x.tflite"), "name it .keras or .h5"),
])
def test_bad_options_one_line_exit_2(files, capsys, extra, message):
    assert _run(files, *extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("labkit: error: ") and message in err[0], err


def test_bad_data_and_unmeetable_budget(files, capsys):
    assert main(["shrink", str(files / "m.keras"), "--data", str(files / "nan.npz"), "--test",
                 str(files / "test.npz"), "--params-ratio", "0.5", "-o", str(files / "n" / "s.keras")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "NaN" in err[0]
    assert _run(files, "--params-ratio", "0.01", "-o", str(files / "u" / "s.keras")) == 2
    err = [l for l in capsys.readouterr().err.splitlines() if l.startswith("labkit: error")]
    assert len(err) == 1 and "params budget of 36 parameters cannot be met" in err[0] and "takes" in err[0]
    assert not (files / "u").exists() and not (files / "n").exists()


@pytest.mark.skipif(not ARM, reason="instructions are counted on the emulated Cortex-M4")
def test_instruction_budget_met_and_unmeetable(files, capsys):
    out = files / "i" / "small.keras"
    assert _run(files, "--instructions", "50M", "--steps", "0", "--epochs", "0", "-o", str(out)) == 0
    report = json.loads((files / "i" / "small.json").read_text())
    assert report["budget"] == {"kind": "instructions", "limit": 50_000_000}
    assert 0 < report["instructions_after"] <= 50_000_000
    capsys.readouterr()
    assert _run(files, "--instructions", "1k", "-o", str(files / "j" / "s.keras")) == 2
    err = [l for l in capsys.readouterr().err.splitlines() if l.startswith("labkit: error")]
    assert len(err) == 1 and "instructions budget of 1,000 instructions per inference cannot be met: the smallest " \
                               "model the replacements reach takes" in err[0]
    assert not (files / "j").exists()


@pytest.mark.parametrize("extra,message", [
    (("--flash", "20K", "--instructions", "100k"), "give exactly one budget"),
    (("--instructions", "abc"), "--instructions 'abc': expected a whole number such as 100000, 100k or 1.5M"),
    (("--instructions", "0"), "--instructions '0' must be a whole number of at least 1"),
])
def test_bad_instruction_budget_one_line_exit_2(files, capsys, extra, message):
    assert _run(files, *extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("labkit: error: ") and message in err[0], err


def test_teacher_with_other_classes_refused_and_a_good_one_used(files, capsys):
    from labkit import models, train

    train.set_seed(0)
    models.cnn((8, 8, 1), 5, filters=(4, 8), dense=8).save(files / "t5.keras")
    assert _run(files, "--params-ratio", "0.5", "--teacher", str(files / "t5.keras"),
                "-o", str(files / "t" / "s.keras")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "outputs 5 classes but the student" in err[0] and "same classes" in err[0], err
    assert not (files / "t").exists()
    assert _run(files, "--params-ratio", "0.5", "--teacher", str(files / "m.keras"), "--steps", "1", "--epochs", "1",
                "-o", str(files / "t2" / "s.keras")) == 0
    report = json.loads((files / "t2" / "s.json").read_text())
    assert report["distill"] is True and report["teacher"].endswith("m.keras")


def test_layers_no_replacement_applies_to_are_kept_and_listed(files, capsys, digits):
    from labkit import train
    from labkit.keras import keras

    train.set_seed(0)
    m = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(8, 3, activation="relu", name="c"),
                          keras.layers.DepthwiseConv2D(3, name="dw"), keras.layers.Flatten(name="flatten"),
                          keras.layers.Dense(24, activation="relu", name="d"), keras.layers.Dense(10, name="logits"),
                          keras.layers.Softmax(name="probabilities")])
    m.save(files / "dw.keras")
    assert main(["shrink", str(files / "dw.keras"), "--data", str(files / "train.npz"), "--test",
                 str(files / "test.npz"), "--params-ratio", "0.6", "--steps", "0", "--epochs", "0",
                 "-o", str(files / "k" / "s.keras")]) == 0
    printed = capsys.readouterr().out
    assert "kept dw (DepthwiseConv2D): no replacement applies to this layer type" in printed
    report = json.loads((files / "k" / "s.json").read_text())
    assert ["dw", "DepthwiseConv2D", "no replacement applies to this layer type"] in report["kept"]
    assert report["params_after"] <= 0.6 * report["params_before"]
