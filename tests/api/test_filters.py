"""Mongo-style filters compiled to SQL: errors, bound parameters, and a property test against a small
pure-Python reference evaluator (random documents, random filters) on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql, sqlite

from wandb_dagster.store import schema as db
from wandb_dagster.store.filters import (
    COLLECTION_FIELDS,
    REGISTRY_FIELDS,
    RUN_FIELDS,
    VERSION_FIELDS,
    compile_filter,
)

from . import _pages as queries

# ---------------------------------------------------------------------------------------------- the reference

MISSING = object()


def _kind(value: Any) -> str:
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
    return "array" if isinstance(value, list) else "object"


def _json_eq(value: Any, arg: Any) -> bool:
    if arg is None:
        return value is MISSING or value is None
    kind = _kind(arg)
    return _kind(value) == kind and value == arg


def _element_eq(element: Any, arg: Any) -> bool:
    return element is None if arg is None else _json_eq(element, arg)


def _compare(op: str, left: Any, right: Any) -> bool:
    return {"$gt": left > right, "$gte": left >= right, "$lt": left < right, "$lte": left <= right}[op]


def ref_json(value: Any, op: str, arg: Any) -> bool:
    """MongoDB-like semantics for typed JSON values (what filters.py documents)."""
    if op == "$eq":
        return _json_eq(value, arg)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        return _kind(value) == _kind(arg) and _compare(op, value, arg)
    if op == "$in":
        return any(_json_eq(value, a) for a in arg)
    if op == "$exists":
        return (value is not MISSING) == arg
    if op == "$regex":
        return _kind(value) == "string" and re.search(arg, value) is not None
    if op == "$contains":
        in_array = _kind(value) == "array" and any(_element_eq(e, arg) for e in value)
        in_text = _kind(value) == "string" and isinstance(arg, str) and arg in value
        return in_array or in_text
    if op == "$all":
        return bool(arg) and _kind(value) == "array" and all(any(_element_eq(e, a) for e in value) for a in arg)
    if op == "$size":
        return _kind(value) == "array" and len(value) == arg
    raise AssertionError(op)


def ref_column(value: Any, op: str, arg: Any) -> bool:
    """A nullable string column."""
    if op == "$eq":
        return value is None if arg is None else value == arg
    if op in ("$gt", "$gte", "$lt", "$lte"):
        return value is not None and _compare(op, value, arg)
    if op == "$in":
        return any(ref_column(value, "$eq", a) for a in arg)
    if op == "$exists":
        return (value is not None) == arg
    if op == "$regex":
        return value is not None and re.search(arg, value) is not None
    if op == "$contains":
        return value is not None and arg in value
    raise AssertionError(op)


def ref_set(elements: list[str], op: str, arg: Any) -> bool:
    if op in ("$eq", "$contains"):
        return arg in elements
    if op in ("$gt", "$gte", "$lt", "$lte"):
        return any(_compare(op, e, arg) for e in elements)
    if op == "$in":
        return any(e in arg for e in elements)
    if op == "$all":
        return bool(arg) and all(a in elements for a in arg)
    if op == "$exists":
        return bool(elements) == arg
    if op == "$regex":
        return any(re.search(arg, e) for e in elements)
    if op == "$size":
        return len(elements) == arg
    raise AssertionError(op)


def ref_version(value: int, op: str, arg: Any) -> bool:
    """A version's index against 'vN' names."""
    if op == "$in":
        return value in [int(a[1:]) for a in arg]
    arg = int(arg[1:])
    if op == "$eq":
        return value == arg
    if op in ("$gt", "$gte", "$lt", "$lte"):
        return _compare(op, value, arg)
    raise AssertionError(op)


def ref_match(doc: dict[str, Any], flt: dict[str, Any], kinds: dict[str, str]) -> bool:
    for key, cond in flt.items():
        if key == "$and":
            ok = all(ref_match(doc, sub, kinds) for sub in cond)
        elif key == "$or":
            ok = any(ref_match(doc, sub, kinds) for sub in cond)
        elif key == "$nor":
            ok = not any(ref_match(doc, sub, kinds) for sub in cond)
        else:
            ok = _ref_field(doc, key, cond, kinds)
        if not ok:
            return False
    return True


def _lookup(doc: dict[str, Any], key: str) -> Any:
    top, _, rest = key.partition(".")
    value = doc.get(top, MISSING)
    for part in rest.split(".") if rest else []:
        value = value.get(part, MISSING) if isinstance(value, dict) else MISSING
    return value


