"""The event feed, store side: events are appended inside the transaction of the change they report.

Why ids are assigned at the end of the transaction, under a lock
-----------------------------------------------------------------
A reader follows the feed with a cursor, "the last id I have seen", and asks for ``id > cursor``. That is
only sound if no event with a smaller id can become visible after a larger one was read (docs/architecture.md invariant
5). SQLite guarantees it for free: write transactions begin with ``BEGIN IMMEDIATE``, so writers run one at
a time and commit in the order they started. PostgreSQL does not: ids drawn from a sequence during the
transaction are handed out in *start* order, and a transaction that took id 7 may commit after one that
took id 8; a reader at cursor 8 would never see 7.

Two sound schemes were considered for PostgreSQL:

1. Record ``pg_current_xact_id()`` with every event and only hand out events whose transaction is older
   than the reader snapshot's ``xmin`` (ordering by (xid, id)). No writer ever waits for another, but the
   feed stalls behind the oldest running transaction *of the whole server* (xids are cluster-wide): one
   session idle in a transaction, a stuck writer, or another application's long batch job on the same
   server, and every sensor stops seeing anything until it ends.
2. Assign ids from a counter at the very end of the writing transaction, under a lock held until COMMIT.
   PostgreSQL makes a transaction's effects visible before it releases its locks, so the next holder (and
   any snapshot that sees the next holder's rows) sees this one's: id order is commit order, and a plain
   ``id > cursor`` read is exact. The cost is a short serialisation point: event-writing transactions of
   one database commit one at a time (the lock is held for the final INSERT and the COMMIT itself). A
   stalled transaction holds it only if it stalls between those two statements.

We use (2): the feed is never held back by unrelated work, the cursor is one integer, SQLite and
PostgreSQL run the same code, and a registry's write rate (versions, links, alias moves; a few per second
even for a busy team) is far below what one commit at a time sustains. The lock is a transaction-scoped
advisory lock (per database; released at COMMIT/ROLLBACK, also when the client dies), and the id is
``max(id) + 1`` read after taking it, so ids are also gapless.

Measured cost (bench/bench_events.py, bench/README.md): because the lock is held through the COMMIT's WAL
flush, PostgreSQL cannot group the flushes of concurrent commits; on the 2-core test VM, 4 concurrent
writers reached about 30 commits/s with the feed against about 55 without it. If that ever matters, the
known way out keeps the cursor semantics and moves the wait to readers: writers take ids from a sequence
while holding a *shared* gate lock until COMMIT (no writer waits for another), and a reader takes the gate
*exclusively* for its two statements, which waits only for transactions that already drew ids.

How it is used: :meth:`Store._write` calls :func:`begin` when a write transaction starts and
:func:`flush` just before COMMIT; mutations call :func:`append` in between. A transaction that fails or is
rolled back never reaches :func:`flush`, so it leaves no event.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa

from wandb_dagster.store import schema as db
from wandb_dagster.store.filters import EVENT_FIELDS, prepare_connection, validate

# The event types live beside the events table (store/schema.py), where the filter engine reads them too;
# the feed's callers keep naming them through this module.
from wandb_dagster.store.schema import (  # noqa: F401
    ADD_ARTIFACT_ALIAS,
    ADD_ARTIFACT_TAG,
    CREATE_ARTIFACT,
    DELETE_ARTIFACT,
    EVENT_TYPES,
    LINK_ARTIFACT,
    REMOVE_ARTIFACT_ALIAS,
    REMOVE_ARTIFACT_TAG,
    RUN_STATE_CHANGE,
    UNLINK_ARTIFACT,
)

# pg_advisory_xact_lock key serialising the end of event-writing transactions ("wdevent" in ASCII).
# Advisory locks are per database, so workspaces sharing a server do not wait for each other.
EVENT_LOCK_KEY = 0x77646576656E74

# The per-transaction buffer lives in the connection's info dict under this key (begin() .. flush()).
_PENDING = "wandb_dagster.pending_events"


def begin(conn: sa.Connection) -> None:
    """Start buffering events for the write transaction that ``conn`` has just begun."""
    conn.info[_PENDING] = []


def discard(conn: sa.Connection) -> None:
    """Forget the buffer (the pooled connection outlives the transaction)."""
    conn.info.pop(_PENDING, None)


def append(
    conn: sa.Connection,
    type: str,
    *,
    created_at: datetime,
    entity: str,
    project: str,
    collection: str | None = None,
    collection_type: str | None = None,
    version_index: int | None = None,
    artifact_id: str | None = None,
    alias: str | None = None,
    tag: str | None = None,
    run_id: str | None = None,
    payload: dict[str, Any] | None = None,
) -> None:
    """Add an event to the current write transaction; it is written by :func:`flush` before COMMIT."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}; valid types: {list(EVENT_TYPES)}")
    pending = conn.info.get(_PENDING)
    if pending is None:
        # A mutation outside Store._write would commit its change without its event: refuse loudly.
        raise RuntimeError("events.append() called outside a Store write transaction (Store._write)")
    pending.append(
        {
            "type": type,
            "created_at": created_at,
            "entity": entity,
            "project": project,
            "collection": collection,
            "collection_type": collection_type,
            "version_index": version_index,
            "artifact_id": artifact_id,
            "alias": alias,
            "tag": tag,
            "run_id": run_id,
            "payload": payload or {},
        }
    )


