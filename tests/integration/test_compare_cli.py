"""`tuneboard show` per stage on the run-wide axis and `tuneboard compare`, through the real CLI
on a database seeded through the store: a pipeline warmup -> full -> evaluate -> export, the
same pipeline with its stages named otherwise, and a single-step baseline."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import CliRunner
from tuneboard.store import Store

PIPELINE = "20261203-080000-a1b2"
RENAMED = "20261203-080500-e5f6"
BASELINE = "20261203-090000-c3d4"
WIDE = {"COLUMNS": "200"}


def _pipeline(store: Store, run_id: str, names: tuple[str, str]) -> None:
    """Warm-up of 40 steps (best 0.63 at 40), fine-tune of 60 steps (best 0.86 at 40, last
    0.84), a test evaluation (0.85) and an export that logs nothing."""
    store.create_run(run_id, "multistep", {}, status="running")
    curves = [(names[0], 40, {20: 0.60, 40: 0.63}, 40), (names[1], 60, {20: 0.80, 40: 0.86, 60: 0.84}, 40)]  # fmt: skip
    for index, (name, steps, accuracy, best) in enumerate(curves):
        store.stage_started(run_id, index, name=name, plugin="finetune", params={})
        for step in range(1, steps + 1):
            values = {"train/loss": 1.0 / step, "train/lr": 0.01 / (index + 1)}
            if step in accuracy:
                values |= {"val/accuracy": accuracy[step], "train/epoch": step / 20}
            store.log_metrics(run_id, index, step, values)
        store.set_progress(run_id, index, steps, steps)
        store.stage_finished(
            run_id, index, "completed", best_metric="val/accuracy", best_step=best,
            best_value=accuracy[best],
        )  # fmt: skip
    store.stage_started(run_id, 2, name="evaluate", plugin="evaluate", params={})
    store.log_metrics(run_id, 2, 0, {"test/accuracy": 0.85, "test/loss": 0.40})
    store.stage_finished(run_id, 2, "completed")
    store.stage_started(run_id, 3, name="export", plugin="export", params={})
    store.stage_finished(run_id, 3, "completed")
    store.set_run_status(run_id, "completed")


def _baseline(store: Store) -> None:
    """One gradient update (val/accuracy 0.55), then a test evaluation (0.52)."""
    store.create_run(BASELINE, "baseline", {}, status="running")
    store.stage_started(BASELINE, 0, name="single_step", plugin="single_step", params={})
    store.log_metrics(
        BASELINE, 0, 1,
        {"train/loss": 0.69, "train/lr": 5e-5, "train/epoch": 1.0, "val/accuracy": 0.55},
    )  # fmt: skip
    store.stage_finished(
        BASELINE, 0, "completed", best_metric="val/accuracy", best_step=1, best_value=0.55
    )
    store.stage_started(BASELINE, 1, name="evaluate", plugin="evaluate", params={})
    store.log_metrics(BASELINE, 1, 0, {"test/accuracy": 0.52, "test/loss": 0.69})
    store.stage_finished(BASELINE, 1, "completed")
    store.set_run_status(BASELINE, "completed")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose database holds the three runs."""
    root = tmp_path_factory.mktemp("compare") / "seeded"
    root.mkdir()
    (root / "tuneboard.toml").write_text('[project]\nname = "seeded"\n')
    store = Store(root / ".tuneboard" / "tuneboard.duckdb")
    _pipeline(store, PIPELINE, ("warmup", "full"))
    _pipeline(store, RENAMED, ("head", "all"))
    _baseline(store)
    store.close()
    return root


def table_rows(output: str) -> list[list[str]]:
    """The cells of each body line of the tables printed (box-drawn by rich)."""
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in output.splitlines()
        if line.startswith("│")
    ]


def by_label(output: str) -> dict[str, list[str]]:
    """Table rows keyed by their first cell."""
    return {row[0]: row[1:] for row in table_rows(output)}


def test_show_prints_each_stage_on_the_run_wide_axis(cli: CliRunner, project: Path) -> None:
    done = cli("show", PIPELINE, cwd=project, env=WIDE)
    assert done.returncode == 0, done.stderr
    section = done.stdout[done.stdout.index("stages on the run-wide step axis") :]
    rows = table_rows(section)
    # stage, steps, metric, final, best, best at
    starts = [(row[0], row[1]) for row in rows if row[0]]
    assert starts == [("warmup", "0–40"), ("full", "40–100"), ("evaluate", "100–100"), ("export", "100–100")]  # fmt: skip
    full = rows[[row[0] for row in rows].index("full") :]
    assert full[0][2:] == ["val/accuracy", "0.84", "0.86", "80"]  # best checkpoint, run-wide
    lr = next(row for row in full if row[2] == "train/lr")
    assert lr[3:] == ["0.005", "", ""]  # bookkeeping: no best
    assert ["", "", "test/accuracy", "0.85", "0.85", ""] not in rows  # it opens its stage
    assert ["evaluate", "100–100", "test/accuracy", "0.85", "0.85", ""] in rows


