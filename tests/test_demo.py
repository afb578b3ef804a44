"""The README's demo runs end to end (the Dagster pipelines, in process, a sweep among them, which prints its
best run), and a second run reuses every version: nothing changed, so no version is created and no sensor
fires."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_runs_twice_and_reuses_versions(tmp_path):
    env = {
        "WANDB_DAGSTER_DIR": str(tmp_path / "ws"),
        "WANDB_DAGSTER_CACHE_DIR": str(tmp_path / "cache"),
        "DAGSTER_HOME": str(tmp_path / "dagster-home"),
        "PYTHONPATH": str(ROOT),
        "PATH": "/usr/bin:/bin",
        "HOME": os.environ.get("HOME", str(tmp_path)),
    }
    (tmp_path / "dagster-home").mkdir()
    outputs = [
        subprocess.run(
            [sys.executable, "-m", "example_pipelines.demo"], cwd=tmp_path, env=env, check=True, capture_output=True, text=True
        ).stdout
        for _ in range(2)
    ]
    for out in outputs:
        assert "features versions: ['v0', 'v1']" in out
        assert "model versions: [('v0', []), ('v1', ['latest'])]" in out
    # It ends with the report of its training runs, saved once and updated by the second run.
    reports = [out.split("report of the training runs: ")[1].split()[0] for out in outputs]
    assert reports[0].startswith("http://127.0.0.1:8600/") and "/bikes-dagster/reports/Bike-rentals" in reports[0]
    assert reports[0] == reports[1]
    for out in outputs:
        # The sweep's best model is linked too (it takes the registry's latest); production stays with the
        # trained model, as the sweep confirms its alpha (1.0) and the promotion compares on held-out rows.
        assert "('v1', ['production'], 'bikes.model:v1'), ('v2', ['latest'], 'ridge-sweep-model:v0')" in out
        assert ": 4 trials, best run " in out and "(alpha 1.0) -> " in out and "ridge-sweep-model:v0" in out
        assert "best run   " in out and "-> kept production" in out
        # W&B Launch: the enqueued retraining ran once and finished, with a tracking run.
        assert re.search(r"launch     job job-train_model:v\d+ published; queued run \S+ enqueued", out), out
        assert re.search(r"launch     queued run \S+: finished; tracking run (?!None)\S+", out), out
    first, second = outputs
    assert "sensors fired: 4" in first
    assert "retrain_on_new_features -> train_model for " in first and "deploy_on_production -> deploy_model for " in first
    assert "promoted (was None)" in first and "serving " in first
    assert "sensors fired: 0" in second