def flush(conn: sa.Connection) -> None:
    """Write the buffered events with commit-ordered ids; call it last before COMMIT.

    PostgreSQL: take the feed lock first (held until COMMIT), then read the current ``max(id)`` and insert
    the events as ``max(id)`` plus 1, 2, ...: under READ COMMITTED each statement takes its snapshot when
    it starts, after the lock was granted, so the read sees the previous holder's events. SQLite: the write
    transaction already holds the database lock. Nothing is sent when the transaction produced no event.
    """
    pending = conn.info.pop(_PENDING, None)
    if not pending:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(EVENT_LOCK_KEY)))
    head = head_id(conn)
    # The same two statements every time (an INSERT with every value bound, executed for many rows), so
    # SQLAlchemy compiles them once: a multi-row VALUES built per transaction cost about 1 ms to compile,
    # paid by every commit of a version.
    conn.execute(_INSERT, [{"id": head + n, **row} for n, row in enumerate(pending, 1)])


_INSERT = sa.insert(db.events)
# Built once: constructing a statement and its cache key costs more than SQLite's index seek.
_HEAD = sa.select(sa.func.coalesce(sa.func.max(db.events.c.id), 0))


def head_id(conn: sa.Connection) -> int:
    """The id of the newest committed event visible to ``conn`` (0 for an empty feed). An index seek."""
    return int(conn.execute(_HEAD).scalar_one())


# With a filter, one read examines at most this many events past the cursor (ids are dense, so it is a
# bounded index range) and reports the end of what it examined: a selective filter far behind the head
# costs several quick calls instead of one long scan.
_SCAN_WINDOW = 50_000


@dataclasses.dataclass(frozen=True)
class FeedRead:
    """What :func:`read` saw: ``rows`` (events table rows, oldest first), ``examined`` (every event up to
    this id was looked at, matching or not), and ``head`` (the newest committed event when the read began)."""

    rows: list[Any]
    examined: int
    head: int


