"""Mongo-style filters compiled to SQL (SQLAlchemy Core), with the same results on SQLite and PostgreSQL.

A filter is a dict, as in W&B::

    {"state": "finished", "config.lr": {"$gt": 0.01}, "$or": [{"tags": "prod"}, {"group": "exp-1"}]}

- Several keys at one level mean ``$and``; a bare value means ``$eq``; ``$and``/``$or``/``$nor`` take lists of
  filters; a field takes one value or a dict of operators (all must hold).
- Operators: ``$eq $ne $gt $gte $lt $lte $in $nin $exists $regex $not $contains $size $all`` (each field
  accepts the subset that makes sense for it; the error lists them).
- Every value is a bound parameter; nothing is evaluated in Python.

Semantics (the reference evaluator in tests/api/test_filters.py states them as code):

- Missing values: ``$eq None`` matches missing or null; ``$ne``, ``$nin`` and ``$not`` match what the
  positive form does not match, missing values included (as MongoDB).
- JSON values (``config.*``, ``summary_metrics.*``, ``metadata.*``) are typed: ``5`` never equals ``"5"``,
  ``True`` never equals ``1``; ``$gt``-style operators compare numbers with numbers and strings with strings
  (by code point); ``$regex`` and ``$contains`` (substring) apply to strings; ``$contains``, ``$all`` and
  ``$size`` apply to arrays (element equality, typed as above).
- Set fields (``tag``, ``alias``, run ``tags``) match when some element does (``$eq``, ``$in``, ``$gt``...,
  ``$regex``, ``$contains``); ``$all`` needs every value; ``$size`` counts; ``$exists`` means non-empty.
- ``$regex`` is an unanchored search (Python ``re`` syntax on SQLite, POSIX ``~`` on PostgreSQL: keep to
  the common subset).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

_LOGICAL = ("$and", "$or", "$nor")
_COMPARE = ("$gt", "$gte", "$lt", "$lte")
_ALL_OPS = ("$eq", "$ne", *_COMPARE, "$in", "$nin", "$exists", "$regex", "$not", "$contains", "$size", "$all")
_SCALAR = (str, int, float, bool, type(None))
_PG_DIALECT = postgresql.dialect()  # only asked how column types map to PostgreSQL


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
        # Code-point order on both backends: SQLite compares text bytewise (UTF-8, i.e. code points);
        # PostgreSQL's default collation is locale-aware, "C" is bytewise.
        return expr.collate("C") if self.pg else expr

    def regex(self, expr: Any, pattern: str, ignore_case: bool = False) -> Any:
        if self.pg:
            return expr.op("~*" if ignore_case else "~", is_comparison=True)(sa.literal(pattern, sa.String()))
        # Registered on each connection by wandb_dagster.store.sql.prepare_reads.
        return sa.func.wd_iregexp(pattern, expr) if ignore_case else sa.func.regexp(pattern, expr)

    def contains_text(self, expr: Any, needle: str) -> Any:
        # instr/strpos, not LIKE: LIKE is case-insensitive on SQLite and has wildcards to escape.
        func = sa.func.strpos if self.pg else sa.func.instr
        return func(expr, sa.literal(needle, sa.String())) > 0

    def number(self, value: int | float) -> Any:
        # NUMERIC on PostgreSQL: exact for integers of any size and for the decimal text of floats.
        return sa.literal(value, sa.Numeric()) if self.pg else sa.literal(value)


# ------------------------------------------------------------------------------------------ values


def _check_regex(pattern: Any, field: str) -> str:
    if not isinstance(pattern, str):
        raise ValueError(f"$regex for {field!r} must be a string pattern, got {pattern!r}")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"$regex {pattern!r} for {field!r} is not a valid regular expression: {exc}") from None
    return pattern


def _list_value(value: Any, op: str, field: str) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{op} for {field!r} takes a list of values, got {value!r}")
    return list(value)


def _is_number(value: Any) -> bool:
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


# ------------------------------------------------------------------------------------------ fields


class Field:
    """How one filter field becomes SQL. ``ops`` are the operators it accepts."""

    ops: tuple[str, ...] = ()

    def compile(self, name: str, op: str, value: Any, ctx: _Ctx) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


class Column(Field):
    """A column (or SQL expression) holding strings, numbers or timestamps.

    ``nullable`` columns are guarded so that every predicate is true or false, never NULL (negations would
    otherwise drop rows). ``registry`` marks a registry name: values get the ``wandb-registry-`` prefix
    (except in ``$regex`` and ``$contains``) and compare case-insensitively.
    """

    def __init__(
        self,
        expr: Any,
        kind: str = "string",
        nullable: bool = False,
        registry: bool = False,
        per_dialect: Callable[[_Ctx], Any] | None = None,
    ) -> None:
        self.expr, self.kind, self.nullable, self.registry = expr, kind, nullable, registry
        self.per_dialect = per_dialect
        ops = ["$eq", "$ne", *_COMPARE, "$in", "$nin", "$exists", "$not"]
        if kind == "string":
            ops += ["$regex", "$contains"]
        self.ops = tuple(ops)

    def _value(self, name: str, value: Any) -> Any:
        if self.kind == "datetime":
            return parse_datetime(value, name)
        if self.kind == "number":
            if not _is_number(value):
                raise ValueError(f"{name!r} holds numbers; {value!r} is not one")
            return value
        if not isinstance(value, str):
            raise ValueError(f"{name!r} holds strings; {value!r} is not one")
        if self.registry:
            from wandb_dagster.store.records import REGISTRY_PREFIX

            return REGISTRY_PREFIX + value.lower() if not value.lower().startswith(REGISTRY_PREFIX) else value.lower()
        return value

    def _guard(self, expr: Any, predicate: Any) -> Any:
        return sa.and_(expr.is_not(None), predicate) if self.nullable else predicate

    def compile(self, name: str, op: str, value: Any, ctx: _Ctx) -> Any:
        # An expression that differs per dialect (e.g. a duration) is built for this compilation.
        expr = self.per_dialect(ctx) if self.per_dialect is not None else self.expr
        if op == "$eq":
            if value is None:
                return expr.is_(None) if self.nullable else sa.false()
            return self._guard(expr, expr == self._value(name, value))
        if op in _COMPARE:
            if value is None:
                raise ValueError(f"{op} for {name!r} needs a value, got None")
            bound = self._value(name, value)
            target = ctx.ordered(expr) if self.kind == "string" else expr
            comparison = {"$gt": target > bound, "$gte": target >= bound, "$lt": target < bound, "$lte": target <= bound}
            return self._guard(expr, comparison[op])
        if op == "$in":
            values = _list_value(value, op, name)
            parts = [self.compile(name, "$eq", v, ctx) for v in values if v is None]
            concrete = [self._value(name, v) for v in values if v is not None]
            if concrete:
                parts.append(self._guard(expr, expr.in_(concrete)))
            return sa.or_(*parts) if parts else sa.false()
        if op == "$exists":
            if not isinstance(value, bool):
                raise ValueError(f"$exists for {name!r} takes True or False, got {value!r}")
            present = expr.is_not(None) if self.nullable else sa.true()
            return present if value else sa.not_(present)
        if op == "$regex":
            pattern = _check_regex(value, name)
            return self._guard(expr, ctx.regex(expr, pattern, ignore_case=self.registry))
        if op == "$contains":
            if not isinstance(value, str):
                raise ValueError(f"$contains for {name!r} takes a string, got {value!r}")
            target = sa.func.lower(expr) if self.registry else expr
            return self._guard(expr, ctx.contains_text(target, value.lower() if self.registry else value))
        raise AssertionError(op)


class SetField(Field):
    """A set of strings per row (a version's tags or aliases, a run's tags), matched element-wise.

    ``elements(predicate_on_element)`` returns an SQL EXISTS over the row's elements; ``count()`` their
    number (a correlated scalar subquery); ``element`` is the element expression those use.
    """

    ops = ("$eq", "$ne", *_COMPARE, "$in", "$nin", "$exists", "$regex", "$not", "$contains", "$all", "$size")

    def __init__(
        self,
        exists: Callable[[_Ctx, Callable[[Any], Any] | None], Any],
        count: Callable[[_Ctx], Any],
    ) -> None:
        self._exists_in, self._count_in = exists, count

    @staticmethod
    def _text(name: str, value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"{name!r} holds strings (tags or aliases); {value!r} is not one")
        return value

    def compile(self, name: str, op: str, value: Any, ctx: _Ctx) -> Any:
        def exists(predicate: Callable[[Any], Any] | None) -> Any:
            return self._exists_in(ctx, predicate)

        if op in ("$eq", "$contains"):
            text = self._text(name, value)
            return exists(lambda el: el == text)
        if op in _COMPARE:
            text = self._text(name, value)
            ops = {"$gt": "__gt__", "$gte": "__ge__", "$lt": "__lt__", "$lte": "__le__"}
            return exists(lambda el: getattr(ctx.ordered(el), ops[op])(text))
        if op == "$in":
            values = [self._text(name, v) for v in _list_value(value, op, name)]
            return exists(lambda el: el.in_(values)) if values else sa.false()
        if op == "$all":
            values = [self._text(name, v) for v in _list_value(value, op, name)]
            if not values:
                return sa.false()
            return sa.and_(*[exists(lambda el, v=v: el == v) for v in values])
        if op == "$exists":
            if not isinstance(value, bool):
                raise ValueError(f"$exists for {name!r} takes True or False, got {value!r}")
            return exists(None) if value else sa.not_(exists(None))
        if op == "$regex":
            pattern = _check_regex(value, name)
            return exists(lambda el: ctx.regex(el, pattern))
        if op == "$size":
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"$size for {name!r} takes a non-negative integer, got {value!r}")
            return self._count_in(ctx) == value
        raise AssertionError(op)


def _is_jsonb(column: Any) -> bool:
    """Whether ``column`` is ``jsonb`` on PostgreSQL (e.g. ``schema.JSONB_ON_POSTGRES``)."""
    return isinstance(column.type.dialect_impl(_PG_DIALECT), postgresql.JSONB)


class JsonPath(Field):
    """A dotted path into a JSON column (``config.lr``, ``summary_metrics.model1.loss``, ``metadata.acc``)."""

    ops = ("$eq", "$ne", *_COMPARE, "$in", "$nin", "$exists", "$regex", "$not", "$contains", "$all", "$size")

    def __init__(self, column: Any, keys: Sequence[str]) -> None:
        self.column, self.keys = column, list(keys)
        # jsonb columns (schema.JSONB_ON_POSTGRES) take the jsonb_* functions on PostgreSQL, json ones json_*.
        self._pg_prefix = "jsonb_" if _is_jsonb(column) else "json_"

    def _pg(self, name: str) -> Any:
        """The PostgreSQL JSON function ``name`` (e.g. ``typeof``) for this column's type."""
        return getattr(sa.func, self._pg_prefix + name)

    def _pg_empty_array(self) -> Any:
        return sa.literal_column("'[]'::" + self._pg_prefix.rstrip("_"))

    # -- typed access, per dialect ---------------------------------------------------------------------

    def _sqlite_path(self) -> Any:
        # Each key quoted, so dots or brackets inside a key are taken literally; the path is a bound value.
        return sa.literal("$" + "".join('."' + key + '"' for key in self.keys), sa.String())

    def _pg_json(self) -> Any:
        return self._pg("extract_path")(self.column, *[sa.literal(k, sa.String()) for k in self.keys])

    def typeof(self, ctx: _Ctx) -> Any:
        """'number' | 'string' | 'boolean' | 'null' | 'array' | 'object' | 'missing' (never NULL)."""
        if ctx.pg:
            return sa.func.coalesce(self._pg("typeof")(self._pg_json()), "missing")
        raw = sa.func.json_type(self.column, self._sqlite_path())
        return sa.case(
            (raw.in_(["integer", "real"]), "number"),
            (raw == "text", "string"),
            (raw.in_(["true", "false"]), "boolean"),
            else_=sa.func.coalesce(raw, "missing"),
        )

    def _raw_type(self, ctx: _Ctx) -> Any:
        if ctx.pg:
            return sa.func.coalesce(self._pg("typeof")(self._pg_json()), "missing")
        return sa.func.coalesce(sa.func.json_type(self.column, self._sqlite_path()), "missing")

    def _is(self, ctx: _Ctx, kind: str) -> Any:
        raw = self._raw_type(ctx)
        if ctx.pg:
            return raw == kind
        sqlite_kinds = {
            "number": ["integer", "real"],
            "string": ["text"],
            "boolean": ["true", "false"],
            "null": ["null"],
            "array": ["array"],
            "object": ["object"],
            "missing": ["missing"],
        }[kind]
        return raw.in_(sqlite_kinds)

    def number(self, ctx: _Ctx) -> Any:
        """The value when it is a number, else NULL."""
        if ctx.pg:
            text = self._pg("extract_path_text")(self.column, *[sa.literal(k, sa.String()) for k in self.keys])
            return sa.case((self._is(ctx, "number"), sa.cast(text, sa.Numeric())), else_=None)
        return sa.case((self._is(ctx, "number"), sa.func.json_extract(self.column, self._sqlite_path())), else_=None)

    def text(self, ctx: _Ctx) -> Any:
        """The value when it is a string, else NULL."""
        if ctx.pg:
            text = self._pg("extract_path_text")(self.column, *[sa.literal(k, sa.String()) for k in self.keys])
            return sa.case((self._is(ctx, "string"), text), else_=None)
        return sa.case((self._is(ctx, "string"), sa.func.json_extract(self.column, self._sqlite_path())), else_=None)

    def _is_bool(self, ctx: _Ctx, value: bool) -> Any:
        if ctx.pg:
            text = self._pg("extract_path_text")(self.column, *[sa.literal(k, sa.String()) for k in self.keys])
            return sa.and_(self._is(ctx, "boolean"), text == ("true" if value else "false"))
        return self._raw_type(ctx) == ("true" if value else "false")

    def _element_exists(self, ctx: _Ctx, value: Any) -> Any:
        """Some element of the array at this path equals ``value`` (typed)."""
        if ctx.pg:
            array = sa.case((self._is(ctx, "array"), self._pg_json()), else_=self._pg_empty_array())
            elements = self._pg("array_elements")(array).table_valued("value").alias("el")
            el = elements.c.value
            kind = self._pg("typeof")(el)
            text = el.op("#>>")(sa.literal_column("'{}'"))
            if isinstance(value, bool):
                match = sa.and_(kind == "boolean", text == ("true" if value else "false"))
            elif value is None:
                match = kind == "null"
            elif _is_number(value):
                match = sa.and_(kind == "number", sa.case((kind == "number", sa.cast(text, sa.Numeric())), else_=None) == ctx.number(value))
            else:
                match = sa.and_(kind == "string", text == sa.literal(value, sa.String()))
        else:
            elements = sa.func.json_each(self.column, self._sqlite_path()).table_valued("value", "type").alias("el")
            el, kind = elements.c.value, elements.c.type
            if isinstance(value, bool):
                match = kind == ("true" if value else "false")
            elif value is None:
                match = kind == "null"
            elif _is_number(value):
                match = sa.and_(kind.in_(["integer", "real"]), el == value)
            else:
                match = sa.and_(kind == "text", el == value)
        return sa.and_(self._is(ctx, "array"), sa.exists(sa.select(sa.literal(1)).select_from(elements).where(match)))

    def _array_length(self, ctx: _Ctx) -> Any:
        if ctx.pg:
            return self._pg("array_length")(
                sa.case((self._is(ctx, "array"), self._pg_json()), else_=self._pg_empty_array())
            )
        return sa.func.json_array_length(self.column, self._sqlite_path())

    # -- operators -------------------------------------------------------------------------------------

    def _eq(self, name: str, value: Any, ctx: _Ctx) -> Any:
        if value is None:
            return sa.or_(self._is(ctx, "missing"), self._is(ctx, "null"))
        if isinstance(value, bool):
            return self._is_bool(ctx, value)
        if _is_number(value):
            return sa.and_(self._is(ctx, "number"), self.number(ctx) == ctx.number(value))
        if isinstance(value, str):
            return sa.and_(self._is(ctx, "string"), self.text(ctx) == sa.literal(value, sa.String()))
        raise ValueError(
            f"{name!r}: compare JSON values with strings, numbers, booleans or None, not {value!r}; "
            "for arrays use $contains, $all or $size, for nested objects a longer dotted path"
        )

    def compile(self, name: str, op: str, value: Any, ctx: _Ctx) -> Any:
        if op == "$eq":
            return self._eq(name, value, ctx)
        if op in _COMPARE:
            if _is_number(value):
                target, kind, bound = self.number(ctx), "number", ctx.number(value)
            elif isinstance(value, str):
                target, kind, bound = ctx.ordered(self.text(ctx)), "string", sa.literal(value, sa.String())
            else:
                raise ValueError(f"{op} for {name!r} compares with a number or a string, got {value!r}")
            comparison = {"$gt": target > bound, "$gte": target >= bound, "$lt": target < bound, "$lte": target <= bound}
            return sa.and_(self._is(ctx, kind), comparison[op])
        if op == "$in":
            values = _list_value(value, op, name)
            return sa.or_(*[self._eq(name, v, ctx) for v in values]) if values else sa.false()
        if op == "$exists":
            if not isinstance(value, bool):
                raise ValueError(f"$exists for {name!r} takes True or False, got {value!r}")
            missing = self._is(ctx, "missing")
            return sa.not_(missing) if value else missing
        if op == "$regex":
            pattern = _check_regex(value, name)
            return sa.and_(self._is(ctx, "string"), ctx.regex(self.text(ctx), pattern))
        if op == "$contains":
            if not isinstance(value, _SCALAR):
                raise ValueError(f"$contains for {name!r} takes a string, number, boolean or None, got {value!r}")
            in_array = self._element_exists(ctx, value)
            if isinstance(value, str):
                in_text = sa.and_(self._is(ctx, "string"), ctx.contains_text(self.text(ctx), value))
                return sa.or_(in_array, in_text)
            return in_array
        if op == "$all":
            values = _list_value(value, op, name)
            bad = [v for v in values if not isinstance(v, _SCALAR)]
            if bad:
                raise ValueError(f"$all for {name!r} takes strings, numbers, booleans or None, got {bad[0]!r}")
            if not values:
                return sa.false()
            return sa.and_(*[self._element_exists(ctx, v) for v in values])
        if op == "$size":
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"$size for {name!r} takes a non-negative integer, got {value!r}")
            return sa.and_(self._is(ctx, "array"), self._array_length(ctx) == value)
        raise AssertionError(op)

    def sort_keys(self, ctx: _Ctx) -> list[Any]:
        """Never-NULL keys that order rows by this path: missing/null, booleans, numbers, strings, others."""
        kind = self.typeof(ctx)
        rank = sa.case(
            (kind.in_(["missing", "null"]), 0),
            (kind == "boolean", 1),
            (kind == "number", 2),
            (kind == "string", 3),
            else_=4,
        )
        number = sa.func.coalesce(
            sa.case((self._is_bool(ctx, True), ctx.number(1)), else_=self.number(ctx)), ctx.number(0)
        )
        text = sa.func.coalesce(ctx.ordered(self.text(ctx)), sa.literal("", sa.String()))
        return [rank, number, text]


