"""Sweeps and their trials (``wandb.sweep`` / ``wandb.agent``; docs/behaviour.md, "Sweeps").

The store keeps a sweep's configuration without understanding it: the SDK (sdk/sweep_config.py) validates
it and computes suggestions. What the store guarantees is the claim: :func:`claim` locks the sweep's row,
reads the trials claimed so far, asks the caller's ``suggest`` for the next point and records it, all in one
transaction. Every agent of a sweep, in any process or machine, serialises on that row lock (SQLite: the
database write lock of BEGIN IMMEDIATE), so a grid point is never handed out twice and ``run_cap`` holds
exactly; the uniques of ``sweep_trials`` state the same invariants to the database.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from wandb_dagster.store import events, runs
from wandb_dagster.store import schema as db
from wandb_dagster.store.errors import NotFoundError
from wandb_dagster.store.records import SweepRecord, TrialRecord

STATES = ("RUNNING", "PAUSED", "FINISHED", "CANCELED")
# suggest(trials claimed so far, oldest first) -> (grid index or None, parameter values), or None when the
# search has nothing more to try (a grid done).
Suggest = Callable[[list[TrialRecord]], "tuple[int | None, dict[str, Any]] | None"]

_SWEEPS = sa.select(db.sweeps, db.entities.c.name.label("entity"), db.projects.c.name.label("project")).select_from(
    db.sweeps.join(db.projects, db.projects.c.id == db.sweeps.c.project_id).join(
        db.entities, db.entities.c.id == db.projects.c.entity_id
    )
)


def create(
    conn: sa.Connection,
    project_pk: int,
    sweep_id: str,
    *,
    name: str | None,
    method: str,
    config: dict[str, Any],
    now: datetime,
) -> SweepRecord:
    """Record a new sweep in state RUNNING; an id the project already has -> ValueError."""
    taken = conn.execute(
        sa.select(db.sweeps.c.id).where(db.sweeps.c.project_id == project_pk, db.sweeps.c.sweep_id == sweep_id)
    ).first()
    if taken is not None:
        raise ValueError(f"the project already has a sweep with id {sweep_id!r}; leave the id out to get a new one")
    pk = conn.execute(
        sa.insert(db.sweeps)
        .values(
            project_id=project_pk, sweep_id=sweep_id, name=name, method=method, state="RUNNING", config=config,
            created_at=now, updated_at=now,
        )
        .returning(db.sweeps.c.id)
    ).scalar_one()
    found = by_pk(conn, pk)
    assert found is not None  # written just above, in this transaction
    return found


def get(conn: sa.Connection, entity: str, project: str, sweep_id: str) -> SweepRecord | None:
    row = conn.execute(
        _SWEEPS.where(db.entities.c.name == entity, db.projects.c.name == project, db.sweeps.c.sweep_id == sweep_id)
    ).first()
    return None if row is None else _record(row)


def in_project(conn: sa.Connection, entity: str, project: str) -> list[SweepRecord]:
    rows = conn.execute(
        _SWEEPS.where(db.entities.c.name == entity, db.projects.c.name == project).order_by(db.sweeps.c.id)
    ).all()
    return [_record(row) for row in rows]


def by_pk(conn: sa.Connection, sweep_pk: int) -> SweepRecord | None:
    row = conn.execute(_SWEEPS.where(db.sweeps.c.id == sweep_pk)).first()
    return None if row is None else _record(row)


def set_state(conn: sa.Connection, sweep_pk: int, state: str, now: datetime) -> None:
    if state not in STATES:
        raise ValueError(f"sweep state {state!r} is not one of {list(STATES)}")
    updated = conn.execute(
        sa.update(db.sweeps).where(db.sweeps.c.id == sweep_pk).values(state=state, updated_at=now)
    ).rowcount
    if not updated:
        raise NotFoundError(f"no sweep with pk {sweep_pk}; create it with create_sweep() first")


_ACTIVE = ("running", "stopping")  # trial states whose agent is still at work


def trials(conn: sa.Connection, sweep_pk: int) -> list[TrialRecord]:
    """The trials claimed in sweep ``sweep_pk``, in claim order, each with its run's state (one query)."""
    t = db.sweep_trials.c
    # The run by the project's unique (project_id, run_id) index: one lookup per trial.
    joined = db.sweep_trials.join(db.sweeps, db.sweeps.c.id == t.sweep_pk).outerjoin(
        db.runs, sa.and_(db.runs.c.project_id == db.sweeps.c.project_id, db.runs.c.run_id == t.run_id)
    )
    rows = conn.execute(
        sa.select(db.sweep_trials, db.runs.c.state.label("run_state"))
        .select_from(joined)
        .where(t.sweep_pk == sweep_pk)
        .order_by(t.number)
    ).all()
    return [_trial(row) for row in rows]


