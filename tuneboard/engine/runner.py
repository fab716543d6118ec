"""A run is its stages in order: prepare the data, load the model, run each stage, record all.

`prepare_run` does everything that can fail on bad input (the dataset, labels, the model
location) before a run is created, so bad input never leaves a half-written run behind.
`RunJob` then executes on a worker thread given by the scheduler.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from tuneboard.api import PipelineState, Splits
from tuneboard.config import ExperimentConfig, Project
from tuneboard.engine.context import ProjectDatasetContext, RunContext, RunEnvironment
from tuneboard.engine.observer import RunObserver, StageSummary
from tuneboard.errors import RunCancelled, TuneboardError
from tuneboard.plugins import PluginRegistry
from tuneboard.store import Store
from tuneboard.store.schema import CANCELLED, COMPLETED, FAILED, RUNNING


@dataclass(frozen=True)
class PreparedRun:
    """An experiment whose data is loaded and checked, ready to be launched as a run."""

    project: Project
    experiment: ExperimentConfig
    splits: Splits
    labels: list[str]


def prepare_run(
    project: Project, experiment: ExperimentConfig, registry: PluginRegistry
) -> PreparedRun:
    """Load and check the experiment's dataset and model location; raise on bad input."""
    from tuneboard.engine.data import auto_split, infer_labels
    from tuneboard.engine.models import check_safe_weights, resolve_model_source

    where = f"{project.file.name}: [experiments.{experiment.name}.dataset]"
    dataset_cls = registry.dataset(experiment.dataset.plugin)
    ctx = ProjectDatasetContext(project.root, experiment.task, experiment.seed, where)
    splits = dataset_cls(experiment.dataset.params).load(ctx)
    if set(splits) == {"train"}:
        splits = auto_split(splits["train"], experiment.seed)
    labels = infer_labels(splits)
    for source in (experiment.model.source, experiment.model.tokenizer):
        if source:
            resolve_model_source(source, project.root)
    if experiment.model.source and experiment.model.config is None:
        check_safe_weights(experiment.model.source, project.root)
    return PreparedRun(project, experiment, splits, labels)


class RunJob:
    """Executes one prepared run on a device, recording everything in the store."""

    def __init__(
        self,
        run_id: str,
        prepared: PreparedRun,
        *,
        store: Store,
        registry: PluginRegistry,
        observer: RunObserver,
        run_dir: Path,
    ) -> None:
        self.run_id = run_id
        self.prepared = prepared
        self.store = store
        self.registry = registry
        self.observer = observer
        self.run_dir = run_dir

    def __call__(self, device: str, cancel: threading.Event) -> None:
        """Run every stage in order on `device`; never raises."""
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
        )
        self._set_status(RUNNING, device=device)
        self.store.log_event(self.run_id, f"run started on {device}")
        try:
            state = self._initial_state(env)
            for spec in experiment.stages:
                state = self._run_stage(env, spec.index, state)
            headline = state.metrics.get(
                experiment.headline, env.last_values.get(experiment.headline)
            )
            if headline is not None:
                self.store.set_headline_value(self.run_id, headline)
            self.store.log_event(self.run_id, "run completed")
            self._set_status(COMPLETED)
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
        self.store.set_run_status(self.run_id, status, device=device, error=error)
        self.observer.run_status(self.run_id, status, error)

    def _initial_state(self, env: RunEnvironment) -> PipelineState:
        from tuneboard.engine.models import load_model_and_tokenizer

        experiment = self.prepared.experiment
        started = time.perf_counter()
        model, tokenizer = load_model_and_tokenizer(
            experiment.model, experiment.task, self.prepared.labels, self.prepared.project.root
        )
        model.to(env.device)
        sizes = ", ".join(f"{name} {len(rows)}" for name, rows in self.prepared.splits.items())
        self.store.log_event(
            self.run_id,
            f"model loaded in {time.perf_counter() - started:.1f} s; "
            f"{len(self.prepared.labels)} labels; splits: {sizes}",
        )
        return PipelineState(
            task=experiment.task,
            labels=list(self.prepared.labels),
            splits=self.prepared.splits,
            model=model,
            tokenizer=tokenizer,
        )

    def _run_stage(self, env: RunEnvironment, index: int, state: PipelineState) -> PipelineState:
        spec = self.prepared.experiment.stages[index]
        stage_cls = self.registry.stage(spec.plugin)
        ctx = RunContext(env, index)
        params = _plain(spec.params)
        self.store.stage_started(
            self.run_id, index, name=spec.name, plugin=spec.plugin, params=params
        )
        self.observer.stage_started(self.run_id, index, spec.name, spec.plugin)
        self.store.log_event(
            self.run_id, f"stage {index} {spec.name} ({spec.plugin}) started", stage_index=index
        )
        started = time.perf_counter()
        status = FAILED
        try:
            ctx.check_stop()
            state = stage_cls(spec.params).run(ctx, state)
            status = COMPLETED
            return state
        except RunCancelled:
            status = CANCELLED
            raise
        except TuneboardError:
            raise
        except Exception as error:
            raise StageFailed(
                f"stage {index} {spec.name} ({spec.plugin}): {one_line(error)}"
            ) from error
        finally:
            self._finish_stage(ctx, spec.name, spec.plugin, status, time.perf_counter() - started)

    def _finish_stage(
        self, ctx: RunContext, name: str, plugin: str, status: str, seconds: float
    ) -> None:
        step, value = ctx.best if ctx.best else (None, None)
        metric = (
            (ctx.best_metric or _default_monitor(self.prepared.experiment)) if ctx.best else None
        )
        index = ctx.stage_index
        self.store.stage_finished(
            self.run_id, index, status, best_metric=metric, best_step=step, best_value=value
        )
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


class StageFailed(Exception):
    """A stage raised; the message names the stage and the error in one line."""


def one_line(error: BaseException) -> str:
    """An exception as one line: its message for tuneboard errors, `Type: message` otherwise."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, TuneboardError | StageFailed):
        return text or type(error).__name__
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _default_monitor(experiment: ExperimentConfig) -> str:
    return f"val/{experiment.metrics[0]}" if experiment.metrics else "val/loss"


def _plain(params: object) -> dict[str, object]:
    from tuneboard.params import params_to_dict

    return params_to_dict(params)


def _release_device_memory(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()
