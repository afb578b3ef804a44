"""Console capture (issue 12): stdout/stderr during a run become W&B's output.log run file, the console
keeps working, the streams are restored at finish, and W&B's console="off" / WANDB_CONSOLE=off switch it off
(docs/behaviour.md section 9)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import wandb_dagster as wandb


def _output_log(run_id: str, tmp_path) -> str:
    api_run = wandb.Api().run(f"p/{run_id}")
    with api_run.file("output.log").download(root=tmp_path / "dl", replace=True) as f:
        return f.read()


def test_stdout_and_stderr_become_output_log_and_the_console_still_shows_them(any_ws_env, tmp_path, capsys) -> None:
    before_out, before_err = sys.stdout, sys.stderr
    run = wandb.init(project="p")
    print("epoch 1 loss 0.5")
    print("a warning", file=sys.stderr)
    sys.stdout.write("no newline")
    run.finish()
    assert (sys.stdout, sys.stderr) == (before_out, before_err)  # restored at finish
    print("after the run")
    seen = capsys.readouterr()
    assert "epoch 1 loss 0.5\n" in seen.out and "a warning\n" in seen.err  # the console kept working
    log = _output_log(run.id, tmp_path)
    assert log == "epoch 1 loss 0.5\na warning\nno newline"
    assert [f.name for f in wandb.Api().run(f"p/{run.id}").files()] == ["output.log"]


def test_a_quiet_run_has_no_output_log(ws_env) -> None:
    run = wandb.init(project="p")
    run.finish()
    assert wandb.Api().run(f"p/{run.id}").files() == []


@pytest.mark.parametrize("how", ["settings", "env"])
def test_console_off_captures_nothing(ws_env, monkeypatch, capsys, how) -> None:
    if how == "env":
        monkeypatch.setenv("WANDB_CONSOLE", "off")
        run = wandb.init(project="p")
    else:
        run = wandb.init(project="p", settings=wandb.Settings(console="off"))
    print("not captured")
    run.finish()
    assert "not captured" in capsys.readouterr().out
    assert wandb.Api().run(f"p/{run.id}").files() == []


def test_an_invalid_console_mode_is_refused(ws_env) -> None:
    with pytest.raises(ValueError, match="console='loud' is invalid"):
        wandb.init(project="p", settings={"console": "loud"})


def test_a_resumed_run_appends_to_its_output_log(ws_env, tmp_path) -> None:
    run = wandb.init(project="p", id="resumable")
    print("first session")
    run.finish()
    again = wandb.init(project="p", id="resumable", resume="allow")
    print("second session")
    again.finish()
    assert _output_log("resumable", tmp_path) == "first session\nsecond session\n"


def test_a_script_that_never_calls_finish_gets_its_output_log(ws_env, tmp_path) -> None:
    # The exit hook finishes the run, which uploads what the script printed (the console is real here).
    code = textwrap.dedent(
        """
        import wandb_dagster as wandb
        run = wandb.init(project="p", id="script")
        print("from the script", flush=True)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "from the script\n"
    assert _output_log("script", tmp_path) == "from the script\n"
