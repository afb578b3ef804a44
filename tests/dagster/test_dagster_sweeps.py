"""Sweeps as Dagster work (wandb_sweep_job / wandb_sweep_graph / wandb_sweep_sensor): each trial is a Dagster
step and a run of the sweep grouped by the Dagster run, the best trial's model is logged and linked, the feed's
SWEEP_BEST_RUN events drive a sensor. Real Dagster runs (in process, and the multiprocess executor) on a real
workspace."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from wandb_dagster.dagster import (
    SWEEP_IO_MANAGER_KEY,
    SweepBest,
    WandbResource,
    load_artifact_object,
    wandb_sweep_graph,
    wandb_sweep_job,
    wandb_sweep_sensor,
)
from wandb_dagster.sdk.workspace import Workspace

SWEEP = {  # W&B's documented form: method, metric with goal, parameters with values
    "method": "grid",
    "metric": {"name": "loss", "goal": "minimize"},
    "parameters": {"alpha": {"values": [0.1, 1.0, 3.0]}},
}
REGISTRY = "wandb-registry-model/sweep-models"


def _train(run: Any) -> dict:
    loss = (run.config["alpha"] - 1.0) ** 2
    run.log({"loss": loss})
    return {"alpha": run.config["alpha"], "pid": os.getpid()}


def _definitions(job: dg.JobDefinition, resource: WandbResource) -> dg.JobDefinition:
    return dg.Definitions(jobs=[job], resources={"wandb": resource}).resolve_job_def(job.name)


def _best_events(resource: WandbResource, sweep_id: str) -> list[Any]:
    return list(resource.api().events(types=["SWEEP_BEST_RUN"], filter={"payload.sweep": sweep_id}, limit=100))


def test_each_trial_is_a_step_and_a_run_of_the_sweep_and_the_best_model_is_linked(wandb_resource, instance):
    job = wandb_sweep_job(
        "alpha_sweep", SWEEP, _train, link_to=REGISTRY, link_aliases=["best"], executor_def=dg.in_process_executor
    )
    result = _definitions(job, wandb_resource).execute_in_process(instance=instance)
    assert result.success
    trial_steps = sorted(
        e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_SUCCESS
        and e.step_key and e.step_key.startswith("alpha_sweep_trial")
    )
    assert trial_steps == [f"alpha_sweep_trial[trial_{i}]" for i in range(3)]

    best = result.output_for_node("alpha_sweep_best")
    assert isinstance(best, SweepBest)
    assert best.params == {"alpha": 1.0} and best.value == 0.0 and best.metric == "loss" and best.trials == 3
    sweep = wandb_resource.api().sweep(best.sweep)
    assert sweep.name == f"alpha_sweep-{result.run_id[:8]}"  # named after the Dagster run
    assert sweep.state == "FINISHED"  # every grid point was tried
    runs = sweep.runs
    assert len(runs) == 3 and {r.config["alpha"] for r in runs} == {0.1, 1.0, 3.0}
    for run in runs:  # each step's run is a run of the sweep, grouped by the Dagster run
        assert run.sweep_id == sweep.id and run.group == result.run_id and run.state == "finished"
        assert run.config["dagster"]["run_id"] == result.run_id
        assert run.config["dagster"]["step"].startswith("alpha_sweep_trial[trial_")
    assert best.run == "/".join(sweep.best_run().path)

    # The best step logged the best trial's model and linked it: the registry serves it by alias.
    served = wandb_resource.artifact(f"{REGISTRY}:best")
    assert load_artifact_object(served)["alpha"] == 1.0
    assert served.metadata["sweep"]["run"] == best.run and served.metadata["sweep"]["value"] == 0.0
    assert best.linked == served.qualified_name and best.artifact.endswith("/alpha_sweep-model:v0")
    logged = wandb_resource.artifact(best.artifact)
    producer = logged.logged_by()
    assert producer.group == result.run_id and producer.sweep_id is None  # the best step's own run
    (output,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_OUTPUT
                 and e.step_key == "alpha_sweep_best"]
    meta = output.event_specific_data.metadata
    assert isinstance(meta["wandb/loss"], dg.FloatMetadataValue) and meta["wandb/loss"].value == 0.0
    assert meta["wandb/linked"].value == served.qualified_name

    # The feed announced each new best: alpha 0.1 (first), then 1.0 (better); 3.0 was no better.
    events = _best_events(wandb_resource, sweep.id)
    assert [(e.payload["value"], e.payload["previous_value"]) for e in events] == [(0.81, None), (0.0, 0.81)]


def test_a_failing_trial_is_recorded_failed_and_the_sweep_goes_on(wandb_resource, instance):
    def train(run: Any) -> dict:
        if run.config["alpha"] == 3.0:
            raise RuntimeError("diverged")
        return _train(run)

    job = wandb_sweep_job("flaky_sweep", SWEEP, train, executor_def=dg.in_process_executor)
    with_app = WandbResource(
        database_url=wandb_resource.database_url, storage_root=wandb_resource.storage_root, entity="tester",
        project="pipelines", ui_url="http://127.0.0.1:8600",
    )
    result = _definitions(job, with_app).execute_in_process(instance=instance)
    assert result.success  # the trial failed, not the step: W&B's agent goes on too
    best = result.output_for_node("flaky_sweep_best")
    states = sorted((r.config["alpha"], r.state) for r in wandb_resource.api().sweep(best.sweep).runs)
    assert states == [(0.1, "finished"), (1.0, "finished"), (3.0, "failed")]
    failed = [t for t in result.output_for_node("flaky_sweep_trial").values() if t.state == "failed"]
    assert len(failed) == 1 and "diverged" in (failed[0].error or "") and failed[0].model is None
    assert best.params == {"alpha": 1.0}
    # With the app's address, the best step links the model's version page, the best run's and the sweep's.
    (output,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_OUTPUT
                 and e.step_key == "flaky_sweep_best"]
    urls = {k: v.value for k, v in output.event_specific_data.metadata.items() if isinstance(v, dg.UrlMetadataValue)}
    entity, project, sweep_id = best.sweep.split("/")
    assert urls == {
        "wandb/version_url": f"http://127.0.0.1:8600/{entity}/{project}/artifacts/model/flaky_sweep-model/v0",
        "wandb/run_url": f"http://127.0.0.1:8600/{entity}/{project}/runs/{best.run.split('/')[-1]}",
        "wandb/sweep_url": f"http://127.0.0.1:8600/{entity}/{project}/sweeps/{sweep_id}",
    }


def test_dagster_runs_join_one_sweep_and_no_grid_point_is_run_twice(wandb_resource, instance):
    from wandb_dagster.sdk.sweeps import sweep as create_sweep

    settings = wandb_resource._settings()
    sweep_id = create_sweep(SWEEP, entity="tester", project="pipelines", settings=settings)
    graph = wandb_sweep_graph("join_sweep", SWEEP, _train)
    # The graph in a job of one's own: the definitions bind the IO manager of the trials' values too.
    resources = {"wandb": wandb_resource, SWEEP_IO_MANAGER_KEY: dg.FilesystemIOManager()}
    job = dg.Definitions(jobs=[graph.to_job()], resources=resources).resolve_job_def("join_sweep")
    config = {"ops": {"join_sweep_start": {"config": {"sweep_id": f"tester/pipelines/{sweep_id}", "trials": 2}}}}
    first = job.execute_in_process(instance=instance, run_config=config)
    assert wandb_resource.api().sweep(f"tester/pipelines/{sweep_id}").state == "RUNNING"  # a point is left
    second = job.execute_in_process(instance=instance, run_config=config)
    assert first.success and second.success
    # Two trials in the first run, the last grid point in the second; its other slot found nothing left.
    assert first.output_for_node("join_sweep_best").trials == 2
    assert second.output_for_node("join_sweep_best").trials == 1
    joined = wandb_resource.api().sweep(f"tester/pipelines/{sweep_id}")
    runs = joined.runs
    assert sorted(r.config["alpha"] for r in runs) == [0.1, 1.0, 3.0] and joined.state == "FINISHED"
    assert sorted(r.group for r in runs) == sorted([first.run_id, first.run_id, second.run_id])


def _multiprocess_sweep_job() -> dg.JobDefinition:
    """Reconstructed in each step's process; the workspace comes from the environment the test sets."""
    job = wandb_sweep_job(
        "mp_sweep",
        {"method": "grid", "metric": {"name": "loss", "goal": "minimize"},
         "parameters": {"alpha": {"values": [0.5, 1.0, 2.0, 4.0]}}},
        _slow_train,
        max_concurrent=2,
        link_to=REGISTRY,
    )
    return _definitions(job, WandbResource(entity="tester", project="pipelines"))


