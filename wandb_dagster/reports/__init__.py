"""Reports: W&B's Report API (``wandb_workspaces.reports.v2``) over the workspace.

Write ``import wandb_dagster.reports as wr`` where W&B has ``import wandb_workspaces.reports.v2 as wr``::

    >>> import wandb_dagster.reports as wr
    >>> report = wr.Report(project="bikes", title="Training", description="Loss of every run", blocks=[
    ...     wr.TableOfContents(),
    ...     wr.H2("Loss"),
    ...     wr.PanelGrid(runsets=[wr.Runset(filters="State = 'finished'")],
    ...                  panels=[wr.LinePlot(title="Train loss", x="Step", y=["loss"])]),
    ... ])                                                                              # doctest: +SKIP
    >>> url = report.save()     # prints and returns its URL in the app                   # doctest: +SKIP
    >>> url                                                                              # doctest: +SKIP
    'http://127.0.0.1:8600/<entity>/bikes/reports/Training--Vmlldzox'
    >>> wr.Report.from_url(url).to_html("training.html")   # one file, opens with no network   # doctest: +SKIP

``wandb-dagster ui`` shows saved reports at their URL. ``Api().reports("entity/project")`` lists them.
"""

from wandb_dagster.reports.blocks import (
    H1,
    H2,
    H3,
    BlockQuote,
    CalloutBlock,
    CodeBlock,
    HorizontalRule,
    Image,
    InlineCode,
    InlineLatex,
    LatexBlock,
    Link,
    MarkdownBlock,
    OrderedList,
    P,
    PanelGrid,
    TableOfContents,
    UnorderedList,
)
from wandb_dagster.reports.metrics import Config, Metric, SummaryMetric
from wandb_dagster.reports.panels import (
    BarPlot,
    LinePlot,
    MediaBrowser,
    ParallelCoordinatesPlot,
    ParallelCoordinatesPlotColumn,
    RunComparer,
    ScalarChart,
    ScatterPlot,
)
from wandb_dagster.reports.report import Report
from wandb_dagster.reports.runset import OrderBy, Runset

__all__ = [
    "H1",
    "H2",
    "H3",
    "BarPlot",
    "BlockQuote",
    "CalloutBlock",
    "CodeBlock",
    "Config",
    "HorizontalRule",
    "Image",
    "InlineCode",
    "InlineLatex",
    "LatexBlock",
    "LinePlot",
    "Link",
    "MarkdownBlock",
    "MediaBrowser",
    "Metric",
    "OrderBy",
    "OrderedList",
    "P",
    "PanelGrid",
    "ParallelCoordinatesPlot",
    "ParallelCoordinatesPlotColumn",
    "Report",
    "RunComparer",
    "Runset",
    "ScalarChart",
    "ScatterPlot",
    "SummaryMetric",
    "TableOfContents",
    "UnorderedList",
]

# Classes of W&B's Report API that are not offered here: naming one says so, rather than a bare AttributeError.
_NOT_OFFERED = {
    "Video", "Spotify", "SoundCloud", "Twitter", "Gallery", "GalleryReport", "GalleryURL", "CheckedList",
    "CheckedListItem", "WeaveBlock", "WeaveBlockSummaryTable", "WeaveBlockArtifact", "WeaveBlockArtifactVersionedFile",
    "WeavePanel", "WeavePanelSummaryTable", "WeavePanelArtifact", "WeavePanelArtifactVersionedFile", "CustomChart",
    "CodeComparer", "ParameterImportancePlot", "MarkdownPanel", "RunsetGroup", "RunsetGroupKey", "RunSettings",
    "GradientPoint", "Layout",
}


def __getattr__(name: str) -> object:
    if name in _NOT_OFFERED:
        raise AttributeError(
            f"wandb_dagster.reports has no {name} (W&B's Report API has it; it is not offered here). Blocks offered: "
            "H1, H2, H3, P, MarkdownBlock, CodeBlock, Image, HorizontalRule, TableOfContents, lists, BlockQuote, "
            "CalloutBlock, LatexBlock, PanelGrid; panels: LinePlot, BarPlot, ScalarChart, ScatterPlot, "
            "ParallelCoordinatesPlot, RunComparer, MediaBrowser"
        )
    raise AttributeError(f"module 'wandb_dagster.reports' has no attribute {name!r}")
