"""Names, validation and path parsing, exactly as W&B applies them.

Example::

    >>> from wandb_dagster.sdk.names import parse_artifact_path
    >>> parse_artifact_path("my-entity/my-project/bike-model:v0", "me", "proj")
    ArtifactPath(entity='my-entity', project='my-project', name='bike-model', selector='v0')
"""

from __future__ import annotations

import math
import posixpath
import re
from typing import Any, NamedTuple

from wandb_dagster.sdk.values import MAX_NESTING_DEPTH, check_json_size
from wandb_dagster.storage.verified_write import NAME_MAX

_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_VERSION_RE = re.compile(r"^v\d+$")
_TAG_RE = re.compile(r"^[-\w]+( +[-\w]+)*$")
MAX_NAME_LEN = 128
MAX_METADATA_KEYS = 100
RESERVED_TYPES = ("job",)
ENTRY_NAME_MAX = NAME_MAX
"""Longest component of an artifact entry path, in UTF-8 bytes: a longer one could be logged but never
downloaded (``File name too long``), so it is refused when the entry is added."""
ENTRY_PATH_MAX = 4096
"""Longest artifact entry path, in UTF-8 bytes (Linux PATH_MAX), for the same reason."""
_SHORT_PATH = ENTRY_NAME_MAX // 4  # at most 4 UTF-8 bytes a character: a path this short fits every limit
RESERVED_TYPE_PREFIX = "wandb-"


class ArtifactPath(NamedTuple):
    entity: str
    project: str
    name: str
    selector: str


