from __future__ import annotations

import errno
import fcntl
import hashlib
import multiprocessing
import os
import shutil
import stat
import time
from pathlib import Path

import pytest

from wandb_dagster.storage import cache as cache_mod
from wandb_dagster.storage.backend import open_blob_store
from wandb_dagster.storage.blobs import BlobStore
from wandb_dagster.storage.cache import FICLONE, DownloadCache, sentinel_mtime_ns
from wandb_dagster.storage.errors import ContentChangedError, CorruptBlobError
from wandb_dagster.storage.fsspec_blobs import FsspecBlobStore
from wandb_dagster.storage.hashing import CHUNK

HELLO = b"hello\n"
HELLO_HEX = "b1946ac92492d2347c6235b4d2611184"
HOUR_NS = 3600 * 1_000_000_000


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(str(tmp_path / "blobs"))


@pytest.fixture
def cache(tmp_path: Path) -> DownloadCache:
    return DownloadCache(tmp_path / "cache", max_bytes=1 << 30, hardlinks=True)


def cache_files(cache: DownloadCache) -> list[str]:
    return sorted(p.name for p in (cache.directory / "md5").rglob("*") if p.is_file())


def temp_files(cache: DownloadCache) -> list[str]:
    tmp = cache.directory / "tmp"
    return sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []


def set_atime(path: Path, atime_ns: int) -> None:
    os.utime(path, ns=(atime_ns, os.stat(path).st_mtime_ns))


def require_hardlink(mode: str) -> None:
    if mode == "reflink":
        pytest.skip("this filesystem reflinks, so place() never hard-links here (and the hazard does not arise)")
    assert mode == "hardlink"


def corrupt_blob(blobs: BlobStore, hexdigest: str, data: bytes) -> None:
    blob = Path(blobs.blob_path(hexdigest))
    blob.chmod(0o644)
    blob.write_bytes(data)


# -- filling and verification ---------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", HELLO, os.urandom(2 * CHUNK + 5)], ids=len)
def test_fetch_verifies_and_stores_a_read_only_entry(cache: DownloadCache, blobs: BlobStore, data: bytes):
    hexdigest, size = blobs.put_bytes(data)
    path = cache.fetch(blobs, hexdigest, size)
    assert path == cache.path_for(hexdigest) == cache.directory / "md5" / hexdigest[:2] / hexdigest[2:]
    assert path.read_bytes() == data
    st = path.stat()
    assert st.st_mtime_ns == sentinel_mtime_ns(hexdigest)
    assert not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert cache.lookup(hexdigest, size) == path
    assert temp_files(cache) == []


def test_fetch_refuses_a_corrupt_blob(cache: DownloadCache, blobs: BlobStore):
    blobs.put_bytes(HELLO)
    corrupt_blob(blobs, HELLO_HEX, b"HELLO\n")
    with pytest.raises(CorruptBlobError) as info:
        cache.fetch(blobs, HELLO_HEX, 6)
    assert HELLO_HEX in str(info.value) and md5(b"HELLO\n") in str(info.value)
    assert cache_files(cache) == [] and temp_files(cache) == []


def test_fetch_refuses_a_size_that_does_not_match(cache: DownloadCache, blobs: BlobStore):
    blobs.put_bytes(HELLO)
    with pytest.raises(ValueError, match="6 bytes but the manifest entry says 7"):
        cache.fetch(blobs, HELLO_HEX, 7)
    assert cache_files(cache) == [] and temp_files(cache) == []


def test_fetch_of_a_missing_blob(cache: DownloadCache, blobs: BlobStore):
    with pytest.raises(FileNotFoundError, match=HELLO_HEX):
        cache.fetch(blobs, HELLO_HEX, 6)
    assert cache_files(cache) == []


def test_fetch_from_a_remote_store(cache: DownloadCache):
    remote = open_blob_store("memory://cache-test-remote")
    assert isinstance(remote, FsspecBlobStore)
    try:
        hexdigest, size = remote.put_bytes(HELLO * 1000)
        assert cache.fetch(remote, hexdigest, size).read_bytes() == HELLO * 1000
    finally:
        remote._fs.rm(remote._fsroot, recursive=True)


