"""The example pipelines themselves, in process, on SQLite and PostgreSQL: the demo's whole story."""

import dagster as dg

from example_pipelines import bikes
from example_pipelines.demo import run_demo


def test_example_pipelines_story(wandb_resource):
    lines: list[str] = []
    first = run_demo(wandb_resource, out=lines.append)
    assert first["features"] == ["v0", "v1"]
    assert [v for v, _ in first["models"]] == ["v0", "v1"]
    # Every trained model is linked; production moved to the better (larger-sample) model.
    # ... and so is the sweep's best (last, so it holds the registry's latest).
    assert [(v, src) for v, _, src in first["links"]] == [
        ("v0", "bikes.model:v0"), ("v1", "bikes.model:v1"), ("v2", "ridge-sweep-model:v0")
    ]
    assert first["links"][1][1] == ["production"] and first["links"][2][1] == ["latest"]
    assert first["production"].endswith("/bikes.model:v1")
    fired = first["fired"]
    assert len(fired) == 4
    assert fired[0].startswith("retrain_on_new_features -> train_model for tester/pipelines/bikes.features:v0")
    assert fired[1].startswith("deploy_on_production -> deploy_model for default/wandb-registry-model/bike-rentals:v0")
    assert fired[2].startswith("retrain_on_new_features -> train_model for tester/pipelines/bikes.features:v1")
    assert fired[3].startswith("deploy_on_production -> deploy_model for default/wandb-registry-model/bike-rentals:v1")
    assert any("nightly" in line and "no new version" in line for line in lines)

    # The model's tracking run holds the learning curve and the artifact it became.
    model = wandb_resource.artifact("bikes.model:v1")
    store = wandb_resource.api()._ws.store
    # Trained by the sensor run, then unchanged by the nightly run and by the retraining launched from the queue.
    producer, nightly, launched = store.producers(model._record.pk)
    run = store.get_run("tester", "pipelines", producer)
    assert run.job_type == "bikes/model" and len(store.history(run.pk)) == 4
    assert model.metadata["framework"] == "numpy"
    # W&B Launch: the retraining enqueued in the run queue ran once, as a run of the W&B job job-train_model.
    assert first["launched"] == {"job": "job-train_model:v0", "state": "finished", "tracking_run": launched}
    assert store.get_run("tester", "pipelines", launched).config["dagster"]["job"] == "train_model"

    # The sweep: one run per alpha of the grid, each in the sweep and grouped by its Dagster run; its best
    # (alpha 1.0, as the trained model has) went through the promotion and kept production where it was.
    sweep = wandb_resource.api().sweep(f"tester/pipelines/{first['sweep']['id']}")
    trials = sweep.runs
    assert sorted(r.config["alpha"] for r in trials) == [0.1, 1.0, 10.0, 100.0]
    assert len({r.group for r in trials}) == 1 and all(r.sweep_id == sweep.id for r in trials)
    assert [v.id for v in store.run_inputs(store.get_run("tester", "pipelines", trials[0].id).pk)] == [
        wandb_resource.artifact("bikes.features:v1").id  # each trial used the latest features
    ]
    assert first["sweep"]["best_alpha"] == 1.0 and first["sweep"]["best_run"] == sweep.best_run().id
    assert first["sweep"]["promoted"] is False and first["sweep"]["model"].endswith("/ridge-sweep-model:v0")

    # Again: nothing changed, so no version is created and no sensor fires.
    second = run_demo(wandb_resource, out=lambda line: None)
    assert second["features"] == first["features"] and second["models"] == first["models"]
    assert second["links"] == first["links"] and second["fired"] == []
    assert second["launched"]["job"] == "job-train_model:v0" and second["launched"]["state"] == "finished"


def test_definitions_load():
    from example_pipelines.definitions import defs

    dg.Definitions.validate_loadable(defs)
    assert {j.name for j in defs.resolve_all_job_defs()} >= {"refresh_data", "train_model", "deploy_model", "sweep_ridge"}
    assert defs.resolve_schedule_def("nightly_retraining").cron_schedule == "0 3 * * *"
    assert bikes.deploy_on_production.job_name == "deploy_model"
    assert [j.name for j in bikes.retrain_from_queue.jobs] == ["train_model"]
