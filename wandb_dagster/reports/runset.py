"""``Runset`` and ``OrderBy``: which runs a panel grid shows, as W&B's Report API names them, mapped to the
query of ``Api().runs`` (a Mongo-style filter and an order).

``filters`` takes W&B's filter expressions (``"Config('lr') = 0.01 and State = 'finished'"``; operators
``=``/``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``in``, ``not in``, ``within_last N minutes|hours|days``;
``and``, ``or``, ``not`` and parentheses) or the Mongo-style dict that ``Api().runs(filters=...)`` takes.
Differences from W&B, on purpose: ``<`` and ``>`` stay strict (W&B turns them into ``<=``/``>=`` with a
warning), and an expression is checked when the run set is built, so a typo fails there.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from wandb_dagster.reports._model import model, text
from wandb_dagster.reports.metrics import Config, Metric, MetricType, SummaryMetric, check_metric

# W&B's names of run attributes (as the app shows them) -> the run field Api().runs filters on.
RUN_ATTRIBUTES = {
    "ID": "name",
    "Name": "displayName",
    "Tags": "tags",
    "State": "state",
    "CreatedTimestamp": "createdAt",
    "Runtime": "duration",
    "User": "username",
    "Sweep": "sweep",
    "Group": "group",
    "JobType": "jobType",
    "Hostname": "host",
}
_FIELDS = set(RUN_ATTRIBUTES.values()) | {"display_name", "created_at", "job_type"}
_EXAMPLE = "\"Config('lr') = 0.01 and State = 'finished'\""
_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}
_STRING = r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\""
_WITHIN = re.compile(
    r"((?:Metric|Summary|SummaryMetric|Config|Tags)\s*\([^)]*\)|\w+)\s+within_last\s+(\d+(?:\.\d+)?)\s+['\"]?(\w+)['\"]?"
)
_OPS = {
    ast.Eq: "$eq",
    ast.NotEq: "$ne",
    ast.Lt: "$lt",
    ast.LtE: "$lte",
    ast.Gt: "$gt",
    ast.GtE: "$gte",
    ast.In: "$in",
    ast.NotIn: "$nin",
}


class FilterError(ValueError):
    """A run set's ``filters`` expression that cannot be read."""


def parse_filters(expression: str, now: datetime | None = None) -> dict[str, Any]:
    """The Mongo-style filter of W&B filter ``expression`` (``{}`` for an empty one).

    >>> parse_filters("Config('lr') = 0.01 and State != 'crashed'")
    {'$and': [{'config.lr': 0.01}, {'state': {'$ne': 'crashed'}}]}
    """
    if not expression.strip():
        return {}
    now = now or datetime.now(timezone.utc)
    try:
        source = _outside_strings(expression, lambda part: _WITHIN.sub(r"WithinLast(\1, \2, '\3')", part))
        source = _outside_strings(source, lambda part: re.sub(r"(?<![!<>=])=(?!=)", "==", part))
        tree = ast.parse(source.strip(), mode="eval").body
        return _node(tree, now)
    except FilterError as exc:
        raise FilterError(f"run set filter {expression!r} is invalid: {exc}. {_HOW}") from None
    except SyntaxError as exc:
        raise FilterError(f"run set filter {expression!r} is invalid: {exc.msg}. {_HOW}") from None


_HOW = (
    f"Write W&B's filter expressions, e.g. {_EXAMPLE} (Config('key'), SummaryMetric('key'), Tags(), run "
    f"attributes {sorted(RUN_ATTRIBUTES)}; operators =, !=, <, <=, >, >=, in, not in, within_last N days; and, or, "
    "not), or a Mongo-style dict as Api().runs takes, e.g. {'config.lr': {'$gte': 0.01}}"
)


def _outside_strings(source: str, change: Any) -> str:
    parts = re.split(f"({_STRING})", source)
    return "".join(part if i % 2 else change(part) for i, part in enumerate(parts))


