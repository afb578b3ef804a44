"""``Report``: a report in the workspace, as W&B's ``wandb_workspaces.reports.v2.Report``.

``save()`` stores it (a new id the first time, the same report afterwards), prints its URL in the local app
(``wandb-dagster ui``) and returns it; ``Report.from_url(url)`` loads it back; ``to_html(path)`` writes one
self-contained HTML file (charts, data and script inside; it opens with no network).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import html
import mimetypes
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from wandb_dagster.reports._model import choice, model, text, to_spec
from wandb_dagster.reports.blocks import Block, Image, PanelGrid, check_blocks
from wandb_dagster.settings import DEFAULT_APP_URL
from wandb_dagster.storage.uri_credentials import redact

WIDTHS = ("readable", "fixed", "fluid")
SPEC_VERSION = 1
MAX_TITLE = 128  # W&B's limit
MAX_EMBEDDED_IMAGE = 10 * 1024 * 1024


@model
class Report:
    """A report: ``title`` and ``description`` above ``blocks``, in ``entity/project``.

    >>> import wandb_dagster.reports as wr
    >>> report = wr.Report(project="bikes", title="Training", blocks=[
    ...     wr.H2("Loss"), wr.PanelGrid(panels=[wr.LinePlot(x="Step", y=["loss"])])])   # doctest: +SKIP
    >>> url = report.save()          # http://127.0.0.1:8600/<entity>/bikes/reports/Training--Vmlldzox  # doctest: +SKIP
    >>> wr.Report.from_url(url).title                                                   # doctest: +SKIP
    'Training'
    """

    project: str
    entity: str = ""
    title: str = "Untitled Report"
    description: str = ""
    blocks: list[Block] = dataclasses.field(default_factory=list)
    width: str = "readable"
    id: str = dataclasses.field(default="", init=False)
    created_at: datetime | None = dataclasses.field(default=None, init=False, repr=False, compare=False)
    updated_at: datetime | None = dataclasses.field(default=None, init=False, repr=False, compare=False)
    _api: Any = dataclasses.field(default=None, init=False, repr=False, compare=False)
    _username: str | None = dataclasses.field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.project, str) or not self.project or "/" in self.project:
            raise ValueError(f"Report(project={self.project!r}) is invalid; give the project's name, e.g. 'bikes'")
        text("Report", "entity", self.entity)
        if not self.entity:
            self.entity = self._workspace_api().default_entity
        text("Report", "title", self.title)
        if not self.title.strip() or len(self.title) > MAX_TITLE:
            raise ValueError(f"Report(title={self.title!r}) is invalid; give 1 to {MAX_TITLE} characters")
        text("Report", "description", self.description)
        choice("Report", "width", self.width, WIDTHS)
        check_blocks("Report(blocks=...)", self.blocks)

    # ------------------------------------------------------------------ where it is

    @property
    def url(self) -> str:
        """The report's page in the local app: ``<app>/<entity>/<project>/reports/<Title>--<id>``, where
        ``<app>`` is ``WANDB_DAGSTER_APP_URL`` (or the settings' ``app_url``), else http://127.0.0.1:8600."""
        if not self.id:
            raise AttributeError("the report has no URL yet: save() it first (or load it with Report.from_url)")
        app = self._workspace_api().settings.app_url or DEFAULT_APP_URL
        return f"{app}/{self.path}"

    @property
    def path(self) -> str:
        """``entity/project/reports/<Title>--<id>``, the form ``Api().from_path`` takes."""
        if not self.id:
            raise AttributeError("the report has no path yet: save() it first")
        return (
            "/".join(quote(p, safe="") for p in (self.entity, self.project)) + f"/reports/{slug(self.title)}--{self.id}"
        )

    # ------------------------------------------------------------------ storing

    def save(self, draft: bool = False, clone: bool = False) -> str:
        """Store the report in the workspace (a new report the first time or with ``clone=True``, else the
        same one again), print its URL and return it.

        Every block is checked again first (they may have been changed since they were built), run sets'
        filters are tried against the workspace, and local image files are embedded, so what is saved shows.
        ``draft`` is accepted for W&B compatibility: there are no drafts, every save is published.
        """
        self.__post_init__()
        for block in self._all_blocks():
            # Re-run each block's checks: attributes may have been assigned since it was built.
            post_init = getattr(block, "__post_init__", None)
            if post_init is not None:
                post_init()
        api = self._workspace_api()
        self._check_runsets(api)
        spec = {"version": SPEC_VERSION, "blocks": [to_spec(b) for b in embed_images(self.blocks)]}
        store = api._store
        if self.id and not clone:
            try:
                record = store.update_report(
                    self.id, title=self.title, description=self.description, width=self.width, spec=spec
                )
            except LookupError:
                raise ValueError(
                    f"report {self.id!r} no longer exists in the workspace (deleted?); save it as a new "
                    "report with save(clone=True)"
                ) from None
        else:
            record = store.create_report(
                self.entity,
                self.project,
                title=self.title,
                description=self.description,
                width=self.width,
                spec=spec,
                username=api.settings.username,
            )
        self._load(record)
        url = self.url
        print(f"wandb: Saved report to: {url}", file=sys.stderr)
        return url

    # ------------------------------------------------------------------ W&B's BetaReport (Api().reports)

    @property
    def display_name(self) -> str:
        """The title, as W&B's ``BetaReport.display_name``."""
        return self.title

    @property
    def name(self) -> str:
        """The report's id (W&B's internal view name; use ``title`` for what people read)."""
        return self.id

    @property
    def user(self) -> dict[str, Any] | None:
        """Who saved the report first: ``{"username": ...}``, or None for a report not saved yet."""
        return None if self._username is None else {"username": self._username}

    @property
    def spec(self) -> dict[str, Any]:
        """The report's blocks in the JSON form it is saved in."""
        return {"version": SPEC_VERSION, "width": self.width, "blocks": [to_spec(b) for b in self.blocks]}

    @property
    def sections(self) -> list[PanelGrid]:
        """The panel grids of the report, in order (W&B's ``BetaReport.sections``)."""
        return [b for b in self._all_blocks() if isinstance(b, PanelGrid)]

    def runs(self, section: PanelGrid | int, per_page: int = 50, only_selected: bool = True) -> list[Any]:
        """The Api runs a panel grid (or its index among :attr:`sections`) shows, run set after run set."""
        from wandb_dagster.reports.data import runset_runs

        grids = self.sections
        if isinstance(section, int):
            if not 0 <= section < len(grids):
                raise ValueError(f"section {section} is not one of the report's {len(grids)} panel grids")
            section = grids[section]
        if not isinstance(section, PanelGrid):
            raise ValueError(f"section={section!r} is invalid; give a PanelGrid of the report or its index")
        api = self._workspace_api()
        return [run for runset in section.runsets for run in runset_runs(api, runset, self.entity, self.project)]

    def delete(self) -> bool:
        """Delete the saved report; False when it was not there (any more)."""
        if not self.id:
            raise AttributeError("the report was never saved, so there is nothing to delete")
        return bool(self._workspace_api()._store.delete_report(self.id))

    @classmethod
    def from_url(cls, url: str) -> Report:
        """The saved report at ``url`` (its URL, or its path ``entity/project/reports/<Title>--<id>``)."""
        from wandb_dagster.api import Api

        return load(Api(), report_id_from_url(url))

    # ------------------------------------------------------------------ showing

    def to_html(self, path: str | Path | None = None, height: int = 1024, hidden: bool = False) -> str:
        """Write the report to ``path`` as one self-contained HTML file (uPlot, the chart code and the data
        inside: it opens from disk with no network) and return the path.

        Without ``path`` (W&B's ``to_html(height, hidden)``, for notebooks): an ``<iframe>`` holding that same
        page inline (``srcdoc``), so it shows without the app running and whatever the app's framing policy.
        """
        if path is None or isinstance(path, int):
            if isinstance(path, int):
                height = path
            style = f"border:none;width:100%;height:{int(height)}px;" + ("display:none;" if hidden else "")
            page = self._standalone()
            return f'<iframe srcdoc="{html.escape(page, quote=True)}" style="{style}"></iframe>'
        target = Path(path)
        target.write_text(self._standalone(), encoding="utf-8")
        return str(target)

    def _standalone(self) -> str:
        from wandb_dagster.reports.render import standalone_html

        shown = dataclasses.replace(self, blocks=embed_images(self.blocks))
        shown._api, shown.id = self._api, self.id
        return standalone_html(shown, self._workspace_api())

    def _repr_html_(self) -> str:
        return self.to_html()

    # ------------------------------------------------------------------ internals

    def _workspace_api(self) -> Any:
        if self._api is None:
            from wandb_dagster.api import Api

            self._api = Api()
        return self._api

    def _all_blocks(self) -> list[Any]:
        out: list[Any] = []

        def walk(blocks: list[Any]) -> None:
            for block in blocks:
                out.append(block)
                for child in getattr(block, "collapsed_blocks", None) or []:
                    walk([child])
                if isinstance(block, PanelGrid):
                    out.extend(block.runsets)
                    out.extend(block.panels)

        walk(self.blocks)
        return out

    def _check_runsets(self, api: Any) -> None:
        for block in self._all_blocks():
            if isinstance(block, PanelGrid):
                for runset in block.runsets:
                    try:
                        runs = api.runs(
                            f"{runset.entity or self.entity}/{runset.project or self.project}",
                            filters=runset.api_filters(),
                            order=runset.api_order(),
                            per_page=1,
                        )
                        next(iter(runs), None)  # the first page's query compiles (and so checks) the filter
                    except ValueError as exc:
                        raise ValueError(f"run set {runset.name!r} cannot be read: {exc}") from None

    def _load(self, record: Any) -> None:
        self.id, self._username = record.id, record.username
        self.created_at, self.updated_at = record.created_at, record.updated_at


def slug(title: str) -> str:
    """The title part of a report URL: W&B's, spaces as dashes; characters a path cannot hold become dashes."""
    return quote(re.sub(r"[\s/?#%\\]+", "-", title.strip()), safe="-_.~")


def report_id_from_url(url: str) -> str:
    """The id in a report URL or path (``.../reports/<Title>--<id>``)."""
    parts = (
        [unquote(p) for p in urlsplit(url).path.split("/") if p]
        if "://" in url
        else [unquote(p) for p in url.split("?")[0].split("#")[0].split("/") if p]
    )
    if len(parts) < 4 or parts[-2] != "reports" or "--" not in parts[-1]:
        raise ValueError(
            f"{url!r} is not a report URL; a report's URL ends in '/<entity>/<project>/reports/<Title>--<id>' "
            "(report.save() prints it)"
        )
    report_id = parts[-1].rpartition("--")[2]
    if not re.fullmatch(r"[A-Za-z0-9+_-]+", report_id):
        raise ValueError(f"{url!r} is not a report URL: its id {report_id!r} is not one")
    return report_id


def load(api: Any, report_id: str) -> Report:
    """The saved report ``report_id`` of ``api``'s workspace (ValueError naming it when there is none)."""
    record = api._store.get_report(report_id)
    if record is None:
        raise ValueError(
            f"no report {report_id!r} in workspace {redact(api.settings.database_url)!r}; check "
            "the URL (Api().reports('entity/project') lists the project's reports)"
        )
    return from_record(api, record)


def from_record(api: Any, record: Any) -> Report:
    from wandb_dagster.reports._model import from_spec

    spec = record.spec or {}
    if spec.get("version", SPEC_VERSION) > SPEC_VERSION:
        raise ValueError(
            f"report {record.id!r} was saved by a newer wandb_dagster (spec version {spec['version']}); "
            "upgrade to read it"
        )
    report = Report(
        project=record.project,
        entity=record.entity,
        title=record.title,
        description=record.description,
        blocks=from_spec(spec.get("blocks", [])),
        width=record.width,
    )
    report._api = api
    report._load(record)
    return report


def embed_images(blocks: list[Any]) -> list[Any]:
    """``blocks`` with each local image file (headings' collapsed blocks too) replaced by a data URI, read now,
    so a saved or exported report never reads a file when it is shown."""
    out = []
    for block in blocks:
        if getattr(block, "collapsed_blocks", None):
            block = dataclasses.replace(block, collapsed_blocks=embed_images(block.collapsed_blocks))
        out.append(_embedded(block))
    return out


def _embedded(block: Any) -> Any:
    if not isinstance(block, Image) or block.url.startswith(("http://", "https://", "data:")):
        return block
    path = Path(block.url[len("file://") :] if block.url.startswith("file://") else block.url).expanduser()
    if not path.is_file():
        raise ValueError(
            f"Image(url={block.url!r}): no such file; give an http(s) URL, a data:image URI or an existing image file"
        )
    if path.stat().st_size > MAX_EMBEDDED_IMAGE:
        raise ValueError(f"Image(url={block.url!r}) is larger than {MAX_EMBEDDED_IMAGE // 2**20} MiB; link it by URL")
    kind = mimetypes.guess_type(path.name)[0] or ""
    if not kind.startswith("image/"):
        raise ValueError(f"Image(url={block.url!r}) is not an image file (.png, .jpg, .gif, .svg, .webp)")
    data = base64.b64encode(path.read_bytes()).decode()
    return Image(url=f"data:{kind};base64,{data}", caption=block.caption)


def is_report_id(value: str) -> bool:
    try:
        padded = value + "=" * (-len(value) % 4)
        return base64.b64decode(padded, validate=True).startswith(b"View:")
    except (binascii.Error, ValueError):
        return False
