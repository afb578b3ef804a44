"""The artifact manifest: entries, the artifact digest, and W&B's manifest JSON.

Example::

    >>> from wandb_dagster.sdk.manifest import Manifest, ManifestEntry
    >>> m = Manifest()
    >>> m.add(ManifestEntry(path="a.txt", digest="sZRqySSS0jR8YjW00mERhA==", size=6))
    >>> m.digest()
    'df2baf4982f9ccdd99de4a5a8b016e45'
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
from collections.abc import Iterator
from typing import Any

from wandb_dagster.sdk.names import validate_entry_path

MANIFEST_VERSION = 1
STORAGE_POLICY = "wandb-storage-policy-v1"
STORAGE_POLICY_CONFIG = {"storageLayout": "V2"}
_DIGEST_HEADER = "wandb-artifact-manifest-v1\n"


@dataclasses.dataclass
class ManifestEntry:
    """One logical path of an artifact: a stored file, or a reference (``ref``) to an external URI."""

    path: str
    digest: str
    size: int | None = None
    ref: str | None = None
    birth_artifact_id: str | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    # Not part of the manifest: where the bytes can be read from before the artifact is committed.
    local_path: str | None = dataclasses.field(default=None, compare=False, repr=False)
    skip_cache: bool = dataclasses.field(default=False, compare=False, repr=False)
    # The artifact this entry belongs to, so that entry.download() can fetch it.
    _artifact: Any = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.path

    def ref_target(self) -> str:
        """The URI an entry added with ``add_reference`` points to."""
        if self.ref is None:
            raise ValueError(f"Entry {self.path!r} is a stored file, not a reference; it has no ref_target().")
        return self.ref

    def ref_url(self) -> str:
        """A ``wandb-artifact://<artifact id>/<path>`` URL naming this entry, as in W&B."""
        if self._artifact is None or self._artifact.is_draft():
            raise ValueError(f"Entry {self.path!r} belongs to an artifact that is not logged yet; log it first.")
        return f"wandb-artifact://{self._artifact.id}/{self.path}"

    def download(self, root: str | None = None, skip_cache: bool | None = None) -> str:
        """Download just this entry to ``root`` (default: the artifact's download folder); returns its path."""
        if self._artifact is None:
            raise ValueError(f"Entry {self.path!r} does not belong to a logged artifact; log the artifact first.")
        return self._artifact._download_one(self, root, bool(skip_cache))

    def to_json(self) -> dict[str, Any]:
        # Keys with default values are left out, as W&B writes them.
        out: dict[str, Any] = {"digest": self.digest}
        if self.size is not None:
            out["size"] = self.size
        if self.ref is not None:
            out["ref"] = self.ref
        if self.birth_artifact_id is not None:
            out["birthArtifactID"] = self.birth_artifact_id
        if self.extra:
            out["extra"] = self.extra
        return out

    @classmethod
    def from_json(cls, path: str, body: dict[str, Any]) -> ManifestEntry:
        if not isinstance(body, dict) or not isinstance(body.get("digest"), str):
            raise ValueError(f"Manifest entry {path!r} has no 'digest' string: {body!r}.")
        return cls(
            path=validate_entry_path(path),
            digest=body["digest"],
            size=body.get("size"),
            ref=body.get("ref"),
            birth_artifact_id=body.get("birthArtifactID"),
            extra=_extra(path, body.get("extra")),
        )


def _extra(path: str, extra: Any) -> dict[str, Any]:
    # A tampered manifest may hold any JSON here; refuse it rather than fail later on .items().
    if extra is None:
        return {}
    if not isinstance(extra, dict):
        raise ValueError(f"Manifest entry {path!r} has 'extra' of type {type(extra).__name__}; it must be an object.")
    return dict(extra)


def artifact_digest(pairs: Iterator[tuple[str, str]] | list[tuple[str, str]]) -> str:
    """Lowercase hex MD5 over the sorted (path, digest) pairs, exactly as W&B computes it."""
    md5 = hashlib.md5(_DIGEST_HEADER.encode())
    md5.update("".join(f"{path}:{digest}\n" for path, digest in sorted(pairs)).encode())
    return md5.hexdigest()


class Manifest:
    """Ordered mapping of logical path -> :class:`ManifestEntry`."""

    def __init__(self, entries: dict[str, ManifestEntry] | None = None) -> None:
        self.entries: dict[str, ManifestEntry] = dict(entries or {})
        # directory -> number of entries under it; built on the first clash check, then kept up to date
        # (add_dir into an empty artifact never needs it, and it is not free for 10,000 entries).
        self._dirs: collections.Counter[str] | None = None

    @staticmethod
    def _parents(path: str) -> Iterator[str]:
        index = path.find("/")
        while index != -1:
            yield path[:index]
            index = path.find("/", index + 1)

    def add(self, entry: ManifestEntry) -> None:
        if self._dirs is not None and entry.path not in self.entries:
            self._dirs.update(self._parents(entry.path))
        self.entries[entry.path] = entry

    def remove(self, path: str) -> None:
        del self.entries[path]
        if self._dirs is not None:
            self._dirs.subtract(self._parents(path))

    def path_clash(self, path: str) -> str | None:
        """An existing path that ``path`` cannot coexist with (a file where it needs a directory, or the
        reverse), else None."""
        if not self.entries:
            return None
        if self._dirs is None:
            self._dirs = collections.Counter(p for e in self.entries for p in self._parents(e))
        if self._dirs.get(path, 0) > 0:
            return next(p for p in self.entries if p.startswith(path + "/"))
        if "/" not in path:
            return None
        return next((p for p in self._parents(path) if p in self.entries), None)

    def get(self, path: str) -> ManifestEntry | None:
        return self.entries.get(path)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[ManifestEntry]:
        return iter(self.entries.values())

    def digest(self) -> str:
        return artifact_digest((e.path, e.digest) for e in self.entries.values())

    def size(self) -> int:
        return sum(e.size or 0 for e in self.entries.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "version": MANIFEST_VERSION,
            "storagePolicy": STORAGE_POLICY,
            "storagePolicyConfig": dict(STORAGE_POLICY_CONFIG),
            "contents": {path: self.entries[path].to_json() for path in sorted(self.entries)},
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), separators=(",", ":"), sort_keys=False)

    @classmethod
    def from_json(cls, data: dict[str, Any] | str, where: str = "manifest") -> Manifest:
        """Parse manifest JSON; ``where`` names its source in errors (``"the manifest of e/p/name:v3"``).

        A stored manifest may have been tampered with: every part is checked for the type it must have, so a
        damaged one gives a ``ValueError`` naming the version, never an ``AttributeError`` from deep inside.
        """
        if isinstance(data, str):
            data = json.loads(data)
        if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
            got = data.get("version") if isinstance(data, dict) else data
            raise ValueError(f"Unsupported {where}: expected manifest version {MANIFEST_VERSION}, got {got!r}.")
        contents = data.get("contents") or {}
        if not isinstance(contents, dict):
            raise ValueError(
                f"Damaged {where}: 'contents' is a {type(contents).__name__}, not an object mapping entry paths "
                "to entries; restore the version's manifest or log the artifact again."
            )
        try:
            return cls({path: ManifestEntry.from_json(path, body) for path, body in contents.items()})
        except ValueError as exc:
            raise ValueError(f"Damaged {where}: {exc}") from None
