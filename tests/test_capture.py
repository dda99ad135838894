"""`labkit capture` against a pseudo-terminal whose other end plays the board."""

import os
import signal
import threading
import time

import numpy as np
import pytest

from labkit.datasets import load_gesture_csv, make_gestures
from labkit.datasets.gestures import HEADER
from labkit.deploy.capture import capture
from labkit.errors import LabkitError


class FakeBoard:
    """The capture sketch's side of the USB cable, on a pty; ``link`` is the port's stable path."""

    def __init__(self, link):
        self.link = link
        self._open()

    def _open(self):
        self.master, slave = os.openpty()
        self.slave_name = os.ttyname(slave)
        os.close(slave)  # pyserial opens it by name
        if os.path.lexists(self.link):
            os.unlink(self.link)
        os.symlink(self.slave_name, self.link)

    def send(self, text: str | bytes, pause=0.0):
        data = text.encode() if isinstance(text, str) else text
        for i in range(0, len(data), 512):
            os.write(self.master, data[i:i + 512])
            time.sleep(0.002)
        time.sleep(pause)

    def unplug(self):
        """As a USB serial device's node disappears when the cable is pulled (and the pty's number may
        be reused by another test at once: the link must not point at it)."""
        os.unlink(self.link)
        os.close(self.master)

    def replug(self):
        self._open()


def gesture_text(g):
    return "".join(",".join(f"{v:.3f}" for v in row) + "\n" for row in g) + "\n"


def printed(g):
    """The values as the board prints them (3 decimals)."""
    return np.array([[[float(f"{v:.3f}") for v in row] for row in w] for w in np.atleast_3d(g)], np.float32)


@pytest.fixture
def gestures():
    x, _, _ = make_gestures(n_per_class=2, seed=8)
    return x


def run_in_thread(fn):
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("result", fn()), daemon=True)
    t.start()
    return t, out


class Log:
    """capture()'s log: the tests wait for what it says instead of sleeping and hoping (pyserial
    flushes what arrived before the port was open, as a board's early output is lost too)."""

    def __init__(self):
        self.lines, self._changed = [], threading.Condition()

    def __call__(self, line):
        with self._changed:
            self.lines.append(line)
            self._changed.notify_all()

    def wait_for(self, words, count=1, timeout=20.0):
        with self._changed:
            assert self._changed.wait_for(lambda: sum(words in l for l in self.lines) >= count, timeout), self.lines


def start_capture(fn):
    """Run ``fn(log)`` (a capture) in a thread; return once it listens on the port."""
    log = Log()
    t, out = run_in_thread(lambda: fn(log))
    log.wait_for("listening on")
    return t, out, log


def test_good_gestures_are_written_as_they_arrive(tmp_path, gestures):
    board = FakeBoard(str(tmp_path / "ttyBOARD"))
    csv = tmp_path / "punch.csv"
    t, out, log = start_capture(lambda log: capture(board.link, csv, gestures=3, log=log))
    board.send(HEADER + "\n")
    board.send(gesture_text(gestures[0]))
    log.wait_for("gesture 1 saved")
    assert len(load_gesture_csv(csv)) == 1  # on disk before the next gesture exists
    board.send(gesture_text(gestures[1]) + gesture_text(gestures[2]))
    t.join(10)
    s = out["result"]
    assert s.kept == 3 and s.skipped_lines == 0 and s.dropped == 0
    assert np.array_equal(load_gesture_csv(csv), printed(gestures[:3]))


def test_garbage_half_lines_and_a_reset_banner(tmp_path, gestures):
    board = FakeBoard(str(tmp_path / "ttyBOARD"))
    csv = tmp_path / "wave.csv"
    t, out, log = start_capture(lambda log: capture(board.link, csv, gestures=3, log=log))
    board.send(b"\x00\xff\xfe boot noise\n" + HEADER.encode() + b"\n")
    board.send(gesture_text(gestures[0]))                      # kept
    half = gesture_text(gestures[1]).splitlines(keepends=True)
    board.send("".join(half[:50]) + "0.12,0.3\n" + "".join(half[51:]))  # a half line: this gesture is lost
    board.send("".join(gesture_text(gestures[2]).splitlines(keepends=True)[:70]))
    board.send("\r\n" + HEADER + "\r\n")                        # the board reset mid-gesture
    board.send(gesture_text(gestures[3]).replace("\n", "\r\n"))  # kept (CRLF line ends)
    board.send("not,a,number,at,all,x\n")
    board.send(gesture_text(gestures[4]))                       # kept
    t.join(10)
    s = out["result"]
    assert s.kept == 3
    assert s.skipped_lines == 3  # noise, the half line, the text row
    assert s.dropped == 2        # the gesture with the half line, the one cut by the reset
    kept = load_gesture_csv(csv)
    assert np.array_equal(kept, printed(gestures[[0, 3, 4]]))