def claim(
    conn: sa.Connection,
    sweep_pk: int,
    suggest: Suggest,
    *,
    run_cap: int | None,
    run_id: str,
    now: datetime,
    stale_before: datetime | None = None,
) -> TrialRecord | None:
    """Claim the sweep's next trial for run ``run_id`` (see the module docstring).

    First, running trials whose heartbeat is older than ``stale_before`` become crashed (their agent died),
    with their runs: a crashed trial's grid point is free again and it no longer counts towards
    ``run_cap``. ``suggest`` then sees the other trials. None when the sweep is not RUNNING, has ``run_cap``
    trials, or ``suggest`` has nothing left; the sweep becomes FINISHED then, unless a trial is still
    running (it may yet crash and free its point: the caller waits and claims again).
    """
    state = conn.execute(
        sa.select(db.sweeps.c.state).where(db.sweeps.c.id == sweep_pk).with_for_update()
    ).scalar()
    if state is None:
        raise NotFoundError(f"no sweep with pk {sweep_pk}; create it with create_sweep() first")
    if state != "RUNNING":
        return None
    if stale_before is not None:
        _crash_stale(conn, sweep_pk, stale_before, now)
    claimed = trials(conn, sweep_pk)
    live = [trial for trial in claimed if trial.state != "crashed"]
    suggestion = None if run_cap is not None and len(live) >= run_cap else suggest(live)
    if suggestion is None:
        if not any(trial.state in _ACTIVE for trial in live):
            set_state(conn, sweep_pk, "FINISHED", now)
        return None
    grid_index, params = suggestion
    values = {
        "sweep_pk": sweep_pk, "number": len(claimed), "grid_index": grid_index, "params": params, "run_id": run_id,
        "state": "running", "heartbeat_at": now, "created_at": now,
    }
    pk = conn.execute(sa.insert(db.sweep_trials).values(values).returning(db.sweep_trials.c.id)).scalar_one()
    return TrialRecord(
        pk=pk, sweep_pk=sweep_pk, number=len(claimed), grid_index=grid_index, params=params, run_id=run_id,
        created_at=now,
    )


def _crash_stale(conn: sa.Connection, sweep_pk: int, stale_before: datetime, now: datetime) -> None:
    t = db.sweep_trials.c
    stale = conn.execute(
        sa.select(t.id, t.run_id).where(t.sweep_pk == sweep_pk, t.state.in_(_ACTIVE), t.heartbeat_at < stale_before)
    ).all()
    if not stale:
        return
    # grid_index NULL frees the point for the unique (sweep, grid_index); params keep what was tried.
    conn.execute(
        sa.update(db.sweep_trials).where(t.id.in_([row.id for row in stale])).values(state="crashed", grid_index=None)
    )
    project_pk = conn.execute(sa.select(db.sweeps.c.project_id).where(db.sweeps.c.id == sweep_pk)).scalar_one()
    for row in stale:
        run = conn.execute(
            sa.select(db.runs.c.id, db.runs.c.state).where(
                db.runs.c.project_id == project_pk, db.runs.c.run_id == row.run_id
            )
        ).first()
        if run is not None and run.state == "running":
            runs.update(conn, run.id, {"state": "crashed", "finished_at": now}, [], now)


def beat(conn: sa.Connection, trial_pk: int, now: datetime) -> bool:
    """Renew an active trial's heartbeat; False when it is no longer active (crashed by another agent)."""
    t = db.sweep_trials.c
    updated = conn.execute(
        sa.update(db.sweep_trials).where(t.id == trial_pk, t.state.in_(_ACTIVE)).values(heartbeat_at=now)
    ).rowcount
    return bool(updated)