def _ref_field(doc: dict[str, Any], key: str, cond: Any, kinds: dict[str, str]) -> bool:
    ops = cond if isinstance(cond, dict) else {"$eq": cond}
    kind = kinds.get(key.partition(".")[0], "json")
    value = _lookup(doc, key) if kind == "json" else doc[key]
    evaluate = {"json": ref_json, "column": ref_column, "set": ref_set, "version": ref_version}[kind]
    for op, arg in ops.items():
        if op == "$ne":
            ok = not evaluate(value, "$eq", arg)
        elif op == "$nin":
            ok = not evaluate(value, "$in", arg)
        elif op == "$not":
            ok = not _ref_field(doc, key, arg, kinds)
        else:
            ok = evaluate(value, op, arg)
        if not ok:
            return False
    return True


# ---------------------------------------------------------------------------------------------- strategies

TEXT = st.text(alphabet="abAé", max_size=3)
NUMBER = st.sampled_from([-2, -1, 0, 1, 2, 0.5, 1.0, -1.5, 2.5])
SCALAR = st.one_of(st.none(), st.booleans(), NUMBER, TEXT)
JSON_VALUE = st.one_of(SCALAR, st.lists(SCALAR, max_size=3), st.fixed_dictionaries({}, optional={"c": SCALAR}))
JSON_DOC = st.fixed_dictionaries({}, optional={"a": JSON_VALUE, "b": JSON_VALUE})
PATTERNS = st.sampled_from(["a", "^a", "b$", "a.", "[ab]", "^$", "A*b", "a|é", "^[^a]"])
WORDS = st.lists(st.sampled_from(["x", "y", "zz", "Y"]), unique=True, max_size=3)
COMPARE = ("$gt", "$gte", "$lt", "$lte")


def _ops(arg_for: Any, ops: tuple[str, ...], draw: Any) -> Any:
    op = draw(st.sampled_from(ops))
    if op in ("$in", "$nin", "$all"):
        return {op: draw(st.lists(arg_for(op), max_size=3))}
    if op == "$exists":
        return {op: draw(st.booleans())}
    if op == "$size":
        return {op: draw(st.integers(0, 3))}
    if op == "$regex":
        return {op: draw(PATTERNS)}
    if op == "$not":
        return {op: _ops(arg_for, tuple(o for o in ops if o != "$not"), draw)}
    return {op: draw(arg_for(op))}


JSON_OPS = ("$eq", "$ne", *COMPARE, "$in", "$nin", "$exists", "$regex", "$contains", "$all", "$size", "$not")
SET_OPS = ("$eq", "$ne", *COMPARE, "$in", "$nin", "$exists", "$regex", "$contains", "$all", "$size", "$not")
COLUMN_OPS = ("$eq", "$ne", *COMPARE, "$in", "$nin", "$exists", "$regex", "$contains", "$not")


@st.composite
def json_condition(draw: Any, field: str) -> dict[str, Any]:
    def arg(op: str) -> Any:
        return st.one_of(NUMBER, TEXT) if op in COMPARE else SCALAR

    if draw(st.booleans()):
        return {field: draw(SCALAR)}
    return {field: _ops(arg, JSON_OPS, draw)}


@st.composite
def set_condition(draw: Any, field: str) -> dict[str, Any]:
    def arg(op: str) -> Any:
        return st.sampled_from(["x", "y", "zz", "Y", "q"])

    if draw(st.booleans()):
        return {field: draw(arg("$eq"))}
    return {field: _ops(arg, SET_OPS, draw)}


@st.composite
def column_condition(draw: Any, field: str) -> dict[str, Any]:
    def arg(op: str) -> Any:
        return TEXT if op in COMPARE or op in ("$contains",) else st.one_of(st.none(), TEXT)

    if draw(st.booleans()):
        return {field: draw(st.one_of(st.none(), TEXT))}
    return {field: _ops(arg, COLUMN_OPS, draw)}


def filters(leaf: Any) -> Any:
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.builds(
                lambda op, subs: {op: subs},
                st.sampled_from(["$and", "$or", "$nor"]),
                st.lists(inner, min_size=1, max_size=3),
            ),
            st.builds(lambda a, b: {**a, **b}, inner, inner),
        ),
        max_leaves=4,
    )


RUN_FIELDS_STRATEGY = st.one_of(
    st.sampled_from(["config.a", "config.b", "config.a.c", "summary_metrics.a"]).flatmap(json_condition),
    set_condition("tags"),
    column_condition("group"),
)
RUN_DOC = st.fixed_dictionaries(
    {"config": JSON_DOC, "summary_metrics": JSON_DOC, "tags": WORDS, "group": st.one_of(st.none(), TEXT)}
)
RUN_KINDS = {"config": "json", "summary_metrics": "json", "tags": "set", "group": "column"}

