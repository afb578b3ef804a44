"""SQLAlchemy engines configured for the store: SQLite (embedded) and PostgreSQL via psycopg 3.

SQLite: every connection uses WAL (readers never block the one writer), waits up to
:func:`lock_timeout_s` for locks instead of failing with "database is locked", enforces foreign
keys, and fsyncs each commit (``synchronous=FULL``): a version the caller was told about survives a power
cut, so its index is never handed out twice. pysqlite's own transaction handling is switched off and
SQLAlchemy emits BEGIN itself (the recipe in SQLAlchemy's SQLite dialect documentation), so that a write
transaction can start with ``BEGIN IMMEDIATE``: it takes the database write lock up front, which serialises
writers across processes and avoids the deadlock of two readers both trying to upgrade to writers.

Why not ``synchronous=NORMAL`` for everything (it skips the WAL fsync at COMMIT; the database stays
consistent, but a power cut or OS crash, not an application crash, may roll back the last commits): blobs
are synced before the version that names them commits, so a lost commit only ever loses a whole version,
never leaves one without its blobs (invariant 1 would hold). But a commit the caller was told about could
vanish and its numbers be handed out again: an index ``vN`` someone recorded (a Dagster materialization)
would name other content after the restart (invariants 2 and 4), and an event id a sensor's cursor has
passed would be reused by a new event the sensor then never sees (invariant 5). So every transaction stays
FULL unless its writer opts in with :func:`relaxed_write_engine`: a running run's own bookkeeping (history,
summary, heartbeat, input lineage), which carries no event (Store refuses events there). In WAL mode a
later FULL commit, by any transaction of any process, fsyncs the log and with it every frame before it, so
such a commit is lost only if the power fails before the next durable commit (the run's finish is one) and
before the kernel's own writeback (about 30 s): what a W&B user expects to lose from a run that crashed.

PostgreSQL: ``postgresql://`` selects psycopg 3. Every session sets ``lock_timeout`` to the same
:func:`lock_timeout_s`, so a writer blocked by another session's transaction (an open ``UPDATE`` of the same
collection, ``LOCK TABLE``) gives up after a bounded wait instead of waiting forever; Store turns either
backend's give-up into :class:`~wandb_dagster.store.errors.DatabaseBusyError` (docs/architecture.md,
"Concurrency and crash guarantees"). The pool is small because every process of a pipeline
(many Dagster steps on many machines) holds its own, and connections are checked before use because a
client library sits idle for long stretches (a training epoch) while firewalls drop idle connections.
"""

from __future__ import annotations

import decimal
import json
import os
import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine
from sqlalchemy.pool import StaticPool

from wandb_dagster.storage.uri_credentials import redact
from wandb_dagster.store.sql import display_url

# How long a statement waits for a lock another process holds before it fails, on both backends. Long,
# because writers queue behind each other's commits (a large version's commit takes seconds under load);
# bounded, because a process that holds a transaction open (a stuck client, a forgotten psql session)
# must produce an error naming the database, not a hang. WANDB_DAGSTER_LOCK_TIMEOUT (seconds) overrides it.
DEFAULT_LOCK_TIMEOUT_S = 120.0
LOCK_TIMEOUT_ENV = "WANDB_DAGSTER_LOCK_TIMEOUT"


def lock_timeout_s() -> float:
    """The lock wait in seconds: ``$WANDB_DAGSTER_LOCK_TIMEOUT`` if set, else :data:`DEFAULT_LOCK_TIMEOUT_S`."""
    raw = os.environ.get(LOCK_TIMEOUT_ENV)
    if raw is None or raw.strip() == "":
        return DEFAULT_LOCK_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 86_400:
        raise ValueError(
            f"{LOCK_TIMEOUT_ENV}={raw!r} is not a lock wait in seconds: set it to a number in (0, 86400] "
            f"or unset it for the default of {DEFAULT_LOCK_TIMEOUT_S:g} s"
        )
    return value

# Execution option selecting how an SQLite transaction begins; see write_engine().
_BEGIN_OPTION = "wandb_dagster_sqlite_begin"
# Execution option selecting the transaction's PRAGMA synchronous level; see relaxed_write_engine(). Also the
# key under which a connection remembers its current level (SQLite refuses to change it inside a transaction,
# so it is set before BEGIN, and only when it differs).
_SYNC_OPTION = "wandb_dagster_sqlite_synchronous"


