"""Running a sweep: a grid or random plan queued at once, or optuna trials asked as runs end.

Every run of a sweep shares one `sweep_id`, and the scheduler runs at most `max_parallel` of
them at a time. In optuna mode a driver thread asks the study for a trial whenever fewer than
`max_parallel` trials run, launches it, and tells the study the best value of the sweep's
metric when the run ends. Each value of that metric a run logs (one per evaluation) is
reported to the trial; when the pruner says the trial is worse than the others at that
evaluation, the run is cancelled and ends `cancelled` with the error
``pruned by optuna at step N ...`` (also in its events).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tuneboard.config.sweeps import Range, SweepPlan, SweepPoint, SweepSpec
from tuneboard.engine.context import metric_higher_is_better
from tuneboard.engine.engine import Engine, new_run_id
from tuneboard.engine.observer import RunObserver
from tuneboard.engine.runner import PreparedRun, prepare_run
from tuneboard.plugins import PluginRegistry
from tuneboard.sdk.errors import ConfigError, TuneboardError
from tuneboard.sdk.scheduler import detect_devices, make_slots
from tuneboard.store.schema import CANCELLED, COMPLETED, FINISHED_STATUSES

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)


@dataclass
class SweepMember:
    """One run of a sweep: its id, the values the sweep chose, and (optuna) its trial."""

    run_id: str
    values: dict[str, Any]
    trial: int | None = None
    pruned: str | None = None


@dataclass
class Sweep:
    """A launched sweep: its id, its runs so far (more come in optuna mode), its end."""

    sweep_id: str
    spec: SweepSpec
    engine: Engine
    members: list[SweepMember] = field(default_factory=list)
    error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _driver: threading.Thread | None = None

    @property
    def run_ids(self) -> list[str]:
        """Ids of the runs launched so far, in launch order."""
        with self._lock:
            return [member.run_id for member in self.members]

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every run of the sweep ended (and optuna asked no more); False on timeout."""
        driver = self._driver
        if driver is not None:
            driver.join(timeout)
            if driver.is_alive():
                return False
        return self.engine.wait(self.run_ids, timeout)

    def stop(self) -> None:
        """Ask no more optuna trials and cancel the sweep's active runs."""
        self._stop.set()
        for run_id in self.run_ids:
            self.engine.cancel(run_id)

    def _add(self, member: SweepMember) -> None:
        with self._lock:
            self.members.append(member)


@dataclass(frozen=True)
class PreparedSweep:
    """A sweep plan whose data loaded: (grid, random) every run prepared, (optuna) optuna."""

    plan: SweepPlan
    runs: tuple[tuple[SweepPoint, PreparedRun], ...]
    optuna: Any = None


def prepare_sweep(plan: SweepPlan, registry: PluginRegistry) -> PreparedSweep:
    """Load and check the data of every run (optuna: of the experiment, and import optuna).

    Raises TuneboardError on bad input, before anything is written. Call from a thread
    other than an event loop: preparing a run loads its dataset.
    """
    if plan.spec.method == "optuna":
        optuna = _import_optuna(plan.spec)
        # The data must load before any trial exists (a trial only changes parameters).
        prepare_run(plan.project, plan.config_for({}, registry), registry)
        return PreparedSweep(plan, (), optuna)
    runs = tuple(
        (point, prepare_run(plan.project, config, registry)) for point, config in plan.points
    )
    return PreparedSweep(plan, runs)


def launch_sweep(
    engine: Engine,
    prepared: PreparedSweep,
    *,
    on_launch: Callable[[SweepMember], None] | None = None,
) -> Sweep:
    """Launch a prepared sweep's runs; return at once (optuna asks trials in a thread)."""
    plan = prepared.plan
    spec = plan.spec
    sweep = Sweep(f"sweep-{new_run_id()}", spec, engine)
    if spec.method == "optuna":
        driver = _OptunaDriver(engine, plan, sweep, prepared.optuna, on_launch)
        sweep._driver = threading.Thread(
            target=driver.run, name=f"tuneboard-{sweep.sweep_id}", daemon=True
        )
        sweep._driver.start()
        return sweep
    objective = sweep_objective(spec, engine.registry)
    for point, item in prepared.runs:
        run_id = engine.launch(
            item,
            sweep_id=sweep.sweep_id,
            sweep_values=point.values,
            sweep_objective=objective,
            max_parallel=spec.max_parallel,
        )
        member = SweepMember(run_id, dict(point.values))
        sweep._add(member)
        if on_launch is not None:
            on_launch(member)
    return sweep


