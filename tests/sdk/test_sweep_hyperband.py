"""early_terminate hyperband: W&B's bands and stopping rule (pinned with wandb/sweeps' own cases), the
validation, and an in-process trial stopped at a milestone with W&B's state for it (killed)."""

from __future__ import annotations

import time

import pytest

import wandb_dagster as wandb
from wandb_dagster.sdk import sweep_config as sc
from wandb_dagster.sdk import sweep_hyperband as hb
from wandb_dagster.sdk.workspace import Workspace
from wandb_dagster.settings import Settings


def _config(early_terminate: dict, goal: str = "minimize") -> dict:
    return sc.validate({
        "method": "grid", "metric": {"name": "loss", "goal": goal}, "early_terminate": early_terminate,
        "parameters": {"a": {"values": [1, 2, 3]}},
    })  # fmt: skip


def test_bands_as_the_wandb_docs_give_them() -> None:
    # W&B docs (sweep-config-keys, early_terminate): min_iter 3 -> [3, 9, 27, 81, ...];
    # max_iter 27, s 2 -> [27/eta, 27/eta/eta] = [9, 3], sorted.
    assert hb.bands(_config({"type": "hyperband", "min_iter": 3})["early_terminate"])[:4] == [3, 9, 27, 81]
    assert hb.bands(_config({"type": "hyperband", "max_iter": 27, "s": 2})["early_terminate"]) == [3, 9]
    # wandb/sweeps tests: max_iter 81, eta 3, s 3 -> [3, 9, 27]; max_iter 18, eta 3, s 2 -> [2, 6].
    assert hb.bands(_config({"type": "hyperband", "max_iter": 81, "eta": 3, "s": 3})["early_terminate"]) == [3, 9, 27]
    assert hb.bands(_config({"type": "hyperband", "max_iter": 18, "eta": 3, "s": 2})["early_terminate"]) == [2, 6]
    assert _config({"type": "hyperband", "min_iter": 3})["early_terminate"] == {
        "type": "hyperband", "min_iter": 3, "eta": 3, "strict": True,
    }


