"""Downsampled history for charts: a run's numeric history keys, and each key's values in at most
``buckets`` buckets of steps, with each bucket's mean, minimum and maximum (W&B's run page shows a line
through the means and a band between the extremes, so a spike survives downsampling).

Where the work is done depends on the database, by what measured fastest (bench/bench_app.py):

- PostgreSQL: one SQL statement. Each row of the step range (bounded by the primary key ``(run_pk,
  step)``) is cast to ``jsonb`` once and its values grouped by bucket in the server; only the points travel.
- SQLite: its JSON functions parse the row text again for every key (SQLite 3.40 keeps no parse across
  call sites), 4x slower than reading the rows of the range once and parsing each once here (orjson when
  installed, else the standard library), then bucketing with NumPy when installed (else in Python).

Only JSON numbers count: a string, a boolean, a media value or a missing key is no point.
:func:`bucket_rows` is the reference computation in Python; tests hold both paths to its answers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import Any, TypeGuard

import sqlalchemy as sa

from wandb_dagster.store import schema as db

# One point of a downsampled series: (x: the mean step of the bucket's points, mean, minimum, maximum).
Point = tuple[float, float, float, float]
# Keys per statement: each adds four aggregates; PostgreSQL allows 1,664 result columns, SQLite 2,000.
_KEYS_PER_STATEMENT = 100


def step_range(conn: sa.Connection, run_pk: int, min_step: int | None, max_step: int | None) -> tuple[int, int] | None:
    """The first and last step of run ``run_pk`` within [min_step, max_step], or None when none is there."""
    h = db.run_history.c
    where = [h.run_pk == run_pk]
    if min_step is not None:
        where.append(h.step >= min_step)
    if max_step is not None:
        where.append(h.step <= max_step)
    row = conn.execute(sa.select(sa.func.min(h.step), sa.func.max(h.step)).where(*where)).one()
    return None if row[0] is None else (int(row[0]), int(row[1]))


def numeric_keys(conn: sa.Connection, run_pk: int, lo: int | None = None, hi: int | None = None) -> list[str]:
    """Every key that holds a JSON number in some history row of run ``run_pk`` (steps [lo, hi]), sorted."""
    where = "h.run_pk = :pk" + ("" if lo is None or hi is None else " AND h.step BETWEEN :lo AND :hi")
    if conn.dialect.name == "postgresql":
        sql = sa.text(
            f"SELECT DISTINCT e.key FROM run_history h, jsonb_each(h.row::jsonb) e "
            f"WHERE {where} AND jsonb_typeof(e.value) = 'number'"
        )
    else:
        sql = sa.text(
            f"SELECT DISTINCT e.key FROM run_history h, json_each(h.row) e "
            f"WHERE {where} AND e.type IN ('integer', 'real')"
        )
    return sorted(conn.execute(sql, {"pk": run_pk, "lo": lo, "hi": hi}).scalars())


def buckets(
    conn: sa.Connection, run_pk: int, keys: Sequence[str] | None, lo: int, hi: int, count: int
) -> dict[str, list[Point]]:
    """Each key's points over steps [lo, hi] in at most ``count`` buckets of equal width (a step each when
    the range is no wider than ``count``), ordered by step; a key with no number there has no points.
    ``keys`` None: every key holding a number in the range, except W&B's own (``_step``, ``_runtime``...)."""
    if conn.dialect.name != "postgresql":
        return _read_and_bucket(conn, run_pk, keys, lo, hi, count)
    if keys is None:
        keys = [k for k in numeric_keys(conn, run_pk, lo, hi) if not k.startswith("_")]
    span = hi - lo + 1
    width = count if span > count else span  # bucket = (step - lo) * width // span
    found: dict[str, list[Point]] = {}
    for start in range(0, len(keys), _KEYS_PER_STATEMENT):
        chunk = list(keys[start : start + _KEYS_PER_STATEMENT])
        found.update(_bucket_statement(conn, run_pk, chunk, lo, hi, span, width))
    return found


