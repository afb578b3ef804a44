"""define_metric as W&B's SDK (wandb-core) applies it: summaries, globs, custom x axes."""

from __future__ import annotations

import warnings

import pytest

import wandb_dagster as wandb


def _summary(run):
    return wandb.Api().run(f"{run.entity}/{run.project}/{run.id}").summary_metrics


def test_the_log_summary_guide_sample(any_ws_env):
    # docs.wandb.ai "Log summary metrics": min and max of loss and accuracy, by two calls each.
    with wandb.init(project="summary-demo") as run:
        wandb.define_metric("loss", summary="min")
        wandb.define_metric("loss", summary="max")
        wandb.define_metric("acc", summary="min")
        wandb.define_metric("acc", summary="max")
        for loss, acc in ((0.9, 0.1), (0.2, 0.8), (0.5, 0.6)):
            wandb.log({"acc": acc, "loss": loss})
    summary = _summary(run)
    assert summary["loss"] == {"min": 0.2, "max": 0.9} and summary["acc"] == {"min": 0.1, "max": 0.8}


def test_each_summary_operation(any_ws_env):
    with wandb.init(project="p") as run:
        run.define_metric("m_mean", summary="mean")
        run.define_metric("m_last_first", summary="last,first")
        run.define_metric("m_none", summary="none")
        with pytest.warns(DeprecationWarning, match="copy"):
            run.define_metric("m_copy", summary="copy")
        with pytest.warns(DeprecationWarning, match="best"):
            run.define_metric("m_best", summary="best", goal="minimize")
        with pytest.warns(DeprecationWarning, match="best"):
            run.define_metric("m_best_max", summary="best", goal="maximize")
        run.define_metric("m_default")
        for value in (3, 1, 2):
            run.log(dict.fromkeys(("m_mean", "m_last_first", "m_none", "m_copy", "m_best", "m_best_max", "m_default"), value))  # fmt: skip
        assert "m_none" not in run.summary
    summary = _summary(run)
    assert summary["m_mean"] == {"mean": 2.0}
    assert summary["m_last_first"] == {"last": 2, "first": 3}
    assert "m_none" not in summary
    assert summary["m_copy"] == summary["m_default"] == 2
    assert summary["m_best"] == {"best": 1} and summary["m_best_max"] == {"best": 3}


def test_globs_and_custom_x_axes(any_ws_env):
    # docs.wandb.ai "Customize log axes": a step metric per group, synced into rows that lack it.
    with wandb.init(project="p") as run:
        run.define_metric("train/step")
        run.define_metric("train/*", step_metric="train/step", summary="max")
        run.define_metric("val/loss", step_metric="epoch", summary="min")
        run.define_metric("train/special", summary="min")  # an explicit definition wins over the glob
        run.log({"train/step": 1, "train/loss": 0.5, "train/special": 5})
        run.log({"train/loss": 0.7, "train/special": 4})  # no train/step: the last one is filled in
        run.log({"epoch": 1, "val/loss": 0.3})
        run.log({"val/loss": 0.1})
        metric = run.define_metric("val/acc", step_metric="epoch")
        assert (metric.name, metric.step_metric, metric.step_sync, metric.goal) == ("val/acc", "epoch", True, None)
    rows = wandb.Api().run(f"{run.entity}/{run.project}/{run.id}").history(pandas=False)
    assert [r.get("train/step") for r in rows] == [1, 1, None, None]
    assert [r.get("epoch") for r in rows] == [None, None, 1, 1]
    summary = _summary(run)
    assert summary["train/loss"] == {"max": 0.7} and summary["train/special"] == {"min": 4}
    assert summary["val/loss"] == {"min": 0.1} and summary["epoch"] == 1


def test_setting_the_summary_directly_wins_and_bad_definitions_are_errors(any_ws_env):
    with wandb.init(project="p") as run:
        run.define_metric("acc", summary="max")
        run.log({"acc": 0.5})
        run.summary["acc"] = 0.99  # as in W&B: from now on a plain value
        run.log({"acc": 0.4})
        for bad, message in (
            (dict(name=""), "non-empty name"),
            (dict(name="a*b"), "only a trailing"),
            (dict(name="x", summary="median"), r"unknown operation\(s\) \['median'\]"),
            (dict(name="x", goal="up"), "goal='up' is invalid"),
            (dict(name="x", step_sync="yes"), "step_sync='yes' has type str"),
        ):
            with pytest.raises(ValueError, match=message), warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                run.define_metric(**bad)
    assert _summary(run)["acc"] == 0.4
    with pytest.raises(RuntimeError, match="wandb.init"):
        wandb.define_metric("loss")
