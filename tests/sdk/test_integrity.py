"""Damaged storage never yields wrong bytes (issue 18): a tampered download-cache entry, a bit-flipped blob
that a new log would deduplicate onto, and refusals that name the entry and the version."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

import wandb_dagster as wandb
from wandb_dagster.sdk.workspace import Workspace
from wandb_dagster.storage.errors import CorruptBlobError
from wandb_dagster.storage.hashing import b64_to_hex


def _log(src: Path, name: str = "ds") -> wandb.Artifact:
    with wandb.init(project="p") as run:
        artifact = wandb.Artifact(name, type="dataset")
        artifact.add_dir(str(src))
        run.log_artifact(artifact)
    return wandb.Api(overrides={"project": "p"}).artifact(f"{name}:latest")


def _tree(root: Path) -> Path:
    (root / "dir").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"alpha")
    (root / "dir" / "b.bin").write_bytes(bytes(range(256)) * 4)
    return root


def _flip_in_place(path: Path, offset: int = 0) -> None:
    """Flip one bit of ``path`` in place, then restore its mode, atime and mtime (only the ctime moves)."""
    before = os.stat(path)
    path.chmod(0o644)
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x01]))
    path.chmod(stat.S_IMODE(before.st_mode))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_a_cache_entry_corrupted_with_restored_timestamps_is_not_downloaded(any_ws_env: Path):
    artifact = _log(_tree(any_ws_env / "src"))
    first = Path(artifact.download(root="first"))
    assert (first / "dir" / "b.bin").read_bytes() == bytes(range(256)) * 4
    ws = Workspace.default()
    hexdigest = b64_to_hex(artifact.get_entry("dir/b.bin").digest)
    _flip_in_place(ws.cache.path_for(hexdigest), offset=100)
    # A later process: nothing remembered in memory, only what is on disk.
    Workspace.close_all()
    again = wandb.Api(overrides={"project": "p"}).artifact("ds:latest")
    second = Path(again.download(root="second"))
    assert (second / "dir" / "b.bin").read_bytes() == bytes(range(256)) * 4, "wrong bytes from the cache"
    again.verify(str(second))
    # The damaged entry was replaced by a verified copy.
    assert Workspace.default().cache.path_for(hexdigest).read_bytes() == bytes(range(256)) * 4


def test_a_file_corrupted_in_the_download_root_with_restored_timestamps_is_fetched_again(any_ws_env: Path):
    artifact = _log(_tree(any_ws_env / "src"))
    root = Path(artifact.download(root="out"))
    target = root / "dir" / "b.bin"
    _flip_in_place(target, offset=7)
    Workspace.close_all()
    again = wandb.Api(overrides={"project": "p"}).artifact("ds:latest")
    again.download(root="out")
    assert target.read_bytes() == bytes(range(256)) * 4
    again.verify(str(root))


@pytest.mark.parametrize("skip_cache", [False, True], ids=["through-cache", "skip-cache"])
def test_a_corrupt_blob_refusal_names_the_entry_and_the_version(any_ws_env: Path, skip_cache: bool):
    _log(_tree(any_ws_env / "src"))
    (any_ws_env / "src" / "a.txt").write_bytes(b"alpha, second version")
    artifact = _log(any_ws_env / "src")
    assert artifact.version == "v1"
    entry = artifact.get_entry("dir/b.bin")
    hexdigest = b64_to_hex(entry.digest)
    _flip_in_place(Path(Workspace.default().blobs.blob_path(hexdigest)))
    with pytest.raises(CorruptBlobError) as err:
        artifact.download(root="out", skip_cache=skip_cache)
    message = str(err.value)
    assert "'dir/b.bin'" in message and "'tester/p/ds:v1'" in message, message
    assert hexdigest in message
    assert (err.value.entries, err.value.version) == (("dir/b.bin",), "tester/p/ds:v1")
    assert not (Path("out") / "dir" / "b.bin").exists()


def test_verify_names_the_entry_and_the_version(any_ws_env: Path):
    artifact = _log(_tree(any_ws_env / "src"))
    root = Path(artifact.download(root="out"))
    (root / "dir" / "b.bin").chmod(0o644)
    _flip_in_place(root / "dir" / "b.bin")
    with pytest.raises(ValueError) as err:
        artifact.verify(str(root))
    assert "'dir/b.bin'" in str(err.value) and "'tester/p/ds:v0'" in str(err.value)


def _blob_bytes(hexdigest: str) -> bytes:
    return Path(Workspace.default().blobs.blob_path(hexdigest)).read_bytes()


@pytest.mark.parametrize("size", [1024, 3 * 1024 * 1024], ids=["small", "large"])
def test_logging_the_files_again_repairs_a_bit_flipped_blob(any_ws_env: Path, size: int):
    """A same-size damaged blob is not deduplicated onto when the bytes are read anyway (a file the stat
    cache does not know): small blobs are compared, large ones replaced by the copy just verified."""
    good = bytes(range(256)) * (size // 256)
    (any_ws_env / "src").mkdir()
    (any_ws_env / "src" / "model.bin").write_bytes(good)
    artifact = _log(any_ws_env / "src")
    hexdigest = b64_to_hex(artifact.get_entry("model.bin").digest)
    blob = Path(Workspace.default().blobs.blob_path(hexdigest))
    _flip_in_place(blob, offset=size // 2)
    assert _blob_bytes(hexdigest) != good
    # The same bytes in a new file (a fresh checkout, another machine): read, hashed and copied again.
    (any_ws_env / "copy").mkdir()
    (any_ws_env / "copy" / "model.bin").write_bytes(good)
    again = _log(any_ws_env / "copy")
    assert again.digest == artifact.digest
    assert _blob_bytes(hexdigest) == good, "the damaged blob was trusted"
    assert oct(os.stat(blob).st_mode & 0o777) == oct(0o444), "a repaired blob stays read-only"
    Workspace.close_all()
    out = Path(wandb.Api(overrides={"project": "p"}).artifact("ds:v0").download(root="out", skip_cache=True))
    assert (out / "model.bin").read_bytes() == good


def test_a_sound_small_blob_is_not_rewritten_by_a_duplicate(any_ws_env: Path):
    (any_ws_env / "src").mkdir()
    (any_ws_env / "src" / "a.txt").write_bytes(b"alpha" * 100)
    artifact = _log(any_ws_env / "src")
    blob = Path(Workspace.default().blobs.blob_path(b64_to_hex(artifact.get_entry("a.txt").digest)))
    before = os.stat(blob)
    (any_ws_env / "copy").mkdir()
    (any_ws_env / "copy" / "a.txt").write_bytes(b"alpha" * 100)
    _log(any_ws_env / "copy")
    after = os.stat(blob)
    assert (after.st_ino, after.st_ctime_ns) == (before.st_ino, before.st_ctime_ns)
