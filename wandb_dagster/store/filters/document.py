"""Filter documents: parsed and checked once into a tree, which compiles to SQL or is evaluated in Python.

:func:`validate` does all the checking (unknown fields, operators, bad values), so :func:`compile_filter`
and :func:`matches` raise the same errors for the same document; a caller that evaluates one document
many times (a sensor) keeps the :class:`Filter` that :func:`validate` returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from wandb_dagster.store.filters.dialect import _Ctx
from wandb_dagster.store.filters.fields import Field
from wandb_dagster.store.filters.jsonpath import JsonPath
from wandb_dagster.store.filters.values import check_integers

_LOGICAL = ("$and", "$or", "$nor")

# Limits on one filter document (docs/architecture.md, "Input limits"), checked before it is parsed, so that no
# document exhausts Python's recursion (parsing, evaluation, SQLAlchemy's compiler) or the databases' limits:
# SQLite refuses expressions nested deeper than 1,000 (an $or of 500 conditions is 500 deep), PostgreSQL
# statements with more than 65,535 parameters. $in/$nin lists are bound as one parameter, so they count only
# towards MAX_FILTER_ITEMS.
MAX_FILTER_DEPTH = 64  # dicts and lists nested in one another ({"$or": [{...}]} is two levels)
MAX_FILTER_ITEMS = 1_000_000  # keys, values and list elements in all
MAX_FILTER_CONDITIONS = 500  # field conditions; a dotted path counts once per key, $all once per value


class Fields:
    """The filterable fields of one kind of object: fixed names plus dotted JSON prefixes.

    ``prefixes`` maps a prefix (``config``) to its JSON column; ``record_keys`` maps it to the record
    attribute holding the decoded object (``summary_metrics`` -> ``summary``), by default the prefix.
    """

    def __init__(
        self,
        what: str,
        fixed: Mapping[str, Field],
        prefixes: Mapping[str, Any] | None = None,
        record_keys: Mapping[str, str] | None = None,
    ) -> None:
        self.what, self.fixed, self.prefixes = what, dict(fixed), dict(prefixes or {})
        self.record_keys = {prefix: (record_keys or {}).get(prefix, prefix) for prefix in self.prefixes}

    def resolve(self, name: str) -> Field:
        found = self.fixed.get(name)
        if found is not None:
            return found
        for prefix, column in self.prefixes.items():
            if name.startswith(prefix + ".") and len(name) > len(prefix) + 1:
                keys = name[len(prefix) + 1 :].split(".")
                if any(not key or '"' in key or "\\" in key or "\x00" in key for key in keys):
                    raise ValueError(
                        f"filter field {name!r} has an empty key or a key with '\"', '\\' or NUL; "
                        f"use '{prefix}.<key>[.<key>...]' with plain keys"
                    )
                return JsonPath(column, keys, get=self.record_keys[prefix])
        raise ValueError(f"unknown filter field {name!r} for {self.what}; valid fields: {self.valid()}")

    def valid(self) -> list[str]:
        return sorted(self.fixed) + [f"{prefix}.<key>" for prefix in self.prefixes]


# ------------------------------------------------------------------------------------------ the tree


class _Node:
    def sql(self, ctx: _Ctx) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def test(self, obj: Any) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError


class _And(_Node):
    def __init__(self, parts: list[_Node]) -> None:
        self.parts = parts

    def sql(self, ctx: _Ctx) -> Any:
        return sa.and_(*[p.sql(ctx) for p in self.parts]) if self.parts else sa.true()

    def test(self, obj: Any) -> bool:
        return all(p.test(obj) for p in self.parts)


class _Or(_Node):
    def __init__(self, parts: list[_Node]) -> None:
        self.parts = parts

    def sql(self, ctx: _Ctx) -> Any:
        return sa.or_(*[p.sql(ctx) for p in self.parts])

    def test(self, obj: Any) -> bool:
        return any(p.test(obj) for p in self.parts)


class _Not(_Node):
    def __init__(self, part: _Node) -> None:
        self.part = part

    def sql(self, ctx: _Ctx) -> Any:
        return sa.not_(self.part.sql(ctx))

    def test(self, obj: Any) -> bool:
        return not self.part.test(obj)


class _Test(_Node):
    """One positive operator on one field, its argument already checked."""

    def __init__(self, name: str, field: Field, op: str, arg: Any) -> None:
        self.name, self.field, self.op, self.arg = name, field, op, arg

    def sql(self, ctx: _Ctx) -> Any:
        return self.field.sql(self.op, self.arg, ctx)

    def test(self, obj: Any) -> bool:
        return self.field.test(self.name, self.op, self.arg, obj)


class Filter:
    """A checked filter document over one field table: ``compile(dialect)`` or ``matches(record)``."""

    def __init__(self, root: _Node, fields: Fields) -> None:
        self._root, self.fields = root, fields

    def compile(self, dialect: str) -> Any:
        return self._root.sql(_Ctx(dialect))

    def matches(self, obj: Any) -> bool:
        return self._root.test(obj)


# ------------------------------------------------------------------------------------------ parsing


def _check_size(doc: Any) -> None:
    """Refuse a document deeper than MAX_FILTER_DEPTH or larger than MAX_FILTER_ITEMS, without recursing."""
    items, stack = 0, [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, Mapping):
            children: Any = [*value.keys(), *value.values()]
        elif isinstance(value, (list, tuple)):
            children = value
        else:
            continue
        if depth > MAX_FILTER_DEPTH:
            raise ValueError(
                f"filter nests dicts and lists deeper than {MAX_FILTER_DEPTH} levels (MAX_FILTER_DEPTH); "
                "flatten it: $and/$or take many filters in one list, and $in takes a list of values"
            )
        items += len(children)
        if items > MAX_FILTER_ITEMS:
            raise ValueError(
                f"filter has more than {MAX_FILTER_ITEMS:,} keys, values and list elements (MAX_FILTER_ITEMS); "
                "split the query, or filter on a coarser field"
            )
        stack.extend((child, depth + 1) for child in children if isinstance(child, (Mapping, list, tuple)))


class _Budget:
    """Counts the conditions of one document as it is parsed (MAX_FILTER_CONDITIONS)."""

    def __init__(self) -> None:
        self.conditions = 0

    def spend(self, name: str, field: Field, op: str, value: Any) -> None:
        weight = len(field.keys) if isinstance(field, JsonPath) else 1
        if op == "$all" and isinstance(value, (list, tuple)):
            weight *= max(1, len(value))
        self.conditions += weight
        if self.conditions > MAX_FILTER_CONDITIONS:
            raise ValueError(
                f"filter has more than {MAX_FILTER_CONDITIONS} conditions (MAX_FILTER_CONDITIONS; a dotted path "
                f"counts once per key, $all once per value), reached at {name!r}; for many values of one field "
                "use one {'$in': [...]}, which takes any number"
            )


def _parse(doc: Any, fields: Fields) -> _Node:
    _check_size(doc)
    return _document(doc, fields, _Budget())


def _document(doc: Any, fields: Fields, budget: _Budget) -> _Node:
    if not isinstance(doc, Mapping):
        raise ValueError(f"a filter is a dict such as {{'name': 'x'}}, got {doc!r}")
    parts: list[_Node] = []
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
            subs = [_document(sub, fields, budget) for sub in value]
            if key == "$and":
                parts.append(_And(subs))
            elif key == "$or":
                parts.append(_Or(subs))
            else:
                parts.append(_Not(_Or(subs)))
        else:
            parts.append(_field(key, fields.resolve(key), value, budget))
    return parts[0] if len(parts) == 1 else _And(parts)


def _field(name: str, field: Field, value: Any, budget: _Budget) -> _Node:
    if isinstance(value, Mapping) and value and all(isinstance(k, str) and k.startswith("$") for k in value):
        parts = [_operator(name, field, op, arg, budget) for op, arg in value.items()]
        return parts[0] if len(parts) == 1 else _And(parts)
    if isinstance(value, Mapping):
        raise ValueError(
            f"filter value for {name!r} is a dict without operators ({value!r}); use operators such as "
            f"{{'$gt': 1}}, or a dotted path for nested keys"
        )
    return _operator(name, field, "$eq", value, budget)


def _operator(name: str, field: Field, op: str, value: Any, budget: _Budget) -> _Node:
    if op not in field.ops:
        raise ValueError(f"unknown operator {op!r} for {name!r}; valid operators for it: {list(field.ops)}")
    if op != "$not" or isinstance(value, str):  # $not of operators counts by the conditions inside it
        budget.spend(name, field, op, value)
    check_integers(name, value)
    if op == "$ne":
        return _Not(_Test(name, field, "$eq", field.check(name, "$eq", value)))
    if op == "$nin":
        return _Not(_Test(name, field, "$in", field.check(name, "$in", value)))
    if op == "$not":
        if isinstance(value, str):
            return _Not(_Test(name, field, "$regex", field.check(name, "$regex", value)))
        if not isinstance(value, Mapping) or not value or not all(str(k).startswith("$") for k in value):
            raise ValueError(f"$not for {name!r} takes a dict of operators such as {{'$regex': 'x'}}, got {value!r}")
        return _Not(_field(name, field, value, budget))
    return _Test(name, field, op, field.check(name, op, value))


# ------------------------------------------------------------------------------------------ entry points


def validate(filter: Mapping[str, Any] | None, fields: Fields) -> Filter:
    """Check ``filter`` against ``fields`` (the errors :func:`compile_filter` raises); the parsed filter.

    Example::

        >>> from wandb_dagster.store.filters import VERSION_FIELDS, validate
        >>> validate({"version": {"$gt": "v9"}}, VERSION_FIELDS).matches(record)   # doctest: +SKIP
    """
    return Filter(_And([]) if filter is None else _parse(filter, fields), fields)


def compile_filter(filter: Mapping[str, Any] | None, fields: Fields, dialect: str) -> Any:
    """The SQL boolean expression for ``filter`` over ``fields`` (``sa.true()`` for an empty filter).

    Example::

        >>> from wandb_dagster.store.filters import compile_filter
        >>> expr = compile_filter({"state": "finished"}, RUN_FIELDS, "sqlite")   # doctest: +SKIP
    """
    ctx = _Ctx(dialect)
    if filter is None:
        return sa.true()
    return _parse(filter, fields).sql(ctx)


def matches(filter: Mapping[str, Any] | None, fields: Fields, obj: Any) -> bool:
    """Whether record (or dict) ``obj`` matches ``filter``: the Python twin of :func:`compile_filter`.

    ``obj`` has the attributes or keys the field table reads (e.g. a ``VersionRecord`` for
    ``VERSION_FIELDS``, an ``events`` row mapping for ``EVENT_FIELDS``).
    """
    return validate(filter, fields).matches(obj)