def _slow_train(run: Any) -> dict:
    run.summary["started"] = time.time()
    time.sleep(2.0)
    model = _train(run)
    run.summary["ended"] = time.time()
    return model


def test_the_multiprocess_executor_runs_trials_in_parallel_within_max_concurrent(tmp_path, instance, monkeypatch):
    # SQLite only: step processes are slow to start; the in-process tests run on both databases.
    monkeypatch.setenv("WANDB_DAGSTER_DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    monkeypatch.setenv("WANDB_DAGSTER_STORAGE", str(tmp_path / "blobs"))
    job = dg.build_reconstructable_job(
        "test_dagster_sweeps", "_multiprocess_sweep_job", reconstructor_working_directory=str(Path(__file__).parent)
    )
    with dg.execute_job(job, instance=instance) as result:
        assert result.success
        best = result.output_for_node("mp_sweep_best")
    resource = WandbResource(entity="tester", project="pipelines")
    try:
        runs = resource.api().sweep(best.sweep).runs
        assert len(runs) == 4 and all(r.group == result.run_id and r.state == "finished" for r in runs)
        spans = [(r.summary["started"], r.summary["ended"]) for r in runs]
        most = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
        assert most <= 2, f"{most} trials ran at once with max_concurrent=2: {spans}"
        assert best.params == {"alpha": 1.0}
        served = load_artifact_object(resource.artifact(f"{REGISTRY}:latest"))
        assert served["alpha"] == 1.0 and served["pid"] != os.getpid()  # trained in a step's own process
    finally:
        Workspace.close_all()


@dg.op
def _react() -> None:
    pass


@dg.job
def _react_job() -> None:
    _react()


def test_the_sweep_sensor_fires_once_per_better_trial(wandb_resource, instance):
    sensor = wandb_sweep_sensor(job=_react_job, project="tester/pipelines")
    assert sensor.name == "wandb_sweep_tester_pipelines_best"

    def tick(cursor: str | None) -> dg.SensorResult:
        with dg.build_sensor_context(instance=instance, cursor=cursor, resources={"wandb": wandb_resource}) as ctx:
            out = sensor(ctx)
        assert isinstance(out, dg.SensorResult)
        return out

    first = tick(None)
    assert not first.run_requests and "first tick" in first.skip_reason.skip_message
    job = wandb_sweep_job("sensed_sweep", SWEEP, _train, executor_def=dg.in_process_executor)
    result = _definitions(job, wandb_resource).execute_in_process(instance=instance)
    best = result.output_for_node("sensed_sweep_best")
    fired = tick(first.cursor)
    requests = fired.run_requests or []
    assert [r.tags["wandb/value"] for r in requests] == ["0.81", "0.0"]
    assert requests[-1].tags["wandb/run"] == best.run and requests[-1].tags["wandb/sweep"] == best.sweep
    assert requests[-1].tags["wandb/previous_value"] == "0.81" and requests[-1].tags["wandb/metric"] == "loss"
    # The same cursor again gives the same run keys (Dagster skips them); the new cursor gives nothing.
    assert [r.run_key for r in tick(first.cursor).run_requests or []] == [r.run_key for r in requests]
    assert not tick(fired.cursor).run_requests

    # One sweep only: another sweep's improvements are not its business.
    sweep_id = best.sweep.split("/")[-1]
    only_other = wandb_sweep_sensor(job=_react_job, project="tester/pipelines", sweep_id="nosuchsweep")
    with dg.build_sensor_context(instance=instance, cursor=first.cursor, resources={"wandb": wandb_resource}) as ctx:
        assert not only_other(ctx).run_requests
    only_this = wandb_sweep_sensor(job=_react_job, project="tester/pipelines", sweep_id=sweep_id, name="this_one")
    with dg.build_sensor_context(instance=instance, cursor=first.cursor, resources={"wandb": wandb_resource}) as ctx:
        assert len(only_this(ctx).run_requests or []) == 2


def test_a_sweep_yaml_file_as_wandb_sweep_reads_it(wandb_resource, instance, tmp_path):
    # The form of W&B's documentation (sweep.yaml), with a distribution inferred from min/max and a run_cap.
    config = tmp_path / "sweep.yaml"
    config.write_text(
        "method: random\nmetric:\n  name: loss\n  goal: minimize\nrun_cap: 2\n"
        "parameters:\n  alpha:\n    min: 0.5\n    max: 1.5\n"
    )
    job = wandb_sweep_job("yaml_sweep", config, _train, executor_def=dg.in_process_executor)
    result = _definitions(job, wandb_resource).execute_in_process(instance=instance)
    best = result.output_for_node("yaml_sweep_best")
    sweep = wandb_resource.api().sweep(best.sweep)
    assert best.trials == 2 and sweep.config["parameters"]["alpha"]["distribution"] == "uniform"
    assert all(0.5 <= r.config["alpha"] <= 1.5 for r in sweep.runs) and sweep.state == "FINISHED"  # run_cap


def test_mistakes_fail_when_the_definitions_load():
    with pytest.raises(ValueError, match="no 'metric'"):
        wandb_sweep_job("s", {"method": "grid", "parameters": {"a": {"values": [1]}}}, _train)
    with pytest.raises(ValueError, match="without run_cap has no end; pass trials=N"):
        wandb_sweep_job("s", {"method": "random", "metric": {"name": "loss"}, "parameters": {"a": {"min": 0.0, "max": 1.0}}},
                        _train)
    # Random search with trials= is fine; the configuration itself is validated as wandb.sweep validates it.
    assert wandb_sweep_job("s", {"method": "random", "metric": {"name": "loss"},
                                 "parameters": {"a": {"min": 0.0, "max": 1.0}}}, _train, trials=3).name == "s"
    with pytest.raises(ValueError, match="method"):
        wandb_sweep_job("s", {"method": "gird", "metric": {"name": "loss"}, "parameters": {"a": {"values": [1]}}}, _train)
    with pytest.raises(ValueError, match="max_concurrent=0"):
        wandb_sweep_job("s", SWEEP, _train, max_concurrent=0)
    with pytest.raises(ValueError, match="max_concurrent=2 limits the job's own multiprocess executor"):
        wandb_sweep_job("s", SWEEP, _train, max_concurrent=2, executor_def=dg.in_process_executor)
    with pytest.raises(ValueError, match="name='my sweep'"):
        wandb_sweep_job("my sweep", SWEEP, _train)
