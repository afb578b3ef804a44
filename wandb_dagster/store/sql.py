"""SQL helpers shared by the store's modules: the dialect's upsert, id lists as one parameter, the clock,
the driver errors a caller can act on (bad values, a full disk). The REGEXP functions SQLite needs are the
filter engine's (store/filters/dialect.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from wandb_dagster.storage.errors import StorageFullError, free_bytes, out_of_space
from wandb_dagster.storage.uri_credentials import redact
from wandb_dagster.store.errors import DatabaseUnreachableError


def now() -> datetime:
    return datetime.now(timezone.utc)


def insert(conn: sa.Connection, table: sa.Table) -> Any:
    """The dialect's INSERT, which has ON CONFLICT on both backends."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def one_of(conn: sa.Connection, column: Any, ids: list[int]) -> Any:
    """``column IN ids``; on PostgreSQL ``column = ANY(:array)``: one parameter whatever the length, so the
    SQL text stays the same from page to page; psycopg then prepares the statement after a few executions
    and the server stops planning it again (planning a page's joins costs more than running them)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == sa.any_(sa.bindparam(None, ids, type_=ARRAY(column.type)))
    return column.in_(ids)


@contextlib.contextmanager
def translated_errors(url: str) -> Iterator[None]:
    """Driver errors a caller can act on, as the plain errors they are (``url``: the database, for messages).

    - A value the driver cannot take (NaN in JSON, a naive datetime) fails while SQLAlchemy binds
      parameters, which wraps it in StatementError: the plain ValueError/TypeError with its message, as
      from any other argument check.
    - A full disk under the database (SQLite "database or disk is full", or "disk I/O error" on a filesystem
      with no room left; PostgreSQL DiskFull): StorageFullError (an OSError, errno ENOSPC) naming the
      database and the bytes free, instead of an OperationalError.
    - No connection (server down, no such database or role, refused login): DatabaseUnreachableError naming
      the database with its password hidden (docs/architecture.md invariant 7) and the driver's reason.
    """
    try:
        yield
    except sa.exc.StatementError as exc:
        if not isinstance(exc, sa.exc.DBAPIError) and isinstance(exc.orig, (TypeError, ValueError)):
            raise exc.orig from None
        full = _out_of_space(exc, url)
        if full is not None:
            raise full from None
        if _no_connection(exc):
            raise DatabaseUnreachableError(
                f"cannot connect to the workspace database {display_url(url)!r} ({_driver_reason(exc)}); check "
                "the database URL (database_url, or WANDB_DAGSTER_DATABASE_URL): that the server is up and "
                "reachable, the database and the user exist, and the password is right."
            ) from None
        raise


def display_url(url: str | sa.engine.URL) -> str:
    """``url`` for messages: its password hidden (``***``). The one way the package shows a database URL.

    SQLAlchemy hides only the userinfo password; libpq also takes ``?password=...`` (and psycopg passes any
    query parameter on), so the rendered URL goes through the text redaction too. A URL SQLAlchemy cannot
    parse gets the text redaction alone, so no message ever carries the password."""
    try:
        shown = sa.make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL (its own error is raised elsewhere)
        shown = str(url)
    return redact(shown)


def _no_connection(exc: sa.exc.StatementError) -> bool:
    # SQLAlchemy raises connect failures with no statement: nothing was executed yet.
    return isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)) and not exc.statement


def _driver_reason(exc: sa.exc.StatementError) -> str:
    """The driver's own message (psycopg: "connection to server at ... failed: FATAL: ..."), on one line,
    credentials masked: libpq quotes host and user, and a DSN may carry password=...."""
    text = " ".join(str(exc.orig).split())
    return redact(text.removeprefix("connection failed: ")) or type(exc.orig).__name__


# Below this many free bytes, SQLite's "disk I/O error" is the full disk it most likely is (a WAL or shared
# memory file that could not grow); with room left it stays the I/O error it says.
_NEARLY_FULL = 1 << 20


def _out_of_space(exc: sa.exc.StatementError, url: str) -> StorageFullError | None:
    message = str(exc.orig).lower()
    parsed = sa.make_url(url)
    shown = display_url(url)
    if parsed.get_backend_name() == "postgresql":
        if getattr(exc.orig, "sqlstate", None) == "53100" or "no space left on device" in message:
            return StorageFullError(shown, what="the database server")
        return None
    path = parsed.database or ""
    if "database or disk is full" in message:
        return out_of_space(path, what="the workspace database")
    if "disk i/o error" in message:
        free = free_bytes(path)
        if free is not None and free < _NEARLY_FULL:
            return StorageFullError(path, None, free, "the workspace database")
    return None
