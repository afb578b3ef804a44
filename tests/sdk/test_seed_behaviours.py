"""What the seed documents show, checked with their samples copied in: needs nothing outside the repository.

test_seeds.py (and the seed tests in test_registry.py and test_references_s3.py) run the samples as they
stand in ../shared/seeds, so a change there shows up; those skip in a clone without the seeds. These tests
keep the same behaviours covered everywhere. The samples are adapted only where a document leaves a value
to the reader (``<your-entity>``, a Keras model) and where a block of one page depends on an earlier one.
The naming table of seed 003 for files and folders is in test_artifact_build.py.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

import wandb_dagster as wandb
from wandb_dagster.sdk.workspace import Workspace

TEAM_ENTITY = "tester"  # ws_env's entity: the registry's organization is the same entity
PROJECT = "my-awesome-project"


def _seed_000_training() -> tuple[wandb.Run, float]:
    """Seed 000, training part: a run with config, a simulated training loop, and a model saved in the run."""

    def model(training_data: float) -> float:
        return training_data * 2 + random.randint(-1, 1)

    weights = random.random()
    noise = random.random() / 5
    config = {"epochs": 10, "learning_rate": 0.01}
    with wandb.init(project=PROJECT, entity=TEAM_ENTITY, config=config) as run:
        for epoch in range(config["epochs"]):
            xb = weights + noise
            yb = weights + noise * 2
            y_pred = model(xb)
            loss = (yb - y_pred) ** 2
            run.log({"epoch": epoch, "loss": loss})
        with open("model.txt", "w") as f:
            f.write(str(weights))
        artifact = wandb.Artifact(name="model-demo", type="model", description="My trained model")
        artifact.add_file(local_path="model.txt")
        artifact.save()  # inside the run: logged as its output
    return run, weights


def _seed_000_link() -> None:
    """Seed 000: link the trained model into the Model registry, by its full name."""
    run = wandb.init(entity=TEAM_ENTITY, project=PROJECT)
    model_artifact = run.use_artifact(artifact_or_name=f"{TEAM_ENTITY}/{PROJECT}/model-demo:v0", type="model")
    run.link_artifact(artifact=model_artifact, target_path="wandb-registry-Model/DemoModels")
    run.finish()


def test_000_training_logs_history_and_saves_the_model_as_the_runs_output(ws_env):
    run, weights = _seed_000_training()
    artifact = wandb.Api().artifact(f"{TEAM_ENTITY}/{PROJECT}/model-demo:v0")
    assert artifact.type == "model" and artifact.description == "My trained model"
    assert Path(artifact.download(root="check"), "model.txt").read_text() == str(weights)
    store = Workspace.default().store
    record = store.get_run(TEAM_ENTITY, PROJECT, run.id)
    assert record.state == "finished" and record.config == {"epochs": 10, "learning_rate": 0.01}
    assert [row["epoch"] for row in store.history(record.pk)] == list(range(10))
    assert [a.id for a in run.logged_artifacts()] == [artifact.id]


def test_000_the_registry_serves_the_linked_version(any_ws_env):
    _, weights = _seed_000_training()
    source = wandb.Api().artifact(f"{TEAM_ENTITY}/{PROJECT}/model-demo:v0")
    _seed_000_link()

    run = wandb.init(entity=TEAM_ENTITY, project=PROJECT)
    registry_model = run.use_artifact(artifact_or_name="wandb-registry-Model/DemoModels:v0")
    local_model_path = registry_model.download()

    # A link copies nothing: same id, files and description; its own index and aliases in the registry.
    assert registry_model.id == source.id and registry_model.is_link
    assert (registry_model.project, registry_model.name, registry_model.version) == (
        "wandb-registry-model",
        "DemoModels:v0",
        "v0",
    )
    assert registry_model.aliases == ["latest"]
    assert registry_model.description == "My trained model" and registry_model.type == "model"
    assert registry_model.source_qualified_name == f"{TEAM_ENTITY}/{PROJECT}/model-demo:v0"
    assert Path(local_model_path, "model.txt").read_text() == str(weights)
    for name in ("wandb-registry-Model/DemoModels:v0", "wandb-registry-model/DemoModels:latest"):
        assert wandb.Api().artifact(name).id == source.id  # registry names are case-insensitive
    store = Workspace.default().store
    record = store.get_run(TEAM_ENTITY, PROJECT, run.id)
    assert [v.id for v in store.run_inputs(record.pk)] == [source.id]
    run.finish()


def test_000_registry_query_with_or_over_tag_and_alias(any_ws_env, capsys):
    _seed_000_training()
    _seed_000_link()
    source = wandb.Api().artifact(f"{TEAM_ENTITY}/{PROJECT}/model-demo:v0")
    # Another registry whose name matches "model": a tagged older link (no 'latest') and a newer one; and a
    # link in the dataset registry, which the registry filter leaves out.
    with wandb.init(project=PROJECT) as run:
        versions = []
        for content in ("old", "new"):
            Path("model.bin").write_text(content)
            art = wandb.Artifact("clf", type="model")
            art.add_file("model.bin")
            versions.append(run.log_artifact(art))
        old, new = versions
        old.tags = ["text-classification"]
        old.save()
        wandb.Api().create_registry("my-models", visibility="organization")
        old.link("wandb-registry-my-models/Classifiers")
        new.link("wandb-registry-my-models/Classifiers")
        Path("d.txt").write_text("d")
        data = wandb.Artifact("data", type="dataset")
        data.add_file("d.txt")
        run.log_artifact(data).link("wandb-registry-dataset/Data")
    capsys.readouterr()

    api = wandb.Api()
    registry_filters = {"name": {"$regex": "model"}}
    version_filters = {"$or": [{"tag": "text-classification"}, {"alias": "latest"}]}
    artifacts = api.registries(filter=registry_filters).collections().versions(filter=version_filters)
    for art in artifacts:
        print(f"artifact name: {art.name}")
        print(f"collection artifact belongs to: {art.collection.name}")
        print(f"artifact aliases: {art.aliases}")
        print(f"tags attached to artifact: {art.tags}")
        print(f"artifact created at: {art.created_at}\n")

    found = sorted((a.project, a.name, a.collection.name, tuple(a.aliases), tuple(a.tags)) for a in artifacts)
    assert found == [
        ("wandb-registry-model", "DemoModels:v0", "DemoModels", ("latest",), ()),
        ("wandb-registry-my-models", "Classifiers:v0", "Classifiers", (), ("text-classification",)),
        ("wandb-registry-my-models", "Classifiers:v1", "Classifiers", ("latest",), ()),
    ]
    assert [a.id for a in artifacts if a.project == "wandb-registry-model"] == [source.id]
    printed = capsys.readouterr().out
    assert "artifact name: DemoModels:v0" in printed and "collection artifact belongs to: DemoModels" in printed
    assert "tags attached to artifact: ['text-classification']" in printed and "artifact created at: " in printed


def test_000_report_block_saves_a_report_with_its_line_plot(any_ws_env, capsys):
    import wandb_dagster.reports as wr

    _seed_000_training()
    experiment_summary = """A summary of an experiment that trained a simple model with W&B."""
    dataset_info = """The training data is synthetic, generated by a simple model."""
    model_info = """A simple linear regression that predicts a noisy output from the input."""
    report = wr.Report(
        project=PROJECT,
        entity=TEAM_ENTITY,
        title="My Awesome Model Training Report",
        description=experiment_summary,
        blocks=[
            wr.TableOfContents(),
            wr.H2("Experiment Summary"),
            wr.MarkdownBlock(text=experiment_summary),
            wr.H2("Dataset Information"),
            wr.MarkdownBlock(text=dataset_info),
            wr.H2("Model Information"),
            wr.MarkdownBlock(text=model_info),
            wr.PanelGrid(
                panels=[wr.LinePlot(title="Train Loss", x="Step", y=["loss"], title_x="Step", title_y="Loss")],
            ),
        ],
    )
    report.save()
    assert f"Saved report to: {report.url}" in capsys.readouterr().err
    loaded = wr.Report.from_url(report.url)
    assert loaded == report
    from wandb_dagster.reports.render import render

    (chart,) = render(loaded, wandb.Api()).data["charts"].values()
    assert [len(s["y"]) for s in chart["series"]] == [10]


def test_003_artifacts_walkthrough(ws_env):
    cwd = ws_env
    (cwd / "bicycle-data.h5").write_bytes(b"bicycles")
    (cwd / "model.h5").write_bytes(b"model weights")
    run = wandb.init(job_type="train")

    # Log a dataset as the run's output, then use it as an input and download it.
    artifact = wandb.Artifact("bike-dataset", type="dataset")
    artifact.add_file("bicycle-data.h5")
    run.log_artifact(artifact)
    assert artifact.version == "v0"
    artifact = run.use_artifact("bike-dataset:v0")
    artifact_dir = artifact.download()
    assert (Path(artifact_dir) / "bicycle-data.h5").read_bytes() == b"bicycles"

    # Artifacts of another project and of another entity, by partial and full names.
    for entity, project in (("tester", "my-project"), ("my-entity", "my-project")):
        with wandb.init(entity=entity, project=project, reinit="create_new") as other:
            model = wandb.Artifact("bike-model", type="model")
            model.add_file("model.h5")
            other.log_artifact(model)
    artifact = run.use_artifact("my-project/bike-model:v0")
    assert artifact.qualified_name == "tester/my-project/bike-model:v0"
    artifact = run.use_artifact("my-entity/my-project/bike-model:v0")
    assert artifact.qualified_name == "my-entity/my-project/bike-model:v0"

    # use_artifact with an Artifact that was never logged logs it first; doing it again changes nothing.
    for _ in range(2):
        artifact = wandb.Artifact("bike-model", type="model")
        artifact.add_file("model.h5")
        run.use_artifact(artifact)
    assert wandb.Api().artifact("bike-model:latest").version == "v0"

    artifact = run.use_artifact("bike-dataset:latest")
    assert artifact.name == "bike-dataset:v0"
    artifact = wandb.Artifact("run-3nq3ctyy-bike-model", type="model")
    artifact.add_file("model.h5")
    run.log_artifact(artifact, aliases=["latest", "best-ap50"])
    assert sorted(artifact.aliases) == ["best-ap50", "latest"]

    # Building: a file under another name, a folder under a prefix, a new file, references.
    (cwd / "folder").mkdir()
    (cwd / "folder" / "x.txt").write_text("x")
    artifact = wandb.Artifact("bike-dataset", type="dataset")
    artifact.add_file("model.h5", name="optional-name")
    artifact.add_dir("folder", name="optional-prefix")
    with artifact.new_file("new.txt") as f:
        f.write("contents")
    artifact.add_reference((cwd / "model.h5").as_uri(), name=None, checksum=True)
    assert sorted(artifact.manifest.entries) == ["model.h5", "new.txt", "optional-name", "optional-prefix/x.txt"]
    refs = wandb.Artifact("refs", type="dataset")
    refs.add_reference((cwd / "bicycle-data.h5").as_uri(), name="optional-name")
    assert refs.get_entry("optional-name").ref == (cwd / "bicycle-data.h5").as_uri()

    # `use_artifact(artifact=None)` is the documented signature; None itself is refused, clearly.
    with pytest.raises(ValueError, match="use_artifact"):
        run.use_artifact(artifact=None)
    artifact = run.use_artifact("bike-dataset:latest")
    datadir = artifact.download(root=None)
    assert Path(datadir) == Path("artifacts") / "bike-dataset:v0"
    assert artifact.get_path("bicycle-data.h5").path == "bicycle-data.h5"
    # 'reference model' is not a valid name (a space; and no type): the error names it.
    with pytest.raises(ValueError, match="'reference model'"):
        wandb.Artifact("reference model")

    # Download by entity/project/name:alias through the Api.
    with wandb.init(entity="entity", project="project", reinit="create_new") as other:
        other.log_artifact("model.h5", name="artifact", type="model", aliases=["alias"])
    wandb.Api().artifact("entity/project/artifact:alias").download()
    assert (Path("artifacts") / "artifact:v0" / "model.h5").read_bytes() == b"model weights"

    # Update a committed version's description, metadata and aliases, and save.
    artifact = wandb.Api().artifact("bike-dataset:latest")
    artifact.description = "My new description"
    artifact.metadata["oldKey"] = "new value"
    artifact.metadata = {"newKey": "new value"}
    artifact.aliases.append("best")
    artifact.aliases.remove("latest")
    artifact.aliases = ["replaced"]
    artifact.save()
    updated = wandb.Api().artifact("bike-dataset:v0")
    assert updated.description == "My new description"
    assert updated.metadata == {"newKey": "new value"}
    assert "replaced" in updated.aliases
    run.finish()


# Seed 003's table of add_reference calls on S3 and the entry names they give.
S3_NAMING_TABLE = [
    ("artifact.add_reference('s3://my-bucket/model.h5')", ["model.h5"]),
    ("artifact.add_reference('s3://my-bucket/checkpoints/model.h5')", ["model.h5"]),
    ("artifact.add_reference('s3://my-bucket/model.h5', name='models/mymodel.h5')", ["models/mymodel.h5"]),
    ("artifact.add_reference('s3://my-bucket/images')", ["cat.png", "dog.png"]),
    ("artifact.add_reference('s3://my-bucket/images', name='images')", ["images/cat.png", "images/dog.png"]),
]


@pytest.mark.parametrize("call, expected", S3_NAMING_TABLE, ids=[c for c, _ in S3_NAMING_TABLE])
def test_003_s3_reference_naming_table(ws_env, s3_server, s3_bucket, call, expected):
    for key in ("images/cat.png", "images/dog.png", "checkpoints/model.h5", "model.h5"):
        s3_server.client().put_object(Bucket=s3_bucket, Key=key, Body=key.encode())
    artifact = wandb.Artifact("seed-refs", type="dataset")
    exec(call.replace("s3://my-bucket", f"s3://{s3_bucket}"), {"artifact": artifact})
    assert sorted(artifact.manifest.entries) == expected


class _SmallModel:
    """Stands in for seed 004's Keras model: save() writes a small file."""

    def save(self, filepath: str) -> None:
        Path(filepath).write_bytes(b"small model standing in for keras")