def sample(
    conn: sa.Connection, run_pk: int, keys: Sequence[str] | None, lo: int, hi: int, count: int
) -> tuple[dict[str, list[Point]], bool]:
    """A quick view for a first drawing: the rows at ``count`` evenly spaced positions of the range (the
    steps come from the primary key alone; only those rows are read and parsed), each value a point of its
    own (min = max = mean). Returns the points and whether every row of the range was taken (then the view
    is exact: :func:`buckets` would give the same)."""
    h = db.run_history.c
    steps = list(
        conn.execute(
            sa.select(h.step).where(h.run_pk == run_pk, h.step.between(lo, hi)).order_by(h.step)
        ).scalars()
    )
    exact = len(steps) <= count
    if exact:
        chosen = steps
    elif count == 1:
        chosen = steps[:1]
    else:
        chosen = sorted({steps[(i * (len(steps) - 1)) // (count - 1)] for i in range(count)})
    text = sa.cast(h.row, sa.Text) if conn.dialect.name == "postgresql" else sa.type_coerce(h.row, sa.Text)
    texts = conn.execute(
        sa.select(text).where(h.run_pk == run_pk, h.step.in_(chosen)).order_by(h.step)
    ).scalars()
    loads = _loads()
    rows = [loads(t) for t in texts]
    if keys is None:
        names = sorted(k for k in set().union(*rows) if not k.startswith("_")) if rows else []
    else:
        names = list(keys)
    # A bucket per step, so every row read is a point of its own.
    found = bucket_rows(rows, names, lo, hi, hi - lo + 1)
    return {k: v for k, v in found.items() if v or keys is not None}, exact


def _loads() -> Any:
    try:
        import orjson
    except ImportError:
        return json.loads

    def loads(text: str) -> Any:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:  # e.g. an integer beyond 64 bits, which json reads
            return json.loads(text)

    return loads


def _read_and_bucket(
    conn: sa.Connection, run_pk: int, keys: Sequence[str] | None, lo: int, hi: int, count: int
) -> dict[str, list[Point]]:
    h = db.run_history.c
    query = (
        sa.select(h.step, sa.type_coerce(h.row, sa.Text))  # the stored text: parsed once, below
        .where(h.run_pk == run_pk, h.step.between(lo, hi))
        .order_by(h.step)
    )
    result = conn.execute(query).all()
    loads = _loads()
    rows = [loads(text) for _, text in result]
    every = keys is None
    if keys is None:  # every key of the range: those holding no number come out empty, and are dropped
        keys = sorted(k for k in set().union(*rows) if not k.startswith("_")) if rows else []
    try:
        import numpy as np
    except ImportError:
        in_python = bucket_rows(rows, keys, lo, hi, count)
        return {k: v for k, v in in_python.items() if v or not every}
    span = hi - lo + 1
    width = count if span > count else span
    steps = np.fromiter((step for step, _ in result), dtype=np.float64, count=len(result))
    bucket_of = ((steps - lo) * width // span).astype(np.int64)
    nan = float("nan")
    found: dict[str, list[Point]] = {}
    for key in keys:
        values = np.array(
            [v if (v.__class__ is float or v.__class__ is int) else nan for v in (r.get(key) for r in rows)],
            dtype=np.float64,
        )
        present = ~np.isnan(values)
        if not present.any():
            if not every:
                found[key] = []
            continue
        v, b, x = values[present], bucket_of[present], steps[present]
        starts = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])
        sizes = np.diff(np.r_[starts, len(v)])
        xs = np.add.reduceat(x, starts) / sizes
        means = np.add.reduceat(v, starts) / sizes
        lows, highs = np.minimum.reduceat(v, starts), np.maximum.reduceat(v, starts)
        found[key] = list(zip(xs.tolist(), means.tolist(), lows.tolist(), highs.tolist(), strict=True))
    return found


def _bucket_statement(
    conn: sa.Connection, run_pk: int, keys: Sequence[str], lo: int, hi: int, span: int, width: int
) -> dict[str, list[Point]]:
    # PostgreSQL: the row cast to jsonb once, each key looked up in the binary form.
    params: dict[str, Any] = {"pk": run_pk, "lo": lo, "hi": hi, "span": span, "width": width}
    inner, outer = [], []
    for i, key in enumerate(keys):
        params[f"k{i}"] = key
        inner.append(f"CASE WHEN jsonb_typeof(j.j -> :k{i}) = 'number' THEN (j.j ->> :k{i})::float8 END AS v{i}")
        outer.append(f"avg(CASE WHEN v{i} IS NOT NULL THEN step END), avg(v{i}), min(v{i}), max(v{i})")
    # OFFSET 0 keeps the planner from inlining each subquery: inlined, the cast (and each value) would be
    # computed once per reference, 4 x keys times per row (minutes for 100,000 rows of 20 keys).
    rows_sql = (
        f"SELECT j.step AS step, {', '.join(inner)} FROM (SELECT h.step, h.row::jsonb AS j FROM run_history h "
        "WHERE h.run_pk = :pk AND h.step BETWEEN :lo AND :hi OFFSET 0) AS j OFFSET 0"
    )
    sql = (
        f"SELECT (r.step - :lo) * :width / :span AS b, {', '.join(outer)} FROM ({rows_sql}) AS r "
        "GROUP BY b ORDER BY b"
    )
    found: dict[str, list[Point]] = {key: [] for key in keys}
    for row in conn.execute(sa.text(sql), params):
        for i, key in enumerate(keys):
            x, mean, low, high = row[1 + 4 * i : 5 + 4 * i]
            if x is not None and mean is not None:
                found[key].append((float(x), float(mean), float(low), float(high)))
    return found


def bucket_rows(
    rows: Iterable[dict[str, Any]], keys: Sequence[str], lo: int, hi: int, count: int, x_key: str = "_step"
) -> dict[str, list[Point]]:
    """:func:`buckets` over rows in memory: bucket by ``x_key`` (a number in each row) over [lo, hi]."""
    span = hi - lo + 1
    width = count if span > count else span
    acc: dict[str, dict[int, list[float]]] = {key: {} for key in keys}
    for row in rows:
        x = row.get(x_key)
        if not _is_number(x) or not lo <= x <= hi:
            continue
        b = int((x - lo) * width // span)
        for key in keys:
            v = row.get(key)
            if not _is_number(v):
                continue
            value = float(v)
            cell = acc[key].get(b)
            if cell is None:
                acc[key][b] = [float(x), value, value, value, 1.0]
            else:
                cell[0] += x
                cell[1] += value
                cell[2] = min(cell[2], value)
                cell[3] = max(cell[3], value)
                cell[4] += 1
    return {
        key: [(c[0] / c[4], c[1] / c[4], float(c[2]), float(c[3])) for _, c in sorted(acc[key].items())]
        for key in keys
    }


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def media_rows(conn: sa.Connection, run_pk: int, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` history rows of run ``run_pk`` holding a media value (W&B's JSON forms carry a
    ``"_type"``), newest first. Found by a text match on the stored row, so the other rows are not parsed."""
    # A run that logged no media has no run_blobs rows (written with the rows naming them): no scan then.
    if conn.execute(sa.select(db.run_blobs.c.hex).where(db.run_blobs.c.run_pk == run_pk).limit(1)).first() is None:
        return []
    h = db.run_history.c
    text = sa.cast(h.row, sa.Text) if conn.dialect.name == "postgresql" else sa.type_coerce(h.row, sa.Text)
    query = (
        sa.select(h.row)
        .where(h.run_pk == run_pk, text.like('%"\\_type"%', escape="\\"))
        .order_by(h.step.desc())
        .limit(limit)
    )
    return list(conn.execute(query).scalars())


def names_blob(conn: sa.Connection, run_pk: int, hexdigest: str) -> bool:
    """Whether run ``run_pk`` names blob ``hexdigest``: a media value of its history or summary, or one of
    its files."""
    media = sa.select(db.run_blobs.c.hex).where(db.run_blobs.c.run_pk == run_pk, db.run_blobs.c.hex == hexdigest)
    files = sa.select(db.run_files.c.digest).where(
        db.run_files.c.run_pk == run_pk, db.run_files.c.digest == hexdigest
    )
    return conn.execute(media.union_all(files).limit(1)).first() is not None
