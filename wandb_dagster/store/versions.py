"""Artifact versions: the one read path for version records, and commit, update and delete.

Every read of versions, by name (:func:`resolve`), by id, by run or a page of a query
(store/paging.py), ends in :func:`records`. Writers hold the lock of the collection they change
(store.py's concurrency model); functions take the caller's connection, so that a version, its
membership, aliases, tags, producer and events are one transaction (docs/architecture.md invariant 1).
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from wandb_dagster.store import blob_refs, catalog, events, members, runs
from wandb_dagster.store import schema as db
from wandb_dagster.store.errors import AliasInUseError, NotFoundError, TypeMismatchError
from wandb_dagster.store.events import Member, Removed, Where
from wandb_dagster.store.records import CommitResult, VersionRecord
from wandb_dagster.store.sql import insert

_ID_ALPHABET = string.ascii_lowercase + string.digits

# --------------------------------------------------------------------------------------- reading

# A member of a collection, joined with everything a VersionRecord shows. The version's type is its source
# collection's: a registry link shows the linked version's own type.
_source = db.collections.alias("source_collection")
_m = db.memberships.alias("newest_member")
_VERSIONS = sa.select(
    db.memberships.c.id.label("membership_id"),
    db.memberships.c.version_index,
    db.memberships.c.collection_id,
    db.versions.c.id,
    db.versions.c.public_id,
    db.versions.c.digest,
    db.versions.c.size,
    db.versions.c.file_count,
    db.versions.c.metadata,
    db.versions.c.description,
    db.versions.c.state,
    db.versions.c.created_at,
    db.versions.c.updated_at,
    db.versions.c.source_collection_id,
    db.entities.c.name.label("entity"),
    db.projects.c.name.label("project"),
    db.collections.c.name.label("collection"),
    _source.c.type,
    db.runs.c.run_id.label("created_by"),
).select_from(
    db.memberships.join(db.versions, db.versions.c.id == db.memberships.c.version_id)
    .join(db.collections, db.collections.c.id == db.memberships.c.collection_id)
    .join(db.projects, db.projects.c.id == db.collections.c.project_id)
    .join(db.entities, db.entities.c.id == db.projects.c.entity_id)
    .join(_source, _source.c.id == db.versions.c.source_collection_id)
    .outerjoin(db.runs, db.runs.c.id == db.versions.c.created_by_run_pk)
)
_VERSION_COLUMNS = (
    "membership_id", "version_index", "collection_id", "id", "public_id", "digest", "size", "file_count",
    "metadata", "description", "state", "created_at", "updated_at", "source_collection_id", "entity", "project",
    "collection", "type", "created_by", "aliases", "tags",
)


def _held(column: Any, owner: Any, key: Any, dialect: str) -> Any:
    # All of a row's aliases or tags in one value, read in the same statement as the row (a correlated
    # subquery on the owner's index), rather than one more query and round trip per page for each.
    # NullType: the driver's list (or JSON text) as it comes, without SQLAlchemy's per-item array processing.
    gather = sa.func.array_agg if dialect == "postgresql" else sa.func.json_group_array
    return sa.select(gather(column, type_=sa.types.NullType())).where(owner == key).scalar_subquery()


_VERSIONS_BY_DIALECT: dict[str, Any] = {}


def _versions_query(dialect: str) -> Any:
    """``_VERSIONS`` plus each member's ``aliases`` and its version's ``tags`` (see :func:`_names`)."""
    query = _VERSIONS_BY_DIALECT.get(dialect)
    if query is None:
        query = _VERSIONS_BY_DIALECT[dialect] = _VERSIONS.add_columns(
            _held(db.aliases.c.alias, db.aliases.c.membership_id, db.memberships.c.id, dialect).label("aliases"),
            _held(db.version_tags.c.tag, db.version_tags.c.version_id, db.versions.c.id, dialect).label("tags"),
        )
        # records() unpacks rows by position.
        assert [c.name for c in query.selected_columns] == list(_VERSION_COLUMNS), query.selected_columns
    return query


def _names(held: Any) -> list[str]:
    """Sorted names from :func:`_held`: a list or NULL on PostgreSQL, JSON text (``[]`` for none) on SQLite."""
    if held is None:
        return []
    return sorted(json.loads(held) if isinstance(held, str) else held)


def records(conn: sa.Connection, *where: Any, order_by: Iterable[Any] = ()) -> list[VersionRecord]:
    """The members matching ``where`` (over memberships, versions, collections, projects, entities, runs)."""
    rows = conn.execute(_versions_query(conn.dialect.name).where(*where).order_by(*order_by)).all()
    # Positional unpacking (in _VERSION_COLUMNS' order): a page builds 100 records, and named access to
    # 20 fields of each row costs more than the rest of building them.
    return [
        VersionRecord(
            pk=pk, id=public_id, entity=entity, project=project, collection=collection,
            collection_id=collection_id, type=type_, index=index, digest=digest, size=size,
            file_count=file_count, metadata=metadata, description=description, state=state,
            created_at=created_at, updated_at=updated_at, aliases=_names(aliases), tags=_names(tags),
            source_collection_id=source_collection_id, created_by=created_by,
        )
        for (
            _membership_id, index, collection_id, pk, public_id, digest, size, file_count, metadata,
            description, state, created_at, updated_at, source_collection_id, entity, project, collection,
            type_, created_by, aliases, tags,
        ) in rows
    ]


def resolve(conn: sa.Connection, entity: str, project: str, collection: str, selector: str) -> VersionRecord | None:
    """The member of ``entity/project/collection`` named by ``selector``: "vN", an alias, or a version id."""
    named = (db.entities.c.name == entity, db.projects.c.name == project, db.collections.c.name == collection)
    match = members.VERSION_SELECTOR.fullmatch(selector)
    if match:
        index = int(match.group(1))
        if index > 2**63 - 1:  # no version has it, and SQLite cannot bind it (OverflowError)
            return None
        found = records(conn, *named, db.memberships.c.version_index == index)
    else:
        has_alias = sa.exists().where(
            db.aliases.c.collection_id == db.memberships.c.collection_id,
            db.aliases.c.alias == selector,
            db.aliases.c.membership_id == db.memberships.c.id,
        )
        found = records(conn, *named, has_alias) or records(conn, *named, db.versions.c.public_id == selector)
        if not found and selector == "latest":
            # No member holds 'latest' (removed with save(), as W&B allows): "name:latest" is the newest
            # member, as W&B's clients resolve it (docs/behaviour.md section 4).
            newest_index = sa.select(sa.func.max(_m.c.version_index)).where(
                _m.c.collection_id == db.memberships.c.collection_id
            )
            found = records(conn, *named, db.memberships.c.version_index == newest_index.scalar_subquery())
    return found[0] if found else None


def by_public_id(conn: sa.Connection, version_id: str, collection_id: int | None) -> VersionRecord | None:
    """Version ``version_id`` as a member of ``collection_id`` (None: where it was logged)."""
    in_collection = db.versions.c.source_collection_id if collection_id is None else collection_id
    found = records(conn, db.versions.c.public_id == version_id, db.memberships.c.collection_id == in_collection)
    return found[0] if found else None


def in_collection(conn: sa.Connection, collection_id: int) -> list[VersionRecord]:
    """Every member of collection ``collection_id``, ordered by index."""
    return records(conn, db.memberships.c.collection_id == collection_id, order_by=[db.memberships.c.version_index])


def of_run(conn: sa.Connection, run_pk: int, direction: str) -> list[VersionRecord]:
    """Versions run ``run_pk`` used ("input") or logged ("output"), as members of their source collections."""
    linked = sa.exists().where(
        db.run_artifacts.c.run_pk == run_pk,
        db.run_artifacts.c.version_id == db.versions.c.id,
        db.run_artifacts.c.direction == direction,
    )
    return records(
        conn, linked, db.memberships.c.collection_id == db.versions.c.source_collection_id, order_by=[db.versions.c.id]
    )


def manifest(conn: sa.Connection, version_pk: int) -> str:
    text: str | None = conn.execute(sa.select(db.versions.c.manifest).where(db.versions.c.id == version_pk)).scalar()
    if text is None:
        raise NotFoundError(f"no version with pk {version_pk}")
    return text


def producers(conn: sa.Connection, version_pk: int) -> list[str]:
    """Ids of the runs that logged version ``version_pk``, oldest first."""
    return list(
        conn.execute(
            sa.select(db.runs.c.run_id)
            .join(db.run_artifacts, db.run_artifacts.c.run_pk == db.runs.c.id)
            .where(db.run_artifacts.c.version_id == version_pk, db.run_artifacts.c.direction == "output")
            .order_by(db.runs.c.id)
        ).scalars()
    )


# --------------------------------------------------------------------------------------- committing


def _logged_into(conn: sa.Connection, entity: str, project: str, collection: str, type: str, now: datetime) -> Any:
    """The locked collection a version of ``type`` is logged into (created if missing)."""
    coll = catalog.lock_collection_by_name(conn, entity, project, collection)
    if coll is None:
        coll = catalog.create_collection(conn, entity, project, collection, type, now)
    path = f"{entity}/{project}/{collection}"
    if coll.type != type:
        raise TypeMismatchError(
            f"artifact collection {path!r} has type {coll.type!r}, not {type!r}; "
            f"log it with type={coll.type!r}, or use another name for {type!r} artifacts"
        )
    if coll.kind != "sequence":
        raise ValueError(
            f"{path!r} is a registry collection: versions are linked into it, not logged; "
            "log the artifact to a project, then link that version"
        )
    return coll


def _member_with_digest(conn: sa.Connection, coll: Any, digest: str) -> Any:
    # next_index counts every member ever added and the collection is locked: at 0 (a collection just
    # created) no member can hold the digest, and the lookup is skipped.
    if coll.next_index == 0:
        return None
    return conn.execute(
        sa.select(
            db.memberships.c.id, db.memberships.c.version_id, db.memberships.c.version_index, db.versions.c.public_id
        )
        .join(db.versions, db.versions.c.id == db.memberships.c.version_id)
        .where(
            db.versions.c.source_collection_id == coll.id,
            db.versions.c.digest == digest,
            db.memberships.c.collection_id == coll.id,
        )
    ).first()


def _new_public_id() -> str:
    while True:
        public_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))
        # resolve() reads "v<digits>" as an index, so an id must never look like one.
        if not members.VERSION_SELECTOR.fullmatch(public_id):
            return public_id


def commit(
    conn: sa.Connection,
    entity: str,
    project: str,
    collection: str,
    type: str,
    *,
    content: dict[str, Any],
    aliases: list[str],
    tags: list[str],
    run_pk: int | None,
    now: datetime,
    blobs: Sequence[str] | None = None,
    claim: str | None = None,
    claimed: Sequence[str] | None = None,
) -> CommitResult:
    """Store.commit_version inside its transaction; ``content``: digest, manifest, size, file_count,
    metadata, description. ``aliases`` and ``tags`` are checked and without repeats. ``blobs``: the hex
    digests of the blobs the content names, claimed by the token ``claim`` (store/blob_refs.py); ``claimed``:
    the part of ``blobs`` that must be claimed (default all; a finish's parts protect their own)."""
    coll = _logged_into(conn, entity, project, collection, type, now)
    if claim is not None:
        blob_refs.check_and_release(conn, claim, (blobs or ()) if claimed is None else claimed)
    created_by = runs.run_id(conn, run_pk) if run_pk is not None else None
    existing = _member_with_digest(conn, coll, content["digest"])
    if existing is not None:
        membership, version_pk, index, public_id = existing
        new_tags = _missing_tags(conn, version_pk, tags)
    else:
        public_id = _new_public_id()
        version_pk = conn.execute(
            sa.insert(db.versions)
            .values(
                public_id=public_id, source_collection_id=coll.id, state="COMMITTED", created_by_run_pk=run_pk,
                created_at=now, updated_at=now, **{**content, "metadata": content["metadata"] or {}},
            )
            .returning(db.versions.c.id)
        ).scalar_one()
        index, new_tags = coll.next_index, tags
        membership = members.add(conn, coll, version_pk, now)
        if blobs:
            blob_refs.record(conn, version_pk, blobs)
    where, member = Where(entity, project, collection, coll.type), Member(membership, index, public_id)
    if existing is None:
        payload = {key: content[key] for key in ("digest", "size", "file_count")}
        events.about(conn, events.CREATE_ARTIFACT, where, member, now, run_id=created_by, payload=payload)
    before = members.alias_holders(conn, coll.id, aliases)
    events.alias_moves(conn, where, member, aliases, before, created_by, now)
    members.move_aliases(conn, coll.id, membership, aliases)
    _add_tags(conn, version_pk, tags)
    for tag in new_tags:
        events.about(conn, events.ADD_ARTIFACT_TAG, where, member, now, tag=tag, run_id=created_by)
    if run_pk is not None:
        link_run(conn, run_pk, version_pk, "output")
    if existing is not None:
        return CommitResult(version=records(conn, db.memberships.c.id == membership)[0], created=False)
    # Everything is known: build the record instead of reading back what was just written, to keep the
    # common path to a handful of statements.
    version = VersionRecord(
        pk=version_pk, id=public_id, entity=entity, project=project, collection=collection, collection_id=coll.id,
        type=type, index=coll.next_index, digest=content["digest"], size=content["size"],
        file_count=content["file_count"], metadata=content["metadata"] or {}, description=content["description"],
        state="COMMITTED", created_at=now, updated_at=now, aliases=sorted(aliases), tags=sorted(tags),
        source_collection_id=coll.id, created_by=created_by,
    )
    return CommitResult(version=version, created=True)


# --------------------------------------------------------------------------------------- updating


def update(
    conn: sa.Connection,
    version_pk: int,
    collection_id: int,
    *,
    values: dict[str, Any],
    aliases: list[str] | None,
    tags: list[str] | None,
    add_aliases: list[str],
    remove_aliases: Sequence[str],
    add_tags: list[str],
    remove_tags: Sequence[str],
    run_pk: int | None,
    now: datetime,
) -> VersionRecord:
    """Store.update_version inside its transaction; ``values``: the versions columns to set. Aliases and
    tags are checked and without repeats."""
    if conn.execute(
        sa.select(db.collections.c.id).where(db.collections.c.id == collection_id).with_for_update()
    ).first() is None:
        raise NotFoundError(f"no collection with pk {collection_id}")
    membership = members.membership_id(conn, collection_id, version_pk)
    if membership is None:
        raise NotFoundError(
            f"version pk {version_pk} is not a member of collection pk {collection_id} "
            "(deleted, or never logged or linked there)"
        )
    conn.execute(sa.update(db.versions).where(db.versions.c.id == version_pk).values({"updated_at": now, **values}))
    # The event feed reports what changed: the holders of every alias this call can touch, and the
    # version's tags, before and after.
    touched = [*(aliases or ()), *add_aliases, *remove_aliases]
    if aliases is not None:
        touched += conn.execute(sa.select(db.aliases.c.alias).where(db.aliases.c.membership_id == membership)).scalars()
    aliases_before = members.alias_holders(conn, collection_id, touched)
    tags_changed = tags is not None or add_tags or remove_tags
    tags_before = _tags(conn, version_pk) if tags_changed else set()
    _set_aliases(conn, collection_id, membership, aliases, add_aliases, remove_aliases)
    _set_tags(conn, version_pk, tags, add_tags, remove_tags)
    version = records(conn, db.memberships.c.id == membership)[0]
    aliases_after = members.alias_holders(conn, collection_id, touched)
    tags_after = _tags(conn, version_pk) if tags_changed else set()
    if aliases_before != aliases_after or tags_before != tags_after:
        where, member = members.where(conn, collection_id), Member(membership, version.index, version.id)
        run_id = runs.run_id(conn, run_pk) if run_pk is not None else None
        events.alias_diff(conn, where, aliases_before, aliases_after, run_id, now)
        events.tag_diff(conn, where, member, tags_before, tags_after, run_id, now)
    return version


def _set_aliases(
    conn: sa.Connection,
    collection_id: int,
    membership: int,
    aliases: list[str] | None,
    add: list[str],
    remove: Sequence[str],
) -> None:
    """``aliases``: the member's complete new set (None: unchanged); then ``remove`` and ``add``."""
    held_by_member = db.aliases.c.membership_id == membership
    if aliases is not None:
        conn.execute(sa.delete(db.aliases).where(held_by_member, db.aliases.c.alias.not_in(aliases)))
        members.move_aliases(conn, collection_id, membership, aliases)
    if remove:
        conn.execute(sa.delete(db.aliases).where(held_by_member, db.aliases.c.alias.in_(list(remove))))
    if add:
        members.move_aliases(conn, collection_id, membership, add)


def _set_tags(
    conn: sa.Connection, version_pk: int, tags: list[str] | None, add: list[str], remove: Sequence[str]
) -> None:
    """``remove`` and ``add``, then ``tags``: the version's complete new set (None: unchanged)."""
    of_version = db.version_tags.c.version_id == version_pk
    if remove:
        conn.execute(sa.delete(db.version_tags).where(of_version, db.version_tags.c.tag.in_(list(remove))))
    if add:
        _add_tags(conn, version_pk, add)
    if tags is not None:
        conn.execute(sa.delete(db.version_tags).where(of_version, db.version_tags.c.tag.not_in(tags)))
        _add_tags(conn, version_pk, tags)


def _tags(conn: sa.Connection, version_pk: int) -> set[str]:
    of_version = db.version_tags.c.version_id == version_pk
    return set(conn.execute(sa.select(db.version_tags.c.tag).where(of_version)).scalars())


def _missing_tags(conn: sa.Connection, version_pk: int, tags: Sequence[str]) -> list[str]:
    """The ``tags`` the version does not have yet, in the given order (these get ADD events)."""
    if not tags:
        return []
    have = set(
        conn.execute(
            sa.select(db.version_tags.c.tag).where(
                db.version_tags.c.version_id == version_pk, db.version_tags.c.tag.in_(list(tags))
            )
        ).scalars()
    )
    return [tag for tag in tags if tag not in have]


def _add_tags(conn: sa.Connection, version_pk: int, tags: Sequence[str]) -> None:
    if tags:
        # Sorted, so that concurrent writers insert in the same order and cannot deadlock.
        conn.execute(
            insert(conn, db.version_tags)
            .values([{"version_id": version_pk, "tag": tag} for tag in sorted(tags)])
            .on_conflict_do_nothing()
        )


def link_run(conn: sa.Connection, run_pk: int, version_pk: int, direction: str) -> None:
    """Record run ``run_pk`` as an "input" or "output" of version ``version_pk`` (idempotent)."""
    conn.execute(
        insert(conn, db.run_artifacts)
        .values(run_pk=run_pk, version_id=version_pk, direction=direction)
        .on_conflict_do_nothing()
    )


# --------------------------------------------------------------------------------------- deleting


def delete(conn: sa.Connection, version_pk: int, *, delete_aliases: bool, run_pk: int | None, now: datetime) -> None:
    """Store.delete_version inside its transaction."""
    # Lock the collections before the version row, in id order: the same order as every other writer
    # (collection, then its versions), so concurrent writers cannot deadlock.
    collection_ids = catalog.lock_collections(conn, members.membership_collections(conn, version_pk))
    state = conn.execute(
        sa.select(db.versions.c.state).where(db.versions.c.id == version_pk).with_for_update()
    ).scalar()
    if state is None:
        raise NotFoundError(f"no version with pk {version_pk}")
    if state == "DELETED":
        return
    # A link committed while we waited for the locks adds a collection; lock it too.
    catalog.lock_collections(conn, members.membership_collections(conn, version_pk) - collection_ids)
    held = conn.execute(
        sa.select(db.aliases.c.collection_id, db.aliases.c.alias, db.memberships.c.id)
        .join(db.memberships, db.memberships.c.id == db.aliases.c.membership_id)
        .where(db.memberships.c.version_id == version_pk)
        .order_by(db.aliases.c.collection_id, db.aliases.c.alias)
    ).all()
    if held and not delete_aliases:
        raise AliasInUseError(
            f"version pk {version_pk} still has aliases {[alias for _, alias, _ in held]}; "
            "remove them first, or pass delete_aliases=True to delete them with the version"
        )
    run_id = runs.run_id(conn, run_pk) if run_pk is not None else None
    events.deletion(conn, _removed(conn, version_pk, held), run_id, now)
    membership_ids = [membership for _, _, membership in held]
    if membership_ids:
        conn.execute(sa.delete(db.aliases).where(db.aliases.c.membership_id.in_(membership_ids)))
    conn.execute(sa.delete(db.memberships).where(db.memberships.c.version_id == version_pk))
    conn.execute(
        sa.update(db.versions).where(db.versions.c.id == version_pk).values(state="DELETED", updated_at=now)
    )
    for collection_id, alias, _ in held:
        if alias == "latest":
            members.latest_to_newest(conn, collection_id)


def _removed(conn: sa.Connection, version_pk: int, held: Sequence[Any]) -> list[Removed]:
    """Every membership of the version, in collection order, with the aliases (not 'latest') it held."""
    aliases_of: dict[int, list[str]] = {}
    for _, alias, membership in held:
        if alias != "latest":
            aliases_of.setdefault(membership, []).append(alias)
    rows = conn.execute(
        sa.select(
            db.memberships.c.id,
            db.memberships.c.version_index,
            db.versions.c.public_id,
            db.versions.c.source_collection_id,
            db.collections.c.id.label("collection_id"),
            db.entities.c.name.label("entity"),
            db.projects.c.name.label("project"),
            db.collections.c.name.label("collection"),
            db.collections.c.type,
        )
        .join(db.versions, db.versions.c.id == db.memberships.c.version_id)
        .join(db.collections, db.collections.c.id == db.memberships.c.collection_id)
        .join(db.projects, db.projects.c.id == db.collections.c.project_id)
        .join(db.entities, db.entities.c.id == db.projects.c.entity_id)
        .where(db.memberships.c.version_id == version_pk)
        .order_by(db.memberships.c.collection_id)
    )
    return [
        Removed(
            Where(row.entity, row.project, row.collection, row.type),
            Member(row.id, row.version_index, row.public_id),
            row.collection_id == row.source_collection_id,
            aliases_of.get(row.id, ()),
        )
        for row in rows
    ]