def suggest_artifact_name(name: str) -> str:
    """A valid artifact name close to ``name`` (invalid characters become ``-``), e.g. for a default name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:MAX_NAME_LEN] or "my-artifact"


def validate_artifact_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"Artifact name {name!r} is invalid: give a non-empty string such as 'bike-dataset'.")
    if len(name) > MAX_NAME_LEN or not _NAME_RE.match(name):
        raise ValueError(
            f"Artifact name {name!r} is invalid: names may contain only letters, digits, '-', '_' and '.', "
            f"at most {MAX_NAME_LEN} characters. Try {suggest_artifact_name(name)!r}."
        )
    return name


def validate_type(artifact_type: Any) -> str:
    if not isinstance(artifact_type, str) or not artifact_type:
        raise ValueError(
            f"Artifact type {artifact_type!r} is invalid: give a non-empty string such as 'dataset' or 'model'."
        )
    _no_nul(artifact_type, "Artifact type")
    if "/" in artifact_type or ":" in artifact_type or len(artifact_type) > MAX_NAME_LEN:
        raise ValueError(
            f"Artifact type {artifact_type!r} is invalid: types must not contain '/' or ':' and have at most "
            f"{MAX_NAME_LEN} characters."
        )
    if artifact_type in RESERVED_TYPES or artifact_type.startswith(RESERVED_TYPE_PREFIX):
        raise ValueError(
            f"Artifact type {artifact_type!r} is reserved for internal use (the 'wandb-*' types and 'job'); "
            "choose another, e.g. 'dataset' or 'model'."
        )
    return artifact_type


def is_version_alias(alias: str) -> bool:
    return bool(_VERSION_RE.match(alias))


def validate_alias(alias: Any) -> str:
    if not isinstance(alias, str) or not alias:
        raise ValueError(f"Alias {alias!r} is invalid: aliases are non-empty strings such as 'production'.")
    _no_nul(alias, "Alias")
    if "/" in alias or ":" in alias or len(alias) > MAX_NAME_LEN:
        raise ValueError(
            f"Alias {alias!r} is invalid: aliases must not contain '/' or ':' and have at most "
            f"{MAX_NAME_LEN} characters."
        )
    if is_version_alias(alias):
        raise ValueError(
            f"Alias {alias!r} is invalid: 'v<number>' names a version and cannot be used as a custom alias."
        )
    return alias


def validate_aliases(aliases: Any) -> list[str]:
    if aliases is None:
        return []
    if isinstance(aliases, str):
        aliases = [aliases]
    out: list[str] = []
    for alias in aliases:
        if validate_alias(alias) not in out:
            out.append(alias)
    return out


def validate_tags(tags: Any) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = [tags]
    out: list[str] = []
    for tag in tags:
        if not isinstance(tag, str) or not _TAG_RE.match(tag):
            raise ValueError(
                f"Tag {tag!r} is invalid: tags are words of letters, digits, '_' and '-', separated by single "
                "spaces (e.g. 'text-classification')."
            )
        if tag not in out:
            out.append(tag)
    return out


def _no_nul(text: str, field: str) -> None:
    # PostgreSQL cannot store NUL in text or jsonb (a raw DataError); SQLite would store it. Refused on both so
    # the databases agree (docs/architecture.md, "Input limits").
    if "\x00" in text:
        raise ValueError(f"{field} {text!r} contains a NUL character (\\x00), which cannot be stored; remove it.")


def validate_description(description: Any) -> str | None:
    if description is not None and not isinstance(description, str):
        raise ValueError(f"Artifact description must be a string or None, got {description!r}.")
    if description is not None:
        _no_nul(description, "Artifact description")
    return description


def _sanitize_json(value: Any, where: str, depth: int = 0) -> Any:
    if isinstance(value, str):
        _no_nul(value, f"Metadata value at {where}")
        return value
    if value is None or isinstance(value, (bool, int)):
        return value
    if depth >= MAX_NESTING_DEPTH and isinstance(value, (dict, list, tuple)):
        raise ValueError(
            f"Metadata at {where} nests deeper than {MAX_NESTING_DEPTH} levels (MAX_NESTING_DEPTH); flatten it."
        )
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            raise ValueError(
                f"Metadata value at {where} is {value}: infinities are not allowed; store a number or a string."
            )
        return value
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"Metadata key {key!r} at {where} is not a string; metadata keys must be strings.")
            _no_nul(key, f"Metadata key at {where}")
            out[key] = _sanitize_json(item, f"{where}.{key}", depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [_sanitize_json(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
    item = getattr(value, "item", None)  # NumPy scalars
    if callable(item):
        return _sanitize_json(item(), where, depth)
    tolist = getattr(value, "tolist", None)  # NumPy arrays
    if callable(tolist):
        return _sanitize_json(tolist(), where, depth)
    raise ValueError(
        f"Metadata value at {where} has type {type(value).__name__}, which is not JSON; "
        "use strings, numbers, booleans, None, lists and dicts."
    )


def validate_metadata(metadata: Any) -> dict:
    """Return a JSON-clean copy: NaN becomes None, +-Inf is an error, at most 100 top-level keys, at most
    MAX_JSON_BYTES as JSON."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise ValueError(f"Artifact metadata must be a dict, got {type(metadata).__name__}: {metadata!r}.")
    if len(metadata) > MAX_METADATA_KEYS:
        raise ValueError(
            f"Artifact metadata has {len(metadata)} top-level keys; at most {MAX_METADATA_KEYS} are allowed. "
            "Nest related keys under one key."
        )
    return check_json_size(_sanitize_json(metadata, "metadata"), "Artifact metadata")


def validate_entry_path(path: Any) -> str:
    """A logical path: POSIX, relative, no '..', '.', empty parts or leading '/'. Returns it unchanged."""
    if not isinstance(path, str) or not path:
        raise ValueError(f"Artifact entry path {path!r} is invalid: give a relative path such as 'data/train.csv'.")
    parts = path.split("/")
    if (
        path.startswith("/")
        or "\\" in path
        or "\x00" in path
        or any(part in ("", ".", "..") for part in parts)
        or re.match(r"^[A-Za-z]:", path)
    ):
        raise ValueError(
            f"Artifact entry path {path!r} is invalid: entry paths are relative POSIX paths without '..', '.', "
            "empty parts, backslashes or a leading '/'."
        )
    if len(path) > _SHORT_PATH:  # only long paths pay for measuring their bytes
        _check_entry_path_length(path, parts)
    return path


