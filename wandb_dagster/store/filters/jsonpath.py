"""Dotted paths into JSON columns (``config.lr``, ``summary_metrics.model1.loss``, ``metadata.acc``): typed
comparisons in SQL on both backends, and the same comparisons over the decoded dict in Python.

Typed means: ``5`` never equals ``"5"``, ``True`` never equals ``1``; ``$gt``-style operators compare numbers
with numbers and strings with strings (by code point); a missing key and a JSON ``null`` are different for
``$exists`` but both equal ``None``. Each key of a path names an object member, never an array position.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from wandb_dagster.store.filters.dialect import _Ctx, regex_search
from wandb_dagster.store.filters.fields import Field, Getter, _read
from wandb_dagster.store.filters.values import (
    COMPARE,
    MISSING,
    ORDER,
    SCALAR,
    check_exists,
    check_regex,
    check_size,
    element_equal,
    is_number,
    json_equal,
    json_kind,
    list_value,
)

_PG_DIALECT = postgresql.dialect()  # only asked how column types map to PostgreSQL
_PG_INDEX_LIKE = re.compile(r"\s*[+-]?[0-9]+")


def _is_jsonb(column: Any) -> bool:
    """Whether ``column`` is ``jsonb`` on PostgreSQL (e.g. ``schema.JSONB_ON_POSTGRES``)."""
    return isinstance(column.type.dialect_impl(_PG_DIALECT), postgresql.JSONB)


class JsonPath(Field):
    """A dotted path into a JSON column; ``get`` reads the decoded JSON object from a record."""

    ops = ("$eq", "$ne", *COMPARE, "$in", "$nin", "$exists", "$regex", "$not", "$contains", "$all", "$size")

    def __init__(self, column: Any, keys: Sequence[str], get: Getter | None = None) -> None:
        self.column, self.keys, self.get = column, list(keys), get
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

    def _pg_keys(self) -> list[Any]:
        return [sa.literal(k, sa.String()) for k in self.keys]

    def _pg_object_only(self) -> bool:
        # PostgreSQL's *_extract_path reads a key that parses as an integer (strtol: blanks, a sign, digits)
        # as an array position when it meets an array; SQLite's '$."0"' and Python never do. The -> operator
        # with a text key reads object members only, so such paths use it (others keep the function form).
        return any(_PG_INDEX_LIKE.fullmatch(k) for k in self.keys)

    def _pg_chain(self, last: str) -> Any:
        expr = self.column
        for n, key in enumerate(self.keys):
            op = last if n == len(self.keys) - 1 else "->"
            result = sa.Text() if op == "->>" else self.column.type
            expr = expr.op(op, return_type=result)(sa.cast(sa.literal(key, sa.String()), sa.Text()))
        return expr

    def _pg_json(self) -> Any:
        if self._pg_object_only():
            return self._pg_chain("->")
        return self._pg("extract_path")(self.column, *self._pg_keys())

    def _pg_text(self) -> Any:
        if self._pg_object_only():
            return self._pg_chain("->>")
        return self._pg("extract_path_text")(self.column, *self._pg_keys())

    def _raw_type(self, ctx: _Ctx) -> Any:
        if ctx.pg:
            return sa.func.coalesce(self._pg("typeof")(self._pg_json()), "missing")
        return sa.func.coalesce(sa.func.json_type(self.column, self._sqlite_path()), "missing")

    def typeof(self, ctx: _Ctx) -> Any:
        """'number' | 'string' | 'boolean' | 'null' | 'array' | 'object' | 'missing' (never NULL)."""
        if ctx.pg:
            return self._raw_type(ctx)
        raw = sa.func.json_type(self.column, self._sqlite_path())
        return sa.case(
            (raw.in_(["integer", "real"]), "number"),
            (raw == "text", "string"),
            (raw.in_(["true", "false"]), "boolean"),
            else_=sa.func.coalesce(raw, "missing"),
        )

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
            return sa.case((self._is(ctx, "number"), sa.cast(self._pg_text(), sa.Numeric())), else_=None)
        return sa.case((self._is(ctx, "number"), sa.func.json_extract(self.column, self._sqlite_path())), else_=None)

    def text(self, ctx: _Ctx) -> Any:
        """The value when it is a string, else NULL."""
        if ctx.pg:
            return sa.case((self._is(ctx, "string"), self._pg_text()), else_=None)
        return sa.case((self._is(ctx, "string"), sa.func.json_extract(self.column, self._sqlite_path())), else_=None)

    def _is_bool(self, ctx: _Ctx, value: bool) -> Any:
        if ctx.pg:
            return sa.and_(self._is(ctx, "boolean"), self._pg_text() == ("true" if value else "false"))
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
            elif is_number(value):
                number = sa.case((kind == "number", sa.cast(text, sa.Numeric())), else_=None)
                match = sa.and_(kind == "number", number == ctx.number(value))
            else:
                match = sa.and_(kind == "string", text == sa.literal(value, sa.String()))
        else:
            elements = sa.func.json_each(self.column, self._sqlite_path()).table_valued("value", "type").alias("el")
            el, kind = elements.c.value, elements.c.type
            if isinstance(value, bool):
                match = kind == ("true" if value else "false")
            elif value is None:
                match = kind == "null"
            elif is_number(value):
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

    # -- checks ----------------------------------------------------------------------------------------

    @staticmethod
    def _scalar(name: str, value: Any) -> Any:
        if isinstance(value, SCALAR):
            return value
        raise ValueError(
            f"{name!r}: compare JSON values with strings, numbers, booleans or None, not {value!r}; "
            "for arrays use $contains, $all or $size, for nested objects a longer dotted path"
        )

    def check(self, name: str, op: str, value: Any) -> Any:
        if op == "$eq":
            return self._scalar(name, value)
        if op in COMPARE:
            if not (is_number(value) or isinstance(value, str)):
                raise ValueError(f"{op} for {name!r} compares with a number or a string, got {value!r}")
            return value
        if op == "$in":
            return [self._scalar(name, v) for v in list_value(value, op, name)]
        if op == "$exists":
            return check_exists(value, name)
        if op == "$regex":
            return check_regex(value, name)
        if op == "$contains":
            if not isinstance(value, SCALAR):
                raise ValueError(f"$contains for {name!r} takes a string, number, boolean or None, got {value!r}")
            return value
        if op == "$all":
            values = list_value(value, op, name)
            bad = [v for v in values if not isinstance(v, SCALAR)]
            if bad:
                raise ValueError(f"$all for {name!r} takes strings, numbers, booleans or None, got {bad[0]!r}")
            return values
        if op == "$size":
            return check_size(value, name)
        raise AssertionError(op)

    # -- SQL -------------------------------------------------------------------------------------------

    def _eq(self, value: Any, ctx: _Ctx) -> Any:
        if value is None:
            return sa.or_(self._is(ctx, "missing"), self._is(ctx, "null"))
        if isinstance(value, bool):
            return self._is_bool(ctx, value)
        if is_number(value):
            return sa.and_(self._is(ctx, "number"), self.number(ctx) == ctx.number(value))
        return sa.and_(self._is(ctx, "string"), self.text(ctx) == sa.literal(value, sa.String()))

    def _in(self, values: list[Any], ctx: _Ctx) -> Any:
        # Typed, as _eq: the numbers and the strings each bound as one JSON list (any length), so the SQL
        # does not grow with the list (SQLite refused an OR of 5,001 _eq as too deep).
        parts = [self._eq(None, ctx)] if any(v is None for v in values) else []
        parts += [self._is_bool(ctx, b) for b in (True, False) if any(isinstance(v, bool) and v is b for v in values)]
        numbers = [v for v in values if is_number(v)]
        strings = [v for v in values if isinstance(v, str)]
        if numbers:
            parts.append(sa.and_(self._is(ctx, "number"), ctx.in_values(self.number(ctx), numbers, "number")))
        if strings:
            parts.append(sa.and_(self._is(ctx, "string"), ctx.in_values(self.text(ctx), strings, "string")))
        return sa.or_(*parts) if parts else sa.false()

    def sql(self, op: str, arg: Any, ctx: _Ctx) -> Any:
        if op == "$eq":
            return self._eq(arg, ctx)
        if op in COMPARE:
            if is_number(arg):
                target, kind, bound = self.number(ctx), "number", ctx.number(arg)
            else:
                target, kind, bound = ctx.ordered(self.text(ctx)), "string", sa.literal(arg, sa.String())
            return sa.and_(self._is(ctx, kind), ORDER[op](target, bound))
        if op == "$in":
            return self._in(arg, ctx)
        if op == "$exists":
            missing = self._is(ctx, "missing")
            return sa.not_(missing) if arg else missing
        if op == "$regex":
            return sa.and_(self._is(ctx, "string"), ctx.regex(self.text(ctx), arg))
        if op == "$contains":
            in_array = self._element_exists(ctx, arg)
            if isinstance(arg, str):
                return sa.or_(in_array, sa.and_(self._is(ctx, "string"), ctx.contains_text(self.text(ctx), arg)))
            return in_array
        if op == "$all":
            return sa.and_(*[self._element_exists(ctx, v) for v in arg]) if arg else sa.false()
        if op == "$size":
            return sa.and_(self._is(ctx, "array"), self._array_length(ctx) == arg)
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

    # -- Python ----------------------------------------------------------------------------------------

    def value_in(self, obj: Any, name: str) -> Any:
        """The value at this path in ``obj``'s JSON object, or ``MISSING``."""
        value = _read(self.get, obj, name)
        for key in self.keys:
            if not isinstance(value, dict) or key not in value:
                return MISSING
            value = value[key]
        return value

    def test(self, name: str, op: str, arg: Any, obj: Any) -> bool:
        value = self.value_in(obj, name)
        kind = json_kind(value)
        if op == "$eq":
            return kind in ("missing", "null") if arg is None else json_equal(value, arg)
        if op in COMPARE:
            return kind == json_kind(arg) and ORDER[op](value, arg)
        if op == "$in":
            return any(kind in ("missing", "null") if a is None else json_equal(value, a) for a in arg)
        if op == "$exists":
            return (kind != "missing") == arg
        if op == "$regex":
            return kind == "string" and regex_search(arg, value)
        if op == "$contains":
            if kind == "array" and any(element_equal(e, arg) for e in value):
                return True
            return kind == "string" and isinstance(arg, str) and arg in value
        if op == "$all":
            return bool(arg) and kind == "array" and all(any(element_equal(e, a) for e in value) for a in arg)
        if op == "$size":
            return kind == "array" and len(value) == arg
        raise AssertionError(op)


