"""labkit.automl: `labkit search` and `labkit fit` on small gesture data, SQLite resume after SIGKILL,
a real PostgreSQL server shared by two workers, Ctrl-C, and the bad inputs a user can give."""

from __future__ import annotations

import datetime
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labkit.automl.budget import Budget, netscore, parse_count, parse_size
from labkit.cli import main
from labkit.errors import LabkitError

LABKIT = [sys.executable, "-m", "labkit.cli"]
BUDGET = ["--flash", "16K", "--ram", "2K"]


@pytest.fixture(scope="module")
def gestures(tmp_path_factory):
    """Small synthetic gesture sets (train 140, test 60), normalized like the demo's."""
    from labkit.datasets import make_gestures
    from labkit.datasets.gestures import normalize_imu
    from labkit.fileio import write_npz

    d = tmp_path_factory.mktemp("gestures")
    ds = make_gestures(n_per_class=50, classes=("punch", "flex", "wave", "circle"), seed=3)
    x, y = normalize_imu(ds.x).astype(np.float32), ds.y
    write_npz(d / "train.npz", x=x[:140], y=y[:140])
    write_npz(d / "test.npz", x=x[140:], y=y[140:])
    return d


def _study(db: Path, name: str = "labkit-search"):
    import optuna

    return optuna.load_study(study_name=name, storage=f"sqlite:///{db}")


def _finished(study):
    return [t for t in study.get_trials() if t.state.name in ("COMPLETE", "PRUNED")]


# ---- units ------------------------------------------------------------------------------------

def test_sizes_as_people_write_them():
    assert parse_size("16K") == parse_size("16KB") == parse_size("16384") == parse_size("16 kib") == 16384
    assert parse_size("1.5M") == 1536 * 1024
    assert parse_count("100k") == parse_count("100000") == parse_count("100_000") == 100_000
    for bad in ("16Q", "sixteen", "0", "16.3", "-4K", ""):
        with pytest.raises(LabkitError, match="--flash"):
            parse_size(bad, "--flash")


def test_netscore_is_wongs_formula():
    # a = 99 %, p = m = 1 M: 20 log10(99^2) = 79.91
    assert netscore(0.99, 1_000_000, 1_000_000) == pytest.approx(20 * np.log10(99.0**2))
    # a quarter of the parameters and MACs: +20 log10(4) / 2 each -> +12.04
    assert netscore(0.99, 250_000, 250_000) - netscore(0.99, 1_000_000, 1_000_000) == pytest.approx(12.041, abs=1e-3)
    assert netscore(0.0, 10, 10) is None


def test_budget_says_what_is_over():
    b = Budget(flash_bytes=16384, ram_bytes=2048, instructions=100_000)
    assert b.violations({"flash_bytes": 20000, "ram_bytes": 1000, "instructions": 50_000}) == ["flash 20,000 B > 16,384 B"]
    c = b.constraints({"flash_bytes": 8192, "ram_bytes": 4096, "instructions": None})
    assert c == {"flash_bytes": -0.5, "ram_bytes": 1.0, "instructions": 10.0}  # unmeasured: counts as over


# ---- labkit search ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def searched(gestures, tmp_path_factory):
    out = tmp_path_factory.mktemp("search") / "run"
    argv = ["search", str(gestures / "train.npz"), "--test", str(gestures / "test.npz"), *BUDGET,
            "--instructions", "200k", "--family", "mlp,cnn1d,ds_cnn1d", "--trials", "3", "--epochs", "2",
            "--out", str(out)]
    return out, argv