def _node(node: ast.AST, now: datetime) -> dict[str, Any]:
    if isinstance(node, ast.BoolOp):
        return {"$and" if isinstance(node.op, ast.And) else "$or": [_node(v, now) for v in node.values]}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return {"$nor": [_node(node.operand, now)]}
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "WithinLast":
        if len(node.args) != 3:
            raise FilterError("within_last takes a number and a unit: CreatedTimestamp within_last 5 days")
        field = _field(node.args[0])
        amount, unit = _value(node.args[1]), _value(node.args[2])
        if field not in ("createdAt", "created_at") or unit not in _UNITS or not isinstance(amount, (int, float)):
            raise FilterError(
                "within_last works on CreatedTimestamp, with minutes, hours or days: "
                "CreatedTimestamp within_last 5 days"
            )
        since = now - timedelta(seconds=float(amount) * _UNITS[unit])
        return {"createdAt": {"$gte": since.isoformat()}}
    if isinstance(node, ast.Compare):
        if len(node.ops) != 1:
            raise FilterError("compare two things at a time; join comparisons with 'and'")
        field, op, value = _field(node.left), _OPS.get(type(node.ops[0])), _value(node.comparators[0])
        if op is None:
            raise FilterError(f"operator {type(node.ops[0]).__name__} is not supported")
        if op in ("$in", "$nin") and not isinstance(value, list):
            raise FilterError(f"'in' takes a list, e.g. State in ['finished', 'running'], not {value!r}")
        return {field: value if op == "$eq" else {op: value}}
    raise FilterError(f"{ast.unparse(node)!r} is not a comparison")


def _field(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return _attribute(node.id)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        kind, args = node.func.id, node.args
        if kind == "Tags" and not args:
            return "tags"
        if len(args) == 1 and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str):
            name = args[0].value
            if kind == "Config":
                return f"config.{name}"
            if kind in ("SummaryMetric", "Summary"):
                return f"summary_metrics.{name}"
            if kind == "Metric":
                return _attribute(name)
        raise FilterError(
            f"{ast.unparse(node)!r} names no field; use Config('key'), SummaryMetric('key'), Metric('State') or Tags()"
        )
    raise FilterError(f"{ast.unparse(node)!r} names no field")


def _attribute(name: str) -> str:
    if name in RUN_ATTRIBUTES:
        return RUN_ATTRIBUTES[name]
    if name in _FIELDS:
        return name
    raise FilterError(
        f"{name!r} is not a run attribute (those are {sorted(RUN_ATTRIBUTES)}); a config or summary "
        "key is Config('key') or SummaryMetric('key')"
    )


def _value(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_value(e) for e in node.elts]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _value(node.operand)
        if isinstance(inner, (int, float)) and not isinstance(inner, bool):
            return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.Name) and node.id in ("None", "True", "False"):
        return {"None": None, "True": True, "False": False}[node.id]
    raise FilterError(f"{ast.unparse(node)!r} is not a value (a number, a quoted string, True, False, None or a list)")


@model
class OrderBy:
    """Sort a run set: ``OrderBy("CreatedTimestamp")``, ``OrderBy(SummaryMetric("acc"), ascending=False)``."""

    name: MetricType
    ascending: bool = False

    def __post_init__(self) -> None:
        check_metric("OrderBy", "name", self.name)
        if not isinstance(self.ascending, bool):
            raise ValueError(f"OrderBy(ascending={self.ascending!r}) is invalid; use True or False")
        order_key(self.name)

    def api_order(self) -> str:
        """The order string of ``Api().runs`` for this key."""
        return ("+" if self.ascending else "-") + order_key(self.name)


