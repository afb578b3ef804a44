"""A run's files and its system metrics stream (part of the runs aggregate; store/runs.py deletes them
with the run).

A run file row names a blob (MD5 hex) that the SDK made durable before the row was written
(docs/architecture.md invariant 1). :func:`digests` is the one query of every blob run files reference, for
a garbage collector to count them as live.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from wandb_dagster.store import schema as db
from wandb_dagster.store.errors import NotFoundError
from wandb_dagster.store.records import RunFileRecord
from wandb_dagster.store.sql import insert


def put(conn: sa.Connection, run_pk: int, files: Sequence[tuple[str, str, int]], now: datetime) -> None:
    """Record ``files`` ((name, digest hex, size)) of run ``run_pk``; a name already there gets the new
    content (``policy="live"`` saves a file again each time it changes)."""
    if not files:
        return
    if conn.execute(sa.select(db.runs.c.id).where(db.runs.c.id == run_pk)).first() is None:
        raise NotFoundError(f"no run with pk {run_pk}; create it with create_run() first")
    statement = insert(conn, db.run_files).values(
        [
            {"run_pk": run_pk, "name": name, "digest": digest, "size": size, "updated_at": now}
            for name, digest, size in files
        ]
    )
    excluded = statement.excluded
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[db.run_files.c.run_pk, db.run_files.c.name],
            set_={"digest": excluded.digest, "size": excluded.size, "updated_at": excluded.updated_at},
        )
    )


def of_run(conn: sa.Connection, run_pk: int) -> list[RunFileRecord]:
    """The files of run ``run_pk``, by name."""
    rows = conn.execute(
        sa.select(db.run_files).where(db.run_files.c.run_pk == run_pk).order_by(db.run_files.c.name)
    ).all()
    return [RunFileRecord(name=r.name, digest=r.digest, size=r.size, updated_at=r.updated_at) for r in rows]


def digests(conn: sa.Connection) -> set[str]:
    """Every blob (MD5 hex) a run file of any run names: what a garbage collector must keep."""
    return set(conn.execute(sa.select(db.run_files.c.digest).distinct()).scalars())


def append_system(conn: sa.Connection, run_pk: int, rows: Sequence[dict[str, Any]]) -> None:
    """Append system metric samples of run ``run_pk`` after its last one (each row a dict of
    ``system/...`` values with ``_timestamp`` and ``_runtime``)."""
    if not rows:
        return
    last = conn.execute(
        sa.select(sa.func.max(db.run_system_metrics.c.seq)).where(db.run_system_metrics.c.run_pk == run_pk)
    ).scalar()
    start = 0 if last is None else int(last) + 1
    conn.execute(
        sa.insert(db.run_system_metrics),
        [{"run_pk": run_pk, "seq": start + i, "row": row} for i, row in enumerate(rows)],
    )


def system(conn: sa.Connection, run_pk: int) -> list[dict[str, Any]]:
    """The system metric samples of run ``run_pk``, oldest first."""
    return list(
        conn.execute(
            sa.select(db.run_system_metrics.c.row)
            .where(db.run_system_metrics.c.run_pk == run_pk)
            .order_by(db.run_system_metrics.c.seq)
        ).scalars()
    )


def delete_of_run(conn: sa.Connection, run_pk: int) -> None:
    """The run's files, the media blobs it named and its system metrics: its blobs are garbage for the next gc
    unless something else names them."""
    conn.execute(sa.delete(db.run_files).where(db.run_files.c.run_pk == run_pk))
    conn.execute(sa.delete(db.run_blobs).where(db.run_blobs.c.run_pk == run_pk))
    conn.execute(sa.delete(db.run_system_metrics).where(db.run_system_metrics.c.run_pk == run_pk))
