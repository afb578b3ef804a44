from __future__ import annotations

import errno
import hashlib
import multiprocessing
import os
import signal
import stat
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from wandb_dagster.storage import blobs as blobs_mod
from wandb_dagster.storage.blobs import POOL_MIN_SIZE, BlobStore
from wandb_dagster.storage.errors import ContentChangedError, CorruptBlobError
from wandb_dagster.storage.hashing import CHUNK, EMPTY_MD5_HEX

BIG = CHUNK * 2 + 123  # takes the streaming path
HELLO = b"hello\n"
HELLO_HEX = "b1946ac92492d2347c6235b4d2611184"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def leftovers(store: BlobStore) -> list[str]:
    """Files in the store's temp directory: there must never be any once a call has returned."""
    if store.is_local:
        tmp = Path(store.root) / "tmp"
        return sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []
    fs, tmp = store._fs, f"{store._fsroot}/tmp"
    return sorted(fs.ls(tmp, detail=False)) if fs.exists(tmp) else []


def flip_last_byte(data: bytes) -> bytes:
    """Same length, surely different content (appending a fixed byte would match random data 1 in 256)."""
    return data[:-1] + bytes([data[-1] ^ 0xFF])


def read_blob(store: BlobStore, hexdigest: str) -> bytes:
    with store.open(hexdigest) as f:
        return f.read()


# -- layout and round trips ------------------------------------------------------------------------------------


def test_local_layout_is_content_addressed(local_store: BlobStore, tmp_path: Path):
    src = write(tmp_path / "src" / "hello.txt", HELLO)
    assert local_store.put_file(src) == (HELLO_HEX, 6)
    blob = Path(local_store.root) / HELLO_HEX[:2] / HELLO_HEX[2:]
    assert blob.read_bytes() == HELLO
    assert local_store.blob_path(HELLO_HEX) == str(blob)
    assert not blob.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH), "blobs are read-only"


def test_file_url_root_is_the_local_directory(tmp_path: Path):
    store = BlobStore(f"file://{tmp_path}/blobs")
    assert store.is_local and store.root == f"{tmp_path}/blobs"
    src = write(tmp_path / "a", HELLO)
    store.put_file(src)
    assert (tmp_path / "blobs" / HELLO_HEX[:2] / HELLO_HEX[2:]).read_bytes() == HELLO


def test_memory_root_goes_through_fsspec(memory_store: BlobStore):
    assert not memory_store.is_local
    assert memory_store.blob_path(HELLO_HEX) == f"{memory_store.root}/b1/{HELLO_HEX[2:]}"


@pytest.mark.parametrize("data", [b"", HELLO, os.urandom(POOL_MIN_SIZE + 5), os.urandom(BIG)], ids=len)
def test_put_and_get_round_trip(store: BlobStore, tmp_path: Path, data: bytes):
    src = write(tmp_path / "src", data)
    assert store.put_file(src) == (md5(data), len(data))
    assert store.exists(md5(data)) and store.exists(md5(data), size=len(data))
    dest = tmp_path / "out" / "deep" / "copy.bin"
    store.get_file(md5(data), dest)
    assert dest.read_bytes() == data
    assert leftovers(store) == []
    assert [p.name for p in dest.parent.iterdir()] == ["copy.bin"]


def test_put_bytes(store: BlobStore):
    assert store.put_bytes(HELLO) == (HELLO_HEX, 6)
    assert store.put_bytes(b"") == (EMPTY_MD5_HEX, 0)
    assert read_blob(store, HELLO_HEX) == HELLO


# -- dedup ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [6, BIG])
@pytest.mark.parametrize("kind", ["local", "named_tmp"])
def test_second_put_does_not_rewrite_the_blob(request, tmp_path: Path, size: int, kind: str):
    local_store = request.getfixturevalue(f"{kind}_store")
    data = HELLO if size == 6 else os.urandom(size)
    first = write(tmp_path / "one", data)
    second = write(tmp_path / "two", data)  # same content, another file
    hexdigest, _ = local_store.put_file(first)
    blob = Path(local_store.blob_path(hexdigest))
    os.utime(blob, ns=(1_000_000_000, 1_000_000_000))  # a rewrite or re-rename would be visible
    before = blob.stat()
    time.sleep(0.01)
    assert local_store.put_file(second) == (hexdigest, size)
    after = blob.stat()
    key = lambda st: (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)  # noqa: E731
    assert key(after) == key(before)
    assert leftovers(local_store) == []


