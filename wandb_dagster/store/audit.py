"""The database's own consistency, for ``wandb-dagster verify``: what the invariants of docs/architecture.md
promise about the metadata, checked with plain queries (each problem names the collection and version)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from wandb_dagster.store import schema as db


def _collection_name() -> Any:
    e, p, c = db.entities.c, db.projects.c, db.collections.c
    return (e.name + "/" + p.name + "/" + c.name).label("name")


def _joined(table: Any) -> Any:
    e, p, c = db.entities.c, db.projects.c, db.collections.c
    return table.join(db.collections, c.id == table.c.collection_id).join(db.projects, p.id == c.project_id).join(
        db.entities, e.id == p.entity_id
    )


def version_names(conn: sa.Connection) -> dict[int, str]:
    """version pk -> ``entity/project/collection:vN`` in its source collection, for committed versions."""
    m, v = db.memberships.c, db.versions.c
    query = (
        sa.select(v.id, _collection_name(), m.version_index)
        .select_from(_joined(db.memberships).join(db.versions, v.id == m.version_id))
        .where(m.collection_id == v.source_collection_id, v.state == "COMMITTED")
    )
    return {pk: f"{name}:v{index}" for pk, name, index in conn.execute(query)}


def problems(conn: sa.Connection) -> list[dict[str, Any]]:
    """Every inconsistency found, as ``{"kind", "where", "detail"}``."""
    out: list[dict[str, Any]] = []
    m, v, c, a = db.memberships.c, db.versions.c, db.collections.c, db.aliases.c
    # A membership (a version in its collection, or a link into a registry) must name a committed version.
    query = (
        sa.select(_collection_name(), m.version_index, v.state)
        .select_from(_joined(db.memberships).outerjoin(db.versions, v.id == m.version_id))
        .where(sa.or_(v.id.is_(None), v.state != "COMMITTED"))
    )
    for name, index, state in conn.execute(query):
        out.append(
            {"kind": "dangling-member", "where": f"{name}:v{index}", "detail": f"names a version in state {state}"}
        )
    # Indices are handed out from next_index: none may be at or beyond it (invariant 2).
    query = sa.select(_collection_name(), m.version_index, c.next_index).select_from(_joined(db.memberships))
    for name, index, next_index in conn.execute(query.where(m.version_index >= c.next_index)):
        out.append({"kind": "index", "where": f"{name}:v{index}", "detail": f"index >= next_index {next_index}"})
    # An alias names a membership of its own collection (invariant 3).
    owner = db.memberships.alias("owner")
    query = (
        sa.select(_collection_name(), a.alias)
        .select_from(_joined(db.aliases).join(owner, owner.c.id == a.membership_id))
        .where(owner.c.collection_id != a.collection_id)
    )
    for name, alias in conn.execute(query):
        out.append({"kind": "alias", "where": f"{name}:{alias}", "detail": "names a member of another collection"})
    # `latest` is on the newest member of every collection that has members (invariant 3).
    newest = (
        sa.select(m.collection_id, sa.func.max(m.version_index).label("top")).group_by(m.collection_id).subquery()
    )
    latest = (
        sa.select(a.collection_id, owner.c.version_index.label("at"))
        .join_from(db.aliases, owner, owner.c.id == a.membership_id)
        .where(a.alias == "latest")
        .subquery()
    )
    query = (
        sa.select(_collection_name(), newest.c.top, latest.c.at)
        .select_from(
            newest.join(db.collections, c.id == newest.c.collection_id)
            .join(db.projects, db.projects.c.id == c.project_id)
            .join(db.entities, db.entities.c.id == db.projects.c.entity_id)
            .outerjoin(latest, latest.c.collection_id == newest.c.collection_id)
        )
        .where(sa.or_(latest.c.at.is_(None), latest.c.at != newest.c.top))
    )
    for name, top, at in conn.execute(query):
        where = f"{name}:v{top}"
        detail = "no member holds 'latest'" if at is None else f"'latest' is on v{at}, not the newest member"
        out.append({"kind": "latest", "where": where, "detail": detail})
    return out


def counts(conn: sa.Connection) -> dict[str, int]:
    """How many rows the main tables hold, and the bytes of committed versions."""
    out = {
        name: int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
        for name, table in (
            ("entities", db.entities), ("projects", db.projects), ("runs", db.runs),
            ("collections", db.collections), ("events", db.events),
        )
    }  # fmt: skip
    v = db.versions.c
    committed = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(v.size), 0)).where(v.state == "COMMITTED")
    n, size = conn.execute(committed).one()
    out["versions"], out["version_bytes"] = int(n), int(size)
    return out
