"""A reader without write permission on the workspace (a read-only mount; another user's folder is the same
case for SQLite: it cannot create the -wal/-shm files) can read it: the query API, and downloads, from the
download cache when it is warm (even if the cache folder is read-only too) or straight from the blobs.
A write says what permission it needs.

The read-only view is a read-only bind mount of the writer's folder (the machine runs tests as root, for
whom only a read-only filesystem refuses writes; elsewhere the tests skip, saying why).
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

import wandb_dagster as wandb
from wandb_dagster.sdk.workspace import Workspace
from wandb_dagster.store.errors import ReadOnlyWorkspaceError


class View:
    """``view``: a bind mount of ``backing``, writable until :meth:`make_read_only`."""

    def __init__(self, backing: Path, view: Path) -> None:
        self.backing, self.view = backing, view

    def make_read_only(self) -> None:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(self.view)], check=True)


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[View]:
    backing, view = tmp_path / "backing", tmp_path / "view"
    backing.mkdir()
    view.mkdir()
    done = subprocess.run(["mount", "--bind", str(backing), str(view)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot make a bind mount here (needs root): {done.stderr.decode().strip()}")
    try:
        yield View(backing, view)
    finally:
        Workspace.close_all()
        subprocess.run(["umount", "-l", str(view)], check=False)


_WRITER = """
import sys
from pathlib import Path
import wandb_dagster as wandb

cwd = Path(sys.argv[1])
data = cwd / "data"
(data / "sub").mkdir(parents=True)
(data / "a.txt").write_text("hello")
(data / "sub" / "b.bin").write_bytes(b"hello" * 1000)
with wandb.init(project="p") as run:
    artifact = wandb.Artifact("ds", type="dataset")
    artifact.add_dir(str(data))
    run.log_artifact(artifact)
    wandb.Api().artifact("tester/p/ds:latest").download(root=str(cwd / "warm"))  # warms the download cache
"""


def _write_in_another_process(cwd: Path) -> None:
    """Log and download as a separate writer process that then exits, as a training job would: SQLite removes
    the -wal/-shm files when its last connection closes, so the reader cannot share them."""
    done = subprocess.run([sys.executable, "-c", _WRITER, str(cwd)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("cache", ["read-only warm cache", "writable cold cache"])
def test_a_read_only_workspace_can_be_read(
    any_ws_env: Path, mounted: View, monkeypatch: pytest.MonkeyPatch, cache: str
) -> None:
    """SQLite: the whole workspace (database, blobs) becomes read-only; PostgreSQL: the blob folder does."""
    postgres = os.environ["WANDB_DAGSTER_DATABASE_URL"].startswith("postgresql")
    monkeypatch.setenv("WANDB_DAGSTER_CACHE_DIR", str(mounted.view / "cache"))
    monkeypatch.setenv("WANDB_DAGSTER_STORAGE", str(mounted.view / "blobs"))
    if not postgres:
        (mounted.view / "ws").mkdir()  # a named workspace's folder must exist (Store.open creates it only when asked)
        monkeypatch.setenv("WANDB_DAGSTER_DATABASE_URL", f"sqlite:///{mounted.view}/ws/store.db")
    _write_in_another_process(any_ws_env)
    mounted.make_read_only()

    if not cache.startswith("read-only"):
        monkeypatch.setenv("WANDB_DAGSTER_CACHE_DIR", str(any_ws_env.parent / "cold"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a read-only stat cache warns that it hashes instead
        api = wandb.Api()
        artifact = api.artifact("tester/p/ds:latest")
        root = Path(artifact.download(root=str(any_ws_env / "out")))
    assert (root / "a.txt").read_text() == "hello"
    assert (root / "sub" / "b.bin").read_bytes() == b"hello" * 1000
    assert artifact.verify(root=str(root)) is None
    assert [r.state for r in api.runs("tester/p")] == ["finished"]
    assert [c.name for c in api.artifact_collections("p", "dataset")] == ["ds"]
    if not postgres:
        with pytest.raises(PermissionError, match="read-only for this process.*write access") as caught:
            wandb.init(project="p")
        assert isinstance(caught.value, ReadOnlyWorkspaceError)


_READER = """
import sys, wandb_dagster as wandb
print(wandb.Api().artifact("tester/p/ds:latest").version, flush=True)
sys.stdin.readline()
print(wandb.Api().artifact("tester/p/ds:latest").version, flush=True)
"""


def test_a_read_only_reader_sees_a_live_writers_commits(ws_env: Path, mounted: View, monkeypatch: pytest.MonkeyPatch) -> None:
    """While a writer has the database open, its -shm file exists and the read-only reader shares it: it
    sees each commit as it lands, not a snapshot."""
    monkeypatch.setenv("WANDB_DAGSTER_DIR", str(mounted.backing / "ws"))
    mounted.make_read_only()
    data = ws_env / "data"
    data.mkdir()
    (data / "a.txt").write_text("v0")
    with wandb.init(project="p") as run:
        first = wandb.Artifact("ds", type="dataset")
        first.add_dir(str(data))
        run.log_artifact(first)
        env = dict(os.environ, WANDB_DAGSTER_DIR=str(mounted.view / "ws"), WANDB_DAGSTER_CACHE_DIR=str(ws_env.parent / "c2"))
        reader = subprocess.Popen(
            [sys.executable, "-W", "ignore", "-c", _READER], env=env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            assert reader.stdout is not None and reader.stdin is not None
            assert reader.stdout.readline().strip() == "v0"
            (data / "a.txt").write_text("v1")
            second = wandb.Artifact("ds", type="dataset")
            second.add_dir(str(data))
            run.log_artifact(second)
            reader.stdin.write("\n")
            reader.stdin.flush()
            assert reader.stdout.readline().strip() == "v1"
            assert reader.wait(60) == 0, reader.stderr.read() if reader.stderr else ""
        finally:
            if reader.poll() is None:
                reader.kill()