def read(
    store: Any,
    *,
    after_id: int,
    filter: Mapping[str, Any] | None,
    types: Sequence[str] | None,
    limit: int,
) -> FeedRead:
    """Up to ``limit`` events after ``after_id`` matching the filter document ``filter`` (fields:
    :data:`~wandb_dagster.store.filters.EVENT_FIELDS`) and of one of ``types`` (None: all), oldest first.

    When ``after_id`` is past the head (a cursor of another feed), nothing is read: ``examined`` is
    ``after_id`` and the caller compares it with ``head``.
    """
    checked = None if filter is None else validate(filter, EVENT_FIELDS)  # errors before any database work
    with _autocommit(store) as conn:
        # The head first: ids are commit-ordered, so every event up to it is committed and visible to the
        # next statement, whatever the isolation level; reading the head after the page could step over
        # an event committed in between.
        head = head_id(conn)
        if after_id > head:
            return FeedRead([], after_id, head)
        filtered = bool(filter) or types is not None
        upto = min(head, after_id + _SCAN_WINDOW) if filtered else head
        rows = []
        if upto > after_id:  # (a poll at the head, the common case, compiles nothing)
            where = [checked.compile(conn.dialect.name)] if checked is not None and filter else []
            if types is not None:
                where.append(db.events.c.type.in_(list(types)))
            prepare_connection(conn)
            rows = page(conn, after_id, upto, where, limit)
    # A filtered reader moves past the non-matching events it examined; a full page stops at its last row.
    examined = rows[-1].id if len(rows) == limit else upto
    return FeedRead(rows, examined, head)


def newest(
    store: Any, *, filter: Mapping[str, Any] | None, types: Sequence[str] | None, limit: int
) -> list[Any]:
    """The newest ``limit`` events matching ``filter`` and ``types``, newest first (a history page: "the
    last 100 moves of this alias"). Reads back from the head one ``_SCAN_WINDOW`` of ids at a time and stops
    as soon as it has ``limit``, so a recent history costs one bounded index range, however long the feed.
    """
    checked = None if filter is None else validate(filter, EVENT_FIELDS)
    found: list[Any] = []
    with _autocommit(store) as conn:
        upto = head_id(conn)
        where = [checked.compile(conn.dialect.name)] if checked is not None and filter else []
        if types is not None:
            where.append(db.events.c.type.in_(list(types)))
        prepare_connection(conn)
        while upto > 0 and len(found) < limit:
            after = max(upto - _SCAN_WINDOW, 0)
            found += conn.execute(
                sa.select(db.events)
                .where(db.events.c.id > after, db.events.c.id <= upto, *where)
                .order_by(db.events.c.id.desc())
                .limit(limit - len(found))
            ).all()
            upto = after
    return found


def head(store: Any) -> int:
    """The id of the newest committed event of ``store``'s feed (0 for an empty feed)."""
    with _autocommit(store) as conn:
        return head_id(conn)


@contextlib.contextmanager
def _autocommit(store: Any) -> Iterator[sa.Connection]:
    # Reads need no transaction (ids are commit-ordered, see read); without one, PostgreSQL is spared the
    # BEGIN and ROLLBACK round trips, half the cost of a poll that finds nothing new. Not on SQLite: there,
    # leaving AUTOCOMMIT would hand pysqlite back its own BEGIN handling, which the store's engine switches
    # off (store/engine.py), and a local read transaction costs nothing.
    with store._engine.connect() as conn:
        yield conn.execution_options(isolation_level="AUTOCOMMIT") if conn.dialect.name == "postgresql" else conn


def page(
    conn: sa.Connection, after_id: int, upto_id: int, where: list[Any], limit: int
) -> list[sa.Row[Any]]:
    """Events with ``after_id < id <= upto_id`` matching ``where`` (SQL expressions), oldest first."""
    return list(
        conn.execute(
            sa.select(db.events)
            .where(db.events.c.id > after_id, db.events.c.id <= upto_id, *where)
            .order_by(db.events.c.id)
            .limit(limit)
        )
    )


# ---------------------------------------------------------------------- building the rows mutations append
# The store's mutations (store/versions.py, store/links.py, store/runs.py) describe what changed with these;
# they only build rows for append(), so the rows land in the mutation's own transaction.



class Where(NamedTuple):
    """The collection an event is about."""

    entity: str
    project: str
    collection: str
    type: str


@dataclasses.dataclass(frozen=True)
class Member:
    """A member of a collection, as events name it: index (``vN``) and the version's public id."""

    membership_id: int
    index: int
    public_id: str


def about(conn: sa.Connection, type: str, where: Where, member: Member | None, now: datetime, **fields: Any) -> None:
    """Append a ``type`` event about ``member`` of collection ``where`` to this transaction."""
    append(
        conn,
        type,
        created_at=now,
        entity=where.entity,
        project=where.project,
        collection=where.collection,
        collection_type=where.type,
        version_index=None if member is None else member.index,
        artifact_id=None if member is None else member.public_id,
        **fields,
    )


