#!/usr/bin/env python3
"""Set up from nothing and run the demo or the tests. Needs only Python >= 3.10.

    python3 dev.py demo      # create .venv, install, run the example pipelines end to end
    python3 dev.py test      # create .venv, install with test extras, run the whole test suite
    python3 dev.py test -k manifest -x   # extra arguments go to pytest
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def ensure_env(extras: str) -> None:
    """Create the virtualenv and install the project with ``extras``; skipped when nothing changed."""
    if sys.version_info < (3, 10):  # noqa: UP036 (dev.py runs on whatever python3 is installed, to say this)
        sys.exit(f"Python >= 3.10 is required; this is {sys.version.split()[0]}.")
    if not PYTHON.exists():
        print(f"creating virtualenv in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / f".installed-{extras}"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == want:
        return
    print(f"installing wandb-dagster[{extras}] into {VENV}", flush=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "-q", "-e", f"{ROOT}[{extras}]"], check=True)
    stamp.write_text(want)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test"):
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "demo":
        ensure_env("all")
        return subprocess.call([str(PYTHON), "-m", "example_pipelines.demo", *rest], cwd=ROOT)
    ensure_env("dev")
    return subprocess.call([str(PYTHON), "-m", "pytest", *rest], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
