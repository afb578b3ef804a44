"""Which blobs are in use, for a garbage collector that is safe while other processes log.

Four tables (migration 0010; the protocol is docs/architecture.md, "Garbage collection"), and what runs name:

- ``version_blobs``: the blobs each version names, written in the version's commit transaction;
- ``part_blobs``: the same for each part of a distributed artifact (``run.upsert_artifact``), written with
  the part; the ``finish_artifact`` commit that merges the part deletes them and writes the version's;
- ``blob_claims``: a writer's intent (a token per draft) to name a blob in a version it has not committed
  yet, taken before it relies on the blob being stored, and replaced by ``version_blobs`` (or
  ``part_blobs``) rows in the commit transaction; a claim older than :data:`CLAIM_TTL_S` (on the database's
  clock) no longer protects anything;
- ``blob_marks``: gc's record that a blob was unreferenced and unclaimed since ``marked_at``; gc deletes a
  marked blob only once the mark is older than its grace period, and then sets ``deleted_at`` so that a
  writer that found the blob stored just before knows to store it again;
- runs' blobs, live as long as the run: ``run_files`` rows (``run.save``, ``output.log``; digest in hex) and
  ``run_blobs`` rows (the media its history rows and summary name), each written in the transaction that
  writes what names the blob, replacing the writer's claim (:func:`check_and_release`) as a commit does.

Claims and gc's deletions exclude each other: a claim transaction holds PostgreSQL's advisory lock
:data:`GC_LOCK_KEY` shared, gc's delete transaction holds it exclusive (SQLite: every write transaction
holds the database write lock), and gc deletes the blobs from storage before it commits. So a writer's
claim is either seen by gc's re-check or committed after the blobs are gone, in which case the writer's
presence check (``BlobBackend.sync``) finds them missing and stores them again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from wandb_dagster.store import schema as db
from wandb_dagster.store.errors import BlobClaimLostError
from wandb_dagster.store.sql import insert, now

CLAIM_TTL_S = 24 * 3600
"""A claim protects its blobs this long after it was taken (or refreshed); a writer refreshes its claims when
it commits, so only a draft left uncommitted longer than this can find a blob it relied on collected."""

GC_LOCK_KEY = 0x77646763  # "wdgc": claims take it shared, gc's deletions exclusive (PostgreSQL)

_BATCH = 500  # hexes per statement: below SQLite's parameter limit, small enough for one PG round trip


def db_now(conn: sa.Connection) -> datetime:
    """The database's clock (PostgreSQL's ``clock_timestamp()``); SQLite's database is on this machine, so
    its clock is this machine's."""
    if conn.dialect.name == "postgresql":
        value: datetime = conn.execute(sa.select(sa.func.clock_timestamp())).scalar_one()
        return value
    return now()


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), _BATCH):
        yield items[i : i + _BATCH]


def _lock(conn: sa.Connection, exclusive: bool) -> None:
    if conn.dialect.name == "postgresql":
        fn = sa.func.pg_advisory_xact_lock if exclusive else sa.func.pg_advisory_xact_lock_shared
        conn.execute(sa.select(fn(GC_LOCK_KEY)))


def claim(conn: sa.Connection, token: str, hexes: Iterable[str]) -> set[str]:
    """Claim ``hexes`` for ``token`` (or refresh the claims); returns those gc deleted since it marked them,
    which the caller must store again before relying on them (docs/architecture.md, "Garbage collection")."""
    wanted = sorted(set(hexes))
    if not wanted:
        return set()
    _lock(conn, exclusive=False)
    at = db_now(conn)
    # A 10,000-file add_dir claims 10,000 blobs, at every log of it: the rows go to the driver's executemany
    # directly, with the timestamp converted once (SQLAlchemy's per-row parameter processing cost more than
    # the inserts themselves, and a multi-row VALUES more still to compile).
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    process = db.blob_claims.c.claimed_at.type.bind_processor(conn.dialect)
    claimed_at = process(at) if process is not None else at
    conn.exec_driver_sql(
        f"INSERT INTO blob_claims (token, hex, claimed_at) VALUES ({mark}, {mark}, {mark}) "
        "ON CONFLICT (token, hex) DO UPDATE SET claimed_at = excluded.claimed_at",
        [(token, h, claimed_at) for h in wanted],
    )
    # The marks among this token's claims, in one statement that joins on the claims just written instead
    # of IN lists of 10,000 hexes (whose expansion cost more than the lookups). The token's earlier claims
    # come too; a deletion record among them is not news to this call, so only ``wanted``'s are returned.
    m, c = db.blob_marks.c, db.blob_claims.c
    rows = conn.execute(
        sa.select(m.hex, m.deleted_at).join_from(db.blob_claims, db.blob_marks, m.hex == c.hex).where(c.token == token)
    ).all()
    if not rows:
        return set()  # the usual case: no mark among them
    wanted_set = set(wanted)
    deleted: set[str] = set()
    pending: list[str] = []
    for h, deleted_at in rows:
        # A deletion record stays until it expires: every writer that found the blob stored before gc
        # deleted it must hear of the deletion at its own claim. Consumed by the first claimer, it left a
        # second one relying on a blob the first had not stored again yet (seen as a refused log under
        # load, S3 + PostgreSQL, tests/sdk/test_gc_concurrency.py).
        if deleted_at is None:
            pending.append(h)
        elif h in wanted_set:
            deleted.add(h)
    for part in _chunks(sorted(pending)):
        # A claimed blob is in use again: its pending mark goes (a later gc starts its grace period afresh).
        conn.execute(sa.delete(db.blob_marks).where(m.hex.in_(part), m.deleted_at.is_(None)))
    return deleted


