"""The main demo: the Dagster pipelines of :mod:`example_pipelines.bikes`, end to end, in this process.

Run it with ``python3 dev.py demo`` (or ``python -m example_pipelines.demo``). It records into the embedded
default workspace (or WANDB_DAGSTER_DATABASE_URL) and uses a throwaway Dagster instance. Sensors and the
nightly schedule are evaluated by hand, as the Dagster daemon would, and every run they request is executed:

1. the sensors start (their cursors are the event feed's head);
2. ``refresh_data`` with a small sample -> a new ``features`` version -> the dataset sensor starts
   ``train_model`` -> the model is linked to the registry and becomes ``production`` -> the production
   sensor starts ``deploy_model``, which loads the model by alias;
3. ``refresh_data`` with more data -> retraining -> a better model takes ``production`` -> deploy again;
4. the nightly schedule retrains on unchanged data: no new version, nobody fires;
5. ``sweep_ridge``: a W&B sweep over the ridge's alpha, one Dagster step per trial; the best trial's model
   is linked to the registry and goes through the same promotion (it prints its trials and its best run);
6. W&B Launch: ``train_model`` is published as the W&B job ``job-train_model`` and one retraining is enqueued
   in the run queue ``retraining``; the launch agent sensor launches it once (unchanged data: no new version);
then a summary (versions, aliases, which sensor fired what) and a report of the training runs (W&B's
Report API, ``wandb_dagster.reports``), saved in the workspace; its URL is printed: ``wandb-dagster ui``
serves it.

Run it twice: the second time nothing has changed, so no version is created and no sensor fires (the report
is saved again, the same one).
"""

from __future__ import annotations

import warnings
from typing import Any

import dagster as dg

import wandb_dagster.reports as wr
from example_pipelines import bikes
from wandb_dagster.dagster import WandbResource, collection_name, publish_jobs


def _execute(
    defs: dg.Definitions, instance: dg.DagsterInstance, job_name: str, request: Any = None, run_config: Any = None
) -> dg.ExecuteInProcessResult:
    job = defs.resolve_job_def(job_name)
    config = dict((request.run_config if request is not None else run_config) or {})
    config.setdefault("loggers", {"console": {"config": {"log_level": "WARNING"}}})  # keep the story readable
    result = job.execute_in_process(
        run_config=config,
        tags=request.tags if request is not None else None,
        instance=instance,
    )
    if not result.success:
        raise SystemExit(f"run of {job_name} failed")
    return result


def _raw_data_config(seed: int, rows: int) -> dict[str, Any]:
    return {"ops": {"bikes__raw_data": {"config": {"seed": seed, "rows": rows}}}}


def _tick(
    defs: dg.Definitions, instance: dg.DagsterInstance, name: str, cursors: dict[str, Any], wandb: WandbResource
) -> list[dg.RunRequest]:
    sensor = defs.resolve_sensor_def(name)
    with dg.build_sensor_context(instance=instance, cursor=cursors.get(name), resources={"wandb": wandb}) as context:
        result = sensor(context)
    assert isinstance(result, dg.SensorResult), f"sensor {name} returned {result!r}"  # ours always do
    cursors[name] = result.cursor
    for request in result.run_requests or []:
        artifact = request.tags.get("wandb/artifact")
        cursors["fired"].append(f"{name} -> {sensor.job_name} for {artifact} (run_key {request.run_key})")
    return list(result.run_requests or [])


def _react(defs: dg.Definitions, instance: dg.DagsterInstance, cursors: dict, wandb: WandbResource, out: Any) -> bool:
    """Evaluate both sensors until neither requests anything, executing what they request."""
    any_run = False
    while True:
        requested = False
        for name in ("retrain_on_new_features", "deploy_on_production"):
            for request in _tick(defs, instance, name, cursors, wandb):
                requested = any_run = True
                job = defs.resolve_sensor_def(name).job_name
                assert job is not None, f"sensor {name} targets no job"
                result = _execute(defs, instance, job, request)
                if job == "train_model":
                    res = result.output_for_node("bikes__evaluation")
                    verdict = f"promoted (was {res['previous_production']})" if res["promoted"] else "kept production"
                    out(f"  train      {res['model']}  test rmse {res['rmse']}  "
                        f"production rmse {res['production_rmse']}  -> {verdict}")
                else:
                    res = result.output_for_node("deploy")
                    out(f"  deploy     serving {res['deployed']} (source {res['source']})")
        if not requested:
            return any_run


