"""Downsampled history for charts: a run's numeric history keys, and each key's values in at most
``buckets`` buckets of steps, with each bucket's mean, minimum and maximum (W&B's run page shows a line
through the means and a band between the extremes, so a spike survives downsampling).

The bucketing is one SQL statement over the run's rows in the step range (the primary key ``(run_pk,
step)`` bounds the scan): each row's values are extracted once (SQLite: ``json_extract``, which reuses the
parsed row across a statement's calls; PostgreSQL: the row cast to ``jsonb`` once), grouped by bucket.
Only JSON numbers count: a string, a media value or a missing key is no point.

:func:`bucket_rows` is the same computation in Python, for rows already in memory (system metrics) and for
keys SQLite's JSON path syntax cannot name (a ``"`` in the key); tests hold the two to the same answer.
"""

from __future__ import annotations

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


def numeric_keys(conn: sa.Connection, run_pk: int) -> list[str]:
    """Every key that holds a JSON number in some history row of run ``run_pk``, sorted."""
    if conn.dialect.name == "postgresql":
        sql = sa.text(
            "SELECT DISTINCT e.key FROM run_history h, jsonb_each(h.row::jsonb) e "
            "WHERE h.run_pk = :pk AND jsonb_typeof(e.value) = 'number'"
        )
    else:
        sql = sa.text(
            "SELECT DISTINCT e.key FROM run_history h, json_each(h.row) e "
            "WHERE h.run_pk = :pk AND e.type IN ('integer', 'real')"
        )
    return sorted(conn.execute(sql, {"pk": run_pk}).scalars())


def _sqlite_path_ok(key: str) -> bool:
    # SQLite's JSON path quotes a label in "...", with no escape for a quote inside it.
    return '"' not in key and "\\" not in key


def buckets(
    conn: sa.Connection, run_pk: int, keys: Sequence[str], lo: int, hi: int, count: int
) -> dict[str, list[Point]]:
    """Each key's points over steps [lo, hi] in at most ``count`` buckets of equal width (a step each when
    the range is no wider than ``count``), ordered by step; a key with no number there has no points."""
    span = hi - lo + 1
    width_sql = count if span > count else span  # bucket = (step - lo) * width // span
    found: dict[str, list[Point]] = {key: [] for key in keys}
    sql_keys = [k for k in keys if conn.dialect.name == "postgresql" or _sqlite_path_ok(k)]
    for start in range(0, len(sql_keys), _KEYS_PER_STATEMENT):
        chunk = sql_keys[start : start + _KEYS_PER_STATEMENT]
        found.update(_bucket_statement(conn, run_pk, chunk, lo, hi, span, width_sql))
    odd = [k for k in keys if k not in sql_keys]
    if odd:  # rare keys SQL cannot name: the same buckets in Python over the rows of the range
        rows = conn.execute(
            sa.select(db.run_history.c.row).where(
                db.run_history.c.run_pk == run_pk, db.run_history.c.step.between(lo, hi)
            )
        ).scalars()
        found.update(bucket_rows(rows, odd, lo, hi, count))
    return found


def _bucket_statement(
    conn: sa.Connection, run_pk: int, keys: Sequence[str], lo: int, hi: int, span: int, width: int
) -> dict[str, list[Point]]:
    params: dict[str, Any] = {"pk": run_pk, "lo": lo, "hi": hi, "span": span, "width": width}
    inner, outer = [], []
    for i, key in enumerate(keys):
        if conn.dialect.name == "postgresql":
            params[f"k{i}"] = key
            inner.append(
                f"CASE WHEN jsonb_typeof(j.j -> :k{i}) = 'number' THEN (j.j ->> :k{i})::float8 END AS v{i}"
            )
        else:
            params[f"k{i}"] = f'$."{key}"'
            # json_type tells a number from true/false (json_extract gives 1/0 for both); SQLite keeps the
            # parsed row for the statement's later calls on it, so the row is parsed once.
            inner.append(
                f"CASE WHEN json_type(h.row, :k{i}) IN ('integer', 'real') THEN json_extract(h.row, :k{i}) END AS v{i}"
            )
        value = f"v{i}"
        outer.append(
            f"avg(CASE WHEN {value} IS NOT NULL THEN step END), avg({value}), min({value}), max({value})"
        )
    if conn.dialect.name == "postgresql":
        source = (
            "(SELECT h.step, h.row::jsonb AS j FROM run_history h "
            "WHERE h.run_pk = :pk AND h.step BETWEEN :lo AND :hi) AS j"
        )
        rows_sql = f"SELECT j.step AS step, {', '.join(inner)} FROM {source}"
    else:
        rows_sql = (
            f"SELECT h.step AS step, {', '.join(inner)} FROM run_history h "
            "WHERE h.run_pk = :pk AND h.step BETWEEN :lo AND :hi"
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
