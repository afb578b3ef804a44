"""What every W&B data type shares: the JSON forms it is recorded as, in a run's history and in an
artifact, and the blob store that holds its bytes.

A data type (``wandb.Image``, ``wandb.Table``...) becomes JSON in one of two places:

- in a run (``run.log({"key": value})``): :meth:`WBValue.to_run_json`. Media bytes go into the workspace's
  content-addressed blob store; the history row holds W&B's JSON form (``{"_type": "image-file", "path":
  "media/images/...", "sha256": ..., "size": ...}``) plus ``digest``, the base64 MD5 that names the blob,
  so the database never holds the bytes;
- in an artifact (``artifact.add(value, name)``): :meth:`WBValue.to_artifact_json`. Media files become
  entries of the artifact (``media/images/<sha256[:20]>.png``) and the value is the entry
  ``<name>.<_log_type>.json``, as in W&B; ``artifact.get(name)`` reads it back with :func:`from_json`.

NumPy, Pillow and pandas are imported only when a value needs them (:func:`require`), so
``import wandb_dagster`` stays fast.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from wandb_dagster.storage.hashing import hex_to_b64

if TYPE_CHECKING:
    from wandb_dagster.sdk.artifact import Artifact
    from wandb_dagster.sdk.run import Run

# The extra that installs what each optional import needs (pyproject.toml).
_EXTRAS = {"numpy": ("numpy", "media"), "PIL.Image": ("pillow", "media"), "pandas": ("pandas", "media")}


def require(module: str, what: str) -> Any:
    """``module`` imported, or ImportError naming the package to install and the extra that has it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package, extra = _EXTRAS.get(module, (module, "media"))
        raise ImportError(
            f"{what} needs the {package!r} package: pip install {package} (or pip install 'wandb-dagster[{extra}]')."
        ) from None


class WBValue:
    """A value with a W&B JSON form. Subclasses set ``_log_type`` (the ``_type`` of the artifact form)."""

    _log_type: ClassVar[str] = ""
    _types: ClassVar[dict[str, type[WBValue]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls._log_type:
            WBValue._types[cls._log_type] = cls

    def to_run_json(self, run: Run, key: str, step: int | str) -> dict[str, Any]:
        """The JSON a history row records for this value, logged under ``key`` at ``step``."""
        raise NotImplementedError

    def to_artifact_json(self, artifact: Artifact) -> dict[str, Any]:
        """The JSON stored in ``artifact`` for this value; its files are added to ``artifact``."""
        raise NotImplementedError

    @classmethod
    def from_json(cls, obj: dict[str, Any], artifact: Artifact) -> WBValue:
        """The value ``obj`` (from :meth:`to_artifact_json`) describes, its files read from ``artifact``."""
        raise NotImplementedError

    @classmethod
    def with_suffix(cls, name: str) -> str:
        """The artifact entry holding a value added as ``name``: ``name.<_log_type>.json``, as W&B."""
        suffix = f".{cls._log_type}.json"
        return name if name.endswith(suffix) else name + suffix


def types() -> dict[str, type[WBValue]]:
    """Every data type by its artifact ``_type``."""
    return dict(WBValue._types)


class Media(WBValue):
    """A value with one file: its bytes are stored in the blob store (a run) or as an artifact entry."""

    _run_type: ClassVar[str] = ""
    _media_dir: ClassVar[str] = ""
    _extension: str = ""  # an instance may set its own (an Image's format)

    def __init__(self, data: bytes, caption: str | None = None) -> None:
        if caption is not None and not isinstance(caption, str):
            caption = str(caption)  # W&B records whatever it is given as text
        self._caption = caption
        self._bytes = data
        self._sha256 = hashlib.sha256(data).hexdigest()
        self._size = len(data)

    @property
    def caption(self) -> str | None:
        return self._caption

    def _meta(self) -> dict[str, Any]:
        """Type-specific fields of both JSON forms (width, height, format...)."""
        return {}

    def _base(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self._caption is not None:
            out["caption"] = self._caption
        return out

    def to_run_json(self, run: Run, key: str, step: int | str) -> dict[str, Any]:
        path = f"{self._media_dir}/{file_key(key)}_{step}_{self._sha256[:20]}{self._extension}"
        digest = store_media_bytes(run, self._bytes)
        return {**self._base(), "_type": self._run_type, "path": path, "sha256": self._sha256, "size": self._size,
                **self._meta(), "digest": digest}  # fmt: skip

    def _artifact_name(self) -> str:
        """The entry holding the file in an artifact: named by its content, as W&B names a generated file
        (a file given by path keeps its name: :class:`Image`)."""
        return f"{self._media_dir}/{self._sha256[:20]}{self._extension}"

    def to_artifact_json(self, artifact: Artifact) -> dict[str, Any]:
        name = self._artifact_name()
        if artifact.manifest.get(name) is None:
            with artifact.new_file(name, mode="wb") as f:
                f.write(self._bytes)
        return {**self._base(), "_type": self._log_type, "path": name, "sha256": self._sha256, **self._meta()}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, type(self)) and other._sha256 == self._sha256

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._sha256))