def test_add_file_verifies_and_copies(cache: DownloadCache, tmp_path: Path):
    src = tmp_path / "upload.txt"
    src.write_bytes(HELLO)
    path = cache.add_file(src, HELLO_HEX)
    assert path.read_bytes() == HELLO
    assert os.stat(path).st_ino != os.stat(src).st_ino, "the caller's file must not become the entry"
    src.write_bytes(b"edited\n")
    with pytest.raises(ContentChangedError) as info:
        cache.add_file(src, md5(b"something else"))
    assert str(src) in str(info.value)
    assert cache_files(cache) == [HELLO_HEX[2:]] and temp_files(cache) == []


@pytest.mark.parametrize("bad", ["../../../etc/passwd", "ABC", HELLO_HEX.upper()])
def test_digests_are_validated(cache: DownloadCache, blobs: BlobStore, tmp_path: Path, bad: str):
    for call in (
        lambda: cache.path_for(bad),
        lambda: cache.lookup(bad, 1),
        lambda: cache.fetch(blobs, bad, 1),
        lambda: cache.add_file(tmp_path, bad),
        lambda: cache.place(bad, tmp_path / "x"),
    ):
        with pytest.raises(ValueError, match="not an MD5 hex digest") as info:
            call()
        assert repr(bad) in str(info.value)


# -- lookup re-checks -----------------------------------------------------------------------------------------


def test_lookup_misses(cache: DownloadCache, blobs: BlobStore):
    assert cache.lookup(HELLO_HEX, 6) is None
    blobs.put_bytes(HELLO)
    cache.fetch(blobs, HELLO_HEX, 6)
    assert cache.lookup(HELLO_HEX, 7) is None, "a size mismatch is not a hit"
    assert cache_files(cache) == [], "and the mismatching entry is dropped"


def test_entry_modified_in_place_is_dropped(cache: DownloadCache, blobs: BlobStore):
    blobs.put_bytes(HELLO)
    path = cache.fetch(blobs, HELLO_HEX, 6)
    path.chmod(0o644)
    with open(path, "r+b") as f:  # same size, other bytes: only the mtime tells
        f.write(b"J")
    assert cache.lookup(HELLO_HEX, 6) is None
    assert not path.exists()
    assert cache.fetch(blobs, HELLO_HEX, 6).read_bytes() == HELLO


def test_edit_through_a_hard_linked_download_is_detected(cache: DownloadCache, blobs: BlobStore, tmp_path: Path):
    blobs.put_bytes(HELLO)
    cache.fetch(blobs, HELLO_HEX, 6)
    dest = tmp_path / "download" / "hello.txt"
    require_hardlink(cache.place(HELLO_HEX, dest))
    dest.chmod(0o644)  # root could write anyway; an ordinary user has to do this first
    dest.write_bytes(b"jello\n")
    assert cache.lookup(HELLO_HEX, 6) is None
    assert dest.read_bytes() == b"jello\n", "dropping the entry leaves the user's file alone"
    with pytest.raises(FileNotFoundError):
        cache.place(HELLO_HEX, tmp_path / "download" / "again.txt")


def test_copy_with_timestamps_from_another_entry_is_detected(cache: DownloadCache, blobs: BlobStore, tmp_path: Path):
    # cp -p / shutil.copy2 from one hard-linked download onto another of the same size: bytes *and* mtime
    # of entry A land in entry B's inode. A single shared sentinel would accept that; ours does not.
    a, b = b"aaaa\n", b"bbbb\n"
    for data in (a, b):
        blobs.put_bytes(data)
        cache.fetch(blobs, md5(data), 5)
        require_hardlink(cache.place(md5(data), tmp_path / "dl" / data.decode().strip()))
    (tmp_path / "dl" / "bbbb").chmod(0o644)
    shutil.copy2(tmp_path / "dl" / "aaaa", tmp_path / "dl" / "bbbb")
    assert cache.path_for(md5(b)).read_bytes() == a, "the copy went through the shared inode"
    assert cache.lookup(md5(b), 5) is None
    assert cache.lookup(md5(a), 5) is not None