def run_demo(wandb: WandbResource, out: Any = print) -> dict[str, Any]:
    """Run the whole story against ``wandb``'s workspace; print with ``out``; return the summary."""
    defs = bikes.make_definitions(wandb)
    cursors: dict[str, Any] = {"fired": []}

    def react() -> None:
        if not _react(defs, instance, cursors, wandb, out):
            out("  sensors    nothing new: no run requested")

    with dg.DagsterInstance.ephemeral() as instance:
        out("1. sensors start watching the event feed")
        for name in ("retrain_on_new_features", "deploy_on_production"):
            _tick(defs, instance, name, cursors, wandb)

        out("2. refresh_data: a small sample (150 rows)")
        result = _execute(defs, instance, "refresh_data", run_config=_raw_data_config(seed=0, rows=150))
        _print_materialization(result, ["bikes", "features"], out)
        react()

        out("3. refresh_data: more data (3000 rows)")
        result = _execute(defs, instance, "refresh_data", run_config=_raw_data_config(seed=1, rows=3000))
        _print_materialization(result, ["bikes", "features"], out)
        react()

        out("4. nightly schedule tick: retrain on the latest features")
        schedule = defs.resolve_schedule_def("nightly_retraining")
        with dg.build_schedule_context(instance=instance) as context:
            requests = schedule.evaluate_tick(context).run_requests or []
        for request in requests:
            result = _execute(defs, instance, schedule.job_name, request)
            out_eval = result.output_for_node("bikes__evaluation")
            meta = _metadata(result, ["bikes", "model"])
            out(f"  nightly    model {meta['wandb/artifact']} (same data, same model: no new version); "
                f"promoted: {out_eval['promoted']}")
        react()

        out("5. sweep_ridge: a W&B sweep over the ridge's alpha, one Dagster step per trial")
        result = _execute(defs, instance, "sweep_ridge")
        res = result.output_for_node("promote_sweep_best")
        sweep = wandb.api().sweep(res["sweep"])
        for trial in sorted(sweep.runs, key=lambda r: r.config["alpha"]):
            out(f"  trial      alpha {trial.config['alpha']:<6} val rmse {trial.summary['val_rmse']:.4f}  "
                f"run {trial.id} (group {trial.group[:8]})")
        best = sweep.best_run()
        verdict = f"promoted (was {res['previous_production']})" if res["promoted"] else "kept production"
        out(f"  best run   {'/'.join(best.path)}: alpha {best.config['alpha']}, val rmse {res['val_rmse']}")
        out(f"  sweep      {res['model']}  test rmse {res['rmse']}  production rmse {res['production_rmse']}  "
            f"-> {verdict}")
        sweep_summary = {"id": sweep.id, "trials": len(sweep.runs), "best_run": best.id,
                         "best_alpha": best.config["alpha"], "model": res["model"], "promoted": res["promoted"]}
        react()

        out(f"6. launch: retrain through the run queue {bikes.RETRAINING_QUEUE!r}")
        launched = _launch_retraining(defs, instance, wandb, out)
        react()

    api = wandb.api()
    summary = {
        "features": [a.version for a in api.artifacts("dataset", collection_name(["bikes", "features"]))],
        "models": [(a.version, sorted(a.aliases)) for a in api.artifacts("model", collection_name(["bikes", "model"]))],
        "links": [
            (a.version, sorted(a.aliases), a.source_name) for a in api.artifacts("model", bikes.REGISTRY_COLLECTION)
        ],
        "production": api.artifact(f"{bikes.REGISTRY_COLLECTION}:production").source_qualified_name,
        "fired": cursors["fired"],
        "sweep": sweep_summary,
        "launched": launched,
    }
    out("summary")
    out(f"  features versions: {summary['features']}")
    out(f"  model versions: {summary['models']}")
    out(f"  registry bike-rentals links: {summary['links']}")
    out(f"  production: {bikes.REGISTRY_COLLECTION}:production = {summary['production']}")
    out(f"  sweep {sweep_summary['id']}: {sweep_summary['trials']} trials, best run {sweep_summary['best_run']} "
        f"(alpha {sweep_summary['best_alpha']}) -> {sweep_summary['model']}")
    out(f"  sensors fired: {len(summary['fired'])}")
    for line in summary["fired"]:
        out(f"    {line}")
    out(f"  workspace: {api.settings.database_url}")
    summary["report"] = save_report(api, sweep_summary["id"])
    out(f"report of the training runs: {summary['report']}")
    out("  open it: .venv/bin/wandb-dagster ui   (serves this workspace at http://127.0.0.1:8600)")
    return summary


REPORT_TITLE = "Bike rentals: training runs"


