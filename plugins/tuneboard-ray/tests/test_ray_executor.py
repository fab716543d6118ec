"""The `ray` executor for real: the sentiment project's `tiny` experiment as jobs of a local
Ray head, checked in the project's database afterwards (and while it runs)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tuneboard.store import Store
from tuneboard.store.schema import RunRow
from tuneboard.store.store import hash_path

if TYPE_CHECKING:  # the fixtures' types (conftest is not imported by name: others share it)
    from conftest import RayCluster, RayEnv

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]

SUBMITTED = re.compile(r"submitted as Ray job (tuneboard-\S+) to ")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh copy of the sentiment sample project."""
    target = tmp_path / "sentiment"
    shutil.copytree(
        REPO / "sample_projects" / "sentiment",
        target,
        ignore=shutil.ignore_patterns(".tuneboard"),
    )
    return target


def tuneboard(env: RayEnv, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`tuneboard ARGS` with the Python that has Ray and the plugin, as a user runs it."""
    return subprocess.run(
        [env.python, "-m", "tuneboard.cli", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
    )


def read(project: Path, what: Callable[[Store], object]) -> object:
    """Something read from the project's database, as another process reads it."""
    store = Store(project / ".tuneboard" / "tuneboard.duckdb", read_only=True)
    try:
        return what(store)
    finally:
        store.close()


def only_run(project: Path) -> RunRow:
    runs = read(project, lambda store: store.list_runs())
    assert isinstance(runs, list) and len(runs) == 1
    run: RunRow = runs[0]
    return run


def metric_names(project: Path, run_id: str) -> list[str]:
    names = read(project, lambda store: store.metric_names(run_id))
    assert isinstance(names, list)
    return names


def submission_of(project: Path, run_id: str) -> str:
    events = read(project, lambda store: store.events(run_id))
    assert isinstance(events, list)
    found = [SUBMITTED.match(e.message) for e in events]
    ids = [match[1] for match in found if match]
    assert len(ids) == 1, [e.message for e in events]
    return ids[0]


def test_the_plugin_is_found_and_checks_its_settings(ray_env: RayEnv, project: Path) -> None:
    listed = tuneboard(ray_env, project, "plugins", "--json")
    plugins = {p["name"]: p for p in json.loads(listed.stdout)["plugins"]}
    assert plugins["ray"]["provides"] == {"executor": ["ray"]}
    assert plugins["ray"]["distribution"] == "tuneboard-ray"
    bad = tuneboard(ray_env, project, "run", "tiny", "--executor", "ray", "--address", "host:1")
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "error: --executor ray (ray): key 'address' must look like http://HOST:8265 "
        "(the Ray dashboard), got 'host:1'"
    )
    assert not (project / ".tuneboard").exists()
    # The example table of the Ray page (docs/ray.md) is valid as it is.
    page = (REPO / "docs" / "ray.md").read_text(encoding="utf-8")
    example = re.search(r"```toml\n(# Runs of this project on a Ray cluster.*?)```", page, re.S)
    assert example is not None
    config = project / "tuneboard.toml"
    config.write_text(config.read_text(encoding="utf-8") + "\n" + example[1], encoding="utf-8")
    checked = tuneboard(ray_env, project, "run", "no-such-experiment")
    assert checked.returncode == 2
    assert checked.stderr.startswith("error: tuneboard.toml: no experiment 'no-such-experiment'")