@pytest.mark.parametrize("size", [6, BIG])
@pytest.mark.parametrize("kind", ["local", "named_tmp"])
def test_truncated_blob_counts_as_missing_and_is_repaired(request, tmp_path: Path, kind: str, size: int):
    # What a crash before sync() can leave behind: the blob's name with fewer bytes.
    store = request.getfixturevalue(f"{kind}_store")
    data = HELLO if size == 6 else os.urandom(size)
    src = write(tmp_path / "src", data)
    hexdigest, _ = store.put_file(src)
    blob = Path(store.blob_path(hexdigest))
    blob.chmod(0o644)
    blob.write_bytes(b"")
    assert store.exists(hexdigest) and not store.exists(hexdigest, size=size)
    assert store.exists_many([hexdigest], sizes={hexdigest: size}) == set()
    store.put_file(src)
    assert blob.read_bytes() == data
    assert leftovers(store) == []


# -- existence ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [3, 40])  # below and above the remote per-blob / listing switch
def test_exists_many_returns_the_present_subset(store: BlobStore, count: int):
    stored = [store.put_bytes(f"blob {i}".encode())[0] for i in range(count)]
    absent = [md5(f"absent {i}".encode()) for i in range(count)]
    assert store.exists_many(stored + absent) == set(stored)
    assert store.exists_many(iter(stored[:2])) == set(stored[:2])
    sizes = {h: 999 for h in stored[:1]}
    assert store.exists_many(stored, sizes=sizes) == set(stored[1:])


def test_exists_many_sees_blobs_written_by_another_client(memory_store: BlobStore):
    hexes = [memory_store.put_bytes(f"first {i}".encode())[0] for i in range(20)]
    assert memory_store.exists_many(hexes) == set(hexes)
    other = BlobStore(memory_store.root)
    late = [other.put_bytes(f"late {i}".encode())[0] for i in range(20)]
    assert memory_store.exists_many(hexes + late) == set(hexes + late)


# -- changed content ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [6, BIG])
def test_content_changed_while_logging(store: BlobStore, tmp_path: Path, size: int):
    old = HELLO if size == 6 else os.urandom(size)
    path = write(tmp_path / "data.bin", old)
    expected = md5(old)
    path.write_bytes(flip_last_byte(old))  # the file changes between hashing and storing
    with pytest.raises(ContentChangedError) as info:
        store.put_file(path, expected_hex=expected)
    message = str(info.value)
    assert str(path) in message and "changed while it was being logged" in message
    assert isinstance(info.value, ValueError)
    assert list(store.iter_hexes()) == []
    assert leftovers(store) == []


def test_put_file_with_matching_expected_hex(store: BlobStore, tmp_path: Path):
    path = write(tmp_path / "a", HELLO)
    assert store.put_file(path, expected_hex=HELLO_HEX) == (HELLO_HEX, 6)


@pytest.mark.parametrize("reported", [3, 10], ids=["grew", "shrank"])
def test_file_whose_size_changed_is_stored_as_read(local_store: BlobStore, tmp_path: Path, monkeypatch, reported):
    # fstat reports another size than the read finds: the bytes read are what counts.
    path = write(tmp_path / "changes", HELLO)
    real_fstat = os.fstat

    def stale_fstat(fd):
        st = real_fstat(fd)
        return os.stat_result(tuple(st)[:6] + (reported,) + tuple(st)[7:])

    monkeypatch.setattr(blobs_mod.os, "fstat", stale_fstat)
    assert local_store.put_file(path) == (HELLO_HEX, 6)
    assert read_blob(local_store, HELLO_HEX) == HELLO


# -- corruption and missing blobs -----------------------------------------------------------------------------


def _corrupt(store: BlobStore, hexdigest: str, data: bytes) -> None:
    if store.is_local:
        blob = Path(store.blob_path(hexdigest))
        blob.chmod(0o644)
        blob.write_bytes(data)
    else:
        store._fs.pipe_file(store._path(hexdigest), data)


