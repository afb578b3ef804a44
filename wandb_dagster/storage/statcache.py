"""Stat cache: (device, inode, size, mtime_ns) -> MD5 hex, so re-logging an unchanged file costs a stat.

Example::

    >>> cache = StatCache(Path("/tmp/statcache.db"))                      # doctest: +SKIP
    >>> stats = [os.stat(p) for p in paths]                                # doctest: +SKIP
    >>> known = cache.lookup_many(stats)          # hex or None per stat   # doctest: +SKIP
    >>> cache.record_many([(st, h) for st, h in zip(stats, hexes)])      # doctest: +SKIP

Callers must take the stat *before* reading the file they hash: a write during hashing then changes the
mtime, so the stale pair can never match a later stat.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from .hashing import check_hex

_LOOKUP_CHUNK = 500  # inodes per IN (...): far below SQLite's oldest variable limit (999)

RACY_WINDOW_NS = 50_000_000
"""Files modified less than this before being recorded are not recorded (git's "racy clean" problem):
filesystems stamp mtimes from a clock with some granularity, so a file rewritten with the same size within
one tick of being hashed keeps its stat key while its content changed. Linux stamps local files from a
clock that ticks at least every 10 ms (finer with multigrain timestamps), so 50 ms is a safe margin."""

COARSE_WINDOW_NS = 2_000_000_000
"""The window for an mtime that is a whole second: that filesystem (ext3, FAT, HFS+, some NFS servers)
keeps seconds only (FAT even two), and a whole-second mtime is otherwise a one-in-a-billion coincidence."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stat_md5_v2 (
    dev INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    hex TEXT NOT NULL,
    PRIMARY KEY (dev, ino)
) WITHOUT ROWID
"""


class StatCache:
    """A SQLite-backed map from a file's stat key to its MD5 hex, shared by processes on one machine.

    Keyed by (dev, inode) with size and mtime_ns checked on lookup, so a rewritten file replaces its row
    instead of adding one. WAL lets readers run while another process writes; ``busy_timeout`` makes
    concurrent writers wait instead of failing. Put the file on a local disk: SQLite's WAL needs shared
    memory that network filesystems do not provide.

    Example::

        >>> sc = StatCache(Path("/tmp/stat.db"))                        # doctest: +SKIP
        >>> st = os.stat("data.csv")                                    # doctest: +SKIP
        >>> sc.record_many([(st, "b1946ac92492d2347c6235b4d2611184")])  # doctest: +SKIP
        >>> sc.lookup_many([os.stat("data.csv")])                       # doctest: +SKIP
        ['b1946ac92492d2347c6235b4d2611184']
    """

    def __init__(self, path: Path | str, *, racy_window_ns: int = RACY_WINDOW_NS, busy_timeout_s: float = 60.0):
        self.path = Path(path)
        self.racy_window_ns = racy_window_ns
        self._busy_timeout_s = busy_timeout_s
        self._lock = threading.Lock()  # one connection per instance, shared by the caller's threads
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        # Set once the cache failed (full disk, read-only folder, damaged file): it only saves work, so from
        # then on this instance hashes instead of failing the log that needed it.
        self._broken: str | None = None
        self._warned = False

    def _give_up(self, exc: BaseException) -> None:
        """Warn once, then behave as an empty cache that records nothing (a lock held past the busy timeout
        only skips this call: the next one tries again)."""
        transient = "locked" in str(exc) or "busy" in str(exc)
        if self._broken is None and not self._warned:
            hint = (
                " The file is damaged: delete it and it will be rebuilt."
                if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError)
                else ""
            )
            warnings.warn(
                f"the stat cache {str(self.path)!r} cannot be used ({exc}); files are hashed again instead, "
                f"which is slower but just as correct.{hint}",
                RuntimeWarning,
                stacklevel=3,
            )
        self._warned = True
        if transient:
            return
        self._broken = str(exc)
        with contextlib.suppress(sqlite3.Error):
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
        self._conn = None

    def _connection(self) -> sqlite3.Connection:
        # A forked child must not reuse its parent's SQLite connection: reconnect when the pid changes.
        if self._conn is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=self._busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
                self._enable_wal(conn)
                # A lost recent write only costs a re-hash, so skip the per-commit fsync.
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.execute(_SCHEMA)
            except BaseException:
                with contextlib.suppress(Exception):
                    conn.close()
                raise
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        # WAL is a property of the file, so only the first opener switches it. The switch needs a moment
        # of exclusive access and SQLite reports "locked" at once instead of calling the busy handler,
        # hence the retry loop (two processes creating the cache at the same time hit it).
        deadline = time.monotonic() + self._busy_timeout_s
        while True:
            try:
                if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def lookup_many(self, stats: Sequence[os.stat_result]) -> list[str | None]:
        """The recorded hex for each stat, or None where unknown or stale (size or mtime differ)."""
        if not stats:
            return []
        by_dev: dict[int, set[int]] = {}
        for st in stats:
            by_dev.setdefault(st.st_dev, set()).add(st.st_ino)
        rows: dict[tuple[int, int], tuple[int, int, int, str]] = {}
        with self._lock:
            if self._broken is not None:
                return [None] * len(stats)
            try:
                self._read_rows(by_dev, rows)
            except (sqlite3.Error, OSError) as exc:
                self._give_up(exc)
                return [None] * len(stats)
        out: list[str | None] = []
        for st in stats:
            row = rows.get((st.st_dev, st.st_ino))
            # ctime too, as git does: a same-size rewrite that restores the old mtime (cp -p, touch -r,
            # rsync -t --inplace) cannot restore the ctime.
            if row is not None and row[:3] == (st.st_size, st.st_mtime_ns, st.st_ctime_ns):
                out.append(row[3])
            else:
                out.append(None)
        return out

    def _read_rows(self, by_dev: dict[int, set[int]], rows: dict[tuple[int, int], tuple[int, int, int, str]]) -> None:
        conn = self._connection()
        conn.execute("BEGIN")  # one read snapshot for all chunks, and one lock acquisition
        try:
            for dev, inodes in by_dev.items():
                inos = list(inodes)
                for start in range(0, len(inos), _LOOKUP_CHUNK):
                    chunk = inos[start : start + _LOOKUP_CHUNK]
                    marks = ",".join("?" * len(chunk))
                    for ino, size, mtime_ns, ctime_ns, hexdigest in conn.execute(
                        "SELECT ino, size, mtime_ns, ctime_ns, hex FROM stat_md5_v2 "
                        f"WHERE dev = ? AND ino IN ({marks})",
                        (dev, *chunk),
                    ):
                        rows[(dev, ino)] = (size, mtime_ns, ctime_ns, hexdigest)
        finally:
            conn.execute("COMMIT")

    def record_many(self, items: Sequence[tuple[os.stat_result, str]], since_ns: int | None = None) -> None:
        """Remember (stat -> hex) pairs in one transaction.

        ``since_ns``: a ``time.time_ns()`` taken before the files were stat'ed and read (default: now).
        Files modified within the racy window before it are skipped (see RACY_WINDOW_NS): their next lookup
        misses and they are hashed again, which is correct, just not free.
        """
        now = time.time_ns() if since_ns is None else since_ns
        params = [
            (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, check_hex(h))
            for st, h in items
            if not self._is_racy(st.st_mtime_ns, now)
        ]
        if not params:
            return
        with self._lock:
            if self._broken is not None:
                return
            try:
                self._write_rows(params)
            except (sqlite3.Error, OSError) as exc:
                self._give_up(exc)

    def _write_rows(self, params: list[tuple[int, int, int, int, int, str]]) -> None:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")  # take the write lock up front: no upgrade deadlock with readers
        try:
            conn.executemany(
                "INSERT INTO stat_md5_v2 (dev, ino, size, mtime_ns, ctime_ns, hex) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (dev, ino) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns, "
                "ctime_ns = excluded.ctime_ns, hex = excluded.hex",
                params,
            )
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _is_racy(self, mtime_ns: int, now_ns: int) -> bool:
        window = COARSE_WINDOW_NS if mtime_ns % 1_000_000_000 == 0 else self.racy_window_ns
        return mtime_ns > now_ns - window

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def __enter__(self) -> StatCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
