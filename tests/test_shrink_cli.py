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
