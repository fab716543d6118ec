"""Executors: picked and validated from tuneboard.toml or the command line; `local` by default."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import CliRunner
from tuneboard import Executor, ProjectInfo, RunJob, param
from tuneboard.config import ExecutorSpec, Project, load_project, parse_executor_settings
from tuneboard.engine.engine import Engine
from tuneboard.engine.executors import LocalExecutor, build_executor, executor_names
from tuneboard.engine.resume import ResumePlan
from tuneboard.plugins import PluginRegistry
from tuneboard.remote.records import RECORD_PREFIX, RecordReplayer, RecordWriter, RemoteRecorder
from tuneboard.sdk.errors import ConfigError
from tuneboard.sdk.remote import RemoteSpec, decode_spec, encode_spec
from tuneboard.sdk.tasks import Generation
from tuneboard.store import Store


@dataclass
class FarParams:
    """Settings of the test executor."""

    address: str = param("http://127.0.0.1:1", "where the cluster is")
    gpus_per_run: float = param(0.0, "GPUs per run", min=0)


class FarAway(Executor[FarParams]):
    """An executor that only keeps what it was given (for checking the seam)."""

    name = "faraway"
    Params = FarParams

    def __init__(self, params: FarParams, project: ProjectInfo) -> None:
        super().__init__(params, project)
        self.jobs: list[RunJob] = []

    def submit(
        self, job: RunJob, *, group: str | None = None, group_limit: int | None = None
    ) -> None:
        """Keep the job; it never runs."""
        self.jobs.append(job)

    def cancel(self, run_id: str) -> bool:
        """Drop the job as a queued one."""
        for job in self.jobs:
            if job.run_id == run_id:
                self.jobs.remove(job)
                job.dropped()
                return True
        return False

    def active(self) -> list[str]:
        """The kept jobs."""
        return [job.run_id for job in self.jobs]

    def wait(self, run_ids: Iterable[str] | None = None, timeout: float | None = None) -> bool:
        """Done when nothing is kept."""
        return not self.jobs

    def shutdown(self, *, cancel: bool = True, timeout: float | None = None) -> bool:
        """Drop everything."""
        for run_id in self.active():
            self.cancel(run_id)
        return True


def project_with(root: Path, project_table: str) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    (root / "tuneboard.toml").write_text(f"[project]\n{project_table}\n", encoding="utf-8")
    return load_project(root)


def message(excinfo: pytest.ExceptionInfo[ConfigError]) -> str:
    return str(excinfo.value)


def test_local_is_the_default(tmp_path: Path) -> None:
    project = project_with(tmp_path, "")
    assert project.executor == ExecutorSpec("local", {})
    executor = build_executor(project, PluginRegistry())
    assert isinstance(executor, LocalExecutor)
    assert executor_names(PluginRegistry.from_classes([FarAway])) == ["local", "faraway"]


def test_executor_as_a_name_or_a_table(tmp_path: Path) -> None:
    registry = PluginRegistry.from_classes([FarAway])
    by_name = project_with(tmp_path / "a", 'executor = "faraway"')
    executor = build_executor(by_name, registry)
    assert isinstance(executor, FarAway)
    assert executor.params == FarParams()
    table = project_with(
        tmp_path / "b",
        '[project.executor]\nplugin = "faraway"\naddress = "http://10.0.0.1:8265"\n'
        "gpus_per_run = 1",
    )
    executor = build_executor(table, registry)
    assert isinstance(executor, FarAway)
    assert executor.params == FarParams("http://10.0.0.1:8265", 1.0)
    assert executor.project is table


def test_unknown_executor_lists_the_available_ones(tmp_path: Path) -> None:
    project = project_with(tmp_path, 'executor = "farway"')
    with pytest.raises(ConfigError) as excinfo:
        build_executor(project, PluginRegistry.from_classes([FarAway]))
    assert message(excinfo).startswith(
        "tuneboard.toml: [project.executor]: unknown executor 'farway' "
        "(did you mean 'faraway'?); available: local, faraway"
    )


def test_executor_keys_are_checked_against_its_params(tmp_path: Path) -> None:
    registry = PluginRegistry.from_classes([FarAway])
    project = project_with(tmp_path / "a", '[project.executor]\nplugin = "faraway"\nadress = "x"')
    with pytest.raises(ConfigError) as excinfo:
        build_executor(project, registry)
    assert message(excinfo) == (
        "tuneboard.toml: [project.executor] (faraway): unknown key 'adress' "
        "(did you mean 'address'?); accepted keys: address, gpus_per_run"
    )
    project = project_with(
        tmp_path / "b", "[project.executor]\nplugin = 'faraway'\ngpus_per_run = -1"
    )
    with pytest.raises(ConfigError, match=r"\(faraway\): key 'gpus_per_run'"):
        build_executor(project, registry)
    project = project_with(tmp_path / "c", "[project.executor]\nplugin = 'local'\ngpus_per_run = 1")
    with pytest.raises(ConfigError, match=r"\(local\): unknown key 'gpus_per_run'"):
        build_executor(project, registry)


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("[project.executor]\naddress = 'x'", "key 'plugin' must name the executor"),
        ("executor = 3", "key 'executor'"),
        ("executor = 'no/slash'", "executor names may use only"),
        ("[project.executor]\nplugin = 'faraway'\nwhen = 2024-01-01", "dates and times"),
    ],
)
def test_bad_executor_tables_fail_when_loaded(tmp_path: Path, table: str, expected: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        project_with(tmp_path, table)
    assert message(excinfo).startswith("tuneboard.toml: [project")
    assert expected in message(excinfo)


def test_command_line_options_override_the_file(tmp_path: Path) -> None:
    registry = PluginRegistry.from_classes([FarAway])
    project = project_with(
        tmp_path, '[project.executor]\nplugin = "faraway"\naddress = "http://a:1"'
    )
    settings = parse_executor_settings(["gpus_per_run=2"])
    spec = project.executor.override(None, {**settings, "address": "http://b:2"})
    executor = build_executor(project, registry, spec)
    assert isinstance(executor, FarAway)
    assert executor.params == FarParams("http://b:2", 2.0)
    # Another executor starts from its own defaults, not the file's keys for the first one.
    assert isinstance(
        build_executor(project, registry, project.executor.override("local", {})), LocalExecutor
    )
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_executor_settings(["gpus_per_run"])


def test_the_engine_hands_runs_to_the_project_executor(
    sentiment_project: Path,
) -> None:
    from tuneboard.plugins import load_plugins

    project = load_project(sentiment_project)
    registry = load_plugins(project.root)
    executor = FarAway(FarParams(), project)
    store = Store(project.database)
    try:
        engine = Engine(project, store, registry, executor=executor)
        run_id = engine.launch(engine.prepare(project.experiment("tiny", registry)))
        assert [job.run_id for job in executor.jobs] == [run_id]
        job = executor.jobs[0]
        assert (job.experiment, job.project_dir, job.resumed) == ("tiny", project.root, False)
        assert job.run_dir == project.runs_dir / run_id
        assert dict(job.config) == dict(project.experiment("tiny", registry).raw)
        job.log_event("handed to faraway", level="warning")
        assert isinstance(job.replayer("faraway"), RecordReplayer)
        assert engine.active() == [run_id]
        assert engine.cancel(run_id)
        assert engine.wait([run_id], timeout=1)
        engine.shutdown()
        assert store.get_run(run_id).status == "cancelled"
        events = [(event.level, event.message) for event in store.events(run_id)]
        assert ("warning", "handed to faraway") in events
    finally:
        store.close()


def test_unknown_executor_on_the_command_line(cli: CliRunner, sentiment_project: Path) -> None:
    done = cli("run", "tiny", "--executor", "rey", cwd=sentiment_project)
    assert done.returncode == 2
    assert done.stderr.startswith(
        "error: --executor rey: unknown executor 'rey'; available: local (executors come from "
    )
    assert not (sentiment_project / ".tuneboard" / "tuneboard.duckdb").exists()


def test_a_remote_run_records_its_writes_as_lines(tmp_path: Path) -> None:
    read, write = os.pipe()
    recorder = RemoteRecorder(RecordWriter(write))
    recorder.set_run_status("r1", "running", device="cpu", at=1.0)
    recorder.log_metrics("r1", 0, 3, {"train/loss": 0.5}, wall_time=2.0)
    recorder.log_event("r1", "hello", level="warning", at=3.0)
    recorder.set_run_status("r1", "completed", at=4.0)
    recorder.flush()
    os.close(write)
    with os.fdopen(read) as lines:
        ops = [line.removeprefix(RECORD_PREFIX).split('"op": "')[1].split('"')[0] for line in lines]
    assert ops == [
        "store.set_run_status",
        "store.log_metrics",
        "store.log_event",
        "store.set_run_status",
    ]
    assert recorder.final_status == "completed"
    assert not hasattr(recorder, "list_runs")  # what a run writes, and nothing to read


ROOT = Path(__file__).resolve().parents[2]


def test_a_remote_runs_generations_are_replayed_into_the_store(tmp_path: Path) -> None:
    read, write = os.pipe()
    recorder = RemoteRecorder(RecordWriter(write))
    outputs = [
        Generation("validation", 0, 'Say "hi"\nnow', "hi", reference="hi", step=4),
        Generation("validation", 1, "Ünï", "", reference=None, step=4),
    ]
    recorder.log_generations("r1", 1, outputs, at=5.0)
    recorder.log_generations("r1", 1, [])  # nothing to write: no record
    os.close(write)
    with os.fdopen(read) as lines:
        log = lines.read()
    assert log.count(RECORD_PREFIX) == 1
    with Store(tmp_path / "db.duckdb", flush_interval=0.05) as store:
        store.create_run("r1", "exp", {})
        # The replayer only needs the launched run's id and store for store records.
        job = SimpleNamespace(run_id="r1", store=store, observer=None, lifecycle=None)
        replayer = RecordReplayer(job, device_prefix="faraway")  # type: ignore[arg-type]
        replayer.feed("noise\n" + log)
        replayer.end()
        store.flush()
        assert replayer.records == 1 and list(replayer.tail) == ["noise"]
        rows = store.generations("r1")
    assert [
        (g.stage_index, g.split, g.idx, g.prompt, g.output, g.reference, g.step, g.created_at)
        for g in rows
    ] == [
        (1, "validation", 0, 'Say "hi"\nnow', "hi", "hi", 4, 5.0),
        (1, "validation", 1, "Ünï", "", None, 4, 5.0),
    ]


def test_replayed_system_metrics_are_stored_but_not_a_runs_final_values(tmp_path: Path) -> None:
    read, write = os.pipe()
    recorder = RemoteRecorder(RecordWriter(write))
    recorder.log_metrics("r1", 0, 3, {"train/loss": 0.5, "sys/process_rss_mb": 300.0}, 2.0)
    os.close(write)
    with os.fdopen(read) as lines:
        log = lines.read()
    with Store(tmp_path / "db.duckdb", flush_interval=0.05) as store:
        store.create_run("r1", "exp", {})
        job = SimpleNamespace(run_id="r1", store=store, observer=None, lifecycle=None)
        replayer = RecordReplayer(job, device_prefix="faraway")  # type: ignore[arg-type]
        replayer.feed(log)
        replayer.end()
        store.flush()
        assert store.metric_names("r1") == ["sys/process_rss_mb", "train/loss"]
    assert replayer.last_values == {"train/loss": 0.5}  # what the run_finished hooks get


def test_a_replayed_resume_drops_the_points_after_its_checkpoint(tmp_path: Path) -> None:
    read, write = os.pipe()
    recorder = RemoteRecorder(RecordWriter(write))
    plan = ResumePlan("r1", position=0, row=0, stage_name="finetune", step=20, handoff=None)
    recorder.resumed(plan)
    os.close(write)
    with os.fdopen(read) as lines:
        log = lines.read()
    with Store(tmp_path / "db.duckdb", flush_interval=0.05) as store:
        store.create_run("r1", "exp", {})
        for step in (10, 20, 25):  # 25: logged by the job after its last checkpoint
            store.log_metrics("r1", 0, step, {"train/loss": 1.0}, float(step))
        store.log_metrics("r1", 1, 1, {"test/accuracy": 0.5}, 30.0)  # a later stage
        job = SimpleNamespace(run_id="r1", store=store, observer=None, lifecycle=None)
        replayer = RecordReplayer(job, device_prefix="faraway")  # type: ignore[arg-type]
        replayer.feed(log)
        replayer.end()
        store.flush()
        assert store.series("r1", "train/loss").xs == [10, 20]
        assert store.metric_names("r1") == ["train/loss"]
        events = [e.message for e in store.events("r1")]
    assert events == ["the remote process goes on from stage 0 finetune at step 20"]


def test_remote_specs_without_resume_still_decode() -> None:
    spec = RemoteSpec("/p", "tiny", {"seed": 1}, "r1", "/p/runs/r1", device="cpu")
    assert "resume" not in json.loads(base64.urlsafe_b64decode(encode_spec(spec)))
    assert decode_spec(encode_spec(spec)) == spec and not spec.resume
    resumed = dataclasses.replace(spec, resume=True)
    assert decode_spec(encode_spec(resumed)).resume