def test_tiny_runs_on_ray_into_the_local_database(
    ray_env: RayEnv, ray_cluster: RayCluster, project: Path
) -> None:
    config = project / "tuneboard.toml"
    config.write_text(
        config.read_text(encoding="utf-8")
        + f'\n[project.executor]\nplugin = "ray"\naddress = "{ray_cluster.address}"\n',
        encoding="utf-8",
    )
    started = time.monotonic()
    done = tuneboard(ray_env, project, "run", "tiny", "--quiet", "--set", "stages.0.epochs=2")
    print(f"tiny (2 epochs) on Ray: {time.monotonic() - started:.1f} s")
    assert done.returncode == 0, done.stdout + done.stderr
    run = only_run(project)
    assert (run.status, run.error, run.device) == ("completed", None, "ray:cpu")
    assert run.headline == "test/accuracy" and run.headline_value is not None

    stages = read(project, lambda store: store.stages(run.run_id))
    assert isinstance(stages, list)
    assert [(s.plugin, s.status) for s in stages] == [
        ("finetune", "completed"),
        ("evaluate", "completed"),
        ("export", "completed"),
    ]
    assert stages[0].steps == stages[0].total_steps == 40
    assert stages[0].best_metric == "val/accuracy" and stages[0].best_value is not None

    names = metric_names(project, run.run_id)
    assert {"train/loss", "val/accuracy", "test/accuracy", "test/f1_macro"} <= set(names)
    points = read(
        project,
        lambda store: {n: len(store.series(run.run_id, n).xs) for n in ("train/loss", "val/loss")},
    )
    assert isinstance(points, dict)
    assert points["train/loss"] >= 10 and points["val/loss"] == 2

    artifacts = read(project, lambda store: store.artifacts(run.run_id))
    assert isinstance(artifacts, list)
    assert {a.kind for a in artifacts} >= {"checkpoint", "model"}
    run_dir = project / ".tuneboard" / "runs" / run.run_id
    for artifact in artifacts:  # where the cluster wrote it (the same machine here)
        assert Path(artifact.path).is_relative_to(run_dir)
        assert (artifact.bytes, artifact.sha256) == hash_path(Path(artifact.path))

    job = ray_cluster.wait_for_job(submission_of(project, run.run_id))
    assert job["status"] == "SUCCEEDED"
    assert job["metadata"]["tuneboard_run"] == run.run_id


