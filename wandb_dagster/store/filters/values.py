"""Filter values: checking what a user wrote, and the typed comparisons the Python evaluation makes.

The comparisons here are the Python side of what the SQL of :mod:`.fields` and :mod:`.jsonpath` computes;
tests/store/test_filter_engine.py holds both to the same answers on SQLite and PostgreSQL.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

COMPARE = ("$gt", "$gte", "$lt", "$lte")
SCALAR = (str, int, float, bool, type(None))
# Python's operator for each comparison operator (also builds the SQL comparison from columns).
ORDER: dict[str, Callable[[Any, Any], Any]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}


class _Missing:
    """A path that leads nowhere (no such key), as opposed to a JSON ``null``."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


# ------------------------------------------------------------------------------------------ checks


def check_regex(pattern: Any, field: str) -> str:
    if not isinstance(pattern, str):
        raise ValueError(f"$regex for {field!r} must be a string pattern, got {pattern!r}")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"$regex {pattern!r} for {field!r} is not a valid regular expression: {exc}") from None
    return pattern


def list_value(value: Any, op: str, field: str) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{op} for {field!r} takes a list of values, got {value!r}")
    return list(value)


def check_exists(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"$exists for {field!r} takes True or False, got {value!r}")
    return value


def check_size(value: Any, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"$size for {field!r} takes a non-negative integer, got {value!r}")
    return value


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_datetime(value: Any, field: str) -> datetime:
    """A datetime from a datetime or an ISO 8601 string ("2023-01-01T12:00:00Z"); naive means UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
        except ValueError:
            raise ValueError(
                f"{field!r} compares with a timestamp; {value!r} is not ISO 8601 (e.g. '2023-01-01T12:00:00Z')"
            ) from None
    if not isinstance(value, datetime):
        raise ValueError(f"{field!r} compares with a timestamp (datetime or ISO 8601 string), got {value!r}")
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


_INT64 = (-(2**63), 2**63 - 1)


def check_integers(name: str, value: Any) -> None:
    # SQLite binds integers as 64-bit and the driver fails with OverflowError beyond; PostgreSQL would take
    # them. Refusing them on both keeps the two backends giving the same answers.
    for item in value if isinstance(value, (list, tuple)) else (value,):
        if isinstance(item, int) and not isinstance(item, bool) and not _INT64[0] <= item <= _INT64[1]:
            raise ValueError(
                f"filter value {item!r} for {name!r} is outside the 64-bit integer range the store compares; "
                f"pass it as a float ({float(item)!r}) to compare approximately"
            )


# ------------------------------------------------------------------------------------------ records


def attribute(obj: Any, key: str) -> Any:
    """``obj[key]`` for a mapping, ``obj.key`` for a record; a clear error when it has neither."""
    if isinstance(obj, Mapping):
        if key in obj:
            return obj[key]
    elif hasattr(obj, key):
        return getattr(obj, key)
    raise ValueError(
        f"cannot evaluate a filter on {type(obj).__name__} {obj!r:.200}: it has no {key!r}; pass the record "
        "the field table describes (see wandb_dagster.store.filters.tables)"
    )


# ------------------------------------------------------------------------------------------ typed JSON values


def json_kind(value: Any) -> str:
    """'missing' | 'null' | 'boolean' | 'number' | 'string' | 'array' | 'object', as the SQL sees it."""
    if value is MISSING:
        return "missing"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, (list, tuple)) else "object"


def json_equal(value: Any, want: Any) -> bool:
    """Typed equality of a present JSON value and a scalar: 5 == 5.0, 5 != "5", True != 1."""
    kind = json_kind(want)
    return json_kind(value) == kind and value == want


def element_equal(element: Any, want: Any) -> bool:
    """An array element against a scalar (``None`` matches a JSON null element)."""
    return element is None if want is None else json_equal(element, want)
