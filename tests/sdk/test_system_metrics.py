"""System metrics (issue 12): sampled in a background thread into the run's system stream, as W&B's events
rows (system.cpu, system.memory_percent, system.disk./.usagePercent... with _timestamp and _runtime), read
with Api().run(...).history(stream="system"); interval and switch-off by W&B's setting names
(docs/behaviour.md section 9)."""

from __future__ import annotations

import os
import stat
import time

import pytest

import wandb_dagster as wandb
from wandb_dagster.sdk.system_monitor import SystemSampler
from wandb_dagster.sdk.workspace import Workspace


def _wait_for_samples(run, count: int) -> None:
    deadline = time.monotonic() + 30
    while len(Workspace.default().store.system_metrics(run._pk)) < count:
        assert time.monotonic() < deadline, "the system monitor wrote no samples"
        end = time.monotonic() + 0.05
        while time.monotonic() < end:  # busy, so that the process's CPU % is above zero
            pass


def test_samples_are_w_and_b_events_rows_in_a_stream_of_their_own(any_ws_env) -> None:
    run = wandb.init(project="p", settings={"x_stats_sampling_interval": 0.1})
    run.log({"loss": 1.0})
    _wait_for_samples(run, 3)
    run.finish()
    api_run = wandb.Api().run(f"p/{run.id}")
    rows = api_run.history(stream="system", pandas=False)
    assert len(rows) >= 3
    first = rows[0]
    assert first["_wandb"] is True and first["_runtime"] > 0
    for key in ("system.cpu", "system.memory_percent", "system.proc.memory.rssMB", "system.proc.memory.percent",
                "system.proc.memory.availableMB", "system.disk./.usagePercent", "system.disk./.usageGB"):  # fmt: skip
        assert isinstance(first[key], float), key
    assert 0 < first["system.memory_percent"] <= 100 and 0 < first["system.disk./.usagePercent"] <= 100
    assert max(row["system.cpu"] for row in rows) > 0
    if os.path.exists("/proc/net/dev"):
        assert isinstance(first["system.network.sent"], float) and first["system.network.recv"] >= 0
    assert [r["_timestamp"] for r in rows] == sorted(r["_timestamp"] for r in rows)
    # The metrics history is untouched: system samples never take a step.
    assert [sorted(k for k in r if not k.startswith("_")) for r in api_run.history(pandas=False)] == [["loss"]]
    with pytest.raises(ValueError, match="stream must be 'default' when specifying keys"):
        api_run.history(keys=["system.cpu"], stream="system")
    with pytest.raises(ValueError, match="stream='events' is invalid"):
        api_run.history(stream="events")


@pytest.mark.parametrize(
    "how", ["x_disable_stats", "_disable_stats", "WANDB_X_DISABLE_STATS", "WANDB__DISABLE_STATS"]
)
def test_w_and_b_settings_switch_it_off(ws_env, monkeypatch, how) -> None:
    settings: dict = {"x_stats_sampling_interval": 0.1}
    if how.startswith("WANDB"):
        monkeypatch.setenv(how, "true")
    else:
        settings[how] = True
    run = wandb.init(project="p", settings=settings)
    time.sleep(0.6)
    run.finish()
    assert wandb.Api().run(f"p/{run.id}").history(stream="system", pandas=False) == []


def test_the_interval_comes_from_the_environment_and_is_checked(ws_env, monkeypatch) -> None:
    monkeypatch.setenv("WANDB__STATS_SAMPLING_INTERVAL", "0.1")
    run = wandb.init(project="p")
    _wait_for_samples(run, 2)  # the default, 15 s, would not sample within the wait
    run.finish()
    with pytest.raises(ValueError, match="cannot be less than 0.1 seconds"):
        wandb.init(project="p", settings={"x_stats_sampling_interval": 0.01})
    with pytest.raises(ValueError, match="is not a number of seconds"):
        wandb.init(project="p", settings={"_stats_sample_rate_seconds": "soon"})


def test_gpus_are_read_from_nvidia_smi_when_it_is_there(tmp_path, monkeypatch) -> None:
    # A stand-in nvidia-smi on the PATH answering the query as the real one does (two cards, one "[N/A]").
    script = tmp_path / "bin" / "nvidia-smi"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\nprintf '37, 12, 2048, 8192, 55, 71.5\\n0, 0, 0, 4096, 30, [N/A]\\n'\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")
    sample = SystemSampler().sample()
    assert {k: v for k, v in sample.items() if k.startswith("gpu.")} == {
        "gpu.0.gpu": 37.0, "gpu.0.memory": 12.0, "gpu.0.memoryAllocated": 25.0, "gpu.0.temp": 55.0,
        "gpu.0.powerWatts": 71.5, "gpu.1.gpu": 0.0, "gpu.1.memory": 0.0, "gpu.1.memoryAllocated": 0.0,
        "gpu.1.temp": 30.0,
    }  # fmt: skip
