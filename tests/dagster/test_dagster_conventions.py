"""Conventions of the Dagster integration that a user meets without asking: where input downloads go, no
warnings for ops that return nothing, a failed step's run ends ``failed`` without a hook, and the ``dagster``
extra brings what ``dagster dev`` needs."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from wandb_dagster.dagster import WandbArtifactIOManager, WandbResource
from wandb_dagster.dagster.resources import _tracking_run_id


def _warnings(instance, run_id: str) -> list[str]:
    return [e.user_message for e in instance.all_logs(run_id) if e.level >= 30 and not e.is_dagster_event]


def test_input_downloads_go_under_the_cache_folder(database_url, tmp_path, instance, monkeypatch):
    cache = tmp_path / "my-cache"
    monkeypatch.setenv("WANDB_DAGSTER_CACHE_DIR", str(cache))
    wandb = WandbResource(database_url=database_url, storage_root=str(tmp_path / "blobs"), project="p")
    seen: dict[str, Path] = {}
    (tmp_path / "report.txt").write_text("hello\n")

    @dg.asset
    def report() -> Path:
        return tmp_path / "report.txt"

    @dg.asset
    def reader(report: Path) -> int:
        seen["path"] = report
        return len(report.read_text())

    resources = {"wandb": wandb, "io_manager": WandbArtifactIOManager(wandb=wandb)}  # no download_dir
    try:
        assert dg.materialize([report, reader], resources=resources, instance=instance).success
    finally:
        from wandb_dagster.sdk.workspace import Workspace

        Workspace.close_all()
    # <cache folder>/inputs/<workspace>/<collection>-<version id>/report.txt: per user, per workspace.
    path = seen["path"]
    assert path.read_text() == "hello\n" and path.name == "report.txt"
    assert path.parent.parent.parent == cache / "inputs"
    assert path.parent.name.startswith("report-")


def test_ops_that_return_nothing_do_not_warn(resources, instance, wandb_resource):
    @dg.op
    def notify():  # the usual side-effect op: no annotation, returns None
        pass

    @dg.op
    def typed() -> None:
        pass

    @dg.op(out=dg.Out(dg.Nothing))
    def nothing():
        pass

    @dg.job
    def side_effects():
        notify()
        typed()
        nothing()

    @dg.asset
    def table_written_elsewhere() -> None:  # an asset with no value
        pass

    job_result = side_effects.execute_in_process(resources=resources, instance=instance)
    asset_result = dg.materialize([table_written_elsewhere], resources=resources, instance=instance)
    assert job_result.success and asset_result.success
    assert _warnings(instance, job_result.run_id) == [] and _warnings(instance, asset_result.run_id) == []
    store = wandb_resource.api()._ws.store
    assert store.collection("tester", "pipelines", "notify.result") is None  # nothing was logged

    # An asset whose body forgot its return value is still pointed out: downstream inputs cannot load it.
    @dg.asset
    def forgot():
        pass

    forgot_result = dg.materialize([forgot], resources=resources, instance=instance)
    assert any("returned None" in m for m in _warnings(instance, forgot_result.run_id))


def test_op_reading_an_output_that_was_none_says_so(resources, instance):
    @dg.op
    def produce():
        return None

    @dg.op
    def consume(value) -> int:
        return 1

    @dg.job
    def chained():
        consume(produce())

    result = chained.execute_in_process(resources=resources, instance=instance, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "did the op return None" in failure.step_failure_data.error.to_string()


def _state(wandb_resource: WandbResource, dagster_run_id: str, step: str) -> str:
    store = wandb_resource.api()._ws.store
    return store.get_run("tester", "pipelines", _tracking_run_id(dagster_run_id, step)).state


def test_a_failed_step_ends_its_run_failed_without_a_hook(resources, instance, wandb_resource):
    @dg.asset
    def fine(wandb: WandbResource) -> int:
        wandb.run().log({"ok": 1})
        return 1

    @dg.asset(deps=[fine])
    def broken(wandb: WandbResource) -> int:
        wandb.run().log({"before_crash": 1})
        raise RuntimeError("boom")

    result = dg.materialize([fine, broken], resources=resources, instance=instance, raise_on_error=False)
    assert not result.success
    assert _state(wandb_resource, result.run_id, "fine") == "finished"
    assert _state(wandb_resource, result.run_id, "broken") == "failed"
    # What it logged before the crash is kept.
    store = wandb_resource.api()._ws.store
    run = store.get_run("tester", "pipelines", _tracking_run_id(result.run_id, "broken"))
    assert [row["before_crash"] for row in store.history(run.pk)] == [1]


def test_a_step_that_succeeds_on_retry_ends_finished(resources, instance, wandb_resource):
    attempts: list[int] = []

    @dg.asset(retry_policy=dg.RetryPolicy(max_retries=1))
    def flaky(wandb: WandbResource) -> int:
        wandb.run().log({"attempt": len(attempts)})
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("transient")
        return 2

    result = dg.materialize([flaky], resources=resources, instance=instance)
    assert result.success and len(attempts) == 2
    assert _state(wandb_resource, result.run_id, "flaky") == "finished"


def _failing_multiprocess_job() -> dg.JobDefinition:
    """Reconstructed in each step's process; the workspace comes from the environment the test sets."""
    wandb_res = WandbResource(entity="tester", project="pipelines")

    @dg.asset
    def mp_ok(wandb: WandbResource) -> int:
        wandb.run().log({"ok": 1})
        return 1

    @dg.asset(deps=[mp_ok])
    def mp_broken(wandb: WandbResource) -> int:
        wandb.run().log({"before_crash": 1})
        raise RuntimeError("boom")

    job = dg.define_asset_job("mp_fail", selection=[mp_ok, mp_broken], executor_def=dg.multiprocess_executor)
    defs = dg.Definitions(
        assets=[mp_ok, mp_broken], jobs=[job],
        resources={"wandb": wandb_res, "io_manager": WandbArtifactIOManager(wandb=wandb_res)},
    )
    return defs.resolve_job_def("mp_fail")


