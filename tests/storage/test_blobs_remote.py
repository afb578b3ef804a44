"""The object-store blob store (storage/remote_blobs.py) beyond the shared contract (test_blob_contract.py),
run against moto S3 and fake-gcs-server alike: multipart / resumable transfers, request counts, listings,
bounded memory.

Everything goes over HTTP to the real servers of the fixtures; what the bucket holds is checked with a
separate client (boto3 / a fresh gcsfs, the ``remote`` fixture of conftest.py), not through the store under
test.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from wandb_dagster.storage import buckets, remote_blobs
from wandb_dagster.storage.errors import ContentChangedError, CorruptBlobError

if TYPE_CHECKING:
    from conftest import Backend  # tests/storage/conftest.py


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def write_files(folder: Path, contents: list[bytes]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, data in enumerate(contents):
        p = folder / f"f{i}"
        p.write_bytes(data)
        paths.append(p)
    return paths


def test_many_small_and_one_multipart_file_round_trip(remote: Backend, tmp_path: Path) -> None:
    small = [os.urandom(100 + i) for i in range(60)] + [b""]
    large = os.urandom(2 * buckets.PART_SIZE + 12345)  # three parts, the last one short
    paths = write_files(tmp_path / "src", small + [large])
    results = remote.store.put_files(paths)
    assert results == [(md5(d), len(d)) for d in small + [large]]
    assert remote.objects() == {remote.key(md5(d)): len(d) for d in small + [large]}
    assert sorted(remote.store.iter_hexes()) == sorted({md5(d) for d in small + [large]})

    out = tmp_path / "out"
    remote.new_store().get_files([(h, n, out / h) for h, n in results])
    for h, n in results:
        assert (out / h).read_bytes() == (large if n == len(large) else next(d for d in small if md5(d) == h))
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "no temp files left behind"
    # Unknown size: streamed like a large blob.
    remote.store.get_file(md5(small[3]), out / "unknown-size")
    assert (out / "unknown-size").read_bytes() == small[3]


def test_existing_blobs_are_not_sent_again(remote: Backend, tmp_path: Path) -> None:
    contents = [os.urandom(500) for _ in range(40)] + [os.urandom(remote_blobs.SMALL_MAX + 1)]
    paths = write_files(tmp_path / "src", contents)
    first = remote.store.put_files(paths)
    before = remote.objects()
    store = remote.new_store()
    assert store.put_files(paths) == first
    assert store.requests["put"] == 0 and store.requests["mpu"] + store.requests["resumable"] == 0
    assert store.requests["list"] == 1, "one listing, not a request per small blob"
    assert remote.objects() == before
    assert store.exists_many([h for h, _ in first], sizes=dict(first)) == {h for h, _ in first}


def test_listing_jumps_over_shards_nobody_asked_for(remote: Backend, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(buckets, "LIST_PAGE", 10)
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


def test_a_corrupt_large_blob_is_refused_while_streaming(remote: Backend, tmp_path: Path) -> None:
    # Small blobs (one GET each): the contract's test_a_corrupt_blob_is_refused_while_downloading.
    data = os.urandom(remote_blobs.SMALL_MAX + 10)
    h = md5(data)
    remote.write_raw(h, bytes(len(data)))  # same size, other bytes
    dest = tmp_path / h
    with pytest.raises(CorruptBlobError, match=h):
        remote.store.get_files([(h, len(data), dest)])
    assert not dest.exists() and not list(tmp_path.glob(f".{h}*")), "nothing half-written is left"


def test_expected_digest_mismatch_stores_nothing(remote: Backend, tmp_path: Path) -> None:
    # Small files: the contract's test_content_changed_while_logging.
    large = os.urandom(buckets.PART_SIZE + 100)
    wrong_large = md5(b"other large")
    [p_large] = write_files(tmp_path, [large])
    # A large file whose bytes no longer hash to the digest it was announced with: every part is sent, but
    # the upload is aborted instead of completed, so nothing appears under either name.
    with pytest.raises(ContentChangedError):
        remote.store.put_files([p_large], expected=[wrong_large])
    assert remote.objects() == {}


_MEMORY_CHILD = """
import json, os, sys
from wandb_dagster.storage import buckets, remote_blobs
from wandb_dagster.storage.backend import open_blob_store
root, options, path, back, part = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
buckets.PART_SIZE = remote_blobs.SMALL_MAX = part
store = open_blob_store(root, options)
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


def test_large_transfers_stream_in_bounded_memory(remote: Backend, tmp_path: Path) -> None:
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
    assert grew < (buckets.PARTS_IN_FLIGHT + 10) * part, f"peak memory grew by {grew >> 20} MiB"