class DerivedValue(Field):
    """A field that maps user values before comparing (e.g. version ``"v3"`` -> index 3)."""

    def __init__(self, inner: Column, convert: Callable[[str, Any], Any], ops: Sequence[str]) -> None:
        self.inner, self.convert, self.ops = inner, convert, tuple(ops)

    def compile(self, name: str, op: str, value: Any, ctx: _Ctx) -> Any:
        if op in ("$in", "$nin"):
            value = [self.convert(name, v) for v in _list_value(value, op, name)]
        elif op != "$exists":
            value = self.convert(name, value)
        return self.inner.compile(name, op, value, ctx)


# ------------------------------------------------------------------------------------------ schemas


class Fields:
    """The filterable fields of one kind of object: fixed names plus dotted JSON prefixes."""

    def __init__(self, what: str, fixed: Mapping[str, Field], prefixes: Mapping[str, Any] | None = None) -> None:
        self.what, self.fixed, self.prefixes = what, dict(fixed), dict(prefixes or {})

    def resolve(self, name: str) -> Field:
        found = self.fixed.get(name)
        if found is not None:
            return found
        for prefix, column in self.prefixes.items():
            if name.startswith(prefix + ".") and len(name) > len(prefix) + 1:
                keys = name[len(prefix) + 1 :].split(".")
                if any(not key or '"' in key or "\\" in key for key in keys):
                    raise ValueError(
                        f"filter field {name!r} has an empty key or a key with '\"' or '\\'; "
                        f"use '{prefix}.<key>[.<key>...]' with plain keys"
                    )
                return JsonPath(column, keys)
        raise ValueError(f"unknown filter field {name!r} for {self.what}; valid fields: {self.valid()}")

    def valid(self) -> list[str]:
        return sorted(self.fixed) + [f"{prefix}.<key>" for prefix in self.prefixes]


