"""Sensors on the event feed, evaluated with build_sensor_context as the Dagster daemon would."""

from typing import Any

import dagster as dg
import pytest

import wandb_dagster as wandb
from wandb_dagster import Artifact
from wandb_dagster.dagster import WandbResource, version_matches, wandb_alias_sensor, wandb_artifact_sensor


@dg.op
def _noop() -> None:
    pass


@dg.job
def react() -> None:
    _noop()


def _log(
    resource: WandbResource, name: str, content: str, metadata: dict | None = None, tags: list | None = None
) -> Artifact:
    with wandb.init(settings=resource._settings(), job_type="producer") as run:
        art = Artifact(name, type="dataset", metadata=metadata or {})
        with art.new_file("data.txt") as f:
            f.write(content)
        return run.log_artifact(art, tags=tags)


def _tick(sensor: dg.SensorDefinition, resource: WandbResource, instance: Any, cursor: str | None) -> Any:
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources={"wandb": resource}) as context:
        return sensor(context)


def test_new_version_sensor_cursor_and_restart(wandb_resource, instance):
    sensor = wandb_artifact_sensor(name="on_data", collection="pipelines/data", job=react)
    first = _tick(sensor, wandb_resource, instance, None)
    assert first.run_requests == [] and first.cursor  # starts at the head: only what happens from now on

    v0 = _log(wandb_resource, "data", "zero")
    _log(wandb_resource, "other", "not watched")
    v1 = _log(wandb_resource, "data", "one")
    _log(wandb_resource, "data", "one")  # identical content: no new version, no event

    second = _tick(sensor, wandb_resource, instance, first.cursor)
    assert [r.tags["wandb/artifact"] for r in second.run_requests] == [
        "tester/pipelines/data:v0", "tester/pipelines/data:v1"
    ]
    assert [r.tags["wandb/artifact_id"] for r in second.run_requests] == [v0.id, v1.id]
    keys = [r.run_key for r in second.run_requests]
    assert keys == [r.tags["wandb/event_id"] for r in second.run_requests] and len(set(keys)) == 2

    # A restart from the saved cursor: nothing again. A restart from the previous cursor (the tick's result
    # was lost): the same run keys, which Dagster never launches twice.
    assert _tick(sensor, wandb_resource, instance, second.cursor).run_requests == []
    replay = _tick(sensor, wandb_resource, instance, first.cursor)
    assert [r.run_key for r in replay.run_requests] == keys


def test_daemon_does_not_launch_a_run_key_twice(wandb_resource, instance):
    """The run_key contract end to end: runs launched for the requests, then a replayed tick's requests are
    the ones Dagster already has runs for (it skips those)."""
    sensor = wandb_artifact_sensor(name="on_data", collection="data", job=react)
    start = _tick(sensor, wandb_resource, instance, None).cursor
    _log(wandb_resource, "data", "x")
    tick = _tick(sensor, wandb_resource, instance, start)
    [request] = tick.run_requests
    run_tags = {"dagster/run_key": request.run_key, "dagster/sensor_name": "on_data", **request.tags}
    react.execute_in_process(instance=instance, tags=run_tags)
    replay = _tick(sensor, wandb_resource, instance, start)
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/sensor_name": "on_data"}))
    launched = {r.tags["dagster/run_key"] for r in runs}
    assert [r.run_key for r in replay.run_requests if r.run_key not in launched] == []


def test_bounded_ticks_filters_and_dynamic_partitions(wandb_resource, instance):
    parts = dg.DynamicPartitionsDefinition(name="data_versions")
    sensor = wandb_artifact_sensor(
        name="big_only", collection="data", job=react, max_per_tick=2, start="beginning",
        version_filter={"metadata.rows": {"$gte": 100}, "tag": "clean"},
        dynamic_partitions_def=parts,
    )
    for i, rows in enumerate((10, 500, 200, 1000, 300)):
        _log(wandb_resource, "data", f"d{i}", metadata={"rows": rows}, tags=["clean"] if rows != 1000 else ["raw"])
    cursor, seen, ticks = None, [], 0
    while True:
        result = _tick(sensor, wandb_resource, instance, cursor)
        ticks += 1
        assert len(result.run_requests) <= 2
        seen += [(r.tags["wandb/version"], r.partition_key) for r in result.run_requests]
        if result.run_requests:
            [add] = result.dynamic_partitions_requests
            assert add.partitions_def_name == "data_versions"
            assert list(add.partition_keys) == [r.partition_key for r in result.run_requests]
        if result.cursor == cursor:
            break
        cursor = result.cursor
    assert seen == [("v1", "v1"), ("v2", "v2"), ("v4", "v4")]
    assert ticks >= 3  # five events, at most two per tick


def test_registry_collection_fires_on_links(wandb_resource, instance):
    sensor = wandb_artifact_sensor(name="on_registry", collection="wandb-registry-model/bikes", job=react)
    cursor = _tick(sensor, wandb_resource, instance, None).cursor
    art = _log(wandb_resource, "model", "weights")
    assert _tick(sensor, wandb_resource, instance, cursor).run_requests == []  # logged, not yet linked
    wandb_resource.link(art, "wandb-registry-model/bikes")
    [request] = _tick(sensor, wandb_resource, instance, cursor).run_requests
    assert request.tags["wandb/artifact"] == "default/wandb-registry-model/bikes:v0"
    assert request.tags["wandb/event"] == "LINK_ARTIFACT"