def test_a_disconnect_keeps_what_was_written_and_the_capture_resumes(tmp_path, gestures):
    board = FakeBoard(str(tmp_path / "ttyBOARD"))
    csv = tmp_path / "flex.csv"
    t, out, log = start_capture(lambda log: capture(board.link, csv, gestures=2, reconnect_s=5, log=log))
    board.send(HEADER + "\n" + gesture_text(gestures[0]))
    log.wait_for("gesture 1 saved")
    board.send("".join(gesture_text(gestures[1]).splitlines(keepends=True)[:30]), pause=0.3)
    before = csv.read_bytes()
    board.unplug()   # cable pulled mid-gesture
    time.sleep(0.5)
    assert csv.read_bytes() == before and len(load_gesture_csv(csv)) == 1
    board.replug()   # the port comes back (a reset re-enumerates it)
    log.wait_for("is back")
    board.send(HEADER + "\n" + gesture_text(gestures[2]))
    t.join(10)
    s = out["result"]
    assert s.kept == 2 and s.reconnects >= 1 and s.dropped == 1
    assert np.array_equal(load_gesture_csv(csv), printed(gestures[[0, 2]]))


def test_a_board_that_never_comes_back(tmp_path, gestures):
    board = FakeBoard(str(tmp_path / "ttyBOARD"))
    csv = tmp_path / "g.csv"
    t, out, log = start_capture(lambda log: _catch(lambda: capture(board.link, csv, gestures=5, reconnect_s=1, log=log)))
    board.send(HEADER + "\n" + gesture_text(gestures[0]))
    log.wait_for("gesture 1 saved")
    board.unplug()
    t.join(10)
    err = out["result"]
    assert isinstance(err, LabkitError) and "did not come back" in str(err)
    assert len(load_gesture_csv(csv)) == 1  # nothing lost


def _catch(fn):
    try:
        return fn()
    except LabkitError as e:
        return e


def test_appending_to_an_existing_capture(tmp_path, gestures):
    csv = tmp_path / "punch.csv"
    for i in range(2):
        board = FakeBoard(str(tmp_path / f"tty{i}"))
        t, out, log = start_capture(lambda log: capture(board.link, csv, gestures=1, log=log))
        board.send(HEADER + "\n" + gesture_text(gestures[i]))
        t.join(10)
        assert out["result"].already == i
    assert np.array_equal(load_gesture_csv(csv), printed(gestures[:2]))


def test_refuses_to_append_to_something_else(tmp_path):
    other = tmp_path / "notes.csv"
    other.write_text("name,score\nada,3\n")
    with pytest.raises(LabkitError, match="not a capture file"):
        capture(str(tmp_path / "nowhere"), other, gestures=1)
    assert other.read_text() == "name,score\nada,3\n"


def test_no_board_on_the_port(tmp_path):
    with pytest.raises(LabkitError, match="no serial port .*ttyNOTHING.*board list.*Is the board plugged in"):
        capture(str(tmp_path / "ttyNOTHING"), tmp_path / "x.csv", gestures=1)
    assert not (tmp_path / "x.csv").exists()  # nothing half-written: not even a header


# --- Ctrl-C and files left behind (issue 12) ---------------------------------------------------

def test_a_header_only_file_is_appended_to(tmp_path, gestures):
    """What a capture stopped before its first gesture (or killed) can leave: the next capture takes it."""
    csv = tmp_path / "punch.csv"
    csv.write_text(HEADER + "\n")
    board = FakeBoard(str(tmp_path / "ttyBOARD"))
    t, out, log = start_capture(lambda log: capture(board.link, csv, gestures=1, log=log))
    board.send(HEADER + "\n" + gesture_text(gestures[0]))
    t.join(10)
    assert out["result"].already == 0 and out["result"].kept == 1
    assert np.array_equal(load_gesture_csv(csv, strict=True), printed(gestures[:1]))


def test_a_capture_that_got_nothing_leaves_no_file(tmp_path):
    board = FakeBoard(str(tmp_path / "ttyBOARD"))
    csv = tmp_path / "wave.csv"
    s = capture(board.link, csv, idle_s=0.3, log=lambda m: None)
    assert s.kept == 0 and not csv.exists()


def test_appending_refuses_a_file_whose_last_gesture_is_cut_short(tmp_path, gestures):
    """Reading drops such a gesture with a warning, but appending after it would bury it mid-file."""
    csv = tmp_path / "flex.csv"
    text = HEADER + "\n" + gesture_text(gestures[0]) + "".join(gesture_text(gestures[1]).splitlines(True)[:40])
    csv.write_text(text)
    with pytest.raises(LabkitError, match=r"not a capture file.*line 161.*has 40 rows"):
        capture(str(tmp_path / "nowhere"), csv, gestures=1)
    assert csv.read_text() == text


