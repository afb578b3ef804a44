"""Partitions: static, time-window, multi-dimensional and dynamic; one version per partition."""

from typing import Any

import dagster as dg
import pytest

from wandb_dagster.dagster import WandbIOManagerError
from wandb_dagster.dagster.io_manager import PARTITION_ENTRY


def _versions(resource, name):
    store = resource.api()._ws.store
    coll = store.collection("tester", "pipelines", name)
    return [] if coll is None else store.collection_versions(coll.pk)


def test_static_partitions_one_version_each_even_with_equal_content(resources, instance, wandb_resource, mat_meta):
    regions = dg.StaticPartitionsDefinition(["north", "south"])
    content = {"north": "same", "south": "same"}

    @dg.asset(partitions_def=regions)
    def sales(context: dg.AssetExecutionContext) -> str:
        return content[context.partition_key]

    @dg.asset(partitions_def=regions)
    def report(sales: str) -> str:  # same partitioning: one partition in, one value
        return sales.upper()

    @dg.asset
    def everything(sales: dict) -> dict:  # unpartitioned downstream: every partition, as a dict
        return sales

    for key in ("north", "south"):
        result = dg.materialize([sales, report], resources=resources, instance=instance, partition_key=key)
        assert result.output_for_node("report") == "SAME"
        meta = mat_meta(result, ["sales"], key)
        assert meta["wandb/partition"] == key
    versions = _versions(wandb_resource, "sales")
    assert [(v.version, v.metadata["dagster"]["partition"]) for v in versions] == [("v0", "north"), ("v1", "south")]
    art = wandb_resource.artifact("sales:v1")
    assert sorted(art.manifest.entries) == [PARTITION_ENTRY, "output.pkl"]

    # Re-materializing north with new content: a new version for north; south keeps its own.
    content["north"] = "changed"
    dg.materialize([sales], resources=resources, instance=instance, partition_key="north")
    result = dg.materialize([sales, everything], resources=resources, instance=instance, selection=[everything])
    assert result.output_for_node("everything") == {"north": "changed", "south": "same"}
    # Unchanged partition re-materialized: no new version.
    dg.materialize([sales], resources=resources, instance=instance, partition_key="south")
    assert [v.version for v in _versions(wandb_resource, "sales")] == ["v0", "v1", "v2"]


def test_time_window_partitions_and_loading_several(resources, instance, wandb_resource):
    daily = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-04")

    @dg.asset(partitions_def=daily)
    def temperature(context: dg.AssetExecutionContext) -> int:
        return int(context.partition_key[-2:]) * 10

    @dg.asset(
        partitions_def=daily,
        ins={"temperature": dg.AssetIn(partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-1))},
    )
    def two_days(temperature: dict) -> dict:
        return temperature

    for day in ("2024-01-01", "2024-01-02", "2024-01-03"):
        dg.materialize([temperature], resources=resources, instance=instance, partition_key=day)
    result = dg.materialize([temperature, two_days], resources=resources, instance=instance, partition_key="2024-01-03", selection=[two_days])
    assert result.output_for_node("two_days") == {"2024-01-02": 20, "2024-01-03": 30}
    assert [v.metadata["dagster"]["partition"] for v in _versions(wandb_resource, "temperature")] == [
        "2024-01-01", "2024-01-02", "2024-01-03"
    ]


def test_multi_partitions(resources, instance, wandb_resource, mat_meta):
    multi = dg.MultiPartitionsDefinition(
        {"date": dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-03"),
         "region": dg.StaticPartitionsDefinition(["eu", "us"])}
    )

    @dg.asset(partitions_def=multi)
    def orders(context: dg.AssetExecutionContext) -> str:
        key = context.partition_key.keys_by_dimension
        return f"{key['region']}@{key['date']}"

    @dg.asset(partitions_def=multi)
    def copy(orders: str) -> str:
        return orders

    key = dg.MultiPartitionKey({"date": "2024-01-02", "region": "us"})
    result = dg.materialize([orders, copy], resources=resources, instance=instance, partition_key=key)
    assert result.output_for_node("copy") == "us@2024-01-02"
    assert mat_meta(result, ["orders"])["wandb/partition"] == str(key)
    [version] = _versions(wandb_resource, "orders")
    assert version.metadata["dagster"]["partition"] == "2024-01-02|us"


def test_dynamic_partitions_and_missing_ones(resources, instance, wandb_resource):
    experiments = dg.DynamicPartitionsDefinition(name="experiments")

    @dg.asset(partitions_def=experiments)
    def scores(context: dg.AssetExecutionContext) -> float:
        return {"exp-a": 0.5, "exp-b": 0.75, "exp-c": 0.9}[context.partition_key]

    @dg.asset
    def best(scores: dict) -> str:
        return max(scores, key=scores.get)

    @dg.asset(ins={"scores": dg.AssetIn(metadata={"wandb": {"allow_missing_partitions": True}})})
    def best_so_far(scores: dict) -> list:
        return sorted(scores)

    instance.add_dynamic_partitions("experiments", ["exp-a", "exp-b", "exp-c"])
    for key in ("exp-a", "exp-b"):
        dg.materialize([scores], resources=resources, instance=instance, partition_key=key)
    with pytest.raises(WandbIOManagerError, match=r"asset 'scores': partitions \['exp-c'\] have no version"):
        dg.materialize([scores, best], resources=resources, instance=instance, selection=[best])
    result = dg.materialize([scores, best_so_far], resources=resources, instance=instance, selection=[best_so_far])
    assert result.output_for_node("best_so_far") == ["exp-a", "exp-b"]
    dg.materialize([scores], resources=resources, instance=instance, partition_key="exp-c")
    result = dg.materialize([scores, best], resources=resources, instance=instance, selection=[best])
    assert result.output_for_node("best") == "exp-c"
    assert len(_versions(wandb_resource, "scores")) == 3


def test_partition_key_is_queryable(resources, instance, wandb_resource):
    regions = dg.StaticPartitionsDefinition(["north", "south"])

    @dg.asset(partitions_def=regions, metadata={"wandb": {"tags": ["regional"]}})
    def stock(context: dg.AssetExecutionContext) -> Any:
        return len(context.partition_key)

    for key in ("north", "south"):
        dg.materialize([stock], resources=resources, instance=instance, partition_key=key)
    from wandb_dagster.dagster import version_matches

    versions = [wandb_resource.artifact(f"stock:{v}") for v in ("v0", "v1")]
    south = [a.version for a in versions if version_matches(
        {"tags": a.tags, "metadata": a.metadata}, {"metadata.dagster.partition": "south", "tag": "regional"})]
    assert south == ["v1"]
