"""Fixtures for the command-line tests: each command runs as a subprocess against a fresh workspace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class Cli:
    """``wandb-dagster`` (``python -m wandb_dagster``) with the workspace options of one test workspace."""

    def __init__(self, tmp_path: Path, database_url: str) -> None:
        self.cwd = tmp_path / "cwd"
        self.cwd.mkdir()
        self.storage = tmp_path / "blobs"
        self.database_url = database_url
        self.env = {
            k: v for k, v in os.environ.items()
            if not k.startswith(("WANDB_DAGSTER_", "WANDB_PROJECT", "WANDB_RUN"))
        }  # fmt: skip
        self.env.update({
            "WANDB_DAGSTER_DIR": str(tmp_path / "workspace"), "WANDB_DAGSTER_CACHE_DIR": str(tmp_path / "cache"),
            "WANDB_ENTITY": "tester",
        })  # fmt: skip

    def __call__(self, *args: str, options: bool = True, check: bool = True) -> Result:
        ws = ["--database-url", self.database_url, "--storage", str(self.storage)] if options else []
        proc = subprocess.run(
            [sys.executable, "-m", "wandb_dagster", *ws, *args], cwd=self.cwd, env=self.env, capture_output=True,
            text=True, timeout=300,
        )  # fmt: skip
        result = Result(proc.returncode, proc.stdout, proc.stderr)
        if check:
            assert result.code == 0, f"exit {result.code}: {result.err}"
        return result


@pytest.fixture
def cli(tmp_path: Path, database_url: str) -> Cli:
    """The command line on a fresh workspace, once on SQLite and once on PostgreSQL."""
    return Cli(tmp_path, database_url)
