"""Event feed and version-creation benchmark (issue 4). Prints times and ratios measured in the same run;
not pass/fail.

    .venv/bin/python bench/bench_events.py                       # SQLite and PostgreSQL
    .venv/bin/python bench/bench_events.py --backends sqlite --events 100000 --versions 10000

1. Empty feed reads. ``read_events(store, after=<head cursor>)`` when nothing is new, with 10 events in the
   feed and again after the feed was filled to ``--events`` (1,000,000) realistic rows (bulk-inserted with
   consecutive ids, the same columns and payloads the store writes; PostgreSQL through COPY). Median and p95
   of ``--reads`` calls, unfiltered and with a ``types`` + ``filter`` (the sensor case). Goal: <= 5 ms
   whatever the feed's length.
2. Version creation through the real ``Store.commit_version`` (new content, aliases ``latest`` and a moving
   ``candidate``, a tag, a producer run: the SDK's common path, events included): ``--commits`` commits into
   a collection holding 10 versions in a fresh workspace, then into a collection into which
   ``--versions`` (100,000) versions were bulk-loaded (versions, memberships, tags, aliases,
   ``next_index`` exactly as commit_version writes them), in the workspace that also holds the 1,000,000
   events. Goal: the 100,000th costs what the 10th did. Every statement of one commit at 100,000 is then
   run through EXPLAIN (QUERY PLAN) and any full scan is printed.
3. PostgreSQL only: the feed's serialisation point (event ids are taken under a lock held until COMMIT;
   see wandb_dagster/store/events.py). ``--writers`` processes commit ``--commits`` versions each into
   their own collections, at the same time, vs one process alone: commits per second, with the feed and
   with the feed switched off in the writers (no events, no lock), in alternating rounds on a fresh
   database (``--only throughput`` runs just this part).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import secrets
import shutil
import statistics
import string
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import sqlalchemy as sa  # noqa: E402

from wandb_dagster.api.events import head_cursor, read_events  # noqa: E402
from wandb_dagster.store import Store  # noqa: E402
from wandb_dagster.store import events as store_events  # noqa: E402
from wandb_dagster.store import schema as db  # noqa: E402

POSTGRES_ADMIN_URL = os.environ.get("WANDB_DAGSTER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
ENTITY, PROJECT = "bench", "train"
_ALPHABET = string.ascii_lowercase + string.digits


def _public_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(16))


def _stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000


def _ms(samples: list[float]) -> str:
    median, p95 = _stats(samples)
    return f"median {median:7.3f} ms  p95 {p95:7.3f} ms"


# ---------------------------------------------------------------------------------------------- databases


class _Database:
    def __init__(self, backend: str, workdir: Path) -> None:
        self.backend = backend
        self._admin = None
        if backend == "sqlite":
            self.url = f"sqlite:///{workdir / 'store.db'}"
        else:
            import psycopg
            from psycopg import sql

            self._admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True)
            self._name = f"wdbench_{secrets.token_hex(5)}"
            self._admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self._name)))
            self.url = sa.make_url(POSTGRES_ADMIN_URL).set(database=self._name).render_as_string(hide_password=False)

    def drop(self) -> None:
        if self._admin is not None:
            from psycopg import sql

            self._admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self._name)))
            self._admin.close()


# ---------------------------------------------------------------------------------------------- bulk loads


_EVENT_COLUMNS = [c.name for c in db.events.columns]
_TYPES = ["CREATE_ARTIFACT", "ADD_ARTIFACT_ALIAS", "ADD_ARTIFACT_TAG", "LINK_ARTIFACT", "REMOVE_ARTIFACT_ALIAS",
          "RUN_STATE_CHANGE"]


def _event_rows(start_id: int, count: int) -> Any:
    now = datetime.now(timezone.utc)
    for i in range(count):
        event_id = start_id + i
        kind = _TYPES[event_id % len(_TYPES)]
        is_run = kind == "RUN_STATE_CHANGE"
        yield {
            "id": event_id,
            "type": kind,
            "created_at": now,
            "entity": ENTITY,
            "project": "wandb-registry-model" if kind == "LINK_ARTIFACT" else PROJECT,
            "collection": None if is_run else f"model-{event_id % 1000}",
            "collection_type": None if is_run else "model",
            "version_index": None if is_run else event_id // 1000,
            "artifact_id": None if is_run else f"{event_id:016x}",
            "alias": "candidate" if "ALIAS" in kind else None,
            "tag": "nlp" if "TAG" in kind else None,
            "run_id": f"run{event_id // 50:08d}",
            "payload": {"previous_state": "running", "state": "finished"} if is_run
            else {"digest": f"{event_id:032x}", "size": 1234, "file_count": 3} if kind == "CREATE_ARTIFACT" else {},
        }


def _fill_events(store: Store, total: int) -> float:
    """Append events until the feed holds ``total``; returns the seconds it took."""
    started = time.perf_counter()
    with store._engine.connect() as conn:
        head = store_events.head_id(conn)
    rows = _event_rows(head + 1, total - head)
    if store.dialect == "postgresql":
        raw = store._engine.raw_connection()
        try:
            cursor = raw.cursor()
            with cursor.copy(f"COPY events ({', '.join(_EVENT_COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([json.dumps(row[c]) if c == "payload" else row[c] for c in _EVENT_COLUMNS])
            raw.commit()
        finally:
            raw.close()
    else:
        batch: list[dict[str, Any]] = []
        with store._engine.begin() as conn:
            for row in rows:
                batch.append(row)
                if len(batch) == 50_000:
                    conn.execute(sa.insert(db.events), batch)
                    batch = []
            if batch:
                conn.execute(sa.insert(db.events), batch)
    return time.perf_counter() - started


def _bulk_versions(store: Store, collection: str, count: int, run_pk: int) -> float:
    """Load ``count`` versions into a new collection as commit_version writes them (without events)."""
    started = time.perf_counter()
    now = datetime.now(timezone.utc)
    # One real commit creates the collection (and project) the way the store does.
    _commit(store, collection, "seed", run_pk)
    with store._engine.begin() as conn:
        coll_id = conn.execute(sa.select(db.collections.c.id).where(db.collections.c.name == collection)).scalar_one()
        first_version = conn.execute(sa.select(sa.func.max(db.versions.c.id))).scalar_one() + 1
        first_membership = conn.execute(sa.select(sa.func.max(db.memberships.c.id))).scalar_one() + 1
        chunk = 20_000
        for start in range(1, count, chunk):
            n = min(chunk, count - start)
            ids = range(first_version + start - 1, first_version + start - 1 + n)
            conn.execute(sa.insert(db.versions), [
                {"id": vid, "public_id": _public_id(), "source_collection_id": coll_id, "digest": f"bulk{vid:012d}",
                 "size": 4096, "file_count": 2, "metadata": {"acc": (vid % 100) / 100, "epochs": vid % 7},
                 "description": None, "state": "COMMITTED", "created_by_run_pk": run_pk, "created_at": now,
                 "updated_at": now, "manifest": '{"version": 1, "contents": {}}'} for vid in ids
            ])
            conn.execute(sa.insert(db.memberships), [
                {"id": first_membership + start - 1 + k, "collection_id": coll_id, "version_id": vid,
                 "version_index": start + k, "created_at": now} for k, vid in enumerate(ids)
            ])
            conn.execute(sa.insert(db.version_tags), [{"version_id": vid, "tag": f"t{vid % 5}"} for vid in ids])
            conn.execute(sa.insert(db.run_artifacts), [
                {"run_pk": run_pk, "version_id": vid, "direction": "output"} for vid in ids
            ])
        last_membership = first_membership + count - 2
        # 'latest' and 'candidate' name the newest member, as after `count` real commits.
        conn.execute(
            sa.update(db.aliases)
            .where(db.aliases.c.collection_id == coll_id, db.aliases.c.alias.in_(["latest", "candidate"]))
            .values(membership_id=last_membership)
        )
        conn.execute(sa.update(db.collections).where(db.collections.c.id == coll_id).values(next_index=count))
        if store.dialect == "postgresql":
            # Explicit ids do not advance the serial sequences; the next real commit must not collide.
            for table in ("versions", "memberships"):
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
                )
    if store.dialect == "postgresql":
        with store._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    return time.perf_counter() - started


def _commit(store: Store, collection: str, digest: str, run_pk: int) -> Any:
    return store.commit_version(
        ENTITY, PROJECT, collection, "model", digest=digest, manifest='{"version": 1, "contents": {}}', size=4096,
        file_count=2, metadata={"acc": 0.5}, description=None, aliases=["latest", "candidate"], tags=["bench"],
        run_pk=run_pk,
    )


def _time_commits(store: Store, collection: str, count: int, run_pk: int, label: str) -> list[float]:
    samples = []
    for i in range(count):
        started = time.perf_counter()
        _commit(store, collection, f"{label}-{i}-{secrets.token_hex(4)}", run_pk)
        samples.append(time.perf_counter() - started)
    return samples


def _head_plan(store: Store) -> str:
    """How the database answers "newest event id?" (the whole of an empty read), and its own time for it."""
    with store._engine.connect() as conn:
        if store.dialect == "sqlite":
            plan = [str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN SELECT max(id) FROM events")]
            return "; ".join(plan)
        rows = [r[0] for r in conn.exec_driver_sql("EXPLAIN (ANALYZE, COSTS OFF) SELECT max(id) FROM events")]
        return "; ".join(r.strip() for r in rows if "Scan" in r or "Execution Time" in r)


def _full_scans(store: Store, collection: str, run_pk: int) -> list[str]:
    """Run every statement of one commit through EXPLAIN; return the plans that read a whole table."""
    statements: list[tuple[str, Any]] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        # An executemany statement (the feed's INSERT) is explained with its first row's values.
        statements.append((statement, parameters[0] if executemany else parameters))

    sa.event.listen(store._engine, "before_cursor_execute", record)
    try:
        _commit(store, collection, f"explain-{secrets.token_hex(4)}", run_pk)
    finally:
        sa.event.remove(store._engine, "before_cursor_execute", record)
    scans = []
    with store._engine.connect() as conn:
        for statement, parameters in statements:
            head = statement.lstrip().split(None, 1)[0].upper()
            if head not in ("SELECT", "INSERT", "UPDATE", "DELETE"):
                continue
            if store.dialect == "sqlite":
                rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
                plan = [str(row[-1]) for row in rows]
                bad = [p for p in plan if p.startswith("SCAN") and "CONSTANT ROW" not in p]
            else:
                # Tiny tables (one entity, a few runs) are seq-scanned by choice; with seq scans priced out,
                # a Seq Scan left in a plan is one no index can serve.
                conn.exec_driver_sql("SET enable_seqscan = off")
                rows = conn.exec_driver_sql("EXPLAIN " + statement, parameters).all()
                plan = [row[0] for row in rows]
                bad = [p for p in plan if "Seq Scan" in p]
            if bad:
                scans.append(f"{' '.join(statement.split())[:110]} -> {bad}")
        conn.rollback()
    return scans


# ---------------------------------------------------------------------------------------------- serialisation


def _writer(url: str, worker: int, count: int, feed: bool, barrier: Any, results: Any) -> None:
    if not feed:
        # Baseline: the same commits without the event feed (no events, no feed lock).
        store_events.flush = store_events.discard
    store = Store.open(url, storage_root="unused")
    run = store.create_run(ENTITY, PROJECT, f"writer{worker}-{secrets.token_hex(3)}")
    _commit(store, f"par-{worker}", "warm", run.pk)
    barrier.wait(120)
    started = time.perf_counter()
    for i in range(count):
        _commit(store, f"par-{worker}", f"p{worker}-{i}-{secrets.token_hex(4)}", run.pk)
    results.put(time.perf_counter() - started)
    store.close()


def _parallel_throughput(url: str, writers: int, count: int, feed: bool) -> float:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(writers + 1), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(url, w, count, feed, barrier, results)) for w in range(writers)]
    for p in procs:
        p.start()
    barrier.wait(300)
    started = time.perf_counter()
    for _ in procs:
        results.get(timeout=600)
    elapsed = time.perf_counter() - started
    for p in procs:
        p.join(60)
    return writers * count / elapsed


# ---------------------------------------------------------------------------------------------- main


def _read_samples(store: Store, reads: int, **kwargs: Any) -> list[float]:
    cursor = head_cursor(store)
    samples = []
    for _ in range(reads):
        started = time.perf_counter()
        page = read_events(store, after=cursor, **kwargs)
        samples.append(time.perf_counter() - started)
        assert not list(page) and page.cursor == cursor
    return samples


def bench_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-events-{backend}-"))
    database = _Database(backend, workdir)
    out: dict[str, Any] = {}
    sensor = {"types": ["ADD_ARTIFACT_ALIAS", "LINK_ARTIFACT"], "filter": {"project": "wandb-registry-model"}}
    try:
        store = Store.open(database.url, storage_root=str(workdir / "blobs"))
        run = store.create_run(ENTITY, PROJECT, "bench-run")
        print(f"\n== {backend} ==", flush=True)

        # 2a. Version creation at 10 versions, fresh workspace.
        for i in range(10):
            _commit(store, "small-fresh", f"s{i}", run.pk)
        small_fresh = _time_commits(store, "small-fresh", args.commits, run.pk, "sf")
        print(f"commit at 10 versions, fresh workspace:          {_ms(small_fresh)}", flush=True)

        # 1a. Empty reads, short feed.
        with store._engine.connect() as conn:
            short_feed = store_events.head_id(conn)
        short = _read_samples(store, args.reads)
        short_f = _read_samples(store, args.reads, **sensor)
        print(f"empty read, {short_feed:>9,} events:               {_ms(short)}", flush=True)
        print(f"  same, sensor types+filter:                     {_ms(short_f)}", flush=True)

        # Fill.
        seconds = _fill_events(store, args.events)
        print(f"bulk-filled the feed to {args.events:,} events in {seconds:.1f} s", flush=True)
        seconds = _bulk_versions(store, "big", args.versions, run.pk)
        print(f"bulk-loaded {args.versions:,} versions into one collection in {seconds:.1f} s", flush=True)

        # 1b. Empty reads, long feed.
        with store._engine.connect() as conn:
            long_feed = store_events.head_id(conn)
        long = _read_samples(store, args.reads)
        long_f = _read_samples(store, args.reads, **sensor)
        print(f"empty read, {long_feed:>9,} events:               {_ms(long)}", flush=True)
        print(f"  same, sensor types+filter:                     {_ms(long_f)}", flush=True)
        print(f"  ratio long/short feed (median):                {_stats(long)[0] / _stats(short)[0]:.2f}x", flush=True)
        print(f"  the head query in the database: {_head_plan(store)}", flush=True)

        # 2b. Version creation at 100,000 versions (and at 10, in the same big workspace).
        # Alternating between the two collections, so that the machine's noise falls on both alike.
        for i in range(10):
            _commit(store, "small-big-ws", f"sb{i}", run.pk)
        big, small_big = [], []
        for i in range(args.commits):
            big += _time_commits(store, "big", 1, run.pk, f"b{i}")
            small_big += _time_commits(store, "small-big-ws", 1, run.pk, f"sb{i}")
        print(f"commit at {args.versions:,} versions:                  {_ms(big)}", flush=True)
        print(f"commit at 10 versions, same big workspace:       {_ms(small_big)}", flush=True)
        fresh_ratio, same_ratio = _stats(big)[0] / _stats(small_fresh)[0], _stats(big)[0] / _stats(small_big)[0]
        print(f"  ratio {args.versions:,} / 10 (median, fresh):        {fresh_ratio:.2f}x", flush=True)
        print(f"  ratio {args.versions:,} / 10 (median, same ws):      {same_ratio:.2f}x", flush=True)
        scans = _full_scans(store, "big", run.pk)
        print(f"full scans among one commit's statements at {args.versions:,}: {scans or 'none'}", flush=True)

        out.update(short=short, long=long, short_f=short_f, long_f=long_f, small_fresh=small_fresh, big=big,
                   small_big=small_big, scans=scans, feed=long_feed)
        store.close()

    finally:
        database.drop()
        shutil.rmtree(workdir, ignore_errors=True)
    return out


def bench_throughput(args: argparse.Namespace) -> None:
    """Part 3, on a fresh PostgreSQL database: rounds alternate feed on / off so that background work
    (checkpoints, autovacuum, other processes) falls on both alike."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-events-throughput-"))
    database = _Database("postgresql", workdir)
    try:
        Store.open(database.url, storage_root="unused").close()
        print(f"\n== postgresql: commits/s, 1 writer vs {args.writers} writers into their own collections ==")
        for round_ in range(args.rounds):
            for feed in (True, False):
                one = _parallel_throughput(database.url, 1, args.commits, feed)
                many = _parallel_throughput(database.url, args.writers, args.commits, feed)
                label = "with the event feed " if feed else "without events      "
                print(f"round {round_ + 1} {label}: 1 writer {one:6.1f}/s; {args.writers} writers {many:6.1f}/s "
                      f"({many / one:.2f}x)", flush=True)
    finally:
        database.drop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--reads", type=int, default=500)
    parser.add_argument("--commits", type=int, default=100)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the throughput comparison (part 3)")
    parser.add_argument("--only", choices=["reads-and-commits", "throughput"], default=None)
    args = parser.parse_args()
    print(f"bench_events: {args.events:,} events, {args.versions:,} versions, {args.reads} reads, "
          f"{args.commits} commits per measurement; {os.cpu_count()} CPUs", flush=True)
    if args.only != "throughput":
        for backend in args.backends:
            bench_backend(backend, args)
    if args.only != "reads-and-commits" and "postgresql" in args.backends and args.writers > 1:
        bench_throughput(args)


if __name__ == "__main__":
    main()
