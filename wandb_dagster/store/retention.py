"""Retention (W&B's artifact TTL): a version's time to live, and deleting the versions whose time is up.

One row of ``version_ttl`` per version with a TTL (migration 0010): the seconds given and the expiry they
make from the version's creation. No row: no TTL (W&B's ``None``; ``ArtifactTTL.INHERIT`` inherits a team
default, and a workspace has none). Expiry is compared with the database's clock, like gc's marks.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from wandb_dagster.store import blob_refs
from wandb_dagster.store import schema as db
from wandb_dagster.store.errors import NotFoundError


def set_ttl(conn: sa.Connection, version_pk: int, seconds: int | None) -> None:
    """Store.set_version_ttl inside its transaction."""
    created = conn.execute(sa.select(db.versions.c.created_at).where(db.versions.c.id == version_pk)).scalar()
    if created is None:
        raise NotFoundError(f"no version with pk {version_pk}; it may have been deleted")
    conn.execute(sa.delete(db.version_ttl).where(db.version_ttl.c.version_id == version_pk))
    if seconds is not None:
        expires = created + timedelta(seconds=seconds)
        conn.execute(sa.insert(db.version_ttl).values(version_id=version_pk, ttl_seconds=seconds, expires_at=expires))


def ttl_of(conn: sa.Connection, version_pk: int) -> int | None:
    found: int | None = conn.execute(
        sa.select(db.version_ttl.c.ttl_seconds).where(db.version_ttl.c.version_id == version_pk)
    ).scalar()
    return found


def expired(conn: sa.Connection) -> list[dict[str, Any]]:
    """The committed versions whose TTL is up: ``{"pk", "expires_at", "linked", "aliases"}`` each, oldest
    expiry first; ``linked``: the version is linked into a registry (W&B keeps those: a registry version must
    not expire under a production workflow); ``aliases``: those it holds anywhere (delete() refuses then)."""
    t, v, m, c = db.version_ttl.c, db.versions.c, db.memberships.c, db.collections.c
    linked = (
        sa.exists()
        .where(m.version_id == v.id)
        .where(c.id == m.collection_id, c.kind == "portfolio")
    )
    query = (
        sa.select(v.id, t.expires_at, linked.label("linked"))
        .join_from(db.version_ttl, db.versions, v.id == t.version_id)
        .where(v.state == "COMMITTED", t.expires_at <= _now(conn))
        .order_by(t.expires_at, v.id)
    )
    rows = [{"pk": pk, "expires_at": at, "linked": bool(is_linked)} for pk, at, is_linked in conn.execute(query)]
    a = db.aliases.c
    for row in rows:
        held = sa.select(a.alias).join(db.memberships, m.id == a.membership_id).where(m.version_id == row["pk"])
        row["aliases"] = sorted(conn.execute(held).scalars())
    return rows


def forget_versions(conn: sa.Connection, version_pks: Any) -> None:
    """Before version rows are deleted (their collection deleted)."""
    conn.execute(sa.delete(db.version_ttl).where(db.version_ttl.c.version_id.in_(version_pks)))


def _now(conn: sa.Connection) -> datetime:
    return blob_refs.db_now(conn)