def test_a_failed_step_in_its_own_process_ends_its_run_failed(tmp_path, instance, monkeypatch):
    # Each step's process tears its resources down right after the step: the failure is read there. SQLite
    # only (processes are slow to start); the in-process test above runs on both databases.
    monkeypatch.setenv("WANDB_DAGSTER_DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    monkeypatch.setenv("WANDB_DAGSTER_STORAGE", str(tmp_path / "blobs"))
    job = dg.build_reconstructable_job(
        "test_dagster_conventions", "_failing_multiprocess_job", reconstructor_working_directory=str(Path(__file__).parent)
    )
    with dg.execute_job(job, instance=instance, raise_on_error=False) as result:
        assert not result.success
        run_id = result.run_id
    resource = WandbResource(entity="tester", project="pipelines")
    try:
        assert _state(resource, run_id, "mp_ok") == "finished"
        assert _state(resource, run_id, "mp_broken") == "failed"
    finally:
        from wandb_dagster.sdk.workspace import Workspace

        Workspace.close_all()


def test_the_dagster_extra_brings_a_matching_webserver_for_dagster_dev():
    import importlib.metadata as metadata
    import shutil
    import subprocess
    import sys

    from packaging.requirements import Requirement

    extra = [Requirement(r) for r in metadata.requires("wandb-dagster") or []]
    in_extra = {r.name for r in extra if r.marker is not None and r.marker.evaluate({"extra": "dagster"})}
    assert {"dagster", "dagster-webserver"} <= in_extra
    # dagster-webserver pins dagster to its own version: what the resolver installed runs together.
    assert metadata.version("dagster-webserver") == metadata.version("dagster")
    webserver = shutil.which("dagster-webserver", path=str(Path(sys.executable).parent))
    assert webserver is not None
    out = subprocess.run([webserver, "--version"], capture_output=True, text=True, timeout=120, check=True).stdout
    assert metadata.version("dagster") in out