def test_show_json_has_the_pipeline(cli: CliRunner, project: Path) -> None:
    done = cli("show", PIPELINE, "--json", cwd=project)
    assert done.returncode == 0, done.stderr
    pipeline = json.loads(done.stdout)["pipeline"]
    assert [(s["name"], s["first_step"], s["last_step"]) for s in pipeline] == [
        ("warmup", 0, 40),
        ("full", 40, 100),
        ("evaluate", 100, 100),
        ("export", 100, 100),
    ]
    full = pipeline[1]
    assert (full["best_metric"], full["best_run_step"], full["best_value"]) == ("val/accuracy", 80, 0.86)  # fmt: skip
    assert full["metrics"]["val/accuracy"] == {"final": 0.84, "best": 0.86}
    assert full["metrics"]["train/loss"] == {"final": 1 / 60, "best": 1 / 60}
    assert full["metrics"]["train/lr"] == {"final": 0.005, "best": None}
    assert (full["first_epoch"], full["last_epoch"]) == (2.0, 5.0)
    assert pipeline[3]["metrics"] == {} and pipeline[3]["best_run_step"] is None


def test_compare_lines_up_each_stage_of_whole_runs(cli: CliRunner, project: Path) -> None:
    done = cli("compare", PIPELINE, BASELINE, cwd=project, env=WIDE)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    [header] = [line for line in done.stdout.splitlines() if line.startswith("┃")]
    assert [cell.strip() for cell in header.strip("┃").split("┃")] == ["metric", PIPELINE, BASELINE]  # fmt: skip
    rows = by_label(done.stdout)
    assert rows["experiment"] == ["multistep", "baseline"]
    # The baseline's one update lines up with each training stage of the pipeline.
    assert rows["warmup · stage"] == ["warmup", "single_step"]
    assert rows["warmup · val/accuracy"] == ["0.63 ★", "0.55"]
    assert rows["full · stage"] == ["full", "single_step"]
    assert rows["full · val/accuracy"] == ["0.84 (0.86) ★", "0.55"]
    assert rows["full · train/lr"] == ["0.005", "5.000e-05"]  # bookkeeping: never marked
    assert "evaluate · stage" not in rows  # the same stage in both
    assert rows["evaluate · test/accuracy"] == ["0.85 ★", "0.52"]
    assert rows["evaluate · test/loss"] == ["0.4 ★", "0.69"]  # lower is better
    assert not any(label.startswith("single_step") for label in rows)
    labels = list(rows)
    assert labels.index("warmup · val/accuracy") < labels.index("full · val/accuracy")
    assert labels.index("full · val/accuracy") < labels.index("full · train/loss")
    assert labels.index("full · train/loss") < labels.index("evaluate · test/accuracy")


def test_a_stage_no_other_run_lines_up_with_has_rows_of_its_own(
    cli: CliRunner, project: Path
) -> None:
    done = cli("compare", PIPELINE, RENAMED, "--json", cwd=project)
    assert done.returncode == 0, done.stderr
    rows = {(row["stage"], row["metric"]): row for row in json.loads(done.stdout)["rows"]}
    full = rows[("full", "val/accuracy")]
    assert full["stages"] == {PIPELINE: "full", RENAMED: None}
    assert full["values"][RENAMED] is None and full["best_runs"] == []
    assert rows[("all", "val/accuracy")]["values"][RENAMED] == {"final": 0.84, "best": 0.86}
    evaluate = rows[("evaluate", "test/accuracy")]
    assert evaluate["best_runs"] == []  # both 0.85: a tie marks nobody


def test_stage_full_lines_up_the_baselines_single_step(cli: CliRunner, project: Path) -> None:
    done = cli("compare", PIPELINE[:15], BASELINE, "--stage", "full", cwd=project, env=WIDE)
    assert done.returncode == 0, done.stderr
    rows = by_label(done.stdout)
    assert rows["stage"] == ["full", "single_step"]
    assert rows["val/accuracy"] == ["0.84 (0.86) ★", "0.55"]
    assert rows["train/loss"] == ["0.01667 ★", "0.69"]
    assert rows["train/lr"] == ["0.005", "5.000e-05"]  # bookkeeping: never marked
    assert rows["train/epoch"] == ["3", "1"]
    assert "test/accuracy" not in rows