def test_search_writes_a_model_that_fits_and_is_bit_exact(searched, capsys):
    from labkit.compress.quantize import evaluate_tflite

    out, argv = searched
    t0 = time.monotonic()
    assert main(argv) == 0
    printed = capsys.readouterr().out
    for k in range(1, 4):
        assert f"trial {k} of 3" in printed
    assert "best so far" in printed
    for name in ("best.keras", "best.tflite", "trials.csv", "pareto.png", "report.json", "study.db"):
        assert (out / name).is_file(), name
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((out / "report.json").read_text())
    for key in ("int8_accuracy", "float_accuracy", "flash_bytes", "ram_bytes", "instructions", "bit_exact", "trials",
                "feasible_trials", "netscore", "seconds", "budget"):
        assert key in report, key
    assert report["budget"] == {"flash_bytes": 16384, "ram_bytes": 2048, "instructions": 200_000, "macs": None}
    assert report["bit_exact"] is True and report["verified_on"] == "host+cortex-m4"
    assert report["flash_bytes"] <= 16384 and report["ram_bytes"] <= 2048 and report["instructions"] <= 200_000
    assert report["trials"] == 3 and 1 <= report["feasible_trials"] <= 3
    assert report["seconds"] <= time.monotonic() - t0 + 1
    # the accuracy reported is the written int8 model's on the test set
    tflite = (out / "best.tflite").read_bytes()
    data = np.load(Path(argv[argv.index("--test") + 1]))
    assert report["int8_accuracy"] == pytest.approx(evaluate_tflite(tflite, data["x"], data["y"]))
    assert report["netscore"] == pytest.approx(netscore(report["int8_accuracy"], report["params"], report["macs"]))
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 3 and set(trials["state"]) <= {"COMPLETE", "PRUNED"}
    assert {"family", "fits", "int8_accuracy", "flash_bytes", "ram_bytes", "instructions", "netscore"} <= set(trials)
    best = trials[trials["number"] == report["best_trial"]["number"]].iloc[0]
    # measured on the untrained candidate, before any epoch: the same as the final model's
    assert best["flash_bytes"] == report["flash_bytes"] and best["ram_bytes"] == report["ram_bytes"]
    feasible = trials[trials["fits"] == True]  # noqa: E712
    assert (feasible["flash_bytes"] <= 16384).all() and len(feasible) == report["feasible_trials"]
    assert feasible[feasible["state"] == "COMPLETE"]["netscore"].notna().all()  # every trained trial has one


def test_the_same_command_again_resumes_without_new_trials(searched, capsys):
    out, argv = searched
    before = [(t.number, t.values) for t in _finished(_study(out / "study.db"))]
    files = {n: (out / n).read_bytes() for n in ("best.tflite", "report.json")}
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "resuming study 'labkit-search'" in printed and "is in" in printed  # the final stage is not redone
    assert [(t.number, t.values) for t in _finished(_study(out / "study.db"))] == before
    assert (out / "best.tflite").read_bytes() == files["best.tflite"]
    report, earlier = json.loads((out / "report.json").read_text()), json.loads(files["report.json"])
    assert {k: v for k, v in report.items() if k != "seconds"} == {k: v for k, v in earlier.items() if k != "seconds"}


def test_a_study_made_for_other_data_is_refused(searched, gestures, tmp_path, capsys):
    out, argv = searched
    other = tmp_path / "other.npz"
    d = np.load(gestures / "train.npz")
    np.savez(other, x=d["x"][:100], y=d["y"][:100])
    argv = list(argv)
    argv[1] = str(other)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "was made for other data" in err and "--study" in err and "Traceback" not in err


