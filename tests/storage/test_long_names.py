"""A 250-byte file name (NAME_MAX is 255) downloads and enters the caches: no temp name derived from it may be
longer than the filesystem allows (ENAMETOOLONG before temp names were bounded)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wandb_dagster.storage import references
from wandb_dagster.storage.blobs import BlobStore
from wandb_dagster.storage.cache import DownloadCache

LONG = "é" * 100 + "n" * 50  # 250 bytes in UTF-8
DATA = b"content under a long name\n"


def test_the_name_is_250_bytes() -> None:
    assert len(LONG.encode()) == 250


@pytest.mark.parametrize("hardlinks", [False, True])
def test_cache_fetch_and_place(tmp_path: Path, hardlinks: bool) -> None:
    blobs = BlobStore(str(tmp_path / "blobs"))
    cache = DownloadCache(tmp_path / "cache", max_bytes=1 << 30, hardlinks=hardlinks)
    hexdigest, size = blobs.put_bytes(DATA)
    cache.fetch(blobs, hexdigest, size)
    for folder in ("a", "b"):  # the second placement replaces nothing: a fresh folder each time
        cache.place(hexdigest, tmp_path / folder / LONG)
        assert os.listdir(tmp_path / folder) == [LONG]
        assert (tmp_path / folder / LONG).read_bytes() == DATA
    cache.place(hexdigest, tmp_path / "a" / LONG)  # over an existing file of that name
    assert os.listdir(tmp_path / "a") == [LONG]


def test_a_cached_http_reference(tmp_path: Path, http_server) -> None:
    url = http_server.put("data.bin", DATA, etag="strong")
    [ref] = references.resolve(url)
    cache = DownloadCache(tmp_path / "cache", max_bytes=1 << 30)
    for folder in ("first", "second"):
        dest = tmp_path / folder / LONG
        references.download(ref.ref, ref.digest, ref.size, ref.extra, dest, entry_path=LONG, cache=cache)
        assert dest.read_bytes() == DATA and os.listdir(dest.parent) == [LONG]
    assert [m for m, _ in http_server.requests].count("GET") == 1, "the second download came from the cache"


def test_an_artifact_entry_downloads_through_the_cache_and_around_it(tmp_path: Path, monkeypatch) -> None:
    import wandb_dagster as wandb
    from wandb_dagster.sdk.workspace import Workspace

    for var in ("WANDB_PROJECT", "WANDB_RUN_ID", "WANDB_DAGSTER_STORAGE", "WANDB_DAGSTER_DATABASE_URL",
                "WANDB_DAGSTER_STORAGE_OPTIONS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WANDB_DAGSTER_DIR", str(tmp_path / "workspace"))
    monkeypatch.setenv("WANDB_DAGSTER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "src.bin").write_bytes(DATA)
    try:
        with wandb.init(project="long") as run:
            artifact = wandb.Artifact("long", type="dataset")
            artifact.add_file("src.bin", name=LONG)
            run.log_artifact(artifact)
        logged = wandb.Api(overrides={"project": "long"}).artifact("long:v0")
        for root, skip_cache in (("cold", False), ("warm", False), ("direct", True)):
            out = Path(logged.download(root=str(tmp_path / root), skip_cache=skip_cache))
            assert os.listdir(out) == [LONG] and (out / LONG).read_bytes() == DATA
    finally:
        Workspace.close_all()
