"""A run is its stages in order: prepare the data, load the model, run each stage, record all.

`prepare_run` does everything that can fail on bad input (the dataset, labels, the model
location) before a run is created, so bad input never leaves a half-written run behind.
`EngineJob` (the engine's `tuneboard.RunJob`) then executes it in the thread an executor gives.
"""

from __future__ import annotations

import functools
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneboard.config import LOCAL_EXECUTOR, ExperimentConfig, Project
from tuneboard.engine import capture, killpoints
from tuneboard.engine.context import ProjectDatasetContext, RunContext, RunEnvironment
from tuneboard.engine.lifecycle import RunLifecycle
from tuneboard.engine.observer import RunObserver, StageSummary
from tuneboard.engine.resume import ResumePlan, RunRecovery, StageCompleted, StageOutcome
from tuneboard.engine.sysmetrics import SAMPLER
from tuneboard.engine.tasks import build_task
from tuneboard.plugins import PluginRegistry
from tuneboard.sdk.contracts import LogLevel, PipelineState, Splits
from tuneboard.sdk.errors import ConfigError, PluginError, RunCancelled, TuneboardError
from tuneboard.sdk.errors import one_line as _one_line
from tuneboard.sdk.files import make_private
from tuneboard.sdk.recording import RunRecorder
from tuneboard.sdk.status import CANCELLED, COMPLETED, FAILED, FINISHED_STATUSES, RUNNING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from tuneboard.engine.lineage import ModelOrigin
    from tuneboard.remote.records import RecordReplayer
    from tuneboard.store import Store


@dataclass(frozen=True)
class PreparedRun:
    """An experiment whose data is loaded and checked, ready to be launched as a run."""

    project: Project
    experiment: ExperimentConfig
    splits: Splits
    labels: list[str]
    data_files: tuple[tuple[str, Path], ...] = ()  # (dataset key, file) read: for provenance
    origin: ModelOrigin | None = None  # the other run its model comes from (lineage)


def prepare_run(
    project: Project,
    experiment: ExperimentConfig,
    registry: PluginRegistry,
    *,
    store: Store | None = None,
    lineage: bool = True,
) -> PreparedRun:
    """Load and check the experiment's dataset, model and devices; raise on bad input.

    Everything that can be checked without training is (see `tuneboard.engine.preflight`),
    so a run is written only for input that can run. With `lineage`, ``run:`` model sources
    are resolved and the run the model comes from is found (`tuneboard.engine.lineage`), in
    `store` or the project's database opened read-only for it."""
    from tuneboard.engine.data import auto_split, infer_labels
    from tuneboard.engine.lineage import trace_model
    from tuneboard.engine.preflight import check_devices, check_model, check_ranks

    model_origin = None
    if lineage:
        experiment, model_origin = trace_model(project, experiment, store)

    where = f"{project.file.name}: [experiments.{experiment.name}.dataset]"
    dataset_cls = registry.dataset(experiment.dataset.plugin)
    ctx = ProjectDatasetContext(project.root, experiment.task, experiment.seed, where)
    try:
        splits = dataset_cls(experiment.dataset.params).load(ctx)
    except TuneboardError:
        raise
    except Exception as error:  # a bug in a dataset plugin: name the plugin, not a traceback
        origin = registry.origin("dataset", experiment.dataset.plugin)
        raise PluginError(
            f"{where}: dataset plugin {experiment.dataset.plugin!r}{origin} raised "
            f"{one_line(error)}"
        ) from error
    if set(splits) == {"train"}:
        splits = auto_split(splits["train"], experiment.seed)
    task = build_task(experiment, registry)
    labels = infer_labels(splits) if task is None or task.labelled else []
    check_devices(project)
    check_ranks(project, experiment)
    check_train_modes(project, experiment)
    check_model(project, experiment, registry, labels)
    return PreparedRun(project, experiment, splits, labels, tuple(ctx.files), model_origin)


