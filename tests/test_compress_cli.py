"""`labkit quantize` and `labkit prune` on models saved by the kit, with data from a .npz."""

import numpy as np
import pytest

import labkit  # noqa: F401  (tf_keras before TensorFlow)
from labkit import reference
from labkit.cli import build_parser, main
from labkit.compress.prune import overall_sparsity
from labkit.keras import keras


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from labkit.datasets import load_digits
    from labkit.models import mlp
    from labkit.train import fit_classifier, set_seed

    d = tmp_path_factory.mktemp("cli")
    train, test = load_digits().split(test_size=0.2, seed=0)
    x, y = train.x.astype("float32") / 255, train.y
    set_seed(0)
    m = mlp((8, 8), 10, hidden=(32, 16))
    fit_classifier(m, x, y, epochs=15, seed=0)
    m.save(d / "model.keras")
    with pytest.warns(UserWarning):  # tf_keras calls HDF5 "legacy"; the kit still reads it
        m.save(d / "model.h5")
    np.savez(d / "train.npz", x=x, y=y)
    np.savez(d / "test.npz", x=test.x.astype("float32") / 255, y=test.y)
    np.savez(d / "only_x.npz", x=x)
    np.savez(d / "wrong_names.npz", images=x, labels=y)
    np.savez(d / "wrong_shape.npz", x=x.reshape(len(x), 64), y=y)
    np.save(d / "plain.npy", x)
    return d


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_both_commands_are_registered():
    parser = build_parser()
    choices = parser._subparsers._group_actions[0].choices
    assert {"quantize", "prune"} <= set(choices)
    assert ".keras" in choices["quantize"].format_help() and ".h5" in choices["prune"].format_help()


@pytest.mark.parametrize("model", ["model.keras", "model.h5"])
def test_quantize_writes_a_full_int8_tflite(files, capsys, tmp_path, model):
    out = tmp_path / "m.tflite"
    code, stdout, err = run(capsys, "quantize", files / model, "--data", files / "only_x.npz", "-o", out,
                            "--test", files / "test.npz")
    assert code == 0, err
    (inp,), (o,) = reference.io_details(out.read_bytes())
    assert inp.dtype == np.int8 and o.dtype == np.int8 and inp.shape == (1, 8, 8)
    assert "int8 input and output, batch size 1" in stdout
    accs = {l.split()[0]: float(l.split()[2]) for l in stdout.splitlines() if "accuracy" in l}
    assert accs["int8"] >= accs["float"] - 0.02


def test_quantize_dynamic_and_float16(files, capsys, tmp_path):
    for mode, kind in [("dynamic", "dynamic range"), ("float16", "float16"), ("float", "float32")]:
        code, stdout, err = run(capsys, "quantize", files / "model.keras", "--data", files / "train.npz",
                                "--mode", mode, "-o", tmp_path / f"{mode}.tflite")
        assert code == 0, err
        assert stdout.strip().endswith(kind)


def test_prune_magnitude_saves_a_sparse_model(files, capsys, tmp_path):
    out = tmp_path / "pruned.keras"
    code, stdout, err = run(capsys, "prune", files / "model.keras", "--data", files / "train.npz", "--sparsity", "0.6",
                            "--steps", "2", "--epochs", "1", "-o", out, "--test", files / "test.npz")
    assert code == 0, err
    assert "dense_1/kernel" in stdout and "accuracy after" in stdout and f"wrote {out}" in stdout
    pruned = keras.models.load_model(out, compile=False)
    assert overall_sparsity(pruned) == pytest.approx(0.6, abs=1e-3)


@pytest.mark.parametrize("method", ["oneshot", "gradual"])
def test_prune_other_methods(files, capsys, tmp_path, method):
    out = tmp_path / f"{method}.h5"
    code, _, err = run(capsys, "prune", files / "model.h5", "--data", files / "train.npz", "--sparsity", "0.5",
                       "--method", method, "--epochs", "1", "--scope", "global", "-o", out)
    assert code == 0, err
    assert overall_sparsity(keras.models.load_model(out, compile=False)) == pytest.approx(0.5, abs=0.01)


def test_prune_structured_saves_a_smaller_model(files, capsys, tmp_path):
    out = tmp_path / "small.keras"
    code, stdout, err = run(capsys, "prune", files / "model.keras", "--data", files / "train.npz", "--structured",
                            "--sparsity", "0.5", "--epochs", "1", "-o", out)
    assert code == 0, err
    small = keras.models.load_model(out, compile=False)
    assert small.get_layer("dense_1").units == 16 and small.get_layer("dense_2").units == 8
    assert "units after" in stdout


def test_default_output_names(files, capsys, tmp_path):
    import shutil

    shutil.copy(files / "model.keras", tmp_path / "net.keras")
    assert run(capsys, "quantize", tmp_path / "net.keras", "--data", files / "only_x.npz")[0] == 0
    assert (tmp_path / "net.tflite").is_file()
    assert run(capsys, "prune", tmp_path / "net.keras", "--data", files / "only_x.npz", "--sparsity", "0.5",
               "--epochs", "0", "--method", "oneshot")[0] == 0
    assert (tmp_path / "net_pruned.keras").is_file()


@pytest.mark.parametrize("argv, message", [
    (["quantize", "{d}/model.keras", "--data", "{d}/wrong_names.npz"],
     r"has arrays \['images', 'labels'\] but needs 'x'"),
    (["prune", "{d}/model.keras", "--data", "{d}/only_x.npz", "--sparsity", "0.5"], r"has arrays \['x'\] but needs 'x' and 'y'"),
    (["quantize", "{d}/model.keras", "--data", "{d}/wrong_shape.npz"], r"the model takes \(8, 8\)"),
    (["quantize", "{d}/model.keras", "--data", "{d}/plain.npy"], "a single array, not a .npz"),
    (["quantize", "{d}/model.keras", "--data", "{d}/missing.npz"], "no such file"),
    (["quantize", "{d}/model.keras", "--data", "{d}/train.npz", "--test", "{d}/only_x.npz"], "needs 'x' and 'y'"),
    (["quantize", "{d}/train.npz", "--data", "{d}/train.npz"], "ending in .keras or .h5"),
    (["quantize", "{d}/absent.keras", "--data", "{d}/train.npz"], "no such file"),
    (["prune", "{d}/model.keras", "--data", "{d}/train.npz", "--sparsity", "1.0"], r"must be in \[0, 1\)"),
    (["prune", "{d}/model.keras", "--data", "{d}/train.npz", "--sparsity", "0.5", "-o", "{d}/x.tflite"],
     "name it .keras or .h5"),
])
def test_user_mistakes_give_one_clear_line(files, capsys, argv, message):
    import re

    code, stdout, err = run(capsys, *[a.format(d=files) for a in argv])
    assert code == 2
    assert err.startswith("labkit: error: ") and "Traceback" not in err
    assert re.search(message, err), err


def test_prune_refuses_a_model_with_nothing_to_prune(files, capsys, tmp_path):
    inp = keras.Input((8, 8))
    keras.Model(inp, keras.layers.Softmax()(keras.layers.Flatten()(inp))).save(tmp_path / "empty.keras")
    code, _, err = run(capsys, "prune", tmp_path / "empty.keras", "--data", files / "train.npz", "--sparsity", "0.5")
    assert code == 2 and "no prunable layers" in err