def check_and_release(conn: sa.Connection, token: str, hexes: Iterable[str]) -> None:
    """Inside a version's commit transaction: every blob it names must still be claimed by ``token`` (a live
    claim was seen by any gc that ran since it was taken), else :class:`BlobClaimLostError`. Then the
    token's claims go; the version's ``version_blobs`` rows replace them in the same transaction."""
    wanted = set(hexes)
    c = db.blob_claims.c
    cutoff = db_now(conn) - timedelta(seconds=CLAIM_TTL_S)
    # All the token's live claims in one statement (its primary key's prefix), compared here: cheaper than
    # IN lists over 10,000 hexes, and a draft's token claims little beyond what it names.
    held = set(conn.execute(sa.select(c.hex).where(c.token == token, c.claimed_at > cutoff)).scalars())
    lost = wanted - held
    if lost:
        raise BlobClaimLostError(sorted(lost))
    conn.execute(sa.delete(db.blob_claims).where(c.token == token))


def record(conn: sa.Connection, version_pk: int, hexes: Iterable[str]) -> None:
    """The blobs a new version names (in its commit transaction)."""
    rows = [{"hex": h, "version_id": version_pk} for h in sorted(set(hexes))]
    for i in range(0, len(rows), _BATCH):
        conn.execute(sa.insert(db.version_blobs), rows[i : i + _BATCH])


def record_part(conn: sa.Connection, part_pk: int, hexes: Iterable[str]) -> None:
    """The blobs a new distributed-artifact part names (in the transaction that adds it)."""
    rows = [{"hex": h, "part_id": part_pk} for h in sorted(set(hexes))]
    for i in range(0, len(rows), _BATCH):
        conn.execute(sa.insert(db.part_blobs), rows[i : i + _BATCH])


def record_run(conn: sa.Connection, run_pk: int, hexes: Iterable[str]) -> None:
    """The media blobs a run's new history rows or summary name (in the transaction that writes them); a blob
    the run named before keeps its one row."""
    rows = [{"run_pk": run_pk, "hex": h} for h in sorted(set(hexes))]
    for i in range(0, len(rows), _BATCH):
        conn.execute(insert(conn, db.run_blobs).on_conflict_do_nothing(), rows[i : i + _BATCH])


def forget_parts(conn: sa.Connection, part_pks: Any) -> None:
    """Before parts are deleted (merged by a finish, or their collection deleted): their blob rows. ``part_pks``:
    a list or a subquery of ``artifact_parts.id``."""
    conn.execute(sa.delete(db.part_blobs).where(db.part_blobs.c.part_id.in_(part_pks)))


def forget_versions(conn: sa.Connection, version_pks: Any) -> None:
    """Before version rows are deleted (their collection deleted): their blob rows; the blobs become
    garbage for the next gc unless something else names them."""
    conn.execute(sa.delete(db.version_blobs).where(db.version_blobs.c.version_id.in_(version_pks)))


def referenced(conn: sa.Connection) -> set[str]:
    """Every blob a committed version, a pending distributed-artifact part or a run (its files, its media)
    names."""
    vb, v = db.version_blobs.c, db.versions.c
    query = sa.select(vb.hex).distinct().join_from(db.version_blobs, db.versions, v.id == vb.version_id)
    out = set(conn.execute(query.where(v.state == "COMMITTED")).scalars())
    out.update(conn.execute(sa.select(db.part_blobs.c.hex).distinct()).scalars())
    out.update(conn.execute(sa.select(db.run_files.c.digest).distinct()).scalars())
    out.update(conn.execute(sa.select(db.run_blobs.c.hex).distinct()).scalars())
    return out


def claimed(conn: sa.Connection) -> set[str]:
    """Every blob a live claim names."""
    c = db.blob_claims.c
    cutoff = db_now(conn) - timedelta(seconds=CLAIM_TTL_S)
    return set(conn.execute(sa.select(c.hex).distinct().where(c.claimed_at > cutoff)).scalars())


