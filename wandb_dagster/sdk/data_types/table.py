"""``wandb.Table``: rows and named columns, logged in runs and stored in artifacts.

    >>> import wandb_dagster as wandb
    >>> table = wandb.Table(columns=["x", "y"], data=[[1, 2.0], [2, 4.1]])
    >>> table.add_data(3, 5.9)
    >>> table.get_column("y")
    [2.0, 4.1, 5.9]
    >>> run.log({"predictions": table})                                  # doctest: +SKIP
    >>> artifact.add(table, "predictions")                               # doctest: +SKIP

Logging a table in a run does what W&B's SDK does: the table is stored as the artifact
``run-<run id>-<key>`` (type ``run_table``, entry ``<key>.table.json``) and the history row holds a
``table-file`` reference to it (``path``, ``sha256``, ``size``, ``ncols``, ``nrows``, ``artifact_path``).
Cells are JSON values (NumPy scalars converted) or :class:`~wandb_dagster.Image` values, whose files
are stored beside the table in the artifact.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import time
import warnings
import zlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from wandb_dagster.sdk.data_types.base import WBValue, file_key, from_json, require, store_media_bytes
from wandb_dagster.sdk.values import json_value

if TYPE_CHECKING:
    from wandb_dagster.sdk.artifact import Artifact
    from wandb_dagster.sdk.run import Run

_DEFAULT_COLUMNS = ["Input", "Output", "Expected"]


class Table(WBValue):
    """A table; see the module docstring. ``dataframe`` (or a DataFrame as ``data``) takes its columns
    and rows from pandas; ``rows`` is W&B's older name for ``data``."""

    _log_type = "table"
    MAX_ROWS = 10000  # as W&B: the most rows a logged table keeps
    MAX_ARTIFACT_ROWS = 200000

    def __init__(
        self,
        columns: Sequence[Any] | None = None,
        data: Any = None,
        rows: Any = None,
        dataframe: Any = None,
        dtype: Any = None,
        optional: Any = True,
        allow_mixed_types: bool = False,
        log_mode: str | None = "IMMUTABLE",
    ) -> None:
        if log_mode not in (None, "IMMUTABLE", "MUTABLE", "INCREMENTAL"):
            raise ValueError(f"Table(log_mode={log_mode!r}): use 'IMMUTABLE', 'MUTABLE' or 'INCREMENTAL'.")
        self.log_mode = log_mode or "IMMUTABLE"
        # W&B's binding to a run: the history form of the last log into a run, recorded again (no new file)
        # until the table changes. MUTABLE: a change unbinds it; IMMUTABLE: a change warns and the table
        # stays as first logged; INCREMENTAL: a change starts the next increment (only new rows are logged).
        self._bound: tuple[Any, dict[str, Any]] | None = None
        self._increments_run: Any = None
        self._increment_num: int | None = None
        self._last_logged_idx: int | None = None
        self._previous_increments_paths: list[str] = []
        if data is None and rows is not None:
            data = rows
        if dataframe is None and _is_dataframe(data):
            dataframe, data = data, None
        if dataframe is not None:
            columns = [str(c) for c in dataframe.columns]
            data = dataframe.itertuples(index=False, name=None)
        self.columns: list[str] = [str(c) for c in (columns if columns is not None else _DEFAULT_COLUMNS)]
        if len(set(self.columns)) != len(self.columns):
            raise ValueError(f"Table columns must be unique, got {self.columns}.")
        self.data: list[list[Any]] = []
        # Each column's kind of value (number, string, Image...), fixed by dtype or by its first value, as
        # W&B types columns: a row of another kind is refused unless allow_mixed_types.
        self._allow_mixed_types = bool(allow_mixed_types)
        self._kinds: list[str | None] = [_dtype_kind(t, c) for t, c in
                                         zip(_per_column(dtype, self.columns, "dtype"), self.columns, strict=True)]
        self._optional: list[bool] = [bool(o) for o in _per_column(optional, self.columns, "optional")]
        if data is not None:
            if hasattr(data, "tolist") and not isinstance(data, list):
                data = data.tolist()  # a NumPy array of rows
            for row in data:
                self.add_data(*row)

    # ---------------------------------------------------------------- building and reading

    def add_data(self, *data: Any) -> None:
        """Append one row; it must have one value per column."""
        if len(data) != len(self.columns):
            raise ValueError(
                f"Table.add_data() got {len(data)} values for {len(self.columns)} columns {self.columns}; give one "
                "value per column."
            )
        row = [_cell(value, column) for value, column in zip(data, self.columns, strict=True)]
        # The whole row is checked before the table changes.
        kinds = [self._check_kind(i, value, raw) for i, (value, raw) in enumerate(zip(row, data, strict=True))]
        self._before_change("add_data")
        self.data.append(row)
        self._kinds = kinds
        self._after_change()

    def _before_change(self, what: str) -> None:
        if self.log_mode == "INCREMENTAL" and what != "add_data":
            raise ValueError(
                f"Table.{what}() is not supported for tables with log_mode='INCREMENTAL' (only add_data is); "
                "use log_mode='MUTABLE' or 'IMMUTABLE'."
            )
        if self.log_mode == "IMMUTABLE" and self._bound is not None:
            warnings.warn(
                "You are mutating a Table with log_mode='IMMUTABLE' that has been logged already. Subsequent "
                "log() calls will have no effect. Set log_mode='MUTABLE' to enable re-logging after mutations.",
                stacklevel=3,
            )

    def _after_change(self) -> None:
        if self.log_mode == "MUTABLE":
            self._bound = None
        elif self.log_mode == "INCREMENTAL" and self._bound is not None:
            self._previous_increments_paths.append(self._bound[1]["artifact_path"])
            self._increment_num = (self._increment_num or 0) + 1
            self._bound = None

    def add_row(self, *row: Any) -> None:
        """W&B's older name for :meth:`add_data`."""
        self.add_data(*row)

    def _check_kind(self, index: int, value: Any, raw: Any) -> str | None:
        """The kind column ``index`` has once ``value`` (``raw`` as given) is in it; TypeError when it does
        not fit."""
        column, kind = self.columns[index], self._kinds[index]
        # As W&B's type_of: a float NaN counts as None (pandas writes it for a missing value in any column);
        # the infinities are recorded as text (values.py) but are numbers.
        if raw.__class__ is float and math.isnan(raw):
            found = None
        else:
            found = "number" if isinstance(raw, float) else _kind(value)
        if found is None:
            if not self._optional[index]:
                raise TypeError(
                    f"Table column {column!r} is not optional: it cannot hold None; give a value, or create the "
                    "table with optional=True."
                )
            return kind
        if kind is None or kind == found or self._allow_mixed_types:
            return kind if kind is not None else found
        raise TypeError(
            f"Table column {column!r} holds {kind} values; {value!r} is a {found}. Give a {kind}, or create the "
            "table with allow_mixed_types=True."
        )

    def add_column(self, name: str, data: Sequence[Any], optional: bool = False) -> None:
        """Append a column ``name`` with one value per row (a table without rows takes any length)."""
        name = str(name)
        if name in self.columns:
            raise ValueError(f"Table.add_column({name!r}): the table already has that column; columns: {self.columns}.")
        values = list(data.tolist() if hasattr(data, "tolist") else data)
        if self.data and len(values) != len(self.data):
            raise ValueError(
                f"Table.add_column({name!r}) got {len(values)} values for a table of {len(self.data)} rows; give "
                "one value per row."
            )
        cells = [_cell(value, name) for value in values]
        self._before_change("add_column")
        self.columns.append(name)
        self._kinds.append(None)
        self._optional.append(bool(optional))
        try:
            for value, raw in zip(cells, values, strict=True):
                self._kinds[-1] = self._check_kind(len(self.columns) - 1, value, raw)
        except TypeError:
            # As W&B: a column that does not fit leaves the table as it was.
            self.columns.pop()
            self._kinds.pop()
            self._optional.pop()
            raise
        if not self.data:
            self.data = [[] for _ in cells]
        for row, value in zip(self.data, cells, strict=True):
            row.append(value)
        self._after_change()

    def get_column(self, name: str, convert_to: str | None = None) -> Any:
        """The values of column ``name``, as a list (``convert_to="numpy"``: a NumPy array)."""
        if name not in self.columns:
            raise ValueError(f"Table.get_column({name!r}): no such column; columns: {self.columns}.")
        index = self.columns.index(name)
        values = [row[index] for row in self.data]
        if convert_to is not None and convert_to != "numpy":
            raise ValueError(f"Table.get_column(convert_to={convert_to!r}): use None or 'numpy'.")
        if convert_to == "numpy":
            np = require("numpy", "Table.get_column(convert_to='numpy')")
            # As W&B: a data type becomes its data array (an image its pixels).
            return np.array([v.to_data_array() if hasattr(v, "to_data_array") else v for v in values])
        return values

    def get_index(self) -> list[int]:
        """The row indices, ``[0, 1, ...]``."""
        return list(range(len(self.data)))

    def iterrows(self) -> Iterator[tuple[int, list[Any]]]:
        """Each row with its index: ``for i, row in table.iterrows()``, as W&B's (the index an int here)."""
        yield from enumerate(self.data)

    def get_dataframe(self) -> Any:
        """The table as a pandas DataFrame (needs pandas)."""
        pd = require("pandas", "Table.get_dataframe()")
        return pd.DataFrame.from_records(self.data, columns=self.columns)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Table) and other.columns == self.columns and other.data == self.data

    __hash__ = None  # type: ignore[assignment]  # tables change (add_data): not hashable, as lists

    def __repr__(self) -> str:
        return f"<Table {len(self.data)} rows x {len(self.columns)} columns {self.columns}>"

    # ---------------------------------------------------------------- JSON forms

    def _rows_to_log(self) -> list[list[Any]]:
        # An incremental table records the rows added since its last log, as W&B's _to_table_json.
        start = 0 if self.log_mode != "INCREMENTAL" or self._last_logged_idx is None else self._last_logged_idx + 1
        return self.data[start : start + self.MAX_ARTIFACT_ROWS]

    def to_artifact_json(self, artifact: Artifact) -> dict[str, Any]:
        rows = self._rows_to_log()
        data = [[cell.to_artifact_json(artifact) if isinstance(cell, WBValue) else cell for cell in row]
                for row in rows]  # fmt: skip
        return {"_type": self._log_type, "columns": list(self.columns), "data": data, "ncols": len(self.columns),
                "nrows": len(data), "log_mode": self.log_mode}  # fmt: skip

    @classmethod
    def from_json(cls, obj: dict[str, Any], artifact: Artifact) -> Table:
        table = cls(columns=obj["columns"], allow_mixed_types=True)
        table.log_mode = obj.get("log_mode", "IMMUTABLE")
        table.data = [[from_json(cell, artifact) for cell in row] for row in obj.get("data", [])]
        # The kinds come back from the values; a column stored mixed stays unchecked.
        for index in range(len(table.columns)):
            found = {_kind(row[index]) for row in table.data} - {None}
            table._kinds[index] = found.pop() if len(found) == 1 else None
        table._allow_mixed_types = any(
            len({_kind(row[i]) for row in table.data} - {None}) > 1 for i in range(len(table.columns))
        )
        return table

    def to_run_json(self, run: Run, key: str, step: int | str) -> dict[str, Any]:
        # As W&B's SDK: the table is the run-table artifact run-<id>-<key> (an incremental one:
        # run-<id>-incr-<key>, one entry per increment); the history references it.
        from wandb_dagster.sdk.artifact import Artifact

        if self._bound is not None and self._bound[0] is run:
            return dict(self._bound[1])  # unchanged since logged: the same file, as W&B's bound table
        incremental = self.log_mode == "INCREMENTAL"
        if incremental:
            self._start_increments(run, key)
            name = sanitize_artifact_name(f"run-{run.id}-incr-{key}")
            artifact = Artifact(name, "run_table", incremental=True, workspace=run.workspace)
            # W&B's own type, reserved for users (names.validate_type): set as W&B's InternalArtifact does.
            artifact._type = "wandb-run-incremental-table"
            entry_name = self.with_suffix(f"{self._increment_num}-{time.time_ns() // 1_000_000}.{key}")
        else:
            name = sanitize_artifact_name(f"run-{run.id}-{key}")
            artifact = Artifact(name, "run_table", workspace=run.workspace)
            entry_name = self.with_suffix(key)
        # The history's file is the artifact's entry: the same bytes, so the same blob.
        payload = json.dumps(self.to_artifact_json(artifact), sort_keys=True).encode("utf-8")
        with artifact.new_file(entry_name, mode="wb") as f:
            f.write(payload)
        logged = run.log_artifact(artifact)
        sha256 = hashlib.sha256(payload).hexdigest()
        value: dict[str, Any] = {
            "_type": "incremental-table-file" if incremental else "table-file",
            "path": f"media/table/{file_key(key)}_{step}_{sha256[:20]}.table.json",
            "sha256": sha256,
            "size": len(payload),
            "ncols": len(self.columns),
            "nrows": len(self.data),
            "log_mode": self.log_mode,
            "artifact_path": f"wandb-artifact://_id/{logged.id}/{entry_name}",
            "_latest_artifact_path": f"wandb-artifact://{logged.entity}/{logged.project}/{name}:latest/{entry_name}",
            "digest": store_media_bytes(run, payload),
        }  # fmt: skip
        if incremental:
            value["increment_num"] = self._increment_num
            value["previous_increments_paths"] = list(self._previous_increments_paths)
            self._last_logged_idx = len(self.data) - 1
        self._bound = (run, value)
        return dict(value)

    def _start_increments(self, run: Run, key: str) -> None:
        """An incremental table logs into one run; in a resumed run it continues the increments its last
        log under ``key`` recorded (the run's summary), as W&B's does."""
        if self._increments_run is not None:
            if self._increments_run is not run:
                raise ValueError(
                    f"An incremental Table can only be logged to one run; this one was logged to "
                    f"{self._increments_run.path!r}. Create a new table for {run.path!r}."
                )
            return
        self._increments_run = run
        last = run.summary.get(key) if run.resumed else None
        if isinstance(last, dict) and last.get("_type") == "incremental-table-file":
            self._previous_increments_paths = [*last.get("previous_increments_paths", []), last["artifact_path"]]
            self._increment_num = int(last.get("increment_num", 0)) + 1
        else:
            self._increment_num = 0


