"""Entities, projects (registries among them) and collections: creating, locking, reading and describing them.

Functions take the connection of the caller's transaction. A collection's row is the lock every writer of
its members takes (store.py's concurrency model): :func:`lock_collection_by_name`, :func:`create_collection`
and :func:`lock_collections` take it. Projects are never deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from wandb_dagster.store import schema as db
from wandb_dagster.store.errors import NotFoundError
from wandb_dagster.store.records import REGISTRY_PREFIX, CollectionRecord, ProjectRecord
from wandb_dagster.store.sql import insert

# The registries every organization has (docs/behaviour.md section 6, "Ours").
CORE_REGISTRIES = ("model", "dataset")
_CORE_DESCRIPTIONS = {
    "model": "The core model registry: models promoted for use across the organization.",
    "dataset": "The core dataset registry: datasets promoted for use across the organization.",
}

PROJECTS_FROM = db.projects.join(db.entities, db.entities.c.id == db.projects.c.entity_id)
COLLECTIONS_FROM = db.collections.join(db.projects, db.projects.c.id == db.collections.c.project_id).join(
    db.entities, db.entities.c.id == db.projects.c.entity_id
)


# --------------------------------------------------------------------------------------- projects


def project_id(conn: sa.Connection, entity: str, project: str, now: datetime) -> int:
    """The primary key of ``entity/project``, creating both if missing (safe under races)."""
    lookup = (
        sa.select(db.projects.c.id)
        .join(db.entities, db.entities.c.id == db.projects.c.entity_id)
        .where(db.entities.c.name == entity, db.projects.c.name == project)
    )
    found: int | None = conn.execute(lookup).scalar()
    if found is not None:
        return found
    # INSERT ... ON CONFLICT DO NOTHING, then read: a concurrent creator wins quietly (PostgreSQL waits
    # for its transaction, then sees its row).
    conn.execute(insert(conn, db.entities).values(name=entity, created_at=now).on_conflict_do_nothing())
    entity_id = conn.execute(sa.select(db.entities.c.id).where(db.entities.c.name == entity)).scalar_one()
    conn.execute(
        insert(conn, db.projects)
        .values(entity_id=entity_id, name=project, created_at=now, updated_at=now)
        .on_conflict_do_nothing()
    )
    created: int = conn.execute(lookup).scalar_one()
    return created


def project_page(
    conn: sa.Connection, where: Sequence[Any], *, after: int | None, limit: int
) -> tuple[list[ProjectRecord], int | None]:
    """Up to ``limit`` projects matching ``where`` (over projects, entities) with ids above ``after``."""
    conditions = list(where)
    if after is not None:
        conditions.append(db.projects.c.id > after)
    rows = conn.execute(
        sa.select(db.projects, db.entities.c.name.label("entity"))
        .select_from(PROJECTS_FROM)
        .where(*conditions)
        .order_by(db.projects.c.id)
        .limit(limit)
    ).all()
    records = [
        ProjectRecord(
            pk=row.id,
            entity=row.entity,
            name=row.name,
            description=row.description,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
        for row in rows
    ]
    return records, (rows[-1].id if rows else None)


def project_count(conn: sa.Connection, where: Sequence[Any]) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(PROJECTS_FROM).where(*where)).scalar_one())


def update_project(conn: sa.Connection, project_pk: int, *, description: str | None, now: datetime) -> None:
    updated = conn.execute(
        sa.update(db.projects).where(db.projects.c.id == project_pk).values(description=description, updated_at=now)
    ).rowcount
    if not updated:
        raise NotFoundError(f"no project with pk {project_pk}; nothing was saved (pass the pk of an existing project)")


def registry_projects_condition() -> Any:
    """Projects that are registries: names starting with ``wandb-registry-`` (an index-friendly range:
    '.' is the character after '-')."""
    return sa.and_(db.projects.c.name >= REGISTRY_PREFIX, db.projects.c.name < REGISTRY_PREFIX[:-1] + ".")


def missing_core_registries(conn: sa.Connection, entity: str) -> list[str]:
    """The core registries (``model``, ``dataset``) that ``entity`` does not have yet."""
    names = [REGISTRY_PREFIX + name for name in CORE_REGISTRIES]
    present = set(
        conn.execute(
            sa.select(db.projects.c.name)
            .select_from(PROJECTS_FROM)
            .where(db.entities.c.name == entity, db.projects.c.name.in_(names))
        ).scalars()
    )
    return [core for core, name in zip(CORE_REGISTRIES, names, strict=True) if name not in present]


def create_core_registry(conn: sa.Connection, entity: str, core: str, now: datetime) -> None:
    """Create core registry ``core`` of ``entity`` if missing; only a registry nobody described yet gets the
    default description."""
    pk = project_id(conn, entity, REGISTRY_PREFIX + core, now)
    conn.execute(
        sa.update(db.projects)
        .where(db.projects.c.id == pk, db.projects.c.description.is_(None))
        .values(description=_CORE_DESCRIPTIONS[core])
    )


# --------------------------------------------------------------------------------------- collections


def lock_collection_by_name(conn: sa.Connection, entity: str, project: str, name: str) -> sa.Row[Any] | None:
    return conn.execute(
        sa.select(db.collections)
        .join(db.projects, db.projects.c.id == db.collections.c.project_id)
        .join(db.entities, db.entities.c.id == db.projects.c.entity_id)
        .where(db.entities.c.name == entity, db.projects.c.name == project, db.collections.c.name == name)
        .with_for_update(of=db.collections)
    ).first()


def create_collection(
    conn: sa.Connection, entity: str, project: str, name: str, type: str, now: datetime, kind: str = "sequence"
) -> sa.Row[Any]:
    """Create collection ``entity/project/name`` (and its project) or, if a concurrent writer did, lock it."""
    inserted = conn.execute(
        insert(conn, db.collections)
        .values(
            project_id=project_id(conn, entity, project, now),
            name=name,
            type=type,
            kind=kind,
            created_at=now,
            updated_at=now,
            next_index=0,
        )
        .on_conflict_do_nothing()
        .returning(*db.collections.c)
    ).first()
    if inserted is not None:
        return inserted  # a row this transaction inserted is locked by it until COMMIT
    row = lock_collection_by_name(conn, entity, project, name)
    assert row is not None  # inserted by a concurrent transaction that has committed
    return row


def lock_collections(conn: sa.Connection, collection_ids: set[int]) -> set[int]:
    """Lock the collections in id order (the order every writer takes them in); returns ``collection_ids``."""
    if collection_ids:
        conn.execute(
            sa.select(db.collections.c.id)
            .where(db.collections.c.id.in_(sorted(collection_ids)))
            .order_by(db.collections.c.id)
            .with_for_update()
        ).all()
    return collection_ids


def collection(conn: sa.Connection, entity: str, project: str, name: str) -> CollectionRecord | None:
    row = conn.execute(
        sa.select(db.collections, db.entities.c.name.label("entity"), db.projects.c.name.label("project"))
        .select_from(COLLECTIONS_FROM)
        .where(db.entities.c.name == entity, db.projects.c.name == project, db.collections.c.name == name)
    ).first()
    if row is None:
        return None
    tags = conn.execute(
        sa.select(db.collection_tags.c.tag).where(db.collection_tags.c.collection_id == row.id)
    ).scalars()
    return CollectionRecord.from_row(row, tags)


def collection_page(
    conn: sa.Connection, where: Sequence[Any], *, after: int | None, limit: int
) -> tuple[list[CollectionRecord], int | None]:
    """Up to ``limit`` collections matching ``where`` (over collections, projects, entities) with ids above
    ``after``, in id order."""
    conditions = list(where)
    if after is not None:
        conditions.append(db.collections.c.id > after)
    rows = conn.execute(
        sa.select(db.collections, db.entities.c.name.label("entity"), db.projects.c.name.label("project"))
        .select_from(COLLECTIONS_FROM)
        .where(*conditions)
        .order_by(db.collections.c.id)
        .limit(limit)
    ).all()
    if not rows:
        return [], None
    tags: dict[int, list[str]] = {}
    for collection_id, tag in conn.execute(
        sa.select(db.collection_tags.c.collection_id, db.collection_tags.c.tag).where(
            db.collection_tags.c.collection_id.in_([row.id for row in rows])
        )
    ):
        tags.setdefault(collection_id, []).append(tag)
    return [CollectionRecord.from_row(row, tags.get(row.id, [])) for row in rows], rows[-1].id


def collection_count(conn: sa.Connection, where: Sequence[Any]) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(COLLECTIONS_FROM).where(*where)).scalar_one())


def collection_aliases(conn: sa.Connection, collection_id: int) -> list[str]:
    """Every alias used in collection ``collection_id`` (sorted)."""
    return sorted(
        conn.execute(sa.select(db.aliases.c.alias).where(db.aliases.c.collection_id == collection_id)).scalars()
    )


def update_collection(
    conn: sa.Connection,
    collection_id: int,
    *,
    description: Any,
    tags: Sequence[str] | None,
    now: datetime,
    name: str | None = None,
) -> None:
    """Set a collection's description (``...`` leaves it), its complete set of tags (None leaves them) and
    its name (None leaves it; another collection of the project with that name -> ValueError). Aliases,
    links and history refer to the collection's row, so they follow a rename."""
    values: dict[str, Any] = {"updated_at": now}
    if description is not ...:
        values["description"] = description
    if name is not None:
        current = conn.execute(
            sa.select(db.collections.c.project_id, db.collections.c.name)
            .where(db.collections.c.id == collection_id)
            .with_for_update()
        ).first()
        if current is None:
            raise NotFoundError(f"no collection with pk {collection_id} (deleted?); nothing was saved")
        if name != current.name:
            taken = conn.execute(
                sa.select(db.collections.c.type).where(
                    db.collections.c.project_id == current.project_id, db.collections.c.name == name
                )
            ).scalar()
            if taken is not None:
                raise ValueError(
                    f"cannot rename collection {current.name!r} to {name!r}: the project already has a {taken!r} "
                    "collection of that name; choose another name, or delete that collection first"
                )
            values["name"] = name
            # Parts of distributed artifacts waiting for this collection follow it too (store/parts.py).
            conn.execute(
                sa.update(db.artifact_parts)
                .where(
                    db.artifact_parts.c.project_id == current.project_id,
                    db.artifact_parts.c.collection == current.name,
                )
                .values(collection=name)
            )
    updated = conn.execute(
        sa.update(db.collections).where(db.collections.c.id == collection_id).values(values)
    ).rowcount
    if not updated:
        raise NotFoundError(f"no collection with pk {collection_id} (deleted?); nothing was saved")
    if tags is None:
        return
    wanted = list(dict.fromkeys(tags))
    conn.execute(
        sa.delete(db.collection_tags).where(
            db.collection_tags.c.collection_id == collection_id, db.collection_tags.c.tag.not_in(wanted)
        )
    )
    if wanted:
        conn.execute(
            insert(conn, db.collection_tags)
            .values([{"collection_id": collection_id, "tag": tag} for tag in sorted(wanted)])
            .on_conflict_do_nothing()
        )


def artifact_types(conn: sa.Connection, entity: str, project: str) -> list[str]:
    """The artifact types used by collections of ``entity/project``, sorted."""
    return sorted(
        conn.execute(
            sa.select(db.collections.c.type)
            .select_from(COLLECTIONS_FROM)
            .where(db.entities.c.name == entity, db.projects.c.name == project)
            .distinct()
        ).scalars()
    )