def compile_filter(filter: Mapping[str, Any] | None, fields: Fields, dialect: str) -> Any:
    """The SQL boolean expression for ``filter`` over ``fields`` (``sa.true()`` for an empty filter).

    Example::

        >>> from wandb_dagster.store.filters import compile_filter
        >>> expr = compile_filter({"state": "finished"}, RUN_FIELDS, "sqlite")   # doctest: +SKIP
    """
    if filter is None:
        return sa.true()
    return _document(filter, fields, _Ctx(dialect))


def _document(doc: Any, fields: Fields, ctx: _Ctx) -> Any:
    if not isinstance(doc, Mapping):
        raise ValueError(f"a filter is a dict such as {{'name': 'x'}}, got {doc!r}")
    parts = []
    for key, value in doc.items():
        if not isinstance(key, str):
            raise ValueError(f"filter keys are strings, got {key!r}")
        if key.startswith("$"):
            if key not in _LOGICAL:
                raise ValueError(
                    f"unknown operator {key!r} at the top of a filter; valid here: {list(_LOGICAL)} "
                    f"(field operators go inside a field: {{'field': {{'$gt': 1}}}})"
                )
            if not isinstance(value, (list, tuple)) or not value:
                raise ValueError(f"{key} takes a non-empty list of filters, got {value!r}")
            subs = [_document(sub, fields, ctx) for sub in value]
            if key == "$and":
                parts.append(sa.and_(*subs))
            elif key == "$or":
                parts.append(sa.or_(*subs))
            else:
                parts.append(sa.not_(sa.or_(*subs)))
        else:
            parts.append(_field(key, fields.resolve(key), value, ctx))
    return sa.and_(*parts) if parts else sa.true()


