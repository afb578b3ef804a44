"""Name, type, alias, tag and metadata validation, and artifact path parsing."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

import wandb_dagster as wandb
from wandb_dagster.sdk.names import (
    parse_artifact_path,
    validate_alias,
    validate_entry_path,
    validate_metadata,
    validate_tags,
)


@pytest.mark.parametrize("name", ["bike dataset", "a/b", "x:y", "", "é", "n" * 129])
def test_bad_artifact_names_are_refused_with_the_value(name):
    with pytest.raises(ValueError) as err:
        wandb.Artifact(name, type="dataset")
    assert repr(name) in str(err.value)


def test_good_names_and_types():
    art = wandb.Artifact("run-3nq3ctyy-bike.model_v2", type="model")
    assert art.name == "run-3nq3ctyy-bike.model_v2"
    assert art.type == "model"
    assert wandb.Artifact("n" * 128, type="t" * 128).type == "t" * 128


@pytest.mark.parametrize("type_", ["a/b", "a:b", "wandb-history", "job", "", "t" * 129])
def test_bad_types(type_):
    with pytest.raises(ValueError) as err:
        wandb.Artifact("ok", type=type_)
    assert repr(type_) in str(err.value)


@pytest.mark.parametrize("alias", ["v0", "v12", "a/b", "a:b", ""])
def test_bad_aliases(alias):
    with pytest.raises(ValueError):
        validate_alias(alias)


def test_version_like_words_are_fine_aliases():
    assert validate_alias("v1.0") == "v1.0"
    assert validate_alias("best-ap50") == "best-ap50"


def test_tags():
    assert validate_tags(["text-classification", "two words"]) == ["text-classification", "two words"]
    assert validate_tags(["two  spaces"]) == ["two  spaces"]  # the spec's pattern allows runs of spaces
    for bad in [" lead", "trail ", "semi;colon", "", "tab\tsep"]:
        with pytest.raises(ValueError) as err:
            validate_tags([bad])
        assert repr(bad) in str(err.value)


def test_metadata_nan_becomes_none_and_inf_is_an_error():
    assert validate_metadata({"a": float("nan"), "b": [1, {"c": math.nan}]}) == {"a": None, "b": [1, {"c": None}]}
    with pytest.raises(ValueError, match="inf"):
        validate_metadata({"a": {"b": float("inf")}})
    with pytest.raises(ValueError, match="100"):
        validate_metadata({f"k{i}": i for i in range(101)})
    assert len(validate_metadata({f"k{i}": i for i in range(100)})) == 100
    with pytest.raises(ValueError, match="object"):
        validate_metadata({"a": object()})


@pytest.mark.parametrize("path", ["/abs", "../up", "a/../b", "./a", "a//b", "a/", "c:/x", "a\\b"])
def test_unsafe_entry_paths(path):
    with pytest.raises(ValueError):
        validate_entry_path(path)


def test_parse_artifact_paths():
    assert parse_artifact_path("bike-dataset", "me", "proj") == ("me", "proj", "bike-dataset", "latest")
    assert parse_artifact_path("bike-dataset:v0", "me", "proj") == ("me", "proj", "bike-dataset", "v0")
    assert parse_artifact_path("p2/bike:best", "me", "proj") == ("me", "p2", "bike", "best")
    assert parse_artifact_path("e/p/bike:v3", "me", "proj") == ("e", "p", "bike", "v3")
    for bad in ["a/b/c/d", "a//b", "x:", ""]:
        with pytest.raises(ValueError):
            parse_artifact_path(bad, "me", "proj")


_part = st.text(alphabet="abcXYZ019_-.", min_size=1, max_size=8)


@given(st.lists(_part, min_size=1, max_size=3), st.one_of(st.none(), _part))
def test_parse_round_trip(parts, selector):
    text = "/".join(parts) + (f":{selector}" if selector else "")
    parsed = parse_artifact_path(text, "E", "P")
    expected = {1: ["E", "P"], 2: ["E"], 3: []}[len(parts)] + parts
    assert list(parsed[:3]) == expected
    assert parsed.selector == (selector or "latest")
