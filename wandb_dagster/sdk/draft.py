"""What a draft artifact holds before it is committed: its entries, and which of their blobs are known to be
stored already. :mod:`wandb_dagster.sdk.commit` reads it to publish the version; the artifact's ``add_*``
methods fill it.

Example::

    >>> from wandb_dagster.sdk.draft import Draft
    >>> from wandb_dagster.sdk.manifest import ManifestEntry
    >>> draft = Draft("bike-dataset")
    >>> _ = draft.put(ManifestEntry(path="a.txt", digest="sZRqySSS0jR8YjW00mERhA==", size=6), overwrite=False)
    >>> draft.stored_blobs()
    ({'b1946ac92492d2347c6235b4d2611184': None}, {'b1946ac92492d2347c6235b4d2611184': 6})
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from wandb_dagster.sdk.manifest import Manifest, ManifestEntry
from wandb_dagster.storage.hashing import b64_to_hex


class Draft:
    """The contents of one draft artifact. ``owner`` is the artifact the entries belong to (so that
    ``entry.download()`` finds it once the artifact is logged); ``name`` is its collection name, for messages."""

    def __init__(self, name: str, owner: Any = None, incremental: bool = False) -> None:
        self.name = name
        self.owner = owner
        self.manifest = Manifest()
        # ``Artifact(..., incremental=True)``: the committed version is the latest one plus these entries.
        self.incremental = incremental
        # Blobs known to be in the artifact's workspace's store (checked or written by add_*), so that commit
        # need not ask again.
        self.present: set[str] = set()
        # The token of this draft's blob claims (store/blob_refs.py): a gc leaves the blobs it names alone
        # until it is committed (docs/architecture.md, "Garbage collection").
        self.claim_token = uuid.uuid4().hex
        # Blobs claimed under that token by add_* (and checked stored after the claim): the commit claims
        # only the others; if the claims expired meanwhile the commit's check says so and all are claimed again.
        self.claimed: set[str] = set()

    def _own(self, entry: ManifestEntry) -> ManifestEntry:
        entry._artifact = self.owner
        self.manifest.add(entry)
        return entry

    def put(self, entry: ManifestEntry, overwrite: bool) -> ManifestEntry:
        """Add ``entry``; an entry with the same path and content is kept as it is, other content at the
        same path needs ``overwrite``. A path that is a file in one entry and a folder in another is refused."""
        clash = self.manifest.path_clash(entry.path)
        if clash is not None:
            raise ValueError(
                f"Artifact {self.name!r} cannot hold both {clash!r} and {entry.path!r}: one would be a file "
                "and a directory at once. Rename one of them."
            )
        existing = self.manifest.get(entry.path)
        if existing is not None and not overwrite:
            if existing.digest == entry.digest and existing.ref == entry.ref:
                return existing
            raise ValueError(
                f"Artifact {self.name!r} already has an entry {entry.path!r} with other content; pass "
                "overwrite=True (or merge=True for add_dir) to replace it, or choose another name."
            )
        return self._own(entry)

    def put_all(self, entries: list[ManifestEntry], overwrite: bool, from_one_walk: bool) -> list[ManifestEntry]:
        """:meth:`put` each entry. ``from_one_walk``: the paths come from one directory walk, so they cannot
        clash with each other; into an empty draft they are then added without checks (10,000 files)."""
        if from_one_walk and not self.manifest.entries:
            return [self._own(entry) for entry in entries]
        return [self.put(entry, overwrite) for entry in entries]

    def merge(self, entries: Iterable[ManifestEntry]) -> None:
        """Add the entries whose path this draft neither has nor clashes with (an incremental artifact's base)."""
        for entry in entries:
            if entry.path not in self.manifest.entries and self.manifest.path_clash(entry.path) is None:
                self.put(entry, overwrite=False)

    def remove(self, path: str) -> None:
        """Remove the entry at ``path``, or every entry under the folder ``path``."""
        if path in self.manifest.entries:
            self.manifest.remove(path)
            return
        under = [p for p in self.manifest.entries if p.startswith(path + "/")]
        if not under:
            raise FileNotFoundError(f"Artifact {self.name!r} has no entry or directory {path!r}.")
        for p in under:
            self.manifest.remove(p)

    def stored_blobs(self) -> tuple[dict[str, str | None], dict[str, int]]:
        """The blobs the stored (not referenced) entries name: hex digest -> a local file holding the bytes
        (an ``immutable`` entry's source) or None, and hex digest -> size where known."""
        wanted: dict[str, str | None] = {}
        sizes: dict[str, int] = {}
        for entry in self.manifest:
            if entry.ref is None:
                hexdigest = b64_to_hex(entry.digest)
                if wanted.get(hexdigest) is None:
                    wanted[hexdigest] = entry.local_path
                if entry.size is not None:
                    sizes[hexdigest] = entry.size
        return wanted, sizes

    def paths_of_blob(self, hexdigest: str) -> list[str]:
        """The paths of the stored entries whose content is the blob ``hexdigest``."""
        return [e.path for e in self.manifest if e.ref is None and b64_to_hex(e.digest) == hexdigest]
