"""Nothing lost: `codegen` and `sketch` never write into or delete a folder labkit did not make,
replace a kit-made one whole (a SIGKILL at any moment leaves the old folder or the new one, and the
next run removes what the kill left), refuse a folder whose files do not belong together, and
write files with the modes the user's umask gives."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labkit import cli, fileio
from labkit.deploy.codegen import CModel, generate_c
from labkit.deploy.sketch import write_sketch
from labkit.errors import LabkitError

OLD, NEW = ["punch", "flex", "wave", "circle"], ["up", "down", "left", "right"]


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if ".labkit-" in p.name or p.name.endswith(".tmp"))


@pytest.fixture
def model(gesture_tflite, tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(gesture_tflite)
    return path


def _users_sketch(folder: Path) -> dict[str, bytes]:
    (folder / "data").mkdir(parents=True)
    (folder / "Blink.ino").write_text("void setup() { pinMode(LED_BUILTIN, OUTPUT); }\nvoid loop() {}\n")
    (folder / "notes.txt").write_text("my notes\n")
    (folder / "data" / "readings.csv").write_text("1,2,3\n")
    return _tree(folder)


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_sketch_never_replaces_the_users_own_sketch_folder(model, tmp_path, capsys, force):
    mine = _users_sketch(tmp_path / "sketches" / "Blink")
    assert cli.main(["sketch", str(model), "-o", str(tmp_path / "sketches"), "--sketch", "Blink", *force]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "sketches" / "Blink") in err and "not made by labkit" in err and "nothing was changed" in err
    assert _tree(tmp_path / "sketches" / "Blink") == mine
    assert [p.name for p in (tmp_path / "sketches").iterdir()] == ["Blink"]  # no staging folder either


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_codegen_never_writes_into_an_unrelated_folder(model, tmp_path, capsys, force):
    (tmp_path / "thesis").mkdir()
    (tmp_path / "thesis" / "thesis.tex").write_text("precious")
    assert cli.main(["codegen", str(model), "-o", str(tmp_path / "thesis"), *force]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "thesis") in err and "not made by labkit" in err
    assert _tree(tmp_path / "thesis") == {"thesis.tex": b"precious"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tflite", "thesis"]


def test_a_new_or_empty_folder_is_written(model, tmp_path):
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "empty", tmp_path / "new" / "deeper"):
        cm = generate_c(model, out)
        assert sorted(p.name for p in out.iterdir()) == sorted([f.name for f in cm.files] + ["model.json"])
        assert CModel.from_folder(out).arena_bytes == cm.arena_bytes


def test_a_kit_made_folder_is_replaced_whole(model, tmp_path):
    out = tmp_path / "out"
    generate_c(model, out, name="first", labels=OLD)
    cm = generate_c(model, out, name="second", labels=NEW)  # no --force needed: labkit made it, nobody changed it
    assert not (out / "first.c").exists() and not (out / "first.json").exists()  # nothing of the old generation
    assert CModel.from_folder(out).labels == NEW == cm.labels
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tflite", "out"]


@pytest.mark.parametrize("change,words", [
    (lambda f: (f / "notes.txt").write_text("mine"), "notes.txt added"),
    (lambda f: (f / "model.c").write_text((f / "model.c").read_text() + "/* my edit */\n"), "model.c changed"),
    (lambda f: (f / "labkit_nn.h").unlink(), "labkit_nn.h removed"),
    (lambda f: (f / "build").mkdir(), "build added"),
])
def test_a_kit_made_folder_changed_since_needs_force(model, tmp_path, capsys, change, words):
    out = tmp_path / "out"
    assert cli.main(["codegen", str(model), "-o", str(out), "--labels", ",".join(OLD)]) == 0
    change(out)
    before = _tree(out)
    capsys.readouterr()
    assert cli.main(["codegen", str(model), "-o", str(out), "--labels", ",".join(NEW)]) == 2
    err = capsys.readouterr().err
    assert "made by labkit but has changed since" in err and words in err and "--force" in err
    assert _tree(out) == before
    assert cli.main(["codegen", str(model), "-o", str(out), "--labels", ",".join(NEW), "--force"]) == 0
    assert CModel.from_folder(out).labels == NEW and not (out / "notes.txt").exists()
    assert _leftovers(tmp_path) == []


def test_sketch_force_replaces_a_changed_kit_made_sketch(model, tmp_path, capsys):
    args = ["sketch", str(model), "-o", str(tmp_path / "s"), "--sketch", "gestures", "--labels"]
    assert cli.main(args + [",".join(OLD)]) == 0
    folder = tmp_path / "s" / "gestures"
    (folder / "sketch.yaml").write_text("default_fqbn: arduino:mbed_nano:nano33ble\n")
    assert cli.main(args + [",".join(NEW)]) == 2
    assert "sketch.yaml added" in capsys.readouterr().err
    assert cli.main(args + [",".join(NEW), "--force"]) == 0
    assert CModel.from_folder(folder).labels == NEW and not (folder / "sketch.yaml").exists()
    assert (folder / "gestures.ino").is_file() and _leftovers(tmp_path) == []


def test_a_folder_an_earlier_labkit_wrote_is_still_recognised(model, tmp_path):
    """Before manifests said who made a folder, labkit recognised its folders by NAME.json beside
    NAME.tflite; such a folder holding nothing else is replaced, one with a file of the user's is not."""
    out = tmp_path / "out"
    generate_c(model, out)
    d = json.loads((out / "model.json").read_text())
    for k in ("made_by", "sha256", "generation"):
        d.pop(k)
    (out / "model.json").write_text(json.dumps(d))
    (out / "notes.txt").write_text("mine")
    with pytest.raises(LabkitError, match="not made by labkit"):
        generate_c(model, out)
    (out / "notes.txt").unlink()
    generate_c(model, out, labels=NEW)
    assert CModel.from_folder(out).labels == NEW