def poll(conn: sa.Connection, trial_pk: int) -> tuple[str, str]:
    """(the trial's state, its sweep's state): what an agent checks while its trial runs."""
    t = db.sweep_trials.c
    row = conn.execute(
        sa.select(t.state, db.sweeps.c.state.label("sweep_state"))
        .select_from(db.sweep_trials.join(db.sweeps, db.sweeps.c.id == t.sweep_pk))
        .where(t.id == trial_pk)
    ).first()
    if row is None:
        raise NotFoundError(f"no sweep trial with pk {trial_pk}; claim it with claim_sweep_trial() first")
    return row.state, row.sweep_state


def metric_histories(conn: sa.Connection, sweep_pk: int, name: str) -> list[tuple[str, str, list[float]]]:
    """(run id, run state, the finite values of metric ``name`` in step order) for every run of the sweep
    (W&B's ``metric_history(filter_invalid=True)``: rows without the metric, or with a non-number, skipped)."""
    r, h = db.runs.c, db.run_history.c
    rows = conn.execute(
        sa.select(r.run_id, r.state, h.row)
        .select_from(db.runs.join(db.run_history, h.run_pk == r.id))
        .where(r.sweep_pk == sweep_pk)
        .order_by(r.id, h.step)
    ).all()
    out: dict[str, tuple[str, str, list[float]]] = {}
    for row in rows:
        entry = out.setdefault(row.run_id, (row.run_id, row.state, []))
        value = _metric_value(row.row, name)
        if value is not None:
            entry[2].append(value)
    return list(out.values())


# decide(histories as metric_histories gives them, run ids of the running trials) -> run ids to stop.
Decide = Callable[[list[tuple[str, str, list[float]]], set[str]], set[str]]


def stop(conn: sa.Connection, sweep_pk: int, name: str, decide: Decide, now: datetime) -> set[str]:
    """Early termination, under the sweep's lock: ``decide`` sees every run's history of metric ``name``
    and the running trials; those it names become ``stopping``. Returns the run ids of the trials that are
    stopping now (this call's and earlier ones'), so every agent acts on one recorded decision."""
    conn.execute(sa.select(db.sweeps.c.id).where(db.sweeps.c.id == sweep_pk).with_for_update())
    t = db.sweep_trials.c
    active = conn.execute(sa.select(t.run_id, t.state).where(t.sweep_pk == sweep_pk, t.state.in_(_ACTIVE))).all()
    running = {row.run_id for row in active if row.state == "running"}
    stopping = {row.run_id for row in active if row.state == "stopping"}
    if running:
        chosen = decide(metric_histories(conn, sweep_pk, name), running) & running
        if chosen:
            conn.execute(
                sa.update(db.sweep_trials)
                .where(t.sweep_pk == sweep_pk, t.run_id.in_(sorted(chosen)), t.state == "running")
                .values(state="stopping")
            )
            stopping |= chosen
    return stopping


def _extremum(conn: sa.Connection, run_pk: int, summary: Any, name: str, goal: str) -> float | None:
    # W&B's metric_extremum: the best of every history value and the summary's value.
    values = [v for v in (_metric_value(row, name) for row in runs.history(conn, run_pk)) if v is not None]
    last = _metric_value(summary, name)
    if last is not None:
        values.append(last)
    if not values:
        return None
    return max(values) if goal == "maximize" else min(values)


