"""What the IO manager tells Dagster about each output: its data version and its materialization metadata,
read back from real runs (dg.materialize on a test instance) and Dagster's own staleness resolver."""

from __future__ import annotations

from typing import Any

import dagster as dg
from dagster._core.definitions.data_version import StaleStatus
from dagster._utils.test.data_versions import get_stale_status_resolver  # Dagster's own staleness helper


def _data_version(instance: Any, key: str) -> str | None:
    record = instance.get_latest_materialization_event(dg.AssetKey(key))
    return record.asset_materialization.tags.get("dagster/data_version")


def test_the_digest_is_the_data_version_and_drives_staleness(resources, instance, mat_meta):
    content = {"rows": [1, 2, 3]}

    @dg.asset
    def source() -> dict:
        return dict(content)

    @dg.asset
    def derived(source: dict) -> int:
        return len(source["rows"])

    def status(key: str) -> StaleStatus:
        return get_stale_status_resolver(instance, [source, derived]).get_status(dg.AssetKey(key))

    first = dg.materialize([source, derived], resources=resources, instance=instance)
    digest = mat_meta(first, "source")["wandb/digest"]
    assert _data_version(instance, "source") == digest
    assert _data_version(instance, "derived") == mat_meta(first, "derived")["wandb/digest"]
    assert status("derived") == StaleStatus.FRESH

    # Unchanged content, in a new run (another run id, no code_version): the same data version, so the
    # downstream asset stays fresh.
    dg.materialize([source], resources=resources, instance=instance)
    assert _data_version(instance, "source") == digest
    assert status("derived") == StaleStatus.FRESH

    # Changed content: a new data version, and the downstream asset is stale until it runs again.
    content["rows"] = [1, 2, 3, 4]
    changed = dg.materialize([source], resources=resources, instance=instance)
    assert _data_version(instance, "source") == mat_meta(changed, "source")["wandb/digest"] != digest
    assert status("derived") == StaleStatus.STALE


def test_a_users_own_data_version_wins(resources, instance):
    @dg.asset
    def pinned() -> dg.Output[int]:
        return dg.Output(7, data_version=dg.DataVersion("mine"))

    dg.materialize([pinned], resources=resources, instance=instance)
    assert _data_version(instance, "pinned") == "mine"
