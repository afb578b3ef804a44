"""``wandb-dagster sync``: W&B offline folders (made by the real wandb SDK, offline, in a subprocess) and
TensorBoard logs (written by TensorBoard's own writer), run as a subprocess: exit code, output, ``--json``
shape; SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from .conftest import Cli

_MAKE_RUN = textwrap.dedent(
    """
    import wandb
    with open("model.txt", "w") as f:
        f.write("weights\\n")
    run = wandb.init(entity="tester", project="offline", name="cli-run", config={"lr": 0.5}, tags=["cli"])
    for i in range(3):
        run.log({"loss": 1.0 / (i + 1)})
    art = wandb.Artifact("model", type="model")
    art.add_file("model.txt")
    run.log_artifact(art)
    run.finish()
    """
)

_REPORT_KEYS = {"path", "source", "created", "history_rows", "system_metrics", "files", "artifacts", "skipped"}


def _offline_folder(cwd: Path) -> Path:
    (cwd / "make_run.py").write_text(_MAKE_RUN)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update({
        "WANDB_MODE": "offline", "WANDB_DIR": str(cwd), "WANDB_SILENT": "true", "WANDB_DATA_DIR": str(cwd / "wb-data"),
        "WANDB_CACHE_DIR": str(cwd / "wb-cache"), "WANDB_CONFIG_DIR": str(cwd / "wb-config"),
    })  # fmt: skip
    proc = subprocess.run([sys.executable, "make_run.py"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return cwd / "wandb"


def test_sync_imports_an_offline_folder_once(cli: Cli) -> None:
    folder = _offline_folder(cli.cwd)
    first = cli("--json", "sync", "wandb").json()
    (report,) = first["runs"]
    assert set(report) == _REPORT_KEYS
    assert report["created"] is True and report["path"].startswith("tester/offline/")
    assert (report["history_rows"], report["artifacts"]) == (3, ["tester/offline/model:v0"])
    assert report["source"] == str(next(folder.glob("offline-run-*")).resolve())

    again = cli("sync", "wandb")
    assert again.out.startswith(f"Up to date: {report['path']} from ") and "0 history rows" in again.out
    assert cli("--json", "sync", str(folder)).json()["runs"][0]["created"] is False

    (run,) = cli("--json", "runs", "ls", "tester/offline").json()
    assert (run["name"], run["state"], run["tags"]) == ("cli-run", "finished", ["cli"])
    listing = cli("--json", "artifact", "ls", "tester/offline").json()
    assert [(r["name"], r["latest"]) for r in listing] == [("model", "v0")]


def test_sync_tensorboard(cli: Cli) -> None:
    import tensorboard.summary as tb_summary

    writer = tb_summary.Writer(str(cli.cwd / "logs"))
    for step in range(4):
        writer.add_scalar("loss", 1.0 / (step + 1), step, wall_time=1_700_000_000 + step)
    writer.close()
    data = cli("--json", "sync", "--tensorboard", "logs", "--project", "tb", "--id", "tb-cli").json()
    (report,) = data["runs"]
    assert set(report) == _REPORT_KEYS
    assert (report["path"], report["created"], report["history_rows"], report["files"]) == ("tester/tb/tb-cli", True, 4, 1)
    text = cli("sync", "--tensorboard", "logs", "--project", "tb", "--id", "tb-cli")
    assert text.out.strip().startswith("Up to date: tester/tb/tb-cli from ")


def test_sync_failures_are_one_line(cli: Cli) -> None:
    missing = cli("sync", "nope", check=False)
    assert missing.code == 1 and missing.out == ""
    assert missing.err.strip().splitlines() == ["Error: 'nope' does not exist; pass W&B run folders or the wandb/ folder above them"]
    (cli.cwd / "empty").mkdir()
    no_events = cli("sync", "--tensorboard", "empty", check=False)
    assert no_events.code == 1 and "holds no TensorBoard event files" in no_events.err
    nothing = cli("sync", check=False)
    assert nothing.code == 2 and "give W&B run folders (PATH...) or --tensorboard DIR" in nothing.err
