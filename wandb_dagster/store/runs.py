"""Runs and their history: creating and continuing runs, updating them, appending history, run pages.

Functions take the connection of the caller's transaction; a change of a run's state appends its
RUN_STATE_CHANGE event (store/events.py) to that transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from wandb_dagster.store import events, run_files
from wandb_dagster.store import schema as db
from wandb_dagster.store.engine import json_dumps
from wandb_dagster.store.errors import NotFoundError, RunExistsError, RunNotFoundError
from wandb_dagster.store.filters import JsonPath, _Ctx
from wandb_dagster.store.records import RunRecord
from wandb_dagster.store.sql import insert

RESUME_MODES = (None, "never", "allow", "auto", "must")
# update_run's field names -> runs columns.
UPDATE_FIELDS = {
    "state": "state",
    "display_name": "display_name",
    "config": "config",
    "summary": "summary",
    "tags": "tags",
    "group": "group_name",
    "job_type": "job_type",
    "notes": "notes",
    # An imported run keeps the start time its source recorded (sdk/imports: W&B offline runs, TensorBoard).
    "created_at": "created_at",
    "heartbeat_at": "heartbeat_at",
    "finished_at": "finished_at",
}
# The forms of Api.runs(order=...), for the error that names them.
_ORDER_FORMS = (
    "created_at", "heartbeat_at", "config.<key>.value", "config.<key>", "summary_metrics.<key>",
)

RUNS_FROM = db.runs.join(db.projects, db.projects.c.id == db.runs.c.project_id).join(
    db.entities, db.entities.c.id == db.projects.c.entity_id
)
# The sweep's public id comes along for RunRecord.sweep (W&B's run.sweep_id).
_RUNS = sa.select(
    db.runs, db.entities.c.name.label("entity"), db.projects.c.name.label("project"),
    db.sweeps.c.sweep_id.label("sweep_public_id"),
).select_from(RUNS_FROM.outerjoin(db.sweeps, db.sweeps.c.id == db.runs.c.sweep_pk))


def create(
    conn: sa.Connection,
    project_id: int,
    entity: str,
    project: str,
    run_id: str,
    fields: dict[str, Any],
    resume: str | None,
    now: datetime,
) -> RunRecord:
    """Create run ``run_id`` in project ``project_id`` or, depending on ``resume``, continue it (see
    Store.create_run). ``fields``: display_name, config, tags, group, job_type, notes, host, username and
    sweep_pk (with ``sweep``, its public id, for the record)."""
    if resume != "must":
        # Insert first: a new run (every Dagster step, most init() calls) costs no lookup before and
        # no read-back after; an existing id (a conflict, nothing written) continues below.
        config, tags = json.loads(json_dumps(fields["config"] or {})), list(fields["tags"] or [])
        run_pk = conn.execute(
            insert(conn, db.runs)
            .values(
                project_id=project_id,
                run_id=run_id,
                display_name=fields["display_name"],
                state="running",
                config=config,
                summary={},
                tags=tags,
                group_name=fields["group"],
                job_type=fields["job_type"],
                notes=fields["notes"],
                host=fields["host"],
                username=fields["username"],
                created_at=now,
                heartbeat_at=now,
                sweep_pk=fields.get("sweep_pk"),
            )
            .on_conflict_do_nothing()
            .returning(db.runs.c.id)
        ).scalar()
        if run_pk is not None:
            events.run_state(conn, entity, project, run_id, None, "running", now)
            # What a read-back would return (config decoded afresh, so the caller owns it).
            return RunRecord(
                pk=run_pk, id=run_id, entity=entity, project=project, display_name=fields["display_name"],
                state="running", config=config, summary={}, tags=tags, group=fields["group"],
                job_type=fields["job_type"], notes=fields["notes"], host=fields["host"],
                username=fields["username"], created_at=now, heartbeat_at=now, finished_at=None,
                sweep=fields.get("sweep"),
            )
    run_pk = conn.execute(
        sa.select(db.runs.c.id)
        .where(db.runs.c.project_id == project_id, db.runs.c.run_id == run_id)
        .with_for_update()
    ).scalar()
    path = f"{entity}/{project}/{run_id}"
    if run_pk is None:
        raise RunNotFoundError(
            f"run {path!r} does not exist and resume='must'; check the run id, or pass resume='allow' to create it"
        )
    if resume in (None, "never"):
        raise RunExistsError(
            f"run {path!r} already exists; pass resume='allow' to continue it, or leave the id out to get a new one"
        )
    previous = conn.execute(sa.select(db.runs.c.state).where(db.runs.c.id == run_pk)).scalar_one()
    conn.execute(
        sa.update(db.runs).where(db.runs.c.id == run_pk).values(state="running", heartbeat_at=now, finished_at=None)
    )
    if previous != "running":
        events.run_state(conn, entity, project, run_id, previous, "running", now)
    return record(conn.execute(_RUNS.where(db.runs.c.id == run_pk)).one())


def get(conn: sa.Connection, entity: str, project: str, run_id: str) -> RunRecord | None:
    row = conn.execute(
        _RUNS.where(db.entities.c.name == entity, db.projects.c.name == project, db.runs.c.run_id == run_id)
    ).first()
    return None if row is None else record(row)


def update_values(fields: dict[str, Any]) -> dict[str, Any]:
    """update_run's ``fields`` as runs column values (None config/summary/tags: empty); checks the names."""
    unknown = sorted(set(fields) - set(UPDATE_FIELDS))
    if unknown:
        raise ValueError(f"update_run() got unknown field(s) {unknown}; valid fields: {sorted(UPDATE_FIELDS)}")
    values = {UPDATE_FIELDS[name]: value for name, value in fields.items()}
    for name, empty in (("config", {}), ("summary", {}), ("tags", [])):
        if name in values and values[name] is None:
            values[name] = empty
    return values