def test_trials_on_a_subset_and_a_quantization_aware_final_stage(gestures, tmp_path, capsys):
    """--trial-samples trains trials on a stratified subset; --qat yes ends with a QAT model, still bit-exact."""
    from labkit.compress.quantize import evaluate_tflite

    out = tmp_path / "qat"
    rc = main(["search", str(gestures / "train.npz"), "--flash", "64K", "--ram", "4K", "--family", "mlp", "--trials",
               "2", "--epochs", "4", "--trial-samples", "40", "--qat", "yes", "--test", str(gestures / "test.npz"), "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    report = json.loads((out / "report.json").read_text())
    assert report["trial_samples"] == 40 and report["qat"] == "yes"
    assert report["quantization"] == "quantization-aware" and report["bit_exact"] is True
    assert "quantization-aware fine-tuning" in printed
    test = np.load(gestures / "test.npz")
    assert report["int8_accuracy"] == pytest.approx(evaluate_tflite((out / "best.tflite").read_bytes(), test["x"],
                                                                    test["y"]))
    # another subset size is another study: refused, not mixed in
    rc = main(["search", str(gestures / "train.npz"), "--flash", "64K", "--ram", "4K", "--family", "mlp", "--trials",
               "3", "--epochs", "4", "--trial-samples", "60", "--out", str(out)])
    assert rc == 2 and "another --trial-samples" in capsys.readouterr().err


def test_candidates_over_the_budget_are_never_trained(gestures, tmp_path, capsys):
    """An instruction limit no candidate meets: every trial measured, none trained, one clear error."""
    out = tmp_path / "tight"
    rc = main(["search", str(gestures / "train.npz"), *BUDGET, "--instructions", "500", "--family", "mlp",
               "--trials", "2", "--epochs", "2", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 2
    assert "none of the 2 candidates fits" in captured.err and "Traceback" not in captured.err
    assert captured.out.count("does not fit") == 2
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 2 and not trials["fits"].any()
    assert trials["train_seconds"].isna().all() and trials["int8_accuracy"].isna().all()
    assert all("instructions" in r or "flash" in r for r in trials["reason"])


def test_multi_objective_front_is_feasible_and_non_dominated(gestures, tmp_path):
    import optuna

    from labkit.automl import run_search

    d = np.load(gestures / "train.npz")
    # a budget every MLP of the space fits: the front is then never empty (feasibility has its own tests)
    report = run_search(d["x"], d["y"], Budget(512 * 1024, 16384), tmp_path / "mo", families=["mlp"], trials=3,
                        max_epochs=1, multi_objective=True, final=False, log=lambda m: None)
    study = optuna.load_study(study_name="labkit-search", storage=f"sqlite:///{tmp_path / 'mo' / 'study.db'}")
    assert len(study.directions) == 3 and report["trials"] == 3
    rows = {t.number: t for t in _finished(study)}
    front = report["pareto_trials"]
    assert front and all(rows[n].user_attrs["fits"] for n in front)
    acc = lambda n: (rows[n].user_attrs["int8_accuracy"], -rows[n].user_attrs["flash_bytes"],  # noqa: E731
                     -rows[n].user_attrs["instructions"])
    for n in front:  # no feasible trial is at least as good in all three and better in one
        for m, t in rows.items():
            if m != n and t.user_attrs.get("fits"):
                assert not (all(a >= b for a, b in zip(acc(m), acc(n))) and acc(m) != acc(n))
    # Optuna's own front of the feasible trials agrees
    assert {t.number for t in study.best_trials} == set(front)


# ---- resume after SIGKILL, Ctrl-C -------------------------------------------------------------

def _start(argv, **kw):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([*LABKIT, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **kw)


def _wait_for_running_after_finished(db: Path, proc, n_finished: int, timeout: float = 240):
    """Poll the study until ``n_finished`` trials are finished and the next one is running."""
    import optuna

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if db.exists():
            try:
                study = optuna.load_study(study_name="labkit-search", storage=f"sqlite:///{db}")
                trials = study.get_trials()
            except (KeyError, Exception):  # the study is not created yet
                trials = []
            done = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
            if len(done) >= n_finished and any(t.state.name == "RUNNING" for t in trials):
                return done
        time.sleep(0.2)
    raise AssertionError("the search never reached a running trial")


def test_sigkill_mid_trial_then_the_same_command_resumes(gestures, tmp_path):
    out = tmp_path / "killed"
    argv = ["search", str(gestures / "train.npz"), *BUDGET, "--family", "mlp", "--trials", "3",
            "--epochs", "2", "--out", str(out), "--no-final"]
    proc = _start(argv)
    try:
        _wait_for_running_after_finished(out / "study.db", proc, 1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    study = _study(out / "study.db")
    kept = {t.number: (t.params, t.values, t.user_attrs) for t in _finished(study)}
    killed = [t.number for t in study.get_trials() if t.state.name == "RUNNING"]
    assert len(kept) >= 1 and len(killed) == 1

    again = subprocess.run([*LABKIT, *argv], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"resuming study 'labkit-search'" in again.stdout and f"{len(kept)} finished trials" in again.stdout
    study = _study(out / "study.db")
    finished = _finished(study)
    numbers = [t.number for t in finished]
    assert len(finished) == 3 and len(set(numbers)) == 3  # none lost, none counted twice
    for t in finished:  # the trials finished before the kill are there unchanged
        if t.number in kept:
            assert (t.params, t.values, t.user_attrs) == kept[t.number]
    assert killed[0] not in numbers  # the trial killed half-way is not counted as finished
    assert len(pd.read_csv(out / "trials.csv").query("state in ['COMPLETE', 'PRUNED']")) == 3


def test_ctrl_c_ends_after_the_running_trial_is_recorded_or_discarded(gestures, tmp_path):
    out = tmp_path / "interrupted"
    # its own process group, signalled as a whole: what Ctrl-C in a terminal does (the compilers and
    # QEMU that a trial runs get it too)
    proc = _start(["search", str(gestures / "train.npz"), *BUDGET, "--family", "mlp", "--trials", "20",
                   "--epochs", "3", "--out", str(out)], start_new_session=True)
    try:
        _wait_for_running_after_finished(out / "study.db", proc, 1)
        signalled = datetime.datetime.now()  # Optuna stamps trials with the local time too
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted after" in stderr and "run the same command again to resume" in stderr
    assert "Traceback" not in stderr
    trials = _study(out / "study.db").get_trials()
    assert not [t for t in trials if t.state.name == "RUNNING"]  # nothing left half-written
    # the trial running at Ctrl-C was recorded (finished) or discarded (failed), and no other ran after it
    # (one may have started in the instant between reading the clock and the signal arriving)
    started_after = [t for t in trials if t.datetime_start and t.datetime_start > signalled]
    ended_after = [t for t in trials if t.datetime_complete and t.datetime_complete > signalled]
    assert len(started_after) <= 1 and len(ended_after) <= 1 + len(started_after), [t.number for t in ended_after]
    assert len(_finished(_study(out / "study.db"))) < 20
    assert (out / "trials.csv").is_file()


# ---- PostgreSQL: one study, two workers -------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres():
    """A throwaway PostgreSQL cluster (initdb + pg_ctl) on a loopback port, run as a non-root user."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    initdb = bins[-1] if bins else shutil.which("initdb")
    if initdb is None:
        pytest.fail("PostgreSQL is not installed (initdb not found): run scripts/system-deps.sh, or "
                    "`sudo apt-get install --no-install-recommends postgresql`")
    bindir = Path(initdb).parent
    user = pwd.getpwuid(os.getuid()).pw_name
    run_as: list[str] = []
    if os.getuid() == 0:  # the server refuses to run as root
        user = "labkit_pg"
        try:
            pwd.getpwnam(user)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user], check=True)
        run_as = ["runuser", "-u", user, "--"]
    root = Path(tempfile.mkdtemp(prefix="labkit-pg-"))  # pytest's own folders are private to root
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if run_as:
        shutil.chown(root, user)
        shutil.chown(sock, user)
    subprocess.run([*run_as, str(bindir / "initdb"), "-D", str(data), "-U", "labkit", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True)
    port = _free_port()
    log = root / "server.log"
    opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts, "-w", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql://labkit@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_two_workers_share_one_postgresql_study(postgres, gestures, tmp_path):
    import optuna

    common = ["search", str(gestures / "train.npz"), *BUDGET, "--family", "mlp", "--trials", "3", "--epochs", "1",
              "--storage", postgres, "--study", "class", "--no-final"]
    workers = [_start([*common, "--out", str(tmp_path / f"w{i}"), "--seed", str(i)]) for i in range(2)]
    outputs = [w.communicate(timeout=600) for w in workers]
    for w, (o, e) in zip(workers, outputs):
        assert w.returncode == 0, e
    from labkit.automl.search import open_storage

    study = optuna.load_study(study_name="class", storage=open_storage(postgres))
    finished = [t for t in study.get_trials() if t.state.name in ("COMPLETE", "PRUNED")]
    numbers = [t.number for t in finished]
    assert len(finished) >= 3 and len(set(numbers)) == len(numbers)
    by_worker = {}
    for t in finished:
        by_worker.setdefault(int(t.user_attrs["worker"].rsplit(":", 1)[1]), []).append(t.number)
    assert set(by_worker) == {w.pid for w in workers}  # both workers added trials
    # each trial a worker reported is in the study once, under that worker
    for w, (o, _) in zip(workers, outputs):
        reported = sorted(int(line.split("(#", 1)[1].split(")", 1)[0]) for line in o.splitlines()
                          if line.startswith("trial "))
        assert reported == sorted(by_worker[w.pid])


def test_a_storage_that_does_not_answer_is_one_clear_error(gestures, tmp_path, capsys):
    port = _free_port()  # nothing listens there
    rc = main(["search", str(gestures / "train.npz"), *BUDGET, "--trials", "1", "--out", str(tmp_path / "x"),
               "--storage", f"postgresql://someone:secret@127.0.0.1:{port}/db"])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot open the study storage" in err and "Traceback" not in err
    assert "secret" not in err  # the password is not printed


# ---- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("extra, message", [
    (["--flash", "16Q", "--ram", "2K"], "not a size I know"),
    (["--flash", "16K", "--ram", "700"], "below the int8 input alone"),
    (["--flash", "16K", "--ram", "2K", "--family", "resnet"], "unknown; the families are"),
    (["--flash", "16K", "--ram", "2K", "--family", "cnn"], "does not take samples of shape"),
    (["--flash", "16K", "--ram", "2K", "--trial-samples", "5"], "too few for 4 classes"),
    (["--flash", "16K", "--ram", "2K", "--trial-samples", "0"], "must be at least 1"),
])
def test_bad_options_are_one_clear_error(gestures, tmp_path, capsys, extra, message):
    rc = main(["search", str(gestures / "train.npz"), *extra, "--trials", "1", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_folder_it_did_not_make_is_left_alone(gestures, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    rc = main(["search", str(gestures / "train.npz"), *BUDGET, "--trials", "1", "--out", str(mine)])
    err = capsys.readouterr().err
    assert rc == 2 and "not written by labkit search" in err
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("x, y, message", [
    (np.zeros((40, 119, 6, 1, 1), np.float32), np.arange(40) % 2, "expected feature vectors"),
    (np.zeros((40, 119, 6), np.float32), np.zeros(40, np.int64), "at least two classes"),
    (np.zeros((40, 119, 6), np.float32), np.arange(40) % 2 * 0.5, "integer class indices"),
])
def test_bad_data_is_one_clear_error(tmp_path, capsys, x, y, message):
    path = tmp_path / "bad.npz"
    np.savez(path, x=x, y=y)
    rc = main(["search", str(path), *BUDGET, "--trials", "1", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err


# ---- labkit fit -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def big_model(gestures, tmp_path_factory):
    """The demo's MLP (119x6 -> 32 -> 16 -> 4): about 25 KB of flash, too big for 12 KB."""
    from labkit.fileio import save_keras_model
    from labkit.models import mlp
    from labkit.train import fit_classifier, set_seed

    d = np.load(gestures / "train.npz")
    set_seed(0)
    model = mlp((119, 6), 4, hidden=(32, 16))
    fit_classifier(model, d["x"], d["y"], epochs=8)
    path = tmp_path_factory.mktemp("fit") / "big.keras"
    save_keras_model(model, path)
    return path


def test_fit_shrinks_a_model_until_it_fits(big_model, gestures, tmp_path, capsys):
    from labkit.compress.quantize import evaluate_tflite
    from labkit.verify import verify

    out = tmp_path / "small.keras"
    rc = main(["fit", str(big_model), "--data", str(gestures / "train.npz"), "--test", str(gestures / "test.npz"),
               "--flash", "12K", "--ram", "2K", "--epochs", "3", "-o", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0
    assert "before" in printed and "after" in printed and "flash bytes" in printed
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["before"]["flash_bytes"] > 12 * 1024 >= report["after"]["flash_bytes"]
    assert report["after"]["ram_bytes"] <= 2048 and 0 < report["fraction"] < 1
    # per-layer widening starts from the uniform fraction and only gives width back
    from labkit.compress.structured import default_layers
    from labkit.keras import keras

    assert set(report["fractions"]) == set(default_layers(keras.models.load_model(big_model, compile=False)))
    assert all(0 <= f <= report["fraction"] for f in report["fractions"].values())
    assert report["after"]["params"] < report["before"]["params"]
    tflite = out.with_suffix(".tflite").read_bytes()
    m4 = verify(tflite, samples=5, target="cortex-m4", references=("tflm",))
    assert m4.bit_exact and m4.metrics["flash_bytes"] == report["after"]["flash_bytes"]
    test = np.load(gestures / "test.npz")
    assert report["after"]["int8_accuracy"] == pytest.approx(evaluate_tflite(tflite, test["x"], test["y"]))
    assert report["after"]["int8_accuracy"] > 0.5  # 4 classes: far above chance after shrinking
    from labkit.keras import keras

    assert keras.models.load_model(out, compile=False).count_params() == report["after"]["params"]


def test_fit_says_in_one_line_when_nothing_can_fit(big_model, gestures, tmp_path, capsys):
    rc = main(["fit", str(big_model), "--data", str(gestures / "train.npz"), "--flash", "16K", "--ram", "600",
               "-o", str(tmp_path / "no.keras")])
    err = capsys.readouterr().err
    assert rc == 2 and "nothing fits" in err and "714 B" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "no.keras").exists()