def end(
    conn: sa.Connection,
    trial_pk: int,
    now: datetime,
    metric: tuple[str, str] | None = None,
    run_state: str | None = None,
) -> None:
    """A trial's function returned (or raised), or its program exited: the trial is finished.

    ``run_state``: the state its run ends in if it is still running (a program that exited without
    finishing its run), or ``"killed"`` for a run stopped by early termination or a canceled sweep, which
    wins over what the run recorded, as W&B's. ``metric`` (name, goal "minimize"/"maximize"): the run's
    extremum of it (W&B's ``metric_extremum``) is recorded as the trial's ``value``; and when the run's
    summary value beats every other run of the sweep, a SWEEP_BEST_RUN event is appended to this
    transaction. Ends of one sweep serialise on the sweep's row, so each new best is announced once, in
    order.
    """
    t = db.sweep_trials.c
    trial = conn.execute(sa.select(t.sweep_pk, t.run_id).where(t.id == trial_pk)).first()
    if trial is None:
        raise NotFoundError(f"no sweep trial with pk {trial_pk}; claim it with claim_sweep_trial() first")
    conn.execute(sa.select(db.sweeps.c.id).where(db.sweeps.c.id == trial.sweep_pk).with_for_update())
    run = conn.execute(
        sa.select(db.runs.c.id, db.runs.c.state, db.runs.c.summary).where(
            db.runs.c.sweep_pk == trial.sweep_pk, db.runs.c.run_id == trial.run_id
        )
    ).first()
    if run is not None and run_state is not None and (run.state == "running" or run_state == "killed"):
        runs.update(conn, run.id, {"state": run_state, "finished_at": now}, [], now)
    value = None if run is None or metric is None else _extremum(conn, run.id, run.summary, *metric)
    conn.execute(
        sa.update(db.sweep_trials)
        .where(t.id == trial_pk, t.state.in_(_ACTIVE))
        .values(state="finished", heartbeat_at=now, value=value)
    )
    if metric is not None:
        _announce_best(conn, trial.sweep_pk, trial.run_id, metric, now)


def _metric_value(summary: Any, name: str) -> float | None:
    value = summary.get(name) if isinstance(summary, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _announce_best(conn: sa.Connection, sweep_pk: int, run_id: str, metric: tuple[str, str], now: datetime) -> None:
    name, goal = metric
    sweep = by_pk(conn, sweep_pk)
    assert sweep is not None  # locked by the caller
    candidates = conn.execute(
        sa.select(db.runs.c.run_id, db.runs.c.summary).where(db.runs.c.sweep_pk == sweep_pk).order_by(db.runs.c.id)
    ).all()
    mine = next((_metric_value(row.summary, name) for row in candidates if row.run_id == run_id), None)
    if mine is None:
        return
    sign = -1.0 if goal == "maximize" else 1.0
    others = [
        (value, row.run_id)
        for row in candidates
        if row.run_id != run_id and (value := _metric_value(row.summary, name)) is not None
    ]
    best = min(others, key=lambda pair: sign * pair[0]) if others else None
    if best is not None and not sign * mine < sign * best[0]:
        return
    events.append(
        conn,
        db.SWEEP_BEST_RUN,
        created_at=now,
        entity=sweep.entity,
        project=sweep.project,
        run_id=run_id,
        payload={
            "sweep": sweep.id, "metric": name, "goal": goal, "value": mine,
            "previous_value": None if best is None else best[0], "previous_run_id": None if best is None else best[1],
        },
    )


def add_runs(conn: sa.Connection, sweep_pk: int, run_pks: list[int]) -> None:
    """Make runs ``run_pks`` runs of sweep ``sweep_pk`` (``wandb.sweep(prior_runs=...)``)."""
    if by_pk(conn, sweep_pk) is None:
        raise NotFoundError(f"no sweep with pk {sweep_pk}; create it with create_sweep() first")
    updated = conn.execute(sa.update(db.runs).where(db.runs.c.id.in_(run_pks)).values(sweep_pk=sweep_pk)).rowcount
    if updated != len(set(run_pks)):
        raise NotFoundError(f"{len(set(run_pks)) - updated} of the runs {run_pks} do not exist")


def _record(row: sa.Row[Any]) -> SweepRecord:
    return SweepRecord(
        pk=row.id, id=row.sweep_id, entity=row.entity, project=row.project, name=row.name, method=row.method,
        state=row.state, config=row.config, created_at=row.created_at, updated_at=row.updated_at,
    )


def _trial(row: sa.Row[Any]) -> TrialRecord:
    return TrialRecord(
        pk=row.id, sweep_pk=row.sweep_pk, number=row.number, grid_index=row.grid_index, params=row.params,
        run_id=row.run_id, created_at=row.created_at, state=row.state, value=row.value,
        run_state=getattr(row, "run_state", None),
    )