def order_key(name: MetricType) -> str:
    if isinstance(name, Config):
        return f"config.{name.name}.value"
    if isinstance(name, SummaryMetric):
        return f"summary_metrics.{name.name}"
    raw = name.name if isinstance(name, Metric) else name
    if raw in ("CreatedTimestamp", "createdAt", "created_at"):
        return "created_at"
    if raw in ("HeartbeatAt", "heartbeatAt", "heartbeat_at"):
        return "heartbeat_at"
    if raw.startswith("config."):
        return raw if raw.endswith(".value") else f"{raw}.value"
    if raw.startswith("summary."):
        return "summary_metrics." + raw[len("summary.") :]
    if raw.startswith("summary_metrics."):
        return raw
    if isinstance(name, str) and raw in RUN_ATTRIBUTES:
        raise ValueError(
            f"OrderBy({raw!r}) is not supported; runs sort by CreatedTimestamp, HeartbeatAt, "
            "Config('key') or SummaryMetric('key')"
        )
    return f"summary_metrics.{raw}"


def _default_order() -> list[OrderBy]:
    return [OrderBy("CreatedTimestamp", ascending=False)]


@model
class Runset:
    """The runs a :class:`~wandb_dagster.reports.PanelGrid` shows: those of ``entity/project`` (default: the
    report's) matching ``query`` (a regular expression on run names) and ``filters``, sorted by ``order`` (the
    first key; W&B's default is newest first), grouped by ``groupby`` (``"group"``, ``"config.<key>"``,
    ``"summary.<key>"``, ``"job_type"``).

    >>> Runset(project="bikes", filters="Config('lr') <= 0.01", groupby=["config.layers"])  # doctest: +SKIP
    """

    entity: str = ""
    project: str = ""
    name: str = "Run set"
    query: str = ""
    filters: str | dict[str, Any] = ""
    groupby: list[str] = dataclasses.field(default_factory=list)
    order: list[OrderBy] = dataclasses.field(default_factory=_default_order)

    def __post_init__(self) -> None:
        for name in ("entity", "project", "name", "query"):
            text("Runset", name, getattr(self, name))
        if isinstance(self.filters, str):
            parse_filters(self.filters)  # checked now, evaluated (within_last: against the clock) when read
        elif not isinstance(self.filters, dict):
            raise ValueError(f"Runset(filters={self.filters!r}) is invalid. {_HOW}")
        if isinstance(self.groupby, str):
            self.groupby = [self.groupby]
        if not isinstance(self.groupby, list) or not all(isinstance(g, str) and g for g in self.groupby):
            raise ValueError(
                f"Runset(groupby={self.groupby!r}) is invalid; give a list of keys, e.g. ['group'] or ['config.lr']"
            )
        if isinstance(self.order, OrderBy):
            self.order = [self.order]
        if not isinstance(self.order, list) or not all(isinstance(o, OrderBy) for o in self.order):
            raise ValueError(
                f"Runset(order={self.order!r}) is invalid; give a list of OrderBy, e.g. "
                "[OrderBy(SummaryMetric('acc'), ascending=False)]"
            )

    def api_filters(self) -> dict[str, Any] | None:
        """The Mongo-style filter of ``Api().runs`` for this run set (None: every run)."""
        parts = []
        mongo = parse_filters(self.filters) if isinstance(self.filters, str) else self.filters
        if mongo:
            parts.append(mongo)
        if self.query:
            parts.append({"$or": [{"displayName": {"$regex": self.query}}, {"name": {"$regex": self.query}}]})
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else {"$and": parts}

    def api_order(self) -> str:
        return self.order[0].api_order() if self.order else "-created_at"


def group_value(run: Any, key: str) -> Any:
    """The value of groupby ``key`` for an Api run."""
    from wandb_dagster.reports.metrics import run_value

    bare = key.removeprefix("run.")
    attributes = {
        "group": "group",
        "Group": "group",
        "job_type": "job_type",
        "JobType": "job_type",
        "jobType": "job_type",
        "state": "state",
        "State": "state",
        "username": "username",
    }
    if bare in attributes:
        return getattr(run, attributes[bare])
    return run_value(run, key)