def file_key(key: str) -> str:
    """``key`` as the start of a media file name, as W&B's ``make_file_path_upload_safe``: a key with slashes
    (``val/examples``) names sub-folders; leading slashes go and ``.``/``..`` parts become ``_``/``__``, so
    that no name climbs out of ``media/``."""
    parts = key.lstrip("/").split("/")
    return "/".join(p.replace(".", "_") if p in (".", "..") else p for p in parts)


def store_media_bytes(run: Run, data: bytes) -> str:
    """Store ``data`` in the run's workspace blob store; returns its base64 MD5 (the history's ``digest``).

    The blob is claimed for the run before it is stored (a gc leaves it alone until the row naming it is
    written) and made durable before that row is written (Run._flush: docs/architecture.md invariant 1 and
    "Garbage collection").
    """
    return hex_to_b64(run._store_media(data))


# The history forms that name one stored file (``path`` + ``digest``); "images/separated" names several.
RUN_FILE_TYPES = frozenset({"image-file", "html-file", "table-file", "incremental-table-file"})


def media_files(value: Any) -> Iterator[tuple[str, str, int]]:
    """``(path, digest, size)`` of each media file a history or summary value names (nested ones too)."""
    if isinstance(value, dict):
        kind = value.get("_type")
        if kind in RUN_FILE_TYPES and isinstance(value.get("path"), str) and isinstance(value.get("digest"), str):
            yield value["path"], value["digest"], int(value.get("size") or 0)
        elif kind == "images/separated":
            names, digests, sizes = value.get("filenames"), value.get("digests"), value.get("sizes")
            if isinstance(names, list) and isinstance(digests, list) and isinstance(sizes, list):
                yield from zip(names, digests, sizes, strict=False)
        for inner in value.values():
            if isinstance(inner, (dict, list)):
                yield from media_files(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from media_files(inner)


def from_json(obj: dict[str, Any], artifact: Artifact) -> Any:
    """A value of an artifact's JSON (a data type when ``obj`` has a known ``_type``, else ``obj``)."""
    if isinstance(obj, dict) and isinstance(obj.get("_type"), str):
        cls = WBValue._types.get(obj["_type"])
        if cls is not None:
            return cls.from_json(obj, artifact)
    return obj


def artifact_add(artifact: Artifact, obj: Any, name: str, overwrite: bool = False) -> Any:
    """``artifact.add(obj, name)``: store ``obj`` as the entry ``name.<type>.json`` (its files beside it)."""
    if not isinstance(obj, WBValue):
        raise TypeError(
            f"artifact.add() takes a W&B data type ({', '.join(sorted(c.__name__ for c in set(types().values())))}), "
            f"got {type(obj).__name__}; use add_file() or add_dir() for files."
        )
    entry_name = type(obj).with_suffix(str(name).strip("/"))
    existing = artifact.manifest.get(entry_name)
    if existing is not None and not overwrite:
        return existing
    payload = json.dumps(obj.to_artifact_json(artifact), sort_keys=True)
    with artifact.new_file(entry_name, mode="w" if overwrite else "x", encoding="utf-8") as f:
        f.write(payload)
    return artifact.manifest.get(entry_name)


def artifact_get(artifact: Artifact, name: str) -> Any:
    """``artifact.get(name)``: the data type stored as ``name`` (or ``name.<type>.json``); None when absent,
    as in W&B."""
    name = str(name).strip("/")
    entry = artifact.manifest.get(name)
    if entry is None:
        for cls in WBValue._types.values():
            entry = artifact.manifest.get(cls.with_suffix(name))
            if entry is not None:
                break
    if entry is None or not entry.path.endswith(".json"):
        return None
    with open(artifact._download_one(entry, None, skip_cache=False), encoding="utf-8") as f:
        obj = json.load(f)
    return from_json(obj, artifact)


def read_entry_bytes(artifact: Artifact, path: str) -> bytes:
    """The bytes of ``artifact``'s entry ``path``, downloaded (and verified) into the artifact's folder."""
    entry = artifact.get_entry(path)
    with open(artifact._download_one(entry, None, skip_cache=False), "rb") as f:
        return f.read()
