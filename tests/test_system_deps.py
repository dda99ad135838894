"""scripts/system-deps.sh: as root with apt it installs what is missing; otherwise it names the packages.
`make demo` uses its demo mode (compilers and emulator only; never stops the demo), `make test` the full one."""

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "system-deps.sh"
ARM = ["gcc-arm-none-eabi", "libnewlib-arm-none-eabi", "qemu-system-arm"]


def _machine(tmp_path, uid: int, apt: bool) -> dict:
    """A PATH with the host gcc but no ARM tools, QEMU or PostgreSQL, an `id` that says `uid`, maybe apt-get."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for tool in ("cat", "grep", "gcc"):
        (bin_ / tool).symlink_to(subprocess.check_output(["which", tool], text=True).strip())
    (bin_ / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    if apt:
        (bin_ / "apt-get").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/apt.log\n')
    for f in bin_.iterdir():
        if not f.is_symlink():
            f.chmod(0o755)
    return {"PATH": str(bin_), "HOME": str(tmp_path)}


def _run(env, *args):
    return subprocess.run(["/bin/bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=30)


def test_demo_mode_without_root_names_the_packages_and_lets_the_demo_go_on(tmp_path):
    r = _run(_machine(tmp_path, uid=1000, apt=True), "demo")
    assert r.returncode == 0
    assert f"sudo apt-get install --no-install-recommends {' '.join(ARM)}" in r.stderr
    assert "runs the host rung" in r.stderr and "postgresql" not in r.stderr  # the demo needs no database
    assert not (tmp_path / "apt.log").exists()


def test_test_mode_without_root_stops_with_the_command_to_run(tmp_path):
    r = _run(_machine(tmp_path, uid=1000, apt=True))
    assert r.returncode == 1
    assert all(p in r.stderr.split("missing:")[1].splitlines()[0] for p in ARM + ["chromium"])
    assert "sudo apt-get install" in r.stderr and "chromium" in r.stderr.split("sudo apt-get install")[1]


@pytest.mark.parametrize("mode", ["demo", "test"])
def test_root_with_apt_installs_what_is_missing(tmp_path, mode):
    r = _run(_machine(tmp_path, uid=0, apt=True), mode)
    assert r.returncode == 0, r.stderr
    calls = (tmp_path / "apt.log").read_text().splitlines()
    assert calls[0] == "update -qq"
    installed = calls[1].split()
    assert installed[:4] == ["install", "-y", "-qq", "--no-install-recommends"]
    assert all(p in installed for p in ARM) and "gcc" not in installed  # the host gcc is there
    assert ("chromium" in installed) == (mode == "test")  # the browser tests' Chromium; the demo needs none


def test_an_unknown_mode_is_refused(tmp_path):
    r = _run(dict(os.environ), "everything")
    assert r.returncode == 2 and "usage:" in r.stderr
