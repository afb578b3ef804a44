"""The blob-store contract (storage/backend.py), run unchanged on every backend.

Each case runs on the local folder (O_TMPFILE and named temp files), the generic fsspec store (memory://),
S3 on moto and GCS on fake-gcs-server (the ``backend`` fixture, tests/storage/conftest.py). What a backend
does beyond the contract (local durability and O_TMPFILE, multipart uploads, request counts) is tested in
test_blobs.py, test_blobs_remote.py, test_blobs_s3.py and test_blobs_gcs.py.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from wandb_dagster.storage.backend import BlobBackend, open_blob_store
from wandb_dagster.storage.blobs import POOL_MIN_SIZE, BlobStore
from wandb_dagster.storage.errors import ContentChangedError, CorruptBlobError
from wandb_dagster.storage.fsspec_blobs import FsspecBlobStore
from wandb_dagster.storage.hashing import CHUNK, EMPTY_MD5_HEX
from wandb_dagster.storage.progress import report_progress
from wandb_dagster.storage.remote_blobs import ObjectStoreBlobs

if TYPE_CHECKING:
    from conftest import Backend  # tests/storage/conftest.py

BIG = CHUNK * 2 + 123  # more than one read buffer: the streaming paths
HELLO = b"hello\n"
HELLO_HEX = "b1946ac92492d2347c6235b4d2611184"
PROTOCOL = [
    "root", "is_local", "max_workers", "batched_downloads", "blob_path", "exists", "exists_many", "put_bytes",
    "put_file", "put_files", "open", "get_file", "get_files", "sync", "check_access", "iter_hexes", "iter_blobs", "delete",
    "remove_stale_temps",
]


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def flip_last_byte(data: bytes) -> bytes:
    """Same length, surely different content (appending a fixed byte would match random data 1 in 256)."""
    return data[:-1] + bytes([data[-1] ^ 0xFF])


def read_blob(store: BlobBackend, hexdigest: str) -> bytes:
    with store.open(hexdigest) as f:
        return f.read()


# -- the protocol and the factory ------------------------------------------------------------------------------


def test_every_backend_has_the_whole_protocol_and_says_what_it_is(backend: Backend) -> None:
    store = backend.store
    assert isinstance(store, BlobBackend)
    for name in PROTOCOL:  # defined by the class itself, never inherited from another backend
        assert name in vars(type(store)) or name in vars(store), f"{type(store).__name__}.{name} is inherited"
    kind = {"local": BlobStore, "named_tmp": BlobStore, "memory": FsspecBlobStore}.get(backend.kind, ObjectStoreBlobs)
    assert type(store) is kind
    assert store.is_local == (backend.kind in ("local", "named_tmp"))
    assert store.batched_downloads == backend.is_bucket
    assert store.root == backend.root and store.max_workers >= 1
    assert store.blob_path(HELLO_HEX) == f"{backend.root}/b1/{HELLO_HEX[2:]}"
    store.check_access()  # a usable root passes


def test_the_factory_chooses_by_root(tmp_path: Path) -> None:
    assert type(open_blob_store(tmp_path / "a")) is BlobStore
    assert open_blob_store(f"file://{tmp_path}/b").root == f"{tmp_path}/b"
    assert type(open_blob_store("memory://factory-test")) is FsspecBlobStore
    with pytest.raises(ValueError, match="open_blob_store"):
        BlobStore("memory://not-a-folder")  # the local class refuses URLs instead of guessing


# -- round trips ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", HELLO, os.urandom(POOL_MIN_SIZE + 5), os.urandom(BIG)], ids=len)
def test_put_and_get_round_trip(backend: Backend, tmp_path: Path, data: bytes) -> None:
    store = backend.store
    src = write(tmp_path / "src", data)
    assert store.put_file(src) == (md5(data), len(data))
    assert store.exists(md5(data)) and store.exists(md5(data), size=len(data))
    assert not store.exists(md5(data), size=len(data) + 1)
    dest = tmp_path / "out" / "deep" / "copy.bin"
    store.get_file(md5(data), dest)
    assert dest.read_bytes() == data
    assert read_blob(store, md5(data)) == data
    assert backend.leftovers() == []
    assert [p.name for p in dest.parent.iterdir()] == ["copy.bin"], "no temp file beside the destination"


def test_put_bytes(backend: Backend) -> None:
    store = backend.store
    assert store.put_bytes(HELLO) == (HELLO_HEX, 6)
    assert store.put_bytes(b"") == (EMPTY_MD5_HEX, 0)
    assert read_blob(store, HELLO_HEX) == HELLO
    assert backend.objects() == {backend.key(HELLO_HEX): 6, backend.key(EMPTY_MD5_HEX): 0}


def test_puts_are_idempotent(backend: Backend, tmp_path: Path) -> None:
    datas = [HELLO, os.urandom(POOL_MIN_SIZE + 1), os.urandom(backend.streamed_size)]
    paths = [write(tmp_path / f"f{i}", d) for i, d in enumerate(datas)]
    first = backend.store.put_files(paths)
    stored = backend.objects()
    assert stored == {backend.key(md5(d)): len(d) for d in datas}
    again = backend.new_store()  # another client, as a second process would be
    assert again.put_files(paths) == first
    assert [again.put_file(p) for p in paths] == first
    assert again.put_bytes(HELLO) == (HELLO_HEX, 6)
    assert backend.objects() == stored
    assert sorted(again.iter_hexes()) == sorted(md5(d) for d in datas)


@pytest.mark.parametrize("size", [6, BIG])
@pytest.mark.parametrize("when", ["truncated after a put", "foreign before any put"])
def test_a_blob_of_the_wrong_size_counts_as_missing_and_is_repaired(
    backend: Backend, tmp_path: Path, size: int, when: str
) -> None:
    # What a crash before sync() can leave behind (the blob's name with fewer bytes), or another writer's
    # damaged object under our name.
    store = backend.store
    data = HELLO if size == 6 else os.urandom(size)
    src = write(tmp_path / "src", data)
    hexdigest = md5(data)
    if when == "truncated after a put":
        store.put_file(src)
        backend.write_raw(hexdigest, b"")
    else:
        backend.write_raw(hexdigest, data[:3])
    assert store.exists(hexdigest) and not store.exists(hexdigest, size=size)
    assert store.exists_many([hexdigest], sizes={hexdigest: size}) == set()
    if when == "truncated after a put":
        store.put_file(src)
    else:
        store.put_files([src])
    assert read_blob(store, hexdigest) == data
    assert backend.objects() == {backend.key(hexdigest): size}


# -- existence --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [3, 40])  # below and above the per-blob / listing switch
def test_exists_many_returns_the_present_subset(backend: Backend, count: int) -> None:
    store = backend.store
    stored = [store.put_bytes(f"blob {i}".encode())[0] for i in range(count)]
    absent = [md5(f"absent {i}".encode()) for i in range(count)]
    assert store.exists_many(stored + absent) == set(stored)
    assert store.exists_many(iter(stored[:2])) == set(stored[:2])
    assert store.exists_many([]) == set()
    sizes = dict.fromkeys(stored[:1], 999)
    assert store.exists_many(stored, sizes=sizes) == set(stored[1:])


def test_exists_many_sees_blobs_written_by_another_client(backend: Backend) -> None:
    store = backend.store
    hexes = [store.put_bytes(f"first {i}".encode())[0] for i in range(20)]
    assert store.exists_many(hexes) == set(hexes)
    other = backend.new_store()
    late = [other.put_bytes(f"late {i}".encode())[0] for i in range(20)]
    assert store.exists_many(hexes + late) == set(hexes + late)


# -- changed content --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [6, BIG])
def test_content_changed_while_logging(backend: Backend, tmp_path: Path, size: int) -> None:
    store = backend.store
    old = HELLO if size == 6 else os.urandom(size)
    path = write(tmp_path / "data.bin", old)
    expected = md5(old)
    path.write_bytes(flip_last_byte(old))  # the file changes between hashing and storing
    for put in (lambda: store.put_file(path, expected_hex=expected), lambda: store.put_files([path], [expected])):
        with pytest.raises(ContentChangedError) as info:
            put()
        message = str(info.value)
        assert str(path) in message and "changed while it was being logged" in message
        assert isinstance(info.value, ValueError)
    assert list(store.iter_hexes()) == []
    assert backend.objects() == {}, "nothing stored under either digest, no temp file left"


def test_put_file_with_matching_expected_hex(backend: Backend, tmp_path: Path) -> None:
    path = write(tmp_path / "a", HELLO)
    assert backend.store.put_file(path, expected_hex=HELLO_HEX) == (HELLO_HEX, 6)
    assert backend.store.put_files([path], expected=[HELLO_HEX]) == [(HELLO_HEX, 6)]


def test_a_folder_is_refused_with_a_clear_error(backend: Backend, tmp_path: Path) -> None:
    folder = tmp_path / "a folder"
    write(folder / "inside.txt", HELLO)
    for put in (lambda: backend.store.put_file(folder), lambda: backend.store.put_files([folder])):
        with pytest.raises(IsADirectoryError, match="is a directory.*use add_dir") as info:
            put()
        assert repr(str(folder)) in str(info.value)
    assert backend.objects() == {}


# -- corruption and missing blobs -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [6, BIG])
@pytest.mark.parametrize("batch", [False, True], ids=["get_file", "get_files"])
def test_a_corrupt_blob_is_refused_while_downloading(backend: Backend, tmp_path: Path, size: int, batch: bool) -> None:
    store = backend.store
    data = HELLO if size == 6 else os.urandom(size)
    hexdigest, _ = store.put_file(write(tmp_path / "src", data))
    bad = flip_last_byte(data)
    backend.write_raw(hexdigest, bad)
    dest = tmp_path / "out" / "file.bin"
    with pytest.raises(CorruptBlobError) as info:
        if batch:
            backend.new_store().get_files([(hexdigest, size, dest)])
        else:
            store.get_file(hexdigest, dest)
    err = info.value
    assert hexdigest in str(err) and md5(bad) in str(err)
    assert (err.expected_hex, err.actual_hex) == (hexdigest, md5(bad))
    assert list(dest.parent.iterdir()) == [], "neither the destination nor a temp file may remain"


def test_a_corrupt_blob_leaves_an_existing_destination_alone(backend: Backend, tmp_path: Path) -> None:
    backend.store.put_bytes(HELLO)
    backend.write_raw(HELLO_HEX, b"HELLO\n")
    dest = write(tmp_path / "out" / "keep.txt", b"previous")
    with pytest.raises(CorruptBlobError):
        backend.store.get_file(HELLO_HEX, dest)
    assert dest.read_bytes() == b"previous"
    assert [p.name for p in dest.parent.iterdir()] == ["keep.txt"]


def test_a_missing_blob_names_digest_and_root(backend: Backend, tmp_path: Path) -> None:
    store = backend.store
    calls = [
        lambda: store.get_file(HELLO_HEX, tmp_path / "new" / "x"),
        lambda: store.get_files([(HELLO_HEX, 6, tmp_path / "new" / "y")]),
        lambda: store.get_files([(HELLO_HEX, None, tmp_path / "new" / "z")]),
        lambda: store.open(HELLO_HEX),
        lambda: store.delete(HELLO_HEX),
    ]
    for call in calls:
        with pytest.raises(FileNotFoundError) as info:
            call()
        assert HELLO_HEX in str(info.value) and store.root in str(info.value)
    assert not (tmp_path / "new").exists(), "nothing is created for a blob that is not there"


@pytest.mark.parametrize("bad", ["../../etc/passwd", "B1946AC92492D2347C6235B4D2611184", "abc"])
def test_digests_are_validated_before_building_paths(backend: Backend, tmp_path: Path, bad: str) -> None:
    store = backend.store
    calls = [
        lambda: store.blob_path(bad),
        lambda: store.exists(bad),
        lambda: store.exists_many([HELLO_HEX, bad]),
        lambda: store.open(bad),
        lambda: store.get_file(bad, tmp_path / "x"),
        lambda: store.get_files([(HELLO_HEX, 6, tmp_path / "y"), (bad, 6, tmp_path / "z")]),
        lambda: store.delete(bad),
        lambda: store.put_file(write(tmp_path / "a", HELLO), expected_hex=bad),
        lambda: store.put_files([tmp_path / "a"], expected=[bad]),
        lambda: store.sync([bad]),
    ]
    for call in calls:
        if call is calls[-1] and not store.is_local:
            continue  # sync has nothing to do (and so nothing to build a path for) where writes are durable
        with pytest.raises(ValueError, match="not an MD5 hex digest") as info:
            call()
        assert repr(bad) in str(info.value)
    assert not (tmp_path / "y").exists(), "every digest is checked before the first byte moves"


# -- many files -------------------------------------------------------------------------------------------------


def test_put_files_keeps_order_and_reports_each_file(backend: Backend, tmp_path: Path) -> None:
    store = backend.store
    sizes = (0, 10, POOL_MIN_SIZE, 5, BIG, POOL_MIN_SIZE * 3, 1, backend.streamed_size)
    datas = [os.urandom(n) for n in sizes] * 3
    paths = [write(tmp_path / "src" / f"f{i}", d) for i, d in enumerate(datas)]
    seen: list[int] = []
    store.put_bytes(b"warm up")  # connection pools open their sockets before fds are counted
    fds = open_fds()
    results = store.put_files(paths, progress=seen.append)
    assert results == [(md5(d), len(d)) for d in datas]
    assert sorted(seen) == sorted(len(d) for d in datas)
    assert set(store.iter_hexes()) == {md5(d) for d in datas} | {md5(b"warm up")}
    if not backend.is_bucket:  # an HTTP client may keep more pooled connections after a concurrent batch
        assert open_fds() == fds
    assert backend.leftovers() == []


def test_put_files_checks_expected_length(backend: Backend, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="one per path"):
        backend.store.put_files([write(tmp_path / "a", HELLO)], expected=[])


def test_get_files_round_trip(backend: Backend, tmp_path: Path) -> None:
    datas = [os.urandom(100 + i) for i in range(40)] + [b"", os.urandom(backend.streamed_size)]
    results = backend.store.put_files([write(tmp_path / "src" / f"f{i}", d) for i, d in enumerate(datas)])
    out = tmp_path / "out"
    reader = backend.new_store()
    reader.get_files([(h, n, out / h) for h, n in results] + [(results[3][0], None, out / "unknown-size")])
    for (h, _), d in zip(results, datas, strict=True):
        assert (out / h).read_bytes() == d
    assert (out / "unknown-size").read_bytes() == datas[3]
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "no temp files left behind"
    reader.get_files([])  # nothing to do


def test_a_long_destination_name_downloads(backend: Backend, tmp_path: Path) -> None:
    # A 250-byte name is legal (NAME_MAX is 255); the temp file beside it must not be longer.
    name = "é" * 100 + "n" * 50  # 250 bytes in UTF-8
    assert len(name.encode()) == 250
    hexdigest, size = backend.store.put_bytes(HELLO)
    backend.store.get_file(hexdigest, tmp_path / "one" / name)
    backend.store.get_files([(hexdigest, size, tmp_path / "many" / name)])
    for folder in ("one", "many"):
        assert [p.name for p in (tmp_path / folder).iterdir()] == [name]
        assert (tmp_path / folder / name).read_bytes() == HELLO


def test_progress_hook_sees_uploads_and_downloads(backend: Backend, tmp_path: Path) -> None:
    contents = [os.urandom(1000) for _ in range(20)]
    contents += [os.urandom(POOL_MIN_SIZE + 1), os.urandom(backend.streamed_size)]
    paths = [write(tmp_path / "src" / f"f{i}", d) for i, d in enumerate(contents)]
    n, total = len(contents), sum(map(len, contents))
    calls: list[tuple[int, int, int, int]] = []
    with report_progress(lambda *a: calls.append(a)):
        results = backend.store.put_files(paths)
    assert calls[0] == (0, total, 0, n) and calls[-1] == (total, total, n, n)
    assert all(a[0] <= b[0] and a[2] <= b[2] for a, b in zip(calls, calls[1:], strict=False)), "never goes backwards"
    calls.clear()
    with report_progress(lambda *a: calls.append(a)):
        backend.store.get_files([(h, size, tmp_path / "out" / h) for h, size in results])
    assert calls[0] == (0, total, 0, n) and calls[-1] == (total, total, n, n)
    assert all(a[0] <= b[0] and a[2] <= b[2] for a, b in zip(calls, calls[1:], strict=False)), "never goes backwards"
    calls.clear()
    backend.store.put_files(paths)  # outside the block: nothing reported
    assert calls == []
    with report_progress(lambda *a: calls.append(a)):
        backend.store.put_files(paths + paths[:3])  # all present (and three twice): done without sending
    assert calls[-1] == (total + 3000, total + 3000, n + 3, n + 3)


# -- durability, listing, deletion, temp files ------------------------------------------------------------------


def test_sync_after_puts(backend: Backend) -> None:
    store = backend.store
    hexes = [store.put_bytes(b"blob %d" % i)[0] for i in range(3)]
    store.sync(hexes)
    store.sync([])
    store.sync()
    assert store.exists_many(hexes) == set(hexes)


def test_iter_hexes_and_delete(backend: Backend) -> None:
    store = backend.store
    assert list(store.iter_hexes()) == []
    hexes = {store.put_bytes(f"x{i}".encode())[0] for i in range(5)}
    assert set(store.iter_hexes()) == hexes
    victim = sorted(hexes)[0]
    store.delete(victim)
    assert set(store.iter_hexes()) == hexes - {victim}
    assert not store.exists(victim)
    with pytest.raises(FileNotFoundError, match=victim):
        store.delete(victim)


def test_remove_stale_temps_leaves_blobs_alone(backend: Backend, tmp_path: Path) -> None:
    store = backend.store
    assert store.remove_stale_temps() == 0  # nothing written yet
    hexes = {store.put_bytes(f"x{i}".encode())[0] for i in range(3)}
    store.put_file(write(tmp_path / "big", os.urandom(BIG)))
    time.sleep(0.01)
    assert store.remove_stale_temps(older_than_s=-1) == 0, "a completed put leaves no temp file"
    assert hexes <= set(store.iter_hexes())