def _field(name: str, field: Field, value: Any, ctx: _Ctx) -> Any:
    if isinstance(value, Mapping) and value and all(isinstance(k, str) and k.startswith("$") for k in value):
        return sa.and_(*[_operator(name, field, op, arg, ctx) for op, arg in value.items()])
    if isinstance(value, Mapping):
        raise ValueError(
            f"filter value for {name!r} is a dict without operators ({value!r}); use operators such as "
            f"{{'$gt': 1}}, or a dotted path for nested keys"
        )
    return _operator(name, field, "$eq", value, ctx)


_INT64 = (-(2**63), 2**63 - 1)


def _check_integers(name: str, value: Any) -> None:
    # SQLite binds integers as 64-bit and the driver fails with OverflowError beyond; PostgreSQL would take
    # them. Refusing them on both keeps the two backends giving the same answers.
    for item in value if isinstance(value, (list, tuple)) else (value,):
        if isinstance(item, int) and not isinstance(item, bool) and not _INT64[0] <= item <= _INT64[1]:
            raise ValueError(
                f"filter value {item!r} for {name!r} is outside the 64-bit integer range the store compares; "
                f"pass it as a float ({float(item)!r}) to compare approximately"
            )


def _operator(name: str, field: Field, op: str, value: Any, ctx: _Ctx) -> Any:
    if op not in field.ops:
        raise ValueError(f"unknown operator {op!r} for {name!r}; valid operators for it: {list(field.ops)}")
    _check_integers(name, value)
    if op == "$ne":
        return sa.not_(field.compile(name, "$eq", value, ctx))
    if op == "$nin":
        return sa.not_(field.compile(name, "$in", value, ctx))
    if op == "$not":
        if isinstance(value, str):
            return sa.not_(field.compile(name, "$regex", value, ctx))
        if not isinstance(value, Mapping) or not value or not all(str(k).startswith("$") for k in value):
            raise ValueError(f"$not for {name!r} takes a dict of operators such as {{'$regex': 'x'}}, got {value!r}")
        return sa.not_(_field(name, field, value, ctx))
    return field.compile(name, op, value, ctx)


