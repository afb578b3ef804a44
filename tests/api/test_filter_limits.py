"""Hostile filters (issue 18, "Hangs and crashes"): a catastrophic $regex returns at once, patterns outside the
dialect both engines read alike are refused naming it, deep or huge documents are refused naming the limit,
and $in takes lists of any length, on SQLite and PostgreSQL (docs/architecture.md, "Input limits")."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

import wandb_dagster as wandb
from wandb_dagster.store.filters import EVENT_FIELDS, RUN_FIELDS, document, matches, validate

# "(a+)+$" on "aaa...ab" backtracks 2**n steps in Python's re: n = 34 ran for minutes.
EVIL = "(a+)+$"
EVIL_TEXT = "a" * 34 + "b"


def _runs(**configs: dict[str, Any]) -> None:
    for name, config in configs.items():
        with wandb.init(project="p", id=name, config=config, tags=[name, "t-" + name]):
            pass


def _names(flt: dict[str, Any]) -> list[str]:
    return sorted(r.id for r in wandb.Api().runs("tester/p", filters=flt))


def _event(payload: dict[str, Any]) -> dict[str, Any]:
    return {"payload": payload}


# ---------------------------------------------------------------------------------------------- $regex


@pytest.mark.timeout(60)
def test_a_catastrophic_regex_returns_in_well_under_a_second(api_env):
    # Run ids and tags are the evil text too, so the column and set fields are tried, not only JSON paths.
    _runs(**{EVIL_TEXT: {"s": EVIL_TEXT}, "aaaa": {"s": "aaaa"}})
    started = time.monotonic()
    assert _names({"config.s": {"$regex": EVIL}}) == ["aaaa"]  # SQL: SQLite's regexp function, PostgreSQL's ~
    assert _names({"name": {"$regex": EVIL}}) == ["aaaa"]
    assert _names({"tags": {"$regex": EVIL}}) == ["aaaa"]
    # The Python evaluation (sensors, the event feed) searches the same way.
    assert not matches({"payload.s": {"$regex": EVIL}}, EVENT_FIELDS, _event({"s": EVIL_TEXT}))
    assert matches({"payload.s": {"$regex": EVIL}}, EVENT_FIELDS, _event({"s": "aaaa"}))
    assert time.monotonic() - started < 5  # the runs query itself; old code: minutes
    started = time.monotonic()
    validate({"payload.s": {"$regex": EVIL}}, EVENT_FIELDS).matches(_event({"s": "a" * 100_000 + "b"}))
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize(
    "pattern, why",
    [
        (r"(a)\1", r"the escape \\1"),  # backreference: not linear
        ("a(?=b)", r"the group '\(\?=b'"),  # lookahead
        ("(?<=a)b", r"the group '\(\?<='"),  # lookbehind
        ("(?P<n>a)", r"the group '\(\?P<'"),  # PostgreSQL: invalid embedded option
        ("a++", r"the quantifier '\+'"),  # possessive: PostgreSQL refuses, Python 3.11 accepts
        (r"\bword", r"the escape \\b"),  # a word boundary in RE2, a backspace in PostgreSQL
        ("a{256}", r"the bound \{256\} exceeds 255"),  # PostgreSQL's limit
        ("(", "RE2 refuses it"),
        ("[[:alpha:]-z]", "a range at offset"),
        (r"[\W]", r"the escape \\W at offset 1 inside a bracket"),  # PostgreSQL refuses it
        ("[ab", "the bracket at offset 0 is not closed"),
    ],
)
def test_patterns_outside_the_dialect_are_refused_naming_pattern_and_dialect(api_env, pattern, why):
    _runs(one={"s": "a"})
    message = rf"\$regex .* for 'config.s' is not supported: {why}.*; the supported dialect is .*backreferences"
    with pytest.raises(ValueError, match=message):
        _names({"config.s": {"$regex": pattern}})
    with pytest.raises(ValueError, match=message.replace("config.s", "payload.s")):
        matches({"payload.s": {"$regex": pattern}}, EVENT_FIELDS, _event({"s": "a"}))


def test_an_overlong_regex_is_refused_naming_the_limit(api_env):
    with pytest.raises(ValueError, match=r"1,001 characters long; the limit is 1,000 \(MAX_REGEX_LENGTH\)"):
        _names({"name": {"$regex": "a" * 1_001}})


TEXTS = ["x\ny", "a\n", "ab", "AB", "12.5", "a{2}", "foo bar_1", "é", "-]", "É", "\u00a0", "٣"]
PATTERNS = ["x.y", "a$", "^a", "(?i)ab", r"\d+\.\d*", r"a\{2\}", r"\w+\s\w+", "[]-]+", "a|é", "(?:ab)+", "a*?b"]
# Classes are ASCII in both engines (check_regex writes them out): PostgreSQL's own follow the database's
# locale, and with C.UTF-8 'é' was \w, [[:alpha:]] and [[:upper:]] there but not in RE2.
PATTERNS += [r"^\w$", r"^\W$", "^[[:alpha:]]$", "[[:upper:]]", "(?i)^[[:lower:]]+$", r"^\s$", r"^\d$", "[[:punct:]]"]


def test_supported_patterns_give_the_same_answers_on_both_databases_and_in_python(api_env):
    _runs(**{f"r{i}": {"s": text} for i, text in enumerate(TEXTS)})
    for pattern in PATTERNS:
        sql = _names({"config.s": {"$regex": pattern}})
        python = sorted(f"r{i}" for i, text in enumerate(TEXTS) if matches({"payload.s": {"$regex": pattern}},
                                                                           EVENT_FIELDS, _event({"s": text})))
        assert sql == python, pattern
    # As PostgreSQL's ~ reads them: '.' matches a newline (Python's re did not), '$' is the end of the text.
    assert _names({"config.s": {"$regex": "x.y"}}) == ["r0"]
    assert _names({"config.s": {"$regex": "a$"}}) == []
    assert _names({"config.s": {"$regex": r"^\w$"}}) == []  # 'é' (r7) matched on PostgreSQL
    assert _names({"config.s": {"$regex": r"^\W$"}}) == ["r10", "r11", "r7", "r9"]


# ---------------------------------------------------------------------------------------------- size


def _nested(op: str, levels: int) -> dict[str, Any]:
    flt: dict[str, Any] = {"name": "one"}
    for _ in range(levels):
        flt = {op: [flt]}
    return flt


@pytest.mark.parametrize("op", ["$and", "$or", "$nor"])
def test_deeply_nested_logical_filters_are_refused_naming_the_limit(api_env, op):
    _runs(one={})
    message = f"deeper than {document.MAX_FILTER_DEPTH} levels \\(MAX_FILTER_DEPTH\\)"
    with pytest.raises(ValueError, match=message):
        _names(_nested(op, 10_000))
    with pytest.raises(ValueError, match=message):
        matches(_nested(op, 10_000), RUN_FIELDS, {})
    # The deepest document allowed compiles and runs on both databases ($nor twice is the identity).
    deepest = (document.MAX_FILTER_DEPTH - 1) // 2  # each level is a dict and a list, and the leaf a dict
    assert _names(_nested(op, deepest)) == ([] if op == "$nor" and deepest % 2 else ["one"])
    with pytest.raises(ValueError, match=message):
        _names(_nested(op, deepest + 1))


def test_a_deep_value_inside_a_filter_is_refused_before_anything_recurses(api_env):
    value: Any = "x"
    for _ in range(10_000):
        value = [value]
    with pytest.raises(ValueError, match="MAX_FILTER_DEPTH"):
        _names({"name": {"$in": value}})
    deep_not: dict[str, Any] = {"$eq": "one"}
    for _ in range(10_000):
        deep_not = {"$not": deep_not}
    with pytest.raises(ValueError, match="MAX_FILTER_DEPTH"):
        _names({"name": deep_not})


def test_too_many_conditions_are_refused_and_the_most_allowed_run(api_env):
    _runs(one={"k": 1}, two={"k": 2})
    limit = document.MAX_FILTER_CONDITIONS
    many = [{"config.k": i} for i in range(limit)]
    assert _names({"$or": many}) == ["one", "two"]  # SQLite refused an expression this deep before 1,000
    assert _names({"tags": {"$all": [str(i) for i in range(limit - 1)] + ["one"]}}) == []
    with pytest.raises(ValueError, match=f"more than {limit} conditions \\(MAX_FILTER_CONDITIONS.*\\$in"):
        _names({"$or": [*many, {"name": "x"}]})
    with pytest.raises(ValueError, match="MAX_FILTER_CONDITIONS"):
        _names({"tags": {"$all": [str(i) for i in range(limit + 1)]}})
    with pytest.raises(ValueError, match="MAX_FILTER_CONDITIONS"):
        _names({"config." + ".".join(["k"] * (limit + 1)): 1})


def test_a_document_over_the_item_limit_is_refused(api_env, monkeypatch):
    monkeypatch.setattr(document, "MAX_FILTER_ITEMS", 10_000)  # the real limit, a million, takes longer to build
    with pytest.raises(ValueError, match="more than 10,000 keys, values and list elements \\(MAX_FILTER_ITEMS\\)"):
        _names({"name": {"$in": [str(i) for i in range(10_001)]}})


# ---------------------------------------------------------------------------------------------- $in


def test_in_takes_a_hundred_thousand_values_on_every_kind_of_field(api_env):
    _runs(one={"k": 1, "s": "x"}, two={"k": 2.5, "s": "y"}, three={"k": True, "s": None})
    many = [f"v{i}" for i in range(100_001)]  # PostgreSQL refused more than 65,535 parameters
    numbers = list(range(10, 100_011))
    assert _names({"name": {"$in": [*many, "two"]}}) == ["two"]  # a column
    assert _names({"name": {"$nin": [*many, "two"]}}) == ["one", "three"]
    assert _names({"tags": {"$in": [*many, "t-one"]}}) == ["one"]  # a set
    # A JSON path, typed: 1 and 2.5 are numbers, "x" a string, True a boolean, None a null.
    assert _names({"config.k": {"$in": [*numbers, *many, 1, 2.5]}}) == ["one", "two"]
    assert _names({"config.k": {"$in": [*many, "1", True]}}) == ["three"]
    assert _names({"config.s": {"$in": [*many, "x", None]}}) == ["one", "three"]
    assert _names({"config.s": {"$nin": [*many, "x", None]}}) == ["two"]
    created = {r.id: r.created_at for r in wandb.Api().runs("tester/p")}
    assert _names({"createdAt": {"$in": [created["one"], "2001-01-01T00:00:00Z"]}}) == ["one"]  # timestamps
    assert _names({"duration": {"$in": [*numbers, 0.25, float("nan")]}}) == []  # a computed number


def test_in_with_many_tags_drives_a_version_query(api_env):
    with wandb.init(project="p") as run:
        for n, tag in enumerate(["prod", "dev"]):
            Path("m.bin").write_text(str(n))
            art = wandb.Artifact(f"m{n}", type="model")
            art.add_file("m.bin")
            run.log_artifact(art, tags=[tag]).link(f"wandb-registry-model/c{n}")
    many = [f"tag{i}" for i in range(100_001)]
    found = wandb.Api().registries().versions(filter={"tag": {"$in": [*many, "prod"]}})
    assert [v.name for v in found] == ["c0:v0"]