# ---- folders whose files do not belong together ----------------------------------------------


def test_from_folder_refuses_a_model_file_from_elsewhere(model, tmp_path, gesture_tflite):
    generate_c(model, tmp_path / "out")
    other = bytearray(gesture_tflite)
    other[-1] ^= 1  # another model: one byte differs
    (tmp_path / "out" / "model.tflite").write_bytes(bytes(other))
    with pytest.raises(LabkitError, match=r"model.tflite is not the model model.json was generated from.*generate"):
        CModel.from_folder(tmp_path / "out")


def test_from_folder_refuses_c_of_another_generation(model, tmp_path):
    generate_c(model, tmp_path / "a", labels=OLD)
    generate_c(model, tmp_path / "b", labels=NEW)
    (tmp_path / "a" / "model.c").write_bytes((tmp_path / "b" / "model.c").read_bytes())
    with pytest.raises(LabkitError, match=r"model.c does not belong to model.json"):
        CModel.from_folder(tmp_path / "a")


@pytest.mark.parametrize("text", ["{", "[]", '{"name": "model"}', "null"])
def test_from_folder_refuses_a_damaged_manifest(model, tmp_path, text):
    generate_c(model, tmp_path / "out")
    (tmp_path / "out" / "model.json").write_text(text)
    with pytest.raises(LabkitError, match="not a manifest this labkit wrote.*generate the model again"):
        CModel.from_folder(tmp_path / "out")


def test_from_folder_refuses_a_manifest_naming_files_outside_or_code_as_the_name(model, tmp_path):
    generate_c(model, tmp_path / "out")
    d = json.loads((tmp_path / "out" / "model.json").read_text())
    for bad in ({"files": d["files"] + ["../../etc/passwd"]}, {"name": "x(); int y"}):
        (tmp_path / "out" / "model.json").write_text(json.dumps({**d, **bad}))
        with pytest.raises(LabkitError):
            CModel.from_folder(tmp_path / "out")


