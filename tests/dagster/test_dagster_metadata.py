"""What the IO manager tells Dagster about each output: its data version and its materialization metadata,
read back from real runs (dg.materialize on a test instance) and Dagster's own staleness resolver."""

from __future__ import annotations

from typing import Any

import dagster as dg
import pytest
from dagster._core.definitions.data_version import StaleStatus
from dagster._utils.test.data_versions import get_stale_status_resolver  # Dagster's own staleness helper

from wandb_dagster.dagster import WandbResource  # module level: Dagster resolves the assets' annotations


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


def _stored_metadata(instance: Any, key: str) -> dict[str, Any]:
    """The materialization metadata as Dagster's event log stored it (typed MetadataValues)."""
    record = instance.get_latest_materialization_event(dg.AssetKey(key))
    return dict(record.asset_materialization.metadata)


def _info_messages(instance: Any, run_id: str) -> list[str]:
    return [e.user_message for e in instance.all_logs(run_id) if e.level == 20 and not e.is_dagster_event]


def _with_app(resource: Any, app_url: str | None) -> dict[str, Any]:
    from wandb_dagster.dagster import WandbArtifactIOManager, WandbResource

    wandb = WandbResource(
        database_url=resource.database_url, storage_root=resource.storage_root, entity=resource.entity,
        project=resource.project, app_url=app_url,
    )
    return {"wandb": wandb, "io_manager": WandbArtifactIOManager(wandb=wandb)}


def test_materialization_metadata_speaks_dagsters_types(wandb_resource, instance, monkeypatch):
    monkeypatch.delenv("WANDB_DAGSTER_APP_URL", raising=False)
    payload = b"x" * (3 * 1024 * 1024 + 300 * 1024)  # 3.3 MiB once pickled

    @dg.asset(metadata={"wandb": {"type": "dataset"}})
    def features() -> bytes:
        return payload

    resources = _with_app(wandb_resource, "https://wandb.example.com/team/")
    first = dg.materialize([features], resources=resources, instance=instance)
    meta = _stored_metadata(instance, "features")
    run_entity, run_project, run_id = meta["wandb/run"].value.split("/")

    # Links to the version's and the run's pages, under W&B's paths, on the configured app.
    assert isinstance(meta["wandb/version_url"], dg.UrlMetadataValue)
    assert meta["wandb/version_url"].value == (
        "https://wandb.example.com/team/tester/pipelines/artifacts/dataset/features/v0"
    )
    assert isinstance(meta["wandb/run_url"], dg.UrlMetadataValue)
    assert meta["wandb/run_url"].value == f"https://wandb.example.com/team/{run_entity}/{run_project}/runs/{run_id}"
    # Local storage is a path; the Dagster run that created the version is a run link; sizes have units.
    assert isinstance(meta["wandb/storage"], dg.PathMetadataValue)
    assert meta["wandb/storage"].value == wandb_resource.api()._ws.blobs.root
    assert isinstance(meta["wandb/created_in_dagster_run"], dg.DagsterRunMetadataValue)
    assert meta["wandb/created_in_dagster_run"].value == first.run_id
    size = meta["wandb/size"].value
    assert isinstance(meta["wandb/size"], dg.IntMetadataValue) and 3.2 * 1024**2 < size < 3.4 * 1024**2
    assert isinstance(meta["wandb/size_human"], dg.TextMetadataValue) and meta["wandb/size_human"].value == "3.3 MiB"
    # The version label is in the run's event list.
    assert any("logged features:v0 (3.3 MiB, 1 file)" in m for m in _info_messages(instance, first.run_id))

    # Identical content in a later run: the same version, created in the first run, and the event says so.
    again = dg.materialize([features], resources=resources, instance=instance)
    meta = _stored_metadata(instance, "features")
    assert meta["wandb/version_url"].value.endswith("/features/v0")
    assert meta["wandb/created_in_dagster_run"].value == first.run_id != again.run_id
    assert any(
        "logged features:v0" in m and f"no new version: created in Dagster run {first.run_id}" in m
        for m in _info_messages(instance, again.run_id)
    )


def test_no_app_url_means_no_url_entries(wandb_resource, instance, monkeypatch):
    monkeypatch.delenv("WANDB_DAGSTER_APP_URL", raising=False)

    @dg.asset
    def small() -> dict:
        return {"a": 1}

    dg.materialize([small], resources=_with_app(wandb_resource, None), instance=instance)
    meta = _stored_metadata(instance, "small")
    assert not [k for k, v in meta.items() if isinstance(v, dg.UrlMetadataValue) or k.endswith("_url")]
    assert meta["wandb/size_human"].value.endswith(" B")

    # The environment variable is the default of the resource option.
    monkeypatch.setenv("WANDB_DAGSTER_APP_URL", "http://127.0.0.1:8080")
    dg.materialize([small], resources=_with_app(wandb_resource, None), instance=instance)
    assert _stored_metadata(instance, "small")["wandb/version_url"].value == (
        "http://127.0.0.1:8080/tester/pipelines/artifacts/asset/small/v0"
    )


