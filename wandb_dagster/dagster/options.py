"""Per-asset options, given in definition metadata under the key ``"wandb"`` and validated with pydantic.

Outputs (``@asset(metadata={"wandb": {...}})`` or ``Out(metadata=...)``)::

    @asset(metadata={"wandb": {
        "type": "model",
        "description": "Ridge regression on the bike features",
        "aliases": ["candidate"],
        "tags": ["bikes"],
        "metadata": {"framework": "numpy"},
        "serializer": "joblib",                        # pickle (default), cloudpickle, dill, joblib, json, parquet
        "serializer_params": {"compress": 3},          # checked per serializer (pickle: protocol, ...)
        "extra_files": ["README.md"], "extra_dirs": ["plots/"],
        "extra_references": ["s3://bucket/raw/"],
        "link_to": [{"target": "wandb-registry-model/bike-models", "aliases": ["staging"]}],
    }})

Inputs (``AssetIn(metadata={"wandb": {...}})`` or ``In(metadata=...)``)::

    AssetIn(metadata={"wandb": {"alias": "production"}})     # or "version": "v3"
    AssetIn(metadata={"wandb": {"file": "model.pkl"}})       # a local path to that one file
    AssetIn(metadata={"wandb": {"load_as": "artifact"}})     # the Artifact itself ("path": a local directory)

A misspelled key is an error that names the nearest valid key.
"""

from __future__ import annotations

import difflib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

METADATA_KEY = "wandb"
SERIALIZERS = ("pickle", "cloudpickle", "dill", "joblib", "json", "parquet")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LinkTarget(_Strict):
    """A registry target: ``wandb-registry-model/<collection>`` (or ``[entity/]project/collection``)."""

    target: str
    aliases: list[str] = Field(default_factory=list)


class OutputOptions(_Strict):
    """Options for one asset (or op output). Every field is optional."""

    type: str | None = None
    description: str | None = None
    aliases: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    serializer: Literal["pickle", "cloudpickle", "dill", "joblib", "json", "parquet"] | None = None
    serializer_params: dict[str, Any] = Field(default_factory=dict)
    extra_files: list[str] = Field(default_factory=list)
    extra_dirs: list[str] = Field(default_factory=list)
    extra_references: list[str] = Field(default_factory=list)
    link_to: list[LinkTarget] = Field(default_factory=list)

    @field_validator("link_to", mode="before")
    @classmethod
    def _targets(cls, value: Any) -> Any:
        # A bare string is the common case: link with no extra aliases.
        if isinstance(value, (str, dict)):
            value = [value]
        return [{"target": v} if isinstance(v, str) else v for v in value or []]

    @model_validator(mode="after")
    def _serializer_params(self) -> OutputOptions:
        from wandb_dagster.dagster.serializers import check_params

        check_params(self.serializer or "pickle", self.serializer_params)
        return self

    @field_validator("aliases", "tags", "extra_files", "extra_dirs", "extra_references", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class InputOptions(_Strict):
    """How an input is loaded. By default: the exact version the upstream materialization recorded."""

    version: str | None = None
    alias: str | None = None
    file: str | None = None
    load_as: Literal["object", "artifact", "path"] = "object"
    allow_missing_partitions: bool = False

    def model_post_init(self, _context: Any) -> None:
        if self.version is not None and self.alias is not None:
            raise ValueError(f"give either version={self.version!r} or alias={self.alias!r}, not both")


def _field_names(model: type[BaseModel]) -> list[str]:
    return list(model.model_fields)


def _unknown_key(key: Any, valid: list[str]) -> str:
    close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.5)
    return f"{key!r} (did you mean {close[0]!r}?)" if close else repr(key)


# Options whose items are models of their own: an unknown key inside one is reported with that model's keys.
_NESTED: dict[str, type[BaseModel]] = {"link_to": LinkTarget}


def _problem(err: Any) -> str:
    loc = [str(p) for p in err["loc"]]
    where = ".".join(loc) or "options"
    nested = _NESTED.get(loc[0]) if loc else None
    if err["type"] == "extra_forbidden" and nested is not None:
        valid = _field_names(nested)
        return f"{'.'.join(loc[:-1])}: unknown key {_unknown_key(loc[-1], valid)}; valid keys: {valid}"
    return f"{where}: {err['msg']}"


def parse_options(raw: Any, model: type[BaseModel], where: str) -> Any:
    """Validate ``raw`` (the ``"wandb"`` metadata value, or None) as ``model``; errors name ``where``."""
    if raw is None:
        return model()
    raw = getattr(raw, "value", raw)  # a dagster MetadataValue wrapping the dict
    if isinstance(raw, model):
        return raw
    if isinstance(raw, BaseModel):
        raw = raw.model_dump()
    if not isinstance(raw, dict):
        raise ValueError(
            f"{where}: metadata[{METADATA_KEY!r}] must be a dict of options, got {type(raw).__name__}: {raw!r}. "
            f"Valid keys: {_field_names(model)}."
        )
    valid = _field_names(model)
    unknown = [k for k in raw if k not in valid]
    if unknown:
        hints = [_unknown_key(key, valid) for key in unknown]
        raise ValueError(
            f"{where}: unknown option {', '.join(hints)} in metadata[{METADATA_KEY!r}]; valid keys: {valid}."
        )
    try:
        return model(**raw)
    except ValidationError as exc:
        problems = "; ".join(_problem(err) for err in exc.errors())
        raise ValueError(f"{where}: invalid metadata[{METADATA_KEY!r}]: {problems}.") from None
    except ValueError as exc:  # a check across fields (model_post_init), which pydantic does not wrap
        raise ValueError(f"{where}: invalid metadata[{METADATA_KEY!r}]: {exc}.") from None
