"""Sweeps read as one thing: their trials in order, each trial's objective, the best so far,
and each swept parameter against the objective.

Pure functions over the store's rows (no Textual), shared by the CLI (`tuneboard sweep show`)
and the app (the sweep row of the runs list, the sweep view).

A trial's objective is the best value (in the sweep's direction) of the sweep's metric that
its run logged: what an optuna sweep tells the study. The metric and direction come from the
run's sweep record (its provenance), else from the experiment's `sweep` table, else the
validation form of the run's headline metric. The best trial is the best completed one;
pruned, failed and still running trials are shown but never best.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tuneboard.sdk.status import ACTIVE_STATUSES, CANCELLED, COMPLETED, RUNNING
from tuneboard.ui.render import format_number

if TYPE_CHECKING:
    from tuneboard.store import RunRow, Store, SweepRun

# How the optuna sweeper starts the error of a trial it stopped (tuneboard.engine.sweeper).
PRUNED_PREFIX = "pruned by optuna"
# A sweep record's value that is the optuna trial number, not a parameter.
OPTUNA_TRIAL = "optuna_trial"
# Metric names whose lower values are better, before the metric plugins are known.
LOWER_IS_BETTER = ("loss", "perplexity")

HigherIsBetter = Callable[[str], bool]
Bounds = tuple[float | None, float | None]


@dataclass(frozen=True)
class Objective:
    """The metric a sweep optimises and whether higher values of it are better."""

    metric: str
    higher: bool

    @property
    def arrow(self) -> str:
        """`↑` when higher is better, `↓` otherwise."""
        return "↑" if self.higher else "↓"

    def better(self, value: float, than: float) -> bool:
        """Whether `value` is strictly better than `than`."""
        return value > than if self.higher else value < than

    def of(self, bounds: Bounds | None) -> float | None:
        """A trial's objective from the lowest and highest value its run logged."""
        if bounds is None:
            return None
        return bounds[1] if self.higher else bounds[0]


@dataclass(frozen=True)
class Trial:
    """One run of a sweep: its number in launch order (from 1), the values the sweep chose,
    its objective (None until the metric is logged) and whether optuna pruned it."""

    number: int
    run: RunRow
    values: dict[str, Any] = field(hash=False)
    objective: float | None
    pruned: bool

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self.run.run_id

    @property
    def status(self) -> str:
        """The run's status."""
        return self.run.status

    @property
    def scored(self) -> bool:
        """Whether the trial can be the best: completed, with an objective."""
        return self.status == COMPLETED and self.objective is not None


@dataclass(frozen=True)
class ParamPoints:
    """One swept parameter against the objective: a point per trial with an objective.

    Numbers are placed at their value; anything else (strings, booleans, a mix) is
    categorical, placed at the index of its category (categories in order of first use).
    """

    key: str
    categories: tuple[str, ...]
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    trials: tuple[Trial, ...]

    @property
    def categorical(self) -> bool:
        """Whether the parameter's values are categories."""
        return bool(self.categories)


@dataclass(frozen=True)
class SweepTrials:
    """A sweep: its id, experiment, method (None when unknown), objective and trials."""

    sweep_id: str
    experiment: str
    method: str | None
    objective: Objective
    params: tuple[str, ...]
    trials: tuple[Trial, ...]

    @property
    def best(self) -> Trial | None:
        """The best completed trial (the first of equals), or None."""
        return best_trial(self.trials, self.objective)

    @property
    def active(self) -> int:
        """How many trials are queued or running."""
        return sum(1 for trial in self.trials if trial.status in ACTIVE_STATUSES)

    @property
    def running(self) -> int:
        """How many trials are running (queued ones aside)."""
        return sum(1 for trial in self.trials if trial.status == RUNNING)

    @property
    def pruned(self) -> int:
        """How many trials optuna pruned."""
        return sum(1 for trial in self.trials if trial.pruned)

    @property
    def status(self) -> str:
        """One status for the sweep: running (or queued) while a trial is, else failed or
        interrupted when a trial was (pruned trials aside), else completed."""
        statuses = {trial.status for trial in self.trials if not trial.pruned}
        for status in (RUNNING, "queued", "failed", "interrupted", CANCELLED):
            if status in statuses:
                return status
        return COMPLETED

    def best_so_far(self) -> list[float | None]:
        """For each trial in order, the best objective of the completed trials up to it."""
        return best_so_far(self.trials, self.objective)

    def param_points(self, key: str) -> ParamPoints:
        """Parameter `key` against the objective (see `ParamPoints`)."""
        return param_points(self.trials, key)

    def counts(self) -> str:
        """`12 trials (1 running, 9 queued, 2 pruned)`."""
        total = len(self.trials)
        text = f"{total} trial{'s' if total != 1 else ''}"
        queued = self.active - self.running
        counted = ((self.running, "running"), (queued, "queued"), (self.pruned, "pruned"))
        extra = [f"{n} {word}" for n, word in counted]
        extra = [part for part in extra if not part.startswith("0 ")]
        return f"{text} ({', '.join(extra)})" if extra else text

    def best_value_text(self) -> str:
        """The best trial's objective alone (`0.873`), or empty before there is one."""
        best = self.best
        if best is None or best.objective is None:
            return ""
        return format_number(best.objective)

    def best_text(self) -> str:
        """`best val/accuracy 0.873`, or empty before a trial completed with a value."""
        value = self.best_value_text()
        return f"best {self.objective.metric} {value}" if value else ""


