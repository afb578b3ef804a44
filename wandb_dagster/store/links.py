"""Registry links: a version linked into a registry ("portfolio") collection, and unlinked from it.

A link is a membership of the registry collection with that collection's own index; nothing is copied
(the link shares the version's files, metadata and tags). Functions take the caller's connection.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from wandb_dagster.store import catalog, events, members, organizations, runs, versions
from wandb_dagster.store import schema as db
from wandb_dagster.store.errors import NotFoundError, TypeMismatchError
from wandb_dagster.store.events import Member, Where
from wandb_dagster.store.records import REGISTRY_PREFIX, CommitResult


def link(
    conn: sa.Connection,
    version_pk: int,
    entity: str,
    project: str,
    collection: str,
    *,
    aliases: list[str],
    run_pk: int | None,
    now: datetime,
) -> CommitResult:
    """Store.link_version inside its transaction (``aliases`` checked and without repeats)."""
    path = f"{entity}/{project}/{collection}"
    version_type = conn.execute(
        sa.select(db.collections.c.type)
        .join(db.versions, db.versions.c.source_collection_id == db.collections.c.id)
        .where(db.versions.c.id == version_pk)
    ).scalar()
    if version_type is None:
        raise NotFoundError(f"no version with pk {version_pk}; link a version returned by commit_version()")
    coll = catalog.lock_collection_by_name(conn, entity, project, collection)
    if project.startswith(REGISTRY_PREFIX):
        # Registries are created explicitly (Api().create_registry), except the core ones.
        organizations.check_link_target(conn, entity, project, version_type, now)
    if coll is None:
        coll = catalog.create_collection(conn, entity, project, collection, version_type, now, kind="portfolio")
    if coll.kind != "portfolio":
        raise ValueError(
            f"{path!r} is a collection where artifacts are logged, not a registry collection; "
            "link into another collection name (e.g. 'wandb-registry-model/<name>')"
        )
    if coll.type != version_type:
        raise TypeMismatchError(
            f"registry collection {path!r} has type {coll.type!r}, but version pk {version_pk} has type "
            f"{version_type!r}; link {version_type!r} artifacts into another collection"
        )
    # Lock the version after the collection (the order delete_version uses), so a concurrent delete
    # either sees this link or makes us see the version as deleted.
    state = conn.execute(
        sa.select(db.versions.c.state).where(db.versions.c.id == version_pk).with_for_update(read=True)
    ).scalar_one()
    if state != "COMMITTED":
        raise NotFoundError(f"version pk {version_pk} was deleted; link another version")
    membership = members.membership_id(conn, coll.id, version_pk)
    created = membership is None
    if membership is None:
        membership = members.add(conn, coll, version_pk, now)
    elif not _is_newest(conn, coll.id, membership):
        # "latest" is not moved back to an older member.
        aliases = [alias for alias in aliases if alias != "latest"]
    before = members.alias_holders(conn, coll.id, aliases)
    members.move_aliases(conn, coll.id, membership, aliases)
    version = versions.records(conn, db.memberships.c.id == membership)[0]
    where = Where(entity, project, collection, coll.type)
    member = Member(membership, version.index, version.id)
    run_id = runs.run_id(conn, run_pk) if run_pk is not None else None
    if created:
        events.about(
            conn, events.LINK_ARTIFACT, where, member, now, run_id=run_id,
            payload={"source": _source_name(conn, version_pk)},
        )
    events.alias_moves(conn, where, member, aliases, before, run_id, now)
    return CommitResult(version=version, created=created)


def _is_newest(conn: sa.Connection, collection_id: int, membership: int) -> bool:
    newest = conn.execute(
        sa.select(sa.func.max(db.memberships.c.version_index)).where(db.memberships.c.collection_id == collection_id)
    ).scalar()
    index = conn.execute(
        sa.select(db.memberships.c.version_index).where(db.memberships.c.id == membership)
    ).scalar_one()
    return bool(index == newest)


def _source_name(conn: sa.Connection, version_pk: int) -> str | None:
    """``entity/project/collection:vN`` where the version was logged (None once deleted there)."""
    row = conn.execute(
        sa.select(db.entities.c.name, db.projects.c.name, db.collections.c.name, db.memberships.c.version_index)
        .select_from(db.versions)
        .join(db.collections, db.collections.c.id == db.versions.c.source_collection_id)
        .join(db.projects, db.projects.c.id == db.collections.c.project_id)
        .join(db.entities, db.entities.c.id == db.projects.c.entity_id)
        .join(
            db.memberships,
            (db.memberships.c.collection_id == db.collections.c.id) & (db.memberships.c.version_id == db.versions.c.id),
        )
        .where(db.versions.c.id == version_pk)
    ).first()
    return None if row is None else f"{row[0]}/{row[1]}/{row[2]}:v{row[3]}"


def unlink(conn: sa.Connection, version_pk: int, collection_id: int, *, run_pk: int | None, now: datetime) -> None:
    """Store.unlink_version inside its transaction."""
    kind = conn.execute(
        sa.select(db.collections.c.kind).where(db.collections.c.id == collection_id).with_for_update()
    ).scalar()
    if kind is None:
        raise NotFoundError(f"no collection with pk {collection_id}")
    if kind != "portfolio":
        raise ValueError(
            f"collection pk {collection_id} is where version pk {version_pk} is logged, not a registry "
            "collection; only links can be unlinked (use delete_version to delete the version)"
        )
    membership = members.membership_id(conn, collection_id, version_pk)
    if membership is None:
        raise NotFoundError(
            f"version pk {version_pk} is not linked into collection pk {collection_id}; nothing to unlink"
        )
    held = set(conn.execute(sa.select(db.aliases.c.alias).where(db.aliases.c.membership_id == membership)).scalars())
    where, member = members.where(conn, collection_id), members.member(conn, membership)
    run_id = runs.run_id(conn, run_pk) if run_pk is not None else None
    for alias in sorted(held - {"latest"}):
        events.about(conn, events.REMOVE_ARTIFACT_ALIAS, where, member, now, alias=alias, run_id=run_id)
    events.about(conn, events.UNLINK_ARTIFACT, where, member, now, run_id=run_id)
    conn.execute(sa.delete(db.aliases).where(db.aliases.c.membership_id == membership))
    conn.execute(sa.delete(db.memberships).where(db.memberships.c.id == membership))
    conn.execute(sa.update(db.collections).where(db.collections.c.id == collection_id).values(updated_at=now))
    if "latest" in held:
        members.latest_to_newest(conn, collection_id)