def test_from_folder_takes_hand_edited_c_as_it_is(model, tmp_path):
    """`labkit verify FOLDER` checks the C as it is: an edit keeps it the same generation."""
    cm = generate_c(model, tmp_path / "out")
    src = (tmp_path / "out" / "model.c").read_text().replace(".act_min = -128,", ".act_min = -100,", 1)
    (tmp_path / "out" / "model.c").write_text(src)
    assert CModel.from_folder(tmp_path / "out").arena_bytes == cm.arena_bytes


# ---- kills -----------------------------------------------------------------------------------

# Runs generate_c (or write_sketch) into an existing kit-made folder and SIGKILLs itself at a chosen
# moment: a real kill, so no cleanup code of the process runs.
CHILD = r"""
import os, signal, sys, time
from pathlib import Path
import labkit.fileio as fileio

point, what, model, out, labels = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4]), sys.argv[5].split(",")
die = lambda *a: os.kill(os.getpid(), signal.SIGKILL)
real_fsync, real_exchange, real_rename, calls = os.fsync, fileio._exchange, os.rename, [0]
if point.startswith("fsync"):  # in the middle of writing file N: in its temporary file, not yet renamed
    def fsync(fd):
        calls[0] += 1
        if calls[0] == int(point[5:]):
            die()
        real_fsync(fd)
    os.fsync = fsync
elif point == "slow":  # slow writes; the parent kills
    os.fsync = lambda fd: (time.sleep(0.25), real_fsync(fd))
elif point == "before-swap":
    fileio._exchange = die
elif point == "after-swap":  # the new folder in place, the old one not yet removed
    fileio._exchange = lambda a, b: (real_exchange(a, b), die())
elif point == "between-renames":  # no one-step exchange on this system: old folder aside, new one not yet in
    fileio._exchange = lambda a, b: False
    def rename(a, b):
        real_rename(a, b)
        die()
    os.rename = rename
if what == "codegen":
    from labkit.deploy.codegen import generate_c
    generate_c(model, out, labels=labels)
else:
    from labkit.deploy.sketch import write_sketch
    write_sketch(model, out.parent, sketch=out.name, labels=labels, app="gesture")
print("not killed")
"""


def _earlier_and_next(model: Path, tmp_path: Path, what: str):
    """The folder as an earlier run left it, and what the next run writes (made elsewhere, for comparison)."""
    out, ref = tmp_path / "work" / "out", tmp_path / "ref" / "out"
    for folder, labels in ((out, OLD), (ref, NEW)):
        if what == "codegen":
            generate_c(model, folder, labels=labels)
        else:
            write_sketch(model, folder.parent, sketch=folder.name, labels=labels, app="gesture")
    return out, _tree(out), _tree(ref)


