"""Mongo-style filters: one engine that compiles a filter to SQL (SQLAlchemy Core, the same results on SQLite
and PostgreSQL) and evaluates the same filter in Python over a record, with the same answer.

A filter is a dict, as in W&B::

    {"state": "finished", "config.lr": {"$gt": 0.01}, "$or": [{"tags": "prod"}, {"group": "exp-1"}]}

- Several keys at one level mean ``$and``; a bare value means ``$eq``; ``$and``/``$or``/``$nor`` take lists of
  filters; a field takes one value or a dict of operators (all must hold).
- Operators: ``$eq $ne $gt $gte $lt $lte $in $nin $exists $regex $not $contains $size $all`` (each field
  accepts the subset that makes sense for it; the error lists them).
- In SQL every value is a bound parameter.

Semantics (tests/api/test_filters.py states them as a reference evaluator; tests/store/test_filter_engine.py
holds the SQL and the Python evaluation to the same answers on both backends):

- Missing values: ``$eq None`` matches missing or null; ``$ne``, ``$nin`` and ``$not`` match what the
  positive form does not match, missing values included (as MongoDB).
- JSON values (``config.*``, ``summary_metrics.*``, ``metadata.*``, ``payload.*``) are typed: ``5`` never
  equals ``"5"``, ``True`` never equals ``1``; ``$gt``-style operators compare numbers with numbers and
  strings with strings (by code point); ``$regex`` and ``$contains`` (substring) apply to strings;
  ``$contains``, ``$all`` and ``$size`` apply to arrays (element equality, typed as above). Numbers compare
  by exact value, with one known gap: PostgreSQL reads a float stored in JSON as the decimal it was written
  as (``4.611686018427388e+18``), so beyond 2**53 such a float can compare unlike its binary value.
- A dotted key always names an object member (``metadata.list.0`` is missing for ``{"list": [1]}``).
- Set fields (``tag``, ``alias``, run ``tags``) match when some element does (``$eq``, ``$in``, ``$gt``...,
  ``$regex``, ``$contains``); ``$all`` needs every value; ``$size`` counts; ``$exists`` means non-empty.
- ``$regex`` is an unanchored search: RE2 (linear time) in Python and on SQLite, ``~`` on PostgreSQL.
  ``values.check_regex`` admits only the dialect both read alike and refuses the rest with a ``ValueError``
  that says why; ``.`` matches a newline and ``$`` is the end of the text, as in PostgreSQL.

Modules: :mod:`.document` (parsing and checking documents, the entry points), :mod:`.fields` (field kinds),
:mod:`.jsonpath` (JSON paths), :mod:`.tables` (the field table of each target), :mod:`.values` (value checks
and typed comparisons), :mod:`.dialect` (what differs per backend).
"""

from __future__ import annotations

from typing import Any

from wandb_dagster.store.filters.dialect import _Ctx, prepare_connection
from wandb_dagster.store.filters.document import Fields, Filter, compile_filter, matches, validate
from wandb_dagster.store.filters.fields import Column, DerivedValue, Field, SetField
from wandb_dagster.store.filters.jsonpath import JsonPath
from wandb_dagster.store.filters.tables import (
    COLLECTION_FIELDS,
    EVENT_FIELDS,
    REGISTRY_FIELDS,
    RUN_FIELDS,
    VERSION_FIELDS,
)
from wandb_dagster.store.filters.values import parse_datetime


def json_sort_keys(column: Any, keys: list[str], dialect: str) -> list[Any]:
    """Never-NULL SQL sort keys ordering rows by the JSON value at ``keys`` in ``column`` (see
    :meth:`JsonPath.sort_keys`): missing/null, booleans, numbers, strings, then arrays and objects."""
    return JsonPath(column, keys).sort_keys(_Ctx(dialect))


__all__ = [
    "COLLECTION_FIELDS",
    "EVENT_FIELDS",
    "REGISTRY_FIELDS",
    "RUN_FIELDS",
    "VERSION_FIELDS",
    "Column",
    "DerivedValue",
    "Field",
    "Fields",
    "Filter",
    "JsonPath",
    "SetField",
    "_Ctx",
    "compile_filter",
    "json_sort_keys",
    "matches",
    "parse_datetime",
    "prepare_connection",
    "validate",
]
