"""Parts of distributed artifacts: what each ``run.upsert_artifact(..., distributed_id=...)`` added, until
``run.finish_artifact`` merges them into one version (docs/behaviour.md section 4).

A part is one row of ``artifact_parts``; the SDK merges the manifests (the store knows nothing of their
contents) and commits the merged version with :func:`take`, which deletes exactly the parts merged, in the
version's transaction: the version appears and its parts disappear at once, and a part upserted while the
finish was merging stays for the next version (W&B: "subsequent upserts ... result in a new version").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from wandb_dagster.store import blob_refs, catalog
from wandb_dagster.store import schema as db
from wandb_dagster.store.errors import PartsTakenError, TypeMismatchError
from wandb_dagster.store.records import PartRecord


def _project_pk(conn: sa.Connection, entity: str, project: str) -> int | None:
    found: int | None = conn.execute(
        sa.select(db.projects.c.id)
        .join(db.entities, db.entities.c.id == db.projects.c.entity_id)
        .where(db.entities.c.name == entity, db.projects.c.name == project)
    ).scalar()
    return found


def _of(project_pk: int, collection: str, distributed_id: str) -> tuple[Any, ...]:
    return (
        db.artifact_parts.c.project_id == project_pk,
        db.artifact_parts.c.collection == collection,
        db.artifact_parts.c.distributed_id == distributed_id,
    )


def add(
    conn: sa.Connection,
    entity: str,
    project: str,
    collection: str,
    type: str,
    distributed_id: str,
    *,
    content: dict[str, Any],
    run_pk: int | None,
    now: datetime,
) -> int:
    """Store.add_artifact_part inside its transaction; returns the part's id."""
    path = f"{entity}/{project}/{collection}"
    existing = catalog.collection(conn, entity, project, collection)
    if existing is not None and existing.type != type:
        raise TypeMismatchError(
            f"artifact collection {path!r} has type {existing.type!r}, not {type!r}; upsert it with "
            f"type={existing.type!r}, or use another name for {type!r} artifacts"
        )
    if existing is not None and existing.kind != "sequence":
        raise ValueError(f"{path!r} is a registry collection: versions are linked into it, not logged")
    project_pk = catalog.project_id(conn, entity, project, now)
    other = conn.execute(
        sa.select(db.artifact_parts.c.type).where(*_of(project_pk, collection, distributed_id)).limit(1)
    ).scalar()
    if other is not None and other != type:
        raise TypeMismatchError(
            f"distributed artifact {path!r} (distributed_id {distributed_id!r}) has parts of type {other!r}, "
            f"not {type!r}; upsert every part with the same type"
        )
    part_pk: int = conn.execute(
        sa.insert(db.artifact_parts)
        .values(
            project_id=project_pk, collection=collection, type=type, distributed_id=distributed_id,
            run_pk=run_pk, created_at=now, **content,
        )
        .returning(db.artifact_parts.c.id)
    ).scalar_one()
    return part_pk


def pending(conn: sa.Connection, entity: str, project: str, collection: str, distributed_id: str) -> list[PartRecord]:
    """The parts waiting in ``entity/project/collection`` under ``distributed_id``, in upsert order."""
    project_pk = _project_pk(conn, entity, project)
    if project_pk is None:
        return []
    rows = conn.execute(
        sa.select(db.artifact_parts, db.runs.c.run_id)
        .outerjoin(db.runs, db.runs.c.id == db.artifact_parts.c.run_pk)
        .where(*_of(project_pk, collection, distributed_id))
        .order_by(db.artifact_parts.c.id)
    ).all()
    return [
        PartRecord(
            pk=row.id, type=row.type, run_pk=row.run_pk, run_id=row.run_id, manifest=row.manifest,
            metadata=dict(row.metadata or {}), description=row.description, aliases=list(row.aliases),
            created_at=row.created_at,
        )
        for row in rows
    ]


def take(conn: sa.Connection, part_pks: Sequence[int]) -> None:
    """Delete the parts a version was merged from; PartsTakenError when one is gone (another finish)."""
    if not part_pks:
        return
    # Rows locked in id order, the same order for every finisher, so two cannot deadlock.
    locked = conn.execute(
        sa.select(db.artifact_parts.c.id)
        .where(db.artifact_parts.c.id.in_(list(part_pks)))
        .order_by(db.artifact_parts.c.id)
        .with_for_update()
    ).scalars().all()
    if len(locked) != len(set(part_pks)):
        raise PartsTakenError(
            f"{len(set(part_pks)) - len(locked)} of the parts being merged were merged by another "
            "finish_artifact first"
        )
    blob_refs.forget_parts(conn, list(part_pks))
    conn.execute(sa.delete(db.artifact_parts).where(db.artifact_parts.c.id.in_(list(part_pks))))

