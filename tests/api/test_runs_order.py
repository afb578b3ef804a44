"""Api().runs(order=...) in W&B's documented forms, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

import wandb_dagster as wandb


def _runs() -> list[str]:
    ids = []
    for lr, batch, loss in ((0.01, 64, 0.3), (0.1, 16, 0.2), (0.001, 32, 0.9)):
        with wandb.init(project="proj", config={"lr": lr, "opt": {"batch": batch}}) as run:
            run.log({"loss": loss, "eval": {"acc": 1 - loss}})
            ids.append(run.id)
    return ids


def test_order_by_config_value_summary_metrics_and_signs(api_env):
    a, b, c = _runs()
    api = wandb.Api()

    def order(by: str, per_page: int = 1) -> list[str]:
        return [r.id for r in api.runs("proj", order=by, per_page=per_page)]

    # W&B's documented form: config.<key>.value.
    assert order("+config.lr.value") == [c, a, b]
    assert order("-config.lr.value") == [b, a, c]
    assert order("config.lr.value") == [c, a, b]  # no sign: ascending, as W&B's Api.runs says
    assert order("config.lr", per_page=2) == [c, a, b]  # without .value too
    assert order("+config.opt.value.batch") == [b, c, a]  # a nested config key
    assert order("+summary_metrics.loss") == [b, a, c]
    assert order("-summary_metrics.eval.acc") == [b, a, c]
    assert order("-created_at", per_page=2) == [c, b, a]
    assert order("") == order("+created_at") == [a, b, c]  # empty: the default, as W&B


@pytest.mark.parametrize(
    "bad", ["loss", "summary.loss", "+", "--created_at", "config.", "config..lr", "summary_metrics.", " created_at", "name"]
)
def test_an_order_that_is_not_understood_is_an_error(api_env, bad):
    _runs()
    with pytest.raises(ValueError, match=r"order .* is invalid; use an optional '\+'.*config.<key>.value") as err:
        list(wandb.Api().runs("proj", order=bad))
    assert repr(bad) in str(err.value)
