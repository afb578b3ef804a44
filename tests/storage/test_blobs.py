"""The local-folder blob store beyond the shared contract (test_blob_contract.py): layout, no rewrites of
stored blobs, O_TMPFILE and its named-temp fallback, the pipelined path, durability (fsync / syncfs), many
processes and crashes."""

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
from wandb_dagster.storage import local_io
from wandb_dagster.storage.blobs import POOL_MIN_SIZE, BlobStore
from wandb_dagster.storage.errors import ContentChangedError
from wandb_dagster.storage.hashing import CHUNK

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
    tmp = Path(store.root) / "tmp"
    return sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []


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


# -- dedup and changed sizes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [6, BIG])
@pytest.mark.parametrize("kind", ["local", "named_tmp"])
def test_second_put_does_not_rewrite_the_blob(request, tmp_path: Path, size: int, kind: str):
    """A small duplicate is compared with the stored blob and dropped: the blob is not touched. A large one
    is not read back; its verified temp takes the name (a rename, no second write), so the name keeps the
    same bytes (see test_a_bit_flipped_blob_is_repaired_by_a_duplicate_put)."""
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
    if size < CHUNK:
        assert key(after) == key(before)
    assert blob.read_bytes() == data
    assert not after.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH), "blobs are read-only"
    assert leftovers(local_store) == []


@pytest.mark.parametrize("size", [6, BIG])
@pytest.mark.parametrize("kind", ["local", "named_tmp"])
def test_a_bit_flipped_blob_is_repaired_by_a_duplicate_put(request, tmp_path: Path, size: int, kind: str):
    """Issue 18: a same-size damaged blob is not trusted when a put has the bytes in hand."""
    local_store = request.getfixturevalue(f"{kind}_store")
    data = HELLO if size == 6 else os.urandom(size)
    hexdigest, _ = local_store.put_file(write(tmp_path / "one", data))
    blob = Path(local_store.blob_path(hexdigest))
    blob.chmod(0o644)
    with open(blob, "r+b") as f:
        f.seek(size // 2)
        byte = f.read(1)
        f.seek(size // 2)
        f.write(bytes([byte[0] ^ 0x10]))
    blob.chmod(0o444)
    assert local_store.put_file(write(tmp_path / "two", data)) == (hexdigest, size)
    assert blob.read_bytes() == data
    assert leftovers(local_store) == []


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


# -- many files -----------------------------------------------------------------------------------------------


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
    monkeypatch.setattr(local_io, "_libc_syncfs_fn", False)  # as on a libc without syncfs
    monkeypatch.setattr(blobs_mod.os, "sync", lambda: calls.append(1))
    local_store.sync()
    assert calls == [1]


def test_sync_reports_writeback_errors(local_store: BlobStore, monkeypatch):
    import ctypes

    local_store.put_bytes(HELLO)

    def failing(fd):  # libc's syncfs as it fails since Linux 5.8 when writeback failed: -1 and errno EIO
        ctypes.set_errno(errno.EIO)
        return -1

    monkeypatch.setattr(local_io, "_libc_syncfs_fn", failing)
    with pytest.raises(OSError) as info:
        local_store.sync()
    assert info.value.errno == errno.EIO and "may not be durable" in str(info.value)


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
    assert proc.pid is not None
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
    monkeypatch.setattr(local_io, "WRITEBACK_STEP", CHUNK)  # sync_file_range on every other buffer
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
    monkeypatch.setattr(local_io, "WRITEBACK_STEP", CHUNK)

    def disk_full(fd, offset, nbytes):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(local_io, "start_writeback", disk_full)
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


@pytest.mark.parametrize("size", [6, BIG])
def test_a_damaged_blob_in_a_generic_fsspec_store_is_repaired_by_a_duplicate_put(memory_store, tmp_path: Path, size: int):
    data = HELLO if size == 6 else os.urandom(size)
    hexdigest, _ = memory_store.put_file(write(tmp_path / "one", data))
    damaged = bytearray(data)
    damaged[size // 2] ^= 0x10
    memory_store._fs.pipe_file(memory_store._path(hexdigest), bytes(damaged))
    assert memory_store.put_file(write(tmp_path / "two", data)) == (hexdigest, size)
    assert memory_store._fs.cat_file(memory_store._path(hexdigest)) == data