@pytest.mark.parametrize("start", ["now", "beginning"])
def test_unreadable_cursor_is_logged_and_recovered(wandb_resource, instance, capfd, start):
    sensor = wandb_artifact_sensor(name="robust", collection="data", job=react, start=start)
    _log(wandb_resource, "data", "before")
    capfd.readouterr()
    result = _tick(sensor, wandb_resource, instance, "this is not a cursor")
    # The sensor's log goes to the tick's log (stderr here; the daemon stores it with the tick).
    messages = [line for line in capfd.readouterr().err.splitlines() if "unreadable" in line]
    assert messages and "'this is not a cursor'" in messages[0] and f"start={start!r}" in messages[0]
    if start == "now":
        assert result.run_requests == []  # resumed at the head
    else:
        assert [r.tags["wandb/version"] for r in result.run_requests] == ["v0"]  # replayed; run keys dedupe
    _log(wandb_resource, "data", "after")
    after = _tick(sensor, wandb_resource, instance, result.cursor)
    assert [r.tags["wandb/version"] for r in after.run_requests] == ["v1"]


def test_alias_sensor_and_promotion(wandb_resource, instance):
    sensor = wandb_alias_sensor(
        name="deploy", collection="wandb-registry-model/bikes", alias="production", job=react,
        run_config_fn=lambda e: {"model": e.artifact_name},
    )
    cursor = _tick(sensor, wandb_resource, instance, None).cursor
    m0 = _log(wandb_resource, "model", "w0")
    m1 = _log(wandb_resource, "model", "w1")

    first = wandb_resource.promote(m0, "wandb-registry-model/bikes")
    assert first.previous is None and first.moved and first.current.version == "v0"
    tick = _tick(sensor, wandb_resource, instance, cursor)
    [request] = tick.run_requests
    assert request.tags["wandb/artifact"] == "default/wandb-registry-model/bikes:v0"
    assert request.tags["wandb/alias"] == "production" and "wandb/previous_version" not in request.tags
    assert request.run_config == {"model": "default/wandb-registry-model/bikes:v0"}

    second = wandb_resource.promote(m1.qualified_name, "wandb-registry-model/bikes")
    assert second.previous.id == m0.id and second.current.id == m1.id and second.moved
    [request] = _tick(sensor, wandb_resource, instance, tick.cursor).run_requests
    assert request.tags["wandb/artifact"] == "default/wandb-registry-model/bikes:v1"
    assert request.tags["wandb/previous_version"] == "v0"

    again = wandb_resource.promote(m1, "wandb-registry-model/bikes")
    assert not again.moved and again.previous.id == m1.id
    assert wandb_resource.holder("wandb-registry-model/bikes").id == m1.id
    # Other aliases of the collection do not fire this sensor.
    wandb_resource.promote(m0, "wandb-registry-model/bikes", alias="staging")
    assert _tick(sensor, wandb_resource, instance, tick.cursor).run_requests[-1].tags["wandb/version"] == "v1"
    assert len(_tick(sensor, wandb_resource, instance, tick.cursor).run_requests) == 1


def test_definition_errors():
    # version_filter is checked when the sensor is defined, with the query API's fields and operators.
    with pytest.raises(
        ValueError,
        match=r"version_filter of sensor 'x': unknown filter field 'metdata.rows' for artifact versions; "
        r"valid fields: \['alias', 'created_at', 'description', 'tag', 'updated_at', 'version', 'metadata.<key>'\]",
    ):
        wandb_artifact_sensor(name="x", collection="data", job=react, version_filter={"metdata.rows": 1})
    # Accepted before, rejected by the API (and now by the sensor): regexes on versions, unknown fields.
    with pytest.raises(ValueError, match=r"unknown operator '\$regex' for 'version'"):
        wandb_artifact_sensor(name="x", collection="data", job=react, version_filter={"version": {"$regex": "v1"}})
    with pytest.raises(ValueError, match=r"unknown filter field 'name' for artifact versions"):
        wandb_alias_sensor(name="x", collection="data", job=react, version_filter={"name": "data"})
    with pytest.raises(ValueError, match=r"'version' takes a version such as 'v3', got 'latest'"):
        wandb_artifact_sensor(name="x", collection="data", job=react, version_filter={"version": "latest"})
    with pytest.raises(ValueError, match=r"unknown operator '\$near' for 'tag'"):
        wandb_artifact_sensor(name="x", collection="data", job=react, version_filter={"tag": {"$near": "a"}})
    with pytest.raises(ValueError, match="start='later'"):
        wandb_artifact_sensor(name="x", collection="data", job=react, start="later")
    with pytest.raises(ValueError, match="max_per_tick"):
        wandb_artifact_sensor(name="x", collection="data", job=react, max_per_tick=0)
    with pytest.raises(ValueError, match="Alias 'v3' is invalid"):
        wandb_alias_sensor(name="x", collection="data", alias="v3", job=react)