def is_pruned(run: RunRow) -> bool:
    """Whether optuna pruned the run (it then ends cancelled, its error saying so)."""
    return run.status == CANCELLED and (run.error or "").startswith(PRUNED_PREFIX)


def validation_metric(headline: str) -> str:
    """`test/accuracy` -> `val/accuracy`: the value a trial reports at each evaluation."""
    split, slash, name = headline.partition("/")
    return f"val/{name}" if slash and split == "test" else headline


def name_higher_is_better(metric: str) -> bool:
    """The direction of a metric from its name alone (losses and perplexities go down)."""
    base = metric.split("/", 1)[1] if "/" in metric else metric
    return not any(base == word or base.endswith(word) for word in LOWER_IS_BETTER)


def short_id(sweep_id: str) -> str:
    """`sweep-20261203-075300-a3f9` -> `075300-a3f9`: enough to tell a project's sweeps apart
    in a list (`tuneboard sweep show` takes any part of the id)."""
    body = sweep_id.removeprefix("sweep-")
    parts = body.split("-")
    return "-".join(parts[1:]) if len(parts) == 3 and parts[0].isdigit() else body


def param_values(record: Mapping[str, Any]) -> dict[str, Any]:
    """The values a sweep record says the sweep chose, without optuna's trial number."""
    values = record.get("values")
    if not isinstance(values, Mapping):
        return {}
    return {str(key): value for key, value in values.items() if key != OPTUNA_TRIAL}


def resolve_objective(
    runs: Sequence[SweepRun],
    sweep_table: Mapping[str, Any] | None,
    higher_is_better: HigherIsBetter,
) -> Objective:
    """The sweep's objective: from its runs' records, else `sweep_table` (the experiment's
    `sweep` table as written), else the validation form of the headline metric."""
    table = sweep_table or {}
    record = next((r.record for r in runs if isinstance(r.record.get("metric"), str)), {})
    metric = record.get("metric") or table.get("metric")
    if not isinstance(metric, str) or not metric:
        headline = next((r.run.headline for r in runs if r.run.headline), None)
        metric = validation_metric(headline or "val/loss")
    direction = record.get("direction") or table.get("direction") or "auto"
    if direction not in ("maximize", "minimize"):
        return Objective(metric, higher_is_better(metric))
    return Objective(metric, direction == "maximize")


def method_of(runs: Sequence[SweepRun], sweep_table: Mapping[str, Any] | None) -> str | None:
    """The sweep's method, from its records or the experiment's table (None when unknown)."""
    for run in runs:
        method = run.record.get("method")
        if isinstance(method, str):
            return method
        if OPTUNA_TRIAL in (run.record.get("values") or {}):
            return "optuna"
    method = (sweep_table or {}).get("method")
    return method if isinstance(method, str) else None


def build_sweep(
    sweep_id: str,
    runs: Sequence[SweepRun],
    bounds: Mapping[str, Bounds],
    objective: Objective,
    method: str | None = None,
) -> SweepTrials:
    """A sweep from its runs in launch order and each run's metric bounds."""
    trials = tuple(
        Trial(
            number=index,
            run=item.run,
            values=param_values(item.record),
            objective=objective.of(bounds.get(item.run.run_id)),
            pruned=is_pruned(item.run),
        )
        for index, item in enumerate(runs, start=1)
    )
    params = tuple(dict.fromkeys(key for trial in trials for key in trial.values))
    experiment = runs[0].run.experiment if runs else ""
    return SweepTrials(sweep_id, experiment, method, objective, params, trials)


def best_trial(trials: Iterable[Trial], objective: Objective) -> Trial | None:
    """The completed trial with the best objective (the first of equals)."""
    best: Trial | None = None
    for trial in trials:
        if not trial.scored or trial.objective is None:
            continue
        if (
            best is None
            or best.objective is None
            or objective.better(trial.objective, best.objective)
        ):
            best = trial
    return best


def best_so_far(trials: Iterable[Trial], objective: Objective) -> list[float | None]:
    """For each trial in order, the best objective of the completed trials up to it."""
    best: float | None = None
    line = []
    for trial in trials:
        value = trial.objective if trial.scored else None
        if value is not None and (best is None or objective.better(value, best)):
            best = value
        line.append(best)
    return line