@pytest.mark.parametrize("point,what,left", [
    ("fsync2", "codegen", "old"), ("fsync9", "codegen", "old"), ("before-swap", "codegen", "old"),
    ("after-swap", "codegen", "new"), ("fsync4", "sketch", "old"), ("after-swap", "sketch", "new"),
])
def test_a_sigkill_leaves_the_old_folder_or_the_new_one(model, tmp_path, point, what, left):
    out, old, new = _earlier_and_next(model, tmp_path, what)
    p = subprocess.run([sys.executable, "-c", CHILD, point, what, str(model), str(out), ",".join(NEW)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == -signal.SIGKILL, p.stdout + p.stderr
    assert _tree(out) == (old if left == "old" else new)
    CModel.from_folder(out)  # whole and consistent
    assert _leftovers(out.parent)  # the kill left its staging folder (or temporary file) behind ...
    if what == "codegen":
        generate_c(model, out, labels=NEW)
    else:
        write_sketch(model, out.parent, sketch=out.name, labels=NEW, app="gesture")
    assert _leftovers(out.parent) == [] and [p.name for p in out.parent.iterdir()] == ["out"]  # ... the next run removed it
    assert _tree(out) == new


def test_a_kill_between_the_two_renames_gets_the_old_folder_back(model, tmp_path):
    """Where a folder cannot be swapped in one step, a kill between moving the old one aside and the
    new one in leaves no folder in place; the next run puts the old one back before anything else."""
    out, old, new = _earlier_and_next(model, tmp_path, "codegen")
    p = subprocess.run([sys.executable, "-c", CHILD, "between-renames", "codegen", str(model), str(out), ",".join(NEW)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == -signal.SIGKILL, p.stdout + p.stderr
    assert not out.exists()
    fileio.clean_leftovers(out)
    assert _tree(out) == old and _leftovers(out.parent) == []
    generate_c(model, out, labels=NEW)
    assert _tree(out) == new


def test_a_sigkill_from_outside_mid_write_leaves_the_old_folder(model, tmp_path):
    out, old, new = _earlier_and_next(model, tmp_path, "codegen")
    proc = subprocess.Popen([sys.executable, "-c", CHILD, "slow", "codegen", str(model), str(out), ",".join(NEW)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        staging = [p for p in out.parent.iterdir() if ".labkit-new-" in p.name]
        if staging and len(list(staging[0].iterdir())) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    assert _tree(out) == old
    generate_c(model, out, labels=NEW)
    assert _tree(out) == new and _leftovers(out.parent) == []


def test_write_atomic_killed_mid_write_keeps_the_old_file_and_the_next_write_cleans_up(tmp_path):
    path = tmp_path / "punch.csv"
    path.write_text("old\n")
    child = ("import os, signal, sys\nfrom labkit.fileio import write_atomic\n"
             "os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)\n"
             "write_atomic(sys.argv[1], 'new\\n' * 100000)\n")
    p = subprocess.run([sys.executable, "-c", child, str(path)], capture_output=True, timeout=60)
    assert p.returncode == -signal.SIGKILL
    assert path.read_text() == "old\n"
    (stale,) = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    # a temporary file of a live process, or of another machine sharing the folder, is not touched
    live = tmp_path / f".punch.csv.labkit-{fileio._host()}-{os.getpid()}-abc.tmp"
    remote = tmp_path / ".punch.csv.labkit-otherhost-1-abc.tmp"
    live.write_text("")
    remote.write_text("")
    fileio.write_atomic(path, "newer\n")
    assert path.read_text() == "newer\n" and not stale.exists() and live.exists() and remote.exists()


def test_save_keras_model_removes_what_a_killed_save_left(tmp_path):
    from labkit.fileio import save_keras_model
    from labkit.keras import keras

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(gone.stdout)  # a process that has ended
    stale = tmp_path / f".m.keras.labkit-{fileio._host()}-{pid}-x1y2.tmp.keras"
    stale.write_bytes(b"half a model")
    inp = keras.Input((3,))
    save_keras_model(keras.Model(inp, keras.layers.Dense(2)(inp)), tmp_path / "m.keras")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras"]
    assert keras.models.load_model(tmp_path / "m.keras").output_shape == (None, 2)


# ---- modes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mask,file_mode,dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700), (0o002, 0o664, 0o775)])
def test_files_and_folders_get_the_users_umask(model, tmp_path, mask, file_mode, dir_mode):
    old = os.umask(mask)
    try:
        assert fileio.umask() == mask
        fileio.write_atomic(tmp_path / "a.txt", "x")
        generate_c(model, tmp_path / "c")
        folder, _ = write_sketch(model, tmp_path / "s", sketch="g", labels=OLD, app="gesture")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == file_mode
    for d in (tmp_path / "c", folder):
        assert d.stat().st_mode & 0o777 == dir_mode
        assert {p.stat().st_mode & 0o777 for p in d.iterdir()} == {file_mode}


def test_a_rewritten_file_keeps_its_mode(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a\n")
    path.chmod(0o640)
    fileio.write_atomic(path, "b\n")
    assert path.stat().st_mode & 0o777 == 0o640 and path.read_text() == "b\n"