def test_dropping_never_removes_a_good_entry_that_replaced_the_bad_one(
    cache: DownloadCache, blobs: BlobStore, tmp_path: Path
):
    # Process A judges an entry modified; before A drops it, process B renames a fresh verified copy into
    # place. A must not delete B's entry.
    blobs.put_bytes(HELLO)
    path = cache.fetch(blobs, HELLO_HEX, 6)
    judged = os.stat(path)
    os.link(path, tmp_path / "keep-inode")  # so the fresh copy cannot reuse the judged inode number
    path.unlink()
    fresh = cache.fetch(blobs, HELLO_HEX, 6)
    assert os.stat(fresh).st_ino != judged.st_ino
    cache._drop(str(path), judged)
    assert cache.lookup(HELLO_HEX, 6) == path and path.read_bytes() == HELLO
    assert temp_files(cache) == []


def test_lookup_refreshes_atime_for_lru(cache: DownloadCache, blobs: BlobStore):
    blobs.put_bytes(HELLO)
    path = cache.fetch(blobs, HELLO_HEX, 6)
    old = time.time_ns() - HOUR_NS
    set_atime(path, old)
    cache.lookup(HELLO_HEX, 6)
    st = path.stat()
    assert st.st_atime_ns > old + HOUR_NS // 2
    assert st.st_mtime_ns == sentinel_mtime_ns(HELLO_HEX), "touching must keep the sentinel"


# -- placing --------------------------------------------------------------------------------------------------


def test_place_hardlink(cache: DownloadCache, blobs: BlobStore, tmp_path: Path):
    blobs.put_bytes(HELLO)
    entry = cache.fetch(blobs, HELLO_HEX, 6)
    dest = tmp_path / "root" / "a" / "b.txt"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"older content")
    require_hardlink(cache.place(HELLO_HEX, dest))
    assert dest.read_bytes() == HELLO and os.stat(dest).st_ino == os.stat(entry).st_ino
    assert sorted(p.name for p in dest.parent.iterdir()) == ["b.txt"], "no temp file left beside dest"


def test_place_copies_by_default_so_downloads_are_ordinary_files(blobs: BlobStore, tmp_path: Path):
    cache = DownloadCache(tmp_path / "plain-cache", max_bytes=1 << 30)
    blobs.put_bytes(HELLO)
    entry = cache.fetch(blobs, HELLO_HEX, 6)
    dest = tmp_path / "root" / "c.txt"
    assert cache.place(HELLO_HEX, dest) in ("copy", "reflink")
    assert dest.read_bytes() == HELLO and os.stat(dest).st_ino != os.stat(entry).st_ino
    assert os.access(dest, os.W_OK) and os.stat(dest).st_mode & 0o200
    dest.write_bytes(b"edited by the user")
    assert cache.lookup(HELLO_HEX, 6) == entry and entry.read_bytes() == HELLO


def test_place_copy_fallback(cache: DownloadCache, blobs: BlobStore, tmp_path: Path, monkeypatch):
    blobs.put_bytes(HELLO)
    entry = cache.fetch(blobs, HELLO_HEX, 6)

    def no(*args, **kwargs):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(cache_mod, "_reflink", no)
    monkeypatch.setattr(cache_mod.os, "link", no)
    dest = tmp_path / "root" / "c.txt"
    assert cache.place(HELLO_HEX, dest) == "copy"
    assert dest.read_bytes() == HELLO and os.stat(dest).st_ino != os.stat(entry).st_ino
    dest.write_bytes(b"mine now\n")  # an ordinary writable file; the entry is unaffected
    assert cache.lookup(HELLO_HEX, 6) == entry and entry.read_bytes() == HELLO
    assert sorted(p.name for p in dest.parent.iterdir()) == ["c.txt"]


def _reflink_dir(tmp_path: Path) -> Path:
    """A directory on a filesystem with reflinks (btrfs, xfs): tmp_path if it has them, or
    $WANDB_DAGSTER_TEST_REFLINK_DIR; else skip."""
    candidates = [tmp_path]
    if os.environ.get("WANDB_DAGSTER_TEST_REFLINK_DIR"):
        candidates.insert(0, Path(os.environ["WANDB_DAGSTER_TEST_REFLINK_DIR"]))
    for base in candidates:
        probe_dir = base / f"reflink-probe-{os.getpid()}-{time.time_ns()}"
        probe_dir.mkdir(parents=True)
        (probe_dir / "a").write_bytes(b"x")
        try:
            with open(probe_dir / "a", "rb") as src, open(probe_dir / "b", "wb") as dst:
                fcntl.ioctl(dst.fileno(), FICLONE, src.fileno())
            return probe_dir
        except OSError:
            shutil.rmtree(probe_dir)
    pytest.skip("no filesystem with reflinks here (ext4/tmpfs); set WANDB_DAGSTER_TEST_REFLINK_DIR to a btrfs/xfs dir")


