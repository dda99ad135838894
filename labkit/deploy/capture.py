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

from labkit.datasets.gestures import HEADER, SAMPLES_PER_GESTURE, load_gesture_csv
from labkit.deploy.board import NO_PORT, PORT_PERMISSION
from labkit.errors import DatasetError, LabkitError

BAUD = 9600


@dataclass
class CaptureSummary:
    path: Path
    kept: int = 0  # gestures written by this run
    skipped_lines: int = 0  # lines that were not six numbers
    dropped: int = 0  # gestures cut short (reset, disconnect, malformed rows)
    reconnects: int = 0
    already: int = 0  # gestures the file held before
    messages: list[str] = field(default_factory=list)

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
    """The gestures an existing file holds (0 for none); refuses a file that is not a capture
    file, so that appending cannot corrupt it. Writes nothing."""
    if not path.exists() or path.stat().st_size == 0:
        return 0
    try:
        return len(load_gesture_csv(path))
    except DatasetError as e:
        raise LabkitError(f"{path} exists but is not a capture file, so nothing was appended: {e}") from None


def _start_file(path: Path) -> None:
    """A new file gets the header; an existing one cut after a row gets its blank line."""
    if not path.exists() or path.stat().st_size == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(HEADER + "\n")
            f.flush()
            os.fsync(f.fileno())
        return
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) != b"\n":
            with open(path, "a", encoding="utf-8", newline="\n") as g:
                g.write("\n")


def capture(port: str, path: str | os.PathLike, gestures: int | None = None, baud: int = BAUD,
            reconnect_s: float = 10.0, idle_s: float | None = None, log=print) -> CaptureSummary:
    """Read gestures from ``port`` into ``path`` until ``gestures`` are kept (or Ctrl-C, or
    ``idle_s`` seconds pass with nothing received)."""
    if gestures is not None and gestures < 1:
        raise LabkitError("--gestures must be at least 1")
    import serial

    path = Path(path)
    summary = CaptureSummary(path=path, already=_gestures_in(path))
    conn = _open(port, baud)  # before anything is written: a wrong port leaves no file behind
    try:
        _start_file(path)
    except BaseException:
        conn.close()
        raise
    log(f"listening on {port}: make a gesture (Ctrl-C stops)")
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
        with open(path, "a", encoding="utf-8", newline="\n") as out:
            while gestures is None or summary.kept < gestures:
                try:
                    chunk = conn.read(4096)
                except (serial.SerialException, OSError):
                    drop("the port went away")
                    conn.close()
                    conn = _reopen(port, baud, reconnect_s)
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
                        out.write(text)
                        out.flush()
                        os.fsync(out.fileno())
                        summary.kept += 1
                        block = []
                        log(f"gesture {summary.already + summary.kept} saved")
                        if gestures is not None and summary.kept >= gestures:
                            break
    except KeyboardInterrupt:
        pass
    finally:
        drop("capture stopped")
        conn.close()
    return summary


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
