"""A full disk during a log: a clear out-of-space error (an OSError with errno ENOSPC naming the path and the
bytes), no partial version, and a workspace that works again once space is freed. The stat cache only holds
digests that can be recomputed, so its own failure never aborts a log.

Each test mounts a small tmpfs of its own (the machine runs tests as root; elsewhere they skip, saying why).
"""

from __future__ import annotations

import errno
import os
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

import wandb_dagster as wandb
from wandb_dagster.sdk.workspace import Workspace
from wandb_dagster.storage.errors import StorageFullError

MIB = 1 << 20


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs mounted at ``tmp_path / "small"``."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        Workspace.close_all()
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(mount: Path, leave: int = 0) -> Path:
    """Fill ``mount`` up to ``leave`` free bytes with one file; deleting it frees the space again."""
    filler = mount / "filler"
    free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
    with open(filler, "wb") as f:
        try:
            f.write(b"\0" * max(free - leave, 0))
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def _tree(root: Path, n: int, size: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (root / f"f{i:03d}.bin").write_bytes(os.urandom(size))


def _no_version(name: str) -> None:
    with pytest.raises(wandb.ArtifactNotFoundError):
        wandb.Api().artifact(f"tester/p/{name}:latest")


def _log(cwd: Path, name: str, **artifact_kwargs) -> wandb.Artifact:
    with wandb.init(project="p") as run:
        artifact = wandb.Artifact(name, type="dataset", **artifact_kwargs)
        artifact.add_dir(str(cwd / "data"))
        run.log_artifact(artifact)
    return artifact


def _assert_out_of_space(exc: BaseException, under: Path, what: str) -> None:
    assert isinstance(exc, StorageFullError) and isinstance(exc, OSError) and exc.errno == errno.ENOSPC
    message = str(exc)
    assert str(under) in message and what in message and "bytes free" in message, message


def test_blobs_on_a_full_disk(any_ws_env: Path, small_fs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The blob store's filesystem fills up in the middle of a log (SQLite: the whole workspace is on it)."""
    monkeypatch.setenv("WANDB_DAGSTER_STORAGE", str(small_fs / "blobs"))
    if "WANDB_DAGSTER_DATABASE_URL" not in os.environ:
        monkeypatch.setenv("WANDB_DAGSTER_DIR", str(small_fs / "ws"))
        monkeypatch.delenv("WANDB_DAGSTER_STORAGE")
    filler = _fill(small_fs, leave=3 * MIB)
    _tree(any_ws_env / "data", 20, 256 * 1024)  # 5 MiB: more than is left
    with pytest.raises(OSError) as caught:
        _log(any_ws_env, "ds")
    _assert_out_of_space(caught.value, small_fs, "bytes needed")
    filler.unlink()
    _no_version("ds")
    logged = _log(any_ws_env, "ds")  # the workspace works again once there is room
    assert logged.version == "v0"
    root = wandb.Api().artifact("tester/p/ds:v0").download(root=str(any_ws_env / "out"))
    assert wandb.Api().artifact("tester/p/ds:v0").verify(root=root) is None


def test_a_download_onto_a_full_disk(ws_env: Path, small_fs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The download cache's filesystem is full: the same out-of-space error, naming the cache, no partial file."""
    _tree(ws_env / "data", 4, 256 * 1024)
    _log(ws_env, "ds")
    monkeypatch.setenv("WANDB_DAGSTER_CACHE_DIR", str(small_fs / "cache"))
    Workspace.close_all()
    filler = _fill(small_fs, leave=256 * 1024)
    with pytest.raises(OSError) as caught:
        wandb.Api().artifact("tester/p/ds:v0").download(root=str(ws_env / "out"))
    _assert_out_of_space(caught.value, small_fs / "cache", "files being written")
    filler.unlink()
    root = wandb.Api().artifact("tester/p/ds:v0").download(root=str(ws_env / "out"))
    assert wandb.Api().artifact("tester/p/ds:v0").verify(root=root) is None


def test_sqlite_database_on_a_full_disk(ws_env: Path, small_fs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Blobs and caches have room; the embedded database's filesystem has none."""
    monkeypatch.setenv("WANDB_DAGSTER_DIR", str(small_fs / "ws"))
    monkeypatch.setenv("WANDB_DAGSTER_STORAGE", str(ws_env.parent / "blobs"))
    _tree(ws_env / "data", 3, 1000)
    _log(ws_env, "first")  # the database exists and has a run, a version, events
    filler = _fill(small_fs)
    with pytest.raises(OSError) as caught:
        # A description the database cannot hold without growing its file.
        _log(ws_env, "ds", description="x" * (2 * MIB))
    _assert_out_of_space(caught.value, small_fs / "ws", "the workspace database")
    filler.unlink()
    _no_version("ds")
    assert _log(ws_env, "ds", description="x" * (2 * MIB)).version == "v0"


def test_the_stat_cache_on_a_full_disk_degrades_to_hashing(
    any_ws_env: Path, small_fs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stat cache cannot even be created: logs still succeed (hashing every file), with one warning."""
    monkeypatch.setenv("WANDB_DAGSTER_CACHE_DIR", str(small_fs / "cache"))
    _fill(small_fs)
    _tree(any_ws_env / "data", 5, 1000)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        first = _log(any_ws_env, "ds")
        (any_ws_env / "data" / "f000.bin").write_bytes(b"changed")
        second = _log(any_ws_env, "ds")
    assert (first.version, second.version) == ("v0", "v1")
    about_cache = [w for w in seen if "stat cache" in str(w.message)]
    assert len(about_cache) == 1, [str(w.message) for w in seen]
    assert "hashed again" in str(about_cache[0].message)
    assert wandb.Api().artifact("tester/p/ds:v1").get_entry("f000.bin").size == len(b"changed")
