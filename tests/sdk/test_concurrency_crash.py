"""Concurrency and crash guarantees (docs/architecture.md) through the SDK, with real processes, on SQLite and
PostgreSQL: kill -9 at random points, 8 writers, concurrent alias moves, a database held locked, and an
event-feed reader following the cursor while writers commit."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

import wandb_dagster as wandb

from .test_invariants import _env, _run_workers

_CTX = multiprocessing.get_context("spawn")


# ------------------------------------------------------------------------------------ kill -9 at random points

_LOG_LOOP = """
import sys
import wandb_dagster as wandb
tree, project = sys.argv[1], sys.argv[2]
with wandb.init(project=project) as run:
    for i in range(1000):
        open(tree + "/counter.txt", "w").write(str(i))
        artifact = wandb.Artifact("victim", type="dataset")
        artifact.add_dir(tree)
        run.log_artifact(artifact)
        print("logged", i, flush=True)
"""


def _verify_all(project: str) -> int:
    api = wandb.Api(overrides={"project": project})
    count = 0
    while api.artifact_exists(f"victim:v{count}"):
        count += 1
    for i in range(count):
        artifact = api.artifact(f"victim:v{i}")
        root = artifact.download(root=f"check-{project}-{i}")
        artifact.verify(root)
    assert not api.artifact_exists(f"victim:v{count + 1}"), "version indices have a gap"
    return count


@pytest.mark.slow
@pytest.mark.parametrize("size", ["small", "large"])
def test_kill_9_at_random_points_leaves_only_whole_versions(any_ws_env, size):
    """A logger killed at a random moment (while hashing, copying, syncing or committing) leaves only whole
    versions: each visible one downloads and verifies, indices are gapless, the next log succeeds."""
    rng = random.Random(f"kill-{size}")
    tree = any_ws_env / "tree"
    tree.mkdir()
    if size == "small":
        for i in range(60):
            (tree / f"f{i}.txt").write_text(f"small file {i}")
    else:
        (tree / "big.bin").write_bytes(os.urandom(8 * 1024 * 1024))
    project = f"crash-{size}"
    for _ in range(2):
        if size == "large":  # new content each round, or every log after the first deduplicates
            with open(tree / "big.bin", "r+b") as f:
                f.write(os.urandom(64))
        proc = subprocess.Popen(
            [sys.executable, "-c", _LOG_LOOP, str(tree), project], stdout=subprocess.DEVNULL, env=os.environ.copy()
        )
        time.sleep(rng.uniform(1.0, 4.0))  # interpreter start-up plus somewhere inside a log
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        _verify_all(project)
    before = _verify_all(project)
    with wandb.init(project=project) as run:
        (tree / "counter.txt").write_text("after the crashes")
        artifact = wandb.Artifact("victim", type="dataset")
        artifact.add_dir(str(tree))
        run.log_artifact(artifact)
    assert artifact.version == f"v{before}"
    assert _verify_all(project) == before + 1


# ------------------------------------------------------------------------------------------- eight writers


@pytest.mark.slow
def test_eight_writers_of_different_content_get_unique_gapless_versions(any_ws_env):
    _run_workers(any_ws_env, workers=8, count=3, same=False)
    api = wandb.Api(overrides={"project": "race"})
    assert [api.artifact(f"shared:v{i}").version for i in range(24)] == [f"v{i}" for i in range(24)]
    assert not api.artifact_exists("shared:v24")
    assert len({api.artifact(f"shared:v{i}").digest for i in range(24)}) == 24
    assert api.artifact("shared:latest").version == "v23"


@pytest.mark.slow
def test_eight_writers_of_identical_content_yield_one_version(any_ws_env):
    _run_workers(any_ws_env, workers=8, count=2, same=True)
    api = wandb.Api(overrides={"project": "race"})
    assert not api.artifact_exists("shared:v1")
    assert sorted(api.artifact("shared:v0").aliases) == ["latest"] + [f"w{w}" for w in range(8)]


# ------------------------------------------------------------------------------ concurrent production moves


def _move_production(env: dict, workdir: str, worker: int, versions: int, moves: int) -> None:
    os.environ.update(env)
    os.chdir(workdir)
    import wandb_dagster as wandb

    rng = random.Random(worker)
    api = wandb.Api(overrides={"project": "prom"})
    with wandb.init(project="prom") as run:
        for m in range(moves):
            target = rng.randrange(versions)
            if m % 2:  # the SDK's registry promotion path
                run.link_artifact(api.artifact(f"model:v{target}"), "wandb-registry-model/prod-model", aliases=["production"])
            else:  # the query API's alias edit, on the project collection and the registry link
                artifact = api.artifact(f"model:v{target}")
                artifact.aliases = [*artifact.aliases, "production"]
                artifact.save()


def _sample_production(env: dict, workdir: str, stop: object, bad: object, samples: object) -> None:
    os.environ.update(env)
    os.chdir(workdir)
    from wandb_dagster.sdk.workspace import Workspace

    store = Workspace.default().store
    with store._engine.connect() as conn:
        while not stop.is_set():  # type: ignore[attr-defined]
            # One statement, so one snapshot: per collection, how many members hold "production" right now.
            rows = conn.execute(
                sa.text(
                    "SELECT collection_id, COUNT(*) FROM aliases WHERE alias = 'production' GROUP BY collection_id"
                )
            ).all()
            conn.commit()
            samples.value += 1  # type: ignore[attr-defined]
            if any(n > 1 for _, n in rows):
                bad.value += 1  # type: ignore[attr-defined]


@pytest.mark.slow
def test_concurrent_production_moves_never_name_two_versions(any_ws_env):
    versions = 4
    with wandb.init(project="prom") as run:
        for i in range(versions):
            artifact = wandb.Artifact("model", type="model")
            with artifact.new_file("w.txt", mode="w") as f:
                f.write(f"weights {i}")
            run.log_artifact(artifact)
    stop, bad, samples = _CTX.Event(), _CTX.Value("i", 0), _CTX.Value("i", 0)
    reader = _CTX.Process(target=_sample_production, args=(_env(), str(any_ws_env), stop, bad, samples))
    reader.start()
    movers = [
        _CTX.Process(target=_move_production, args=(_env(), str(any_ws_env), w, versions, 6)) for w in range(4)
    ]
    for p in movers:
        p.start()
    for p in movers:
        p.join(120)
        assert p.exitcode == 0, f"mover exited with {p.exitcode}"
    stop.set()
    reader.join(60)
    assert reader.exitcode == 0
    assert samples.value > 0 and bad.value == 0, f"{bad.value} of {samples.value} samples saw two productions"
    api = wandb.Api(overrides={"project": "prom"})
    holders = [i for i in range(versions) if "production" in api.artifact(f"model:v{i}").aliases]
    assert len(holders) == 1
    registry = wandb.Api().artifact("wandb-registry-model/prod-model:production")
    assert "production" in registry.aliases


# ------------------------------------------------------------------------------- a database held locked


_HOLD_LOCK = """
import sys, time
import sqlalchemy as sa
url = sys.argv[1]
if url.startswith("sqlite"):
    import sqlite3
    conn = sqlite3.connect(url[len("sqlite:///"):], isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
else:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    conn = engine.connect()
    conn.execute(sa.text("LOCK TABLE collections IN EXCLUSIVE MODE"))
print("locked", flush=True)
time.sleep(120)
"""


@pytest.mark.slow
def test_a_log_against_a_database_held_locked_fails_clearly_after_the_lock_timeout(any_ws_env, monkeypatch):
    from wandb_dagster.store import DatabaseBusyError
    from wandb_dagster.store.engine import LOCK_TIMEOUT_ENV

    monkeypatch.setenv(LOCK_TIMEOUT_ENV, "2")
    with wandb.init(project="locked") as run:  # creates the database and the collection
        artifact = wandb.Artifact("held", type="dataset")
        with artifact.new_file("a.txt", mode="w") as f:
            f.write("before")
        run.log_artifact(artifact)
    from wandb_dagster.sdk.workspace import Workspace

    url = Workspace.default().store.url
    run = wandb.init(project="locked")  # before the lock: init writes too (and would fail the same way)
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, url], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        artifact = wandb.Artifact("held", type="dataset")
        with artifact.new_file("a.txt", mode="w") as f:
            f.write("while locked")
        with pytest.raises(DatabaseBusyError) as caught:
            run.log_artifact(artifact)
        waited = time.monotonic() - started
        message = str(caught.value)
        assert Workspace.default().store.display_url in message
        assert LOCK_TIMEOUT_ENV in message and "2 s" in message
        assert waited < 25, f"waited {waited:.1f} s for a 2 s lock timeout"
    finally:
        holder.kill()
        holder.wait(30)
    run.finish()
    # The lock died with its holder: the next log succeeds, as the next index.
    with wandb.init(project="locked") as run:
        artifact = wandb.Artifact("held", type="dataset")
        with artifact.new_file("a.txt", mode="w") as f:
            f.write("after")
        run.log_artifact(artifact)
    assert artifact.version == "v1"


def test_an_invalid_lock_timeout_is_refused_naming_the_variable(monkeypatch):
    from wandb_dagster.store.engine import LOCK_TIMEOUT_ENV, lock_timeout_s

    monkeypatch.setenv(LOCK_TIMEOUT_ENV, "forever")
    with pytest.raises(ValueError, match=LOCK_TIMEOUT_ENV):
        lock_timeout_s()
    monkeypatch.setenv(LOCK_TIMEOUT_ENV, "1.5")
    assert lock_timeout_s() == 1.5


# --------------------------------------------------------------------- an event-feed reader under writers


def _write_versions(env: dict, workdir: str, worker: int, count: int) -> None:
    os.environ.update(env)
    os.chdir(workdir)
    import wandb_dagster as wandb

    with wandb.init(project="feed") as run:
        for i in range(count):
            artifact = wandb.Artifact(f"c{worker}", type="dataset")
            with artifact.new_file("x.txt", mode="w") as f:
                f.write(f"{worker}-{i}")
            run.log_artifact(artifact)


@pytest.mark.slow
def test_an_event_feed_reader_sees_every_event_once_in_order_while_four_writers_commit(any_ws_env):
    api = wandb.Api()
    cursor = api.event_cursor()
    writers = [_CTX.Process(target=_write_versions, args=(_env(), str(any_ws_env), w, 5)) for w in range(4)]
    for p in writers:
        p.start()
    seen: list[tuple[int, str, str | None, str | None]] = []
    deadline = time.monotonic() + 120
    while any(p.is_alive() for p in writers) and time.monotonic() < deadline:
        page = api.events(after=cursor, limit=7)
        seen += [(e.id, e.type, e.collection, e.version) for e in page]
        cursor = page.cursor
        time.sleep(0.01)
    for p in writers:
        p.join(60)
        assert p.exitcode == 0
    while True:  # drain what committed after the last poll
        page = api.events(after=cursor, limit=7)
        seen += [(e.id, e.type, e.collection, e.version) for e in page]
        cursor = page.cursor
        if not page.has_more and not len(page):
            break
    everything = [(e.id, e.type, e.collection, e.version) for e in _all_events(api)]
    assert [s[0] for s in seen] == sorted({s[0] for s in seen}), "an event came twice or out of order"
    assert seen == [e for e in everything if e[0] > seen[0][0] - 1]
    created = [(c, v) for _, t, c, v in seen if t == "CREATE_ARTIFACT"]
    assert sorted(created) == sorted((f"c{w}", f"v{i}") for w in range(4) for i in range(5))


def _all_events(api: wandb.Api) -> list:
    out, cursor = [], None
    while True:
        page = api.events(after=cursor, limit=1000)
        out += list(page)
        cursor = page.cursor
        if not page.has_more:
            return out
