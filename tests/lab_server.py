"""Start JupyterLab for a test: on 127.0.0.1, a free port, a token of its own; stopped with its process group.

Used by test_make_lab.py (the `make lab` recipe) and test_browser.py (a copy of the lessons in Chromium).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.read().decode("utf-8", "replace")


def server_args(port: int, token: str) -> list[str]:
    """Loopback only, this port or fail (no retries on another), no browser of its own."""
    return ["--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", f"--ServerApp.token={token}",
            "--ServerApp.port_retries=0"]


@dataclass
class Lab:
    url: str  # http://127.0.0.1:PORT
    token: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextlib.contextmanager
def running_lab(command, tmp_path: Path, port: int, token: str, cwd: Path | None = None, env: dict | None = None,
                timeout: float = 90):
    """Run ``command`` (which starts JupyterLab on ``port`` with ``token``), wait until /lab answers, yield a
    :class:`Lab`; on leaving, stop it and everything it started (kernels too). Jupyter's config and runtime
    folders are temporary, so the user's own settings do not change what is tested."""
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), **(env or {})}
    log_path = tmp_path / "lab.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    lab = Lab(f"http://127.0.0.1:{port}", token, log_path)
    try:
        deadline, page = time.monotonic() + timeout, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                page = get(f"{lab.url}/lab?token={token}")
                break
            except OSError:
                time.sleep(0.5)
        assert page is not None, f"JupyterLab did not serve (exit {proc.poll()}):\n{lab.output()[-2000:]}"
        status, body = page
        assert status == 200 and "JupyterLab" in body
        yield lab
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def shutdown_kernels(lab: Lab) -> None:
    """Stop every kernel the server runs (each lesson's TensorFlow holds hundreds of MB)."""
    import json

    _, listing = get(f"{lab.url}/api/kernels?token={lab.token}")
    for kernel in json.loads(listing):
        req = urllib.request.Request(f"{lab.url}/api/kernels/{kernel['id']}?token={lab.token}", method="DELETE")
        urllib.request.urlopen(req, timeout=30).close()


def new_token() -> str:
    return secrets.token_hex(16)
