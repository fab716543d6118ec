"""The `generations` table: written in batches, read back, deleted, exported and imported."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tuneboard.sdk.errors import TuneboardError
from tuneboard.sdk.tasks import Generation
from tuneboard.store import GenerationRow, Store, run_query
from tuneboard.store.transfer import export_runs, import_runs

# Text that CSV and JSON must carry as it is: line breaks, quotes, commas, an empty output.
AWKWARD = 'Say "hi",\nthen stop.\r\n\tÜñí €'


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    # A long interval: nothing is written until `flush`, so one flush is one batch.
    store = Store(tmp_path / "a" / "tuneboard.duckdb", flush_interval=60)
    yield store
    store.close()


def seed(store: Store) -> None:
    """Run `r`: two validation prompts at steps 10 and 20 of stage 0, a test prompt in stage 1."""
    store.create_run("r", "exp", {}, status="completed", at=0.5)
    store.create_run("other", "exp", {}, status="completed", at=0.6)
    for step, at in ((20, 2.0), (10, 1.0)):  # logged out of order: read back by step
        store.log_generations(
            "r",
            0,
            [
                Generation("validation", 0, "Q0?", f"a{step}", reference="A0", step=step),
                Generation("validation", 1, AWKWARD, "", reference=None, step=step),
            ],
            at=at,
        )
    store.log_generations("r", 1, [Generation("test", 0, "T?", "t")], at=3.0)
    store.log_generations("r", 1, [])  # nothing to write
    store.log_generations("other", 0, [Generation("validation", 0, "Q0?", "x", step=5)], at=4.0)


def rows_of(store: Store) -> list[tuple[object, ...]]:
    return [
        (g.stage_index, g.step, g.split, g.idx, g.prompt, g.output, g.reference, g.created_at)
        for g in store.generations("r")
    ]


def test_generations_round_trip_in_one_batch(store: Store) -> None:
    seed(store)
    assert store.writer is not None and store.writer.batches == 0
    store.flush()
    assert store.writer.batches == 1
    assert rows_of(store) == [
        (0, 10, "validation", 0, "Q0?", "a10", "A0", 1.0),
        (0, 10, "validation", 1, AWKWARD, "", None, 1.0),
        (0, 20, "validation", 0, "Q0?", "a20", "A0", 2.0),
        (0, 20, "validation", 1, AWKWARD, "", None, 2.0),
        (1, None, "test", 0, "T?", "t", None, 3.0),
    ]
    first = store.generations("r")[0]
    assert isinstance(first, GenerationRow) and first.run_id == "r"
    assert [g.output for g in store.generations("r", split="test")] == ["t"]
    assert [g.step for g in store.generations("r", stage_index=0, split="validation")] == [
        10,
        10,
        20,
        20,
    ]
    assert store.generations("r", stage_index=2) == []
    # User SQL reads the table like any other.
    result = run_query(
        store,
        "SELECT run_id, step, output FROM generations WHERE idx = 0 AND split = 'validation'"
        " ORDER BY run_id, step",
    )
    assert result.rows == [("other", 5, "x"), ("r", 10, "a10"), ("r", 20, "a20")]


def test_many_calls_commit_together(store: Store) -> None:
    store.create_run("r", "exp", {})
    for step in range(2_000):
        store.log_generations("r", 0, [Generation("validation", 0, "p", str(step), step=step)])
    store.flush()
    assert store.writer is not None and store.writer.batches == 1
    assert [int(g.output) for g in store.generations("r")] == list(range(2_000))


def test_a_bad_generation_is_dropped_alone(store: Store) -> None:
    store.create_run("r", "exp", {})
    store.log_generations("r", 0, [Generation("validation", 0, "p", 42, step=1)])  # type: ignore[arg-type]
    store.log_generations("r", 0, [Generation("validation", 0, "p", "kept", step=2)])
    store.flush()
    assert store.writer is not None and store.writer.dropped == 1
    assert [g.output for g in store.generations("r")] == ["kept"]


def test_delete_run_and_resume_remove_generations(store: Store) -> None:
    seed(store)
    store.flush()  # as a resume does before it deletes
    store.delete_metrics_after("r", 0, 10)  # a resume from step 10 of stage 0
    store.flush()
    assert [(g.stage_index, g.step) for g in store.generations("r")] == [(0, 10), (0, 10)]
    store.delete_run("r")
    store.flush()
    assert store.generations("r") == []
    assert [g.output for g in store.generations("other")] == ["x"]


@pytest.mark.parametrize("file_format", ["parquet", "csv", "jsonl"])
def test_export_and_import_carry_generations(
    store: Store, tmp_path: Path, file_format: str
) -> None:
    seed(store)
    store.flush()
    expected = rows_of(store)
    out = tmp_path / "export"
    exported = export_runs(store, ["r"], out, file_format, source_project="a")
    assert exported.rows["generations"] == 5
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format_version"] == 4
    with Store(tmp_path / "b" / "tuneboard.duckdb") as target:
        imported = import_runs(target, out)
        assert imported.imported == ["r"] and imported.rows["generations"] == 5
        assert rows_of(target) == expected
        again = import_runs(target, out)
        assert again.identical == ["r"] and again.rows["generations"] == 0


def test_an_export_made_before_generations_still_imports(store: Store, tmp_path: Path) -> None:
    seed(store)
    store.flush()
    out = tmp_path / "export"
    export_runs(store, ["r"], out, "parquet", source_project="a")
    # What format version 1 wrote: no generations file, no entry in the manifest.
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["format_version"] = 1
    del manifest["tables"]["generations"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out / "generations.parquet").unlink()
    with Store(tmp_path / "b" / "tuneboard.duckdb") as target:
        imported = import_runs(target, out)
        assert imported.imported == ["r"] and imported.rows["generations"] == 0
        assert target.get_run("r").status == "completed"
        assert target.generations("r") == []
    # A version 2 export must have the file.
    manifest["format_version"] = 2
    (out / "manifest.json").write_text(json.dumps(manifest))
    with (
        Store(tmp_path / "c" / "tuneboard.duckdb") as target,
        pytest.raises(TuneboardError, match="'tables' has no entry for table 'generations'"),
    ):
        import_runs(target, out)