VERSION_FIELDS_STRATEGY = st.one_of(
    st.sampled_from(["metadata.a", "metadata.b", "metadata.a.c"]).flatmap(json_condition),
    set_condition("tag"),
    set_condition("alias"),
    st.builds(
        lambda op, n: {"version": {op: f"v{n}"}} if op != "$in" else {"version": {"$in": [f"v{n}", "v0"]}},
        st.sampled_from(["$eq", "$ne", *COMPARE, "$in"]),
        st.integers(0, 4),
    ),
)
VERSION_DOC = st.fixed_dictionaries({"metadata": JSON_DOC, "tag": WORDS, "alias": WORDS})
VERSION_KINDS = {"metadata": "json", "tag": "set", "alias": "set", "version": "version"}

_counter = itertools.count()
PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


# ---------------------------------------------------------------------------------------------- property tests


@PROPERTY_SETTINGS
@given(docs=st.lists(RUN_DOC, max_size=6), flt=filters(RUN_FIELDS_STRATEGY))
def test_run_filters_match_the_reference_evaluator(store, docs, flt):
    project = f"p{next(_counter)}"
    expected = set()
    for i, doc in enumerate(docs):
        record = store.create_run("e", project, f"r{i}", config=doc["config"], tags=doc["tags"], group=doc["group"])
        store.update_run(record.pk, summary=doc["summary_metrics"])
        if ref_match(doc, flt, RUN_KINDS):
            expected.add(f"r{i}")
    where = [db.projects.c.name == project, compile_filter(flt, RUN_FIELDS, store.dialect)]
    records, _ = queries.run_page(store, where, sort_keys=[], descending=False, after=None, limit=100)
    assert {r.id for r in records} == expected, (flt, docs)
    assert queries.run_count(store, where) == len(expected)


@PROPERTY_SETTINGS
@given(docs=st.lists(VERSION_DOC, max_size=5), flt=filters(VERSION_FIELDS_STRATEGY))
def test_version_filters_match_the_reference_evaluator(store, docs, flt):
    collection = f"c{next(_counter)}"
    expected, taken = set(), set()
    for i, doc in enumerate(docs):
        doc["alias"] = [a for a in doc["alias"] if a not in taken]  # an alias names one member
        taken.update(doc["alias"])
        result = store.commit_version(
            "e", "p", collection, "dataset", digest=f"d{i}", manifest="{}", size=0, file_count=0,
            metadata=doc["metadata"], description=None, aliases=doc["alias"], tags=doc["tag"], run_pk=None,
        )
        assert result.version.index == i
        if ref_match({**doc, "version": i}, flt, VERSION_KINDS):
            expected.add(i)
    where = [db.collections.c.name == collection, compile_filter(flt, VERSION_FIELDS, store.dialect)]
    records, _ = queries.version_page(store, where, after=None, limit=100)
    assert {r.index for r in records} == expected, (flt, docs)


# ---------------------------------------------------------------------------------------------- examples and errors


def test_reference_evaluator_examples():
    # The reference is code too: pin down the semantics it states with a few hand-checked cases.
    doc = {"config": {"a": 5, "s": "5", "t": True, "l": [1, "x"], "n": None}, "tags": ["p"], "group": None}
    kinds = RUN_KINDS
    assert ref_match(doc, {"config.a": 5}, kinds) and not ref_match(doc, {"config.s": 5}, kinds)
    assert not ref_match(doc, {"config.t": 1}, kinds) and ref_match(doc, {"config.t": True}, kinds)
    assert ref_match(doc, {"config.missing": None}, kinds) and ref_match(doc, {"config.n": None}, kinds)
    assert ref_match(doc, {"config.n": {"$exists": True}}, kinds)
    assert ref_match(doc, {"config.missing": {"$ne": 1}}, kinds)
    assert ref_match(doc, {"config.l": {"$contains": "x"}}, kinds) and ref_match(doc, {"config.l": {"$size": 2}}, kinds)
    assert ref_match(doc, {"group": None}, kinds) and not ref_match(doc, {"group": {"$exists": True}}, kinds)


