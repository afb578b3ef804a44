"""``wandb.plot``: W&B's preset custom charts (``line``, ``scatter``, ``bar``, ``histogram``,
``line_series``, ``confusion_matrix``); see :mod:`wandb_dagster.sdk.data_types.plot`.

    >>> import wandb_dagster as wandb
    >>> table = wandb.Table(columns=["x", "y"], data=[[1, 1], [2, 4]])
    >>> wandb.plot.scatter(table, "x", "y").spec.spec_name
    'wandb/scatter/v0'
"""

from wandb_dagster.sdk.data_types.custom_chart import CustomChart
from wandb_dagster.sdk.data_types.plot import bar, confusion_matrix, histogram, line, line_series, plot_table, scatter

__all__ = ["CustomChart", "bar", "confusion_matrix", "histogram", "line", "line_series", "plot_table", "scatter"]
