"""The `tiny` experiment end to end through the real CLI, with the database checked afterwards."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import duckdb
import pytest

from tests.conftest import CliRunner

pytestmark = pytest.mark.slow


def query(project: Path, sql: str) -> list[tuple[object, ...]]:
    """Read the project's database directly, as any DuckDB client would."""
    con = duckdb.connect(str(project / ".tuneboard" / "tuneboard.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def finished_tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """One `tuneboard run tiny` shared by the tests of this module: (project, run id, stdout)."""
    import shutil
    import subprocess
    import sys

    from tests.conftest import SAMPLES

    project = tmp_path_factory.mktemp("e2e") / "sentiment"
    shutil.copytree(SAMPLES / "sentiment", project, ignore=shutil.ignore_patterns(".tuneboard"))
    done = subprocess.run(
        [sys.executable, "-m", "tuneboard.cli", "run", "tiny", "--set", "stages.0.epochs=3"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = done.stdout.split()[1].rstrip(":")
    return project, run_id, done.stdout


def test_run_prints_a_summary_table(finished_tiny_run: tuple[Path, str, str]) -> None:
    _, run_id, stdout = finished_tiny_run
    assert f"run {run_id}" in stdout
    for column in ("stage", "steps", "best", "time"):
        assert column in stdout
    assert "finetune" in stdout and "evaluate" in stdout and "export" in stdout
    assert "test/accuracy" in stdout


def test_database_holds_the_whole_run(finished_tiny_run: tuple[Path, str, str]) -> None:
    project, run_id, _ = finished_tiny_run
    [(status, device, config, error)] = query(
        project, f"SELECT status, device, config, error FROM runs WHERE run_id = '{run_id}'"
    )
    assert (status, device, error) == ("completed", "cpu", None)
    assert json.loads(str(config))["stages"][0]["epochs"] == 3  # the override was recorded

    stages = query(
        project,
        f"SELECT stage_index, plugin, status, best_step, best_value FROM stages WHERE run_id = '{run_id}' ORDER BY 1",
    )
    assert [(s[0], s[1], s[2]) for s in stages] == [
        (0, "finetune", "completed"),
        (1, "evaluate", "completed"),
        (2, "export", "completed"),
    ]
    assert stages[0][3] is not None and 0.0 <= float(stages[0][4]) <= 1.0  # type: ignore[arg-type]

    names = {
        row[0]
        for row in query(project, f"SELECT DISTINCT name FROM metrics WHERE run_id = '{run_id}'")
    }
    assert {
        "train/loss",
        "train/lr",
        "val/loss",
        "val/accuracy",
        "val/f1_macro",
        "test/accuracy",
        "test/f1_macro",
    } <= names
    [(evaluations,)] = query(
        project, f"SELECT count(*) FROM metrics WHERE run_id = '{run_id}' AND name = 'val/accuracy'"
    )
    assert evaluations == 3  # validation after every epoch

    [(kind, path, size, sha)] = query(
        project,
        f"SELECT kind, path, bytes, sha256 FROM artifacts WHERE run_id = '{run_id}' AND kind = 'model'",
    )
    assert kind == "model" and int(size) > 0 and len(str(sha)) == 64  # type: ignore[call-overload]
    exported = Path(str(path))
    kinds = query(
        project, f"SELECT stage_index, kind FROM artifacts WHERE run_id = '{run_id}' ORDER BY 1"
    )
    assert kinds == [(0, "checkpoint"), (1, "predictions"), (2, "model")]
    assert (exported / "model.safetensors").is_file()
    assert json.loads((exported / "labels.json").read_text())

    messages = [
        row[0]
        for row in query(
            project, f"SELECT message FROM events WHERE run_id = '{run_id}' ORDER BY time"
        )
    ]
    assert messages[0].startswith("queued") and messages[-1] == "run completed"


def test_runs_lists_the_run(cli: CliRunner, finished_tiny_run: tuple[Path, str, str]) -> None:
    project, run_id, _ = finished_tiny_run
    done = cli("runs", "--format", "json", cwd=project)
    assert done.returncode == 0, done.stderr
    [row] = json.loads(done.stdout)
    assert row["run_id"] == run_id and row["status"] == "completed" and row["experiment"] == "tiny"
    assert row["headline"] == "test/accuracy" and 0.0 <= row["value"] <= 1.0


def test_show_accepts_an_id_prefix(
    cli: CliRunner, finished_tiny_run: tuple[Path, str, str]
) -> None:
    project, run_id, _ = finished_tiny_run
    done = cli("show", run_id[:12], "--project", str(project))
    assert done.returncode == 0, done.stderr
    assert run_id in done.stdout and "run completed" in done.stdout


def test_show_gives_each_stage_on_the_run_wide_axis(
    cli: CliRunner, finished_tiny_run: tuple[Path, str, str]
) -> None:
    project, run_id, _ = finished_tiny_run
    done = cli("show", run_id, "--json", cwd=project)
    assert done.returncode == 0, done.stderr
    finetune, evaluate, export = json.loads(done.stdout)["pipeline"]
    [(steps, best_step, best_value)] = query(
        project,
        "SELECT (SELECT max(step) FROM metrics m WHERE m.run_id = s.run_id AND stage_index = 0),"
        f" best_step, best_value FROM stages s WHERE run_id = '{run_id}' AND stage_index = 0",
    )
    assert (finetune["name"], finetune["first_step"], finetune["last_step"]) == ("finetune", 0, steps)  # fmt: skip
    assert finetune["best_run_step"] == best_step and finetune["best_value"] == best_value
    [(last, best)] = query(
        project,
        "SELECT arg_max(value, step), max(value) FROM metrics"
        f" WHERE run_id = '{run_id}' AND stage_index = 0 AND name = 'val/accuracy'",
    )
    assert finetune["metrics"]["val/accuracy"] == {"final": last, "best": best}
    assert finetune["metrics"]["train/lr"]["best"] is None
    assert (evaluate["first_step"], export["last_step"]) == (steps, steps)
    assert set(evaluate["metrics"]) >= {"test/accuracy", "test/loss"}
    table = cli("show", run_id, cwd=project, env={"COLUMNS": "80"})
    assert "stages on the run-wide step axis" in table.stdout
    assert re.search(rf"│ finetune +│ 0–{steps} +│ val/accuracy ", table.stdout), table.stdout


def test_compare_lines_up_a_baseline_with_the_trained_run(
    cli: CliRunner, finished_tiny_run: tuple[Path, str, str], tmp_path: Path
) -> None:
    """The trained run against a single-step baseline added to a copy of its database."""
    import shutil

    from tuneboard.store import Store

    project, run_id, _ = finished_tiny_run
    copy = tmp_path / "copy"
    (copy / ".tuneboard").mkdir(parents=True)
    shutil.copy(project / "tuneboard.toml", copy)
    shutil.copy(project / ".tuneboard" / "tuneboard.duckdb", copy / ".tuneboard")
    baseline = "20200101-000000-0000"
    with Store(copy / ".tuneboard" / "tuneboard.duckdb") as store:
        store.create_run(baseline, "baseline", {}, status="completed")
        store.stage_started(baseline, 0, name="single_step", plugin="single_step", params={})
        store.log_metrics(baseline, 0, 1, {"val/accuracy": -1.0, "train/loss": 99.0})
    done = cli("compare", run_id, baseline, "--stage", "finetune", "--json", cwd=copy)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert [run["stage"] for run in document["runs"]] == ["finetune", "single_step"]
    rows = {row["metric"]: row for row in document["rows"]}
    [(last, best)] = query(
        project,
        "SELECT arg_max(value, step), max(value) FROM metrics"
        f" WHERE run_id = '{run_id}' AND stage_index = 0 AND name = 'val/accuracy'",
    )
    assert rows["val/accuracy"]["values"][run_id] == {"final": last, "best": best}
    assert rows["val/accuracy"]["best_runs"] == [run_id]
    assert rows["train/loss"]["best_runs"] == [run_id]  # lower is better
    assert rows["train/lr"]["best_runs"] == [] and rows["val/f1_macro"]["values"][baseline] is None
    table = cli("compare", run_id[:15], baseline, "--stage", "finetune", cwd=copy)
    assert table.returncode == 0, table.stderr
    assert run_id in table.stdout and baseline in table.stdout


def test_sql_answers_in_each_format(
    cli: CliRunner, finished_tiny_run: tuple[Path, str, str]
) -> None:
    project, run_id, _ = finished_tiny_run
    sql = f"SELECT name, max(value) AS best FROM metrics WHERE run_id = '{run_id}' GROUP BY name ORDER BY name"
    as_csv = cli("sql", sql, "--format", "csv", cwd=project)
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert "test/accuracy" in {row["name"] for row in rows}
    as_json = cli("sql", sql, "--format", "json", cwd=project)
    assert {row["name"] for row in json.loads(as_json.stdout)} == {row["name"] for row in rows}
    as_table = cli("sql", sql, cwd=project)
    assert "test/accuracy" in as_table.stdout


def test_sql_refuses_writes_and_changes_nothing(
    cli: CliRunner, finished_tiny_run: tuple[Path, str, str]
) -> None:
    project, _, _ = finished_tiny_run
    before = query(project, "SELECT count(*) FROM runs")
    done = cli("sql", "SELECT 1; DELETE FROM runs", cwd=project)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    assert query(project, "SELECT count(*) FROM runs") == before


def test_a_failing_stage_fails_only_its_run(cli: CliRunner, sentiment_project: Path) -> None:
    plugins = sentiment_project / "plugins"
    plugins.mkdir()
    (plugins / "explode.py").write_text(
        "from tuneboard import Stage, hookimpl\n\n"
        "class Explode(Stage):\n"
        "    name = 'explode'\n\n"
        "    def run(self, ctx, state):\n"
        "        raise ValueError('the stage blew up on purpose')\n\n"
        "@hookimpl\n"
        "def register_stages(register):\n"
        "    register(Explode)\n"
    )
    with (sentiment_project / "tuneboard.toml").open("a") as toml:
        toml.write('\n[[experiments.tiny.stages]]\nplugin = "explode"\n')
    done = cli("run", "tiny", "--quiet", "--set", "stages.0.epochs=1", cwd=sentiment_project)
    assert done.returncode == 1
    assert "the stage blew up on purpose" in done.stdout
    [(status, error)] = query(sentiment_project, "SELECT status, error FROM runs")
    assert status == "failed" and "ValueError: the stage blew up on purpose" in str(error)
    assert "stage 3" in str(error)
    [(traceback,)] = query(sentiment_project, "SELECT message FROM events WHERE level = 'error'")
    assert "Traceback" in str(traceback)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "nosuch"), "no experiment 'nosuch'; available: multistep, baseline, tiny"),
        (("run", "tiny", "--set", "stages.0.lrr=1"), "unknown key 'lrr' (did you mean 'lr'?)"),
        (("run", "tiny", "--set", "dataset.train=missing.tsv"), "file not found: missing.tsv"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    cli: CliRunner, sentiment_project: Path, args: tuple[str, ...], message: str
) -> None:
    done = cli(*args, cwd=sentiment_project)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (sentiment_project / ".tuneboard" / "tuneboard.duckdb").exists()


def test_cancel_from_another_process(cli: CliRunner, sentiment_project: Path) -> None:
    import subprocess
    import sys
    import time

    runner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tuneboard.cli",
            "run",
            "tiny",
            "--quiet",
            "--set",
            "stages.0.epochs=200",
        ],
        cwd=sentiment_project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        status = None
        while status != "running":
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.5)
            listed = cli("runs", "--format", "json", cwd=sentiment_project)
            rows = json.loads(listed.stdout) if listed.returncode == 0 else []
            status = rows[0]["status"] if rows else None
        run_id = rows[0]["run_id"]
        done = cli("cancel", run_id[:10], cwd=sentiment_project)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"run {run_id}: cancel requested" in done.stdout
        assert runner.wait(timeout=60) == 1
    finally:
        runner.kill()
    [(status, error)] = query(sentiment_project, "SELECT status, error FROM runs")
    assert (status, error) == ("cancelled", "cancelled by the user")
    again = cli("cancel", run_id, cwd=sentiment_project)
    assert again.returncode == 0 and "already cancelled" in again.stdout