def marks(conn: sa.Connection) -> dict[str, tuple[datetime, datetime | None]]:
    """hex -> (marked_at, deleted_at) of every mark."""
    m = db.blob_marks.c
    return {h: (at, gone) for h, at, gone in conn.execute(sa.select(m.hex, m.marked_at, m.deleted_at))}


def _unprotected(conn: sa.Connection, hexes: Sequence[str]) -> Any:
    """``blob_marks`` rows among ``hexes`` that no live claim, no committed version, no pending part and no run
    (a ``run_files`` or ``run_blobs`` row) names (one statement, so one snapshot: a commit that swaps a claim or
    ``part_blobs`` rows for ``version_blobs`` rows, or a run's write that swaps a claim for its rows, is seen
    before or after)."""
    m, c, vb, v, pb = db.blob_marks.c, db.blob_claims.c, db.version_blobs.c, db.versions.c, db.part_blobs.c
    rf, rb = db.run_files.c, db.run_blobs.c
    cutoff_claim = db_now(conn) - timedelta(seconds=CLAIM_TTL_S)
    live_claim = sa.exists().where(c.hex == m.hex, c.claimed_at > cutoff_claim)
    in_use = (
        sa.exists()
        .where(vb.hex == m.hex)
        .where(v.id == vb.version_id, v.state == "COMMITTED")
    )
    in_part = sa.exists().where(pb.hex == m.hex)
    # run_files.digest and run_blobs.hex are MD5 hex, as version_blobs.hex (not the manifests' base64).
    in_run = sa.or_(sa.exists().where(rf.digest == m.hex), sa.exists().where(rb.hex == m.hex))
    return sa.and_(m.hex.in_(hexes), ~live_claim, ~in_use, ~in_part, ~in_run)


def mark(conn: sa.Connection, hexes: Iterable[str]) -> int:
    """Mark those of ``hexes`` that carry no mark yet, now (a ``deleted_at`` mark of a blob stored again
    starts afresh); returns how many were marked. The caller passes blobs it found unreferenced and
    unclaimed; one claimed meanwhile may still be marked, which is harmless: gc re-checks claims and
    references when it deletes, and the next gc drops the mark."""
    wanted = sorted(set(hexes))
    at = db_now(conn)
    m = db.blob_marks.c
    marked = 0
    for part in _chunks(wanted):
        conn.execute(sa.delete(db.blob_marks).where(m.hex.in_(part), m.deleted_at.is_not(None)))
        have = set(conn.execute(sa.select(m.hex).where(m.hex.in_(part))).scalars())
        fresh = [h for h in part if h not in have]
        if fresh:
            conn.execute(
                insert(conn, db.blob_marks).on_conflict_do_nothing(),
                [{"hex": h, "marked_at": at, "deleted_at": None} for h in fresh],
            )
            marked += len(fresh)
    return marked


def unmark(conn: sa.Connection, hexes: Iterable[str]) -> None:
    """Drop the marks (not yet acted on) of blobs that are in use again or no longer stored."""
    m = db.blob_marks.c
    for part in _chunks(sorted(set(hexes))):
        conn.execute(sa.delete(db.blob_marks).where(m.hex.in_(part), m.deleted_at.is_(None)))


def lock_for_delete(conn: sa.Connection, hexes: Sequence[str], grace_s: float) -> list[str]:
    """In gc's delete transaction: take the exclusive lock, and return those of ``hexes`` whose mark is
    older than ``grace_s`` and which nothing names or claims, re-checked now."""
    _lock(conn, exclusive=True)
    m = db.blob_marks.c
    cutoff = db_now(conn) - timedelta(seconds=grace_s)
    query = sa.select(m.hex).where(_unprotected(conn, hexes), m.deleted_at.is_(None), m.marked_at <= cutoff)
    return sorted(conn.execute(query).scalars())


def set_deleted(conn: sa.Connection, hexes: Sequence[str]) -> None:
    m = db.blob_marks.c
    at = db_now(conn)
    for part in _chunks(list(hexes)):
        conn.execute(sa.update(db.blob_marks).where(m.hex.in_(part)).values(deleted_at=at))


def expire(conn: sa.Connection) -> int:
    """Drop claims older than :data:`CLAIM_TTL_S` and deletion records as old (a writer that saw such a blob
    stored has since refreshed its claim and checked the blob, or gone); returns the claims dropped."""
    cutoff = db_now(conn) - timedelta(seconds=CLAIM_TTL_S)
    c, m = db.blob_claims.c, db.blob_marks.c
    dropped = conn.execute(sa.delete(db.blob_claims).where(c.claimed_at <= cutoff)).rowcount
    conn.execute(sa.delete(db.blob_marks).where(m.deleted_at.is_not(None), m.deleted_at <= cutoff))
    return int(dropped or 0)
