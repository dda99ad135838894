"""`make lab` serves the lessons, as root too (a container, WSL, a new VM), where JupyterLab refuses to
start unless told --allow-root. CI runs as root, so this is the case a learner in a container meets."""

import json
import shlex
import sys
from pathlib import Path

from lab_server import free_port, get, new_token, running_lab, server_args

ROOT = Path(__file__).resolve().parents[1]


def test_make_lab_serves_the_lessons(tmp_path):
    port, token = free_port(), new_token()
    venv = Path(sys.prefix)
    args = shlex.join(server_args(port, token))
    # -o: the set-up stamp counts as up to date (make test made it); the recipe itself is what is tested
    cmd = ["make", "--no-print-directory", f"VENV={venv}", "-o", f"{venv}/.labkit-installed", "lab", f"LAB_ARGS={args}"]
    with running_lab(cmd, tmp_path, port, token, cwd=ROOT) as lab:
        status, listing = get(f"{lab.url}/api/contents?token={token}")
        assert status == 200 and "00_welcome.ipynb" in listing and "09_deployment.ipynb" in listing
        assert "Running as root is not recommended" not in lab.output()
        # the kit's settings (jupyter/overrides.json, installed by make setup): no news toast for learners
        status, notification = get(f"{lab.url}/lab/api/settings/"
                                   f"@jupyterlab/apputils-extension:notification?token={token}")
        defaults = json.loads(notification)["schema"]["properties"]  # overrides change the schema's defaults
        assert defaults["fetchNews"]["default"] == "false" and defaults["checkForUpdates"]["default"] is False
