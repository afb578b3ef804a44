"""WandbResource outside the IO manager, asset-key naming, and the import boundary."""

import subprocess
import sys

import dagster as dg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wandb_dagster.dagster import WandbResource, collection_name
from wandb_dagster.sdk.names import validate_artifact_name


def test_run_outside_a_step_says_what_to_do(wandb_resource):
    with pytest.raises(RuntimeError, match="outside a Dagster step"):
        wandb_resource.run()


def test_promote_refuses_latest_and_bad_aliases(wandb_resource):
    with pytest.raises(ValueError, match="'latest' is managed by the system"):
        wandb_resource.promote("anything:v0", "wandb-registry-model/x", alias="latest")
    with pytest.raises(ValueError, match="Alias 'a/b' is invalid"):
        wandb_resource.promote("anything:v0", "wandb-registry-model/x", alias="a/b")


def test_op_run_link_and_query(resources, instance, wandb_resource):
    """In an op: the step's run, a registry link made by it, and a registry query."""

    @dg.op
    def publish(wandb: WandbResource) -> list:
        run = wandb.run()
        assert run is wandb.run()  # one run per step
        run.log({"score": 0.9})
        import wandb_dagster

        art = wandb_dagster.Artifact("published", type="model", metadata={"score": 0.9})
        with art.new_file("m.txt") as f:
            f.write("m")
        run.log_artifact(art)
        wandb.link(art, "wandb-registry-model/published-models", aliases=["candidate"])
        found = wandb.query({"alias": "candidate"}, registry="model", collection_filter={"name": "published-models"})
        return [a.version for a in found]

    @dg.job(resource_defs={"wandb": wandb_resource})
    def publish_job() -> None:
        publish()

    result = publish_job.execute_in_process(instance=instance)
    assert result.output_for_node("publish") == ["v0"]
    linked = wandb_resource.artifact("wandb-registry-model/published-models:candidate")
    assert linked.source_name == "published:v0"


def test_collection_names_examples():
    assert collection_name(dg.AssetKey(["warehouse", "bikes", "features"])) == "warehouse.bikes.features"
    assert len({collection_name(k) for k in (["a", "b"], ["a_b"], ["a.b"], ["a-b"], ["a", "", "b"], ["a", ".b"])}) == 6
    long = collection_name(["x" * 300])
    assert len(long) == 128 and long != collection_name(["x" * 301])
    with pytest.raises(ValueError, match="Asset key"):
        collection_name([])


_parts = st.lists(st.text(min_size=0, max_size=12), min_size=1, max_size=4)


@settings(max_examples=300, deadline=None)
@given(_parts, _parts)
def test_collection_names_are_valid_and_injective(a, b):
    name_a, name_b = collection_name(a), collection_name(b)
    validate_artifact_name(name_a)
    assert (name_a == name_b) == (a == b)


def test_import_wandb_dagster_does_not_import_dagster():
    code = "import sys, wandb_dagster; wandb_dagster.Api; print('dagster' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.postgres
def test_secret_database_url_through_envvar_is_never_recorded(postgres_url, tmp_path, monkeypatch, instance):
    """Invariant 7: a password given through dg.EnvVar reaches neither Dagster's records nor the store."""
    from sqlalchemy.engine import make_url

    from wandb_dagster.dagster import WandbArtifactIOManager
    from wandb_dagster.sdk.workspace import Workspace

    secret_url = make_url(postgres_url).set(password="s3cr3t-pw").render_as_string(hide_password=False)
    monkeypatch.setenv("TEST_WANDB_DATABASE_URL", secret_url)
    wandb = WandbResource(database_url=dg.EnvVar("TEST_WANDB_DATABASE_URL"), storage_root=str(tmp_path / "b"),
                          entity="tester", project="pipelines")

    @dg.asset
    def guarded(wandb: WandbResource) -> dict:
        wandb.run().log({"x": 1})
        return {"ok": True}

    try:
        result = dg.materialize([guarded], instance=instance,
                                resources={"wandb": wandb, "io_manager": WandbArtifactIOManager(wandb=wandb)})
        assert result.success
        dagster_records = repr([e.to_json() if hasattr(e, "to_json") else str(e) for e in instance.all_logs(result.run_id)])
        dagster_records += repr(instance.get_run_by_id(result.run_id))
        assert "s3cr3t-pw" not in dagster_records
        meta = {k: v.value for k, v in result.get_asset_materialization_events()[0].materialization.metadata.items()}
        assert "s3cr3t-pw" not in repr(meta) and "***" in meta["wandb/workspace"]
        import psycopg

        with psycopg.connect(postgres_url) as conn:  # every row of every table
            tables = [r[0] for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'").fetchall()]
            dump = "".join(repr(conn.execute(f'SELECT row_to_json(t)::text FROM "{t}" t').fetchall()) for t in tables)
        assert "s3cr3t-pw" not in dump and "tester" in dump
    finally:
        Workspace.close_all()


def test_failed_steps_mark_their_runs_failed(resources, instance, wandb_resource):
    from wandb_dagster.dagster import wandb_failure_hook

    @dg.asset
    def fine(wandb: WandbResource) -> int:
        wandb.run().log({"ok": 1})
        return 1

    @dg.asset(deps=[fine])
    def broken(wandb: WandbResource) -> int:
        wandb.run().log({"before_crash": 1})
        raise RuntimeError("boom")

    @dg.asset(deps=[fine])
    def unstorable(wandb: WandbResource):
        wandb.run().log({"x": 1})
        return lambda: None  # the IO manager cannot pickle it

    job = dg.define_asset_job("with_hook", selection=[fine, broken, unstorable], hooks={wandb_failure_hook})
    defs = dg.Definitions(assets=[fine, broken, unstorable], jobs=[job], resources=resources)
    result = defs.resolve_job_def("with_hook").execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    from wandb_dagster.dagster.resources import _tracking_run_id

    store = wandb_resource.api()._ws.store
    runs = [store.get_run("tester", "pipelines", _tracking_run_id(result.run_id, s)) for s in ("fine", "broken", "unstorable")]
    states = {r.job_type: r.state for r in runs}
    assert states == {"fine": "finished", "broken": "failed", "unstorable": "failed"}

