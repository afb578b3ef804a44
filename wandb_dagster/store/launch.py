"""W&B Launch: run queues and their queued runs (docs/behaviour.md, "Launch").

The store keeps queues and items without understanding their configs (the api level, ``wandb_dagster.launch``,
validates and resolves them). What it guarantees is the lease: :func:`lease` locks the queue's row, returns
expired leases to the queue, counts the queue's active items (leased or running, whichever agent holds
them) and leases the next pending ones up to ``max_concurrent``, all in one transaction. Every agent of a
queue, in any process or machine, serialises on that row lock (SQLite: the database write lock of BEGIN
IMMEDIATE), so ``max_concurrent`` holds across agents and an item is leased by one agent at a time; the
pending items themselves are read ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so an item another
transaction is changing (a delete, a state update) is passed over rather than waited for.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from wandb_dagster.store import schema as db
from wandb_dagster.store.blob_refs import db_now
from wandb_dagster.store.errors import NotFoundError
from wandb_dagster.store.records import RunQueueItemRecord, RunQueueRecord
from wandb_dagster.store.sql import insert

ITEM_STATES = ("pending", "leased", "running", "finished", "failed", "cancelled")
ACTIVE_STATES = ("leased", "running")
DONE_STATES = ("finished", "failed", "cancelled")

_Q = db.run_queues.c
_I = db.run_queue_items.c
_QUEUES = sa.select(db.run_queues, db.entities.c.name.label("entity")).select_from(
    db.run_queues.join(db.entities, db.entities.c.id == _Q.entity_id)
)
_ITEMS = sa.select(db.run_queue_items, _Q.name.label("queue")).select_from(
    db.run_queue_items.join(db.run_queues, _Q.id == _I.queue_pk)
)


def _entity_pk(conn: sa.Connection, entity: str, now: datetime) -> int:
    conn.execute(insert(conn, db.entities).values(name=entity, created_at=now).on_conflict_do_nothing())
    pk: int = conn.execute(sa.select(db.entities.c.id).where(db.entities.c.name == entity)).scalar_one()
    return pk


def put_queue(
    conn: sa.Connection,
    entity: str,
    name: str,
    *,
    resource_type: str,
    prioritization_mode: str | None,
    config: dict[str, Any],
    template_variables: dict[str, Any],
    external_links: dict[str, Any],
    now: datetime,
    create: bool,
) -> RunQueueRecord:
    """Create queue ``entity/name`` (``create``: one that exists -> ValueError) or replace its settings
    (an upsert; its items stay)."""
    entity_pk = _entity_pk(conn, entity, now)
    values = {
        "resource_type": resource_type, "prioritization_mode": prioritization_mode, "config": config,
        "template_variables": template_variables, "external_links": external_links, "updated_at": now,
    }
    # Serialise creators of one name: the unique (entity_id, name) decides, ON CONFLICT keeps it quiet.
    inserted = conn.execute(
        insert(conn, db.run_queues)
        .values(entity_id=entity_pk, name=name, created_at=now, **values)
        .on_conflict_do_nothing()
        .returning(_Q.id)
    ).scalar()
    if inserted is None:
        if create:
            raise ValueError(
                f"entity {entity!r} already has a run queue named {name!r}; use upsert_run_queue() to change "
                "its settings, or pick another name"
            )
        conn.execute(sa.update(db.run_queues).where(_Q.entity_id == entity_pk, _Q.name == name).values(values))
    found = get_queue(conn, entity, name)
    assert found is not None  # written just above, in this transaction
    return found


def get_queue(conn: sa.Connection, entity: str, name: str) -> RunQueueRecord | None:
    row = conn.execute(_QUEUES.where(db.entities.c.name == entity, _Q.name == name)).first()
    return None if row is None else _queue(row)


def queues(conn: sa.Connection, entity: str) -> list[RunQueueRecord]:
    rows = conn.execute(_QUEUES.where(db.entities.c.name == entity).order_by(_Q.name)).all()
    return [_queue(row) for row in rows]


def delete_queue(conn: sa.Connection, queue_pk: int) -> None:
    """Delete a queue and every item in it."""
    conn.execute(sa.delete(db.run_queue_items).where(_I.queue_pk == queue_pk))
    if not conn.execute(sa.delete(db.run_queues).where(_Q.id == queue_pk)).rowcount:
        raise NotFoundError(f"no run queue with pk {queue_pk}; it was deleted already")


def enqueue(
    conn: sa.Connection,
    queue_pk: int,
    item_id: str,
    *,
    entity: str,
    project: str,
    job: str,
    launch: dict[str, Any],
    template_values: dict[str, Any],
    priority: int,
    now: datetime,
) -> RunQueueItemRecord:
    """Add a pending item to queue ``queue_pk``."""
    if conn.execute(sa.select(_Q.id).where(_Q.id == queue_pk)).first() is None:
        raise NotFoundError(f"no run queue with pk {queue_pk}; it was deleted, create it again")
    conn.execute(
        sa.insert(db.run_queue_items).values(
            item_id=item_id, queue_pk=queue_pk, entity=entity, project=project, job=job, launch=launch,
            template_values=template_values, priority=priority, state="pending", attempts=0,
            created_at=now, updated_at=now,
        )
    )
    found = get_item(conn, item_id)
    assert found is not None
    return found


def get_item(conn: sa.Connection, item_id: str) -> RunQueueItemRecord | None:
    row = conn.execute(_ITEMS.where(_I.item_id == item_id)).first()
    return None if row is None else _item(row)


def items(conn: sa.Connection, queue_pk: int, states: Sequence[str] | None = None) -> list[RunQueueItemRecord]:
    """The queue's items, oldest first (``states``: only those)."""
    query = _ITEMS.where(_I.queue_pk == queue_pk)
    if states is not None:
        query = query.where(_I.state.in_(list(states)))
    return [_item(row) for row in conn.execute(query.order_by(_I.id)).all()]


