"""wandb.sweep / wandb.agent: trials as runs of the sweep, failures recorded, many agents in many processes."""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import time
from collections import Counter
from typing import Any

import pytest

import wandb_dagster as wandb
from wandb_dagster.sdk.workspace import Workspace
from wandb_dagster.settings import Settings

GRID_24 = {
    "method": "grid",
    "metric": {"name": "loss", "goal": "minimize"},
    "parameters": {
        "lr": {"values": [0.1, 0.01, 0.001]},
        "layers": {"min": 1, "max": 4},
        "opt": {"parameters": {"name": {"values": ["adam", "sgd"]}, "beta": {"value": 0.9}}},
    },
}


def _store() -> Any:
    return Workspace.for_settings(Settings.resolve()).store


def _train() -> None:
    with wandb.init(config={"lr": -1, "epochs": 3}) as run:
        # The suggested values win over init()'s config; the rest of init()'s config stays.
        assert run.config["epochs"] == 3 and run.config["lr"] != -1
        run.log({"loss": run.config["lr"] * run.config["layers"]})


def test_sweep_returns_an_id_and_rejects_an_invalid_configuration(ws_env) -> None:
    sweep_id = wandb.sweep(GRID_24, project="search")
    record = _store().get_sweep("tester", "search", sweep_id)
    assert record is not None and record.method == "grid" and record.state == "RUNNING"
    assert record.config["parameters"]["layers"]["distribution"] == "int_uniform"
    (ws_env / "sweep.yaml").write_text("method: random\nparameters:\n  lr:\n    min: 0.0\n    max: 1.0\n")
    from_yaml = wandb.sweep("sweep.yaml", project="search")
    assert _store().get_sweep("tester", "search", from_yaml).config["parameters"]["lr"]["distribution"] == "uniform"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="parameters.lr.min: 0 must be positive"):
        wandb.sweep({"method": "random", "parameters": {"lr": {"distribution": "log_uniform_values", "min": 0, "max": 1}}})


def test_agent_runs_every_grid_point_as_a_run_of_the_sweep(ws_env) -> None:
    sweep_id = wandb.sweep(GRID_24, project="search")
    seen: list[dict[str, Any]] = []

    def train() -> None:
        run = wandb.init(project="search")
        seen.append(dict(wandb.config))
        assert run.sweep_id == sweep_id
        run.log({"loss": run.config["lr"]})
        # Left open: the agent finishes it.

    wandb.agent(sweep_id, function=train, project="search")
    assert len(seen) == 24
    assert seen[0] == {"lr": 0.1, "layers": 1, "opt": {"name": "adam", "beta": 0.9}}
    assert seen[1] == {"lr": 0.1, "layers": 1, "opt": {"name": "sgd", "beta": 0.9}}
    assert len({repr(s) for s in seen}) == 24
    store = _store()
    record = store.get_sweep("tester", "search", sweep_id)
    runs = store.sweep_runs(record.pk)  # type: ignore[union-attr]
    assert len(runs) == 24 and {r.state for r in runs} == {"finished"} and {r.sweep for r in runs} == {sweep_id}
    assert store.get_sweep("tester", "search", sweep_id).state == "FINISHED"  # type: ignore[union-attr]
    assert wandb.run is None


def test_a_failing_trial_is_failed_and_the_agent_goes_on(ws_env) -> None:
    sweep_id = wandb.sweep({"method": "grid", "parameters": {"x": {"values": [1, 2, 3]}}}, project="p")
    done: list[int] = []

    def train() -> None:
        run = wandb.init()
        if run.config["x"] == 2:
            raise RuntimeError("diverged")
        done.append(run.config["x"])

    wandb.agent(sweep_id, function=train, project="p")
    assert done == [1, 3]
    store = _store()
    runs = store.sweep_runs(store.get_sweep("tester", "p", sweep_id).pk)  # type: ignore[union-attr]
    assert [(r.config["x"], r.state) for r in runs] == [(1, "finished"), (2, "failed"), (3, "finished")]


def test_count_and_run_cap_bound_the_trials(ws_env) -> None:
    sweep_id = wandb.sweep(
        {"method": "random", "run_cap": 5, "parameters": {"x": {"min": 0.0, "max": 1.0}}}, project="p"
    )
    values: list[float] = []

    def train() -> None:
        with wandb.init() as run:
            values.append(run.config["x"])

    wandb.agent(sweep_id, function=train, project="p", count=2)
    assert len(values) == 2
    wandb.agent(f"tester/p/{sweep_id}", function=train)
    assert len(values) == 5 and all(0.0 <= v <= 1.0 for v in values)
    with pytest.raises(ValueError, match="does not exist; create it with wandb.sweep"):
        wandb.agent("nosuchid", function=train, project="p")


# ---------------------------------------------------------------------- many agents, many processes