def _utf8_len(text: str) -> int:
    # Names read from a folder may carry undecodable bytes as surrogate escapes: count those bytes.
    try:
        return len(text.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:  # another lone surrogate: counted as the 3 bytes it would take, erring long
        return len(text.encode("utf-8", "surrogatepass"))


def _check_entry_path_length(path: str, parts: list[str]) -> None:
    def shown(text: str) -> str:
        return repr(text) if len(text) <= 80 else f"{text[:40]!r}...{text[-20:]!r} ({len(text)} characters)"

    for part in parts:
        if len(part) > _SHORT_PATH and (n := _utf8_len(part)) > ENTRY_NAME_MAX:
            raise ValueError(
                f"Artifact entry path {shown(path)} has a component of {n} bytes ({shown(part)}); file systems "
                f"allow at most {ENTRY_NAME_MAX} bytes (NAME_MAX) per file or folder name, so it could never be "
                "downloaded. Give the entry a shorter name (name=... in add_file/add_dir/add_reference/new_file)."
            )
    if len(path) * 4 > ENTRY_PATH_MAX and (n := _utf8_len(path)) > ENTRY_PATH_MAX:
        raise ValueError(
            f"Artifact entry path {shown(path)} is {n} bytes long; file systems allow at most {ENTRY_PATH_MAX} bytes "
            "(PATH_MAX) in a path, so it could never be downloaded. Give the entry a shorter path."
        )


def normalize_entry_path(path: str) -> str:
    """Turn a user-supplied name (which may use os.sep or './') into a logical path, then validate it."""
    cleaned = path.replace("\\", "/")
    if cleaned.startswith("/") or ".." in cleaned.split("/"):
        return validate_entry_path(path)
    return validate_entry_path(posixpath.normpath(cleaned))


REGISTRY_PREFIX = "wandb-registry-"


def is_registry_project(project: str) -> bool:
    """True for a registry: a project named ``wandb-registry-<name>`` (any case)."""
    return project.lower().startswith(REGISTRY_PREFIX) and len(project) > len(REGISTRY_PREFIX)


def normalize_project_name(project: str) -> str:
    """Registry names are case-insensitive: ``wandb-registry-Model`` is ``wandb-registry-model``.

    Other project names are returned unchanged. Every project name parsed or created goes through this.
    """
    return project.lower() if is_registry_project(project) else project


def _with_defaults(parts: list[str], default_entity: str, default_project: str) -> tuple[str, str, str]:
    """``[[entity/]project/]name`` parts (1 to 3, already checked) with the missing ones defaulted."""
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    if len(parts) == 2:
        return default_entity, parts[0], parts[1]
    return default_entity, default_project, parts[0]


def parse_link_target(target_path: Any, default_entity: str, default_project: str) -> tuple[str, str, str, str]:
    """Parse a link target ``[[entity/]project/]collection[:alias]`` into (entity, project, collection, alias).

    The path is split at the first ':'; what follows it (if anything) is an extra alias, "" when absent.
    """
    if not isinstance(target_path, str) or not target_path:
        raise ValueError(
            f"Link target {target_path!r} is invalid: use '[[entity/]project/]collection', "
            "e.g. 'wandb-registry-model/my-models'."
        )
    body, sep, alias = target_path.partition(":")
    parts = body.split("/")
    if len(parts) > 3 or any(not p for p in parts) or (sep and not alias):
        raise ValueError(
            f"Link target {target_path!r} is invalid: use '[[entity/]project/]collection' with 1 to 3 "
            "non-empty '/'-separated parts, e.g. 'wandb-registry-model/my-models'."
        )
    if alias and is_version_alias(alias):
        raise ValueError(
            f"Link target {target_path!r} names a version ({alias!r}); a link gets the next version of the "
            f"collection, so leave ':{alias}' out (or give a custom alias such as ':production')."
        )
    if alias:
        validate_alias(alias)
    entity, project, collection = _with_defaults(parts, default_entity, default_project)
    validate_artifact_name(collection)
    return entity, normalize_project_name(project), collection, alias


def parse_artifact_path(path: str, default_entity: str, default_project: str) -> ArtifactPath:
    """Parse ``[[entity/]project/]name[:version|alias]``; the selector defaults to ``latest``."""
    if not isinstance(path, str) or not path:
        raise ValueError(f"Artifact path {path!r} is invalid: use '[[entity/]project/]name[:version|alias]'.")
    body, sep, selector = path.partition(":")
    parts = body.split("/")
    if len(parts) > 3 or any(not p for p in parts) or (sep and not selector):
        raise ValueError(
            f"Artifact path {path!r} is invalid: use '[[entity/]project/]name[:version|alias]', "
            "e.g. 'my-project/bike-dataset:v0'."
        )
    entity, project, name = _with_defaults(parts, default_entity, default_project)
    return ArtifactPath(entity, normalize_project_name(project), name, selector or "latest")
