"""``run.summary`` of a run read through the query API, as W&B's public-API summary behaves.

Assignments change the object only; ``run.summary.update()`` (with or without new values) or
``run.update()`` write the whole summary back, as in W&B's "update metrics" samples::

    >>> run = wandb.Api().run("my-team/my-project/abc12345")      # doctest: +SKIP
    >>> run.summary["accuracy"] = 0.9                              # doctest: +SKIP
    >>> run.summary.update()                                       # doctest: +SKIP  (persisted)
    >>> run.summary.update({"loss": 0.1})                          # doctest: +SKIP  (set and persisted)

Nested dicts come back as summary objects of their own (W&B's ``SummarySubDict``) whose changes belong to
the same summary. ``_json_dict`` is the JSON that gets written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any

from wandb_dagster.sdk.values import json_value


class SummarySubDict(MutableMapping[str, Any]):
    """A (nested) part of a run's summary: a view into the root's ``_json_dict`` at ``_path``."""

    def __init__(self, root: Summary, path: tuple[str, ...]) -> None:
        object.__setattr__(self, "_root", root)
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_locked_keys", set())

    @property
    def _json_dict(self) -> dict[str, Any]:
        node = self._root._json_dict
        for key in self._path:
            node = node[key]
        return node

    # Keys are stripped, as W&B's summary does.
    def __getitem__(self, key: str) -> Any:
        key = key.strip() if isinstance(key, str) else key
        value = self._json_dict[key]
        return SummarySubDict(self._root, (*self._path, key)) if isinstance(value, dict) else value

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise ValueError(f"summary keys are strings, got {key!r}")
        key = key.strip()
        dotted = ".".join((*self._path, key))
        if isinstance(value, SummarySubDict):
            value = value._plain()
        self._json_dict[key] = json_value(value, f"summary.{dotted}")
        self._locked_keys.add(key)

    def __delitem__(self, key: str) -> None:
        del self._json_dict[key.strip() if isinstance(key, str) else key]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._json_dict))

    def __len__(self) -> int:
        return len(self._json_dict)

    def __contains__(self, key: object) -> bool:
        return (key.strip() if isinstance(key, str) else key) in self._json_dict

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"run.summary has no key {key!r}; keys: {sorted(self._json_dict)}") from None

    def __setattr__(self, key: str, value: Any) -> None:
        if key.startswith("_"):
            object.__setattr__(self, key, value)
        else:
            self[key] = value

    def __repr__(self) -> str:
        return repr(self._json_dict)

    def _plain(self) -> dict[str, Any]:
        return json_value(self._json_dict, "summary")

    def update(self, key_vals: Mapping[str, Any] | None = None, overwrite: bool = True) -> None:  # type: ignore[override]
        """Set ``key_vals`` (with ``overwrite=False``, only keys not set through this object) and write the
        whole summary to the workspace."""
        for key, value in dict(key_vals or {}).items():
            if overwrite or key.strip() not in self._locked_keys:
                self[key] = value
        self._root._write()


class Summary(SummarySubDict):
    """The root of a run's summary; ``write`` persists its ``_json_dict``."""

    def __init__(self, summary: Mapping[str, Any], write: Callable[[dict[str, Any]], None]) -> None:
        object.__setattr__(self, "_json_dict_root", json_value(dict(summary), "summary"))
        object.__setattr__(self, "_writer", write)
        super().__init__(self, ())

    @property
    def _json_dict(self) -> dict[str, Any]:
        return self._json_dict_root

    def _write(self) -> None:
        self._writer(self._plain())
