"""The README's demo runs end to end, and a second run reuses every version (nothing changed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_runs_twice_and_reuses_versions(tmp_path):
    env = {
        "WANDB_DAGSTER_DIR": str(tmp_path / "ws"),
        "WANDB_DAGSTER_CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONPATH": str(ROOT),
        "PATH": "/usr/bin:/bin",
    }
    outputs = [
        subprocess.run(
            [sys.executable, "-m", "example_pipelines.demo"], cwd=tmp_path, env=env, check=True, capture_output=True, text=True
        ).stdout
        for _ in range(2)
    ]
    for out in outputs:
        assert "bike-dataset versions: ['v0']" in out
        assert "registry bike-models links: [('v0', ['latest', 'production'])]" in out
        assert "same id as source: True" in out
    assert "bike-model versions: [('v0', ['best', 'candidate', 'latest'])]" in outputs[1]
