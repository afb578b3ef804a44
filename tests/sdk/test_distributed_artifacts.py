"""Distributed artifacts (docs/behaviour.md section 4): ``run.upsert_artifact(..., distributed_id=...)`` from
several runs in separate processes, then ``run.finish_artifact``: one version holding every part. SQLite
and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

import wandb_dagster as wandb

from .test_invariants import _env

_CTX = multiprocessing.get_context("spawn")


def _upsert_worker(env: dict, cwd: str, rank: int, group: str) -> None:
    os.environ.update(env)
    os.chdir(cwd)
    Path(f"part-{rank}.txt").write_text(f"predictions of worker {rank}\n")
    with wandb.init(project="dist", group=group, job_type="writer") as run:
        part = wandb.Artifact("predictions", type="dataset", metadata={f"rank{rank}": True})
        part.add_file(f"part-{rank}.txt", name=f"parts/part-{rank}.txt")
        Path(f"shared-{rank}.txt").write_text("the same in every worker\n")
        part.add_file(f"shared-{rank}.txt", name="README.txt")
        returned = run.upsert_artifact(part, aliases=[f"from-{rank}"])
        assert returned is part and part.is_draft()


def _upsert_in_processes(cwd: Path, workers: int, group: str) -> None:
    procs = [_CTX.Process(target=_upsert_worker, args=(_env(), str(cwd), w, group)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0, f"worker exited with {p.exitcode}"


def test_upserts_from_several_processes_then_finish_make_one_version(any_ws_env):
    _upsert_in_processes(any_ws_env, workers=4, group="writer-group-1")
    api = wandb.Api(overrides={"project": "dist"})
    assert not api.artifact_exists("predictions:latest")  # nothing is visible before finish_artifact
    (any_ws_env / "index.txt").write_text("index\n")
    with wandb.init(project="dist", group="writer-group-1", job_type="finish") as run:  # the docs' pattern
        artifact = wandb.Artifact("predictions", type="dataset", description="all parts")
        artifact.add_file("index.txt")
        finished = run.finish_artifact(artifact)
    assert finished.version == "v0" and not finished.is_draft()
    version = api.artifact("predictions:latest")
    paths = sorted(e.path for e in version.manifest)
    assert paths == ["README.txt", "index.txt", *[f"parts/part-{r}.txt" for r in range(4)]]
    root = Path(version.download(root="out"))
    version.verify(root)
    assert (root / "parts" / "part-2.txt").read_text() == "predictions of worker 2\n"
    assert version.metadata == {f"rank{r}": True for r in range(4)}
    assert version.description == "all parts"
    assert sorted(version.aliases) == sorted(["latest", *[f"from-{r}" for r in range(4)]])
    # Every upserting run and the finishing one produced it; the finishing run logged it.
    producers = _producers(api, version)
    assert sorted(r.job_type for r in producers) == ["finish", "writer", "writer", "writer", "writer"]
    assert version.logged_by().job_type == "finish"
    # The parts are consumed: a new round of upserts under the same id starts the next version.
    _upsert_in_processes(any_ws_env, workers=2, group="writer-group-1")
    with wandb.init(project="dist", group="writer-group-1") as run:
        second = run.finish_artifact(wandb.Artifact("predictions", type="dataset"))
    assert second.version == "v1"
    assert sorted(e.path for e in second.manifest) == ["README.txt", "parts/part-0.txt", "parts/part-1.txt"]


def _producers(api: wandb.Api, version) -> list:
    return [r for r in api.runs("dist") if version.id in {a.id for a in r.logged_artifacts()}]


def test_distributed_id_scopes_parts_and_is_required(any_ws_env):
    (any_ws_env / "a.txt").write_text("a")
    (any_ws_env / "b.txt").write_text("b")
    with wandb.init(project="dist") as run:
        part = wandb.Artifact("table", type="dataset")
        part.add_file("a.txt")
        with pytest.raises(TypeError, match="group or distributed_id"):
            run.upsert_artifact(part)
        run.upsert_artifact(part, distributed_id="job-a")
        other = wandb.Artifact("table", type="dataset")
        other.add_file("b.txt")
        run.upsert_artifact(other, distributed_id="job-b")
        with pytest.raises(ValueError, match="type"):
            run.upsert_artifact(wandb.Artifact("table", type="model"), distributed_id="job-a")
        done = run.finish_artifact(wandb.Artifact("table", type="dataset"), distributed_id="job-a")
    assert sorted(e.path for e in done.manifest) == ["a.txt"]  # job-b's part waits for its own finish
    with wandb.init(project="dist") as run:
        later = run.finish_artifact(wandb.Artifact("table", type="dataset"), distributed_id="job-b")
    assert (later.version, sorted(e.path for e in later.manifest)) == ("v1", ["b.txt"])


def test_parts_that_disagree_are_an_error_until_finish_decides(any_ws_env):
    with wandb.init(project="dist", group="g") as run:
        for content in ("one", "two"):
            (any_ws_env / "x.txt").write_text(content)
            part = wandb.Artifact("clash", type="dataset")
            part.add_file("x.txt")
            run.upsert_artifact(part)
        with pytest.raises(ValueError, match="'x.txt'"):
            run.finish_artifact(wandb.Artifact("clash", type="dataset"))
        assert not wandb.Api(overrides={"project": "dist"}).artifact_exists("clash:v0")  # nothing committed
        (any_ws_env / "x.txt").write_text("decided")
        final = wandb.Artifact("clash", type="dataset")
        final.add_file("x.txt")
        done = run.finish_artifact(final)
    root = Path(done.download(root="out"))
    assert (root / "x.txt").read_text() == "decided"


def test_a_deleted_runs_part_stays_without_a_producer(any_ws_env):
    (any_ws_env / "a.txt").write_text("a")
    with wandb.init(project="dist", group="g") as run:
        part = wandb.Artifact("kept", type="dataset")
        part.add_file("a.txt")
        run.upsert_artifact(part)
    wandb.Api().run(f"dist/{run.id}").delete()
    with wandb.init(project="dist", group="g") as finisher:
        done = finisher.finish_artifact(wandb.Artifact("kept", type="dataset"))
    assert [e.path for e in done.manifest] == ["a.txt"]
    logged_by = wandb.Api(overrides={"project": "dist"}).artifact("kept:v0").logged_by()
    assert logged_by is not None and logged_by.id == finisher.id