def make_url(url: str | URL) -> URL:
    """Parse ``url``, mapping plain ``postgresql://`` (and ``postgres://``) to the psycopg 3 driver."""
    try:
        parsed = sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError) as exc:
        # SQLAlchemy says only "Could not parse" (or quotes the bad port): name the URL, its password hidden.
        raise ValueError(
            f"database URL {display_url(url)!r} cannot be parsed ({redact(str(exc))}); use "
            "'sqlite:////absolute/path/store.db' or 'postgresql://user:password@host:port/dbname', with '@', ':' "
            "and '/' in the password percent-encoded"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(
            f"unsupported database URL {display_url(parsed)!r}: "
            "use 'sqlite:////absolute/path/store.db' or 'postgresql://user@host/dbname'"
        )
    return parsed


def sqlite_path(url: URL) -> Path | None:
    """The database file of an SQLite URL, or None for an in-memory database."""
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


# A JSON string, or a number in exponent notation with a positive exponent (how Python writes 1e16 and up).
_STRING_OR_BIG_FLOAT = re.compile(r'"(?:[^"\\]|\\.)*"|(-?[0-9]+(?:\.[0-9]+)?e\+[0-9]+)')


def _fixed_point(match: re.Match[str]) -> str:
    number = match.group(1)
    if number is None:
        return match.group(0)  # a string: unchanged
    # The same value, exactly (Decimal of the shortest repr), written with a fraction so that it reads back
    # as a float: see json_dumps.
    return f"{decimal.Decimal(number):f}.0"


def json_dumps(value: Any) -> str:
    """The JSON text the store writes: strict, compact, and with floats that come back as floats.

    PostgreSQL's ``jsonb`` (``versions.metadata``) keeps numbers as ``numeric`` and prints them in plain
    notation, keeping only the digits after the point that were written: ``1e308`` came back as a 309-digit
    integer, so ``json.loads`` returned an ``int``. Floats that Python writes with a positive exponent are
    therefore written in fixed point with a fraction (``1e+20`` -> ``100000000000000000000.0``), the same
    value; other floats already carry a point or a negative exponent, which jsonb prints with a fraction.
    Done for every JSON column on both backends, so the stored text is the same everywhere.
    """
    # Strict JSON on both backends: PostgreSQL's json type refuses NaN/Infinity, so SQLite must too, or the
    # same code would work on a laptop and fail in the team's database.
    try:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise type(exc)(
            f"{exc}; the store keeps strict JSON: convert values to str, int, float, bool, None, list or dict "
            "(NaN and Infinity included) before storing them"
        ) from None
    if "e+" in text:  # rare: only then is the text scanned (a string that holds "e+" is left as it is)
        text = _STRING_OR_BIG_FLOAT.sub(_fixed_point, text)
    return text


def sqlite_read_only(path: Path) -> bool:
    """Whether this process may only read the existing SQLite database ``path``: SQLite needs to write the
    file and to create its ``-wal``/``-shm`` files beside it, so a folder without write permission (another
    user's, a read-only mount) means read-only access."""
    return path.exists() and not (os.access(path.parent, os.W_OK) and os.access(path, os.W_OK))


def _read_only_creator(path: Path) -> Any:
    """Connections that open ``path`` read-only (SQLite URI ``mode=ro``).

    In WAL mode a read-only reader needs the ``-shm`` file, which it cannot create: when it exists (a writer
    has the database open), the reader shares it and sees every commit; when it does not (no writer: the
    last one removed it on close), the database is opened ``immutable``, as a snapshot of its file.
    """
    import sqlite3
    import urllib.parse

    def connect() -> sqlite3.Connection:
        immutable = not (Path(f"{path}-shm").exists() and Path(f"{path}-wal").exists())
        uri = f"file:{urllib.parse.quote(str(path))}?mode=ro" + ("&immutable=1" if immutable else "")
        return sqlite3.connect(uri, uri=True, timeout=lock_timeout_s(), check_same_thread=False)

    return connect


def create_engine(url: str | URL, read_only: bool = False) -> Engine:
    """An engine for ``url`` with the settings described in this module's docstring. ``read_only`` (an SQLite
    file, see :func:`sqlite_read_only`): connections that can only read."""
    parsed = make_url(url)
    common: dict[str, Any] = {"json_serializer": json_dumps, "json_deserializer": json.loads}
    if parsed.get_backend_name() == "sqlite" and read_only:
        path = sqlite_path(parsed)
        assert path is not None, "only a database file can be opened read-only"
        engine = sa.create_engine(
            "sqlite+pysqlite://", creator=_read_only_creator(path), poolclass=sa.pool.QueuePool, **common
        )
        _configure_sqlite(engine, read_only=True)
    elif parsed.get_backend_name() == "sqlite":
        if sqlite_path(parsed) is None:
            # One shared connection, or every connection would see its own empty in-memory database.
            engine = sa.create_engine(
                parsed, poolclass=StaticPool, connect_args={"check_same_thread": False}, **common
            )
        else:
            engine = sa.create_engine(
                parsed,
                pool_size=5,
                max_overflow=10,
                connect_args={"timeout": lock_timeout_s()},
                **common,
            )
        _configure_sqlite(engine)
    else:
        engine = sa.create_engine(
            parsed,
            pool_size=2,
            max_overflow=8,
            pool_timeout=120,
            pool_pre_ping=True,
            pool_recycle=1800,
            connect_args={
                "connect_timeout": 10,
                "application_name": "wandb_dagster",
                "options": f"-c lock_timeout={int(lock_timeout_s() * 1000)}",
            },
            **common,
        )
    _discard_connections_after_fork(engine)
    return engine


def is_lock_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` (a DBAPI error) is a backend giving up on a lock after :func:`lock_timeout_s`."""
    orig = getattr(exc, "orig", exc)
    # PostgreSQL: SQLSTATE 55P03 lock_not_available (lock_timeout expired). SQLite: SQLITE_BUSY after
    # busy_timeout ("database is locked"; "database table is locked" is the same within one process).
    if getattr(orig, "sqlstate", None) == "55P03":
        return True
    return type(orig).__name__ == "OperationalError" and "is locked" in str(orig)


def write_engine(engine: Engine) -> Engine:
    """A view of ``engine`` (same pool) whose transactions are write transactions.

    On SQLite they begin with ``BEGIN IMMEDIATE``; on PostgreSQL the option is ignored (writers there lock
    the rows they change, e.g. ``SELECT ... FOR UPDATE``) and the transaction is READ COMMITTED whatever
    the server's default: the writers rely on each statement seeing what committed before it started
    (event ids read after the feed lock, a row a concurrent creator inserted).
    """
    return engine.execution_options(**{_BEGIN_OPTION: "BEGIN IMMEDIATE"}, **_read_committed(engine))


def relaxed_write_engine(engine: Engine) -> Engine:
    """Like :func:`write_engine`, for writes a power cut may take back (SQLite ``synchronous=NORMAL``).

    Only for a running run's own bookkeeping (see this module's docstring for why that is safe and nothing
    else is); PostgreSQL ignores the option.
    """
    return engine.execution_options(
        **{_BEGIN_OPTION: "BEGIN IMMEDIATE", _SYNC_OPTION: "NORMAL"}, **_read_committed(engine)
    )


def _read_committed(engine: Engine) -> dict[str, str]:
    return {"isolation_level": "READ COMMITTED"} if engine.dialect.name == "postgresql" else {}


def _configure_sqlite(engine: Engine, read_only: bool = False) -> None:
    busy_ms = int(lock_timeout_s() * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # Stop pysqlite from issuing BEGIN itself (it would defer it, and skip it for SELECT and DDL);
        # _on_begin below emits it instead.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # busy_timeout first, so that switching to WAL waits for a concurrent opener instead of failing.
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
            if read_only:
                return  # the journal mode is the file's, set by its writers; a reader cannot change it
            _switch_to_wal(cursor, busy_ms / 1000)
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        options = conn.get_execution_options()
        level = options.get(_SYNC_OPTION, "FULL")
        if conn.info.get(_SYNC_OPTION, "FULL") != level:
            conn.exec_driver_sql(f"PRAGMA synchronous = {level}")
            conn.info[_SYNC_OPTION] = level
        conn.exec_driver_sql(options.get(_BEGIN_OPTION, "BEGIN"))


def _discard_connections_after_fork(engine: Engine) -> None:
    # SQLAlchemy's recipe for pools and os.fork(): a connection inherited from the parent process must never
    # be used by the child (both would talk over one socket / one SQLite file handle with its locks), so a
    # checkout in another process than the one that connected invalidates it and connects anew.
    @event.listens_for(engine, "connect")
    def _remember_pid(dbapi_connection: Any, connection_record: Any) -> None:
        connection_record.info["pid"] = os.getpid()

    @event.listens_for(engine, "checkout")
    def _check_pid(dbapi_connection: Any, connection_record: Any, connection_proxy: Any) -> None:
        if connection_record.info["pid"] != os.getpid():
            connection_record.dbapi_connection = connection_proxy.dbapi_connection = None
            raise sa.exc.DisconnectionError(
                f"connection record belongs to pid {connection_record.info['pid']}, "
                f"attempting to check out in pid {os.getpid()}"
            )


def _switch_to_wal(cursor: Any, timeout_s: float) -> None:
    # Switching the journal mode needs an exclusive lock and SQLite does not always run the busy handler
    # for it, so several processes opening a new database at once can get "database is locked" here:
    # once one of them has switched, the mode is persistent, so retry until it is WAL or the timeout ends.
    import sqlite3
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