def test_place_reflink(tmp_path: Path, blobs: BlobStore):
    base = _reflink_dir(tmp_path)
    try:
        cache = DownloadCache(base / "cache", max_bytes=1 << 30, hardlinks=True)
        data = os.urandom(3 * 65536)
        hexdigest, size = blobs.put_bytes(data)
        entry = cache.fetch(blobs, hexdigest, size)
        dest = base / "root" / "d.bin"
        assert cache.place(hexdigest, dest) == "reflink"
        assert dest.read_bytes() == data and os.stat(dest).st_ino != os.stat(entry).st_ino
        with open(dest, "r+b") as f:  # a clone is independent: writing it leaves the entry intact
            f.write(b"changed")
        assert cache.lookup(hexdigest, size) == entry and entry.read_bytes() == data
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_reflink_falls_back_to_hardlink_and_remembers(
    cache: DownloadCache, blobs: BlobStore, tmp_path: Path, monkeypatch
):
    blobs.put_bytes(HELLO)
    cache.fetch(blobs, HELLO_HEX, 6)
    attempts = []

    def unsupported(src, dst):
        attempts.append(dst)
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(cache_mod, "_reflink", unsupported)
    assert cache.place(HELLO_HEX, tmp_path / "r" / "1") == "hardlink"
    assert cache.place(HELLO_HEX, tmp_path / "r" / "2") == "hardlink"
    assert len(attempts) == 1, "an unsupported reflink is not retried on the same filesystem"


def test_place_a_missing_entry(cache: DownloadCache, tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="fetch it again"):
        cache.place(HELLO_HEX, tmp_path / "x")
    assert not (tmp_path / "x").exists()


# -- eviction -------------------------------------------------------------------------------------------------


