"""Api().sweep(path): a sweep's id, name, config, state, runs, best run, expected run count and url; runs
carry their sweep; runs(include_sweeps=False); from_path resolves sweeps."""

from __future__ import annotations

import pytest

import wandb_dagster as wandb


def _search(goal: str = "minimize", method: str = "grid") -> str:
    config = {
        "method": method,
        "name": "lr-search",
        "metric": {"name": "loss", "goal": goal},
        "parameters": {"lr": {"values": [0.3, 0.1, 0.2]}},
    }
    if method == "random":
        config.update(parameters={"lr": {"min": 0.0, "max": 1.0}}, run_cap=2)
    sweep_id = wandb.sweep(config, project="proj")

    def train() -> None:
        with wandb.init() as run:
            if run.config.get("lr") != 0.2:  # one trial never logs the metric
                run.log({"loss": run.config["lr"]})

    wandb.agent(sweep_id, function=train, project="proj")
    return sweep_id


def test_a_sweep_through_the_public_api(api_env) -> None:
    sweep_id = _search()
    plain = wandb.init(project="proj")
    plain.finish()
    api = wandb.Api()
    sweep = api.sweep(f"tester/proj/{sweep_id}")
    assert (sweep.id, sweep.name, sweep.state) == (sweep_id, "lr-search", "FINISHED")
    assert sweep.config["parameters"]["lr"] == {"distribution": "categorical", "values": [0.3, 0.1, 0.2]}
    assert [r.config["lr"] for r in sweep.runs] == [0.3, 0.1, 0.2]
    assert {r.sweep_id for r in sweep.runs} == {sweep_id} and sweep.runs[0].sweep.id == sweep_id
    assert sweep.expected_run_count == 3
    assert sweep.url == f"http://127.0.0.1:8600/tester/proj/sweeps/{sweep_id}"
    # The metric's goal decides, among the runs that logged it.
    best = sweep.best_run()
    assert best is not None and best.config["lr"] == 0.1
    assert sweep.best_run(order="-summary_metrics.loss").config["lr"] == 0.3
    assert api.sweep(f"proj/{sweep_id}").id == wandb.Api({"project": "proj"}).sweep(sweep_id).id == sweep_id
    assert api.from_path(f"tester/proj/sweeps/{sweep_id}").id == sweep_id
    with pytest.raises(ValueError, match="Could not find sweep tester/proj/nope"):
        api.sweep("tester/proj/nope")
    assert [s.id for s in api.project("proj").sweeps()] == [sweep_id]
    # Runs of sweeps: listed by default, left out with include_sweeps=False.
    assert len(api.runs("proj")) == 4
    assert [r.id for r in api.runs("proj", include_sweeps=False)] == [plain.id]
    assert api.run(f"proj/{plain.id}").sweep is None and api.run(f"proj/{plain.id}").sweep_id is None
    assert [r.config["lr"] for r in api.runs("proj", {"sweep": sweep_id}, order="+config.lr")] == [0.1, 0.2, 0.3]


def test_best_run_maximizes_and_random_counts_its_cap(api_env) -> None:
    api = wandb.Api({"project": "proj"})
    assert api.sweep(_search(goal="maximize")).best_run().config["lr"] == 0.3
    capped = api.sweep(_search(method="random"))
    assert capped.expected_run_count == 2 and len(capped.runs) == 2


def test_the_readme_sweeps_block_runs_as_written(api_env) -> None:
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Sweeps\n", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```python\n(.*?)```", section, re.S)
    ns: dict = {}
    exec(compile(block, "README.md (Sweeps)", "exec", dont_inherit=True), ns)  # noqa: S102 - the README's code
    assert len(ns["sweep"].runs) == 6 and ns["sweep"].state == "FINISHED"
    assert (ns["best"].config["lr"], ns["best"].config["layers"]) == (0.01, 3)


def test_the_event_feed_announces_each_new_best_trial(api_env) -> None:
    api = wandb.Api()
    cursor = api.event_cursor()
    sweep_id = _search(goal="maximize")  # lr 0.3, 0.1, then 0.2 without a loss
    page = api.events(after=cursor, types=["SWEEP_BEST_RUN"])
    assert [(e.payload["sweep"], e.payload["value"]) for e in page] == [(sweep_id, 0.3)]
    assert [e.run_id for e in page] == [api.sweep(f"proj/{sweep_id}").best_run().id]
