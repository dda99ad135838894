"""Issue 12, CLI and data: every mistake a user can make with `labkit prune`/`quantize`/`sketch` options
and .npz data gives one line naming the problem and the valid range, exit 2, and writes nothing."""

import os
import re
import zipfile

import numpy as np
import pytest

import labkit  # noqa: F401  (tf_keras before TensorFlow)
from labkit import datacheck
from labkit.cli import main
from labkit.errors import DatasetError, LabkitError
from labkit.keras import keras


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    """A 4-class model on (10, 6) samples, and .npz files good and bad."""
    from labkit.models import mlp
    from labkit.train import set_seed

    d = tmp_path_factory.mktemp("inputs")
    set_seed(0)
    mlp((10, 6), 4, hidden=(8,)).save(d / "m.keras")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 10, 6)).astype("float32")
    y = rng.integers(0, 4, 64)
    np.savez(d / "ok.npz", x=x, y=y)
    bad = x.copy()
    bad[3, 0, 0], bad[3, 1, 1], bad[7, 2, 2] = np.nan, np.nan, np.inf
    np.savez(d / "nan.npz", x=bad, y=y)
    np.savez(d / "empty.npz", x=x[:0], y=y[:0])
    np.savez(d / "labels.npz", x=x, y=y % 4 + 10)
    np.savez(d / "onehot.npz", x=x, y=np.eye(4)[y])
    np.savez(d / "shape.npz", x=x.reshape(64, 60), y=y)
    np.savez(d / "short_y.npz", x=x, y=y[:50])
    (d / "broken.keras").write_bytes(b"PK\x03\x04 not really a zip")
    with zipfile.ZipFile(d / "m.keras") as src, zipfile.ZipFile(d / "badconfig.keras", "w") as dst:
        for item in src.infolist():
            dst.writestr(item, b'{"class_name": "Functional", "config": {' if item.filename == "config.json"
                         else src.read(item.filename))
    (d / "afile").write_text("a file, not a folder")
    return d


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err):
    assert code == 2, err
    assert err.startswith("labkit: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert "np.int" not in err and "np.float" not in err and ".tmp" not in err, err  # no reprs, no temp names


# The model and data named here do not exist: an option is refused before anything is loaded or trained.
@pytest.mark.parametrize("argv, message", [
    (["--learning-rate", "nan"], r"--learning-rate must be a finite number in \(0, 1\], got nan"),
    (["--learning-rate", "inf"], r"--learning-rate must be a finite number in \(0, 1\], got inf"),
    (["--learning-rate", "0"], r"--learning-rate .* in \(0, 1\], got 0"),
    (["--learning-rate", "-0.01"], r"--learning-rate .* in \(0, 1\]"),
    (["--learning-rate", "5"], r"--learning-rate .* in \(0, 1\], got 5 .*above 1 training diverges"),
    (["--epochs", "-1"], r"--epochs must be in \[0, 100000\], got -1"),
    (["--batch-size", "0"], r"--batch-size must be in \[1, 1000000\], got 0"),
    (["--steps", "0"], r"--steps must be in \[1, 100\], got 0"),
    (["--seed", "-1"], r"--seed must be in \[0, 4294967295\], got -1"),
    (["--sparsity", "nan"], r"--sparsity must be in \[0, 1\)"),
    (["--sparsity", "-0.1"], r"--sparsity must be in \[0, 1\)"),
])
def test_prune_options_are_checked_first(tmp_path, capsys, argv, message):
    base = ["prune", tmp_path / "absent.keras", "--data", tmp_path / "absent.npz", "-o", tmp_path / "p.keras"]
    if "--sparsity" not in argv:
        base += ["--sparsity", "0.5"]
    code, _, err = run(capsys, *base, *argv)
    one_line_error(code, err)
    assert re.search(message, err), err
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("samples", ["0", "-3", "10000000000"])
def test_quantize_samples_are_bounded(tmp_path, capsys, samples):
    code, _, err = run(capsys, "quantize", tmp_path / "absent.keras", "--data", tmp_path / "absent.npz",
                       "--samples", samples)
    one_line_error(code, err)
    assert f"--samples must be in [1, 100000], got {samples}" in err and "at most all of --data" in err


def test_output_is_checked_before_training(d, tmp_path, capsys):
    # prune -o p.txt used to be refused only after the training; now before the data is even read
    code, _, err = run(capsys, "prune", d / "m.keras", "--data", tmp_path / "absent.npz", "--sparsity", "0.5",
                       "-o", tmp_path / "p.txt")
    one_line_error(code, err)
    assert "-o " in err and "name it .keras or .h5 (e.g. p.keras)" in err
    code, _, err = run(capsys, "quantize", d / "m.keras", "--data", tmp_path / "absent.npz", "-o", tmp_path / "q.keras")
    one_line_error(code, err)
    assert "name it .tflite (e.g. q.tflite)" in err


@pytest.mark.parametrize("command", ["prune", "quantize"])
def test_output_in_a_folder_that_cannot_be(d, capsys, command):
    out = d / "afile" / ("x.keras" if command == "prune" else "x.tflite")
    extra = ["--sparsity", "0.5"] if command == "prune" else []
    code, _, err = run(capsys, command, d / "m.keras", "--data", d / "ok.npz", *extra, "-o", out)
    one_line_error(code, err)
    assert f"{d / 'afile'} is a file, not a folder" in err


def test_output_that_is_a_folder_is_named_not_a_temp_file(d, tmp_path, capsys):
    (tmp_path / "unrelated.tflite").mkdir()
    code, _, err = run(capsys, "quantize", d / "m.keras", "--data", d / "ok.npz", "-o", tmp_path / "unrelated.tflite")
    one_line_error(code, err)
    assert f"-o {tmp_path / 'unrelated.tflite'} is a folder" in err
    assert os.listdir(tmp_path / "unrelated.tflite") == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into any folder")
def test_output_in_a_read_only_folder(d, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    code, _, err = run(capsys, "quantize", d / "m.keras", "--data", d / "ok.npz", "-o", ro / "q.tflite")
    one_line_error(code, err)
    assert f"the folder {ro} is not writable" in err


@pytest.mark.parametrize("data, message", [
    ("nan.npz", r"--data .*nan\.npz: 'x' holds 2 NaN and 1 infinite value\(s\) in 2 of its 64 samples "
                r"\(the first is sample 3\)"),
    ("empty.npz", r"'x' is empty \(0 samples\)"),
    ("labels.npz", r"'y' has labels 10, 11, 12, 13 outside the model's 4 outputs \(classes 0 to 3\)"),
    ("onehot.npz", r"'y' must be a 1-D array of integer class indices, got shape \(64, 4\).*one-hot"),
    ("shape.npz", r"'x' has samples of shape \(60,\), the model takes \(10, 6\), so the array must have shape "
                  r"\(N, 10, 6\)"),
    ("short_y.npz", r"'x' has 64 samples but .*'y' has 50 labels"),
])
def test_bad_data_is_refused_before_training(d, tmp_path, capsys, data, message):
    out = tmp_path / "p.keras"
    code, _, err = run(capsys, "prune", d / "m.keras", "--data", d / data, "--sparsity", "0.5", "--epochs", "1",
                       "-o", out)
    one_line_error(code, err)
    assert re.search(message, err), err
    assert not out.exists()


def test_bad_test_data_is_named_as_such(d, tmp_path, capsys):
    code, _, err = run(capsys, "quantize", d / "m.keras", "--data", d / "ok.npz", "--test", d / "labels.npz",
                       "-o", tmp_path / "q.tflite")
    one_line_error(code, err)
    assert "--test " in err and "outside the model's 4 outputs" in err
    assert not (tmp_path / "q.tflite").exists()


@pytest.mark.parametrize("model, message", [
    ("broken.keras", "cannot load .*broken.keras as a tf_keras model"),
    ("badconfig.keras", "cannot load .*badconfig.keras as a tf_keras model"),
])
def test_a_broken_model_file_is_one_line(d, tmp_path, capsys, model, message):
    code, _, err = run(capsys, "quantize", d / model, "--data", d / "ok.npz", "-o", tmp_path / "q.tflite")
    one_line_error(code, err)
    assert re.search(message, err) and "model.save('name.keras')" in err


def test_quantize_says_when_it_calibrates_on_fewer_samples(d, tmp_path, capsys):
    code, out, err = run(capsys, "quantize", d / "m.keras", "--data", d / "ok.npz", "--samples", "500",
                         "-o", tmp_path / "q.tflite")
    assert code == 0, err
    assert "int8, int8 input and output" in out
    assert "calibrated on all 64 samples of --data (--samples 500 asks for more than it has)" in out


def test_quantize_never_writes_another_mode_than_it_says(d, tmp_path, capsys, monkeypatch):
    """A converter that quietly falls back (as --samples 0 once gave dynamic range under an int8 banner)."""
    from labkit.compress import quantize as q

    monkeypatch.setattr(q, "to_int8_tflite", lambda model, *a, **k: q.to_dynamic_range_tflite(model))
    out = tmp_path / "q.tflite"
    code, stdout, err = run(capsys, "quantize", d / "m.keras", "--data", d / "ok.npz", "-o", out)
    one_line_error(code, err)
    # (dynamic range leaves a model this small in float32: the tensors are below its size threshold)
    assert re.search(r"--mode int8: the converter produced a (dynamic range|float32) model without int8 input and "
                     r"output, not int8, so nothing was written", err), err
    assert not out.exists() and "int8 input and output" not in stdout


def test_a_model_whose_training_diverged_is_not_saved():
    from labkit.compress.commands import _finite_weights
    from labkit.models import mlp

    m = mlp((10, 6), 4, hidden=(8,))
    _finite_weights(m)  # a sound model passes
    w = m.get_weights()
    w[0][:] = np.nan
    m.set_weights(w)
    with pytest.raises(LabkitError, match=r"training diverged: 480 of the 524 weights .* smaller --learning-rate"):
        _finite_weights(m)


# --- the same checks in train.fit_classifier (what the lessons call) ---------------------------

@pytest.fixture()
def model():
    from labkit.models import mlp

    return mlp((10, 6), 4, hidden=(8,))


def xy(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 10, 6)).astype("float32"), rng.integers(0, 4, n)


@pytest.mark.parametrize("change, error, message", [
    (lambda x, y, kw: x.__setitem__((0, 0, 0), np.nan), DatasetError, r"x holds 1 NaN value\(s\) in 1 of its 32"),
    (lambda x, y, kw: y.__setitem__(0, 7), DatasetError, r"y has labels 7 outside the model's 4 outputs"),
    (lambda x, y, kw: kw.update(epochs=-1), LabkitError, r"epochs must be in \[0, 100000\]"),
    (lambda x, y, kw: kw.update(batch_size=0), LabkitError, r"batch_size must be in \[1, 1000000\]"),
    (lambda x, y, kw: kw.update(learning_rate=float("nan")), LabkitError, r"learning_rate must be a finite"),
    (lambda x, y, kw: kw.update(validation_data=(x[:4] * np.inf, y[:4])), DatasetError,
     r"validation_data x holds 240 infinite value\(s\) in 4 of its 4 samples"),
])
def test_fit_classifier_refuses_what_would_train_to_nonsense(model, change, error, message):
    from labkit.train import fit_classifier

    x, y = xy()
    kw = {}
    change(x, y, kw)
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(error, match=message):
        fit_classifier(model, x, y, epochs=kw.pop("epochs", 1), **kw)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # nothing trained


def test_fit_classifier_still_trains_on_good_data(model):
    from labkit.train import fit_classifier

    x, y = xy()
    history = fit_classifier(model, x, y.astype(np.float32), epochs=2, batch_size=8)  # float labels, as Keras takes
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()


def test_shapes_in_messages_are_plain():
    assert datacheck.shape_text((np.int32(16),)) == "(16,)"
    assert datacheck.shape_text((None, np.int64(119), 6)) == "(N, 119, 6)"
    with pytest.raises(DatasetError) as e:
        datacheck.check_samples(np.zeros((2, 16), np.float32), "x", (np.int32(8), np.int32(2)))
    assert "(16,)" in str(e.value) and "(8, 2)" in str(e.value) and "np." not in str(e.value)


# --- sketch --labels ---------------------------------------------------------------------------

@pytest.mark.parametrize("labels, message", [
    (",,,", r"--labels ',,,': label 1, 2, 3, 4 of 4 is empty"),
    ("punch,,flex", r"label 2 of 3 is empty"),
    ("punch,flex,punch", r"--labels: 'punch' is given twice"),
    ("punch,Punch", r"--labels: 'punch' and 'Punch' differ only in case"),
])
def test_sketch_labels_are_checked(tmp_path, capsys, labels, message):
    code, _, err = run(capsys, "sketch", tmp_path / "absent.tflite", "-o", tmp_path / "out", "--labels", labels)
    one_line_error(code, err)
    assert re.search(message, err), err
    assert not (tmp_path / "out").exists()


def test_parse_labels_keeps_good_ones():
    assert datacheck.parse_labels("punch, flex ,wave") == ["punch", "flex", "wave"]
    assert datacheck.parse_labels(None) is None


def test_verify_refuses_samples_with_nan(d, tmp_path, capsys):
    """NaN has no int8 value: `verify --data` used to quantize it to arbitrary bytes and compare those."""
    assert run(capsys, "quantize", d / "m.keras", "--data", d / "ok.npz", "-o", tmp_path / "q.tflite")[0] == 0
    x = np.zeros((5, 10, 6), np.float32)
    x[2, 3, 4] = np.nan
    np.savez(tmp_path / "nan.npz", x=x)
    code, _, err = run(capsys, "verify", tmp_path / "q.tflite", "--data", tmp_path / "nan.npz")
    one_line_error(code, err)
    assert "nan.npz holds 1 NaN value(s) in 1 of its 5 samples (the first is sample 2)" in err
