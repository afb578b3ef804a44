"""``wandb-dagster``: every command run as a subprocess (exit code, output, ``--json`` shape), on SQLite and
PostgreSQL."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import Cli


def _tree(root: Path, n: int = 3) -> dict[str, bytes]:
    root.mkdir(parents=True)
    files = {f"f{i}.txt": f"file {i}\n".encode() * (i + 1) for i in range(n)}
    for name, data in files.items():
        (root / name).write_bytes(data)
    return files


def test_the_console_script_and_python_m_show_the_commands(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("wandb-dagster")
    assert script.exists(), "the console script is not installed: pip install -e . (pyproject [project.scripts])"
    for argv in ([str(script), "--help"], [sys.executable, "-m", "wandb_dagster", "--help"]):
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        for command in ("artifact", "runs", "workspace", "db", "verify", "gc", "sync", "sweep", "agent", "ui"):
            assert f"  {command}" in proc.stdout
        assert "--database-url" in proc.stdout and "--json" in proc.stdout
    version = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=120)
    assert version.returncode == 0 and version.stdout.startswith("wandb-dagster, version ")


def test_import_wandb_dagster_does_not_import_click() -> None:
    code = "import sys, wandb_dagster; sys.exit('click' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


def test_artifact_put_get_ls(cli: Cli) -> None:
    files = _tree(cli.cwd / "data")
    put = cli("--json", "artifact", "put", "data", "--name", "tester/bikes/dataset", "--type", "dataset",
              "--alias", "best").json()  # fmt: skip
    assert put["artifact"] == "tester/bikes/dataset:v0"
    assert (put["files"], put["size"]) == (3, sum(map(len, files.values())))
    assert put["aliases"] == ["best", "latest"]
    text = cli("artifact", "put", "data/f0.txt", "--name", "bikes/single", "--type", "dataset")
    assert text.out.startswith("tester/bikes/single:v0 (1 files,")

    got = cli("--json", "artifact", "get", "tester/bikes/dataset:best", "--root", "out").json()
    assert got == {"artifact": "tester/bikes/dataset:v0", "root": str(cli.cwd / "out"), "files": 3}
    assert {p.name: p.read_bytes() for p in (cli.cwd / "out").iterdir()} == files
    assert cli("artifact", "get", "bikes/dataset", "--root", "plain").out.strip() == str(cli.cwd / "plain")

    rows = cli("--json", "artifact", "ls", "tester/bikes").json()
    assert sorted((r["name"], r["latest"], r["files"]) for r in rows) == [("dataset", "v0", 3), ("single", "v0", 1)]
    listing = cli("artifact", "ls", "tester/bikes").out.splitlines()
    assert listing[0].split()[:3] == ["TYPE", "NAME", "LATEST"] and len(listing) == 3


def test_a_failure_is_one_line_and_a_non_zero_exit(cli: Cli) -> None:
    missing = cli("artifact", "get", "tester/nope/thing:v0", check=False)
    assert missing.code == 1 and missing.out == ""
    lines = missing.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "thing" in lines[0]
    bad = cli("artifact", "put", "does-not-exist", "--name", "p/x", check=False)
    assert bad.code == 2 and "neither a file, a folder nor a URI" in bad.err


def test_runs_ls_with_a_filter(cli: Cli) -> None:
    _tree(cli.cwd / "data")
    cli("artifact", "put", "data", "--name", "tester/rp/ds")
    cli("artifact", "put", "data/f0.txt", "--name", "tester/rp/one")
    rows = cli("--json", "runs", "ls", "tester/rp").json()
    assert len(rows) == 2 and {r["state"] for r in rows} == {"finished"}
    some = cli("--json", "runs", "ls", "tester/rp", "--filter", f'{{"displayName": "{rows[0]["name"]}"}}').json()
    assert [r["id"] for r in some] == [rows[0]["id"]]
    bad = cli("runs", "ls", "tester/rp", "--filter", "{not json", check=False)
    assert bad.code == 2 and "is not JSON" in bad.err


def test_workspace_info_and_db_commands(cli: Cli) -> None:
    from wandb_dagster.store.schema import SCHEMA_REVISION

    before = cli("--json", "db", "current").json()
    assert before["head"] == SCHEMA_REVISION and before["current"] in (None, SCHEMA_REVISION)
    up = cli("--json", "db", "upgrade").json()
    assert up["to"] == SCHEMA_REVISION
    assert cli("--json", "db", "current").json()["up_to_date"] is True
    assert cli("db", "current").out.strip() == f"{SCHEMA_REVISION} (head)"

    _tree(cli.cwd / "data")
    cli("artifact", "put", "data", "--name", "tester/info/ds")
    info = cli("--json", "workspace", "info").json()
    assert info["schema_revision"] == info["schema_head"] == SCHEMA_REVISION
    assert (info["versions"], info["blobs"], info["runs"]) == (1, 3, 1)
    assert info["storage_root"].rstrip("/").endswith("blobs")
    assert "password" not in info["database"].lower() or "***" in info["database"]


def test_verify_exits_non_zero_on_a_problem_and_repairs_from_a_copy(cli: Cli) -> None:
    _tree(cli.cwd / "data")
    cli("artifact", "put", "data", "--name", "tester/v/ds")
    ok = cli("--json", "verify").json()
    assert ok["ok"] is True and (ok["versions"], ok["blobs"]) == (1, 3)
    victim = next(p for p in cli.storage.rglob("*") if p.is_file() and len(p.parent.name) == 2)
    victim.unlink()
    bad = cli("--json", "verify", check=False)
    assert bad.code == 1 and bad.err.strip().startswith("Error: 1 problem(s) found")
    (problem,) = bad.json()["problems"]
    assert problem["kind"] == "missing" and problem["entries"][0]["version"] == "tester/v/ds:v0"
    shutil.copytree(cli.cwd / "data", cli.cwd / "backup")
    fixed = cli("--json", "verify", "--repair", "--from", "backup").json()
    assert fixed["ok"] is True and fixed["problems"][0]["repaired"] is True
    assert cli("verify").out.startswith("Checked 1 versions, 3 blobs")


def test_gc_dry_run_then_gc(cli: Cli) -> None:
    _tree(cli.cwd / "data")
    cli("artifact", "put", "data", "--name", "tester/g/ds")
    orphan = cli.storage / "ab" / ("c" * 30)
    orphan.parent.mkdir(exist_ok=True)
    orphan.write_bytes(b"not named by any version")  # its name is not its MD5: gc does not read it anyway
    dry = cli("--json", "gc", "--dry-run", "--grace", "0").json()
    assert (dry["dry_run"], dry["unused"], dry["deleted"], dry["blobs"]) == (True, 1, 1, 4)
    assert orphan.exists()
    text = cli("gc", "--grace", "0").out
    assert text.startswith("Deleted 1 blobs (24 B) of 4")
    assert not orphan.exists()
    waiting = cli("--json", "gc").json()  # default grace: nothing to do
    assert (waiting["deleted"], waiting["unused"]) == (0, 0)
    assert cli("gc", "--grace", "soon", check=False).code == 2


def test_artifact_cache_cleanup(cli: Cli) -> None:
    _tree(cli.cwd / "data")
    cli("artifact", "put", "data", "--name", "tester/c/ds")
    cli("artifact", "get", "tester/c/ds:v0", "--root", "out")
    cached = sum(p.stat().st_size for p in Path(cli.env["WANDB_DAGSTER_CACHE_DIR"]).rglob("*") if p.is_file())
    assert cached > 0
    out = cli("--json", "artifact", "cache", "cleanup", "0").json()
    assert out["target"] == 0 and out["freed"] > 0
    assert cli("artifact", "cache", "cleanup", "lots", check=False).code == 2


def test_the_workspace_comes_from_the_environment_too(cli: Cli) -> None:
    cli.env.update({"WANDB_DAGSTER_DATABASE_URL": cli.database_url, "WANDB_DAGSTER_STORAGE": str(cli.storage)})
    _tree(cli.cwd / "data")
    cli("artifact", "put", "data", "--name", "tester/e/ds", options=False)
    assert cli("--json", "verify", options=False).json()["versions"] == 1
    assert os.listdir(cli.storage)


def test_artifact_put_with_a_ttl_and_artifact_expire(cli: Cli) -> None:
    import time

    _tree(cli.cwd / "data")
    cli("artifact", "put", "data", "--name", "tester/x/ds", "--ttl", "1s")
    (cli.cwd / "data" / "f0.txt").write_text("changed")
    cli("artifact", "put", "data", "--name", "tester/x/ds")  # v1 takes 'latest' from v0
    time.sleep(1.5)
    dry = cli("--json", "artifact", "expire", "--dry-run").json()
    assert dry == {"dry_run": True, "deleted": ["tester/x/ds:v0"], "kept": []}
    assert cli("artifact", "expire").out.splitlines() == ["Deleted 1 expired version(s)", "  tester/x/ds:v0"]
    assert cli("artifact", "get", "tester/x/ds:v0", check=False).code == 1
    assert cli("--json", "artifact", "expire").json()["deleted"] == []
