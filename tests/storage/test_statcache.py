from __future__ import annotations

import multiprocessing
import os
import sqlite3
import time
import warnings
from pathlib import Path

import pytest

from wandb_dagster.storage.statcache import StatCache

HEX_A = "b1946ac92492d2347c6235b4d2611184"
HEX_B = "d41d8cd98f00b204e9800998ecf8427e"
AN_HOUR_AGO_NS = time.time_ns() - 3600 * 1_000_000_000 + 123_456_789  # not a whole second


def settled(path: Path, data: bytes, mtime_ns: int = AN_HOUR_AGO_NS) -> os.stat_result:
    """Write a file whose mtime is well in the past, as for any file not being written right now."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return os.stat(path)


@pytest.fixture
def cache(tmp_path: Path):
    with StatCache(tmp_path / "state" / "statcache.db") as sc:
        yield sc


def test_round_trip(cache: StatCache, tmp_path: Path):
    a = settled(tmp_path / "a", b"hello\n")
    b = settled(tmp_path / "b", b"")
    assert cache.lookup_many([a, b]) == [None, None]
    cache.record_many([(a, HEX_A), (b, HEX_B)])
    assert cache.lookup_many([os.stat(tmp_path / "b"), os.stat(tmp_path / "a")]) == [HEX_B, HEX_A]
    assert cache.lookup_many([]) == []


def test_survives_reopening(tmp_path: Path):
    a = settled(tmp_path / "a", b"hello\n")
    with StatCache(tmp_path / "sc.db") as first:
        first.record_many([(a, HEX_A)])
    with StatCache(tmp_path / "sc.db") as second:
        assert second.lookup_many([a]) == [HEX_A]


def test_mtime_change_is_a_miss(cache: StatCache, tmp_path: Path):
    path = tmp_path / "a"
    cache.record_many([(settled(path, b"hello\n"), HEX_A)])
    os.utime(path, ns=(AN_HOUR_AGO_NS + 1, AN_HOUR_AGO_NS + 1))  # same size, one nanosecond later
    assert cache.lookup_many([os.stat(path)]) == [None]


def test_size_change_is_a_miss(cache: StatCache, tmp_path: Path):
    path = tmp_path / "a"
    cache.record_many([(settled(path, b"hello\n"), HEX_A)])
    settled(path, b"hello, world\n")  # rewritten in place with the old mtime restored
    assert cache.lookup_many([os.stat(path)]) == [None]


def test_replaced_file_is_a_miss(cache: StatCache, tmp_path: Path):
    path = tmp_path / "a"
    cache.record_many([(settled(path, b"hello\n"), HEX_A)])
    settled(tmp_path / "new", b"HELLO\n")
    os.replace(tmp_path / "new", path)  # same size and mtime, another inode
    assert cache.lookup_many([os.stat(path)]) == [None]


def test_rerecording_replaces_the_row(cache: StatCache, tmp_path: Path):
    path = tmp_path / "a"
    cache.record_many([(settled(path, b"hello\n"), HEX_A)])
    new = settled(path, b"", AN_HOUR_AGO_NS + 10**9 // 3)
    cache.record_many([(new, HEX_B)])
    assert cache.lookup_many([new]) == [HEX_B]
    with sqlite3.connect(cache.path) as conn:
        assert conn.execute("SELECT count(*) FROM stat_md5_v2").fetchone() == (1,)


def test_just_modified_files_are_not_recorded(cache: StatCache, tmp_path: Path):
    # Same size, same mtime tick, different content: a stat cache that trusted this file could go stale.
    path = tmp_path / "hot"
    path.write_bytes(b"hello\n")
    fresh = os.stat(path)
    cache.record_many([(fresh, HEX_A)])
    assert cache.lookup_many([fresh]) == [None]


def test_whole_second_mtimes_get_a_wider_window(cache: StatCache, tmp_path: Path):
    second = (time.time_ns() // 10**9 - 1) * 10**9  # a second ago, on a filesystem that keeps seconds
    st = settled(tmp_path / "coarse", b"x", second)
    cache.record_many([(st, HEX_A)])
    assert cache.lookup_many([st]) == [None]
    cache.racy_window_ns = 0
    st_fine = settled(tmp_path / "fine", b"x", time.time_ns() - 10**9 + 7)
    cache.record_many([(st_fine, HEX_B)])
    assert cache.lookup_many([st_fine]) == [HEX_B]


def test_lookup_is_batched_across_chunks(cache: StatCache, tmp_path: Path):
    stats = [settled(tmp_path / "many" / f"f{i}", str(i).encode()) for i in range(1234)]
    hexes = [f"{i:032x}" for i in range(len(stats))]
    cache.record_many(list(zip(stats, hexes, strict=True))[::2])
    expected = [h if i % 2 == 0 else None for i, h in enumerate(hexes)]
    assert cache.lookup_many(stats) == expected
    assert cache.lookup_many(stats[::-1]) == expected[::-1]


def test_record_rejects_non_digests(cache: StatCache, tmp_path: Path):
    st = settled(tmp_path / "a", b"x")
    with pytest.raises(ValueError, match="not an MD5 hex digest"):
        cache.record_many([(st, "../../x")])
    assert cache.lookup_many([st]) == [None]


def test_unreadable_database_says_what_to_do_once_and_degrades_to_hashing(tmp_path: Path):
    """The cache only saves work: a damaged file warns once (saying to delete it) and then acts as an empty
    cache that records nothing, so the log that needed it hashes instead of failing."""
    db = tmp_path / "statcache.db"
    db.write_bytes(b"this is not a database" * 100)
    cache = StatCache(db)
    st = settled(tmp_path / "a", b"x")
    with pytest.warns(RuntimeWarning, match="delete it and it will be rebuilt"):
        assert cache.lookup_many([st]) == [None]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning
        cache.record_many([(st, "0" * 32)])
        assert cache.lookup_many([st]) == [None]


def test_uses_wal_mode(cache: StatCache, tmp_path: Path):
    cache.lookup_many([settled(tmp_path / "a", b"x")])
    with sqlite3.connect(cache.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def _record_and_read(db: str, folder: str, worker: int, barrier, queue) -> None:
    sc = StatCache(Path(db))
    mine = []
    for i in range(300):
        path = Path(folder) / f"w{worker}-{i}"
        mine.append((settled(path, f"{worker}/{i}".encode()), f"{worker:08x}{i:024x}"))
    barrier.wait()
    for start in range(0, len(mine), 10):  # many small transactions, interleaved with the other process
        sc.record_many(mine[start : start + 10])
        sc.lookup_many([st for st, _ in mine[: start + 10]])
    queue.put(sc.lookup_many([st for st, _ in mine]) == [h for _, h in mine])


def collect(procs, queue, timeout: float = 120.0) -> list:
    """One result per process; fails fast (with the exit codes) if a process dies instead of answering."""
    results: list = []
    deadline = time.monotonic() + timeout
    while len(results) < len(procs):
        try:
            results.append(queue.get(timeout=0.5))
        except Exception:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            assert not dead and time.monotonic() < deadline, f"worker exit codes {[p.exitcode for p in procs]}"
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return results


def test_two_processes_share_one_cache(tmp_path: Path):
    db, folder = str(tmp_path / "sc.db"), str(tmp_path / "files")
    # Nothing is created yet: both workers also race to create the file, switch it to WAL, add the table.
    ctx = multiprocessing.get_context("fork")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_record_and_read, args=(db, folder, w, barrier, queue)) for w in range(2)]
    for p in procs:
        p.start()
    assert collect(procs, queue) == [True, True]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM stat_md5_v2").fetchone() == (600,)


def test_a_forked_child_opens_its_own_connection(tmp_path: Path):
    st = settled(tmp_path / "a", b"x")
    sc = StatCache(tmp_path / "sc.db")
    sc.record_many([(st, HEX_A)])  # the parent's connection is open now
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=lambda: queue.put((sc.lookup_many([st]), sc._pid == os.getpid())))
    child.start()
    result, reconnected = queue.get(timeout=60)
    child.join(timeout=60)
    assert result == [HEX_A] and reconnected and child.exitcode == 0
    assert sc.lookup_many([st]) == [HEX_A]


def test_same_size_rewrite_with_the_old_mtime_restored_is_a_miss(cache: StatCache, tmp_path: Path):
    # cp -p / touch -r / rsync -t --inplace: same size, same mtime, other bytes; only ctime tells.
    path = tmp_path / "a"
    st = settled(path, b"hello\n")
    cache.record_many([(st, HEX_A)])
    time.sleep(0.01)
    path.write_bytes(b"HELLO\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = os.stat(path)
    assert (again.st_size, again.st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert cache.lookup_many([again]) == [None]


def test_the_racy_window_is_measured_from_before_the_files_were_read(cache: StatCache, tmp_path: Path):
    path = tmp_path / "fresh"
    path.write_bytes(b"x")
    before = time.time_ns() - 10_000_000  # "we started reading 10 ms before this write"
    st = os.stat(path)
    time.sleep(0.1)  # a long batch: by now the file is older than the window
    cache.record_many([(st, HEX_A)], since_ns=before)
    assert cache.lookup_many([st]) == [None]
    cache.record_many([(st, HEX_A)])  # measured from now it would have been trusted
    assert cache.lookup_many([st]) == [HEX_A]
