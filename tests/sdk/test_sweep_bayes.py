"""method: bayes: Optuna's TPE driven from the store's trials; W&B's distributions mapped; lazy import."""

from __future__ import annotations

import math
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest

import wandb_dagster as wandb
from wandb_dagster.sdk import sweep_bayes
from wandb_dagster.sdk import sweep_config as sc
from wandb_dagster.sdk.workspace import Workspace
from wandb_dagster.settings import Settings

# W&B docs, "Define a sweep configuration" (the bayes example in YAML and as a dict).
WANDB_DOCS_BAYES = {
    "program": "train.py",
    "name": "sweepdemo",
    "method": "bayes",
    "metric": {"goal": "minimize", "name": "validation_loss"},
    "parameters": {
        "learning_rate": {"min": 0.0001, "max": 0.1},
        "batch_size": {"values": [16, 32, 64]},
        "epochs": {"values": [5, 10, 15]},
        "optimizer": {"values": ["adam", "sgd"]},
    },
}


def test_importing_wandb_dagster_does_not_import_optuna() -> None:
    code = "import sys, wandb_dagster; assert 'optuna' not in sys.modules, 'optuna imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_bayes_requires_a_metric() -> None:
    with pytest.raises(ValueError, match="metric: bayes search requires a metric"):
        sc.validate({"method": "bayes", "parameters": {"x": {"min": 0.0, "max": 1.0}}})


def test_the_documented_bayes_sweep_runs_under_the_agent_and_records_values(ws_env) -> None:
    sweep_id = wandb.sweep(WANDB_DOCS_BAYES, project="bayes")
    seen: list[dict[str, Any]] = []

    def train() -> None:
        with wandb.init() as run:
            seen.append(dict(run.config))
            for epoch in range(3):
                run.log({"validation_loss": run.config["learning_rate"] * run.config["batch_size"] + 1 - epoch})

    wandb.agent(sweep_id, function=train, project="bayes", count=12)
    assert len(seen) == 12
    for config in seen:
        assert 0.0001 <= config["learning_rate"] <= 0.1 and isinstance(config["learning_rate"], float)
        assert config["batch_size"] in (16, 32, 64) and config["epochs"] in (5, 10, 15)
        assert config["optimizer"] in ("adam", "sgd")
    store = Workspace.for_settings(Settings.resolve()).store
    record = store.get_sweep("tester", "bayes", sweep_id)
    trials = store.sweep_trials(record.pk)  # type: ignore[union-attr]
    # The value each trial learned from: W&B's metric_extremum, the minimum over the history.
    for trial, config in zip(trials, seen, strict=True):
        assert trial.value == pytest.approx(config["learning_rate"] * config["batch_size"] - 1)
        assert (trial.state, trial.run_state) == ("finished", "finished")


def _trial(pk: int, params: dict[str, Any], value: float | None, state: str = "finished", run_state: str = "finished") -> Any:
    return SimpleNamespace(pk=pk, params=params, value=value, state=state, run_state=run_state)


def test_tpe_learns_from_the_trials_it_is_given() -> None:
    # A 1-d bowl: after 30 scored trials spread over [-10, 10], suggestions concentrate near the minimum 3.
    config = sc.validate({"method": "bayes", "metric": {"name": "y"}, "parameters": {"x": {"min": -10.0, "max": 10.0}}})
    suggest = sweep_bayes.suggester(config, seed=0)
    trials = [_trial(i, {"x": x}, (x - 3) ** 2) for i, x in enumerate(-10 + 20 * k / 29 for k in range(30))]
    xs = [suggest(trials)[1]["x"] for _ in range(20)]  # type: ignore[index]
    assert sorted(abs(x - 3) for x in xs)[10] < 2.0, xs
    # Maximising the same numbers goes the other way: to the edges.
    config_max = {**config, "metric": {"name": "y", "goal": "maximize", "impute": "worst"}}
    suggest_max = sweep_bayes.suggester(config_max, seed=0)
    xs_max = [suggest_max(trials)[1]["x"] for _ in range(20)]  # type: ignore[index]
    assert sorted(abs(x - 3) for x in xs_max)[10] > 5.0, xs_max


def test_failed_and_stopped_trials_count_as_the_worst_and_running_ones_are_avoided() -> None:
    config = sc.validate({"method": "bayes", "metric": {"name": "y"}, "parameters": {"x": {"values": ["a", "b", "c"]}}})
    suggest = sweep_bayes.suggester(config, seed=1)
    trials = [_trial(i, {"x": "a"}, 1.0) for i in range(6)]
    trials += [_trial(10 + i, {"x": "b"}, None, run_state="failed") for i in range(6)]
    trials += [_trial(20 + i, {"x": "c"}, 0.5, run_state="killed") for i in range(6)]  # stopped: imputed worst
    picks = [suggest(trials)[1]["x"] for _ in range(30)]  # type: ignore[index]
    assert picks.count("a") > picks.count("b") and picks.count("a") > picks.count("c"), picks


