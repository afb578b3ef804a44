"""Turning Python objects into one file and back. pickle is the default; the others are used when the asset
asks for them (``metadata={"wandb": {"serializer": "json"}}``) and their library is installed.

Parameters go beside the name, and are checked when the options are (a bad one names itself)::

    metadata={"wandb": {"serializer": "joblib", "serializer_params": {"compress": 3}}}
    metadata={"wandb": {"serializer": "pickle", "serializer_params": {"protocol": 5}}}

Only :mod:`io_manager` calls :func:`load`, and only for files stored in this workspace (see the README's
trust model): unpickling runs code chosen by whoever wrote the file.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Protocol 4 (Python >= 3.4) rather than HIGHEST_PROTOCOL: the bytes, and so the digest, must not change
# when the interpreter does, or re-materializing an unchanged output would create a new version.
_PICKLE_PROTOCOL = 4


@dataclass(frozen=True)
class Param:
    """One parameter a serializer takes: ``allowed`` describes the values ``check`` accepts."""

    allowed: str
    check: Callable[[Any], bool]


def _int_in(low: int, high: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


_PROTOCOL = Param(f"an int from 0 to {pickle.HIGHEST_PROTOCOL} (default {_PICKLE_PROTOCOL})",
                  _int_in(0, pickle.HIGHEST_PROTOCOL))
_JOBLIB_METHODS = ("zlib", "gzip", "bz2", "lzma", "xz", "lz4")


def _joblib_compress(value: Any) -> bool:
    if isinstance(value, bool) or _int_in(0, 9)(value):
        return True
    if isinstance(value, str):
        return value in _JOBLIB_METHODS
    return (
        isinstance(value, (list, tuple)) and len(value) == 2 and value[0] in _JOBLIB_METHODS
        and _int_in(0, 9)(value[1])
    )


@dataclass(frozen=True)
class Serializer:
    name: str
    extension: str
    module: str | None  # the import that must be available; None for the standard library
    dump: Callable[[Any, Path, dict[str, Any]], None]  # (object, path, validated parameters)
    load: Callable[[Path, str], Any]  # (path, recorded object type "module.qualname")
    params: dict[str, Param] = field(default_factory=dict)

    def available(self) -> bool:
        return self.module is None or importlib.util.find_spec(self.module) is not None


def _pickle_dump(obj: Any, path: Path, params: dict[str, Any]) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=params.get("protocol", _PICKLE_PROTOCOL))


def _pickle_load(path: Path, _type: str) -> Any:
    with open(path, "rb") as f:
        return pickle.load(f)  # noqa: S301 - only for this workspace's files; see the trust model


def _cloudpickle_dump(obj: Any, path: Path, params: dict[str, Any]) -> None:
    import cloudpickle

    with open(path, "wb") as f:
        cloudpickle.dump(obj, f, protocol=params.get("protocol", _PICKLE_PROTOCOL))


def _dill_dump(obj: Any, path: Path, params: dict[str, Any]) -> None:
    import dill

    with open(path, "wb") as f:
        dill.dump(obj, f, **{"protocol": _PICKLE_PROTOCOL, **params})


def _dill_load(path: Path, _type: str) -> Any:
    import dill

    with open(path, "rb") as f:
        return dill.load(f)  # noqa: S301 - only for this workspace's files; see the trust model


def _joblib_dump(obj: Any, path: Path, params: dict[str, Any]) -> None:
    import joblib

    compress = params.get("compress", 0)
    joblib.dump(obj, path, compress=tuple(compress) if isinstance(compress, list) else compress,
                protocol=params.get("protocol", _PICKLE_PROTOCOL))


def _joblib_load(path: Path, _type: str) -> Any:
    import joblib

    return joblib.load(path)


def _json_dump(obj: Any, path: Path, params: dict[str, Any]) -> None:
    # sort_keys (not a parameter): equal dicts give equal bytes, so an unchanged output deduplicates.
    text = json.dumps(obj, sort_keys=True, allow_nan=False, **{"indent": 1, **params})
    path.write_text(text + "\n", encoding="utf-8")


def _json_load(path: Path, _type: str) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _parquet_dump(obj: Any, path: Path, params: dict[str, Any]) -> None:
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
    pq.write_table(table, path, **params)


def _parquet_load(path: Path, object_type: str) -> Any:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    return table.to_pandas() if object_type.startswith("pandas.") else table


_PARQUET_CODECS = ("none", "snappy", "gzip", "brotli", "lz4", "zstd")

SERIALIZERS: dict[str, Serializer] = {
    s.name: s
    for s in (
        Serializer("pickle", "pkl", None, _pickle_dump, _pickle_load, {"protocol": _PROTOCOL}),
        Serializer(
            "cloudpickle", "cloudpickle.pkl", "cloudpickle", _cloudpickle_dump, _pickle_load, {"protocol": _PROTOCOL}
        ),
        Serializer("dill", "dill.pkl", "dill", _dill_dump, _dill_load, {
            "protocol": _PROTOCOL,
            "recurse": Param("true or false (dill's default: false)", _is_bool),
            "byref": Param("true or false (dill's default: false)", _is_bool),
        }),
        Serializer("joblib", "joblib", "joblib", _joblib_dump, _joblib_load, {
            "compress": Param(
                f"true/false, a level 0-9, a method {list(_JOBLIB_METHODS)}, or [method, level] (default 0: none)",
                _joblib_compress,
            ),
            "protocol": _PROTOCOL,
        }),
        Serializer("json", "json", None, _json_dump, _json_load, {
            "indent": Param(
                "null (one line) or an int from 0 to 16 (default 1)", lambda v: v is None or _int_in(0, 16)(v)
            ),
            "ensure_ascii": Param("true or false (default true)", _is_bool),
        }),
        Serializer("parquet", "parquet", "pyarrow", _parquet_dump, _parquet_load, {
            "compression": Param(f"one of {list(_PARQUET_CODECS)} (default snappy)", lambda v: v in _PARQUET_CODECS),
            "compression_level": Param("an int (its range depends on the codec)", _int_in(-(2**31), 2**31 - 1)),
            "row_group_size": Param("a positive int (rows per group)", _int_in(1, 2**62)),
        }),
    )
}

# The ones whose load runs code named by the file: only for trusted (this workspace's) stored files.
EXECUTES_CODE = frozenset({"pickle", "cloudpickle", "dill", "joblib"})


def check_params(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` if serializer ``name`` takes them all with those values; else a ValueError naming the bad
    one, what it allows and, for a misspelling, the parameter meant. Needs no optional library."""
    serializer = SERIALIZERS.get(name)
    if serializer is None:
        raise ValueError(f"Unknown serializer {name!r}; choose one of {sorted(SERIALIZERS)}.")
    if not isinstance(params, dict):
        raise ValueError(f"serializer_params must be a dict of parameters, got {type(params).__name__}: {params!r}")
    valid = sorted(serializer.params)
    for key, value in params.items():
        param = serializer.params.get(key)
        if param is None:
            close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"serializer {name!r} takes no parameter {key!r}{hint}; its parameters: {valid or 'none'}"
            )
        if not param.check(value):
            raise ValueError(f"serializer {name!r} parameter {key!r}={value!r} is invalid: give {param.allowed}")
    return params


def get(name: str) -> Serializer:
    try:
        serializer = SERIALIZERS[name]
    except KeyError:
        raise ValueError(f"Unknown serializer {name!r}; choose one of {sorted(SERIALIZERS)}.") from None
    if not serializer.available():
        raise ValueError(
            f"Serializer {name!r} needs the {serializer.module!r} package, which is not installed in this "
            f"environment; install the extra: pip install 'wandb-dagster[serializers]' (or pip install "
            f"{serializer.module}), or choose 'pickle'."
        )
    return serializer


def object_type(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"