def update(
    conn: sa.Connection, run_pk: int, values: dict[str, Any], history: list[dict[str, Any]], now: datetime
) -> None:
    """Set ``values`` (columns, see :func:`update_values`) of run ``run_pk`` and append ``history`` rows
    (:func:`history_params`); an IntegrityError means a step is taken (see :func:`history_conflict`)."""
    before = None
    if "state" in values:
        # Locked, so that two concurrent state changes report consistent previous states. Before the history
        # insert: on PostgreSQL its foreign key takes a share lock on the run, and two transactions upgrading
        # their share locks would deadlock.
        before = conn.execute(
            _RUNS.with_only_columns(db.runs.c.state, db.entities.c.name, db.projects.c.name, db.runs.c.run_id)
            .where(db.runs.c.id == run_pk)
            .with_for_update(of=db.runs)
        ).first()
    if history:
        conn.execute(sa.insert(db.run_history), history)
    updated = conn.execute(sa.update(db.runs).where(db.runs.c.id == run_pk).values(values)).rowcount
    if before is not None and before[0] != values["state"]:
        events.run_state(conn, before[1], before[2], before[3], before[0], values["state"], now)
    if not updated:
        raise NotFoundError(f"no run with pk {run_pk}; create it with create_run() first")


def logged_versions(conn: sa.Connection, run_pk: int) -> list[int]:
    """The pks of the versions run ``run_pk`` created (not those it only logged again), oldest first."""
    return list(
        conn.execute(
            sa.select(db.versions.c.id)
            .where(db.versions.c.created_by_run_pk == run_pk, db.versions.c.state != "DELETED")
            .order_by(db.versions.c.id)
        ).scalars()
    )


def delete(conn: sa.Connection, run_pk: int) -> None:
    """Remove run ``run_pk``, its history, files, system metrics and lineage rows. Versions it created stay
    (Store.delete_run deletes them first when asked) and no longer name a producing run, as in W&B after a run
    is deleted."""
    if conn.execute(sa.select(db.runs.c.id).where(db.runs.c.id == run_pk).with_for_update()).first() is None:
        raise NotFoundError(f"no run with pk {run_pk}; it may have been deleted already")
    conn.execute(sa.delete(db.run_history).where(db.run_history.c.run_pk == run_pk))
    # Its files' blobs stay in the blob store; a garbage collector frees those no longer named.
    run_files.delete_of_run(conn, run_pk)
    conn.execute(sa.delete(db.run_artifacts).where(db.run_artifacts.c.run_pk == run_pk))
    # A deleted run's pending parts of distributed artifacts stay, without a producer (store/parts.py).
    conn.execute(sa.update(db.artifact_parts).where(db.artifact_parts.c.run_pk == run_pk).values(run_pk=None))
    conn.execute(
        sa.update(db.versions).where(db.versions.c.created_by_run_pk == run_pk).values(created_by_run_pk=None)
    )
    conn.execute(sa.delete(db.runs).where(db.runs.c.id == run_pk))


