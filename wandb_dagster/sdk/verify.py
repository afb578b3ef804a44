"""Checking a whole workspace: every committed version's manifest against its blobs (present, size, MD5),
the database's own consistency, and repairing blobs from a good copy.

Each blob is read once however many versions name it. A problem names the blob and every (version, entry)
that names it, so a user knows what is affected; a repair takes a good copy from this machine's download
cache (entries there were verified when they entered) or from files given (``sources``: files or folders
whose files are hashed; those with a needed size only), stores it under the blob's name, and proves it.

Example::

    >>> from wandb_dagster.sdk.verify import verify_workspace
    >>> report = verify_workspace(ws, repair=True, sources=["/data/originals"])   # doctest: +SKIP
    >>> report.ok, [p["kind"] for p in report.problems]                          # doctest: +SKIP
    (False, ['corrupt'])
"""

from __future__ import annotations

import binascii
import dataclasses
import json
import os
import random
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from wandb_dagster.sdk.manifest import Manifest
from wandb_dagster.storage.hashing import CHUNK, b64_to_hex, hash_file, new_md5

if TYPE_CHECKING:
    from wandb_dagster.sdk.workspace import Workspace


_THREADED_MIN_AVG = 1 << 20  # mean blob size from which a local folder is hashed by several threads
_O_READ = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