def _fill(cache: DownloadCache, blobs: BlobStore, names: list[str], size: int = 1000) -> dict[str, str]:
    hexes = {}
    for name in names:
        hexdigest, _ = blobs.put_bytes(name.encode() * (size // len(name)))
        cache.fetch(blobs, hexdigest, size)
        hexes[name] = hexdigest
    return hexes


def test_evict_removes_least_recently_used_first(tmp_path: Path, blobs: BlobStore):
    cache = DownloadCache(tmp_path / "cache", max_bytes=100_000)
    names = [f"n{i:03d}" for i in range(12)]
    hexes = _fill(cache, blobs, names)
    now = time.time_ns()
    for age, name in enumerate(names):  # n000 newest ... n011 oldest
        set_atime(cache.path_for(hexes[name]), now - (age + 1) * HOUR_NS)
    assert cache.lookup(hexes["n011"], 1000) is not None  # use makes the oldest the most recent
    cache.max_bytes = 3500
    assert cache.evict() == 9000
    assert cache_files(cache) == sorted(hexes[n][2:] for n in ("n000", "n001", "n011"))


def test_sentinel_depends_on_the_whole_digest_prefix():
    base = "0123456789abcdef0123456789abcdef"
    seconds_differ = "f" + base[1:]
    fraction_differs = base[:12] + "f" + base[13:]
    tail_differs = base[:13] + "ffff" + base[17:]
    s = sentinel_mtime_ns(base)
    assert s != sentinel_mtime_ns(seconds_differ) and s != sentinel_mtime_ns(fraction_differs)
    assert s == sentinel_mtime_ns(tail_differs)  # 52 bits, not all 128
    assert (s // 10**9) % 2 == 0 and s % 10**9 == int(base[6:13], 16)
    # Filesystems that keep microseconds or whole seconds round the sentinel; those forms still count.
    for rounded in (s - s % 1000, s - s % 10**9):
        assert cache_mod._sentinel_ok(rounded, base)
    assert not cache_mod._sentinel_ok(s + 1, base) and not cache_mod._sentinel_ok(time.time_ns(), base)


def test_cache_stays_within_max_bytes_while_filling(tmp_path: Path, blobs: BlobStore):
    cache = DownloadCache(tmp_path / "cache", max_bytes=3500)
    for i in range(12):
        _fill(cache, blobs, [f"{i:04d}"])
        total = sum(p.stat().st_size for p in (cache.directory / "md5").rglob("*") if p.is_file())
        assert total <= 3500
    assert len(cache_files(cache)) == 3
    assert cache.evict() == 0


def test_an_entry_larger_than_the_cache_survives_until_used(tmp_path: Path, blobs: BlobStore):
    cache = DownloadCache(tmp_path / "cache", max_bytes=100)
    hexes = _fill(cache, blobs, ["big!"])
    cache.place(hexes["big!"], tmp_path / "out")
    assert (tmp_path / "out").stat().st_size == 1000
    assert cache.evict() == 1000 and cache_files(cache) == []


def test_evict_removes_stale_temp_files(cache: DownloadCache, monkeypatch):
    tmp = cache.directory / "tmp"
    tmp.mkdir(parents=True)
    (tmp / "fill-1-dead-0").write_bytes(b"x")
    cache.evict()
    assert temp_files(cache) == ["fill-1-dead-0"], "a fresh temp file may belong to a fill in progress"
    monkeypatch.setattr(cache_mod, "_STALE_TMP_S", -1)  # ctime cannot be set back, so move the cutoff
    cache.evict()
    assert temp_files(cache) == []


def test_negative_bound_is_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="max_bytes=-1"):
        DownloadCache(tmp_path, max_bytes=-1)


# -- concurrency ----------------------------------------------------------------------------------------------


def _fill_same_entry(cache_dir: str, blob_root: str, hexdigest: str, size: int, barrier, rounds: int, queue):
    cache, blobs = DownloadCache(Path(cache_dir), max_bytes=1 << 30), BlobStore(blob_root)
    ok = []
    for _ in range(rounds):
        barrier.wait()
        path = cache.fetch(blobs, hexdigest, size)
        ok.append(hashlib.md5(path.read_bytes()).hexdigest() == hexdigest)
        barrier.wait()
        cache.path_for(hexdigest).unlink(missing_ok=True)  # so that the next round fills it again
        barrier.wait()
    queue.put(ok)


def test_two_processes_filling_the_same_entry(tmp_path: Path, blobs: BlobStore):
    data = os.urandom(2 * CHUNK + 1)
    hexdigest, size = blobs.put_bytes(data)
    ctx = multiprocessing.get_context("fork")
    barrier, queue, rounds = ctx.Barrier(2), ctx.Queue(), 8
    args = (str(tmp_path / "cache"), blobs.root, hexdigest, size, barrier, rounds, queue)
    procs = [ctx.Process(target=_fill_same_entry, args=args) for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert results == [[True] * rounds] * 2
    cache = DownloadCache(tmp_path / "cache", max_bytes=1 << 30)
    assert temp_files(cache) == []
    assert cache.fetch(blobs, hexdigest, size).read_bytes() == data


def test_placing_a_hardlink_twice_leaves_no_temp_file(cache: DownloadCache, blobs: BlobStore, tmp_path: Path):
    blobs.put_bytes(HELLO)
    cache.fetch(blobs, HELLO_HEX, 6)
    dest = tmp_path / "root" / "f.txt"
    for _ in range(2):
        require_hardlink(cache.place(HELLO_HEX, dest))
    assert sorted(p.name for p in dest.parent.iterdir()) == ["f.txt"]


# -- tamper evidence: the record (inode, size, mtime, ctime) made at verification ---------------------------------


def _corrupt_restoring_timestamps(path: Path, data: bytes) -> None:
    """Rewrite a cache entry in place with same-size bytes, then put its mode, atime and mtime back, as a
    careless tool (or a user with ``touch -r``) would: only the ctime, which nobody can set back, moves."""
    before = os.stat(path)
    path.chmod(0o644)
    with open(path, "r+b") as f:
        f.write(data)
    path.chmod(stat.S_IMODE(before.st_mode))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)


@pytest.mark.parametrize("fresh_process", [False, True], ids=["same-cache-object", "new-cache-object"])
def test_an_entry_corrupted_in_place_with_its_timestamps_restored_is_never_used(
    tmp_path: Path, blobs: BlobStore, fresh_process: bool
):
    cache = DownloadCache(tmp_path / "cache", max_bytes=1 << 30)
    blobs.put_bytes(HELLO)
    entry = cache.fetch(blobs, HELLO_HEX, 6)
    assert cache.lookup(HELLO_HEX, 6) == entry
    _corrupt_restoring_timestamps(entry, b"jello\n")
    if fresh_process:  # another process, or a later one: nothing remembered but the on-disk record
        cache = DownloadCache(tmp_path / "cache", max_bytes=1 << 30)
    assert cache.lookup(HELLO_HEX, 6) is None, "the sentinel mtime alone vouched for changed bytes"
    with pytest.raises(FileNotFoundError):
        cache.place(HELLO_HEX, tmp_path / "out" / "hello.txt")
    assert not (tmp_path / "out" / "hello.txt").exists()
    # The next fetch replaces the dropped entry with verified bytes from the blob store.
    assert cache.fetch(blobs, HELLO_HEX, 6).read_bytes() == HELLO
    cache.place(HELLO_HEX, tmp_path / "out" / "hello.txt")
    assert (tmp_path / "out" / "hello.txt").read_bytes() == HELLO


def test_an_unrecorded_entry_is_hashed_once_and_then_trusted_by_its_record(tmp_path: Path, blobs: BlobStore, monkeypatch):
    # An entry written before the record existed (or whose record was lost) is checked by hashing once;
    # afterwards a lookup, in this or another cache object, hashes nothing.
    cache = DownloadCache(tmp_path / "cache", max_bytes=1 << 30)
    blobs.put_bytes(HELLO)
    entry = cache.fetch(blobs, HELLO_HEX, 6)
    (tmp_path / "cache" / "statcache.db").unlink()
    for suffix in ("-wal", "-shm"):
        (tmp_path / "cache" / f"statcache.db{suffix}").unlink(missing_ok=True)
    hashed: list[str] = []
    real_hash = cache_mod.hash_file

    def counting_hash(path: str) -> tuple[str, int]:
        hashed.append(str(path))
        return real_hash(path)

    monkeypatch.setattr(cache_mod, "hash_file", counting_hash)
    fresh = DownloadCache(tmp_path / "cache", max_bytes=1 << 30)
    assert fresh.lookup(HELLO_HEX, 6) == entry
    assert hashed == [str(entry)]
    # Every lookup now touches the entry for the LRU (utime moves the ctime): the touch renews the record.
    monkeypatch.setattr(cache_mod, "_TOUCH_EVERY_NS", -1)
    again = DownloadCache(tmp_path / "cache", max_bytes=1 << 30)
    assert again.lookup(HELLO_HEX, 6) == entry
    another = DownloadCache(tmp_path / "cache", max_bytes=1 << 30)
    assert another.lookup(HELLO_HEX, 6) == entry
    assert hashed == [str(entry)], "a recorded, unchanged entry was hashed again"


def test_batched_records_write_the_entries_verified_in_the_block_once_at_its_end(
    tmp_path: Path, blobs: BlobStore, monkeypatch
):
    # A download fills many entries: their records go in one transaction when the block ends (not one per
    # entry); meanwhile this process trusts what it verified, and afterwards another cache object trusts the
    # records without hashing.
    cache = DownloadCache(tmp_path / "cache", max_bytes=1 << 30)
    datas = [HELLO, b"two\n", b"three\n"]
    for data in datas:
        blobs.put_bytes(data)
    writes: list[int] = []
    real_write = cache._record._write_rows

    def counting_write(params):
        writes.append(len(params))
        return real_write(params)

    monkeypatch.setattr(cache._record, "_write_rows", counting_write)
    with cache.batched_records():
        for data in datas:
            cache.fetch(blobs, md5(data), len(data))
            cache.place(md5(data), tmp_path / "out" / md5(data))  # trusted from the memo: no record yet
        assert writes == []
    assert writes == [3]
    hashed: list[str] = []
    real_hash = cache_mod.hash_file

    def counting_hash(path: str) -> tuple[str, int]:
        hashed.append(str(path))
        return real_hash(path)

    monkeypatch.setattr(cache_mod, "hash_file", counting_hash)
    fresh = DownloadCache(tmp_path / "cache", max_bytes=1 << 30)
    assert sorted(fresh.lookup_many([(md5(d), len(d)) for d in datas])) == sorted(md5(d) for d in datas)
    assert hashed == []
    for data in datas:
        assert (tmp_path / "out" / md5(data)).read_bytes() == data
