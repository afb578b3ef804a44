"""Members of collections and their aliases: the primitives that versions and registry links share.

A member is a row of ``memberships`` (a version in a collection, with the collection's index); an alias
names at most one member of a collection (docs/architecture.md invariant 3), and is only changed under the collection's
lock, which every caller here holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from wandb_dagster.store import schema as db
from wandb_dagster.store.events import Member, Where
from wandb_dagster.store.sql import insert

VERSION_SELECTOR = re.compile(r"v(\d+)")


def unique(values: Iterable[str]) -> list[str]:
    """``values`` without repeats, in order (one upsert may not touch the same row twice)."""
    if isinstance(values, str):
        raise TypeError(f"expected a list of strings, got the string {values!r}; wrap it in a list")
    return list(dict.fromkeys(values))


def check_aliases(aliases: Iterable[str]) -> None:
    for alias in aliases:
        valid = isinstance(alias, str) and alias and "/" not in alias and ":" not in alias
        if not valid or VERSION_SELECTOR.fullmatch(alias):
            raise ValueError(
                f"invalid alias {alias!r}: an alias is a non-empty string without '/' or ':', "
                "and 'v<digits>' names a version, so it cannot be an alias; choose another alias"
            )


def membership_id(conn: sa.Connection, collection_id: int, version_pk: int) -> int | None:
    found: int | None = conn.execute(
        sa.select(db.memberships.c.id).where(
            db.memberships.c.collection_id == collection_id, db.memberships.c.version_id == version_pk
        )
    ).scalar()
    return found


def membership_collections(conn: sa.Connection, version_pk: int) -> set[int]:
    """The collections version ``version_pk`` is a member of."""
    of_version = db.memberships.c.version_id == version_pk
    return set(conn.execute(sa.select(db.memberships.c.collection_id).where(of_version)).scalars())


def add(conn: sa.Connection, coll: Any, version_pk: int, now: datetime) -> int:
    """Give ``version_pk`` the locked collection's next index (then advance it); returns the membership."""
    added: int = conn.execute(
        sa.insert(db.memberships)
        .values(collection_id=coll.id, version_id=version_pk, version_index=coll.next_index, created_at=now)
        .returning(db.memberships.c.id)
    ).scalar_one()
    conn.execute(
        sa.update(db.collections)
        .where(db.collections.c.id == coll.id)
        .values(next_index=db.collections.c.next_index + 1, updated_at=now)
    )
    return added


def move_aliases(conn: sa.Connection, collection_id: int, membership: int, aliases: Sequence[str]) -> None:
    # One upsert both adds an alias and takes it from another member: the (collection_id, alias) primary
    # key guarantees it never names two members, and the caller holds the collection lock.
    if not aliases:
        return
    stmt = insert(conn, db.aliases).values(
        [{"collection_id": collection_id, "alias": alias, "membership_id": membership} for alias in aliases]
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[db.aliases.c.collection_id, db.aliases.c.alias],
            set_={"membership_id": stmt.excluded.membership_id},
        )
    )


def latest_to_newest(conn: sa.Connection, collection_id: int) -> None:
    """After a member holding "latest" left the collection, "latest" names the newest remaining one."""
    newest = conn.execute(
        sa.select(db.memberships.c.id)
        .where(db.memberships.c.collection_id == collection_id)
        .order_by(db.memberships.c.version_index.desc())
        .limit(1)
    ).scalar()
    if newest is not None:
        move_aliases(conn, collection_id, newest, ["latest"])


def alias_holders(conn: sa.Connection, collection_id: int, aliases: Iterable[str]) -> dict[str, Member]:
    """Which members of the (locked) collection hold ``aliases`` now; 'latest' is left out (no events)."""
    names = sorted({alias for alias in aliases if alias != "latest"})
    if not names:
        return {}
    rows = conn.execute(
        sa.select(db.aliases.c.alias, db.memberships.c.id, db.memberships.c.version_index, db.versions.c.public_id)
        .join(db.memberships, db.memberships.c.id == db.aliases.c.membership_id)
        .join(db.versions, db.versions.c.id == db.memberships.c.version_id)
        .where(db.aliases.c.collection_id == collection_id, db.aliases.c.alias.in_(names))
    )
    return {alias: Member(membership, index, public_id) for alias, membership, index, public_id in rows}


def where(conn: sa.Connection, collection_id: int) -> Where:
    """Collection ``collection_id`` as events name it."""
    row = conn.execute(
        sa.select(db.entities.c.name, db.projects.c.name, db.collections.c.name, db.collections.c.type)
        .join(db.projects, db.projects.c.id == db.collections.c.project_id)
        .join(db.entities, db.entities.c.id == db.projects.c.entity_id)
        .where(db.collections.c.id == collection_id)
    ).one()
    return Where(*row)


def member(conn: sa.Connection, membership: int) -> Member:
    """Membership ``membership`` as events name it."""
    index, public_id = conn.execute(
        sa.select(db.memberships.c.version_index, db.versions.c.public_id)
        .join(db.versions, db.versions.c.id == db.memberships.c.version_id)
        .where(db.memberships.c.id == membership)
    ).one()
    return Member(membership, index, public_id)