def test_stage_json(cli: CliRunner, project: Path) -> None:
    done = cli("compare", BASELINE, PIPELINE, "--stage", "full", "--json", cwd=project)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["stage"] == "full" and document["unmatched"] == []
    assert [(r["run_id"], r["experiment"], r["stage"]) for r in document["runs"]] == [
        (BASELINE, "baseline", "single_step"),
        (PIPELINE, "multistep", "full"),
    ]
    rows = {row["metric"]: row for row in document["rows"]}
    accuracy = rows["val/accuracy"]
    assert accuracy["stage"] == "full" and accuracy["higher_is_better"] is True
    assert accuracy["values"] == {
        BASELINE: {"final": 0.55, "best": 0.55},
        PIPELINE: {"final": 0.84, "best": 0.86},
    }
    assert accuracy["best_runs"] == [PIPELINE]
    assert rows["train/lr"]["best_runs"] == [] and rows["train/lr"]["higher_is_better"] is None


def test_a_run_without_a_matching_stage_is_named_in_a_note(cli: CliRunner, project: Path) -> None:
    done = cli("compare", PIPELINE, RENAMED, BASELINE, "--stage", "full", cwd=project, env=WIDE)
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"note: no stage lines up with 'full' in {RENAMED} (multistep)\n"
    assert RENAMED not in done.stdout
    assert by_label(done.stdout)["stage"] == ["full", "single_step"]
    as_json = cli("compare", PIPELINE, RENAMED, "--stage", "full", "--json", cwd=project)
    document = json.loads(as_json.stdout)
    assert document["unmatched"] == [{"run_id": RENAMED, "experiment": "multistep"}]
    assert [run["run_id"] for run in document["runs"]] == [PIPELINE]


def test_ties_mark_every_best_run_and_a_full_tie_none(cli: CliRunner, project: Path) -> None:
    runs = (PIPELINE, RENAMED, BASELINE)
    three = cli("compare", *runs, "--stage", "evaluate", "-m", "test/accuracy", cwd=project, env=WIDE)  # fmt: skip
    assert three.returncode == 0, three.stderr
    assert by_label(three.stdout)["test/accuracy"] == ["0.85 ★", "0.85 ★", "0.52"]
    two = cli("compare", PIPELINE, RENAMED, "--stage", "evaluate", cwd=project, env=WIDE)
    assert by_label(two.stdout)["test/accuracy"] == ["0.85", "0.85"]
    assert "★" not in "".join(cell for row in table_rows(two.stdout) for cell in row)


def test_ids_are_never_cut_at_80_columns(cli: CliRunner, project: Path) -> None:
    done = cli("compare", PIPELINE, RENAMED, BASELINE, cwd=project, env={"COLUMNS": "80"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    for run_id in (PIPELINE, RENAMED, BASELINE):
        assert re.search(rf"┃ {run_id} +┃", done.stdout), run_id
    # Every run's value of every row is printed, whichever table it went to.
    values = [row for row in table_rows(done.stdout) if row[0] == "evaluate · test/accuracy"]
    assert sorted(cell for row in values for cell in row[1:]) == ["0.52", "0.85 ★", "0.85 ★"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope", BASELINE), "error: no run matches 'nope'"),
        (("20261203-08", BASELINE), "error: '20261203-08' matches several runs: "),
        ((PIPELINE,), "error: compare needs two different runs, not only "),
        ((PIPELINE, PIPELINE[:15]), "error: compare needs two different runs, not only "),
        ((), "error: compare needs at least two runs"),
        ((PIPELINE, BASELINE, "-m", "val/acc"), "error: no compared run logged metric 'val/acc'"),
        (
            (PIPELINE, BASELINE, "--stage", "full", "-m", "test/accuracy"),
            "error: no compared run logged metric 'test/accuracy' in the stages lined up with 'full'",
        ),
        (
            (PIPELINE, RENAMED, "--stage", "export"),
            "error: no run has a stage that lines up with 'export'",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    cli: CliRunner, project: Path, args: tuple[str, ...], message: str
) -> None:
    done = cli("compare", *args, cwd=project)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith(message) and done.stderr.count("\n") == 1, done.stderr
    assert done.stdout == ""
