"""What differs between SQLite and PostgreSQL when a filter becomes SQL, and the regex both sides share.

Regular expressions: PostgreSQL runs its own (POSIX ``~``); SQLite has no regex, so each connection gets
``regexp``/``wd_iregexp`` functions (:func:`prepare_connection`) that call :func:`regex_search`, the same
function the Python evaluation uses. Filters should keep to the syntax both understand (see the package
docstring).
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa


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


_PATTERNS: dict[tuple[str, int], re.Pattern[str]] = {}


def regex_search(pattern: str, value: Any, ignore_case: bool = False) -> bool:
    """Whether ``pattern`` occurs in ``value`` (unanchored, Python ``re``); False for non-strings."""
    if not isinstance(value, str) or not isinstance(pattern, str):
        return False
    key = (pattern, re.IGNORECASE if ignore_case else 0)
    found = _PATTERNS.get(key)
    if found is None:
        if len(_PATTERNS) > 256:
            _PATTERNS.clear()
        found = _PATTERNS[key] = re.compile(pattern, key[1])
    return found.search(value) is not None


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
