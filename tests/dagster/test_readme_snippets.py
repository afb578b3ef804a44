"""The README's Dagster section, run as written: its ```python blocks are executed in order in one namespace,
against a fresh workspace named by the environment (as a user's shell would), and the sensor it defines is
ticked as the daemon would."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

import wandb_dagster as wandb
from wandb_dagster.sdk.workspace import Workspace

README = Path(__file__).resolve().parents[2] / "README.md"


def _section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, flags=re.S | re.M)
    assert match, f"README has no section '## {title}'"
    return match.group(1)


def _python_blocks(title: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", _section(title), flags=re.S | re.M)


@pytest.fixture
def workspace_env(database_url: str, tmp_path, monkeypatch) -> Any:
    """The workspace comes from the environment only, as the README's resource (no database_url) expects."""
    monkeypatch.setenv("WANDB_DAGSTER_DATABASE_URL", database_url)
    monkeypatch.setenv("WANDB_DAGSTER_STORAGE", str(tmp_path / "blobs"))
    monkeypatch.setenv("WANDB_DAGSTER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("WANDB_ENTITY", "tester")
    yield database_url
    Workspace.close_all()


def test_the_dagster_section_runs_as_written(workspace_env, capsys):
    blocks = _python_blocks("Dagster")
    assert len(blocks) == 4, "the test runs the definitions, the promotion, the Reference and the sweep snippets"
    definitions, promote, reference, sweep = blocks
    ns: dict[str, Any] = {}
    exec(compile(definitions, "README.md (Dagster definitions)", "exec", dont_inherit=True), ns)  # noqa: S102 - the README's code

    defs = ns["defs"]
    sensor = defs.resolve_sensor_def("wandb_alias_wandb_registry_model_bike_models_production")  # derived name
    with dg.instance_for_test() as instance:

        def tick(cursor: str | None) -> Any:
            with dg.build_sensor_context(instance=instance, cursor=cursor, resources=ns["resources"]) as ctx:
                return sensor(ctx)

        first = tick(None)
        assert first.run_requests == [] and first.cursor  # starts at the head of the feed

        exec(compile(promote, "README.md (promotion)", "exec", dont_inherit=True), ns)  # noqa: S102
        assert capsys.readouterr().out.split() == ["v0", "None", "True"]  # what the README's comment says
        assert type(ns["promotion"]).__name__ == "Promotion"

        fired = tick(first.cursor)
        [request] = fired.run_requests
        assert request.tags["wandb/artifact"] == "default/wandb-registry-model/bike-models:v0"
        assert request.tags["wandb/alias"] == "production"
        run = ns["deploy_job"].execute_in_process(instance=instance, tags=request.tags)
        assert run.success
        assert tick(fired.cursor).run_requests == []  # nothing fires twice

    served = wandb.Api(overrides={"project": "bikes"}).artifact("wandb-registry-model/bike-models:production")
    assert served.metadata["dagster"]["asset_key"] == ["model"]

    exec(compile(reference, "README.md (Reference)", "exec", dont_inherit=True), ns)  # noqa: S102
    assert isinstance(ns["raw_images"], dg.AssetsDefinition)
    assert ns["Reference"].__module__.startswith("wandb_dagster.dagster")

    exec(compile(sweep, "README.md (sweep)", "exec", dont_inherit=True), ns)  # noqa: S102
    sweep_defs = ns["sweep_defs"]
    sensor = sweep_defs.resolve_sensor_def("wandb_sweep_bikes_best")
    with dg.instance_for_test() as instance:
        with dg.build_sensor_context(instance=instance, resources=ns["resources"]) as ctx:
            first = sensor(ctx)
        result = sweep_defs.resolve_job_def("sweep_slope").execute_in_process(instance=instance)
        best = result.output_for_node("sweep_slope_best")
        assert best.params == {"shift": 0.0} and best.trials == 3
        with dg.build_sensor_context(instance=instance, cursor=first.cursor, resources=ns["resources"]) as ctx:
            fired = sensor(ctx).run_requests
        assert [r.tags["wandb/run"] for r in fired][-1] == best.run  # the last better trial is the best
    linked = wandb.Api(overrides={"project": "bikes"}).artifact("wandb-registry-model/bike-models:sweep-best")
    assert linked.metadata["sweep"]["params"] == {"shift": 0.0}


def test_latest_after_a_deduplicated_relog_is_what_the_readme_says(workspace_env):
    assert "after logging A (v0), B (v1), then A again, `latest` is v0" in _section("Guarantees").replace("\n  ", " ")
    logged = []
    for content in ("A", "B", "A"):
        with wandb.init(project="bikes") as run:
            art = wandb.Artifact("letters", type="dataset")
            with art.new_file("letter.txt") as f:
                f.write(content)
            logged.append(run.log_artifact(art).version)
    assert logged == ["v0", "v1", "v0"]
    api = wandb.Api(overrides={"project": "bikes"})
    assert api.artifact("letters:latest").version == "v0"
    assert api.artifact("letters:v1").aliases == []  # the newest index holds no alias, as docs/behaviour.md says
    behaviour = (README.parent / "docs" / "behaviour.md").read_text(encoding="utf-8").replace("\n  ", " ")
    assert "`name:latest` is v0 while v1, the highest index, holds no alias" in behaviour


def test_latest_after_an_unchanged_rematerialization_is_what_the_readme_says(workspace_env):
    assert "moves `latest` back to it (see Guarantees)" in _section("Dagster").replace("\n  ", " ")
    from wandb_dagster.dagster import WandbArtifactIOManager, WandbResource

    resource = WandbResource(project="bikes")
    resources = {"wandb": resource, "io_manager": WandbArtifactIOManager(wandb=resource)}
    content = {"letter": "A"}

    @dg.asset
    def letter() -> dict:
        return dict(content)

    versions = []
    with dg.instance_for_test() as instance:
        for value in ("A", "B", "A"):
            content["letter"] = value
            result = dg.materialize([letter], resources=resources, instance=instance)
            [event] = result.get_asset_materialization_events()
            versions.append(event.materialization.metadata["wandb/version"].value)
    assert versions == ["v0", "v1", "v0"]
    assert wandb.Api(overrides={"project": "bikes"}).artifact("letter:latest").version == "v0"


def test_envvar_for_an_unset_variable_fails_as_the_readme_warns(workspace_env, monkeypatch):
    assert 'then every run fails at its start (DagsterInvalidConfigError) when that variable is unset' in _section("Dagster").replace("\n# ", " ")
    monkeypatch.delenv("WANDB_DAGSTER_UNSET_FOR_TEST", raising=False)
    from wandb_dagster.dagster import WandbArtifactIOManager, WandbResource

    resource = WandbResource(project="bikes", database_url=dg.EnvVar("WANDB_DAGSTER_UNSET_FOR_TEST"))

    @dg.asset
    def one() -> int:
        return 1

    with pytest.raises(dg.DagsterInvalidConfigError, match="WANDB_DAGSTER_UNSET_FOR_TEST"):
        dg.materialize([one], resources={"wandb": resource, "io_manager": WandbArtifactIOManager(wandb=resource)})