@pytest.mark.parametrize("size", [6, BIG])
def test_get_file_detects_a_corrupt_blob(store: BlobStore, tmp_path: Path, size: int):
    data = HELLO if size == 6 else os.urandom(size)
    hexdigest, _ = store.put_file(write(tmp_path / "src", data))
    bad = flip_last_byte(data)
    _corrupt(store, hexdigest, bad)
    dest = tmp_path / "out" / "file.bin"
    with pytest.raises(CorruptBlobError) as info:
        store.get_file(hexdigest, dest)
    err = info.value
    assert hexdigest in str(err) and md5(bad) in str(err)
    assert (err.expected_hex, err.actual_hex) == (hexdigest, md5(bad))
    assert list(dest.parent.iterdir()) == [], "neither the destination nor a temp file may remain"


def test_get_file_does_not_touch_an_existing_destination_on_corruption(local_store: BlobStore, tmp_path: Path):
    local_store.put_file(write(tmp_path / "src", HELLO))
    _corrupt(local_store, HELLO_HEX, b"HELLO\n")
    dest = write(tmp_path / "out" / "keep.txt", b"previous")
    with pytest.raises(CorruptBlobError):
        local_store.get_file(HELLO_HEX, dest)
    assert dest.read_bytes() == b"previous"


def test_missing_blob_names_digest_and_root(store: BlobStore, tmp_path: Path):
    calls = [
        lambda: store.get_file(HELLO_HEX, tmp_path / "new" / "x"),
        lambda: store.open(HELLO_HEX),
        lambda: store.delete(HELLO_HEX),
    ]
    for call in calls:
        with pytest.raises(FileNotFoundError) as info:
            call()
        assert HELLO_HEX in str(info.value) and store.root in str(info.value)
    assert not (tmp_path / "new").exists(), "nothing is created for a blob that is not there"


@pytest.mark.parametrize("bad", ["../../etc/passwd", "B1946AC92492D2347C6235B4D2611184", "abc"])
def test_digests_are_validated_before_building_paths(store: BlobStore, tmp_path: Path, bad: str):
    calls = [
        lambda: store.blob_path(bad),
        lambda: store.exists(bad),
        lambda: store.exists_many([HELLO_HEX, bad]),
        lambda: store.open(bad),
        lambda: store.get_file(bad, tmp_path / "x"),
        lambda: store.delete(bad),
        lambda: store.put_file(write(tmp_path / "a", HELLO), expected_hex=bad),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="not an MD5 hex digest") as info:
            call()
        assert repr(bad) in str(info.value)


# -- many files -----------------------------------------------------------------------------------------------


def test_put_files_mixes_inline_and_pooled_files_in_order(store: BlobStore, tmp_path: Path):
    datas = [os.urandom(n) for n in (0, 10, POOL_MIN_SIZE, 5, BIG, POOL_MIN_SIZE * 3, 1)] * 3
    paths = [write(tmp_path / "src" / f"f{i}", d) for i, d in enumerate(datas)]
    seen: list[int] = []
    fds = open_fds()
    results = store.put_files(paths, progress=seen.append)
    assert results == [(md5(d), len(d)) for d in datas]
    assert sorted(seen) == sorted(len(d) for d in datas)
    assert set(store.iter_hexes()) == {md5(d) for d in datas}
    assert open_fds() == fds
    assert leftovers(store) == []


def test_put_files_stops_on_changed_content_and_closes_everything(local_store: BlobStore, tmp_path: Path):
    datas = [os.urandom(POOL_MIN_SIZE + i) for i in range(30)]
    paths = [write(tmp_path / "src" / f"f{i}", d) for i, d in enumerate(datas)]
    expected = [md5(d) for d in datas]
    expected[3] = md5(b"something else")
    fds = open_fds()
    with pytest.raises(ContentChangedError) as info:
        local_store.put_files(paths, expected=expected)
    assert str(paths[3]) in str(info.value)
    assert md5(datas[3]) not in set(local_store.iter_hexes())
    assert open_fds() == fds
    assert leftovers(local_store) == []


def test_put_files_checks_expected_length(local_store: BlobStore, tmp_path: Path):
    with pytest.raises(ValueError, match="one per path"):
        local_store.put_files([write(tmp_path / "a", HELLO)], expected=[])


