"""What differs between SQLite and PostgreSQL when a filter becomes SQL, and the regex both sides share.

Regular expressions: PostgreSQL runs its own (``~``); SQLite has no regex, so each connection gets
``regexp``/``wd_iregexp`` functions (:func:`prepare_connection`) that call :func:`regex_search`, the same
function (RE2, linear time) the Python evaluation uses. ``values.check_regex`` admits only the syntax both
engines read alike.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from wandb_dagster.store.filters.values import compile_regex


class _Ctx:
    """What a compilation needs to know besides the filter: the SQL dialect."""

    def __init__(self, dialect: str) -> None:
        if dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported dialect {dialect!r}: filters compile for 'sqlite' or 'postgresql'")
        self.dialect = dialect

    @property
    def pg(self) -> bool:
        return self.dialect == "postgresql"

    def ordered(self, expr: Any) -> Any:
        # Code-point order on both backends (and in Python): SQLite compares text bytewise (UTF-8, i.e. code
        # points); PostgreSQL's default collation is locale-aware, "C" is bytewise.
        return expr.collate("C") if self.pg else expr

    def regex(self, expr: Any, pattern: str, ignore_case: bool = False) -> Any:
        if self.pg:
            return expr.op("~*" if ignore_case else "~", is_comparison=True)(sa.literal(pattern, sa.String()))
        # Registered on each connection by prepare_connection (the store's read connections do it).
        return sa.func.wd_iregexp(pattern, expr) if ignore_case else sa.func.regexp(pattern, expr)

    def in_values(self, expr: Any, values: Sequence[Any], kind: str = "string") -> Any:
        """``expr IN values``, the values bound as one JSON parameter so that a list of any length works.

        An expanding IN binds one parameter per value, and SQLite refuses more than 32,766 of them, PostgreSQL
        more than 65,535 (docs/architecture.md, "Input limits"). ``kind``: "string", "number" or "datetime".
        """
        items = [_json_item(self, expr, value, kind) for value in values]
        items = [item for item in items if item is not _SKIP]
        if not items:
            return sa.false()
        param = sa.literal(json.dumps(items), sa.String())
        if self.pg:
            elements = sa.func.jsonb_array_elements_text(sa.cast(param, postgresql.JSONB)).table_valued("value")
            column: Any = elements.c.value
            if kind == "number":
                column = sa.cast(column, sa.Numeric())
            elif kind == "datetime":
                column = sa.cast(column, sa.DateTime(timezone=True))
        else:
            elements = sa.func.json_each(param).table_valued("value")
            column = elements.c.value
        return expr.in_(sa.select(column).select_from(elements))

    def contains_text(self, expr: Any, needle: str) -> Any:
        # instr/strpos, not LIKE: LIKE is case-insensitive on SQLite and has wildcards to escape.
        func = sa.func.strpos if self.pg else sa.func.instr
        return func(expr, sa.literal(needle, sa.String())) > 0

    def number(self, value: int | float) -> Any:
        """A number to compare with a JSON number (PostgreSQL: NUMERIC, exact for integers of any size)."""
        if not self.pg:
            return sa.literal(value)
        # PostgreSQL compares NUMERIC with a float parameter as double precision, which rounds an integer
        # beyond 2**53 (Python and SQLite compare 2**53 + 1 > 2.0**53 exactly). A float that large is an
        # integer, so it is passed as that integer, compared exactly. (A float stored in JSON is read as
        # the decimal it was written as; beyond 2**53 that can differ from its binary value: docs.)
        if isinstance(value, float) and value.is_integer() and abs(value) >= 2**53:
            return sa.literal(int(value), sa.Numeric())
        return sa.literal(value, sa.Numeric())


_SQLITE_DIALECT = sqlite.dialect()  # only asked how a column type writes a value on SQLite
_SKIP: Any = object()


def _json_item(ctx: _Ctx, expr: Any, value: Any, kind: str) -> Any:
    """``value`` as :meth:`_Ctx.in_values` puts it in its JSON list (``_SKIP``: it can equal nothing stored)."""
    if kind == "number":
        if isinstance(value, float):
            if not math.isfinite(value):
                return _SKIP  # JSON has no NaN or Infinity, and no stored number is one (they are kept as strings)
            # Exact, as _Ctx.number compares: a float this large is an integer.
            if value.is_integer() and 2**53 <= abs(value) < (2**63 if not ctx.pg else math.inf):
                return int(value)
        return value
    if kind == "datetime":
        if ctx.pg:
            return value.astimezone(timezone.utc).isoformat()
        # As the column's type stores it on SQLite (fixed-width text), so the comparison is of equal forms.
        process = expr.type.dialect_impl(_SQLITE_DIALECT).bind_processor(_SQLITE_DIALECT)
        return process(value) if process is not None else value
    return value


def regex_search(pattern: str, value: Any, ignore_case: bool = False) -> bool:
    """Whether ``pattern`` occurs in ``value`` (unanchored, RE2: time linear in ``value``); False for non-strings.

    The pattern was checked by ``check_regex`` when the filter was; the compiled form is cached.
    """
    if not isinstance(value, str) or not isinstance(pattern, str):
        return False
    return compile_regex(pattern, ignore_case).search(value) is not None


def _sqlite_regexp(pattern: str | None, value: Any) -> bool:
    # SQLite's `x REGEXP y` calls regexp(y, x).
    return pattern is not None and regex_search(pattern, value)


def _sqlite_iregexp(pattern: str | None, value: Any) -> bool:
    return pattern is not None and regex_search(pattern, value, ignore_case=True)


def prepare_connection(conn: sa.Connection) -> None:
    """Give an SQLite connection the regex functions compiled filters call (once per pooled connection).

    ``Connection.info`` lives as long as the DBAPI connection, so the functions are registered once, on
    whichever connection the pool hands out first. Nothing to do on PostgreSQL.
    """
    if conn.dialect.name != "sqlite" or conn.info.get("wd_regexp"):
        return
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    dbapi.create_function("regexp", 2, _sqlite_regexp, deterministic=True)
    dbapi.create_function("wd_iregexp", 2, _sqlite_iregexp, deterministic=True)
    conn.info["wd_regexp"] = True
