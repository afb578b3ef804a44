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
    with pytest.raises(WandbIOManagerError, match=r"input 'scores' of asset 'best' \(reading asset 'scores'\): partitions \['exp-c'\] have no version"):
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


_RANGE = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def test_single_run_backfill_writes_one_version_per_partition(resources, instance, wandb_resource, mat_meta):
    regions = dg.StaticPartitionsDefinition(["east", "north", "south"])

    @dg.asset(partitions_def=regions, backfill_policy=dg.BackfillPolicy.single_run())
    def counts(context: dg.AssetExecutionContext) -> dict:
        return {key: len(key) for key in context.partition_keys}  # one value per partition of the run

    @dg.asset(partitions_def=regions, backfill_policy=dg.BackfillPolicy.single_run())
    def doubled(counts: dict) -> dict:  # several partitions in: a dict per partition; out: the same shape
        return {key: 2 * value for key, value in counts.items()}

    @dg.asset(partitions_def=regions)
    def one(counts: int) -> int:
        return counts

    tags = dict(zip(_RANGE, ("east", "south"), strict=True))
    result = dg.materialize([counts, doubled], resources=resources, instance=instance, tags=tags)
    assert result.success
    for key in ("east", "north", "south"):
        # Each partition's materialization names its own version (not one shared set of metadata).
        meta = mat_meta(result, ["counts"], key)
        assert meta["wandb/partition"] == key
        assert wandb_resource.artifact(meta["wandb/artifact"]).metadata["dagster"]["partition"] == key
        assert mat_meta(result, ["doubled"], key)["wandb/partition"] == key
    assert len(_versions(wandb_resource, "counts")) == 3 and len(_versions(wandb_resource, "doubled")) == 3

    # A later run of one partition downstream loads that partition's recorded version.
    later = dg.materialize([counts, one], selection=[one], resources=resources, instance=instance,
                           partition_key="north")
    assert later.output_for_node("one") == 5

    # Any other shape is refused, naming what is expected.
    @dg.asset(name="counts", partitions_def=regions, backfill_policy=dg.BackfillPolicy.single_run())
    def wrong(context: dg.AssetExecutionContext) -> dict:
        return {"east": 1}

    with pytest.raises(WandbIOManagerError, match=r"missing \['north', 'south'\]"):
        dg.materialize([wrong], resources=resources, instance=instance, tags=tags)


def _data_versions(result: Any, key: str) -> dict[str, str]:
    return {
        e.materialization.partition: e.materialization.tags["dagster/data_version"]
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key == dg.AssetKey(key)
    }


def test_single_run_backfill_of_daily_partitions_and_its_data_version(resources, instance, wandb_resource, mat_meta):
    days = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-10")
    content = {"2026-01-03": "three"}

    @dg.asset(partitions_def=days, backfill_policy=dg.BackfillPolicy.single_run())
    def daily(context: dg.AssetExecutionContext) -> dict:
        window = context.partition_time_window  # the run's whole range
        assert (window.start.day, window.end.day) == (2, 5)
        return {key: content.get(key, key) for key in context.partition_keys}

    tags = dict(zip(_RANGE, ("2026-01-02", "2026-01-04"), strict=True))
    first = dg.materialize([daily], resources=resources, instance=instance, tags=tags)
    got = {v.metadata["dagster"]["partition"] for v in _versions(wandb_resource, "daily")}
    assert got == {"2026-01-02", "2026-01-03", "2026-01-04"}
    assert mat_meta(first, ["daily"], "2026-01-03")["wandb/partition"] == "2026-01-03"
    # One DataVersion for the run's partitions (Dagster keeps one per asset and step), derived from their
    # digests: an unchanged re-run of the range keeps it, so downstream assets stay fresh...
    [version] = set(_data_versions(first, "daily").values())
    again = dg.materialize([daily], resources=resources, instance=instance, tags=tags)
    assert set(_data_versions(again, "daily").values()) == {version}
    assert len(_versions(wandb_resource, "daily")) == 3  # ...and it made no new versions
    # ...and a changed partition changes it.
    content["2026-01-03"] = "changed"
    changed = dg.materialize([daily], resources=resources, instance=instance, tags=tags)
    [other] = set(_data_versions(changed, "daily").values())
    assert other != version and len(_versions(wandb_resource, "daily")) == 4
