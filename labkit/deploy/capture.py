"""``labkit capture``: record gestures the board's capture sketch prints, straight into a CSV.

Each gesture is appended to the file and flushed to disk the moment its last row arrives,
so a disconnect loses at most the gesture in flight. Lines that are not six numbers are
skipped and counted; a header in the middle of a gesture (the board reset) drops that
gesture only; if the port disappears (a reset re-enumerates the USB port) it is opened
again until ``reconnect_s`` runs out.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from labkit.datasets.gestures import HEADER, SAMPLES_PER_GESTURE, count_gestures
from labkit.deploy.board import NO_PORT, PORT_PERMISSION
from labkit.errors import DatasetError, LabkitError
from labkit.fileio import write_atomic

BAUD = 9600


@dataclass
class CaptureSummary:
    path: Path
    kept: int = 0  # gestures written by this run
    skipped_lines: int = 0  # lines that were not six numbers
    dropped: int = 0  # gestures cut short (reset, disconnect, malformed rows)
    reconnects: int = 0
    already: int = 0  # gestures the file held before
    interrupted: bool = False  # stopped by Ctrl-C
    messages: list[str] = field(default_factory=list)

    def interrupted_line(self) -> str:
        return f"interrupted: {self.kept} gesture(s) kept in {self.path}"

    def __str__(self) -> str:
        return (f"{self.path}: {self.kept} gesture(s) kept ({self.already + self.kept} in the file), "
                f"{self.skipped_lines} malformed line(s) skipped, {self.dropped} incomplete gesture(s) dropped, "
                f"{self.reconnects} reconnect(s)")


def _open(port: str, baud: int):
    import serial

    try:
        return serial.Serial(port, baud, timeout=0.2)
    except serial.SerialException as e:
        text = str(e)
        if "ermission" in text or getattr(e, "errno", None) == 13:
            raise LabkitError(PORT_PERMISSION.format(port=port)) from None
        if getattr(e, "errno", None) == 2:
            raise LabkitError(NO_PORT.format(port=port) + ". Is the board plugged in and the capture sketch uploaded?") from None
        raise LabkitError(
            f"cannot open {port}: {text}. Is the board plugged in and the capture sketch uploaded? "
            "List the ports with `python -m serial.tools.list_ports`.") from None


def _parse_row(line: str) -> list[float] | None:
    parts = line.split(",")
    if len(parts) != 6:
        return None
    try:
        values = [float(p) for p in parts]
    except ValueError:
        return None
    return values if all(math.isfinite(v) for v in values) else None


def _gestures_in(path: Path) -> int:
    """The gestures an existing file holds (0 for none, or a header only); refuses a file that is
    not a whole capture file, so that appending cannot corrupt it. Writes nothing."""
    if path.is_dir():
        raise LabkitError(f"{path} is a folder; give the capture file's name, e.g. {path / 'punch.csv'}")
    try:
        return count_gestures(path)
    except DatasetError as e:
        raise LabkitError(f"{path} exists but is not a capture file, so nothing was appended: {e}") from None


def _start_file(path: Path) -> bool:
    """A new file gets the header (written whole: a Ctrl-C cannot leave half a header); an existing one
    cut after a row gets its blank line. True when this made the file (it did not exist)."""
    existed = path.exists()
    if not existed or path.stat().st_size == 0:
        write_atomic(path, HEADER + "\n")
        return not existed
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) != b"\n":
            with open(path, "ab") as g:
                g.write(b"\n")
    return False


def capture(port: str, path: str | os.PathLike, gestures: int | None = None, baud: int = BAUD,
            reconnect_s: float = 10.0, idle_s: float | None = None, log=print) -> CaptureSummary:
    """Read gestures from ``port`` into ``path`` until ``gestures`` are kept (or Ctrl-C, or
    ``idle_s`` seconds pass with nothing received).

    Ctrl-C at any point returns the summary with ``interrupted`` set: the file then holds the
    gestures it held before plus every whole gesture received, and nothing else (a file this
    run made and that got no gesture is removed)."""
    if gestures is not None and gestures < 1:
        raise LabkitError("--gestures must be at least 1")
    path = Path(path)
    summary = CaptureSummary(path=path)
    link: list = [None]  # the open port; _record replaces it when the board comes back
    made = started = False
    try:
        summary.already = _gestures_in(path)
        link[0] = _open(port, baud)  # before anything is written: a wrong port leaves no file behind
        made = _start_file(path)
        started = True
        log(f"listening on {port}: make a gesture (Ctrl-C stops)")
        _record(link, port, baud, gestures, reconnect_s, idle_s, log, summary)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        _finish(summary, link, made, started or made)
    return summary


def _finish(summary: CaptureSummary, link: list, made: bool, started: bool) -> None:
    """Close the port; count what the file really holds (a Ctrl-C may fall between a gesture's write and
    its count); remove a file this run made but left without a gesture."""
    try:
        if link[0] is not None:
            link[0].close()
        if started:
            try:
                summary.kept = count_gestures(summary.path) - summary.already
            except DatasetError:
                pass
        if made and summary.kept == 0 and summary.already == 0 and summary.path.exists():
            summary.path.unlink()  # a header only: no trace of a capture that got nothing
    except KeyboardInterrupt:  # a second Ctrl-C while tidying up: the file is whole either way
        summary.interrupted = True


def _record(link: list, port: str, baud: int, gestures: int | None, reconnect_s: float, idle_s: float | None, log,
            summary: CaptureSummary) -> None:
    import serial

    block: list[list[float]] = []
    discarding = False  # after a malformed row inside a gesture: skip to the blank line
    pending = b""
    last_data = time.monotonic()

    def drop(reason: str):
        nonlocal block
        if block:
            summary.dropped += 1
            summary.messages.append(f"dropped a gesture after {len(block)} rows: {reason}")
            block = []

    try:
        fd = os.open(summary.path, os.O_WRONLY | os.O_APPEND)
        try:
            while gestures is None or summary.kept < gestures:
                try:
                    chunk = link[0].read(4096)
                except (serial.SerialException, OSError):
                    drop("the port went away")
                    link[0].close()
                    link[0] = None
                    link[0] = _reopen(port, baud, reconnect_s)
                    summary.reconnects += 1
                    log(f"{port} is back: listening again")
                    pending = b""
                    continue
                if not chunk:
                    if idle_s is not None and time.monotonic() - last_data > idle_s:
                        break
                    continue
                last_data = time.monotonic()
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    line = raw.decode("ascii", errors="replace").strip()
                    if not line:  # the blank line after each gesture
                        drop(f"only {len(block)} of {SAMPLES_PER_GESTURE} rows arrived")
                        discarding = False
                        continue
                    if line == HEADER:
                        drop("the board restarted")
                        discarding = False
                        continue
                    row = _parse_row(line)
                    if row is None:
                        summary.skipped_lines += 1
                        if block:  # a sample of this gesture is lost: the rest of it is useless
                            drop(f"malformed line {line[:40]!r}")
                            discarding = True
                        continue
                    if discarding:
                        continue
                    block.append(row)
                    if len(block) == SAMPLES_PER_GESTURE:
                        text = "".join(",".join(f"{v:.3f}" for v in r) + "\n" for r in block) + "\n"
                        _write_all(fd, text.encode("ascii"))  # one gesture, whole, then on disk
                        os.fsync(fd)
                        summary.kept += 1
                        block = []
                        log(f"gesture {summary.already + summary.kept} saved")
                        if gestures is not None and summary.kept >= gestures:
                            break
        finally:
            os.close(fd)
    finally:
        drop("capture stopped")


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def _reopen(port: str, baud: int, reconnect_s: float):
    deadline = time.monotonic() + reconnect_s
    while True:
        try:
            return _open(port, baud)
        except LabkitError:
            if time.monotonic() > deadline:
                raise LabkitError(f"{port} went away and did not come back within {reconnect_s:g} s; "
                                  "the gestures saved so far are in the file") from None
            time.sleep(0.2)
