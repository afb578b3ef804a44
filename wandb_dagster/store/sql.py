"""SQL helpers shared by the store's modules: the dialect's upsert, id lists as one parameter, the clock,
plain errors from parameter binding (the REGEXP functions SQLite needs are the filter engine's:
store/filters/dialect.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa


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
def unwrapped_value_errors() -> Iterator[None]:
    # A value the driver cannot take (NaN in JSON, a naive datetime) fails while SQLAlchemy binds
    # parameters, which wraps it in StatementError; callers should get the plain ValueError/TypeError with
    # its message, as from any other argument check.
    try:
        yield
    except sa.exc.StatementError as exc:
        if not isinstance(exc, sa.exc.DBAPIError) and isinstance(exc.orig, (TypeError, ValueError)):
            raise exc.orig from None
        raise