class CliCapture:
    """`labkit capture` as a user runs it, in its own process, so that SIGINT is a real Ctrl-C."""

    # What the `labkit` script runs, plus a line on stderr once main() holds Ctrl-C (as it builds the
    # parser): before that, Python itself is starting (site, .pth files, about 0.1 s) and a Ctrl-C then
    # is Python's own to report.
    SCRIPT = ("import sys; import labkit.cli as c; build = c.build_parser; "
              "c.build_parser = lambda: (sys.stderr.write('started\\n'), sys.stderr.flush(), build())[2]; "
              "sys.exit(c.main())")

    def __init__(self, tmp_path, csv):
        import subprocess
        import sys

        self.board = FakeBoard(str(tmp_path / "ttyCLI"))
        self.err: list[str] = []
        self.seen = threading.Condition()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", self.SCRIPT, "capture", "--port", self.board.link, "--label", "punch", "-o", str(csv)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_for("started")

    def _read(self):
        for line in self.proc.stderr:
            with self.seen:
                self.err.append(line)
                self.seen.notify_all()

    def wait_for(self, words, timeout=30.0):
        with self.seen:
            assert self.seen.wait_for(lambda: any(words in l for l in self.err), timeout), self.err

    def interrupt(self):
        self.proc.send_signal(signal.SIGINT)
        # generous: under make test's load (two workers training and emulating) a Python process that has
        # imported TensorFlow took over 30 s to exit; the assertions are on what it prints, not how fast
        code = self.proc.wait(180)
        time.sleep(0.1)  # the reader thread takes the last lines
        return code, "".join(self.err)


@pytest.mark.parametrize("delay", [0.0, 0.03, 0.08, 0.15, 0.25, 0.4, 0.7])
def test_ctrl_c_at_start_up_says_what_was_kept(tmp_path, delay):
    """Also while the command starts and before the port is open: one line, exit 130, no traceback,
    and no file the next capture refuses."""
    csv = tmp_path / "punch.csv"
    run = CliCapture(tmp_path, csv)
    time.sleep(delay)
    code, err = run.interrupt()
    assert code == 130, err
    assert "Traceback" not in err and f"interrupted: 0 gesture(s) kept in {csv}" in err
    if csv.exists():  # only when the Ctrl-C hit between writing the header and removing it: never half a one
        assert csv.read_text() == HEADER + "\n"


def test_ctrl_c_mid_gesture_keeps_the_whole_ones(tmp_path, gestures):
    csv = tmp_path / "punch.csv"
    run = CliCapture(tmp_path, csv)
    run.wait_for("listening on")
    run.board.send(HEADER + "\n" + gesture_text(gestures[0]) + gesture_text(gestures[1]))
    run.wait_for("gesture 2 saved")
    run.board.send("".join(gesture_text(gestures[2]).splitlines(True)[:60]), pause=0.3)
    code, err = run.interrupt()
    assert code == 130 and "Traceback" not in err
    assert f"interrupted: 2 gesture(s) kept in {csv}" in err
    assert np.array_equal(load_gesture_csv(csv, strict=True), printed(gestures[:2]))
    next_capture_appends(tmp_path, csv, gestures, [0, 1], 3)


def next_capture_appends(tmp_path, csv, gestures, kept, new):
    """The next capture into ``csv`` takes it as it is (holding gestures[kept]) and adds gestures[new]."""
    board = FakeBoard(str(tmp_path / "ttyNEXT"))
    t, out, log = start_capture(lambda log: capture(board.link, csv, gestures=1, log=log))
    board.send(HEADER + "\n" + gesture_text(gestures[new]))
    t.join(10)
    assert out["result"].already == len(kept)
    assert np.array_equal(load_gesture_csv(csv, strict=True), printed(gestures[kept + [new]]))


def test_sigkill_mid_gesture_leaves_whole_gestures_the_next_capture_takes(tmp_path, gestures):
    csv = tmp_path / "punch.csv"
    run = CliCapture(tmp_path, csv)
    run.wait_for("listening on")
    run.board.send(HEADER + "\n" + gesture_text(gestures[0]))
    run.wait_for("gesture 1 saved")
    run.board.send("".join(gesture_text(gestures[1]).splitlines(True)[:70]), pause=0.3)
    run.proc.kill()
    run.proc.wait(30)
    assert np.array_equal(load_gesture_csv(csv, strict=True), printed(gestures[:1]))
    next_capture_appends(tmp_path, csv, gestures, [0], 2)


@pytest.mark.parametrize("argv, message", [
    (["--label", "punch", "--gestures", "0"], r"--gestures must be 1 or more, got 0 \(leave it out to record until Ctrl-C\)"),
    (["--label", "../punch"], r"--label '\.\./punch' cannot name a file; give a plain name \(e\.g\. punch\) or -o FILE"),
    (["--label", " "], r"--label ' ' cannot name a file"),
])
def test_capture_options_are_checked_before_the_port(tmp_path, capsys, monkeypatch, argv, message):
    import re

    from labkit.cli import main

    monkeypatch.chdir(tmp_path)
    code = main(["capture", "--port", str(tmp_path / "ttyNONE"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("labkit: error: ") and err.count("\n") == 1, err
    assert re.search(message, err), err
    assert os.listdir(tmp_path) == []