def lease(
    conn: sa.Connection,
    queue_pk: int,
    owner: str,
    *,
    max_concurrent: int,
    lease_seconds: float,
    max_attempts: int,
    prioritized: bool,
    now: datetime,
) -> list[RunQueueItemRecord]:
    """Lease the queue's next pending items for ``owner`` (see the module docstring), in priority order
    (lower first; ``prioritized`` False: enqueue order only) and then oldest first.

    First, leases that expired (their launch never showed up as a Dagster run) end: the item is pending
    again, or failed once it was leased ``max_attempts`` times."""
    locked = conn.execute(sa.select(_Q.id).where(_Q.id == queue_pk).with_for_update()).scalar()
    if locked is None:
        raise NotFoundError(f"no run queue with pk {queue_pk}; it was deleted, create it again")
    # Leases are taken and expired on the database's clock, so agents on machines whose clocks disagree
    # still agree on when a lease is up (``now`` stamps updated_at only).
    clock = db_now(conn)
    expired = sa.and_(_I.queue_pk == queue_pk, _I.state == "leased", _I.lease_expires_at < clock)
    conn.execute(
        sa.update(db.run_queue_items)
        .where(expired, _I.attempts >= max_attempts)
        .values(
            state="failed", lease_owner=None, lease_expires_at=None, updated_at=now,
            error=f"leased {max_attempts} times and no Dagster run appeared for it (is the daemon launching the "
            "agent sensor's run requests?)",
        )
    )
    conn.execute(
        sa.update(db.run_queue_items)
        .where(expired)
        .values(state="pending", lease_owner=None, lease_expires_at=None, updated_at=now)
    )
    active = conn.execute(
        sa.select(sa.func.count()).where(_I.queue_pk == queue_pk, _I.state.in_(ACTIVE_STATES))
    ).scalar_one()
    room = max_concurrent - active
    if room <= 0:
        return []
    order = [_I.priority, _I.id] if prioritized else [_I.id]
    picked = (
        conn.execute(
            sa.select(_I.id)
            .where(_I.queue_pk == queue_pk, _I.state == "pending")
            .order_by(*order)
            .limit(room)
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    if not picked:
        return []
    conn.execute(
        sa.update(db.run_queue_items)
        .where(_I.id.in_(list(picked)))
        .values(
            state="leased", lease_owner=owner, lease_expires_at=clock + timedelta(seconds=lease_seconds),
            attempts=_I.attempts + 1, updated_at=now,
        )
    )
    rows = conn.execute(_ITEMS.where(_I.id.in_(list(picked)))).all()
    by_pk = {row.id: _item(row) for row in rows}
    return [by_pk[pk] for pk in picked]


def update_item(
    conn: sa.Connection,
    item_id: str,
    *,
    state: str,
    now: datetime,
    dagster_run_id: str | None = None,
    run_path: str | None = None,
    error: str | None = None,
) -> bool:
    """Move an item to ``state`` (and record the Dagster run, the tracking run, the failure). A finished,
    failed or cancelled item stays as it is: False then, or when the item no longer exists (deleted)."""
    if state not in ITEM_STATES:
        raise ValueError(f"queued run state {state!r} is not one of {list(ITEM_STATES)}")
    values: dict[str, Any] = {"state": state, "updated_at": now}
    if state != "leased":
        values.update(lease_owner=None, lease_expires_at=None)
    if dagster_run_id is not None:
        values["dagster_run_id"] = dagster_run_id
    if run_path is not None:
        values["run_path"] = run_path
    if error is not None:
        values["error"] = error
    updated = conn.execute(
        sa.update(db.run_queue_items)
        .where(_I.item_id == item_id, _I.state.not_in(DONE_STATES))
        .values(values)
    ).rowcount
    return bool(updated)


def set_run_path(conn: sa.Connection, item_id: str, run_path: str, now: datetime) -> None:
    """Record the tracking run of an item's Dagster run (found after the item may already be done)."""
    conn.execute(
        sa.update(db.run_queue_items).where(_I.item_id == item_id).values(run_path=run_path, updated_at=now)
    )


def delete_item(conn: sa.Connection, item_id: str) -> bool:
    return bool(conn.execute(sa.delete(db.run_queue_items).where(_I.item_id == item_id)).rowcount)


def _queue(row: sa.Row[Any]) -> RunQueueRecord:
    return RunQueueRecord(
        pk=row.id, entity=row.entity, name=row.name, resource_type=row.resource_type,
        prioritization_mode=row.prioritization_mode, config=row.config, template_variables=row.template_variables,
        external_links=row.external_links, created_at=row.created_at, updated_at=row.updated_at,
    )


def _item(row: sa.Row[Any]) -> RunQueueItemRecord:
    return RunQueueItemRecord(
        pk=row.id, id=row.item_id, queue_pk=row.queue_pk, queue=row.queue, entity=row.entity, project=row.project,
        job=row.job, launch=row.launch, template_values=row.template_values, priority=row.priority,
        state=row.state, lease_owner=row.lease_owner, lease_expires_at=row.lease_expires_at,
        attempts=row.attempts, dagster_run_id=row.dagster_run_id, run_path=row.run_path, error=row.error,
        created_at=row.created_at, updated_at=row.updated_at,
    )