def test_004_log_model_and_use_model(ws_env):
    (ws_env / "model.pt").write_bytes(b"tiny model")
    run = wandb.init(project="models-proj", entity="models-team")
    run.log_model(path="model.pt", name="tiny-model")
    run.finish()

    config = {"optimizer": "adam", "loss": "categorical_crossentropy"}
    run = wandb.init(entity="charlie", project="mnist-experiments", config=config)
    assert (run.config["loss"], run.config["optimizer"]) == ("categorical_crossentropy", "adam")
    full_path = os.path.join("./", "model.h5")
    _SmallModel().save(filepath=full_path)
    run.log_model(path=full_path, name="MNIST")
    run.finish()
    mnist = wandb.Api().artifact("charlie/mnist-experiments/MNIST:latest")
    assert mnist.type == "model" and list(mnist.manifest.entries) == ["model.h5"]

    run = wandb.init(project="models-proj", entity="models-team")
    downloaded_model_path = run.use_model(name="tiny-model")
    assert Path(downloaded_model_path).read_bytes() == b"tiny model"  # one file: its path
    run.finish()

    with wandb.init(entity="luka", project="NLP_Experiments") as other:
        other.log_model("model.pt", name="fine-tuned-model")
    run = wandb.init(project="NLP_Experiments", entity="luka")
    downloaded_model_path = run.use_model(name="fine-tuned-model:latest")
    assert Path(downloaded_model_path).name == "model.pt"
    run.finish()