@pytest.mark.parametrize(
    ("spec", "check"),
    [
        ({"min": 1, "max": 4}, lambda v: isinstance(v, int) and 1 <= v <= 4),
        ({"min": 0.5, "max": 2.5}, lambda v: isinstance(v, float) and 0.5 <= v <= 2.5),
        ({"distribution": "q_uniform", "min": 16, "max": 1024, "q": 16}, lambda v: isinstance(v, int) and v % 16 == 0 and 16 <= v <= 1024),
        ({"distribution": "q_uniform", "min": 0, "max": 1, "q": 0.25}, lambda v: v in (0.0, 0.25, 0.5, 0.75, 1.0)),
        ({"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1}, lambda v: 1e-5 <= v <= 1e-1),
        ({"distribution": "q_log_uniform_values", "q": 8, "min": 32, "max": 256}, lambda v: isinstance(v, int) and v % 8 == 0),
        ({"distribution": "log_uniform", "min": 0, "max": 3}, lambda v: 1 <= v <= math.exp(3)),
        ({"distribution": "inv_log_uniform", "min": 0, "max": 3}, lambda v: math.exp(-3) <= v <= 1),
        ({"distribution": "inv_log_uniform_values", "min": 0.01, "max": 0.1}, lambda v: 0.01 <= v <= 0.1),
        ({"distribution": "normal", "mu": 10, "sigma": 0.01}, lambda v: abs(v - 10) < 0.1),
        ({"distribution": "q_normal", "mu": 0, "sigma": 10, "q": 2}, lambda v: isinstance(v, int) and v % 2 == 0),
        ({"distribution": "log_normal", "mu": 0, "sigma": 0.1}, lambda v: 0.5 < v < 2),
        ({"distribution": "q_log_normal", "mu": 3, "sigma": 0.1, "q": 1}, lambda v: isinstance(v, int)),
        ({"distribution": "beta", "a": 2, "b": 5}, lambda v: 0 <= v <= 1),
        ({"distribution": "q_beta", "a": 2, "b": 5, "q": 0.1}, lambda v: 0 <= v <= 1.0),
        ({"values": [[1, 2], {"k": 1}, None]}, lambda v: v in ([1, 2], {"k": 1}, None)),
        ({"value": "fixed"}, lambda v: v == "fixed"),
    ],
)
def test_every_wandb_distribution_maps_onto_optuna(spec: dict, check: Any) -> None:
    config = sc.validate({"method": "bayes", "metric": {"name": "y"}, "parameters": {"p": spec, "o": {"parameters": {"z": {"min": 0.0, "max": 1.0}}}}})
    suggest = sweep_bayes.suggester(config, seed=2)
    trials: list[Any] = []
    for pk in range(15):  # past TPE's 10 random startup trials, so the model samples too
        params = suggest(trials)[1]  # type: ignore[index]
        assert check(params["p"]), params
        assert 0.0 <= params["o"]["z"] <= 1.0
        trials.append(_trial(pk, params, float(pk % 4)))


def _bayes_agent(sweep_id: str, results: Any) -> None:
    import wandb_dagster as wandb_in_child

    def train() -> None:
        with wandb_in_child.init() as run:
            run.log({"loss": (run.config["x"] - 0.3) ** 2})

    wandb_in_child.agent(sweep_id, function=train, project="many")
    results.put("done")


def test_agents_in_several_processes_share_a_bayes_sweep_through_the_store(any_ws_env) -> None:
    # Each claim rebuilds the agent's view from the trials the store holds, under the sweep's lock: two
    # agent processes (SQLite and PostgreSQL) run exactly run_cap trials between them, every trial scored.
    import multiprocessing

    sweep_id = wandb.sweep(
        {"method": "bayes", "run_cap": 12, "metric": {"name": "loss"}, "parameters": {"x": {"min": 0.0, "max": 1.0}}},
        project="many",
    )
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_bayes_agent, args=(sweep_id, results)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    assert [p.exitcode for p in procs] == [0, 0]
    store = Workspace.for_settings(Settings.resolve()).store
    record = store.get_sweep("tester", "many", sweep_id)
    trials = store.sweep_trials(record.pk)  # type: ignore[union-attr]
    assert len(trials) == 12 and [t.number for t in trials] == list(range(12))
    assert all(t.state == "finished" and t.value == pytest.approx((t.params["x"] - 0.3) ** 2) for t in trials)
    assert record is not None and store.get_sweep("tester", "many", sweep_id).state == "FINISHED"  # type: ignore[union-attr]