def _agent_process(sweep_id: str, barrier: Any, results: Any) -> None:
    import wandb_dagster as wandb_in_child

    got: list[Any] = []

    def train() -> None:
        with wandb_in_child.init() as run:
            got.append(run.config.as_dict() if hasattr(run.config, "as_dict") else dict(run.config))

    barrier.wait(120)
    wandb_in_child.agent(sweep_id, function=train, project="many")
    results.put(got)


def _victim_process(sweep_id: str, marker: str) -> None:
    import time as time_in_child
    from pathlib import Path

    import wandb_dagster as wandb_in_child

    def train() -> None:
        wandb_in_child.init()
        Path(marker).write_text("in a trial")
        time_in_child.sleep(600)  # killed here, mid-trial

    wandb_in_child.agent(sweep_id, function=train, project="many")


def _run_agents(sweep_id: str, agents: int = 4, victim_marker: str | None = None) -> list[list[Any]]:
    """Run ``agents`` agents in spawned processes; with ``victim_marker``, one of them begins its first trial
    before the others start (so it surely gets one) and is killed (SIGKILL) in the middle of it while the
    others run; the others' results are returned."""
    ctx = multiprocessing.get_context("spawn")
    survivors = agents - (victim_marker is not None)
    barrier, results = ctx.Barrier(survivors), ctx.Queue()
    procs = [ctx.Process(target=_agent_process, args=(sweep_id, barrier, results)) for _ in range(survivors)]
    victim = None
    if victim_marker is not None:
        victim = ctx.Process(target=_victim_process, args=(sweep_id, victim_marker))
        victim.start()
        deadline = time.monotonic() + 120
        while not os.path.exists(victim_marker):
            assert time.monotonic() < deadline and victim.exitcode is None, "the victim agent never began a trial"
            time.sleep(0.05)
    for p in procs:
        p.start()
    if victim is not None:
        time.sleep(1.0)  # the others are claiming by now
        os.kill(victim.pid, signal.SIGKILL)  # type: ignore[arg-type]
        victim.join()
    agents = survivors
    collected: list[list[Any]] = []
    deadline = time.monotonic() + 300
    try:
        while len(collected) < agents:
            try:
                collected.append(results.get(timeout=0.2))
                continue
            except queue.Empty:
                pass
            # An agent that died (e.g. a grid point claimed twice) fails the test now, not at the deadline.
            failed = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            assert not failed, f"agent process(es) failed with exit codes {failed}; see captured stderr"
            assert time.monotonic() < deadline, f"agents produced {len(collected)} of {agents} results in 300 s"
    finally:
        for p in procs:
            p.join(60)
            if p.is_alive():
                p.kill()
    assert [p.exitcode for p in procs] == [0] * len(procs)
    return collected


def test_four_agents_in_four_processes_share_a_grid_and_a_run_cap(any_ws_env) -> None:
    grid_id = wandb.sweep(GRID_24, project="many")
    per_agent = _run_agents(grid_id)
    points = [repr(sorted(point.items())) for got in per_agent for point in got]
    assert len(points) == 24 and max(Counter(points).values()) == 1  # every point once, none twice
    store = _store()
    sweep = store.get_sweep("tester", "many", grid_id)
    assert len(store.sweep_runs(sweep.pk)) == 24  # type: ignore[union-attr]

    capped_id = wandb.sweep(
        {"method": "random", "run_cap": 10, "parameters": {"x": {"min": 0.0, "max": 1.0}}}, project="many"
    )
    per_agent = _run_agents(capped_id)
    assert sum(len(got) for got in per_agent) == 10
    capped = store.get_sweep("tester", "many", capped_id)
    assert len(store.sweep_trials(capped.pk)) == 10 and len(store.sweep_runs(capped.pk)) == 10  # type: ignore[union-attr]


def test_an_agent_killed_mid_trial_leaves_it_crashed_and_its_point_goes_back(any_ws_env, monkeypatch, tmp_path) -> None:
    # A short heartbeat timeout (inherited by the spawned agents) so the test need not wait two minutes.
    monkeypatch.setenv("WANDB_DAGSTER_SWEEP_HEARTBEAT_TIMEOUT", "2")
    grid_id = wandb.sweep(GRID_24, project="many")
    per_agent = _run_agents(grid_id, victim_marker=str(tmp_path / "victim-began"))
    points = [repr(sorted(point.items())) for got in per_agent for point in got]
    # The three survivors ran all 24 points, the killed agent's one included, each once.
    assert len(points) == 24 and max(Counter(points).values()) == 1
    store = _store()
    sweep = store.get_sweep("tester", "many", grid_id)
    assert sweep is not None and sweep.state == "FINISHED"
    trials = store.sweep_trials(sweep.pk)
    assert Counter(t.state for t in trials) == {"finished": 24, "crashed": 1}
    crashed = next(t for t in trials if t.state == "crashed")
    assert store.get_run("tester", "many", crashed.run_id).state == "crashed"  # type: ignore[union-attr]
    assert sorted(t.grid_index for t in trials if t.state == "finished") == list(range(24))  # type: ignore[type-var]