def creator(conn: sa.Connection, version_pk: int) -> RunRecord | None:
    """The run that created version ``version_pk`` (None when it was logged without a run, or deleted)."""
    row = conn.execute(
        _RUNS.join(db.versions, db.versions.c.created_by_run_pk == db.runs.c.id).where(db.versions.c.id == version_pk)
    ).first()
    return None if row is None else record(row)


def of_version(conn: sa.Connection, version_pk: int, direction: str) -> list[RunRecord]:
    """The runs that used ("input") or logged ("output") version ``version_pk``, oldest run first."""
    rows = conn.execute(
        _RUNS.join(db.run_artifacts, db.run_artifacts.c.run_pk == db.runs.c.id)
        .where(db.run_artifacts.c.version_id == version_pk, db.run_artifacts.c.direction == direction)
        .order_by(db.runs.c.id)
    ).all()
    return [record(row) for row in rows]


def run_id(conn: sa.Connection, run_pk: int) -> str:
    """The id of run ``run_pk`` (events name runs by id)."""
    found: str | None = conn.execute(sa.select(db.runs.c.run_id).where(db.runs.c.id == run_pk)).scalar()
    if found is None:
        raise NotFoundError(f"no run with pk {run_pk}; pass the pk of a run from create_run(), or None")
    return found


def record(row: sa.Row[Any]) -> RunRecord:
    return RunRecord(
        pk=row.id,
        id=row.run_id,
        entity=row.entity,
        project=row.project,
        display_name=row.display_name,
        state=row.state,
        config=row.config,
        summary=row.summary,
        tags=row.tags,
        group=row.group_name,
        job_type=row.job_type,
        notes=row.notes,
        host=row.host,
        username=row.username,
        created_at=row.created_at,
        heartbeat_at=row.heartbeat_at,
        finished_at=row.finished_at,
        sweep=row.sweep_public_id,
    )


def of_sweep(conn: sa.Connection, sweep_pk: int) -> list[RunRecord]:
    """The runs of sweep ``sweep_pk``, oldest first."""
    rows = conn.execute(_RUNS.where(db.runs.c.sweep_pk == sweep_pk).order_by(db.runs.c.id)).all()
    return [record(row) for row in rows]


# --------------------------------------------------------------------------------------- history


