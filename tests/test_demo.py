"""`labkit demo` end to end, and what it does with bad --out folders or a missing compiler."""

import json
import os

import numpy as np

from labkit import cli
from labkit.compress.commands import load_model
from labkit.train import accuracy
from labkit.demo import MARKER, prepare_out_dir


def test_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli.main(["demo", "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    report = json.loads((out / "report.json").read_text())
    assert printed == report
    for key in ("float_accuracy", "int8_accuracy", "bit_exact", "mismatched_bytes", "model_bytes",
                "weights_bytes", "arena_bytes", "sketch_dir", "seconds"):
        assert key in report, key
    assert report["bit_exact"] is True and report["mismatched_bytes"] == 0
    # in CI the ARM tools are installed: the emulator rung must have run, not been left out
    assert report["verified_on"] == "host+cortex-m4"
    assert report["references"] == "litert+tflm"
    assert report["flash_bytes"] > report["weights_bytes"] and report["ram_bytes"] >= report["arena_bytes"]
    assert report["instructions"] > report["macs"]
    assert report["int8_accuracy"] >= 0.90
    assert report["arena_bytes"] <= report["tflm_arena_bytes"]
    assert report["model_bytes"] == (out / "gesture_model.tflite").stat().st_size
    sketch = out / "gesture_demo"
    assert report["sketch_dir"] == str(sketch)
    assert (sketch / "gesture_demo.ino").is_file()
    for f in ("gesture_model.c", "gesture_model.h", "labkit_nn.c", "labkit_nn.h", "labkit_nn_config.h"):
        assert (sketch / f).is_file(), f
    assert "#include" in (sketch / "gesture_demo.ino").read_text()
    # the Keras model and its data are saved for the compression commands, and agree with the report
    model = load_model(str(out / "gesture_model.keras"))
    test = np.load(out / "test.npz")
    assert len(test["x"]) == report["test_samples"] and np.load(out / "train.npz")["x"].shape[1:] == test["x"].shape[1:]
    assert accuracy(model, test["x"], test["y"]) == report["float_accuracy"]
    assert cli.main(["prune", str(out / "gesture_model.keras"), "--data", str(out / "train.npz"), "--structured",
                     "--sparsity", "0.5", "--epochs", "2", "--test", str(out / "test.npz"),
                     "-o", str(tmp_path / "pruned.keras")]) == 0
    pruned = load_model(str(tmp_path / "pruned.keras"))
    assert pruned.count_params() < model.count_params() / 1.8  # half the units of each hidden layer
    assert cli.main(["quantize", str(tmp_path / "pruned.keras"), "--data", str(out / "train.npz"),
                     "--test", str(out / "test.npz")]) == 0
    assert (tmp_path / "pruned.tflite").stat().st_size < report["model_bytes"] / 1.8
    # a second run into the same folder is allowed (it is the demo's own)
    assert cli.main(["demo", "--out", str(out)]) == 0


def test_out_is_a_file(tmp_path, capsys):
    f = tmp_path / "report.txt"
    f.write_text("mine")
    assert cli.main(["demo", "--out", str(f)]) == 2
    err = capsys.readouterr().err
    assert "is a file" in err and "Traceback" not in err
    assert f.read_text() == "mine"


def test_out_is_someone_elses_folder(tmp_path, capsys):
    (tmp_path / "thesis.tex").write_text("precious")
    assert cli.main(["demo", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and "nothing was changed" in err
    assert sorted(os.listdir(tmp_path)) == ["thesis.tex"]


def test_empty_folder_is_accepted_and_marked(tmp_path):
    prepare_out_dir(tmp_path)
    assert (tmp_path / MARKER).exists()


def test_out_not_writable(tmp_path, capsys, monkeypatch):
    # root may write anywhere, so the refusal the OS gives a student is simulated
    import pathlib

    def refuse(self, *a, **k):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(pathlib.Path, "mkdir", refuse)
    assert cli.main(["demo", "--out", str(tmp_path / "demo")]) == 2
    err = capsys.readouterr().err
    assert "not writable" in err and "Traceback" not in err


def test_out_below_a_file_cannot_be_created(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert cli.main(["demo", "--out", str(tmp_path / "file" / "demo")]) == 2
    err = capsys.readouterr().err
    assert "cannot be used" in err and "Traceback" not in err


def test_missing_compiler_names_the_package(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no gcc here
    assert cli.main(["demo", "--out", str(tmp_path / "demo")]) == 2
    err = capsys.readouterr().err
    assert "gcc was not found" in err and "apt-get install gcc" in err
