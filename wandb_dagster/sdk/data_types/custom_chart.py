"""Custom charts (``wandb.plot_table`` and the ``wandb.plot`` presets): a :class:`Table` plus the name of
the Vega spec that draws it and the columns it reads.

Logging one does what W&B's SDK does: ``run.log({"my_chart": chart})`` logs the table under
``my_chart_table`` (``Custom Chart Tables/my_chart_table`` with ``split_table=True``) and records the panel
in the run's config under ``_wandb.visualize.my_chart``.

    >>> import wandb_dagster as wandb
    >>> table = wandb.Table(columns=["x", "y"], data=[[1, 1], [2, 4]])
    >>> chart = wandb.plot_table("wandb/line/v0", table, {"x": "x", "y": "y"}, {"title": "Squares"})
    >>> chart.spec.spec_name
    'wandb/line/v0'
    >>> run.log({"squares": chart})                                       # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wandb_dagster.sdk.data_types.table import Table

if TYPE_CHECKING:
    from wandb_dagster.sdk.run import Run


@dataclass
class CustomChartSpec:
    """Which Vega spec draws the chart (``spec_name``), its column ``fields`` and text ``string_fields``."""

    spec_name: str
    fields: dict[str, Any]
    string_fields: dict[str, Any]
    key: str = ""
    panel_type: str = "Vega2"
    split_table: bool = False

    @property
    def table_key(self) -> str:
        """The history key the chart's table is logged under."""
        if not self.key:
            raise ValueError("The custom chart has no key yet: it gets the key it is logged under in run.log().")
        return f"Custom Chart Tables/{self.key}_table" if self.split_table else f"{self.key}_table"

    @property
    def config_value(self) -> dict[str, Any]:
        """The panel W&B records in the run config (``_wandb.visualize.<key>``)."""
        run_sets_query = {
            "name": "runSets",
            "args": [{"name": "runSets", "value": "${runSets}"}],
            "fields": [
                {"name": "id", "fields": []},
                {"name": "name", "fields": []},
                {"name": "_defaultColorIndex", "fields": []},
                {"name": "summaryTable", "args": [{"name": "tableKey", "value": self.table_key}], "fields": []},
            ],
        }
        return {
            "panel_type": self.panel_type,
            "panel_config": {
                "panelDefId": self.spec_name,
                "fieldSettings": self.fields,
                "stringSettings": self.string_fields,
                "transform": {"name": "tableWithLeafColNames"},
                "userQuery": {"queryFields": [run_sets_query]},
            },
        }


@dataclass
class CustomChart:
    """A chart to log with ``run.log``: its :class:`Table` and its :class:`CustomChartSpec`."""

    table: Table
    spec: CustomChartSpec

    def set_key(self, key: str) -> None:
        self.spec.key = key


def plot_table(
    vega_spec_name: str,
    data_table: Table,
    fields: dict[str, Any],
    string_fields: dict[str, Any] | None = None,
    split_table: bool = False,
) -> CustomChart:
    """``wandb.plot_table``: a custom chart of ``data_table`` drawn by the Vega spec ``vega_spec_name``."""
    if not isinstance(data_table, Table):
        raise TypeError(f"plot_table() takes a wandb.Table as data_table, got {type(data_table).__name__}.")
    spec = CustomChartSpec(vega_spec_name, dict(fields), dict(string_fields or {}), split_table=split_table)
    return CustomChart(table=data_table, spec=spec)


def log_charts(run: Run, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with each chart (nested ones too, keyed by their dotted path) replaced by its table under
    ``spec.table_key`` at the top level; the panels go into the run's config under ``_wandb.visualize``, as
    W&B's SDK does (``_serialize_custom_charts``)."""
    data = dict(data)
    charts = _pop_charts(data, None)
    if not charts:
        return data
    internal = dict(run.config.get("_wandb") or {})
    visualize = dict(internal.get("visualize") or {})
    for key, chart in charts.items():
        chart.set_key(key)
        visualize[key] = chart.spec.config_value
        data[chart.spec.table_key] = chart.table
    internal["visualize"] = visualize
    run.config["_wandb"] = internal
    return data


def _pop_charts(data: dict[str, Any], prefix: str | None) -> dict[str, CustomChart]:
    charts: dict[str, CustomChart] = {}
    for key, value in list(data.items()):
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, CustomChart):
            charts[path] = data.pop(key)
        elif isinstance(value, dict) and any(isinstance(v, (CustomChart, dict)) for v in value.values()):
            value = dict(value)  # the caller's dict stays as it was
            charts.update(_pop_charts(value, path))
            data[key] = value
    return charts