def param_points(trials: Sequence[Trial], key: str) -> ParamPoints:
    """Parameter `key` against the objective, for the trials that set it and have one."""
    chosen = [t for t in trials if key in t.values and t.objective is not None]
    values = [t.values[key] for t in chosen]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if numeric:
        xs = tuple(float(v) for v in values)
        categories: tuple[str, ...] = ()
    else:
        labels = [value_text(v) for v in values]
        categories = tuple(dict.fromkeys(labels))
        xs = tuple(float(categories.index(label)) for label in labels)
    ys = tuple(float(t.objective) for t in chosen if t.objective is not None)
    return ParamPoints(key, categories, xs, ys, tuple(chosen))


def value_text(value: Any) -> str:
    """A swept value as text: numbers short (`3.000e-04`), booleans as TOML writes them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return format_number(value)


def param_labels(keys: Sequence[str]) -> dict[str, str]:
    """Short names for parameter keys: the last part (`stages.0.lr` -> `lr`) unless two
    keys share it, then the whole key."""
    last = [key.rsplit(".", 1)[-1] for key in keys]
    return {
        key: short if last.count(short) == 1 else key for key, short in zip(keys, last, strict=True)
    }


def sweep_table(
    experiment_tables: Mapping[str, Mapping[str, Any]], experiment: str
) -> Mapping[str, Any] | None:
    """The experiment's `sweep` table as written (`Project.experiment_tables`), or None (no
    such experiment or table)."""
    table = experiment_tables.get(experiment, {}).get("sweep")
    return table if isinstance(table, Mapping) else None


def load_sweep(
    store: Store,
    sweep_id: str,
    sweep_table_of: Callable[[str], Mapping[str, Any] | None],
    higher_is_better: HigherIsBetter,
) -> SweepTrials:
    """Read a sweep's trials and objectives (two reads of one open of the file).

    `sweep_table_of(experiment)` gives the experiment's `sweep` table, if any.
    """
    with store.hold():
        runs = store.sweep_runs(sweep_id)
        table = sweep_table_of(runs[0].run.experiment) if runs else None
        objective = resolve_objective(runs, table, higher_is_better)
        bounds = store.metric_bounds({r.run.run_id: objective.metric for r in runs})
    return build_sweep(sweep_id, runs, bounds, objective, method_of(runs, table))


class SweepReader:
    """Reads what a list of runs shows of each sweep, again only for what may have changed.

    A run's sweep record never changes and a finished run's metrics do not either, so both
    are kept: once every run of the sweeps has ended, a read costs nothing.
    """

    def __init__(self) -> None:
        self._records: dict[str, dict[str, Any]] = {}
        self._bounds: dict[tuple[str, str], Bounds | None] = {}

    def read(
        self,
        store: Store,
        runs: Sequence[RunRow],
        sweep_table_of: Callable[[str], Mapping[str, Any] | None],
        higher_is_better: HigherIsBetter,
    ) -> dict[str, SweepTrials]:
        """Each sweep among `runs` (sweep id -> its trials), from the records and metrics."""
        from tuneboard.store import SweepRun

        members: dict[str, list[RunRow]] = {}
        for run in runs:
            if run.sweep_id is not None:
                members.setdefault(run.sweep_id, []).append(run)
        if not members:
            return {}
        missing = [r.run_id for group in members.values() for r in group]
        missing = [run_id for run_id in missing if run_id not in self._records]
        if missing:
            found = store.sweep_records(missing)
            self._records.update({run_id: found.get(run_id, {}) for run_id in missing})
        groups: dict[str, tuple[list[SweepRun], Mapping[str, Any] | None, Objective]] = {}
        wanted: dict[str, str] = {}
        for sweep_id, group in members.items():
            group.sort(key=lambda r: (r.created_at or 0.0, r.run_id))
            items = [SweepRun(run, self._records.get(run.run_id, {})) for run in group]
            table = sweep_table_of(group[0].experiment)
            objective = resolve_objective(items, table, higher_is_better)
            groups[sweep_id] = (items, table, objective)
            for run in group:
                if (run.run_id, objective.metric) not in self._bounds:
                    wanted[run.run_id] = objective.metric
        fresh = store.metric_bounds(wanted) if wanted else {}
        current: dict[str, Bounds] = {}
        for items, _, objective in groups.values():
            for item in items:
                key = (item.run.run_id, objective.metric)
                value = fresh.get(item.run.run_id) if item.run.run_id in wanted else None
                bounds = self._bounds.get(key, value)
                if item.run.run_id in wanted and item.run.status not in ACTIVE_STATUSES:
                    self._bounds[key] = value
                if bounds is not None:
                    current[item.run.run_id] = bounds
        return {
            sweep_id: build_sweep(sweep_id, items, current, objective, method_of(items, table))
            for sweep_id, (items, table, objective) in groups.items()
        }
