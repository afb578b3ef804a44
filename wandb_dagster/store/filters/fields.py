"""Field kinds: how one filter field becomes SQL, and how the same field is evaluated over a record in Python.

Every kind answers the same three questions for an operator it accepts (``ops``):

- ``check(name, op, value)``: is ``value`` a valid argument (raises ``ValueError`` saying what is valid), and
  what does it become (e.g. a registry name gets its prefix, a timestamp string a ``datetime``)?
- ``sql(op, arg, ctx)``: the SQL boolean for the checked argument; never NULL, so negations stay exact.
- ``test(op, arg, obj)``: the same answer in Python, for a record or dict ``obj`` (what the SQL row holds).

``op`` is one of the positive operators; the document layer turns ``$ne``/``$nin``/``$not`` into negations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from wandb_dagster.store.filters.dialect import _Ctx, regex_search
from wandb_dagster.store.filters.values import (
    COMPARE,
    ORDER,
    attribute,
    check_exists,
    check_regex,
    check_size,
    is_number,
    list_value,
    parse_datetime,
)
from wandb_dagster.store.records import REGISTRY_PREFIX

# How a Python value is read from a record: an attribute/key name, or a function of the record.
Getter = str | Callable[[Any], Any]


def _read(get: Getter | None, obj: Any, name: str) -> Any:
    if get is None:
        raise ValueError(f"filter field {name!r} has no Python evaluation (no record key); it only compiles to SQL")
    return attribute(obj, get) if isinstance(get, str) else get(obj)


class Field:
    """How one filter field becomes SQL and is evaluated in Python. ``ops`` are the operators it accepts."""

    ops: tuple[str, ...] = ()

    def check(self, name: str, op: str, value: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def sql(self, op: str, arg: Any, ctx: _Ctx) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def test(self, name: str, op: str, arg: Any, obj: Any) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def compile(self, name: str, op: str, value: Any, ctx: _Ctx) -> Any:
        """``sql`` of a value not yet checked (one positive operator)."""
        return self.sql(op, self.check(name, op, value), ctx)


class Column(Field):
    """A column (or SQL expression) holding strings, numbers or timestamps; ``get`` reads it from a record.

    ``nullable`` columns are guarded so that every predicate is true or false, never NULL (negations would
    otherwise drop rows). ``registry`` marks a registry name: values get the ``wandb-registry-`` prefix
    (except in ``$regex`` and ``$contains``) and compare case-insensitively. ``choices``: the only values
    ``$eq``/``$in`` accept (e.g. event types), so a misspelling is an error rather than an empty result.
    """

    def __init__(
        self,
        expr: Any,
        kind: str = "string",
        nullable: bool = False,
        registry: bool = False,
        per_dialect: Callable[[_Ctx], Any] | None = None,
        *,
        get: Getter | None = None,
        choices: Sequence[str] | None = None,
    ) -> None:
        self.expr, self.kind, self.nullable, self.registry = expr, kind, nullable, registry
        self.per_dialect, self.get = per_dialect, get
        self.choices = tuple(choices) if choices is not None else None
        ops = ["$eq", "$ne", *COMPARE, "$in", "$nin", "$exists", "$not"]
        if kind == "string":
            ops += ["$regex", "$contains"]
        self.ops = tuple(ops)

    # -- values ----------------------------------------------------------------------------------------

    def _value(self, name: str, value: Any) -> Any:
        if self.kind == "datetime":
            return parse_datetime(value, name)
        if self.kind == "number":
            if not is_number(value):
                raise ValueError(f"{name!r} holds numbers; {value!r} is not one")
            return value
        if not isinstance(value, str):
            raise ValueError(f"{name!r} holds strings; {value!r} is not one")
        if self.registry:
            lowered = value.lower()
            return lowered if lowered.startswith(REGISTRY_PREFIX) else REGISTRY_PREFIX + lowered
        return value

    def _choice(self, name: str, values: list[Any]) -> None:
        unknown = [v for v in values if v is not None and v not in (self.choices or ())]
        if self.choices is not None and unknown:
            raise ValueError(f"unknown value(s) {unknown!r} for {name!r}; valid values: {list(self.choices)}")

    def check(self, name: str, op: str, value: Any) -> Any:
        if op == "$eq":
            checked = None if value is None else self._value(name, value)
            self._choice(name, [checked])
            return checked
        if op in COMPARE:
            if value is None:
                raise ValueError(f"{op} for {name!r} needs a value, got None")
            return self._value(name, value)
        if op == "$in":
            checked = [None if v is None else self._value(name, v) for v in list_value(value, op, name)]
            self._choice(name, checked)
            return checked
        if op == "$exists":
            return check_exists(value, name)
        if op == "$regex":
            return check_regex(value, name)
        if op == "$contains":
            if not isinstance(value, str):
                raise ValueError(f"$contains for {name!r} takes a string, got {value!r}")
            return value
        raise AssertionError(op)

    # -- SQL -------------------------------------------------------------------------------------------

    def _guard(self, expr: Any, predicate: Any) -> Any:
        return sa.and_(expr.is_not(None), predicate) if self.nullable else predicate

    def sql(self, op: str, arg: Any, ctx: _Ctx) -> Any:
        # An expression that differs per dialect (e.g. a duration) is built for this compilation.
        expr = self.per_dialect(ctx) if self.per_dialect is not None else self.expr
        if op == "$eq":
            if arg is None:
                return expr.is_(None) if self.nullable else sa.false()
            return self._guard(expr, expr == arg)
        if op in COMPARE:
            target = ctx.ordered(expr) if self.kind == "string" else expr
            return self._guard(expr, ORDER[op](target, arg))
        if op == "$in":
            parts = [expr.is_(None) if self.nullable else sa.false()] if None in arg else []
            concrete = [v for v in arg if v is not None]
            if concrete:
                # One JSON parameter however long the list (numbers compared as NUMERIC on PostgreSQL, so
                # [0, 0.25] against an integer column stays exact).
                parts.append(self._guard(expr, ctx.in_values(expr, concrete, self.kind)))
            return sa.or_(*parts) if parts else sa.false()
        if op == "$exists":
            present = expr.is_not(None) if self.nullable else sa.true()
            return present if arg else sa.not_(present)
        if op == "$regex":
            return self._guard(expr, ctx.regex(expr, arg, ignore_case=self.registry))
        if op == "$contains":
            target = sa.func.lower(expr) if self.registry else expr
            return self._guard(expr, ctx.contains_text(target, arg.lower() if self.registry else arg))
        raise AssertionError(op)

    # -- Python ----------------------------------------------------------------------------------------

    def test(self, name: str, op: str, arg: Any, obj: Any) -> bool:
        value = _read(self.get, obj, name)
        if op == "$eq":
            return value is None if arg is None else value is not None and value == arg
        if op in COMPARE:
            return value is not None and ORDER[op](value, arg)
        if op == "$in":
            return any(value is None if a is None else value is not None and value == a for a in arg)
        if op == "$exists":
            return (value is not None) == arg
        if op == "$regex":
            return value is not None and regex_search(arg, value, ignore_case=self.registry)
        if op == "$contains":
            return value is not None and (arg.lower() in value.lower() if self.registry else arg in value)
        raise AssertionError(op)


class SetField(Field):
    """A set of strings per row (a version's tags or aliases, a run's tags), matched element-wise.

    SQL: ``exists(ctx, predicate_on_element)`` returns an EXISTS over the row's elements (any element when
    ``predicate`` is None), ``count(ctx)`` their number. Python: ``get`` reads the record's list.
    """

    ops = ("$eq", "$ne", *COMPARE, "$in", "$nin", "$exists", "$regex", "$not", "$contains", "$all", "$size")

    def __init__(
        self,
        exists: Callable[[_Ctx, Callable[[Any], Any] | None], Any],
        count: Callable[[_Ctx], Any],
        *,
        get: Getter | None = None,
    ) -> None:
        self._exists_in, self._count_in, self.get = exists, count, get

    @staticmethod
    def _text(name: str, value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"{name!r} holds strings (tags or aliases); {value!r} is not one")
        return value

    def check(self, name: str, op: str, value: Any) -> Any:
        if op in ("$eq", "$contains", *COMPARE):
            return self._text(name, value)
        if op in ("$in", "$all"):
            return [self._text(name, v) for v in list_value(value, op, name)]
        if op == "$exists":
            return check_exists(value, name)
        if op == "$regex":
            return check_regex(value, name)
        if op == "$size":
            return check_size(value, name)
        raise AssertionError(op)

    def sql(self, op: str, arg: Any, ctx: _Ctx) -> Any:
        def exists(predicate: Callable[[Any], Any] | None) -> Any:
            return self._exists_in(ctx, predicate)

        if op in ("$eq", "$contains"):
            return exists(lambda el: el == arg)
        if op in COMPARE:
            return exists(lambda el: ORDER[op](ctx.ordered(el), arg))
        if op == "$in":
            return exists(lambda el: ctx.in_values(el, arg)) if arg else sa.false()
        if op == "$all":
            if not arg:
                return sa.false()
            return sa.and_(*[exists(_equals(v)) for v in arg])
        if op == "$exists":
            return exists(None) if arg else sa.not_(exists(None))
        if op == "$regex":
            return exists(lambda el: ctx.regex(el, arg))
        if op == "$size":
            return self._count_in(ctx) == arg
        raise AssertionError(op)

    def test(self, name: str, op: str, arg: Any, obj: Any) -> bool:
        elements = list(_read(self.get, obj, name) or ())
        if op in ("$eq", "$contains"):
            return arg in elements
        if op in COMPARE:
            return any(ORDER[op](e, arg) for e in elements)
        if op == "$in":
            return any(e in arg for e in elements)
        if op == "$all":
            return bool(arg) and all(a in elements for a in arg)
        if op == "$exists":
            return bool(elements) == arg
        if op == "$regex":
            return any(regex_search(arg, e) for e in elements)
        if op == "$size":
            return len(elements) == arg
        raise AssertionError(op)


def _equals(value: Any) -> Callable[[Any], Any]:
    return lambda element: element == value


class DerivedValue(Field):
    """A field that maps user values before comparing (e.g. version ``"v3"`` -> index 3)."""

    def __init__(self, inner: Column, convert: Callable[[str, Any], Any], ops: Sequence[str]) -> None:
        self.inner, self.convert, self.ops = inner, convert, tuple(ops)

    def check(self, name: str, op: str, value: Any) -> Any:
        if op == "$in":
            value = [self.convert(name, v) for v in list_value(value, op, name)]
        elif op != "$exists":
            value = self.convert(name, value)
        return self.inner.check(name, op, value)

    def sql(self, op: str, arg: Any, ctx: _Ctx) -> Any:
        return self.inner.sql(op, arg, ctx)

    def test(self, name: str, op: str, arg: Any, obj: Any) -> bool:
        return self.inner.test(name, op, arg, obj)
