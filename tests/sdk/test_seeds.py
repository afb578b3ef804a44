"""The code samples of the seed documents, run as written with ``import wandb_dagster as wandb``.

Blocks are read from ../shared/seeds so a change there shows up here; without the seeds these tests skip
(fail under CI=true: tests/sdk/_seeds.py), and test_seed_behaviours.py checks the same behaviours with the
samples copied in. Placeholders written as ``<...>`` are replaced with real values, as the documents ask
the reader to do; the Keras model of seed 004 is replaced by a small file. The registry parts of seed 000
are in test_registry.py.
"""

from __future__ import annotations

import types
from pathlib import Path

import pytest

import wandb_dagster as wandb
from wandb_dagster.sdk.workspace import Workspace

from ._seeds import SEEDS_DIR_ENV, run_block, seed_blocks, seed_path


def test_seed_000_training_part(ws_env):
    blocks = seed_blocks("000")
    assert "TEAM_ENTITY" in blocks[2] and "artifact.save()" in blocks[3]
    ns = run_block(blocks[2], {})
    run_block(blocks[3], ns)
    api = wandb.Api()
    artifact = api.artifact(f"{ns['TEAM_ENTITY']}/{ns['PROJECT']}/model-demo:v0")
    assert artifact.type == "model" and artifact.description == "My trained model"
    assert Path(artifact.download(root="check")).joinpath("model.txt").read_text() == str(ns["weights"])
    store = Workspace.default().store
    run = store.get_run(ns["TEAM_ENTITY"], ns["PROJECT"], ns["run"].id)
    assert run.state == "finished" and run.config == {"epochs": 10, "learning_rate": 0.01}
    assert [row["epoch"] for row in store.history(run.pk)] == list(range(10))
    # artifact.save() inside the `with` logged it as an output of the active run.
    assert [a.id for a in ns["run"].logged_artifacts()] == [artifact.id]


def test_seed_003_walkthrough(ws_env):
    blocks = seed_blocks("003")
    cwd = ws_env
    (cwd / "bicycle-data.h5").write_bytes(b"bicycles")
    (cwd / "model.h5").write_bytes(b"model weights")
    ns = run_block(blocks[0], {})  # run = wandb.init(job_type='train')
    run = ns["run"]
    run_block(blocks[1], ns)  # log bike-dataset
    assert ns["artifact"].version == "v0"
    run_block(blocks[2], ns)  # use bike-dataset:v0 and download
    assert (Path(ns["artifact_dir"]) / "bicycle-data.h5").read_bytes() == b"bicycles"

    # The cross-project block needs those artifacts to exist.
    for entity, project in (("tester", "my-project"), ("my-entity", "my-project")):
        with wandb.init(entity=entity, project=project, reinit="create_new") as other:
            model = wandb.Artifact("bike-model", type="model")
            model.add_file("model.h5")
            other.log_artifact(model)
    run_block(blocks[3], ns)
    assert ns["artifact"].qualified_name == "my-entity/my-project/bike-model:v0"

    run_block(blocks[4], ns)  # use_artifact with an unlogged Artifact
    run_block(blocks[4], ns)  # ... idempotent
    assert wandb.Api().artifact("bike-model:latest").version == "v0"
    run_block(blocks[5], ns)
    assert ns["artifact"].name == "bike-dataset:v0"
    run_block(blocks[6], ns)
    assert sorted(ns["artifact"].aliases) == ["best-ap50", "latest"]
    run_block(blocks[7], ns)

    # Building: `path`, `name` and `uri` are the reader's; each statement gets fitting values.
    (cwd / "folder").mkdir()
    (cwd / "folder" / "x.txt").write_text("x")
    building = blocks[8].split("\n\n")
    run_block(building[0], ns | {"path": "model.h5"})
    run_block(building[1], ns | {"path": "folder"})
    run_block(building[2], ns | {"name": "new.txt"})
    run_block(blocks[9], ns | {"uri": (cwd / "model.h5").as_uri()})
    assert sorted(ns["artifact"].manifest.entries) == ["model.h5", "new.txt", "optional-name", "optional-prefix/x.txt"]
    # The reference example reuses the name 'optional-name', so it gets an artifact of its own.
    refs = wandb.Artifact("refs", type="dataset")
    run_block(building[3], ns | {"artifact": refs, "uri": (cwd / "bicycle-data.h5").as_uri()})
    assert refs.get_entry("optional-name").ref == (cwd / "bicycle-data.h5").as_uri()

    # `run.use_artifact(artifact=None)` is the signature as documented; None is refused clearly.
    with pytest.raises(ValueError, match="use_artifact"):
        run_block(blocks[10], ns)
    run_block(blocks[11], ns)
    run_block(blocks[12], ns)
    assert Path(ns["datadir"]) == Path("artifacts") / "bike-dataset:v0"
    run_block(blocks[13], ns | {"name": "bicycle-data.h5"})

    # 'reference model' is not a valid name (a space) and has no type: a clear error naming it.
    with pytest.raises(ValueError, match="'reference model'"):
        run_block(blocks[14], ns)

    with wandb.init(entity="entity", project="project", reinit="create_new") as other:
        other.log_artifact("model.h5", name="artifact", type="model", aliases=["alias"])
    run_block(blocks[15], ns)
    assert (Path("artifacts") / "artifact:v0" / "model.h5").read_bytes() == b"model weights"

    run_block(blocks[16], ns)
    updated = wandb.Api().artifact("bike-dataset:v0")
    assert updated.description == "My new description"
    assert updated.metadata == {"newKey": "new value"}
    assert "replaced" in updated.aliases
    run.finish()


