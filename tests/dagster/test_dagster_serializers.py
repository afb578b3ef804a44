"""Serializers and their parameters, end to end: assets materialized with dg.materialize into a real
workspace, read back by a downstream asset, and the stored files inspected."""

from __future__ import annotations

import sys
from typing import Any

import dagster as dg
import pytest

from wandb_dagster.dagster import WandbIOManagerError, WandbResource
from wandb_dagster.dagster.options import OutputOptions, parse_options


def _stored_file(resource: WandbResource, name: str) -> bytes:
    art = resource.artifact(f"{name}:latest")
    entry = art.get_entry(art.metadata["dagster"]["entry"])
    with open(entry.download(), "rb") as f:
        return f.read()


def test_dill_stores_what_pickle_cannot(mat_meta, resources, instance, wandb_resource):
    offset = 10

    @dg.asset(metadata={"wandb": {"serializer": "dill"}})
    def scorer() -> Any:
        return lambda x: x + offset  # a closure: pickle refuses it, dill stores its code

    @dg.asset
    def scored(scorer: Any) -> int:
        return scorer(5)

    result = dg.materialize([scorer, scored], resources=resources, instance=instance)
    assert mat_meta(result, "scorer")["wandb/serializer"] == "dill"
    assert result.output_for_node("scored") == 15
    assert wandb_resource.artifact("scorer:v0").metadata["dagster"]["entry"] == "output.dill.pkl"


def test_serializer_params_reach_the_file_and_are_recorded(resources, instance, wandb_resource):
    rows = {"values": list(range(2000)) * 5}

    @dg.asset(metadata={"wandb": {"serializer": "pickle", "serializer_params": {"protocol": 5}}})
    def p5() -> dict:
        return rows

    @dg.asset(metadata={"wandb": {"serializer": "joblib"}})
    def plain() -> dict:
        return rows

    @dg.asset(metadata={"wandb": {"serializer": "joblib", "serializer_params": {"compress": 3}}})
    def packed() -> dict:
        return rows

    @dg.asset
    def total(packed: dict) -> int:
        return sum(packed["values"])

    dg.materialize([p5, plain, packed, total], resources=resources, instance=instance)
    assert _stored_file(wandb_resource, "p5")[:2] == b"\x80\x05"  # pickle's PROTO opcode, then the protocol
    assert len(_stored_file(wandb_resource, "packed")) * 5 < len(_stored_file(wandb_resource, "plain"))
    assert wandb_resource.artifact("packed:v0").metadata["dagster"]["serializer_params"] == {"compress": 3}
    assert wandb_resource.artifact("p5:v0").metadata["dagster"]["serializer"] == "pickle"

    # Compressed bytes are reproducible: unchanged content makes no new version.
    again = dg.materialize([packed, total], resources=resources, instance=instance)
    assert again.output_for_node("total") == sum(rows["values"])
    assert [v.version for v in wandb_resource.api().artifact_collection("asset", "packed").artifacts()] == ["v0"]


@pytest.mark.parametrize(
    "options,message",
    [
        ({"serializer": "pickle", "serializer_params": {"protcol": 4}},
         r"serializer 'pickle' takes no parameter 'protcol' \(did you mean 'protocol'\?\); its parameters: \['protocol'\]"),
        ({"serializer_params": {"protocol": 99}},  # no serializer: pickle's parameters
         r"serializer 'pickle' parameter 'protocol'=99 is invalid: give an int from 0 to"),
        ({"serializer": "joblib", "serializer_params": {"compress": "rar"}},
         r"serializer 'joblib' parameter 'compress'='rar' is invalid: give true/false, a level 0-9, a method"),
        ({"serializer": "json", "serializer_params": {"sort_keys": False}},
         r"serializer 'json' takes no parameter 'sort_keys'; its parameters: \['ensure_ascii', 'indent'\]"),
    ],
)
def test_a_bad_serializer_parameter_is_named(options, message):
    with pytest.raises(ValueError, match=r"asset 'tuned': invalid metadata\['wandb'\]: .*" + message):
        parse_options(options, OutputOptions, "asset 'tuned'")  # what the IO manager checks the options with


def test_a_bad_serializer_parameter_fails_the_materialization(resources, instance, wandb_resource):
    @dg.asset(metadata={"wandb": {"serializer": "joblib", "serializer_params": {"compres": 3}}})
    def tuned() -> dict:
        return {"a": 1}

    with pytest.raises(ValueError, match=r"asset 'tuned'.*'compres' \(did you mean 'compress'\?\)"):
        dg.materialize([tuned], resources=resources, instance=instance)
    assert wandb_resource.api().artifact_collection_exists("tuned", "asset") is False


def test_a_missing_optional_serializer_names_the_extra(resources, instance, monkeypatch):
    monkeypatch.setitem(sys.modules, "dill", None)  # as if dill were not installed

    @dg.asset(metadata={"wandb": {"serializer": "dill"}})
    def needs_dill() -> dict:
        return {"a": 1}

    with pytest.raises(WandbIOManagerError, match=r"needs the 'dill' package.*pip install 'wandb-dagster\[serializers\]'"):
        dg.materialize([needs_dill], resources=resources, instance=instance)