# ------------------------------------------------------------------------------------------ the fields of each kind

from wandb_dagster.store import schema as _db  # noqa: E402  (kept next to the definitions that use it)


def _exists_rows(table: Any, correlate: Any, column: Any) -> Callable[[_Ctx, Callable[[Any], Any] | None], Any]:
    """EXISTS over ``table`` rows where ``correlate`` holds and ``predicate(column)`` does."""

    def exists(ctx: _Ctx, predicate: Callable[[Any], Any] | None) -> Any:
        conditions = [correlate] if predicate is None else [correlate, predicate(column)]
        return sa.exists(sa.select(sa.literal(1)).select_from(table).where(*conditions))

    return exists


def _count_rows(table: Any, correlate: Any) -> Callable[[_Ctx], Any]:
    def count(ctx: _Ctx) -> Any:
        return sa.select(sa.func.count()).select_from(table).where(correlate).scalar_subquery()

    return count


def _json_string_array(column: Any) -> SetField:
    """A JSON column holding an array of strings (a run's tags), as a set field."""

    def exists(ctx: _Ctx, predicate: Callable[[Any], Any] | None) -> Any:
        if ctx.pg:
            elements = sa.func.json_array_elements_text(column).table_valued("value").alias("el")
        else:
            elements = sa.func.json_each(column).table_valued("value").alias("el")
        query = sa.select(sa.literal(1)).select_from(elements)
        if predicate is not None:
            query = query.where(predicate(elements.c.value))
        return sa.exists(query)

    def count(ctx: _Ctx) -> Any:
        return sa.func.json_array_length(column)

    return SetField(exists, count)


