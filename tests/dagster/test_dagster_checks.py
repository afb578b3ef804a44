"""Asset checks on the versions the IO manager writes, run with dg.materialize on a real workspace: blobs
intact (a blob tampered with in storage fails it), and metadata/summary thresholds."""

from __future__ import annotations

import os
from typing import Any

import dagster as dg
import pytest

from wandb_dagster.dagster import WandbResource, wandb_blob_check, wandb_threshold_check
from wandb_dagster.storage.hashing import b64_to_hex


def _check_results(result: Any) -> dict[str, Any]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_blob_check_passes_then_fails_on_a_tampered_blob(resources, instance, wandb_resource):
    @dg.asset(metadata={"wandb": {"type": "dataset"}})
    def table() -> dict:
        return {"rows": list(range(100))}

    check = wandb_blob_check(table)
    result = dg.materialize([table, check], resources=resources, instance=instance)
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.passed, evaluation.metadata
    assert evaluation.metadata["files_checked"].value == 1
    assert evaluation.metadata["bytes_checked"].value > 0

    # Damage the stored blob (same size, one byte changed), behind the workspace's back.
    art = wandb_resource.artifact(evaluation.metadata["wandb/artifact"].value)
    [entry] = [e for e in art.manifest if e.path.startswith("output.")]
    path = art.workspace.blobs.blob_path(b64_to_hex(entry.digest))
    os.chmod(path, 0o644)
    with open(path, "rb") as f:
        data = bytearray(f.read())
    data[-1] ^= 0xFF
    with open(path, "wb") as f:
        f.write(bytes(data))

    rerun = dg.materialize(
        [table, check], selection=dg.AssetSelection.checks(check), resources=resources, instance=instance
    )
    [failed] = rerun.get_asset_check_evaluations()
    assert not failed.passed
    problems = failed.metadata["problems"].value
    assert len(problems) == 1 and "output." in problems[0] and "hash to" in problems[0]


def test_blob_check_without_a_wandb_version_fails_and_says_why(wandb_resource, instance):
    @dg.asset
    def plain() -> int:
        return 1

    check = wandb_blob_check(plain)
    result = dg.materialize(
        [plain, check], resources={"wandb": wandb_resource, "io_manager": dg.mem_io_manager}, instance=instance
    )
    [evaluation] = result.get_asset_check_evaluations()
    assert not evaluation.passed and "recorded no W&B version" in evaluation.metadata["reason"].value


def test_threshold_checks_on_summary_and_metadata(resources, instance):
    accuracy = {"value": 0.95}

    @dg.asset(metadata={"wandb": {"type": "model", "metadata": {"rows": 5000}}})
    def model(wandb: WandbResource) -> dict:
        wandb.run().log({"accuracy": accuracy["value"]})
        return {"w": [1, 2]}

    good = wandb_threshold_check(
        model, name="accurate", run_filter={"summary_metrics.accuracy": {"$gte": 0.9}},
        version_filter={"metadata.rows": {"$gt": 1000}},
    )
    big = wandb_threshold_check(model, name="huge", version_filter={"metadata.rows": {"$gt": 10**6}})
    first = _check_results(dg.materialize([model, good, big], resources=resources, instance=instance))
    assert first["accurate"].passed
    assert first["accurate"].metadata["found"].value["summary_metrics.accuracy"] == 0.95
    assert not first["huge"].passed and first["huge"].metadata["found"].value == {"metadata.rows": 5000}

    accuracy["value"] = 0.5
    second = _check_results(dg.materialize([model, good], resources=resources, instance=instance))
    assert not second["accurate"].passed
    assert second["accurate"].metadata["found"].value["summary_metrics.accuracy"] == 0.5


def test_threshold_check_arguments_are_checked_at_definition():
    with pytest.raises(ValueError, match="give version_filter"):
        wandb_threshold_check("model")
    with pytest.raises(ValueError, match="run_filter of check"):
        wandb_threshold_check("model", run_filter={"summary_metrics.acc": {"$bogus": 1}})