def test_version_filter_semantics():
    doc = {"tags": ["a", "b"], "aliases": ["latest"], "version": "v3", "metadata": {"acc": 0.9, "name": "m", "n": 5}}
    assert version_matches(doc, {"tag": "a", "metadata.acc": {"$gt": 0.5}})
    assert not version_matches(doc, {"tag": "c"})
    assert version_matches(doc, {"$or": [{"tag": "c"}, {"alias": "latest"}]})
    assert version_matches(doc, {"metadata.name": {"$regex": "^m$"}, "metadata.n": {"$in": [5, 6]}})
    assert not version_matches(doc, {"metadata.n": "5"})  # typed: 5 is not "5"
    assert version_matches(doc, {"metadata.missing": {"$exists": False}, "version": {"$ne": "v2"}})
    assert version_matches(doc, {"$nor": [{"tag": "z"}]})
    # Set operators the API has: $size and $all.
    assert version_matches(doc, {"tag": {"$size": 2}}) and not version_matches(doc, {"tag": {"$size": 1}})
    assert version_matches(doc, {"tag": {"$all": ["a", "b"]}})
    assert not version_matches(doc, {"tag": {"$all": ["a", "c"]}})
    assert version_matches(doc, {"description": None})
    assert version_matches({**doc, "description": "nice"}, {"description": {"$regex": "ic"}})


def test_version_comparisons_use_indices_as_the_query_api_does():
    # "v10" > "v9" as versions (indices), although not as strings.
    def doc(version: str) -> dict:
        return {"tags": [], "aliases": [], "version": version, "metadata": {}}

    assert version_matches(doc("v10"), {"version": {"$gt": "v9"}})
    assert not version_matches(doc("v9"), {"version": {"$gt": "v9"}})
    assert version_matches(doc("v2"), {"version": {"$lt": "v10"}})
    assert version_matches(doc("v10"), {"version": {"$in": ["v1", "v10"]}, "$nor": [{"version": "v1"}]})
    # A dict without a version: conditions on it do not hold, the others are evaluated.
    assert version_matches({"tags": ["a"]}, {"tag": "a", "version": {"$ne": "v1"}})
    assert not version_matches({"tags": ["a"]}, {"version": {"$gte": "v0"}})


def test_a_sensor_and_the_query_api_select_the_same_versions(wandb_resource, instance):
    flt = {"version": {"$gt": "v9"}, "metadata.rows": {"$gte": 5}, "tag": {"$size": 1}}
    sensor = wandb_artifact_sensor(
        name="late", collection="data", job=react, start="beginning", max_per_tick=50, version_filter=flt
    )
    for i in range(12):
        _log(wandb_resource, "data", f"d{i}", metadata={"rows": i}, tags=["a"] if i != 11 else ["a", "b"])
    fired = [r.tags["wandb/version"] for r in _tick(sensor, wandb_resource, instance, None).run_requests]
    assert fired == ["v10"]  # v11 has two tags
    # The query API, on a registry holding the same versions, finds the same one.
    for i in range(12):
        wandb_resource.link(f"tester/pipelines/data:v{i}", "wandb-registry-dataset/late")
    found = wandb_resource.api().registries().versions(filter=flt)
    assert [v.version for v in found] == ["v10"]



def test_names_are_derived_and_the_resource_key_is_a_parameter(wandb_resource, instance):
    """No name: one derived from the collection (and alias). The resource may be bound under any key."""
    alias = wandb_alias_sensor(collection="wandb-registry-model/bike-models", alias="production", job=react)
    assert alias.name == "wandb_alias_wandb_registry_model_bike_models_production"
    assert wandb_artifact_sensor(collection="bikes/features", job=react).name == "wandb_artifact_bikes_features"
    sensor = wandb_artifact_sensor(collection="pipelines/data", job=react, resource_key="tracking")
    dg.Definitions(jobs=[react], sensors=[sensor], resources={"tracking": wandb_resource})  # loads: key found

    def tick(cursor: str | None, resources: dict) -> Any:
        with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
            return sensor(context)

    start = tick(None, {"tracking": wandb_resource}).cursor
    _log(wandb_resource, "data", "x")
    [request] = tick(start, {"tracking": wandb_resource}).run_requests
    assert request.tags["wandb/artifact"] == "tester/pipelines/data:v0"
    # The daemon's path (evaluate_tick, which passes no resource arguments) reads the same key.
    with dg.build_sensor_context(instance=instance, cursor=start, resources={"tracking": wandb_resource}) as context:
        assert [r.run_key for r in sensor.evaluate_tick(context).run_requests] == [request.run_key]
    with pytest.raises(TypeError, match="'tracking' is str, not a WandbResource"):
        tick(start, {"tracking": "not a resource"})
    with pytest.raises(ValueError, match="resource_key='my key' must be a resource key"):
        wandb_artifact_sensor(collection="data", job=react, resource_key="my key")