def alias_moves(
    conn: sa.Connection,
    where: Where,
    member: Member,
    aliases: Iterable[str],
    before: dict[str, Member],
    run_id: str | None,
    now: datetime,
) -> None:
    """Events for moving ``aliases`` to ``member``, given their holders ``before`` (links.alias_holders).

    An alias the member already holds changes nothing; one held by another member moves: REMOVE on the
    old holder, then ADD with ``previous_version``. 'latest' is implicit and never reported.
    """
    for alias in aliases:
        held = before.get(alias)
        if alias == "latest" or (held is not None and held.membership_id == member.membership_id):
            continue
        payload = {}
        if held is not None:
            about(
                conn, REMOVE_ARTIFACT_ALIAS, where, held, now, alias=alias, run_id=run_id,
                payload={"moved_to": f"v{member.index}"},
            )
            payload = {"previous_version": f"v{held.index}"}
        about(conn, ADD_ARTIFACT_ALIAS, where, member, now, alias=alias, run_id=run_id, payload=payload)


def alias_diff(
    conn: sa.Connection,
    where: Where,
    before: dict[str, Member],
    after: dict[str, Member],
    run_id: str | None,
    now: datetime,
) -> None:
    """Events for every alias whose holder differs between two links.alias_holders snapshots."""
    for alias in sorted(set(before) | set(after)):
        old, new = before.get(alias), after.get(alias)
        if old == new:
            continue
        if old is not None:
            payload = {} if new is None else {"moved_to": f"v{new.index}"}
            about(conn, REMOVE_ARTIFACT_ALIAS, where, old, now, alias=alias, run_id=run_id, payload=payload)
        if new is not None:
            payload = {} if old is None else {"previous_version": f"v{old.index}"}
            about(conn, ADD_ARTIFACT_ALIAS, where, new, now, alias=alias, run_id=run_id, payload=payload)


def tag_diff(
    conn: sa.Connection, where: Where, member: Member, before: set[str], after: set[str], run_id: str | None,
    now: datetime,
) -> None:
    """REMOVE then ADD events for the tags that differ between ``before`` and ``after`` (sorted)."""
    for tag in sorted(before - after):
        about(conn, REMOVE_ARTIFACT_TAG, where, member, now, tag=tag, run_id=run_id)
    for tag in sorted(after - before):
        about(conn, ADD_ARTIFACT_TAG, where, member, now, tag=tag, run_id=run_id)


def run_state(
    conn: sa.Connection, entity: str, project: str, run_id: str, previous: str | None, state: str, now: datetime
) -> None:
    """A RUN_STATE_CHANGE event (``previous`` is None for a new run)."""
    append(
        conn,
        RUN_STATE_CHANGE,
        created_at=now,
        entity=entity,
        project=project,
        run_id=run_id,
        payload={"previous_state": previous, "state": state},
    )


class Removed(NamedTuple):
    """A membership a version deletion removes: where, which member, and whether it is the logged one."""

    where: Where
    member: Member
    source: bool
    aliases: Sequence[str]


def deletion(conn: sa.Connection, removed: Iterable[Removed], run_id: str | None, now: datetime) -> None:
    """Events of a version deletion: each membership's aliases go, then DELETE_ARTIFACT where it was
    logged and UNLINK_ARTIFACT (``{"reason": "deleted"}``) for each registry link."""
    for gone in removed:
        for alias in sorted(gone.aliases):
            about(conn, REMOVE_ARTIFACT_ALIAS, gone.where, gone.member, now, alias=alias, run_id=run_id)
        if gone.source:
            about(conn, DELETE_ARTIFACT, gone.where, gone.member, now, run_id=run_id)
        else:
            about(
                conn, UNLINK_ARTIFACT, gone.where, gone.member, now, run_id=run_id, payload={"reason": "deleted"}
            )
