"""Turning Python objects into one file and back. pickle is the default; the others are used when the asset
asks for them (``metadata={"wandb": {"serializer": "json"}}``) and their library is installed.

Only :mod:`io_manager` calls :func:`load`, and only for files stored in this workspace (see the README's
trust model): unpickling runs code chosen by whoever wrote the file.
"""

from __future__ import annotations

import importlib.util
import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Protocol 4 (Python >= 3.4) rather than HIGHEST_PROTOCOL: the bytes, and so the digest, must not change
# when the interpreter does, or re-materializing an unchanged output would create a new version.
_PICKLE_PROTOCOL = 4


@dataclass(frozen=True)
class Serializer:
    name: str
    extension: str
    module: str | None  # the import that must be available; None for the standard library
    dump: Callable[[Any, Path], None]
    load: Callable[[Path, str], Any]  # (path, recorded object type "module.qualname")

    def available(self) -> bool:
        return self.module is None or importlib.util.find_spec(self.module) is not None


def _pickle_dump(obj: Any, path: Path) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=_PICKLE_PROTOCOL)


def _pickle_load(path: Path, _type: str) -> Any:
    with open(path, "rb") as f:
        return pickle.load(f)  # noqa: S301 - only for this workspace's files; see the trust model


def _cloudpickle_dump(obj: Any, path: Path) -> None:
    import cloudpickle

    with open(path, "wb") as f:
        cloudpickle.dump(obj, f, protocol=_PICKLE_PROTOCOL)


def _joblib_dump(obj: Any, path: Path) -> None:
    import joblib

    joblib.dump(obj, path, protocol=_PICKLE_PROTOCOL)


def _joblib_load(path: Path, _type: str) -> Any:
    import joblib

    return joblib.load(path)


def _json_dump(obj: Any, path: Path) -> None:
    # sort_keys: equal dicts give equal bytes, so an unchanged output deduplicates.
    text = json.dumps(obj, sort_keys=True, indent=1, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")


def _json_load(path: Path, _type: str) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _parquet_dump(obj: Any, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(obj, pa.Table):
        table = obj
    elif type(obj).__module__.startswith("pandas") and type(obj).__name__ == "DataFrame":
        table = pa.Table.from_pandas(obj)
    else:
        raise TypeError(
            f"the parquet serializer takes a pandas DataFrame or a pyarrow Table, not {type(obj).__name__}; "
            "choose 'pickle' for other objects"
        )
    pq.write_table(table, path)


def _parquet_load(path: Path, object_type: str) -> Any:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    return table.to_pandas() if object_type.startswith("pandas.") else table


SERIALIZERS: dict[str, Serializer] = {
    s.name: s
    for s in (
        Serializer("pickle", "pkl", None, _pickle_dump, _pickle_load),
        Serializer("cloudpickle", "cloudpickle.pkl", "cloudpickle", _cloudpickle_dump, _pickle_load),
        Serializer("joblib", "joblib", "joblib", _joblib_dump, _joblib_load),
        Serializer("json", "json", None, _json_dump, _json_load),
        Serializer("parquet", "parquet", "pyarrow", _parquet_dump, _parquet_load),
    )
}

# The ones whose load runs code named by the file: only for trusted (this workspace's) stored files.
EXECUTES_CODE = frozenset({"pickle", "cloudpickle", "joblib"})


def get(name: str) -> Serializer:
    try:
        serializer = SERIALIZERS[name]
    except KeyError:
        raise ValueError(f"Unknown serializer {name!r}; choose one of {sorted(SERIALIZERS)}.") from None
    if not serializer.available():
        raise ValueError(
            f"Serializer {name!r} needs the {serializer.module!r} package, which is not installed; "
            f"pip install {serializer.module} (or 'wandb-dagster[serializers]'), or choose 'pickle'."
        )
    return serializer


def object_type(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"
