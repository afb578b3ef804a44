"""Reference downloads in the download cache, keyed by what was recorded: (ref, checksum, versionID).

Example::

    >>> k = key("s3://bucket/a.csv", "9a0364b9e99bb480dd25e1f0284c8555", None)
    >>> place(cache, k, size, Path("out/a.csv"))      # True: served from the cache, no remote request  # doctest: +SKIP

The cache stores verified content under its MD5 (storage/cache.py). A reference's recorded checksum is
often not an MD5 (an S3 ETag, an HTTP ETag), so a small index file maps the key to the MD5 of the bytes
that were downloaded for it: ``{cache}/refs/{key[:2]}/{key[2:]}`` holding ``"<md5 hex> <size>"``. The key
covers the recorded checksum and version, so a changed object has another key and is never served stale.
An index whose content entry was evicted is a miss (the content is fetched again).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from wandb_dagster.storage.cache import DownloadCache
from wandb_dagster.storage.hashing import check_hex
from wandb_dagster.storage.verified_write import unique_suffix


def key(ref: str, digest: str, version: object | None) -> str:
    """The cache key of a recorded reference (hex; the ref is already free of credentials)."""
    return hashlib.sha256(f"{ref}\n{digest}\n{'' if version is None else version}".encode()).hexdigest()


def _index_path(cache: DownloadCache, k: str) -> str:
    return f"{cache.directory}/refs/{k[:2]}/{k[2:]}"


def place(cache: DownloadCache, k: str, size: int | None, dest: Path) -> bool:
    """Put the cached content for ``k`` at ``dest``; False (nothing done) when it is not cached."""
    try:
        with open(_index_path(cache, k), encoding="ascii") as f:
            hexdigest, _, size_text = f.read().strip().partition(" ")
        hexdigest = check_hex(hexdigest)
        cached_size = int(size_text)
    except (OSError, ValueError):  # no index, or one that cannot be read or parsed: a miss, fetch again
        return False
    if size is not None and cached_size != size:
        return False
    with cache.pinned(hexdigest):
        if cache.lookup(hexdigest, cached_size) is None:
            return False
        try:
            cache.place(hexdigest, dest)
        except FileNotFoundError:  # evicted by another process between lookup and place
            return False
    return True


def record(cache: DownloadCache, k: str, downloaded: Path, hexdigest: str) -> None:
    """Copy a just-downloaded, verified file into the cache and remember it under ``k``."""
    entry = cache.add_file(downloaded, hexdigest)
    path = _index_path(cache, k)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{unique_suffix()}.tmp"
    try:
        with open(tmp, "w", encoding="ascii") as f:
            f.write(f"{hexdigest} {os.stat(entry).st_size}\n")
        os.replace(tmp, path)  # atomic: a concurrent reader sees the old index or the new one
    except BaseException:
        try:  # the caller shrugs off a failed record (the download succeeded): leave no temp behind
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    cache.trim()