class _FakeKerasModel:
    """Stands in for the seed's Keras model: compile() is accepted, save() writes a small file."""

    def __init__(self, layers):
        self.layers = layers

    def compile(self, **kwargs):
        self.compiled = kwargs

    def save(self, filepath):
        Path(filepath).write_bytes(b"small model standing in for keras")


def _fake_keras() -> tuple[types.SimpleNamespace, types.SimpleNamespace]:
    layer = lambda *a, **k: (a, k)  # noqa: E731
    layers = types.SimpleNamespace(
        Input=layer, Conv2D=layer, MaxPooling2D=layer, Flatten=layer, Dropout=layer, Dense=layer
    )
    return types.SimpleNamespace(Sequential=_FakeKerasModel), layers


def test_seed_004_log_model_and_use_model(ws_env):
    blocks = seed_blocks("004")
    (ws_env / "model.pt").write_bytes(b"tiny model")
    values = {
        "your-project": "models-proj", "your-entity": "models-team", "path-to-model": "model.pt", "name": "tiny-model"
    }
    run_block(blocks[0], {}, **values)["run"].finish()

    keras_code = "\n".join(line for line in blocks[1].splitlines() if not line.startswith("from tensorflow"))
    keras, layers = _fake_keras()
    ns = run_block(keras_code, {"keras": keras, "layers": layers})
    mnist = wandb.Api().artifact("charlie/mnist-experiments/MNIST:latest")
    assert mnist.type == "model" and list(mnist.manifest.entries) == ["model.h5"]

    ns = run_block(blocks[3], {}, **values, **{"your-model-name": "tiny-model"})
    assert Path(ns["downloaded_model_path"]).read_bytes() == b"tiny model"
    ns["run"].finish()

    with wandb.init(entity="luka", project="NLP_Experiments") as run:
        run.log_model("model.pt", name="fine-tuned-model")
    ns = run_block(blocks[4], {})
    assert Path(ns["downloaded_model_path"]).name == "model.pt"
    ns["run"].finish()


# ---------------------------------------------------------------------------------------------- the helper


def test_a_seed_is_found_by_its_number(tmp_path, monkeypatch):
    (tmp_path / "003_abc.txt").write_text("text\n```python\nx = 1\n```\nmore\n```python\ny = 2\n```\n")
    monkeypatch.setenv(SEEDS_DIR_ENV, str(tmp_path))
    assert seed_path("003") == tmp_path / "003_abc.txt"
    assert seed_blocks("003") == ["x = 1", "y = 2"]


def test_a_missing_seed_skips_with_the_reason_outside_ci(tmp_path, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    missing = tmp_path / "no-seeds"
    with pytest.raises(pytest.skip.Exception, match=r"seed document 003_\*\.txt not found in .*no-seeds"):
        seed_path("003", missing)
    monkeypatch.setenv(SEEDS_DIR_ENV, str(missing))
    with pytest.raises(pytest.skip.Exception, match="no-seeds"):
        seed_blocks("000")


def test_a_missing_seed_fails_in_ci(tmp_path, monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"not found in .*no-seeds.*CI=true requires the seed tests"):
        seed_path("003", tmp_path / "no-seeds")


def test_two_seeds_with_one_number_are_an_error(tmp_path, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    (tmp_path / "003_a.txt").write_text("")
    (tmp_path / "003_b.txt").write_text("")
    with pytest.raises(pytest.fail.Exception, match="several seed documents"):
        seed_path("003", tmp_path)


def _report_block(blocks: list[str]) -> str:
    (block,) = [b for b in blocks if "wr.Report(" in b]
    # The one change the seed's reader makes: wandb_workspaces' Report API is wandb_dagster.reports here.
    assert "import wandb_workspaces.reports.v2 as wr" in block
    return block.replace("import wandb_workspaces.reports.v2 as wr", "import wandb_dagster.reports as wr")


def test_seed_000_report_block_saves_a_report_that_loads_back_and_renders(ws_env, capsys):
    import wandb_dagster.reports as wr
    from wandb_dagster.reports.render import render

    blocks = seed_blocks("000")
    ns = run_block(blocks[2], {})
    run_block(blocks[3], ns)  # the training run the report's line plot shows
    run_block(_report_block(blocks), ns)
    report = ns["report"]
    printed = capsys.readouterr().err
    # Printed, as the seed says ("open the printed URL in a browser"): the local app's page of the report.
    assert f"Saved report to: {report.url}" in printed
    assert report.url.startswith("http://127.0.0.1:8600/%3CTeam_Entity%3E/my-awesome-project/reports/"
                                 "My-Awesome-Model-Training-Report--")
    loaded = wr.Report.from_url(report.url)
    assert loaded == report and loaded.id == report.id
    assert [r.id for r in wandb.Api().reports(f"{ns['TEAM_ENTITY']}/{ns['PROJECT']}")] == [report.id]
    assert wandb.Api().from_path(report.path) == report
    rendered = render(loaded, wandb.Api())
    for heading in ("Experiment Summary", "Dataset Information", "Model Information"):
        assert f">{heading}</h3>" in rendered.body
    (chart,) = rendered.data["charts"].values()
    (series,) = chart["series"]
    assert chart["title"] == "Train Loss" and chart["y_label"] == "Loss"
    assert series["x"] == list(range(10)) and len(series["y"]) == 10
