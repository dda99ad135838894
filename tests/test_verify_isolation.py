"""The reference interpreters run in a child process: a refusal or a crash of one of them is
reported, verify goes on with the other, exit codes keep their meaning, temporary folders go."""

import re

import numpy as np
import pytest

from labkit import cli
from labkit import reference as ref
from labkit import verify as verify_mod
from labkit.deploy.codegen import generate_c
from labkit.errors import LabkitError
from labkit.verify import verify
from tflite_edit import _load, _pack


@pytest.fixture(scope="module")
def mlp_tflite():
    """A small int8 MLP, 10 x 3 in, 4 classes (random seeded weights: no training needed)."""
    from labkit import models
    from labkit.compress.quantize import to_int8_tflite
    from labkit.keras import keras

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 10, 3)).astype("float32")
    return to_int8_tflite(models.mlp((10, 3), 4, hidden=(8,)), x, seed=0)


def _with_quantized_dimension(tflite: bytes, tensor: int, dim: int) -> bytes:
    """The model with one tensor's quantized_dimension rewritten (as in TFLite Micro's person_detect
    example, whose per-channel axis LiteRT refuses and TFLite Micro accepts)."""
    model = _load(tflite)
    model.subgraphs[0].tensors[tensor].quantization.quantizedDimension = dim
    return _pack(model)


@pytest.fixture(scope="module")
def litert_refuses(mlp_tflite):
    g = _load(mlp_tflite).subgraphs[0]
    (x,) = g.inputs
    assert len(g.tensors[x].quantization.scale) == 1  # per tensor: the axis means nothing, LiteRT checks it anyway
    return _with_quantized_dimension(mlp_tflite, int(x), 3)


def test_a_model_litert_refuses_is_checked_against_tflm_alone(litert_refuses, tmp_path):
    report = verify(litert_refuses, samples=10, workdir=tmp_path)
    assert report.references == ["tflm"] and report.bit_exact
    assert "quantized_dimension must be in range" in report.not_run["litert"]
    d = report.as_dict()
    assert d["references"] == "tflm" and "LiteRT" in d["litert_not_run"] and "litert_bit_exact" not in d


def test_cli_says_which_reference_ran_and_why_the_other_did_not(litert_refuses, tmp_path, capsys):
    path = tmp_path / "person_like.tflite"
    path.write_bytes(litert_refuses)
    assert cli.main(["verify", str(path), "--samples", "5"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^references +tflm$", out, re.M)
    assert re.search(r"^litert_not_run +LiteRT \(BUILTIN_REF\) refused the model: .*quantized_dimension must be in "
                     r"range", out, re.M)
    # asked for LiteRT alone: nothing can check the C, which is an error (2), not a mismatch (1)
    assert cli.main(["verify", str(path), "--samples", "5", "--reference", "litert"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("labkit: error: no reference interpreter runs person_like.tflite")
    assert "quantized_dimension" in err and "Traceback" not in err


def test_exit_codes_0_bit_exact_1_mismatch_2_error(mlp_tflite, tmp_path, capsys):
    path = tmp_path / "m.tflite"
    path.write_bytes(mlp_tflite)
    assert cli.main(["verify", str(path), "--samples", "5", "--reference", "tflm"]) == 0
    out = tmp_path / "gen"
    generate_c(mlp_tflite, out, name="m")
    src = (out / "m.c").read_text()
    assert ".output_offset = " in src
    (out / "m.c").write_text(src.replace(".output_offset = ", ".output_offset = 3 + ", 1))  # a hand edit
    assert cli.main(["verify", str(out), "--samples", "20"]) == 1
    capsys.readouterr()
    path.write_bytes(mlp_tflite[: len(mlp_tflite) // 3])
    assert cli.main(["verify", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("labkit: error: not a valid .tflite:") and "Traceback" not in err
    help_text = " ".join(cli.build_parser()._subparsers._group_actions[0].choices["verify"].format_help().split())
    assert "0 bit-exact" in help_text and "1 a mismatch" in help_text and "2 an error" in help_text
    assert "--reference {both,tflm,litert}" in help_text


def test_one_child_process_runs_both_references_and_the_arena(mlp_tflite, tmp_path, monkeypatch):
    spawned = []
    real = ref.subprocess.Popen

    def counting(cmd, *a, **kw):
        spawned.append(cmd)
        return real(cmd, *a, **kw)

    monkeypatch.setattr(ref.subprocess, "Popen", counting)
    report = verify(mlp_tflite, samples=30, workdir=tmp_path)
    assert report.references == ["tflm", "litert"] and report.bit_exact
    assert report.metrics["tflm_arena_bytes"] > 0
    children = [cmd for cmd in spawned if cmd[1:] == ["-m", "labkit.reference"]]
    assert len(children) == 1  # the rest are gcc and the two builds of the C


def test_a_crashing_reference_is_named_and_the_other_still_runs(mlp_tflite, tmp_path, monkeypatch):
    """A child that dies (here: SIGSEGV as it starts TFLite Micro, as TFLM does on some corrupted
    models) is reported as that interpreter crashing on the model; LiteRT, which had not run
    yet, runs in a fresh child, and verify checks the C against it."""
    monkeypatch.setenv("LABKIT_TEST_REFERENCE_CRASH", "tflm")
    x = np.zeros((3, 10, 3), np.int8)
    runs = ref.run_isolated(mlp_tflite, x, references=("tflm", "litert"), label="m.tflite")
    assert not runs.runs["tflm"].ran
    assert runs.runs["tflm"].problem.startswith("TFLite Micro crashed on m.tflite (SIGSEGV)")
    assert runs.runs["litert"].ran
    np.testing.assert_array_equal(runs.runs["litert"].outputs[0], ref.run(mlp_tflite, x, "litert")[0])
    report = verify(mlp_tflite, samples=5, workdir=tmp_path)
    assert report.references == ["litert"] and report.bit_exact
    assert report.not_run["tflm"].startswith("TFLite Micro crashed on the model (SIGSEGV)")


def test_outputs_of_an_unexpected_shape_are_a_clear_error(mlp_tflite, tmp_path, monkeypatch):
    real = ref.run_isolated

    def wrong_shape(*a, **kw):
        runs = real(*a, **kw)
        runs.runs["tflm"].outputs = [np.zeros((len(runs.runs["tflm"].outputs[0]), 5), np.int8)]
        return runs

    monkeypatch.setattr(verify_mod.ref, "run_isolated", wrong_shape)
    with pytest.raises(LabkitError, match=r"TFLite Micro gives the model output\(s\) of shape \[5\] int8, "
                                          r"but the model's output tensor is \[4\] int8"):
        verify(mlp_tflite, samples=3, workdir=tmp_path)


def _leftovers(tmp_path):
    return sorted(p.name for p in tmp_path.glob("labkit-verify-*"))


def test_temporary_folders_are_removed_on_error_and_on_ctrl_c(mlp_tflite, tmp_path, monkeypatch):
    monkeypatch.setattr(verify_mod.tempfile, "tempdir", str(tmp_path))
    with pytest.raises(LabkitError, match="not a valid .tflite"):
        verify(mlp_tflite[:200])
    assert _leftovers(tmp_path) == []

    def interrupted(*a, **kw):
        assert _leftovers(tmp_path), "verify works in a labkit-verify-* folder"
        raise KeyboardInterrupt

    monkeypatch.setattr(verify_mod, "build_host", interrupted)
    path = tmp_path / "m.tflite"
    path.write_bytes(mlp_tflite)
    assert cli.main(["verify", str(path), "--samples", "2"]) == 130
    assert _leftovers(tmp_path) == []
