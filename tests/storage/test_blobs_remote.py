"""The object-store blob store (storage/remote_blobs.py), run against moto S3 and fake-gcs-server alike.

Everything goes over HTTP to the real servers of the fixtures; what the bucket holds is checked with a
separate client (boto3 / a fresh gcsfs), not through the store under test.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from wandb_dagster.storage import remote_blobs
from wandb_dagster.storage.blobs import BlobStore
from wandb_dagster.storage.errors import ContentChangedError, CorruptBlobError
from wandb_dagster.storage.progress import report_progress
from wandb_dagster.storage.remote_blobs import ObjectStoreBlobs


class Bucket:
    """A store on a fresh bucket plus an independent view of the bucket's objects."""

    def __init__(self, kind: str, server, bucket: str) -> None:
        self.kind = kind
        self.server = server
        self.bucket = bucket
        scheme = "s3" if kind == "s3" else "gs"
        self.root = f"{scheme}://{bucket}/blobs"
        self.store = BlobStore(self.root, server.storage_options)

    def new_store(self) -> ObjectStoreBlobs:
        return BlobStore(self.root, self.server.storage_options)  # type: ignore[return-value]

    def objects(self) -> dict[str, int]:
        """key -> size of every object under the root, listed by another client."""
        if self.kind == "s3":
            pages = self.server.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix="blobs/")
            return {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", [])}
        fs = self.server.filesystem()
        return {p.split("/", 1)[1]: info["size"] for p, info in fs.find(f"{self.bucket}/blobs", detail=True).items()}

    def write_raw(self, hexdigest: str, data: bytes) -> None:
        key = f"blobs/{hexdigest[:2]}/{hexdigest[2:]}"
        if self.kind == "s3":
            self.server.client().put_object(Bucket=self.bucket, Key=key, Body=data)
        else:
            self.server.filesystem().pipe_file(f"{self.bucket}/{key}", data)


@pytest.fixture(params=["s3", "gcs"])
def remote(request: pytest.FixtureRequest) -> Bucket:
    if request.param == "s3":
        return Bucket("s3", request.getfixturevalue("s3_server"), request.getfixturevalue("s3_bucket"))
    return Bucket("gcs", request.getfixturevalue("gcs_server"), request.getfixturevalue("gcs_bucket"))


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def key(hexdigest: str) -> str:
    return f"blobs/{hexdigest[:2]}/{hexdigest[2:]}"


def write_files(folder: Path, contents: list[bytes]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, data in enumerate(contents):
        p = folder / f"f{i}"
        p.write_bytes(data)
        paths.append(p)
    return paths


def test_s3_and_gs_roots_get_the_object_store(remote: Bucket) -> None:
    assert isinstance(remote.store, ObjectStoreBlobs)
    assert remote.store.root == remote.root and not remote.store.is_local
    remote.store.check_access()


def test_many_small_and_one_multipart_file_round_trip(remote: Bucket, tmp_path: Path) -> None:
    small = [os.urandom(100 + i) for i in range(60)] + [b""]
    large = os.urandom(2 * remote_blobs.PART_SIZE + 12345)  # three parts, the last one short
    paths = write_files(tmp_path / "src", small + [large])
    results = remote.store.put_files(paths)
    assert results == [(md5(d), len(d)) for d in small + [large]]
    assert remote.objects() == {key(md5(d)): len(d) for d in small + [large]}
    assert sorted(remote.store.iter_hexes()) == sorted({md5(d) for d in small + [large]})

    out = tmp_path / "out"
    remote.new_store().get_files([(h, n, out / h) for h, n in results])
    for h, n in results:
        assert (out / h).read_bytes() == (large if n == len(large) else next(d for d in small if md5(d) == h))
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "no temp files left behind"
    # Unknown size: streamed like a large blob.
    remote.store.get_file(md5(small[3]), out / "unknown-size")
    assert (out / "unknown-size").read_bytes() == small[3]


def test_existing_blobs_are_not_sent_again(remote: Bucket, tmp_path: Path) -> None:
    contents = [os.urandom(500) for _ in range(40)] + [os.urandom(remote_blobs.SMALL_MAX + 1)]
    paths = write_files(tmp_path / "src", contents)
    first = remote.store.put_files(paths)
    before = remote.objects()
    store = remote.new_store()
    assert store.put_files(paths) == first
    assert store.requests["put"] == 0 and store.requests["mpu"] + store.requests["resumable"] == 0
    assert store.requests["list"] == 1, "one listing, not a request per small blob"
    assert remote.objects() == before
    assert store.exists_many([h for h, _ in first], sizes={h: n for h, n in first}) == {h for h, _ in first}


def test_a_blob_of_the_wrong_size_counts_as_missing_and_is_rewritten(remote: Bucket, tmp_path: Path) -> None:
    data = os.urandom(3000)
    h = md5(data)
    remote.write_raw(h, data[:1000])  # a damaged blob under the right name
    assert not remote.store.exists(h, size=len(data)) and remote.store.exists(h)
    assert remote.store.exists_many([h], sizes={h: len(data)}) == set()
    [path] = write_files(tmp_path, [data])
    remote.store.put_files([path])
    assert remote.objects() == {key(h): 3000}


def test_listing_jumps_over_shards_nobody_asked_for(remote: Bucket, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(remote_blobs, "LIST_PAGE", 10)
    contents = [i.to_bytes(4, "big") for i in range(300)]
    results = remote.store.put_files(write_files(tmp_path, contents))
    stored = {h for h, _ in results}
    shards = sorted({h[:2] for h in stored})
    # Digests from three shards, some stored, some not.
    wanted = {h for h in stored if h[:2] in (shards[0], shards[len(shards) // 2], shards[-1])}
    absent = {shards[len(shards) // 2] + "0" * 30, "ff" + "e" * 30}
    store = remote.new_store()
    assert store.exists_many(wanted | absent) == wanted
    # A walk over the whole root would take 30 pages of 10; the jumps make it about one per shard asked for.
    assert store.requests["list"] <= 6, store.requests


def test_missing_blob_is_named(remote: Bucket, tmp_path: Path) -> None:
    missing = "0" * 32
    with pytest.raises(FileNotFoundError, match=f"{missing}.*{remote.root}"):
        remote.store.get_files([(missing, 10, tmp_path / "x")])
    with pytest.raises(FileNotFoundError, match=missing):
        remote.store.get_file(missing, tmp_path / "y")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_corrupt_blob_is_refused_while_downloading(remote: Bucket, tmp_path: Path) -> None:
    for data in (os.urandom(2000), os.urandom(remote_blobs.SMALL_MAX + 10)):
        h = md5(data)
        remote.write_raw(h, bytes(len(data)))  # same size, other bytes
        dest = tmp_path / h
        with pytest.raises(CorruptBlobError, match=h):
            remote.store.get_files([(h, len(data), dest)])
        assert not dest.exists() and not list(tmp_path.glob(f".{h}*")), "nothing half-written is left"


def test_expected_digest_mismatch_stores_nothing(remote: Bucket, tmp_path: Path) -> None:
    small, large = os.urandom(1000), os.urandom(remote_blobs.PART_SIZE + 100)
    wrong_small, wrong_large = md5(b"other"), md5(b"other large")
    p_small, p_large = write_files(tmp_path, [small, large])
    with pytest.raises(ContentChangedError):
        remote.store.put_files([p_small], expected=[wrong_small])
    # A large file whose bytes no longer hash to the digest it was announced with: every part is sent, but
    # the upload is aborted instead of completed, so nothing appears under either name.
    with pytest.raises(ContentChangedError):
        remote.store.put_files([p_large], expected=[wrong_large])
    assert remote.objects() == {}


_MEMORY_CHILD = """
import json, os, sys
from wandb_dagster.storage import remote_blobs
from wandb_dagster.storage.blobs import BlobStore
root, options, path, back, part = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
remote_blobs.PART_SIZE = remote_blobs.SMALL_MAX = part
store = BlobStore(root, options)
store.put_bytes(b"warm up the client")
def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
grew = 0
for step in ("up", "down"):
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak (VmHWM) to the current resident size
    before = status("VmRSS")
    if step == "up":
        [(h, n)] = store.put_files([path])
    else:
        store.get_files([(h, n, back)])
    grew = max(grew, status("VmHWM") - before)
print(json.dumps({"grew_kib": grew}))
"""


def test_large_transfers_stream_in_bounded_memory(remote: Bucket, tmp_path: Path) -> None:
    # In a child process: moto runs inside the test process, so the test's own memory includes the server's.
    import json
    import subprocess
    import sys

    part = 5 * 1024 * 1024  # S3's smallest part; a multiple of GCS's 256 KiB
    data = os.urandom(30 * part)  # 150 MiB
    [path] = write_files(tmp_path, [data])
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD, remote.root, json.dumps(remote.server.storage_options), str(path),
         str(tmp_path / "back"), str(part)],
        capture_output=True, text=True, timeout=300, check=True,
    )
    assert (tmp_path / "back").read_bytes() == data
    grew = json.loads(out.stdout.strip().splitlines()[-1])["grew_kib"] * 1024
    # Reading the whole file would take 150 MiB; a bounded stream holds a few parts at a time.
    # (Measured: S3 about 45 MiB, GCS about 20 MiB: the parts in flight plus the HTTP client's copies.)
    assert grew < (remote_blobs.PARTS_IN_FLIGHT + 10) * part, f"peak memory grew by {grew >> 20} MiB"


def test_progress_hook_sees_uploads_and_downloads(remote: Bucket, tmp_path: Path) -> None:
    contents = [os.urandom(1000) for _ in range(20)] + [os.urandom(remote_blobs.SMALL_MAX + 5)]
    paths = write_files(tmp_path / "src", contents)
    total = sum(map(len, contents))
    calls: list[tuple[int, int, int, int]] = []
    with report_progress(lambda *a: calls.append(a)):
        results = remote.store.put_files(paths)
    assert calls[0] == (0, total, 0, 21) and calls[-1] == (total, total, 21, 21)
    assert all(a[0] <= b[0] and a[2] <= b[2] for a, b in zip(calls, calls[1:])), "never goes backwards"
    calls.clear()
    with report_progress(lambda *a: calls.append(a)):
        remote.store.get_files([(h, n, tmp_path / "out" / h) for h, n in results])
    assert calls[0] == (0, total, 0, 21) and calls[-1] == (total, total, 21, 21)
    calls.clear()
    remote.store.put_files(paths)  # outside the block: nothing reported
    assert calls == []
    with report_progress(lambda *a: calls.append(a)):
        remote.store.put_files(paths + paths[:3])  # all present (and three twice): done without sending
    assert calls[-1] == (total + 3000, total + 3000, 24, 24)


def test_put_bytes_and_delete(remote: Bucket) -> None:
    h, n = remote.store.put_bytes(b"hello")
    assert (h, n) == (md5(b"hello"), 5) and remote.objects() == {key(h): 5}
    remote.store.delete(h)
    assert remote.objects() == {}
    with pytest.raises(FileNotFoundError, match=h):
        remote.store.delete(h)


def test_progress_hook_on_a_local_root_too(tmp_path: Path) -> None:
    contents = [os.urandom(100) for _ in range(5)] + [os.urandom(300 * 1024)]  # inline and pooled puts
    paths = write_files(tmp_path / "src", contents)
    calls: list[tuple[int, int, int, int]] = []
    with report_progress(lambda *a: calls.append(a)):
        BlobStore(str(tmp_path / "blobs")).put_files(paths)
    total = sum(map(len, contents))
    assert calls[0] == (0, total, 0, 6) and calls[-1] == (total, total, 6, 6)
