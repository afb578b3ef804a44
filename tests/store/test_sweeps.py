"""The sweeps aggregate of the store: sweeps, claimed trials, runs of a sweep (store/sweeps.py)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from wandb_dagster.store import NotFoundError, Store


def _grid(points: int) -> Any:
    def suggest(trials: list[Any]) -> tuple[int | None, dict[str, Any]] | None:
        taken = {t.grid_index for t in trials}
        free = [i for i in range(points) if i not in taken]
        return (free[0], {"x": free[0]}) if free else None

    return suggest


def test_a_sweep_is_recorded_running_and_read_back(store: Store) -> None:
    config = {"method": "grid", "parameters": {"x": {"values": [1, 2]}}}
    created = store.create_sweep("e", "p", "abc", name="first", method="grid", config=config)
    found = store.get_sweep("e", "p", "abc")
    assert found == created
    assert (found.id, found.name, found.method, found.state, found.config) == ("abc", "first", "grid", "RUNNING", config)
    assert store.get_sweep("e", "p", "other") is None and store.get_sweep("e", "q", "abc") is None
    with pytest.raises(ValueError, match="already has a sweep with id 'abc'"):
        store.create_sweep("e", "p", "abc", name=None, method="grid", config=config)


def test_claims_hand_out_each_grid_point_once_then_finish_the_sweep(store: Store) -> None:
    sweep = store.create_sweep("e", "p", "g", name=None, method="grid", config={})
    claimed = [store.claim_sweep_trial(sweep.pk, _grid(3), run_cap=None, run_id=f"r{i}") for i in range(4)]
    assert [None if t is None else (t.number, t.grid_index, t.params, t.run_id) for t in claimed] == [
        (0, 0, {"x": 0}, "r0"), (1, 1, {"x": 1}, "r1"), (2, 2, {"x": 2}, "r2"), None,
    ]
    assert store.get_sweep("e", "p", "g").state == "RUNNING"  # trials still run: one may crash and free its point
    for trial in claimed[:3]:
        store.end_sweep_trial(trial.pk)  # type: ignore[union-attr]
    assert store.claim_sweep_trial(sweep.pk, _grid(3), run_cap=None, run_id="r4") is None
    assert store.get_sweep("e", "p", "g").state == "FINISHED"  # type: ignore[union-attr]
    assert [t.run_id for t in store.sweep_trials(sweep.pk)] == ["r0", "r1", "r2"]


def test_run_cap_bounds_the_claims(store: Store) -> None:
    sweep = store.create_sweep("e", "p", "c", name=None, method="random", config={})
    suggest = lambda trials: (None, {"x": len(trials)})  # noqa: E731
    got = [store.claim_sweep_trial(sweep.pk, suggest, run_cap=2, run_id=f"r{i}") for i in range(3)]
    assert [t is not None for t in got] == [True, True, False]


def test_a_paused_sweep_hands_out_nothing(store: Store) -> None:
    sweep = store.create_sweep("e", "p", "s", name=None, method="grid", config={})
    store.set_sweep_state(sweep.pk, "PAUSED")
    assert store.claim_sweep_trial(sweep.pk, _grid(3), run_cap=None, run_id="r") is None
    assert store.get_sweep("e", "p", "s").state == "PAUSED"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="'DONE' is not one of"):
        store.set_sweep_state(sweep.pk, "DONE")


def test_the_database_refuses_a_grid_point_claimed_twice(store: Store) -> None:
    # The unique is the invariant itself: even a writer that skipped the claim cannot take a point twice.
    sweep = store.create_sweep("e", "p", "u", name=None, method="grid", config={})
    store.claim_sweep_trial(sweep.pk, _grid(1), run_cap=None, run_id="r0")
    with pytest.raises(sa.exc.IntegrityError):
        store.claim_sweep_trial(sweep.pk, lambda trials: (0, {"x": 0}), run_cap=None, run_id="r1")
    assert len(store.sweep_trials(sweep.pk)) == 1


def test_runs_of_a_sweep_name_it(store: Store) -> None:
    sweep = store.create_sweep("e", "p", "sw", name=None, method="grid", config={})
    trial = store.create_run("e", "p", "t1", sweep_pk=sweep.pk)
    prior = store.create_run("e", "p", "prior")
    store.create_run("e", "p", "plain")
    store.add_runs_to_sweep(sweep.pk, [prior.pk])
    assert trial.sweep == "sw" and store.get_run("e", "p", "t1").sweep == "sw"  # type: ignore[union-attr]
    assert [r.id for r in store.sweep_runs(sweep.pk)] == ["t1", "prior"]
    assert store.get_run("e", "p", "plain").sweep is None  # type: ignore[union-attr]
    with pytest.raises(NotFoundError, match="a run joins a sweep of its own project"):
        store.create_run("e", "other", "t2", sweep_pk=sweep.pk)


def test_a_trial_without_heartbeat_crashes_and_frees_its_point(store: Store) -> None:
    sweep = store.create_sweep("e", "p", "hb", name=None, method="grid", config={})
    first = store.claim_sweep_trial(sweep.pk, _grid(2), run_cap=2, run_id="r0")
    second = store.claim_sweep_trial(sweep.pk, _grid(2), run_cap=2, run_id="r1")
    assert first is not None and second is not None
    store.create_run("e", "p", "r0", sweep_pk=sweep.pk)
    store.end_sweep_trial(second.pk)
    # Grid done, but trial 0 still runs: nothing to hand out, and the sweep is not finished yet.
    assert store.claim_sweep_trial(sweep.pk, _grid(2), run_cap=2, run_id="r2", heartbeat_timeout_s=3600) is None
    assert store.get_sweep("e", "p", "hb").state == "RUNNING"  # type: ignore[union-attr]
    # Its agent stopped beating: the next claim crashes it (and its run) and hands its point out again.
    again = store.claim_sweep_trial(sweep.pk, _grid(2), run_cap=2, run_id="r3", heartbeat_timeout_s=0)
    assert again is not None and (again.grid_index, again.number) == (0, 2)
    assert store.get_run("e", "p", "r0").state == "crashed"  # type: ignore[union-attr]
    assert [t.state for t in store.sweep_trials(sweep.pk)] == ["crashed", "finished", "running"]
    assert store.beat_sweep_trial(first.pk) is False and store.beat_sweep_trial(again.pk) is True
    store.end_sweep_trial(again.pk)
    assert store.claim_sweep_trial(sweep.pk, _grid(2), run_cap=2, run_id="r4", heartbeat_timeout_s=0) is None
    assert store.get_sweep("e", "p", "hb").state == "FINISHED"  # type: ignore[union-attr]


def test_ending_a_trial_that_beats_the_sweep_appends_sweep_best_run(store: Store) -> None:
    sweep = store.create_sweep("e", "p", "best", name=None, method="grid", config={})
    losses = [0.5, 0.7, 0.2, None, 0.2]
    for i, loss in enumerate(losses):
        trial = store.claim_sweep_trial(sweep.pk, _grid(len(losses)), run_cap=None, run_id=f"r{i}")
        run = store.create_run("e", "p", f"r{i}", sweep_pk=sweep.pk)
        store.update_run(run.pk, summary={} if loss is None else {"loss": loss}, state="finished")
        store.end_sweep_trial(trial.pk, metric=("loss", "minimize"))  # type: ignore[union-attr]
    feed = store.read_events(after_id=0, filter=None, types=["SWEEP_BEST_RUN"], limit=100).rows
    # r0 is the first best, r2 beats it; r1 is worse, r3 has no loss, r4 only ties.
    assert [(e.run_id, e.payload["value"], e.payload["previous_run_id"]) for e in feed] == [
        ("r0", 0.5, None), ("r2", 0.2, "r0"),
    ]
    assert feed[1].payload == {
        "sweep": "best", "metric": "loss", "goal": "minimize", "value": 0.2, "previous_value": 0.5,
        "previous_run_id": "r0",
    }
    assert (feed[1].entity, feed[1].project) == ("e", "p")
