"""The engine's side of the plugin contracts: the contexts stages and datasets receive."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuneboard.config import DEFAULT_CORRECTIONS, DEFAULT_RESPONSES, ExperimentConfig
from tuneboard.config.experiment import LOSS_VALUES
from tuneboard.engine.observer import RunObserver
from tuneboard.engine.stage_training import StageTraining
from tuneboard.plugins import PluginRegistry
from tuneboard.review.corrections import read_corrections
from tuneboard.review.generations import read_responses
from tuneboard.sdk.contracts import (
    Correction,
    DatasetContext,
    GenerationExample,
    LogLevel,
    Metric,
    PipelineState,
    StageContext,
    Strategy,
)
from tuneboard.sdk.errors import ConfigError, PluginError, RunCancelled, TuneboardError
from tuneboard.sdk.files import private_folder, readable_file, readable_path
from tuneboard.sdk.params import build_params
from tuneboard.sdk.recording import RunRecorder
from tuneboard.sdk.tasks import Generation, Task
from tuneboard.sdk.training import Training

# Metric names whose smaller values are better, whatever the split prefix.
LOWER_IS_BETTER = ("loss", "perplexity")

# Seconds `RunContext.flush` waits for the database before it goes on without.
FLUSH_TIMEOUT = 60.0


class ProjectDatasetContext(DatasetContext):
    """Resolves a dataset table's file names relative to the project folder.

    `files` lists every file resolved, as (key, path): the run's provenance hashes them.
    """

    def __init__(self, project_dir: Path, task: str, seed: int, where: str) -> None:
        self.project_dir = project_dir
        self.task = task
        self.seed = seed
        self._where = where
        self.files: list[tuple[str, Path]] = []

    def resolve(self, path: str, key: str) -> Path:
        """The absolute path of a data file; DataError naming the key when it does not exist."""
        resolved = readable_file(self.project_dir, path, self._where, key)
        self.files.append((key, resolved))
        return resolved


@dataclass
class RunEnvironment:
    """What every stage of one run shares: identity, services and the cancel flag.

    `stage_runner(position, state, suffix)` runs the pipeline's stage at `position` as a new
    stage row (set by the runner; `StageContext.run_stages` uses it); `next_row` is the row
    the next stage to start gets. `position` is the running stage's row and the highest step
    it logged so far (None between stages): where system metrics go (`engine.sysmetrics`).
    """

    run_id: str
    run_dir: Path
    device: str
    experiment: ExperimentConfig
    store: RunRecorder
    registry: PluginRegistry
    observer: RunObserver
    cancel: threading.Event
    last_values: dict[str, float] = field(default_factory=dict)
    _metric_plugins: list[Metric] | None = None
    project_dir: Path | None = None
    stage_runner: Callable[[int, PipelineState, str], PipelineState] | None = None
    next_row: int = 0
    corrections_file: Path | None = None
    responses_file: Path | None = None
    preferences_file: Path | None = None
    task: Task[Any] | None = None
    position: tuple[int, int] | None = None

    def metric_plugins(self) -> list[Metric]:
        """One instance of each metric plugin the experiment names."""
        if self._metric_plugins is None:
            names = [n for n in self.experiment.metrics if n not in LOSS_VALUES]
            self._metric_plugins = [self.registry.metric(n)() for n in names]
        return self._metric_plugins


class RunContext(StageContext):
    """The context of one stage of a run, backed by the store and the run's observer."""

    def __init__(
        self, env: RunEnvironment, stage_index: int, pipeline_index: int | None = None
    ) -> None:
        self._env = env
        self.pipeline = tuple(spec.name for spec in env.experiment.stages)
        self.pipeline_index = stage_index if pipeline_index is None else pipeline_index
        self.run_id = env.run_id
        self.stage_index = stage_index
        self.device = env.device
        self.seed = env.experiment.seed + stage_index
        self.rng = random.Random(self.seed)
        self.run_dir = env.run_dir
        # Checked against the runs folder: a run folder replaced by a link is not followed.
        self.stage_dir = private_folder(
            env.run_dir / f"stage-{stage_index}", env.run_dir.parent, f"run {env.run_id}"
        )
        self.project_dir = env.project_dir or Path.cwd()
        self.max_length = env.experiment.max_length
        self.metric_names = env.experiment.metrics
        self.best: tuple[int, float] | None = None
        self.best_metric: str | None = None
        self.steps = 0
        self.total_steps: int | None = None

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        """Queue metric values for the database and notify observers."""
        values = {name: float(value) for name, value in metrics.items()}
        self._env.store.log_metrics(self.run_id, self.stage_index, step, values, time.time())
        self._env.last_values.update(values)
        at = self._env.position
        if at is None or at[0] != self.stage_index or step > at[1]:
            self._env.position = (self.stage_index, step)
        self._env.observer.metrics(self.run_id, self.stage_index, step, values)

    def progress(self, completed: int, total: int | None = None, description: str = "") -> None:
        """Record progress (coalesced by the store's writer) and notify observers."""
        self.steps = completed
        if total is not None:
            self.total_steps = total
        self._env.store.set_progress(self.run_id, self.stage_index, completed, self.total_steps)
        self._env.observer.progress(
            self.run_id, self.stage_index, completed, self.total_steps, description
        )

    def should_stop(self) -> bool:
        """True once the run was asked to cancel."""
        return self._env.cancel.is_set()

    def check_stop(self) -> None:
        """Raise RunCancelled if the run was asked to cancel."""
        if self._env.cancel.is_set():
            raise RunCancelled(self.run_id)

    def event(self, message: str, level: LogLevel = "info") -> None:
        """Append a line to the run's event log."""
        self._env.store.log_event(self.run_id, message, level=level, stage_index=self.stage_index)

    def flush(self) -> None:
        """Wait (up to a minute) until every metric and event logged so far is stored."""
        with contextlib.suppress(TuneboardError):  # a file held long elsewhere: go on
            self._env.store.flush(timeout=FLUSH_TIMEOUT)

    def artifact(self, path: Path, kind: str) -> None:
        """Record a file or folder this stage produced."""
        self._env.store.add_artifact(self.run_id, self.stage_index, kind, path)

    def report_best(self, step: int, value: float, metric: str | None = None) -> None:
        """Remember the stage's best monitored value; written when the stage ends."""
        self.best = (step, value)
        self.best_metric = metric

    def compute_metrics(
        self, predictions: Sequence[Any], references: Sequence[Any], label_names: Sequence[str]
    ) -> dict[str, float]:
        """Every configured metric over the predictions."""
        values: dict[str, float] = {}
        for metric in self._env.metric_plugins():
            try:
                values.update(metric.compute(predictions, references, label_names))
            except TuneboardError:
                raise
            except Exception as error:  # fail the run with the metric plugin named
                origin = self._env.registry.origin("metric", metric.name)
                first = str(error).strip().splitlines()[0] if str(error).strip() else ""
                raise PluginError(
                    f"metric {metric.name!r}{origin} raised {type(error).__name__}: {first}"
                ) from error
        return values

    def higher_is_better(self, metric: str) -> bool:
        """Direction of a metric: losses and perplexities go down, metric plugins say theirs."""
        return metric_higher_is_better(metric, self._env.registry)

    def strategy(self, name: str, params: Mapping[str, Any] | None = None) -> Strategy[Any]:
        """Build a strategy plugin with validated parameters."""
        cls = self._env.registry.strategy(name)
        where = f"strategy {name!r} of stage {self.stage_index}"
        return cls(build_params(cls.Params, dict(params or {}), where))

    @property
    def training(self) -> Training:
        """The training facade, bound to this stage."""
        return StageTraining(self)

    @property
    def task(self) -> Task[Any] | None:
        """The experiment's task plugin (None for classification)."""
        return self._env.task

    def record_generations(self, generations: Sequence[Generation]) -> None:
        """Queue model outputs for the ``generations`` table."""
        if generations:
            self._env.store.log_generations(self.run_id, self.stage_index, list(generations))

    def corrections_path(self, file: str | None = None) -> Path:
        """`file` in the project folder, else the project's corrections file."""
        if file:
            return readable_path(self.project_dir, file, self._stage_label(), "corrections")
        return self._env.corrections_file or self.project_dir / DEFAULT_CORRECTIONS

    def corrections(self, file: str | None = None) -> list[Correction]:
        """The label corrections in `corrections_path(file)`, the latest per example."""
        return list(read_corrections(self.corrections_path(file)).values())

    def responses_path(self, file: str | None = None) -> Path:
        """`file` in the project folder, else the project's responses file."""
        if file:
            return readable_path(self.project_dir, file, self._stage_label(), "responses")
        return self._env.responses_file or self.project_dir / DEFAULT_RESPONSES

    def preferences_path(self, file: str | None = None) -> Path:
        """`file` in the project folder, else the project's preference pairs file."""
        if file or self._env.preferences_file is None:
            return super().preferences_path(file)
        return self._env.preferences_file

    def responses(self, file: str | None = None) -> list[GenerationExample]:
        """The reviewed responses in `responses_path(file)`, the latest per prompt."""
        rows = read_responses(self.responses_path(file)).values()
        return [GenerationExample(prompt=row["prompt"], response=row["response"]) for row in rows]

    def run_stages(
        self, positions: Sequence[int], state: PipelineState, suffix: str = ""
    ) -> PipelineState:
        """Run earlier stages of the pipeline again, each as a new stage row of this run."""
        runner = self._env.stage_runner
        if runner is None:
            raise TuneboardError("this run cannot run stages again (no stage runner)")
        for position in positions:
            if not 0 <= position < self.pipeline_index:
                raise ConfigError(
                    f"stage {self.pipeline_index} ({self.pipeline[self.pipeline_index]}) can "
                    f"only run the {self.pipeline_index} stages before it again, not {position}"
                )
        for position in positions:
            state = runner(position, state, suffix)
        return state


def metric_higher_is_better(metric: str, registry: PluginRegistry) -> bool:
    """Whether larger values of a logged metric name (such as `val/f1_macro`) are better."""
    base = metric.split("/", 1)[1] if "/" in metric else metric
    if any(base == word or base.endswith(word) for word in LOWER_IS_BETTER):
        return False
    plugins = registry.metrics
    if base in plugins:
        return bool(plugins[base].higher_is_better)
    # Sub-values such as `f1_per_type/PER` take the direction of the plugin they start with.
    for name in sorted(plugins, key=len, reverse=True):
        if base.startswith(name):
            return bool(plugins[name].higher_is_better)
    return True
