"""`tuneboard show`'s stages on the run-wide step axis, drawn from spans and values."""

from __future__ import annotations

import io

from rich.console import Console

from tuneboard.cli.show import pipeline_document, pipeline_table
from tuneboard.store import StageSpan, StageValues


def render(table: object) -> list[str]:
    console = Console(width=80, file=io.StringIO(), color_system=None)
    console.print(table)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    return [line for line in text.splitlines() if line.startswith("│")]


SPANS = [
    StageSpan(0, "train", "finetune", "completed", 0, 30, 0.0, 3.0, 0.1, "val/f1", 20, 0.7),
    StageSpan(1, "export", "export", "completed", 30, 30, 3.0, 3.0, None, None, None, None),
]


def test_a_checkpoint_by_a_metric_the_stage_did_not_log_still_shows() -> None:
    values = [StageValues(0, "train", "finetune", {"train/loss": 0.2}, {"train/loss": 0.1})]
    lines = [[cell.strip() for cell in line.strip("│").split("│")] for line in render(pipeline_table(SPANS, values))]  # fmt: skip
    assert lines == [
        ["train", "0–30", "train/loss", "0.2", "0.1", ""],
        ["", "", "val/f1", "", "0.7", "20"],
        ["export", "30–30", "", "", "", ""],
    ]


def test_the_document_writes_nan_as_null() -> None:
    values = [StageValues(0, "train", "finetune", {"val/f1": float("nan")}, {})]
    [train, export] = pipeline_document(SPANS, values)
    assert train["metrics"] == {"val/f1": {"final": None, "best": None}}
    assert train["best_run_step"] == 20 and export["metrics"] == {}