@pytest.mark.parametrize(
    ("early_terminate", "message"),
    [
        ({"type": "median"}, "early_terminate.type: 'median' is not 'hyperband'"),
        ({"type": "hyperband"}, "needs 'min_iter', or 'max_iter' with 's'"),
        ({"type": "hyperband", "max_iter": 27}, "needs 'min_iter', or 'max_iter' with 's'"),
        ({"type": "hyperband", "min_iter": 0}, "early_terminate.min_iter: 0 must be an integer >= 1"),
        ({"type": "hyperband", "min_iter": 3, "eta": 1}, "early_terminate.eta: 1 must be a number above 1"),
        ({"type": "hyperband", "max_iter": 2, "s": 2, "eta": 3}, "give no band"),
        ({"type": "hyperband", "min_iter": 3, "brackets": 2}, r"unknown key\(s\) \['brackets'\]"),
    ],
)
def test_invalid_early_terminate_names_the_key(early_terminate: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _config(early_terminate)
    with pytest.raises(ValueError, match="early_terminate: hyperband stops runs by the metric"):
        sc.validate({"method": "random", "early_terminate": {"type": "hyperband", "min_iter": 3}, "parameters": {"a": {"value": 1}}})


def test_wandb_doctest_example_stops_the_run_behind_at_band_two() -> None:
    # wandb/sweeps hyperband_stop_runs docstring: max_iter 5, eta 2, s 2 -> bands [1, 2]; thresholds 10 and 8.
    config = _config({"type": "hyperband", "max_iter": 5, "eta": 2, "s": 2})
    histories = [
        ("a", "finished", [10, 9]), ("b", "running", [10, 10]), ("c", "running", [10, 8, 8]),
        ("d", "running", [10, 7, 7]), ("e", "finished", [10, 6, 6]),
    ]  # fmt: skip
    assert hb.to_stop(config, histories, {"b", "c", "d"}) == {"b"}


@pytest.mark.parametrize("goal", ["minimize", "maximize"])
def test_wandb_min_iter_cases(goal: str) -> None:
    # wandb/sweeps test_hyperband_min_iter_bands(_max): the flat run is stopped at band 3, the improving one is not.
    sign = 1 if goal == "minimize" else -1
    config = _config({"type": "hyperband", "min_iter": 3, "eta": 3}, goal)
    histories = [("run", "running", [sign * 10.0] * 4), ("run2", "running", [sign * (10.0 - i) for i in range(10)])]
    assert hb.to_stop(config, histories, {"run", "run2"}) == {"run"}


def test_a_single_run_and_the_conservative_rule() -> None:
    # wandb/sweeps test_single_run: nothing to compare against, nothing stopped (strict false).
    config = _config({"type": "hyperband", "max_iter": 18, "eta": 3, "s": 2, "strict": False})
    assert hb.to_stop(config, [("r", "running", [10.0 - i for i in range(10)])], {"r"}) == set()
    # Not strict: the best value so far counts, so a run that was once good survives a bad latest value.
    histories = [("good", "finished", [1.0, 1.0, 1.0]), ("r", "running", [5.0, 0.5, 9.0])]
    assert hb.to_stop(config, histories, {"r"}) == set()
    strict = _config({"type": "hyperband", "max_iter": 18, "eta": 3, "s": 2})
    histories = [("good", "finished", [1.0, 1.0, 1.0]), ("r", "running", [5.0, 0.5, 9.0])]
    assert hb.to_stop(strict, histories, {"r"}) == set()  # its value at band 2 (0.5) beats the threshold
    assert hb.to_stop(strict, [("good", "finished", [1.0, 1.0]), ("r", "running", [5.0, 3.0])], {"r"}) == {"r"}


def test_an_in_process_trial_is_stopped_at_the_milestone_and_ends_killed(ws_env, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_DAGSTER_SWEEP_POLL_INTERVAL", "0.1")
    sweep_id = wandb.sweep(
        {"method": "grid", "metric": {"name": "loss", "goal": "minimize"},
         "early_terminate": {"type": "hyperband", "min_iter": 3},
         "parameters": {"start": {"values": [0, 100, 200]}}},
        project="hb",
    )  # fmt: skip
    logged: dict[int, int] = {}

    def train() -> None:
        with wandb.init() as run:
            for step in range(200):
                logged[run.config["start"]] = step + 1
                run.log({"loss": run.config["start"] + 200 - step})
                if run.config["start"]:
                    time.sleep(0.05)

    wandb.agent(sweep_id, function=train, project="hb")
    store = Workspace.for_settings(Settings.resolve()).store
    record = store.get_sweep("tester", "hb", sweep_id)
    runs = {r.config["start"]: r for r in store.sweep_runs(record.pk)}  # type: ignore[union-attr]
    assert [runs[s].state for s in (0, 100, 200)] == ["finished", "killed", "killed"]
    assert logged[0] == 200 and 3 <= logged[100] < 200 and 3 <= logged[200] < 200
    assert {t.state for t in store.sweep_trials(record.pk)} == {"finished"}  # type: ignore[union-attr]
    assert wandb.Api().sweep(f"tester/hb/{sweep_id}").best_run().config["start"] == 0


def test_agents_act_on_one_recorded_decision(ws_env) -> None:
    # Two agents (two stores on one workspace) evaluate W&B's rule; the first to find a trial to stop records
    # it under the sweep's lock, and every later evaluation, whatever it computes, returns that decision.
    from concurrent.futures import ThreadPoolExecutor

    sweep_id = wandb.sweep(
        {"method": "random", "metric": {"name": "loss"}, "early_terminate": {"type": "hyperband", "min_iter": 2, "eta": 2},
         "parameters": {"x": {"min": 0.0, "max": 1.0}}},
        project="hb",
    )  # fmt: skip
    settings = Settings.resolve()
    first, second = Workspace.for_settings(settings).store, Workspace.for_settings(settings).store
    record = first.get_sweep("tester", "hb", sweep_id)
    assert record is not None
    claimed = []
    for run_id, losses in (("good", [1.0, 1.0, 1.0]), ("bad", [5.0, 5.0]), ("fine", [1.0, 0.5])):
        trial = first.claim_sweep_trial(record.pk, lambda trials: (None, {"x": 0.5}), run_cap=None, run_id=run_id)
        run = first.create_run("tester", "hb", run_id, sweep_pk=record.pk)
        first.append_history(run.pk, [{"_step": i, "loss": v} for i, v in enumerate(losses)])
        claimed.append(trial)
    config = record.config

    def decide(store):
        return store.stop_sweep_trials(record.pk, "loss", lambda h, live: hb.to_stop(config, h, live))

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(decide, [first, second, first, second]))
    assert answers == [{"bad"}] * 4
    assert second.stop_sweep_trials(record.pk, "loss", lambda h, live: set()) == {"bad"}
    assert [first.poll_sweep_trial(t.pk)[0] for t in claimed] == ["running", "stopping", "running"]