def sanitize_artifact_name(name: str) -> str:
    """``name`` made a valid artifact name as W&B's SDK does for run tables: characters other than letters,
    digits, ``_-.`` are dropped and, when any were, a CRC32 suffix keeps distinct keys apart
    (``run-abc-val/preds`` -> ``run-abc-valpreds-<6 chars>``)."""
    sanitized = re.sub(r"[^a-zA-Z0-9_\-.]+", "", name)
    if sanitized == name:
        return name
    crc = zlib.crc32(name.encode("utf-8")) & 0xFFFFFFFF
    suffix = base64.urlsafe_b64encode(crc.to_bytes(4, byteorder="big")).rstrip(b"=").decode("ascii")
    return f"{sanitized}-{suffix}"


def _per_column(value: Any, columns: list[str], what: str) -> list[Any]:
    # As W&B's _to_per_column: one value for every column, or a list with one per column.
    if isinstance(value, (list, tuple)):
        if len(value) != len(columns):
            raise ValueError(f"Table({what}=[...]) has {len(value)} items for {len(columns)} columns {columns}.")
        return list(value)
    return [value] * len(columns)


_KIND_OF_TYPE = {bool: "bool", int: "number", float: "number", str: "string", list: "list", dict: "dict"}


def _dtype_kind(dtype: Any, column: str) -> str | None:
    if dtype is None:
        return None
    if isinstance(dtype, type):
        if dtype in _KIND_OF_TYPE:
            return _KIND_OF_TYPE[dtype]
        if issubclass(dtype, WBValue):
            return dtype.__name__
    raise ValueError(
        f"Table column {column!r}: dtype {dtype!r} is not one of bool, int, float, str, list, dict or a W&B data "
        "type (wandb.Image...); give one of those, or leave dtype unset to take the type of the first value."
    )


def _kind(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, WBValue):
        return type(value).__name__
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return _KIND_OF_TYPE.get(type(value), type(value).__name__)


def _is_dataframe(value: Any) -> bool:
    # No pandas import to ask: a DataFrame's class says what it is.
    return type(value).__name__ == "DataFrame" and type(value).__module__.startswith("pandas")


def _cell(value: Any, column: str) -> Any:
    if isinstance(value, WBValue):
        if isinstance(value, Table):
            raise ValueError(f"Table column {column!r}: a table cannot hold a table; log it under a key of its own.")
        return value
    return json_value(value, f"Table column {column!r}")
