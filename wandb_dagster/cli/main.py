"""The command group, its workspace options, output (text or ``--json``), errors and progress."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click

_ENV = {
    "database_url": "WANDB_DAGSTER_DATABASE_URL",
    "storage": "WANDB_DAGSTER_STORAGE",
    "storage_options": "WANDB_DAGSTER_STORAGE_OPTIONS",
}


class Output:
    """What every command shares: the output mode, and how to say things."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def emit(self, data: Any, text: str | Callable[[], str]) -> None:
        """``data`` as one JSON document with ``--json``, else ``text`` (a string or a function making it)."""
        if self.as_json:
            click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
        else:
            click.echo(text() if callable(text) else text)

    def progress(self, unit: str = "bytes") -> Any:
        """A progress hook (see storage/progress.py) drawing on stderr, or None when stdout is not a terminal
        or the output is JSON (nothing to draw then)."""
        if self.as_json or not _isatty(sys.stdout) or not _isatty(sys.stderr):
            return None
        return _Bar(unit)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class _Bar:
    """One line on stderr: files and bytes done of the current batch."""

    def __init__(self, unit: str) -> None:
        self.unit = unit
        self.drawn = False

    def __call__(self, bytes_done: int, bytes_total: int, files_done: int, files_total: int) -> None:
        width = 30
        frac = bytes_done / bytes_total if bytes_total else (files_done / files_total if files_total else 1.0)
        bar = "#" * int(frac * width)
        sys.stderr.write(
            f"\r[{bar:<{width}}] {files_done}/{files_total} files, {human_size(bytes_done)}/{human_size(bytes_total)}"
        )
        self.drawn = True
        if files_total and files_done >= files_total:
            self.done()

    def done(self) -> None:
        if self.drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.drawn = False


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def parse_duration(value: str) -> float:
    """Seconds from ``'3600'``, ``'90s'``, ``'30m'``, ``'2h'``, ``'7d'``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", value, re.IGNORECASE)
    if not match:
        raise click.BadParameter(f"{value!r} is not a duration; use seconds or a suffix, e.g. '30m', '1h', '0'")
    number, unit = match.groups()
    return float(number) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit.lower()]


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """The workspace options as the environment every layer reads, for the command's duration only (so
    that a test invoking several commands in one process gets each its own)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, (ValueError, LookupError, OSError, RuntimeError, PermissionError, TimeoutError)):
        return text
    return f"{type(exc).__name__}: {text}"


class _Group(click.Group):
    """A group whose commands fail with one line (``Error: ...``) and exit code 1, never a traceback.
    ``WANDB_DAGSTER_DEBUG=1`` shows the traceback instead."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            raise click.Abort() from None
        except Exception as exc:
            if os.environ.get("WANDB_DAGSTER_DEBUG") == "1":
                raise
            raise click.ClickException(_one_line(exc)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--database-url",
    help="The workspace database (sqlite:///... or postgresql://...). [env: WANDB_DAGSTER_DATABASE_URL]",
)
@click.option(
    "--storage",
    help="The blob storage root of a new workspace: a folder, s3://... or gs://... [env: WANDB_DAGSTER_STORAGE]",
)
@click.option(
    "--storage-options",
    help="JSON options for s3fs / gcsfs (endpoint, credentials). [env: WANDB_DAGSTER_STORAGE_OPTIONS]",
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of text.")
@click.version_option(package_name="wandb-dagster", prog_name="wandb-dagster")
@click.pass_context
def cli(
    ctx: click.Context, database_url: str | None, storage: str | None, storage_options: str | None, as_json: bool
) -> None:
    """wandb-dagster: manage a workspace (artifacts, runs, database, blob storage) from the shell."""
    given = {"database_url": database_url, "storage": storage, "storage_options": storage_options}
    ctx.with_resource(_environment({_ENV[k]: v for k, v in given.items() if v is not None}))
    ctx.obj = Output(as_json)


def main() -> None:
    """The console script."""
    cli(prog_name="wandb-dagster")


def workspace() -> Any:
    """The workspace the options and environment name (opened, and migrated if needed, on first use)."""
    from wandb_dagster.sdk.workspace import Workspace
    from wandb_dagster.settings import Settings

    return Workspace.for_settings(Settings.resolve())
