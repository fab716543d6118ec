"""System metrics (`sys/...`) stay out of the way: never the metric shown first, a best value
or a ★ in a comparison (which leaves them out); their charts come after the training ones."""

from __future__ import annotations

from pathlib import Path

from tuneboard.store import StageValues, Store
from tuneboard.tui.metrics import default_metric, metric_families
from tuneboard.ui.comparison import StageGroup, aligned_rows, bookkeeping, metric_order

SYS = ["sys/gpu_util", "sys/process_cpu_percent", "sys/process_rss_mb"]


def higher(name: str) -> bool:
    return not name.endswith("loss")


def test_a_system_metric_is_never_the_metric_shown_first() -> None:
    names = sorted([*SYS, "train/loss", "val/accuracy"])
    assert default_metric(names, [None]) == "val/accuracy"
    assert default_metric(names, ["sys/gpu_util"]) == "val/accuracy"  # even a sys headline
    assert default_metric(sorted([*SYS, "custom"]), [None]) == "custom"
    assert default_metric(SYS, [None]) == SYS[0]  # nothing else logged


def test_system_metrics_chart_after_the_training_ones_one_chart_each() -> None:
    families = metric_families([*SYS, "train/lr", "val/accuracy", "train/loss"])
    assert list(families) == ["loss", "accuracy", "lr", *SYS]
    assert families["sys/gpu_util"] == ["sys/gpu_util"]


def test_system_metrics_have_no_best_run_and_come_last() -> None:
    assert all(bookkeeping(name) for name in SYS)
    assert metric_order([*SYS, "train/loss", "val/accuracy"])[:2] == ["val/accuracy", "train/loss"]
    stages = [
        StageValues(
            0, "train", "finetune", {"val/accuracy": a, "sys/gpu_util": u}, {"val/accuracy": a}
        )
        for a, u in ((0.5, 10.0), (0.7, 90.0))
    ]
    rows = aligned_rows([StageGroup("train", tuple(stages))], higher)
    by_metric = {row.metric: row for row in rows}
    assert [row.metric for row in rows] == ["val/accuracy", "sys/gpu_util"]
    assert by_metric["val/accuracy"].best_runs == (1,)
    assert (
        by_metric["sys/gpu_util"].best_runs == ()
        and by_metric["sys/gpu_util"].higher_is_better is None
    )


def test_stage_values_leave_system_metrics_out(tmp_path: Path) -> None:
    with Store(tmp_path / "db.duckdb") as store:
        store.create_run("r", "exp", {})
        store.log_metrics("r", 0, 5, {"val/accuracy": 0.8, "sys/process_rss_mb": 300.0})
        store.log_metrics("r", 1, 0, {"sys/process_cpu_percent": 12.0})  # a stage like export
        store.flush()
        values = store.stage_values("r", higher)
        assert store.last_metrics("r")["sys/process_rss_mb"] == 300.0  # stored all the same
    assert [(v.stage_index, v.last, v.best) for v in values] == [
        (0, {"val/accuracy": 0.8}, {"val/accuracy": 0.8})
    ]