def save_report(api: Any, sweep_id: str) -> str:
    """Save the report of the demo's training, evaluation and sweep runs (the one of an earlier demo is updated,
    not duplicated) and return its URL."""
    entity = api.default_entity
    blocks = [
        wr.TableOfContents(),
        wr.H2("Training"),
        wr.MarkdownBlock(
            "Each `bikes/model` step fits a ridge regression on growing shares of the training rows and logs the "
            "error on the training rows and on the held-out rows (`train_rmse`, `test_rmse`)."
        ),
        wr.PanelGrid(
            runsets=[wr.Runset(name="Training runs", filters="JobType = 'bikes/model'")],
            panels=[
                wr.LinePlot(title="Held-out error", x="train_rows", y=["test_rmse"], title_x="training rows",
                            title_y="test RMSE"),
                wr.LinePlot(title="Training error", x="train_rows", y=["train_rmse"], title_x="training rows",
                            title_y="train RMSE"),
                wr.ScalarChart(title="Most training rows", metric=wr.SummaryMetric("train_rows"),
                               groupby_aggfunc="max"),
                wr.RunComparer(diff_only=True),
            ],
        ),
        wr.H2("Evaluation"),
        wr.P("The new model against the production model, on the same held-out rows."),
        wr.PanelGrid(
            runsets=[wr.Runset(name="Evaluations", filters="JobType = 'bikes/evaluation'")],
            panels=[wr.BarPlot(title="Test RMSE", metrics=["test_rmse", "production_rmse"])],
        ),
        wr.H2("Sweep"),
        wr.P(["Sweep ", wr.InlineCode(sweep_id), ": one trial per alpha, scored on a validation split."]),
        wr.PanelGrid(
            runsets=[wr.Runset(name="Trials", filters=f"Sweep = '{sweep_id}'", order=[wr.OrderBy(wr.Config("alpha"),
                                                                                                 ascending=True)])],
            panels=[
                wr.ScatterPlot(title="Validation error by alpha", x=wr.Config("alpha"), y=wr.SummaryMetric("val_rmse"),
                               log_x=True),
                wr.ParallelCoordinatesPlot(columns=[wr.ParallelCoordinatesPlotColumn(wr.Config("alpha"), log=True),
                                                    wr.ParallelCoordinatesPlotColumn(wr.SummaryMetric("val_rmse"))]),
            ],
        ),
    ]  # fmt: skip
    found = list(api.reports(f"{entity}/{bikes.PROJECT}", name=REPORT_TITLE))
    report = found[0] if found else wr.Report(project=bikes.PROJECT, entity=entity, title=REPORT_TITLE)
    report.description = "The learning curves of every training run of the demo, and how each new model compared."
    report.blocks = blocks
    return report.save()
def _launch_retraining(defs: dg.Definitions, instance: dg.DagsterInstance, wandb: WandbResource, out: Any) -> dict:
    """Publish train_model as a W&B job, enqueue one run of it and let the launch agent launch it."""
    api = wandb.api()
    [job] = publish_jobs(defs, jobs=["train_model"], code_location="example_pipelines")
    api.upsert_run_queue(bikes.RETRAINING_QUEUE, resource_config={}, resource_type="local-process",
                         prioritization_mode="V0")
    queued = api.job("job-train_model:latest").call(config={}, queue=bikes.RETRAINING_QUEUE, priority="high")
    out(f"  launch     job {job.name} published; queued run {queued.id} enqueued ({queued.state})")
    agent = defs.resolve_sensor_def("retrain_from_queue")
    cursor = None
    for _ in range(3):  # lease and request; then see the run finished; then nothing left
        with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs,
                                     resources={"wandb": wandb}) as context:
            result = agent.evaluate_tick(context)
        cursor = result.cursor
        for request in result.run_requests or []:
            assert request.job_name is not None  # the agent names the job of every request it makes
            run = _execute(defs, instance, request.job_name, request)
            meta = _metadata(run, ["bikes", "model"])
            out(f"  launch     Dagster run {run.run_id[:8]} (run_key {request.run_key}): "
                f"model {meta['wandb/artifact']}")
    tracking = queued.run
    out(f"  launch     queued run {queued.id}: {queued.state}; tracking run {tracking.id if tracking else None}")
    return {"job": job.name, "state": queued.state, "tracking_run": tracking.id if tracking else None}


def main() -> None:
    warnings.filterwarnings("ignore")
    run_demo(WandbResource(project=bikes.PROJECT))


def _metadata(result: dg.ExecuteInProcessResult, key: list[str]) -> dict[str, Any]:
    for event in result.get_asset_materialization_events():
        if event.asset_key == dg.AssetKey(key):
            return {k: v.value for k, v in event.materialization.metadata.items()}
    return {}


def _print_materialization(result: dg.ExecuteInProcessResult, key: list[str], out: Any) -> None:
    meta = _metadata(result, key)
    out(f"  features   {meta['wandb/artifact']}  digest {meta['wandb/digest'][:12]}  "
        f"files {meta['wandb/file_count']}  run {meta['wandb/run']}")


if __name__ == "__main__":
    main()
