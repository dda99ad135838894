"""`make lab` serves the lessons, as root too (a container, WSL, a new VM), where JupyterLab refuses to
start unless told --allow-root. CI runs as root, so this is the case a learner in a container meets."""

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.read().decode("utf-8", "replace")


def test_make_lab_serves_the_lessons(tmp_path):
    port, token = _free_port(), secrets.token_hex(16)
    venv = Path(sys.prefix)
    args = f"--no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port={port} --ServerApp.token={token} " \
           f"--ServerApp.port_retries=0"
    # -o: the set-up stamp counts as up to date (make test made it); the recipe itself is what is tested
    cmd = ["make", "--no-print-directory", f"VENV={venv}", "-o", f"{venv}/.labkit-installed", "lab", f"LAB_ARGS={args}"]
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    log = open(tmp_path / "lab.log", "w+")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline, page = time.monotonic() + 90, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                page = _get(f"http://127.0.0.1:{port}/lab?token={token}")
                break
            except OSError:
                time.sleep(0.5)
        log.seek(0)
        output = log.read()
        assert page is not None, f"make lab did not serve (exit {proc.poll()}):\n{output[-2000:]}"
        status, body = page
        assert status == 200 and "JupyterLab" in body
        status, listing = _get(f"http://127.0.0.1:{port}/api/contents?token={token}")
        assert status == 200 and "00_welcome.ipynb" in listing and "09_deployment.ipynb" in listing
        assert "Running as root is not recommended" not in output
        # the kit's settings (jupyter/overrides.json, installed by make setup): no news toast for learners
        status, notification = _get(f"http://127.0.0.1:{port}/lab/api/settings/"
                                    f"@jupyterlab/apputils-extension:notification?token={token}")
        defaults = json.loads(notification)["schema"]["properties"]  # overrides change the schema's defaults
        assert defaults["fetchNews"]["default"] == "false" and defaults["checkForUpdates"]["default"] is False
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