def _duration(ctx: _Ctx) -> Any:
    """Seconds from creation to the end (or the last heartbeat of a run still going)."""
    end = sa.func.coalesce(_db.runs.c.finished_at, _db.runs.c.heartbeat_at)
    if ctx.pg:
        return sa.extract("epoch", end - _db.runs.c.created_at)
    return (sa.func.julianday(end) - sa.func.julianday(_db.runs.c.created_at)) * 86400.0


def _version_index(name: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"v\d+", value):
        return int(value[1:])
    raise ValueError(f"{name!r} takes a version such as 'v3', got {value!r}")


_r = _db.runs.c
RUN_FIELDS = Fields(
    "runs",
    {
        "createdAt": Column(_r.created_at, "datetime"),
        "created_at": Column(_r.created_at, "datetime"),
        "displayName": Column(_r.display_name, nullable=True),
        "display_name": Column(_r.display_name, nullable=True),
        "duration": Column(None, "number", nullable=True, per_dialect=_duration),
        "group": Column(_r.group_name, nullable=True),
        "host": Column(_r.host, nullable=True),
        "jobType": Column(_r.job_type, nullable=True),
        "job_type": Column(_r.job_type, nullable=True),
        "name": Column(_r.run_id),
        "state": Column(_r.state),
        "tags": _json_string_array(_r.tags),
        "username": Column(_r.username, nullable=True),
    },
    {"config": _r.config, "summary_metrics": _r.summary},
)

