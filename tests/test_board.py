"""`labkit sketch`, `labkit board`, `labkit capture` from the command line.

arduino-cli cannot be installed on the test machine (no registry ships it), so a stand-in
on PATH records the argument list it gets and answers in arduino-cli's words; on a desk with
a board the same commands run the real one.
"""

import json
import os
import stat

import pytest

from labkit import cli
from labkit.deploy.board import parse_sizes

SUMMARY = ("Sketch uses 143256 bytes (14%) of program storage space. Maximum is 983040 bytes.\n"
           "Global variables use 45872 bytes (17%) of dynamic memory, leaving 216272 bytes for local variables. "
           "Maximum is 262144 bytes.\n")


@pytest.fixture
def port():
    """A serial device that exists: the board end of a pseudo-terminal."""
    main, board = os.openpty()
    yield os.ttyname(board)
    os.close(main)
    os.close(board)


@pytest.fixture
def fake_cli(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "calls.jsonl"
    script = bindir / "arduino-cli"
    script.write_text(f"""#!/usr/bin/env python3
import json, os, sys
with open({str(log)!r}, "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
if "--fqbn" in sys.argv and sys.argv[sys.argv.index("--fqbn") + 1] != "arduino:mbed_nano:nano33ble":
    print("Error: wrong board"); sys.exit(1)
if sys.argv[1] == "compile":
    print({SUMMARY!r})
if sys.argv[1] == "upload" and os.environ.get("FAKE_UPLOAD_SAYS"):  # bossac's words, then arduino-cli's
    print(os.environ["FAKE_UPLOAD_SAYS"]); print("Error during Upload: Failed uploading: exit status 1"); sys.exit(1)
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return log


def test_sketch_then_compile_and_upload(gesture_tflite, tmp_path, fake_cli, port, capsys):
    model = tmp_path / "my gestures.tflite"  # a space in the path: argument lists, not shell strings
    model.write_bytes(gesture_tflite)
    out = tmp_path / "sketch out"
    assert cli.main(["sketch", str(model), "-o", str(out), "--labels", "punch,flex,wave,circle",
                     "--sketch", "gestures"]) == 0
    folder = out / "gestures"
    assert (folder / "gestures.ino").is_file()
    assert cli.main(["board", "compile", str(folder)]) == 0
    assert "flash 143,256 of 983,040 bytes (15%), RAM 45,872 of 262,144 bytes (17%)" in capsys.readouterr().out
    assert cli.main(["board", "upload", str(folder), "--port", port]) == 0
    calls = [json.loads(l) for l in fake_cli.read_text().splitlines()]
    assert calls[0] == ["compile", "--fqbn", "arduino:mbed_nano:nano33ble", str(folder)]
    assert calls[-1] == ["upload", "--fqbn", "arduino:mbed_nano:nano33ble", "--port", port, str(folder)]


@pytest.fixture
def sketch(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "s.ino").write_text("void setup(){}\nvoid loop(){}\n")
    return tmp_path / "s"


def test_upload_to_a_port_that_does_not_exist(sketch, fake_cli, capsys):
    assert cli.main(["board", "upload", str(sketch), "--port", "/dev/ttyACM9"]) == 2
    err = capsys.readouterr().err
    assert "no serial port /dev/ttyACM9" in err and "arduino-cli board list" in err
    assert not fake_cli.exists()  # refused before compiling


def test_upload_without_permission_on_the_port(sketch, fake_cli, port, monkeypatch, capsys):
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if p == port else real_access(p, mode))  # root may do all
    assert cli.main(["board", "upload", str(sketch), "--port", port]) == 2
    err = capsys.readouterr().err
    assert f"permission denied on {port}" in err and "dialout" in err
    assert not fake_cli.exists()  # refused before compiling


@pytest.mark.parametrize("bossac,words", [
    ("No device found on ttyACM0", "no board answered on"),
    ("Failed to open port: Permission denied", "dialout group"),
])
def test_upload_to_a_port_with_no_board_behind_it(sketch, fake_cli, port, monkeypatch, capsys, bossac, words):
    monkeypatch.setenv("FAKE_UPLOAD_SAYS", bossac)
    assert cli.main(["board", "upload", str(sketch), "--port", port]) == 2
    err = capsys.readouterr().err
    assert words in err and bossac in err  # what to do, then the tool's own words


def test_upload_needs_a_port(gesture_tflite, tmp_path, fake_cli, capsys):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "s.ino").write_text("void setup(){}\nvoid loop(){}\n")
    assert cli.main(["board", "upload", str(tmp_path / "s")]) == 2
    assert "upload needs --port" in capsys.readouterr().err


def test_not_a_sketch_folder(tmp_path, fake_cli, capsys):
    assert cli.main(["board", "compile", str(tmp_path)]) == 2
    assert "is not a sketch folder" in capsys.readouterr().err


def test_missing_arduino_cli_says_how_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "s.ino").write_text("")
    assert cli.main(["board", "compile", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "arduino-cli was not found" in err and "core install arduino:mbed_nano" in err


def test_size_summary_parsing():
    s = parse_sizes(SUMMARY)
    assert (s.flash_bytes, s.flash_max, s.ram_bytes, s.ram_max) == (143256, 983040, 45872, 262144)


def test_capture_command_on_a_missing_port(tmp_path, capsys):
    assert cli.main(["capture", "--port", str(tmp_path / "ttyNONE"), "--label", "punch",
                     "-o", str(tmp_path / "p.csv"), "--gestures", "1"]) == 2
    assert "Is the board plugged in" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()
