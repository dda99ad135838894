"""``labkit board compile|upload``: arduino-cli with the right board, sizes as the compiler reports them.

Commands run as argument lists (never through a shell), so a path with spaces or quotes is
passed as it is.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from labkit.errors import LabkitError, ToolMissingError

FQBN = "arduino:mbed_nano:nano33ble"
CORE = "arduino:mbed_nano"
INSTALL_CLI = (
    "arduino-cli was not found. Install it (https://arduino.github.io/arduino-cli/ — e.g. `brew install "
    "arduino-cli`, or the Linux/Windows download), then run `arduino-cli core install arduino:mbed_nano` "
    "and, for the gesture app, `arduino-cli lib install Arduino_LSM9DS1` (Rev1) or "
    "`arduino-cli lib install Arduino_BMI270_BMM150` (Rev2). The Arduino IDE 2 works too: open the .ino."
)


NO_PORT = ("no serial port {port}: no board is connected there. `arduino-cli board list` (or "
           "`python -m serial.tools.list_ports`) lists the ports it sees - Linux /dev/ttyACM0, macOS "
           "/dev/cu.usbmodem..., Windows COM3; a USB cable that only charges shows none")
PORT_PERMISSION = ("permission denied on {port}: on Linux add yourself to the dialout group "
                   "(`sudo usermod -a -G dialout $USER`), then log out and back in")
NO_ANSWER = ("no board answered on {port}: is it the Nano 33 BLE's port (`arduino-cli board list`)? If it is, "
             "double-press the board's reset button (the orange LED pulses: the bootloader waits) and upload again")


def check_port(port: str) -> None:
    """Fail early, saying what to do, when ``port`` cannot be the board's serial port. Only device
    paths are checked (/dev/...); names such as COM3 are left to the tools that open them."""
    if port.startswith("/dev/"):
        if not os.path.exists(port):
            raise LabkitError(NO_PORT.format(port=port))
        if not os.access(port, os.R_OK | os.W_OK):
            raise LabkitError(PORT_PERMISSION.format(port=port))


@dataclass
class BuildSizes:
    flash_bytes: int
    flash_max: int
    ram_bytes: int
    ram_max: int

    def __str__(self) -> str:
        return (f"flash {self.flash_bytes:,} of {self.flash_max:,} bytes ({100 * self.flash_bytes / self.flash_max:.0f}%), "
                f"RAM {self.ram_bytes:,} of {self.ram_max:,} bytes ({100 * self.ram_bytes / self.ram_max:.0f}%)")


def arduino_cli() -> str:
    path = shutil.which("arduino-cli")
    if path is None:
        raise ToolMissingError(INSTALL_CLI)
    return path


def _sketch_dir(path: str | os.PathLike) -> Path:
    d = Path(path)
    if not d.is_dir() or not (d / f"{d.name}.ino").is_file():
        raise LabkitError(f"{d} is not a sketch folder: it must hold {d.name}.ino (the folder is named after its .ino)")
    return d


def parse_sizes(output: str) -> BuildSizes:
    """The sizes in arduino-cli compile's summary ("Sketch uses N bytes (P%) of program storage
    space. Maximum is M bytes." and "Global variables use N bytes ... Maximum is M bytes.")."""
    flash = re.search(r"Sketch uses (\d+) bytes.*?Maximum is (\d+) bytes", output, re.S)
    ram = re.search(r"Global variables use (\d+) bytes.*?Maximum is (\d+) bytes", output, re.S)
    if not flash or not ram:
        raise LabkitError("arduino-cli did not report the sketch's size:\n" + output.strip()[-1500:])
    return BuildSizes(int(flash.group(1)), int(flash.group(2)), int(ram.group(1)), int(ram.group(2)))


def _run(cmd: list[str], port: str | None = None) -> str:
    p = subprocess.run(cmd, capture_output=True, text=True)
    out = p.stdout + p.stderr
    if p.returncode != 0:
        if port is not None:  # an upload: bossac's words for a port with no bootloader behind it, or no access
            if "No device found" in out or "not responding" in out.lower():
                raise LabkitError(f"{NO_ANSWER.format(port=port)}\n{out.strip()}")
            if "ermission denied" in out:
                raise LabkitError(f"{PORT_PERMISSION.format(port=port)}\n{out.strip()}")
        if "Platform '" in out and "not found" in out or "platform not installed" in out.lower():
            raise LabkitError(f"the board's core is not installed: run `arduino-cli core install {CORE}`\n{out.strip()}")
        if "No such file or directory" in out and ".h" in out:
            raise LabkitError("a library is missing (for the gesture app: `arduino-cli lib install Arduino_LSM9DS1` on a "
                              f"Rev1, `arduino-cli lib install Arduino_BMI270_BMM150` on a Rev2)\n{out.strip()}")
        raise LabkitError(f"{' '.join(cmd)} failed (exit {p.returncode}):\n{out.strip()}")
    return out


def compile_sketch(sketch: str | os.PathLike, fqbn: str = FQBN) -> BuildSizes:
    """Compile with arduino-cli; returns the flash and RAM it reports."""
    d = _sketch_dir(sketch)
    return parse_sizes(_run([arduino_cli(), "compile", "--fqbn", fqbn, str(d)]))


def upload_sketch(sketch: str | os.PathLike, port: str, fqbn: str = FQBN) -> BuildSizes:
    """Compile, then upload to the board on ``port``."""
    if not port:
        raise LabkitError("upload needs --port (the board's serial port, e.g. /dev/ttyACM0 or COM3); "
                          "`arduino-cli board list` shows it")
    check_port(port)  # before the minute-long compile
    sizes = compile_sketch(sketch, fqbn)
    _run([arduino_cli(), "upload", "--fqbn", fqbn, "--port", port, str(_sketch_dir(sketch))], port=port)
    return sizes