def check_train_modes(project: Project, experiment: ExperimentConfig) -> None:
    """Refuse, in one line naming the stage and key, a stage whose `train` mode cannot run:
    peft adapters the experiment's task cannot take, or qlora on this machine when it lacks
    a CUDA GPU or bitsandbytes (runs of the local executor execute here)."""
    from tuneboard.engine.adapters import unsupported
    from tuneboard.engine.quantization import QLORA, qlora_problem, train_mode

    problem: str | None = None
    checked = False
    for spec in experiment.stages:
        mode = train_mode(spec.params)
        if mode is None:
            continue
        where = f"{project.file.name}: [experiments.{experiment.name}.stages.{spec.index}]"
        where = f"{where} ({spec.name}): key 'train'"
        reason = unsupported(mode, experiment.task)
        if reason:
            raise ConfigError(f"{where}: {reason}")
        if mode == QLORA and project.executor.plugin == LOCAL_EXECUTOR:
            if not checked:
                problem, checked = qlora_problem(project.devices), True
            if problem:
                raise ConfigError(
                    f"{where}: qlora needs a CUDA GPU and bitsandbytes, but {problem} "
                    "(train = 'lora' needs neither)"
                )


class EngineJob:
    """Executes one prepared run on a device, recording everything through its recorder.

    It is the engine's `tuneboard.RunJob` (structurally: the protocol's read-only members are
    plain attributes here). `store` is the project's `Store` in the launching process, a
    `RemoteRecorder` in a remote one (`python -m tuneboard.remote`).
    """

    def __init__(
        self,
        run_id: str,
        prepared: PreparedRun,
        *,
        store: RunRecorder,
        registry: PluginRegistry,
        observer: RunObserver,
        run_dir: Path,
        resume: ResumePlan | None = None,
    ) -> None:
        self.run_id = run_id
        self.prepared = prepared
        self.store = store
        self.registry = registry
        self.observer = observer
        self.run_dir = run_dir
        self.recovery = RunRecovery(run_dir, prepared, resume)  # handoffs; resuming
        self.lifecycle = RunLifecycle(
            registry,
            store,
            run_id=run_id,
            experiment=prepared.experiment.name,
            run_dir=run_dir,
            project_dir=prepared.project.root,
        )
        self._final_metrics: dict[str, float] = {}  # the run's last value of each metric
        self._log: capture.RunLog | None = None  # its output, while it runs here

    @property
    def experiment(self) -> str:
        """The name of the run's experiment."""
        return self.prepared.experiment.name

    @property
    def config(self) -> Mapping[str, Any]:
        """The experiment's resolved table (``run:`` model sources as the folders they name)."""
        from tuneboard.engine.lineage import resolved_table

        return resolved_table(self.prepared.experiment)

    @property
    def project_dir(self) -> Path:
        """The project folder on this machine."""
        return self.prepared.project.root

    @property
    def resumed(self) -> bool:
        """True when the run goes on from its checkpoints (`tuneboard resume`)."""
        return self.recovery.plan is not None

    def log_event(self, message: str, *, level: LogLevel = "info") -> None:
        """Add an event to the run's log."""
        self.store.log_event(self.run_id, message, level=level)

    def replayer(self, device_prefix: str) -> RecordReplayer:
        """A replayer of this run's remote log into its store, observer and lifecycle hooks."""
        from tuneboard.remote.records import RecordReplayer

        return RecordReplayer(self, device_prefix=device_prefix)

    def __call__(self, device: str, cancel: threading.Event) -> None:
        """Run every stage in order on `device`; never raises. What the run's threads print,
        warn and log meanwhile is kept in its log (`tuneboard.engine.capture`). Several
        devices (``cpu,cpu``; a run with gpus = N) run it as N rank processes."""
        from tuneboard.engine.distributed import is_multi, launch

        if is_multi(device):
            launch(self, device, cancel)
            return
        with capture.capturing(self.run_id, self.store) as self._log:
            self._execute(device, cancel)
        self._log = None

    def _execute(self, device: str, cancel: threading.Event) -> None:
        experiment = self.prepared.experiment
        env = RunEnvironment(
            run_id=self.run_id,
            run_dir=self.run_dir,
            device=device,
            experiment=experiment,
            store=self.store,
            registry=self.registry,
            observer=self.observer,
            cancel=cancel,
            project_dir=self.prepared.project.root,
            corrections_file=self.prepared.project.corrections_file,
            responses_file=self.prepared.project.responses_file,
            preferences_file=self.prepared.project.preferences_file,
            task=build_task(experiment, self.registry),
        )
        self._set_status(RUNNING, device=device)
        self.store.log_event(self.run_id, f"run started on {device}")
        self._final_metrics = env.last_values
        self.lifecycle.started(device)
        interval = self.prepared.project.sys_metrics_interval
        try:
            # Sampled while its stages run; stopped before its final status is written.
            with SAMPLER.watching(self.run_id, device, self.store, interval, lambda: env.position):
                killpoints.reached("run.started")
                state = self.recovery.initial_state(env, self._initial_state)
                killpoints.reached("run.loaded")
                env.stage_runner = functools.partial(self._run_stage, env)  # for ctx.run_stages
                for spec in experiment.stages:
                    state = self.recovery.run_stage(env, spec, state, self._run_stage)
            headline = state.metrics.get(
                experiment.headline, env.last_values.get(experiment.headline)
            )
            if headline is not None:
                self.store.set_headline_value(self.run_id, headline)
            killpoints.reached("run.completing")
            self.store.log_event(self.run_id, "run completed")
            self._set_status(COMPLETED)
            killpoints.reached("run.completed")
        except RunCancelled:
            self.store.log_event(self.run_id, "run cancelled", level="warning")
            self._set_status(CANCELLED, error="cancelled by the user")
        except Exception as error:  # a run's failure stays in that run
            reason = one_line(error)
            self.store.log_event(self.run_id, traceback.format_exc(), level="error")
            self._set_status(FAILED, error=reason)
        finally:
            _release_device_memory(device)

    def dropped(self) -> None:
        """The run was cancelled while queued."""
        self.store.log_event(self.run_id, "cancelled before it started", level="warning")
        self._set_status(CANCELLED, error="cancelled before it started")

    def _set_status(
        self, status: str, *, device: str | None = None, error: str | None = None
    ) -> None:
        if status in FINISHED_STATUSES and self._log is not None:
            self._log.close()  # its last lines are kept before the run reads as finished
        self.store.set_run_status(self.run_id, status, device=device, error=error)
        self.observer.run_status(self.run_id, status, error)
        if status in (COMPLETED, FAILED, CANCELLED):
            self.lifecycle.finished(status, error, self._final_metrics)

    def _initial_state(self, env: RunEnvironment) -> PipelineState:
        import torch

        from tuneboard.engine.models import load_model_and_tokenizer

        experiment = self.prepared.experiment
        started = time.perf_counter()
        torch.manual_seed(experiment.seed)  # a new head or model starts the same every time
        from tuneboard.engine.quantization import loads_4bit

        # A pipeline that starts with qlora loads its model 4-bit, never in full precision.
        quantize = loads_4bit([spec.params for spec in experiment.stages])
        model, tokenizer = load_model_and_tokenizer(
            experiment.model,
            experiment.task,
            self.prepared.labels,
            self.prepared.project.root,
            env.task,
            quantize_on=env.device if quantize else None,
        )
        model.to(env.device)
        sizes = ", ".join(f"{name} {len(rows)}" for name, rows in self.prepared.splits.items())
        labels = f"{len(self.prepared.labels)} labels; " if self.prepared.labels else ""
        self.store.log_event(
            self.run_id,
            f"model loaded in {time.perf_counter() - started:.1f} s; {labels}splits: {sizes}",
        )
        return PipelineState(
            task=experiment.task,
            labels=list(self.prepared.labels),
            splits=self.prepared.splits,
            model=model,
            tokenizer=tokenizer,
        )

    def _run_stage(
        self,
        env: RunEnvironment,
        position: int,
        state: PipelineState,
        suffix: str = "",
        *,
        completed: StageCompleted | None = None,
    ) -> PipelineState:
        """Run the pipeline's stage at `position` as the run's next stage row.

        Rows are numbered in the order stages start: the row is the stage's position in the
        pipeline unless a stage (such as `repeat`) ran stages again before it, each again run
        being a row of its own named ``<name><suffix>``.

        `completed` (the handoff writer) is called once the stage returns, after everything
        the stage recorded is committed and before its completion is recorded: a process
        killed in between leaves a handoff that `tuneboard resume` completes the row from.
        """
        spec = self.prepared.experiment.stages[position]
        stage_cls = self.registry.stage(spec.plugin)
        index = max(position, env.next_row)
        env.next_row = index + 1
        name = spec.name + suffix
        ctx = RunContext(env, index, pipeline_index=position)
        params = _plain(spec.params)
        self.store.stage_started(self.run_id, index, name=name, plugin=spec.plugin, params=params)
        self.observer.stage_started(self.run_id, index, name, spec.plugin)
        self.store.log_event(
            self.run_id, f"stage {index} {name} ({spec.plugin}) started", stage_index=index
        )
        killpoints.reached("stage.started", index)
        started = time.perf_counter()
        status = FAILED
        outer, env.position = env.position, (index, 0)  # system metrics go to this stage now
        outer_log = self._log.stage_index if self._log is not None else None
        if self._log is not None:
            self._log.stage_index = index  # so do the lines the run prints
        try:
            ctx.check_stop()
            state = stage_cls(spec.params).run(ctx, state)
            killpoints.reached("stage.returned", index)
            if completed is not None:
                self.store.flush()
                completed(state, self._outcome(ctx))
                killpoints.reached("handoff.written", index)
            status = COMPLETED
            return state
        except RunCancelled:
            status = CANCELLED
            raise
        except TuneboardError:
            raise
        except Exception as error:
            origin = self.registry.origin("stage", spec.plugin)
            raise StageFailed(
                f"stage {index} {name} ({spec.plugin}{origin}): {one_line(error)}"
            ) from error
        finally:
            env.position = outer
            if self._log is not None:
                self._log.stage_index = outer_log
            self._finish_stage(ctx, name, spec.plugin, status, time.perf_counter() - started)

    def _outcome(self, ctx: RunContext) -> StageOutcome:
        step, value = ctx.best if ctx.best else (None, None)
        metric = (
            (ctx.best_metric or _default_monitor(self.prepared.experiment)) if ctx.best else None
        )
        return StageOutcome(ctx.stage_index, metric, step, value)

    def _finish_stage(
        self, ctx: RunContext, name: str, plugin: str, status: str, seconds: float
    ) -> None:
        # Owner-only, whatever wrote the stage's files (a plugin, a library) and the umask.
        make_private(ctx.run_dir)
        outcome = self._outcome(ctx)
        index, metric, step, value = outcome.row, outcome.metric, outcome.step, outcome.value
        self.store.stage_finished(
            self.run_id, index, status, best_metric=metric, best_step=step, best_value=value
        )
        if status == COMPLETED:
            killpoints.reached("stage.finished", index)
        self.store.log_event(
            self.run_id, f"stage {index} {name} {status} in {seconds:.1f} s", stage_index=index
        )
        summary = StageSummary(
            name=name,
            plugin=plugin,
            status=status,
            steps=ctx.steps,
            seconds=seconds,
            best_metric=metric,
            best_step=step,
            best_value=value,
        )
        self.observer.stage_finished(self.run_id, index, summary)
        self.lifecycle.stage_finished(index, summary)


class StageFailed(Exception):
    """A stage raised; the message names the stage and the error in one line."""


def one_line(error: BaseException) -> str:
    """An exception as one line: its message for tuneboard errors and failed stages,
    `Type: message` otherwise."""
    if isinstance(error, StageFailed):
        text = str(error).strip()
        return text.splitlines()[0] if text else type(error).__name__
    return _one_line(error)


def _default_monitor(experiment: ExperimentConfig) -> str:
    return f"val/{experiment.metrics[0]}" if experiment.metrics else "val/loss"


def _plain(params: object) -> dict[str, object]:
    from tuneboard.sdk.params import params_to_dict

    return params_to_dict(params)


def _release_device_memory(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()