def test_put_files_large_file_memory_is_bounded(local_store: BlobStore, tmp_path: Path):
    path = tmp_path / "sparse"
    with open(path, "wb") as f:
        f.truncate(48 * CHUNK)
    tracemalloc.start()
    try:
        [(hexdigest, size)] = local_store.put_files([path])
        local_store.get_file(hexdigest, tmp_path / "back")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size == 48 * CHUNK and (tmp_path / "back").stat().st_size == size
    assert peak < 6 * CHUNK, f"storing a 48 MiB file peaked at {peak} bytes"


# -- iteration, deletion, temp files --------------------------------------------------------------------------


def test_iter_hexes_and_delete(store: BlobStore):
    hexes = {store.put_bytes(f"x{i}".encode())[0] for i in range(5)}
    assert set(store.iter_hexes()) == hexes
    victim = sorted(hexes)[0]
    store.delete(victim)
    assert set(store.iter_hexes()) == hexes - {victim}
    assert not store.exists(victim)


def test_iter_hexes_skips_temp_files(local_store: BlobStore):
    local_store.put_bytes(HELLO)
    write(Path(local_store.root) / "tmp" / "123-abc-0", b"partial")
    assert list(local_store.iter_hexes()) == [HELLO_HEX]


def test_remove_stale_temps_keeps_fresh_ones(local_store: BlobStore):
    tmp = Path(local_store.root) / "tmp"
    old = write(tmp / "1-dead-0", b"crashed writer")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    fresh = write(tmp / "2-live-0", b"in progress")
    assert local_store.remove_stale_temps(older_than_s=3600) == 1
    assert not old.exists() and fresh.exists()


# -- durability -----------------------------------------------------------------------------------------------


def test_sync_uses_syncfs_not_a_global_sync(local_store: BlobStore, monkeypatch):
    local_store.put_bytes(HELLO)

    def no_global_sync():
        raise AssertionError("os.sync called although syncfs is available")

    monkeypatch.setattr(blobs_mod.os, "sync", no_global_sync)
    local_store.sync()


def test_sync_falls_back_to_os_sync_without_syncfs(local_store: BlobStore, monkeypatch):
    local_store.put_bytes(HELLO)
    calls = []
    monkeypatch.delattr(blobs_mod.os, "syncfs", raising=False)
    monkeypatch.setattr(blobs_mod, "_libc_syncfs_fn", False)  # as on a libc without syncfs
    monkeypatch.setattr(blobs_mod.os, "sync", lambda: calls.append(1))
    local_store.sync()
    assert calls == [1]


def test_sync_reports_writeback_errors(local_store: BlobStore, monkeypatch):
    local_store.put_bytes(HELLO)

    def failing(fd):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(blobs_mod.os, "syncfs", failing, raising=False)
    with pytest.raises(OSError):
        local_store.sync()


def test_sync_of_an_empty_store_is_a_no_op(tmp_path: Path):
    BlobStore(str(tmp_path / "never-written")).sync()
    assert not (tmp_path / "never-written").exists()


