"""The main demo: a small training workflow, end to end, on the embedded default workspace.

Run it with ``python3 dev.py demo`` (or ``python -m example_pipelines.demo``). Every call is the W&B call
of the same name, with ``import wandb_dagster as wandb``. Run it twice: the second run finds the dataset
unchanged and reuses its version instead of creating a new one.
"""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path

import wandb_dagster as wandb

PROJECT = "demo-bikes"


def make_dataset(folder: Path, rows: int = 200) -> Path:
    rng = random.Random(42)  # fixed seed: the same data every run, so re-logging deduplicates
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        with open(folder / f"{split}.csv", "w") as f:
            f.write("temperature,rentals\n")
            for _ in range(rows):
                t = rng.uniform(-5, 35)
                f.write(f"{t:.2f},{int(40 + 6 * t + rng.gauss(0, 10))}\n")
    return folder


def fit(csv: Path) -> tuple[float, float]:
    xs, ys = [], []
    for line in csv.read_text().splitlines()[1:]:
        x, y = line.split(",")
        xs.append(float(x))
        ys.append(float(y))
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return slope, my - slope * mx


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="wandb-dagster-demo-"))
    data_dir = make_dataset(work / "bikes")

    # 1. Log the dataset as an artifact.
    with wandb.init(project=PROJECT, job_type="upload") as run:
        dataset = wandb.Artifact("bike-dataset", type="dataset", metadata={"rows": 400, "source": "synthetic"})
        dataset.add_dir(str(data_dir))
        run.log_artifact(dataset)
        print(f"dataset    {dataset.qualified_name}  digest={dataset.digest}  files={dataset.file_count}")

    # 2. Train on the latest dataset, log metrics and the model.
    config = {"epochs": 5, "learning_rate": 0.01}
    with wandb.init(project=PROJECT, job_type="train", config=config) as run:
        data = run.use_artifact("bike-dataset:latest")
        root = Path(data.download(root=str(work / "download")))
        slope, intercept = fit(root / "train.csv")
        for epoch in range(run.config["epochs"]):
            run.log({"epoch": epoch, "loss": 100.0 / (epoch + 1)})
        model_path = work / "model.json"
        model_path.write_text(json.dumps({"slope": slope, "intercept": intercept}))
        model = run.log_model(str(model_path), name="bike-model", aliases=["candidate"])
        print(f"model      {model.qualified_name}  aliases={model.aliases}  run={run.id}")

    # 3. Evaluate the model by alias, with lineage recorded.
    with wandb.init(project=PROJECT, job_type="evaluate") as run:
        path = run.use_model("bike-model:candidate")
        params = json.loads(Path(path).read_text())
        test_slope, _ = fit(root / "test.csv")
        run.summary["slope_error"] = abs(params["slope"] - test_slope)
        print(f"evaluate   slope={params['slope']:.3f} error={run.summary['slope_error']:.4f}")

    # 4. Promote through the public API, as in W&B's "updating an artifact".
    api = wandb.Api(overrides={"project": PROJECT})
    promoted = api.artifact("bike-model:candidate")
    promoted.aliases.append("best")
    promoted.description = "Linear fit of rentals on temperature"
    promoted.save()
    again = api.artifact("bike-model:best")
    print(f"promote    {again.qualified_name}  aliases={sorted(again.aliases)}")

    # 5. Publish to the model registry and mark it for production (a link: nothing is copied).
    with wandb.init(project=PROJECT, job_type="publish") as run:
        run.link_artifact(run.use_artifact("bike-model:best"), "wandb-registry-model/bike-models", aliases=["production"])
    served = api.artifact("wandb-registry-Model/bike-models:production")
    print(f"registry   {served.qualified_name}  aliases={sorted(served.aliases)}  same id as source: {served.id == again.id}")

    versions = [a.version for a in api.artifacts("dataset", "bike-dataset")]
    models = [(a.version, sorted(a.aliases)) for a in api.artifacts("model", "bike-model")]
    links = [(a.version, sorted(a.aliases)) for a in api.artifacts("model", "wandb-registry-model/bike-models")]
    print(f"summary    bike-dataset versions: {versions} (unchanged data reuses its version)")
    print(f"           bike-model versions: {models}")
    print(f"           registry bike-models links: {links}")
    print(f"workspace  {api.settings.database_url}")


if __name__ == "__main__":
    main()