def test_cancelling_stops_the_ray_job(
    ray_env: RayEnv, ray_cluster: RayCluster, project: Path
) -> None:
    command = [
        ray_env.python,
        "-m",
        "tuneboard.cli",
        "run",
        "tiny",
        "--quiet",
        "--executor",
        "ray",
        "--address",
        ray_cluster.address,
        "--set",
        "stages.0.epochs=300",
        "--set",
        "stages.0.patience=300",
    ]
    runner = subprocess.Popen(
        command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        # Metrics reach the database while the job still runs: they stream.
        deadline = time.monotonic() + 240
        while True:
            assert runner.poll() is None, runner.communicate()[0]
            assert time.monotonic() < deadline, "no metrics came back from the Ray job"
            if (project / ".tuneboard" / "tuneboard.duckdb").exists():
                runs = read(project, lambda store: store.list_runs())
                assert isinstance(runs, list)
                if runs and runs[0].status == "running" and metric_names(project, runs[0].run_id):
                    run = runs[0]
                    break
            time.sleep(1)
        cancelled = tuneboard(ray_env, project, "cancel", run.run_id)
        assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr
        output, _ = runner.communicate(timeout=120)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 1, output
    run = only_run(project)
    assert (run.status, run.error) == ("cancelled", "cancelled by the user")
    stages = read(project, lambda store: store.stages(run.run_id))
    assert isinstance(stages, list) and stages[0].status == "cancelled"
    assert stages[0].steps is not None and 0 < stages[0].steps < stages[0].total_steps
    job = ray_cluster.wait_for_job(submission_of(project, run.run_id))
    assert job["status"] == "STOPPED"


def test_a_failed_job_fails_the_run_with_its_log(
    ray_env: RayEnv, ray_cluster: RayCluster, project: Path
) -> None:
    missing = str(project / "no-such-python")
    done = tuneboard(
        ray_env,
        project,
        "run",
        "tiny",
        "--quiet",
        "--executor",
        "ray",
        "--address",
        ray_cluster.address,
        "--executor-set",
        f"python={missing}",
    )
    assert done.returncode == 1, done.stdout + done.stderr
    run = only_run(project)
    assert run.status == "failed"
    assert run.error is not None
    submission = submission_of(project, run.run_id)
    assert run.error.startswith(
        f"Ray job {submission} failed: Job entrypoint command failed with exit code 127"
    )
    assert f"{missing}: not found" in run.error or "No such file" in run.error
    assert ray_cluster.wait_for_job(submission)["status"] == "FAILED"


def use_ray(project: Path, cluster: RayCluster, *settings: str) -> None:
    """Make the project's runs go to `cluster`, with more executor settings (TOML lines)."""
    config = project / "tuneboard.toml"
    table = "\n".join(
        ["[project.executor]", 'plugin = "ray"', f'address = "{cluster.address}"', *settings]
    )
    config.write_text(config.read_text(encoding="utf-8") + f"\n{table}\n", encoding="utf-8")


def test_a_sweep_on_ray_runs_at_most_max_parallel_runs_at_once(
    ray_env: RayEnv, ray_cluster: RayCluster, project: Path
) -> None:
    # Jobs that ask Ray for no CPU: Ray would start all four at once; max_parallel = 2 must not.
    use_ray(project, ray_cluster, "cpus_per_run = 0")
    done = tuneboard(ray_env, project, "run", "tiny_sweep", "--quiet", "--set", "stages.0.epochs=1")
    assert done.returncode == 0, done.stdout + done.stderr
    runs = read(project, lambda store: store.list_runs())
    assert isinstance(runs, list) and len(runs) == 4
    assert {(run.status, run.device) for run in runs} == {("completed", "ray:cpu")}
    assert len({run.sweep_id for run in runs}) == 1
    # From the database: each run's job is live from its submission (an event) to the run's
    # end; when each was submitted, how many were live (its own included)?
    assert all(run.finished_at is not None for run in runs)
    spans = [(submitted_at(project, run.run_id), run.finished_at or 0.0) for run in runs]
    live = [sum(1 for s, e in spans if s <= moment < e) for moment, _ in spans]
    assert max(live) <= 2, spans


def submitted_at(project: Path, run_id: str) -> float:
    events = read(project, lambda store: store.events(run_id))
    assert isinstance(events, list)
    times = [e.time for e in events if SUBMITTED.match(e.message)]
    assert len(times) == 1, [e.message for e in events]
    return times[0]


def test_two_ranks_run_on_two_nodes_into_the_local_database(
    ray_env: RayEnv, ray_cluster: RayCluster, project: Path
) -> None:
    use_ray(project, ray_cluster)
    done = tuneboard(
        ray_env, project, "run", "tiny", "--quiet", "--set", "gpus=2", "--set", "stages.0.epochs=2"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    run = only_run(project)
    assert (run.status, run.error, run.device) == ("completed", None, "ray:cpu")
    assert run.headline == "test/accuracy" and run.headline_value is not None
    stages = read(project, lambda store: store.stages(run.run_id))
    assert isinstance(stages, list)
    assert [s.status for s in stages] == ["completed"] * 3
    assert stages[0].steps == stages[0].total_steps  # the global batch: each rank has half of it
    names = metric_names(project, run.run_id)
    assert {"train/loss", "val/accuracy", "test/accuracy"} <= set(names)

    submission = submission_of(project, run.run_id)
    job = ray_cluster.wait_for_job(submission)
    assert job["status"] == "SUCCEEDED"
    assert " -m tuneboard_ray.train " in job["entrypoint"]
    # Each rank asked for one CPU, and each node has one: the ranks ran on both nodes.
    nodes = ray_cluster.nodes_of(submission)
    assert len(nodes) == 2 and len(set(nodes)) == 2, nodes


def test_cancelling_a_two_rank_run_stops_its_ranks(
    ray_env: RayEnv, ray_cluster: RayCluster, project: Path
) -> None:
    use_ray(project, ray_cluster)
    command = [
        ray_env.python,
        "-m",
        "tuneboard.cli",
        "run",
        "tiny",
        "--quiet",
        "--set",
        "gpus=2",
        "--set",
        "stages.0.epochs=300",
        "--set",
        "stages.0.patience=300",
    ]
    runner = subprocess.Popen(
        command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 300
        while True:  # until rank 0's training metrics stream in: the ranks are stepping
            assert runner.poll() is None, runner.communicate()[0]
            assert time.monotonic() < deadline, "no metrics came back from the ranks"
            if (project / ".tuneboard" / "tuneboard.duckdb").exists():
                runs = read(project, lambda store: store.list_runs())
                assert isinstance(runs, list)
                if (
                    runs
                    and runs[0].status == "running"
                    and "train/loss" in metric_names(project, runs[0].run_id)
                ):
                    run = runs[0]
                    break
            time.sleep(1)
        cancelled = tuneboard(ray_env, project, "cancel", run.run_id)
        assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr
        output, _ = runner.communicate(timeout=120)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 1, output
    run = only_run(project)
    assert (run.status, run.error) == ("cancelled", "cancelled by the user")
    stages = read(project, lambda store: store.stages(run.run_id))
    assert isinstance(stages, list) and stages[0].status == "cancelled"  # stopped between steps
    assert stages[0].steps is not None and 0 < stages[0].steps < stages[0].total_steps
    assert ray_cluster.wait_for_job(submission_of(project, run.run_id))["status"] == "STOPPED"
