"""The values a run records (config, summary, history): JSON, with NumPy and torch scalars and arrays
converted, and NaN/Infinity written as strings (JSON has none; W&B shows them as strings too).

    >>> from wandb_dagster.sdk.values import json_value
    >>> json_value({"lr": 0.1, "bad": float("nan")}, "config")
    {'lr': 0.1, 'bad': 'nan'}
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any

# How deeply config, summary and history values may nest (docs/architecture.md, "Input limits"): deeper
# values would exhaust Python's recursion here and in the JSON encoders and database drivers.
MAX_NESTING_DEPTH = 100
# The largest JSON text (UTF-8 bytes) of a run's whole config or of an artifact version's metadata
# (docs/architecture.md, "Input limits"). The whole document is rewritten on each change and read back with
# every run or version listed, so a larger one makes every listing slow; PostgreSQL's jsonb also stops at
# 255 MB. Large data belongs in an artifact file. A value of a million floats (about 20 MB) is over it.
MAX_JSON_BYTES = 16 * 2**20


def check_json_size(value: Any, what: str) -> Any:
    """``value`` (already JSON-clean) when its compact JSON text is at most MAX_JSON_BYTES, else a ValueError
    naming ``what`` and the limit."""
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_JSON_BYTES:
        raise ValueError(
            f"{what} is {size:,} bytes as JSON; the limit is {MAX_JSON_BYTES:,} (MAX_JSON_BYTES). Store large "
            "data as an artifact file and record its name or a summary instead; nothing was saved."
        )
    return value


def _no_nul(text: str, key: str, what: str) -> str:
    # PostgreSQL cannot store NUL in text or jsonb; refusing it on both databases keeps them alike
    # (docs/architecture.md, "Input limits").
    if "\x00" in text:
        raise ValueError(
            f"{what} {text!r} for {key!r} contains a NUL character (\\x00), which cannot be stored; remove it."
        )
    return text


def json_value(value: Any, key: str, _depth: int = 0) -> Any:
    """``value`` as JSON; ``key`` names it in the error for a value that cannot be recorded.

    ``key`` is the full name the caller records the value under (``config.<key>``, a metric key), so a NUL
    in the user's top-level key is refused here too: every config, summary and history value passes here.
    """
    if _depth == 0:
        _no_nul(key, key, "Key")
    if isinstance(value, str):
        return _no_nul(value, key, "Value")
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if _depth >= MAX_NESTING_DEPTH and isinstance(value, (dict, list, tuple)):
        raise ValueError(
            f"Value for {key!r} nests deeper than {MAX_NESTING_DEPTH} levels (MAX_NESTING_DEPTH); flatten it."
        )
    if isinstance(value, dict):
        return {
            _no_nul(str(k), key, "Key"): json_value(v, f"{key}.{k}", _depth + 1) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [json_value(v, key, _depth + 1) for v in value]
    for attr in ("item", "tolist"):  # NumPy scalars and arrays, torch tensors
        convert = getattr(value, attr, None)
        if callable(convert):
            try:
                return json_value(convert(), key, _depth)
            except (TypeError, ValueError):
                continue  # an array of several values has no item(), but a tolist()
    raise ValueError(
        f"Value for {key!r} has type {type(value).__name__}, which cannot be recorded; log numbers, strings, "
        "booleans, lists or dicts of them."
    )


def iso_timestamp(moment: datetime) -> str:
    """``moment`` (aware) as the ISO 8601 text W&B's API gives for ``created_at`` and ``updated_at``: UTC with a
    ``Z``, so that W&B's documented ``datetime.fromisoformat(t.replace("Z", "+00:00"))`` works on it.

    >>> iso_timestamp(datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=timezone.utc))
    '2026-01-02T03:04:05.600000Z'
    """
    return moment.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