@dataclasses.dataclass
class VerifyReport:
    """``problems``: one dict per problem (``kind``, ``blob`` or ``where``, ``entries``: the ``version`` and
    ``path`` of each entry concerned, ``repaired``: whether a repair fixed it)."""

    versions: int = 0
    blobs: int = 0
    bytes: int = 0
    problems: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong any more (every problem found was repaired)."""
        return all(p.get("repaired") for p in self.problems)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "versions": self.versions, "blobs": self.blobs, "bytes": self.bytes,
            "problems": self.problems,
        }  # fmt: skip


def _blob_md5(ws: Workspace, hexdigest: str, on_bytes: Callable[[int], Any] | None) -> tuple[str, int]:
    """(MD5, size) of the stored blob; FileNotFoundError when it is not there."""
    if ws.blobs.is_local:
        actual, size = hash_file(ws.blobs.blob_path(hexdigest))
        if on_bytes is not None:
            on_bytes(size)
        return actual, size
    h, size = new_md5(), 0
    with ws.blobs.open(hexdigest) as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
    return h.hexdigest(), size


# A canonical base64 MD5: 22 characters, the last carrying 2 bits (its 4 low bits zero), and "==". Checked by
# one regex instead of decoding and re-encoding each digest (10,000 entries per verify: measurable).
_B64_MD5 = re.compile(r"[A-Za-z0-9+/]{21}[AQgw]==")


def _stored_entries(text: str, where: str) -> list[tuple[str, str, int | None]]:
    """(path, hex, size) of a manifest's stored entries. A light parse (verify reads every manifest, and
    Manifest.from_json validates every path): only what verify needs is checked, and a manifest this
    cannot read is handed to Manifest.from_json for the precise error."""
    try:
        contents = json.loads(text)["contents"]
        out = []
        canonical, a2b = _B64_MD5.fullmatch, binascii.a2b_base64
        for path, body in contents.items():
            if body.get("ref") is not None:
                continue
            digest = body["digest"]
            size = body.get("size")
            if (
                not isinstance(digest, str) or canonical(digest) is None or not isinstance(path, str)
                or not (size is None or isinstance(size, int))
            ):  # fmt: skip
                raise ValueError(path)
            out.append((path, a2b(digest).hex(), size))
        return out
    except (ValueError, TypeError, KeyError, AttributeError, binascii.Error):
        manifest = Manifest.from_json(text, where=where)  # raises the ValueError naming what is wrong
        return [(e.path, b64_to_hex(e.digest), e.size) for e in manifest if e.ref is None]


def verify_workspace(
    ws: Workspace,
    *,
    sample: int | None = None,
    repair: bool = False,
    sources: Sequence[str | os.PathLike[str]] = (),
    on_bytes: Callable[[int], Any] | None = None,
    seed: int | None = None,
) -> VerifyReport:
    """Check ``ws`` (see the module docstring). ``sample``: check only that many versions, chosen at random
    (``seed`` makes the choice repeatable). ``repair``: replace missing or corrupt blobs from a good copy
    (the download cache, or ``sources``). ``on_bytes(n)``: called as blob bytes are read."""
    report = VerifyReport()
    names = ws.store.version_names()
    recorded = ws.store.version_blob_map()
    # hex -> [size, [(version, path), ...]] over the versions checked; the entries become the problems'
    # dicts only for blobs with a problem (10,000 small dicts cost more than hashing 10,000 small blobs).
    wanted: dict[str, list[Any]] = {}
    manifests = list(ws.store.committed_manifests())
    if sample is not None and sample < len(manifests):
        manifests = random.Random(seed).sample(manifests, sample)
    for pk, text in manifests:
        label = names.get(pk, f"version {pk}")
        report.versions += 1
        try:
            stored_entries = _stored_entries(text, f"the manifest of {label}")
        except ValueError as exc:
            report.problems.append({"kind": "manifest", "where": label, "detail": str(exc), "entries": []})
            continue
        hexes = set()
        for path, h, entry_size in stored_entries:
            hexes.add(h)
            if (item := wanted.get(h)) is None:
                wanted[h] = [entry_size, [(label, path)]]
            else:
                item[1].append((label, path))
        missing_rows = hexes - recorded.get(pk, set())
        if missing_rows:
            # gc still reads manifests, so nothing is lost; but the list it checks at delete time is short.
            report.problems.append({
                "kind": "blob-list", "where": label, "entries": [],
                "detail": f"{len(missing_rows)} blob(s) of the manifest are not in version_blobs",
            })  # fmt: skip
    # A bucket is listed once (sizes for all, instead of a request per blob); a local folder is not: opening
    # each blob to hash it tells its size, or that it is missing, at no extra cost.
    stored = None if ws.blobs.is_local else dict(ws.blobs.iter_blobs())
    found: dict[str, int] = {}
    bad: dict[str, str] = {}
    to_hash = []
    # In the manifests' order, not sorted: the problems are few and sorted below, the blobs many.
    for h in wanted:
        if stored is not None:
            size = wanted[h][0]
            if h not in stored:
                bad[h] = "missing"
                continue
            if size is not None and stored[h] != size:
                found[h], bad[h] = stored[h], "size"
                continue
        to_hash.append(h)

    def check(hexes: list[str]) -> list[tuple[str, str | None, int | None]]:
        out: list[tuple[str, str | None, int | None]] = []
        # A local blob's path is built here from a hex that came out of a 16-byte digest (always valid), not
        # through blob_path's check per blob; a small blob whose size the manifest gives is read by one
        # read of one byte more than that (no fstat), anything else by hash_file.
        root = ws.blobs.root if ws.blobs.is_local else None
        for h in hexes:
            size = wanted[h][0]
            try:
                if root is not None:
                    path = f"{root}/{h[:2]}/{h[2:]}"
                    got = -1
                    if size is not None and size < CHUNK:
                        fd = os.open(path, _O_READ)
                        try:
                            data = os.read(fd, size + 1)
                        finally:
                            os.close(fd)
                        if len(data) == size:
                            actual, got = new_md5(data).hexdigest(), size
                    if got < 0:
                        actual, got = hash_file(path)
                    if on_bytes is not None:
                        on_bytes(got)
                else:
                    actual, got = _blob_md5(ws, h, on_bytes)
            except FileNotFoundError:
                out.append((h, "missing", None))
                continue
            if (size is not None and got != size) or actual != h:
                out.append((h, "size" if size is not None and got != size else "corrupt", got))
            else:
                out.append((h, None, got))
        return out

    # A bucket is read by the blob store's worker count of threads (latency-bound); a local folder by one
    # unless the blobs are large: for small files the threads' GIL hand-offs cost more than they overlap
    # (bench/bench_verify.py). Each thread takes a slice; a future per blob would cost more than its hash.
    sizes = [wanted[h][0] or 0 for h in to_hash]
    large = bool(sizes) and sum(sizes) / len(sizes) >= _THREADED_MIN_AVG
    threaded = not ws.blobs.is_local or large
    workers = max(1, min(ws.blobs.max_workers, len(to_hash))) if threaded else 1
    if workers == 1:
        batches: Iterable[list[tuple[str, str | None, int | None]]] = [check(to_hash)]
        pool = None
    else:
        pool = ThreadPoolExecutor(workers, thread_name_prefix="wandb-dagster-verify")
        batches = pool.map(check, [to_hash[i::workers] for i in range(workers)])
    try:
        for results in batches:
            for h, kind, got in results:
                if got is not None:
                    found[h] = got
                if kind is not None:
                    bad[h] = kind
    finally:
        if pool is not None:
            pool.shutdown()
    report.blobs = len(found)
    report.bytes = sum(found.values())
    repaired = _repair(ws, {h: wanted[h][0] for h in bad}, sources) if repair and bad else set()
    for h, kind in sorted(bad.items()):
        size, entries = wanted[h]
        report.problems.append({
            "kind": kind, "blob": h, "size": size, "repaired": h in repaired,
            "entries": [{"version": label, "path": path} for label, path in entries],
            "detail": _describe(kind, h, size, found.get(h)),
        })  # fmt: skip
    for problem in ws.store.audit():
        report.problems.append({**problem, "entries": []})
    return report


def _describe(kind: str, h: str, size: int | None, found: int | None) -> str:
    if kind == "missing":
        return f"blob {h} is not in the blob storage"
    if kind == "size":
        return f"blob {h} has {found} bytes, the manifest says {size}"
    return f"blob {h} does not hash to its name"


def _candidates(sources: Iterable[str | os.PathLike[str]], sizes: set[int | None]) -> Iterable[str]:
    for source in sources:
        source = os.fspath(source)
        if os.path.isfile(source):
            yield source
            continue
        if not os.path.isdir(source):
            raise ValueError(f"Repair source {source!r} is neither a file nor a folder; pass files or folders")
        for dirpath, _, filenames in os.walk(source):
            for name in filenames:
                path = os.path.join(dirpath, name)
                try:
                    if None in sizes or os.stat(path).st_size in sizes:
                        yield path
                except FileNotFoundError:
                    pass


def _repair(ws: Workspace, bad: dict[str, int | None], sources: Sequence[str | os.PathLike[str]]) -> set[str]:
    """Store a good copy of each bad blob that has one; returns those repaired."""
    good: dict[str, str] = {}
    for h, size in bad.items():
        cached = ws.cache.lookup(h, size)
        if cached is not None:
            good[h] = str(cached)
    left = {h: s for h, s in bad.items() if h not in good}
    if left and sources:
        for path in _candidates(sources, set(left.values())):
            actual, _ = hash_file(path)
            if actual in left and actual not in good:
                good[actual] = path
    if not good:
        return set()
    token = f"repair-{uuid.uuid4().hex}"
    # Claimed first, like any writer's blobs, so a concurrent gc leaves them alone while they are replaced.
    ws.store.claim_blobs(token, good)
    try:
        for h, path in good.items():
            try:
                ws.blobs.delete(h)  # a corrupt blob of the right size would otherwise be kept as it is
            except FileNotFoundError:
                pass
            ws.blobs.put_file(path, expected_hex=h)
        sizes = {h: s for h, s in bad.items() if h in good and s is not None}
        ws.blobs.sync(list(good), sizes)
    finally:
        ws.store.release_claims(token)
    return set(good)