def _spy_on_durability(monkeypatch) -> tuple[list[str], list[int]]:
    """Record what is fsynced (by path) and each syncfs; both still do their work."""
    fsynced, syncfs_calls = [], []
    real_fsync, real_syncfs = os.fsync, blobs_mod._syncfs

    def fsync(fd):
        fsynced.append(os.path.realpath(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def syncfs(fd):
        syncfs_calls.append(fd)
        real_syncfs(fd)

    monkeypatch.setattr(blobs_mod.os, "fsync", fsync)
    monkeypatch.setattr(blobs_mod, "_syncfs", syncfs)
    return fsynced, syncfs_calls


def test_sync_of_a_few_blobs_fsyncs_them_and_their_directories(tmp_path: Path, monkeypatch):
    store = BlobStore(str(tmp_path / "blobs"))
    store.put_bytes(b"first write creates the store")
    store.sync()  # the store's first sync covers the directories it created (root, tmp) with syncfs
    hexes = [store.put_bytes(b"blob %d" % i)[0] for i in range(3)]
    fsynced, syncfs_calls = _spy_on_durability(monkeypatch)
    store.sync(hexes)
    root = os.path.realpath(store.root)
    expected = {os.path.realpath(store.blob_path(h)) for h in hexes}
    expected |= {f"{root}/{h[:2]}" for h in hexes} | {root, os.path.dirname(root)}
    assert syncfs_calls == []
    assert set(fsynced) == expected
    # Each blob before the directories that name it.
    assert fsynced.index(f"{root}/{hexes[0][:2]}") > fsynced.index(os.path.realpath(store.blob_path(hexes[0])))
    # Later blobs in fan-out directories already synced into the root: the blob and its directory only.
    fsynced.clear()
    again = next(h for h in (store.put_bytes(b"more %d" % i)[0] for i in range(1000)) if h[:2] == hexes[0][:2])
    store.sync([again])
    assert fsynced == [os.path.realpath(store.blob_path(again)), f"{root}/{again[:2]}"]
    # A fan-out directory this store has not synced yet: the root and its parent again.
    fsynced.clear()
    seen = {h[:2] for h in hexes}
    other = next(h for h in (store.put_bytes(b"other %d" % i)[0] for i in range(1000)) if h[:2] not in seen)
    store.sync([other])
    assert fsynced == [os.path.realpath(store.blob_path(other)), f"{root}/{other[:2]}", root, os.path.dirname(root)]


def test_sync_of_many_blobs_or_a_new_store_uses_one_syncfs(tmp_path: Path, monkeypatch):
    fsynced, syncfs_calls = _spy_on_durability(monkeypatch)
    store = BlobStore(str(tmp_path / "blobs"))
    first = store.put_bytes(b"into a new store")[0]
    store.sync([first])  # this store just created its root: syncfs makes the new directories durable too
    assert (len(syncfs_calls), fsynced) == (1, [])
    many = [store.put_bytes(b"blob %d" % i)[0] for i in range(blobs_mod.FSYNC_MAX_BLOBS + 1)]
    store.sync(many)
    assert (len(syncfs_calls), fsynced) == (2, [])
    store.sync(many[: blobs_mod.FSYNC_MAX_BLOBS])
    assert len(syncfs_calls) == 2 and len(fsynced) == blobs_mod.FSYNC_MAX_BLOBS + len(
        {h[:2] for h in many[: blobs_mod.FSYNC_MAX_BLOBS]}
    ) + 2


def test_sync_of_named_blobs_refuses_a_missing_one(local_store: BlobStore):
    present = local_store.put_bytes(HELLO)[0]
    local_store.sync()
    with pytest.raises(FileNotFoundError, match=md5(b"never stored")):
        local_store.sync([present, md5(b"never stored")])


def test_sync_of_named_blobs_reports_fsync_errors(local_store: BlobStore, monkeypatch):
    hexdigest = local_store.put_bytes(HELLO)[0]
    local_store.sync()

    def failing(fd):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(blobs_mod.os, "fsync", failing)
    with pytest.raises(OSError) as info:
        local_store.sync([hexdigest])
    assert info.value.errno == errno.EIO


# -- concurrency ----------------------------------------------------------------------------------------------


def _put_same_blob(root: str, src: str, barrier, rounds: int, queue) -> None:
    store = BlobStore(root)
    out = []
    for _ in range(rounds):
        barrier.wait()
        out.append(store.put_file(src))
        barrier.wait()
    queue.put(out)


def test_two_processes_putting_the_same_blob(tmp_path: Path):
    data = os.urandom(BIG)  # the streaming path keeps each writer busy long enough to overlap
    root = str(tmp_path / "blobs")
    sources = [str(write(tmp_path / f"src{i}", data)) for i in range(2)]
    ctx = multiprocessing.get_context("fork")
    barrier, queue, rounds = ctx.Barrier(2), ctx.Queue(), 10
    procs = [ctx.Process(target=_put_same_blob, args=(root, s, barrier, rounds, queue)) for s in sources]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert all(r == [(md5(data), len(data))] * rounds for r in results)
    store = BlobStore(root)
    assert list(store.iter_hexes()) == [md5(data)]
    assert read_blob(store, md5(data)) == data
    assert leftovers(store) == []


# -- crashes --------------------------------------------------------------------------------------------------


def _put_from(root: str, use_tmpfile: bool, src: str) -> None:
    store = BlobStore(root)
    store._use_tmpfile = use_tmpfile
    store.put_file(src)


@pytest.mark.parametrize("use_tmpfile", [True, False], ids=["tmpfile", "named"])
def test_kill_9_while_storing_leaves_no_blob(tmp_path: Path, use_tmpfile: bool):
    # The source is a FIFO, so the writer is reliably stuck half way through a blob when it is killed.
    fifo = tmp_path / "source.fifo"
    os.mkfifo(fifo)
    root = str(tmp_path / "blobs")
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=_put_from, args=(root, use_tmpfile, str(fifo)))
    proc.start()
    with open(fifo, "wb") as feed:
        feed.write(os.urandom(3 * CHUNK))
        feed.flush()
        store = BlobStore(root)
        deadline = time.monotonic() + 30
        # Wait until the temp file holds data: with O_TMPFILE it has no name, so watch the writer's fds.
        while time.monotonic() < deadline:
            sizes = [os.stat(f"/proc/{proc.pid}/fd/{fd}").st_size for fd in os.listdir(f"/proc/{proc.pid}/fd")
                     if os.readlink(f"/proc/{proc.pid}/fd/{fd}").startswith(root)]
            if any(n >= 2 * CHUNK for n in sizes):
                break
            time.sleep(0.01)
        else:
            pytest.fail("the writer never started storing")
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(timeout=30)
    assert proc.exitcode == -signal.SIGKILL
    assert list(store.iter_hexes()) == [], "a partial blob must never carry a blob name"
    if use_tmpfile:
        assert leftovers(store) == [], "an unnamed temp file disappears with its process"
    else:
        assert len(leftovers(store)) == 1
        assert store.remove_stale_temps(older_than_s=-1) == 1


# -- the pipelined path for large local files -----------------------------------------------------------------


@pytest.mark.parametrize("use_tmpfile", [True, False], ids=["tmpfile", "named"])
def test_pipelined_large_file_round_trip_and_changed_content(
    local_store: BlobStore, tmp_path: Path, monkeypatch, use_tmpfile: bool
):
    monkeypatch.setattr(blobs_mod, "PIPELINE_MIN_SIZE", CHUNK)
    monkeypatch.setattr(blobs_mod, "WRITEBACK_STEP", CHUNK)  # sync_file_range on every other buffer
    local_store._use_tmpfile = use_tmpfile
    data = os.urandom(9 * CHUNK + 7)
    path = write(tmp_path / "big", data)
    assert local_store.put_file(path) == (md5(data), len(data))
    assert read_blob(local_store, md5(data)) == data
    assert local_store.put_file(path) == (md5(data), len(data))  # dedup
    changed = write(tmp_path / "changed", flip_last_byte(data))
    threads = threading.active_count()
    with pytest.raises(ContentChangedError):
        local_store.put_file(changed, expected_hex=md5(data))
    assert list(local_store.iter_hexes()) == [md5(data)]
    assert leftovers(local_store) == []
    assert threading.active_count() == threads


def test_pipelined_write_error_stops_everything(local_store: BlobStore, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(blobs_mod, "PIPELINE_MIN_SIZE", CHUNK)
    monkeypatch.setattr(blobs_mod, "WRITEBACK_STEP", CHUNK)

    def disk_full(fd, offset, nbytes):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(blobs_mod, "_start_writeback", disk_full)
    path = write(tmp_path / "big", os.urandom(20 * CHUNK))
    fds, threads = open_fds(), threading.active_count()
    with pytest.raises(OSError) as info:
        local_store.put_file(path)
    assert info.value.errno == errno.ENOSPC
    assert list(local_store.iter_hexes()) == [] and leftovers(local_store) == []
    assert open_fds() == fds and threading.active_count() == threads


def test_file_url_roots_are_parsed_like_file_urls(tmp_path):
    from urllib.parse import quote

    target = tmp_path / "with space"
    store = BlobStore(f"file://localhost{quote(str(target))}")
    hexdigest, _ = store.put_bytes(b"hello\n")
    assert os.path.exists(target / hexdigest[:2] / hexdigest[2:])
    with pytest.raises(ValueError, match="'otherhost'"):
        BlobStore("file://otherhost/data")
