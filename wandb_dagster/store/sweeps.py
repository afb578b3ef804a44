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


def trials(conn: sa.Connection, sweep_pk: int) -> list[TrialRecord]:
    """The trials claimed in sweep ``sweep_pk``, in claim order."""
    rows = conn.execute(
        sa.select(db.sweep_trials).where(db.sweep_trials.c.sweep_pk == sweep_pk).order_by(db.sweep_trials.c.number)
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
        if not any(trial.state == "running" for trial in live):
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
        sa.select(t.id, t.run_id).where(t.sweep_pk == sweep_pk, t.state == "running", t.heartbeat_at < stale_before)
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
    """Renew a running trial's heartbeat; False when it is no longer running (crashed by another agent)."""
    t = db.sweep_trials.c
    updated = conn.execute(
        sa.update(db.sweep_trials).where(t.id == trial_pk, t.state == "running").values(heartbeat_at=now)
    ).rowcount
    return bool(updated)


def end(conn: sa.Connection, trial_pk: int, now: datetime, metric: tuple[str, str] | None = None) -> None:
    """A trial's function returned (or raised): the trial is finished, whatever its run's state.

    ``metric`` (name, goal "minimize"/"maximize"): when the trial's run has a numeric summary value for it
    that beats every other run of the sweep, a SWEEP_BEST_RUN event is appended to this transaction. Ends
    of one sweep serialise on the sweep's row, so each new best is announced once, in order.
    """
    t = db.sweep_trials.c
    trial = conn.execute(sa.select(t.sweep_pk, t.run_id).where(t.id == trial_pk)).first()
    if trial is None:
        raise NotFoundError(f"no sweep trial with pk {trial_pk}; claim it with claim_sweep_trial() first")
    conn.execute(sa.select(db.sweeps.c.id).where(db.sweeps.c.id == trial.sweep_pk).with_for_update())
    conn.execute(
        sa.update(db.sweep_trials)
        .where(t.id == trial_pk, t.state == "running")
        .values(state="finished", heartbeat_at=now)
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
        run_id=row.run_id, created_at=row.created_at, state=row.state,
    )
