"""gc is safe while other processes log (docs/architecture.md, "Garbage collection"), with real processes:
writers log versions that deduplicate onto blobs gc is considering (a pool of blobs that are garbage
whenever no version names them) and delete versions, while another process runs gc with no grace period
in a loop. Afterwards every committed version verifies. SQLite and PostgreSQL, a local folder and S3 (moto).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wandb_dagster.sdk.gc import collect_garbage
from wandb_dagster.sdk.verify import verify_workspace
from wandb_dagster.sdk.workspace import Workspace

_WRITER = r"""
import os, random, shutil, sys
import wandb_dagster as wandb
pool, work, worker, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(worker)
names = sorted(os.listdir(pool))
with wandb.init(project="gcrace") as run:
    for i in range(rounds):
        tree = os.path.join(work, f"t{i}")
        os.makedirs(tree)
        for name in rng.sample(names, 4):
            if i % 2:  # a fresh copy: hashed and copied, deduplicated by the store's put
                shutil.copyfile(os.path.join(pool, name), os.path.join(tree, name))
            else:  # the pool file itself: the stat cache knows it, the store is only asked whether it has it
                os.link(os.path.join(pool, name), os.path.join(tree, name))
        with open(os.path.join(tree, "own.txt"), "w") as f:
            f.write(f"worker {worker} round {i}")
        artifact = wandb.Artifact(f"w{worker}", type="dataset")
        artifact.add_dir(tree)
        run.log_artifact(artifact).wait()
        if i % 3 == 2:  # garbage for the collector: the version before this one
            wandb.Api().artifact(f"gcrace/w{worker}:v{i - 1}").delete(delete_aliases=True)
print("done", flush=True)
"""

_COLLECTOR = r"""
import os, sys, json
from wandb_dagster.sdk.gc import collect_garbage
from wandb_dagster.sdk.workspace import Workspace
stop = sys.argv[1]
ws = Workspace.default()
rounds = deleted = 0
while not os.path.exists(stop) or rounds == 0:
    deleted += collect_garbage(ws, grace_s=0).deleted
    rounds += 1
print(json.dumps({"rounds": rounds, "deleted": deleted}), flush=True)
"""


@pytest.fixture(params=["local", "s3"])
def race_env(request: pytest.FixtureRequest, any_ws_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        bucket = request.getfixturevalue("s3_bucket")
        monkeypatch.setenv("WANDB_DAGSTER_STORAGE", f"s3://{bucket}/race")
        monkeypatch.setenv("WANDB_DAGSTER_STORAGE_OPTIONS", json.dumps(server.storage_options))
        if "WANDB_DAGSTER_DATABASE_URL" not in os.environ:  # SQLite: a fresh database for the bucket root
            monkeypatch.setenv("WANDB_DAGSTER_DATABASE_URL", f"sqlite:///{any_ws_env / 'race.db'}")
    return any_ws_env


@pytest.mark.slow
def test_writers_deduplicating_onto_blobs_gc_is_deleting_never_lose_a_blob(race_env: Path) -> None:
    pool = race_env / "pool"
    pool.mkdir()
    for i in range(12):
        (pool / f"pool-{i:02d}.bin").write_bytes(os.urandom(2000 + i))
    # The pool is stored once and then named by nothing: every pool blob starts as garbage.
    ws = Workspace.default()
    for path in sorted(pool.iterdir()):
        ws.blobs.put_file(path)
    Workspace.close_all()

    stop = race_env / "stop"
    env = os.environ.copy()
    collector = subprocess.Popen(
        [sys.executable, "-c", _COLLECTOR, str(stop)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    writers = []
    for w in range(3):
        work = race_env / f"work{w}"
        work.mkdir()
        writers.append(subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(pool), str(work), str(w), "8"], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))  # fmt: skip
    try:
        outs = [p.communicate(timeout=600) for p in writers]
    finally:
        stop.touch()
        gc_out, gc_err = collector.communicate(timeout=600)
    for p, (out, err) in zip(writers, outs, strict=True):
        assert p.returncode == 0 and "done" in out, err[-3000:]
    assert collector.returncode == 0, gc_err[-3000:]
    gc_stats = json.loads(gc_out.strip().splitlines()[-1])
    assert gc_stats["rounds"] >= 2 and gc_stats["deleted"] > 0, gc_stats  # gc really ran against them

    # One last gc with nothing running, then every committed version must still be whole.
    ws = Workspace.default()
    collect_garbage(ws, grace_s=0)
    report = verify_workspace(ws)
    assert report.versions == 3 * 8 - 3 * 2  # every third round deletes the version before it
    assert report.ok, report.problems


_MEDIA_WRITER = r"""
import os, random, sys
import wandb_dagster as wandb
pool, worker, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(worker)
names = sorted(os.listdir(pool))
previous = None
for i in range(rounds):
    with wandb.init(project="gcmedia", settings=wandb.Settings(console="off")) as run:
        for step in range(3):  # the same pages as every other writer's: deduplicated onto garbage blobs
            run.log({"page": wandb.Html(f"<p>pool page {rng.randrange(8)}</p>")})
        run.summary["best"] = wandb.Html(f"<p>pool page {rng.randrange(8)}</p>")
        run.save(os.path.join(pool, rng.choice(names)), base_path=pool, policy="now")
    if previous is not None and i % 2:  # garbage for the collector: the run before this one
        wandb.Api().run(f"gcmedia/{previous}").delete()
    previous = run.id