_p = _db.projects.c
REGISTRY_FIELDS = Fields(
    "registries",
    {
        "name": Column(_p.name, registry=True),
        "description": Column(_p.description, nullable=True),
        "created_at": Column(_p.created_at, "datetime"),
        "updated_at": Column(_p.updated_at, "datetime"),
    },
)

_c = _db.collections.c
_ct = _db.collection_tags
COLLECTION_FIELDS = Fields(
    "registry collections",
    {
        "name": Column(_c.name),
        "tag": SetField(
            _exists_rows(_ct, _ct.c.collection_id == _c.id, _ct.c.tag), _count_rows(_ct, _ct.c.collection_id == _c.id)
        ),
        "description": Column(_c.description, nullable=True),
        "created_at": Column(_c.created_at, "datetime"),
        "updated_at": Column(_c.updated_at, "datetime"),
    },
)

_v = _db.versions.c
_vt, _al, _m = _db.version_tags, _db.aliases, _db.memberships
VERSION_FIELDS = Fields(
    "artifact versions",
    {
        "tag": SetField(
            _exists_rows(_vt, _vt.c.version_id == _v.id, _vt.c.tag), _count_rows(_vt, _vt.c.version_id == _v.id)
        ),
        "alias": SetField(
            _exists_rows(_al, _al.c.membership_id == _m.c.id, _al.c.alias),
            _count_rows(_al, _al.c.membership_id == _m.c.id),
        ),
        "version": DerivedValue(
            Column(_m.c.version_index, "number"), _version_index, ("$eq", "$ne", *_COMPARE, "$in", "$nin", "$not")
        ),
        "created_at": Column(_v.created_at, "datetime"),
        "updated_at": Column(_v.updated_at, "datetime"),
    },
    {"metadata": _v.metadata},
)