@pytest.mark.parametrize(
    ("flt", "fields", "message"),
    [
        ({"colour": 1}, RUN_FIELDS, r"unknown filter field 'colour' for runs; valid fields: \[.*'config.<key>'"),
        ({"state": {"$near": 1}}, RUN_FIELDS, r"unknown operator '\$near' for 'state'.*'\$regex'"),
        ({"$xor": []}, RUN_FIELDS, r"unknown operator '\$xor'.*\$and"),
        ({"$or": []}, RUN_FIELDS, r"\$or takes a non-empty list"),
        ({"tag": {"$size": "two"}}, VERSION_FIELDS, r"\$size for 'tag' takes a non-negative integer, got 'two'"),
        ({"version": "latest"}, VERSION_FIELDS, r"'version' takes a version such as 'v3', got 'latest'"),
        ({"version": {"$regex": "v1"}}, VERSION_FIELDS, r"unknown operator '\$regex' for 'version'"),
        ({"name": {"$regex": "("}}, REGISTRY_FIELDS, r"\$regex '\(' for 'name' is not supported: RE2 refuses it"),
        ({"created_at": {"$gt": "yesterday"}}, COLLECTION_FIELDS, r"'yesterday' is not ISO 8601"),
        ({"metadata.a": {"b": 1}}, VERSION_FIELDS, r"dict without operators"),
        ({"metadata.a": [1]}, VERSION_FIELDS, r"for arrays use \$contains"),
        (
            {"type": "model"},
            COLLECTION_FIELDS,
            r"valid fields: \['created_at', 'description', 'name', 'tag', 'updated_at'\]",
        ),
        ({"config.seed": 2**70}, RUN_FIELDS, r"value 1180591620717411303424 for 'config.seed' is outside the 64-bit"),
        ({"metadata.n": {"$in": [1, -(2**64)]}}, VERSION_FIELDS, r"-18446744073709551616 for 'metadata.n'.*as a float"),
    ],
)
def test_bad_filters_say_what_is_valid(flt, fields, message):
    with pytest.raises(ValueError, match=message):
        compile_filter(flt, fields, "sqlite")


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()])
def test_every_value_is_a_bound_parameter(dialect):
    secret = "zq'; DROP TABLE runs; --"
    flt = {
        "state": secret,
        "config.zqkey": {"$regex": secret},
        "tags": {"$all": [secret]},
        "summary_metrics.zqm": {"$gt": 123456789},
        "createdAt": {"$gt": "2023-01-01T12:00:00Z"},
    }
    compiled = compile_filter(flt, RUN_FIELDS, dialect.name).compile(dialect=dialect)
    sql = str(compiled)
    for value in ("zq'", "DROP", "zqkey", "123456789", "2023"):
        assert value not in sql
    params = [str(v) for v in compiled.params.values()]
    assert secret in params and any("zqkey" in v for v in params)


def test_registry_name_prefix_and_case(store):
    store.ensure_project("org", "wandb-registry-model")
    store.ensure_project("org", "wandb-registry-my-data")
    store.ensure_project("org", "models-not-a-registry")

    def names(flt: dict) -> list[str]:
        where = [queries.registry_projects_condition(), compile_filter(flt, REGISTRY_FIELDS, store.dialect)]
        return sorted(r.name for r in queries.project_page(store, where, after=None, limit=10)[0])

    assert names({"name": "Model"}) == ["wandb-registry-model"]
    assert names({"name": "wandb-registry-MODEL"}) == ["wandb-registry-model"]
    assert names({"name": {"$in": ["model", "my-data"]}}) == ["wandb-registry-model", "wandb-registry-my-data"]
    # No prefix inside $regex (it matches the full name, any case): "model" finds the core registry.
    assert names({"name": {"$regex": "Model"}}) == ["wandb-registry-model"]
    assert names({"name": {"$regex": "^wandb-registry-m"}}) == ["wandb-registry-model", "wandb-registry-my-data"]
    assert names({"name": {"$ne": "model"}}) == ["wandb-registry-my-data"]
    assert names({"name": {"$not": {"$regex": "data"}}}) == ["wandb-registry-model"]


def test_json_types_are_kept_apart(store):
    values = {"int": 5, "float": 5.0, "str": "5", "true": True, "one": 1, "null": None, "list": [5, "5"]}
    values["big"] = 2**62 + 1
    for key, value in values.items():
        store.create_run("e", "types", key, config={"v": value})

    def ids(flt: dict) -> list[str]:
        where = [db.projects.c.name == "types", compile_filter(flt, RUN_FIELDS, store.dialect)]
        records, _ = queries.run_page(store, where, sort_keys=[], descending=False, after=None, limit=50)
        return sorted(r.id for r in records)

    assert ids({"config.v": 5}) == ["float", "int"]
    assert ids({"config.v": "5"}) == ["str"]
    assert ids({"config.v": True}) == ["true"]
    assert ids({"config.v": 1}) == ["one"]
    assert ids({"config.v": None}) == ["null"]
    assert ids({"config.v": {"$gte": 5}}) == ["big", "float", "int"]
    assert ids({"config.v": {"$lt": "6"}}) == ["str"]
    assert ids({"config.v": 2**62 + 1}) == ["big"]  # exact, not rounded through a float
    assert ids({"config.v": {"$contains": "5"}}) == ["list", "str"]
    assert ids({"config.v": {"$all": [5, "5"]}}) == ["list"]
    assert ids({"config.v": {"$exists": False}}) == []
    assert ids({"config.w": {"$exists": False}}) == sorted(values)