print("done", flush=True)
"""


@pytest.mark.slow
def test_runs_logging_media_and_files_onto_blobs_gc_is_deleting_never_lose_a_blob(any_ws_env: Path) -> None:
    """Runs whose history, summary and saved files name blobs that are garbage whenever no run names them
    (the runs before are deleted), a gc looping with no grace: afterwards every blob a run names exists."""
    import wandb_dagster as wandb
    from wandb_dagster.sdk.data_types import media_files
    from wandb_dagster.storage.hashing import b64_to_hex

    pool = any_ws_env / "pool"
    pool.mkdir()
    for i in range(6):
        (pool / f"pool-{i}.txt").write_bytes(os.urandom(500 + i))
    # Every pool page and file stored once by a run that is then deleted: each starts as garbage.
    with wandb.init(project="gcmedia", settings=wandb.Settings(console="off")) as seed:
        for i in range(8):
            seed.log({"page": wandb.Html(f"<p>pool page {i}</p>")})
        seed.save(str(pool / "*.txt"), base_path=str(pool), policy="now")
    wandb.Api().run(f"gcmedia/{seed.id}").delete()
    Workspace.close_all()

    stop = any_ws_env / "stop"
    env = os.environ.copy()
    collector = subprocess.Popen(
        [sys.executable, "-c", _COLLECTOR, str(stop)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _MEDIA_WRITER, str(pool), str(w), "6"], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        for w in range(3)
    ]
    try:
        outs = [p.communicate(timeout=600) for p in writers]
    finally:
        stop.touch()
        gc_out, gc_err = collector.communicate(timeout=600)
    for p, (out, err) in zip(writers, outs, strict=True):
        assert p.returncode == 0 and "done" in out, err[-3000:]
    assert collector.returncode == 0, gc_err[-3000:]
    gc_stats = json.loads(gc_out.strip().splitlines()[-1])
    assert gc_stats["rounds"] >= 2 and gc_stats["deleted"] > 0, gc_stats  # gc really ran against them

    ws = Workspace.default()
    collect_garbage(ws, grace_s=0)
    runs = list(wandb.Api().runs("gcmedia"))
    assert len(runs) == 3 * 6 - 3 * 3  # rounds 1, 3 and 5 delete the run before
    missing = []
    for api_run in runs:
        named = {(f.name, b64_to_hex(f.md5)) for f in api_run.files()}
        for value in (*api_run.scan_history(), api_run.summary):
            named.update((name, b64_to_hex(digest)) for name, digest, _ in media_files(value))
        assert len(named) >= 3, named  # pages, the summary's page and the saved file
        for name, hexdigest in sorted(named):
            try:
                ws.blobs.get_file(hexdigest, any_ws_env / "check" / api_run.id / name)  # MD5 checked
            except FileNotFoundError:
                missing.append((api_run.id, name, hexdigest))
    assert not missing, f"blobs that runs name were deleted: {missing}"
