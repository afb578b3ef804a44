"""Observable source assets on a collection's alias: the observed DataVersion is the version's digest (as
the IO manager reports for what it writes), the metadata names the version, and a downstream asset loads
the observed version."""

from __future__ import annotations

from typing import Any

import dagster as dg
import pytest

import wandb_dagster as wandb
from wandb_dagster import Artifact
from wandb_dagster.dagster import WandbResource, wandb_observable_source_asset


def _log_object(resource: WandbResource, name: str, value: Any) -> Artifact:
    """A version written by the IO manager itself (so that it holds a serialized object)."""

    @dg.asset(name=name)
    def _writer() -> Any:
        return value

    result = dg.materialize([_writer], resources={"wandb": resource, "io_manager": _io(resource)})
    art_name = result.get_asset_materialization_events()[0].materialization.metadata["wandb/artifact"].value
    return resource.artifact(art_name)


def _io(resource: WandbResource) -> Any:
    from wandb_dagster.dagster import WandbArtifactIOManager

    return WandbArtifactIOManager(wandb=resource)


def _observed(instance: Any, key: str | list[str]) -> Any:
    [record] = instance.fetch_observations(dg.AssetKey(key), limit=1).records
    return record.event_log_entry.asset_observation


def test_observes_the_alias_version_and_downstream_loads_it(wandb_resource, resources, instance):
    v0 = _log_object(wandb_resource, "weights", {"w": 1})
    v1 = _log_object(wandb_resource, "weights", {"w": 2})
    wandb_resource.promote(v0, "wandb-registry-model/weights-reg", alias="production")
    source = wandb_observable_source_asset(
        "served", collection="wandb-registry-model/weights-reg", alias="production"
    )

    @dg.asset
    def report(served: dict) -> int:
        return served["w"]

    defs = dg.Definitions(assets=[source, report], resources=resources)
    observe_job = defs.get_implicit_global_asset_job_def()
    assert observe_job.execute_in_process(instance=instance, asset_selection=[source.key]).success
    observation = _observed(instance, "served")
    # The digest is the DataVersion, as for a materialization the IO manager wrote of the same content.
    assert observation.tags["dagster/data_version"] == v0.digest
    metadata = {k: v.value for k, v in observation.metadata.items()}
    assert metadata["wandb/version"] == "v0" and metadata["wandb/digest"] == v0.digest
    assert metadata["wandb/artifact"] == "default/wandb-registry-model/weights-reg:v0"  # registries are the organization's

    # The downstream asset loads the observed version (no materialization of `served` exists).
    result = dg.materialize([source, report], selection=[report.key], resources=resources, instance=instance)
    assert result.output_for_node("report") == 1

    # The alias moves: a new observation, a new data version; latest of the source collection is v1.
    wandb_resource.promote(v1, "wandb-registry-model/weights-reg", alias="production")
    assert observe_job.execute_in_process(instance=instance, asset_selection=[source.key]).success
    assert _observed(instance, "served").tags["dagster/data_version"] == v1.digest
    result = dg.materialize([source, report], selection=[report.key], resources=resources, instance=instance)
    assert result.output_for_node("report") == 2


def test_default_collection_latest_and_missing(wandb_resource, resources, instance):
    latest = wandb_observable_source_asset(["raw", "rows"])  # the IO manager's collection for the key
    defs = dg.Definitions(assets=[latest], resources=resources)
    job = defs.get_implicit_global_asset_job_def()
    assert job.execute_in_process(instance=instance, asset_selection=[latest.key]).success
    missing = _observed(instance, ["raw", "rows"])
    assert "dagster/data_version" not in missing.tags and missing.metadata["wandb/missing"].value is True

    with wandb.init(settings=wandb_resource._settings()) as run:
        art = Artifact("raw.rows", type="dataset")
        with art.new_file("rows.txt") as f:
            f.write("1\n2\n")
        logged = run.log_artifact(art)
    assert job.execute_in_process(instance=instance, asset_selection=[latest.key]).success
    assert _observed(instance, ["raw", "rows"]).tags["dagster/data_version"] == logged.digest


def test_bad_arguments():
    with pytest.raises(ValueError, match="not a version"):
        wandb_observable_source_asset("x", collection="bikes/model:v3")
    with pytest.raises(ValueError, match="resource_key"):
        wandb_observable_source_asset("x", resource_key="not a key")