def sweep_objective(spec: SweepSpec, registry: PluginRegistry) -> dict[str, str]:
    """What each run of the sweep records of it: its method, the metric it optimises (a
    trial's objective is the best value of it the run logged) and the resolved direction."""
    if spec.direction == "auto":
        higher = metric_higher_is_better(spec.metric, registry)
    else:
        higher = spec.direction == "maximize"
    return {
        "method": spec.method,
        "metric": spec.metric,
        "direction": "maximize" if higher else "minimize",
    }


def _import_optuna(spec: SweepSpec) -> Any:
    try:
        import optuna
    except ImportError:
        raise ConfigError(
            f'{spec.where}: method = "optuna" needs the optuna package; install it with '
            "pip install 'tuneboard[optuna]'"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def slot_count(engine: Engine) -> int:
    """How many runs the project's device slots hold at once (detecting GPUs imports torch)."""
    project = engine.project
    devices = detect_devices() if project.devices == "auto" else list(project.devices)
    return len(make_slots(devices, project.slots_per_device, project.cpu_slots)) or 1


class _TrialWatcher(RunObserver):
    """Reports a run's values of the sweep metric to its trial; prunes; notes the end."""

    def __init__(
        self,
        engine: Engine,
        trial: optuna.trial.Trial,
        spec: SweepSpec,
        higher: bool,
        ended: threading.Condition,
    ) -> None:
        self.engine = engine
        self.trial = trial
        self.metric = spec.metric
        self.prune = spec.pruner != "none"
        self.higher = higher
        self.ended = ended
        self.evaluations = 0
        self.best: float | None = None
        self.pruned: str | None = None
        self.status: str | None = None
        self.member: SweepMember | None = None

    def metrics(self, run_id: str, stage_index: int, step: int, values: dict[str, float]) -> None:
        """Report the sweep metric (one value per evaluation); cancel the run if pruned."""
        value = values.get(self.metric)
        if value is None or not math.isfinite(value) or self.pruned is not None:
            return
        self.evaluations += 1
        if self.best is None or (value > self.best if self.higher else value < self.best):
            self.best = value
        self.trial.report(value, self.evaluations)
        if self.prune and self.trial.should_prune():
            self.pruned = (
                f"pruned by optuna at step {step} of stage {stage_index}: "
                f"{self.metric} {value:.4g} at evaluation {self.evaluations} is worse than "
                "the median of the finished trials"
            )
            self.engine.store.log_event(run_id, self.pruned, level="warning")
            self.engine.cancel(run_id)

    def run_status(self, run_id: str, status: str, error: str | None) -> None:
        """Note the run's end; a pruned run's error says it was pruned."""
        if status not in FINISHED_STATUSES:
            return
        if status == CANCELLED and self.pruned is not None:
            # Written after the runner's own "cancelled" update, from the same thread.
            self.engine.store.set_run_status(run_id, CANCELLED, error=self.pruned)
        with self.ended:
            self.status = status
            self.ended.notify_all()


class _OptunaDriver:
    """Asks trials while fewer than `max_parallel` run, tells each result when its run ends."""

    def __init__(
        self,
        engine: Engine,
        plan: SweepPlan,
        sweep: Sweep,
        optuna: Any,
        on_launch: Callable[[SweepMember], None] | None,
    ) -> None:
        self.engine = engine
        self.plan = plan
        self.sweep = sweep
        self.optuna = optuna
        self.on_launch = on_launch
        self.spec = plan.spec
        self.ended = threading.Condition()
        self.objective = sweep_objective(self.spec, engine.registry)
        self.higher = self.objective["direction"] == "maximize"

    def run(self) -> None:
        """The driver thread: never raises; a failure stops asking and is kept in `error`."""
        try:
            self._run()
        except Exception as error:  # the sweep's runs already launched carry on
            if self.sweep._stop.is_set() or self.engine.closed:
                return  # stopped (Ctrl-C, quitting the app): the engine may be shut down
            log.exception("optuna sweep %s failed", self.sweep.sweep_id)
            self.sweep.error = f"the optuna search stopped: {error}"

    def _run(self) -> None:
        optuna, spec = self.optuna, self.spec
        limit = spec.max_parallel or slot_count(self.engine)
        pruner = (
            optuna.pruners.MedianPruner(
                n_startup_trials=spec.prune_after_trials,
                n_warmup_steps=spec.prune_after_evaluations + 1,
            )
            if spec.pruner == "median"
            else optuna.pruners.NopPruner()
        )
        study = optuna.create_study(
            direction="maximize" if self.higher else "minimize",
            sampler=optuna.samplers.TPESampler(seed=spec.sampler_seed),
            pruner=pruner,
            study_name=self.sweep.sweep_id,
        )
        running: dict[str, _TrialWatcher] = {}
        asked = 0
        trials = spec.trials or 0
        while True:
            while asked < trials and len(running) < limit and not self._stopped():
                asked += 1
                launched = self._launch_trial(study)
                if launched is not None:
                    running[launched[0]] = launched[1]
            if not running:
                return
            with self.ended:
                self.ended.wait_for(
                    lambda: any(w.status is not None for w in running.values()), timeout=1.0
                )
            for run_id, watcher in list(running.items()):
                if watcher.status is not None:
                    del running[run_id]
                    self._tell(study, run_id, watcher)

    def _stopped(self) -> bool:
        return self.sweep._stop.is_set() or self.engine.closed

    def _launch_trial(self, study: optuna.Study) -> tuple[str, _TrialWatcher] | None:
        trial = study.ask()
        values = {key: _suggest(trial, key, domain) for key, domain in self.spec.parameters.items()}
        try:
            config = self.plan.config_for(values, self.engine.registry)
            prepared = self.engine.prepare(config)
        except TuneboardError as error:
            study.tell(trial, state=self.optuna.trial.TrialState.FAIL)
            log.warning("optuna trial %d not run: %s", trial.number, error)
            return None
        if self._stopped():
            study.tell(trial, state=self.optuna.trial.TrialState.FAIL)
            return None
        watcher = _TrialWatcher(self.engine, trial, self.spec, self.higher, self.ended)
        run_id = self.engine.launch(
            prepared,
            sweep_id=self.sweep.sweep_id,
            sweep_values={**values, "optuna_trial": trial.number},
            sweep_objective=self.objective,
            max_parallel=self.spec.max_parallel,
            watcher=watcher,
        )
        member = SweepMember(run_id, values, trial=trial.number)
        self.sweep._add(member)
        watcher.member = member
        if self.on_launch is not None:
            self.on_launch(member)
        return run_id, watcher

    def _tell(self, study: optuna.Study, run_id: str, watcher: _TrialWatcher) -> None:
        states = self.optuna.trial.TrialState
        if watcher.pruned is not None:
            if watcher.member is not None:
                watcher.member.pruned = watcher.pruned
            study.tell(watcher.trial, state=states.PRUNED)
        elif watcher.status == COMPLETED and watcher.best is not None:
            study.tell(watcher.trial, watcher.best)
        else:
            if watcher.status == COMPLETED:
                self.engine.store.log_event(
                    run_id,
                    f"the sweep metric {self.spec.metric} was never logged: "
                    "optuna counts this trial as failed",
                    level="warning",
                )
            study.tell(watcher.trial, state=states.FAIL)


def _suggest(trial: optuna.trial.Trial, key: str, domain: Range | tuple[Any, ...]) -> Any:
    if not isinstance(domain, Range):
        return trial.suggest_categorical(key, list(domain))
    if domain.integer:
        return trial.suggest_int(key, int(domain.low), int(domain.high), log=domain.log)
    return trial.suggest_float(key, float(domain.low), float(domain.high), log=domain.log)