def history_params(run_pk: int, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    params = []
    for row in rows:
        step = row.get("_step")
        if not isinstance(step, int) or isinstance(step, bool):
            raise ValueError(f"history row {row!r} has no integer '_step'; every row needs one")
        params.append({"run_pk": run_pk, "step": step, "row": row})
    return params


def append_history(conn: sa.Connection, params: list[dict[str, Any]]) -> None:
    conn.execute(sa.insert(db.run_history), params)


def history_conflict(conn: sa.Connection, run_pk: int, steps: list[int]) -> Exception:
    """The error for history rows that failed to insert: no such run, or steps already taken."""
    if conn.execute(sa.select(db.runs.c.id).where(db.runs.c.id == run_pk)).first() is None:
        return NotFoundError(f"no run with pk {run_pk}; create it with create_run() first")
    taken = set(
        conn.execute(
            sa.select(db.run_history.c.step).where(
                db.run_history.c.run_pk == run_pk, db.run_history.c.step.between(min(steps), max(steps))
            )
        ).scalars()
    )
    duplicates = sorted(step for step in set(steps) if steps.count(step) > 1 or step in taken)
    return ValueError(
        f"history of run pk {run_pk} already has step(s) {duplicates[:10]}; history is append-only: "
        "log each step once, with steps above the last one logged"
    )


def history(conn: sa.Connection, run_pk: int, *, after_step: int | None = None, limit: int | None = None) -> list[Any]:
    """History rows of run ``run_pk`` with ``_step`` above ``after_step``, in step order (``limit``: at most)."""
    conditions = [db.run_history.c.run_pk == run_pk]
    if after_step is not None:
        conditions.append(db.run_history.c.step > after_step)
    query = sa.select(db.run_history.c.row).where(*conditions).order_by(db.run_history.c.step)
    if limit is not None:
        query = query.limit(limit)
    return list(conn.execute(query).scalars())


# --------------------------------------------------------------------------------------- pages of runs


def order_keys(order: str, dialect: str) -> tuple[list[Any], bool]:
    """Sort keys (never NULL) and direction for ``order``, e.g. ``"-summary_metrics.loss"``.

    As W&B's ``Api.runs``: ``+`` (or no sign) ascending, ``-`` descending, then ``created_at``,
    ``heartbeat_at``, ``config.<key>.value`` (W&B stores each config key under ``value``; a nested key is
    ``config.<key>.value.<sub>``) or ``summary_metrics.<key>`` (dots go into nested dicts). ``config.<key>``
    without ``.value`` is accepted too. Anything else is a ValueError that names it: an order that is not
    understood is never ignored.
    """
    if not isinstance(order, str) or not order.strip("+-") or order[1:2] in ("+", "-") or order != order.strip():
        raise _bad_order(order)
    descending = order.startswith("-")
    key = order[1:] if order[0] in "+-" else order
    runs = db.runs.c
    if key in ("created_at", "createdAt"):
        return [runs.created_at], descending
    if key in ("heartbeat_at", "heartbeatAt"):
        return [
            sa.case((runs.heartbeat_at.is_(None), 0), else_=1),
            sa.func.coalesce(runs.heartbeat_at, runs.created_at),
        ], descending
    for prefix, column in (("config.", runs.config), ("summary_metrics.", runs.summary)):
        if key.startswith(prefix):
            keys = key[len(prefix) :].split(".")
            if any(not k or '"' in k or "\\" in k or "\x00" in k for k in keys):
                break  # as filter fields: a key the JSON path cannot quote is refused, not sent to the database
            if column is runs.config and len(keys) >= 2 and keys[1] == "value":
                del keys[1]  # W&B's config.<key>.value is the key's value: here config holds values directly
            return JsonPath(column, keys).sort_keys(_Ctx(dialect)), descending
    raise _bad_order(order)


def _bad_order(order: Any) -> ValueError:
    return ValueError(
        f"order {order!r} is invalid; use an optional '+' (ascending, the default) or '-' (descending) followed "
        f"by one of {list(_ORDER_FORMS)}, e.g. '-summary_metrics.loss' or '+config.lr.value'"
    )


def page(
    conn: sa.Connection,
    where: Sequence[Any],
    *,
    sort_keys: Sequence[Any],
    descending: bool,
    after: tuple[Any, ...] | None,
    limit: int,
) -> tuple[list[RunRecord], tuple[Any, ...] | None]:
    """Up to ``limit`` runs matching ``where`` ordered by ``sort_keys`` then ``runs.id`` (all ascending, or
    all descending). ``sort_keys`` must never be NULL (:func:`order_keys` coalesces them) so that the keyset
    comparison ``(keys..., id) > (last...)`` is exact. Returns (records, the last row's keyset)."""
    keys = [*sort_keys, db.runs.c.id]
    conditions = list(where)
    if after is not None:
        row_value = sa.tuple_(*keys)
        last = sa.tuple_(*[sa.literal(value, type_=key.type) for key, value in zip(keys, after, strict=True)])
        conditions.append(row_value < last if descending else row_value > last)
    labelled = [key.label(f"_k{i}") for i, key in enumerate(keys)]
    rows = conn.execute(
        _RUNS.add_columns(*labelled)
        .where(*conditions)
        .order_by(*[key.desc() if descending else key.asc() for key in keys])
        .limit(limit)
    ).all()
    if not rows:
        return [], None
    last_row = rows[-1]
    return [record(row) for row in rows], tuple(getattr(last_row, f"_k{i}") for i in range(len(keys)))


def count(conn: sa.Connection, where: Sequence[Any]) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(RUNS_FROM).where(*where)).scalar_one())