def test_a_bucket_storage_root_is_text_not_a_path(s3_bucket: str, database_url, instance, monkeypatch):
    from wandb_dagster.dagster import WandbArtifactIOManager, WandbResource

    monkeypatch.delenv("WANDB_DAGSTER_APP_URL", raising=False)
    wandb = WandbResource(database_url=database_url, storage_root=f"s3://{s3_bucket}/wandb", entity="tester", project="p")

    @dg.asset
    def remote() -> dict:
        return {"a": 1}

    try:
        dg.materialize([remote], resources={"wandb": wandb, "io_manager": WandbArtifactIOManager(wandb=wandb)},
                       instance=instance)
    finally:
        from wandb_dagster.sdk.workspace import Workspace

        Workspace.close_all()
    storage = _stored_metadata(instance, "remote")["wandb/storage"]
    assert isinstance(storage, dg.TextMetadataValue) and storage.value.startswith("s3://")


def test_sizes_read_with_binary_units():
    from wandb_dagster.dagster.io_manager import human_size

    assert [human_size(n) for n in (0, 1023, 1024, 12_897_485, 5 * 1024**4, 3 * 1024**5)] == [
        "0 B", "1023 B", "1.0 KiB", "12.3 MiB", "5.0 TiB", "3.0 PiB"
    ]


def test_an_app_url_with_credentials_or_another_scheme_is_refused():
    import pytest

    from wandb_dagster.settings import Settings

    assert Settings.resolve(app_url="https://wandb.example.com/").app_url == "https://wandb.example.com"
    with pytest.raises(ValueError, match="not an http") as bad_scheme:
        Settings.resolve(app_url="ftp://files.example.com")
    assert "ftp://files.example.com" in str(bad_scheme.value)
    with pytest.raises(ValueError, match="carries credentials") as secret:
        Settings.resolve(app_url="https://me:hunter2@wandb.example.com?token=abc")
    assert "hunter2" not in str(secret.value) and "abc" not in str(secret.value)


def test_ui_url_is_the_app_url_and_links_the_version_and_run_pages(wandb_resource, instance, monkeypatch):
    from wandb_dagster.dagster import WandbArtifactIOManager, WandbResource

    monkeypatch.delenv("WANDB_DAGSTER_APP_URL", raising=False)
    wandb = WandbResource(
        database_url=wandb_resource.database_url, storage_root=wandb_resource.storage_root, entity="tester",
        project="pipelines", ui_url="http://127.0.0.1:8600/",
    )

    @dg.asset(metadata={"wandb": {"type": "model"}})
    def scored() -> dict:
        return {"w": 1}

    dg.materialize([scored], resources={"wandb": wandb, "io_manager": WandbArtifactIOManager(wandb=wandb)},
                   instance=instance)
    meta = _stored_metadata(instance, "scored")
    run_id = meta["wandb/run"].value.split("/")[-1]
    # The app's paths (docs: the web app's URL contract): the version page and the run page.
    assert meta["wandb/version_url"].value == "http://127.0.0.1:8600/tester/pipelines/artifacts/model/scored/v0"
    assert meta["wandb/run_url"].value == f"http://127.0.0.1:8600/tester/pipelines/runs/{run_id}"
    both = WandbResource(app_url="http://a.example.com", ui_url="http://b.example.com")
    with pytest.raises(ValueError, match="give only one"):
        both.api()


def test_numeric_summary_metrics_go_into_the_materialization_for_dagsters_plots(wandb_resource, instance):
    from wandb_dagster.dagster import WandbArtifactIOManager

    scores = iter([0.5, 0.25])

    @dg.asset
    def trained(wandb: WandbResource) -> dict:
        run = wandb.run()
        score = next(scores)
        run.log({"rmse": score * 2, "epoch": 1})
        run.log({"rmse": score, "epoch": 2, "note": "text is not plotted", "ok": True})
        run.summary["eval"] = {"auc": 0.9, "bad": float("nan")}
        return {"score": score}

    resources = {"wandb": wandb_resource, "io_manager": WandbArtifactIOManager(wandb=wandb_resource)}
    for _ in range(2):
        dg.materialize([trained], resources=resources, instance=instance)
    records = instance.fetch_materializations(dg.AssetKey("trained"), limit=10).records
    metas = [dict(r.asset_materialization.metadata) for r in reversed(records)]  # oldest first
    for meta in metas:
        assert isinstance(meta["wandb/summary/rmse"], dg.FloatMetadataValue)
        assert isinstance(meta["wandb/summary/epoch"], dg.IntMetadataValue) and meta["wandb/summary/epoch"].value == 2
        assert meta["wandb/summary/eval.auc"].value == 0.9
        # Text, booleans, non-finite values and W&B's own _keys are not metrics.
        assert not {"wandb/summary/note", "wandb/summary/ok", "wandb/summary/eval.bad", "wandb/summary/_step"} & set(meta)
    # One key across materializations: what the Plots tab charts.
    assert [m["wandb/summary/rmse"].value for m in metas] == [0.5, 0.25]
