"""Resuming a cancelled, failed or interrupted run where it stopped.

Two things on disk make a run resumable:

- a **handoff** per completed pipeline stage, ``<run folder>/handoff/stage-<position>.json``
  (written by `RunRecovery` once the stage returns): where the model it handed on lies (its
  best checkpoint, or a copy saved next to the handoff when the stage changed the model
  without saving it), the splits when the stage changed them (``splits.jsonl``), the labels,
  final metrics, JSON-able `extras`, and the row numbering of the stages;
- the **resume checkpoint** the training loop keeps in a stage's folder while it trains
  (`tuneboard.engine.checkpoint`): weights, optimizer, scheduler, RNGs, position in the
  epoch's batch order, early-stopping and EMA state.

`prepare_resume` checks that a run may be resumed, takes it over for this process and cleans
the database (metric points logged after the checkpoint go); the engine then runs it again
with a `ResumePlan`: the stages with a handoff are skipped, their state restored, and the
first stage without one continues from its checkpoint (or starts over when it has none).

Only imports torch (through the model loader) when a state is restored or a handoff written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tuneboard.config import ExperimentConfig, ModelSpec, StageSpec, experiment_from_raw
from tuneboard.engine import checkpoint, killpoints
from tuneboard.sdk.contracts import (
    ChatTurn,
    Example,
    GenerationExample,
    PipelineState,
    Splits,
    TextExample,
    TokenExample,
)
from tuneboard.sdk.errors import TuneboardError
from tuneboard.sdk.files import is_inside
from tuneboard.store.schema import ACTIVE_STATUSES, COMPLETED

if TYPE_CHECKING:
    from tuneboard.config import Project
    from tuneboard.engine.context import RunEnvironment
    from tuneboard.engine.runner import PreparedRun
    from tuneboard.plugins import PluginRegistry
    from tuneboard.store import Store

HANDOFF_DIR = "handoff"
HANDOFF_FORMAT = 1
MODEL_COPY = "model"
"""Folder (next to a handoff) of a model a stage changed without saving a checkpoint."""

_CACHE_PREFIX = "tuneboard."  # `extras` keys of caches (tokenised features): never saved


# --- handoffs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Handoff:
    """What a completed pipeline stage handed on, as recorded in its handoff file.

    Paths are relative to the run's folder when inside it. `model` is the folder of the
    model the stage handed on (None: the experiment's model as loaded at the start);
    `splits` the file of the data splits (None: as the dataset loads them); `next_row` the
    stage row the next stage gets (rows differ from positions after a `repeat` stage).
    """

    position: int
    name: str
    plugin: str
    next_row: int
    labels: list[str]
    model: str | None
    best_checkpoint: str | None
    splits: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    last_values: dict[str, float] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    # The stage's own row and how it ended (None in handoffs of older versions): what
    # `prepare_resume` records when the process ended before the row's completion was.
    row: int | None = None
    best_metric: str | None = None
    best_step: int | None = None
    best_value: float | None = None
    finished_at: float | None = None


@dataclass(frozen=True)
class StageOutcome:
    """How a stage row ended: its best metric, at which step, and the value (None: none)."""

    row: int
    metric: str | None
    step: int | None
    value: float | None


StageCompleted = Callable[[PipelineState, StageOutcome], None]
"""Called by the runner once a stage returned (the handoff writer)."""


class StageRunner(Protocol):
    """Runs the pipeline stage at a position as the run's next row (`EngineJob._run_stage`)."""

    def __call__(
        self,
        env: RunEnvironment,
        position: int,
        state: PipelineState,
        suffix: str = "",
        *,
        completed: StageCompleted | None = None,
    ) -> PipelineState: ...


def handoff_path(run_dir: Path, position: int) -> Path:
    """Where the handoff of the pipeline stage at `position` is written."""
    return run_dir / HANDOFF_DIR / f"stage-{position}.json"


def read_handoff(run_dir: Path, position: int) -> Handoff | None:
    """The handoff of a stage, or None when it has none (it did not complete)."""
    path = handoff_path(run_dir, position)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.pop("format", None) != HANDOFF_FORMAT:
            raise ValueError(f"format is not {HANDOFF_FORMAT}")
        return Handoff(**data)
    except (OSError, ValueError, TypeError) as error:
        raise TuneboardError(f"handoff {path}: cannot be read: {error}") from None


def _write_json(path: Path, value: Mapping[str, Any]) -> None:
    """Write JSON atomically (a temporary file renamed over the target)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(value, f, indent=1)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _relative(path: Path | None, run_dir: Path) -> str | None:
    if path is None:
        return None
    path = Path(path).resolve()
    try:
        return path.relative_to(run_dir.resolve()).as_posix()
    except ValueError:
        return str(path)


def _absolute(path: str | None, run_dir: Path) -> Path | None:
    return None if path is None else (run_dir / path).resolve()


# --- splits -------------------------------------------------------------------------------


def write_splits(path: Path, splits: Splits) -> None:
    """Write every example of every split as JSON lines (atomically)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for name, rows in splits.items():
                for example in rows:
                    row = {"split": name, "kind": _kind(example), **dataclasses.asdict(example)}
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_splits(path: Path) -> Splits:
    """The splits `write_splits` wrote."""
    splits: Splits = {}
    with path.open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            name, kind = row.pop("split"), row.pop("kind")
            splits.setdefault(name, []).append(_example(kind, row))
    return splits


def _kind(example: Example) -> str:
    if isinstance(example, TokenExample):
        return "tokens"
    return "generation" if isinstance(example, GenerationExample) else "text"


def _example(kind: str, row: dict[str, Any]) -> Example:
    """The example a `write_splits` row holds (lists back to tuples, turns to `ChatTurn`s)."""
    if kind == "tokens":
        tags = row["tags"]
        return TokenExample(
            tokens=tuple(row["tokens"]),
            tags=None if tags is None else tuple(tags),
            weight=row["weight"],
        )
    if kind == "generation":
        messages = row["messages"]
        return GenerationExample(
            prompt=row["prompt"],
            response=row["response"],
            messages=None if messages is None else tuple(ChatTurn(**t) for t in messages),
            weight=row["weight"],
        )
    return TextExample(**row)


def splits_key(splits: Splits) -> str:
    """A hash of the splits' content (to notice a stage that changed them); never raises:
    splits it cannot hash get a key of their own, as if changed."""
    try:
        return str(hash(tuple((name, tuple(rows)) for name, rows in sorted(splits.items()))))
    except TypeError:
        return _unique()


def model_key(model: Any) -> str:
    """A fingerprint of a model's weights (to notice a stage that changed them); never
    raises: a model it cannot read gets a key of its own, as if changed."""
    if model is None:
        return ""
    try:
        return _weights_digest(model)
    except Exception:  # not a torch module: treated as changed every time
        return _unique()


def _unique() -> str:
    return f"unreadable-{time.monotonic_ns()}"


def _weights_digest(model: Any) -> str:
    import torch

    digest = hashlib.sha256()
    with torch.no_grad():
        sums = []
        for name, tensor in model.state_dict().items():
            digest.update(f"{name}{tuple(tensor.shape)}".encode())
            if tensor.is_floating_point():
                sums.append(tensor.sum(dtype=torch.float64))
                sums.append(tensor.abs().sum(dtype=torch.float64))
        if sums:
            digest.update(torch.stack(sums).cpu().numpy().tobytes())
    return digest.hexdigest()


# --- the plan -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ResumePlan:
    """Where a resumed run goes on: the pipeline `position` (and stage `row`) to continue,
    the resume checkpoint's `step` in it (None: that stage starts over), the `handoff`
    of the stage before it (None: nothing completed), and the handoffs of every stage that
    completed (`completed`, in pipeline order)."""

    run_id: str
    position: int
    row: int
    stage_name: str | None
    step: int | None
    handoff: Handoff | None
    completed: tuple[Handoff, ...] = ()

    def describe(self) -> str:
        """Where the run goes on, in words: ``stage 1 full at step 10``."""
        if self.stage_name is None:
            return "its end (every stage had completed)"
        where = f"stage {self.row} {self.stage_name}"
        if self.step is None:
            return f"{where} (from its beginning)"
        return f"{where} at step {self.step}"


def plan_resume(run_id: str, run_dir: Path, experiment: ExperimentConfig) -> ResumePlan:
    """Read what a run left on disk and say where it goes on: a run that saved nothing (it
    was killed before its first stage completed or checkpointed) starts over from stage 0.

    Raise `TuneboardError` when a handoff cannot be read or names files that are gone.
    """
    handoff: Handoff | None = None
    completed: list[Handoff] = []
    position = 0
    for spec in experiment.stages:
        found = read_handoff(run_dir, spec.index)
        if found is None:
            break
        if (found.position, found.plugin) != (spec.index, spec.plugin):
            raise TuneboardError(
                f"handoff {handoff_path(run_dir, spec.index)}: it is of stage "
                f"{found.position} ({found.plugin}), not of stage {spec.index} ({spec.plugin})"
            )
        for key in ("model", "splits", "best_checkpoint"):
            path = _absolute(getattr(found, key), run_dir)
            if path is not None and not path.exists():
                raise TuneboardError(
                    f"run {run_id}: {path} (the {key.replace('_', ' ')} stage {spec.index} "
                    "handed on) is gone; the run cannot be resumed"
                )
        handoff, position = found, spec.index + 1
        completed.append(found)
    row = max(position, handoff.next_row if handoff else 0)
    step: int | None = None
    name: str | None = None
    if position < len(experiment.stages):
        name = experiment.stages[position].name
        folder = checkpoint.latest(run_dir / f"stage-{row}")
        if folder is not None:
            step = int(checkpoint.read_meta(folder)["step"])
    return ResumePlan(run_id, position, row, name, step, handoff, tuple(completed))


def prepare_resume(
    project: Project, store: Store, registry: PluginRegistry, run_id: str
) -> tuple[PreparedRun, ResumePlan]:
    """Check that a run can be resumed and take it over: it becomes queued, owned by this
    process, with its metric points after the resume point deleted (one statement).

    Raise `TuneboardError` (nothing changed) for an unknown run, a completed one, one that
    runs in a live process, bad input, or handoffs that cannot be used.
    """
    from tuneboard.engine.runner import prepare_run

    run = store.get_run(run_id)  # an id prefix works
    run_id = run.run_id
    if run.status == COMPLETED:
        raise TuneboardError(f"run {run_id} completed; there is nothing to resume")
    if run.status in ACTIVE_STATUSES:
        where = f"process {run.owner_pid} on {run.owner_host}" if run.owner_pid else "a process"
        raise TuneboardError(
            f"run {run_id} is {run.status} in {where}, which is still alive; "
            f"cancel it first (tuneboard cancel {run_id}) or let it finish"
        )
    experiment = experiment_from_raw(project, run.experiment, run.config, registry)
    prepared = prepare_run(project, experiment, registry, store=store)
    run_dir = project.runs_dir / run_id
    if run_dir.is_symlink() or (run_dir.exists() and not is_inside(run_dir, project.runs_dir)):
        raise TuneboardError(f"run {run_id}: its folder {run_dir} is a symbolic link; not resumed")
    plan = plan_resume(run_id, run_dir, experiment)
    check_labels(plan, prepared)
    store.claim_run(run_id, from_statuses=(run.status,))
    store.flush()
    claimed = store.get_run(run_id)
    if (claimed.owner_host, claimed.owner_pid) != (socket.gethostname(), os.getpid()):
        raise TuneboardError(f"run {run_id} is being resumed by another process")
    killpoints.reached("resume.claimed")
    clear_later_stages(run_dir, plan)
    record_resume_point(store, run_id, plan.row, plan.step, plan.completed)
    store.log_event(run_id, f"resumed from {plan.describe()}")
    store.flush()
    return prepared, plan


def check_labels(plan: ResumePlan, prepared: PreparedRun) -> None:
    """Raise `TuneboardError` when the data's labels changed since the run's last handoff."""
    if plan.handoff is not None and plan.handoff.labels != prepared.labels:
        raise TuneboardError(
            f"run {plan.run_id}: the data's labels changed since it ran "
            f"({plan.handoff.labels} -> {prepared.labels}); launch the experiment again"
        )


def clear_later_stages(run_dir: Path, plan: ResumePlan) -> None:
    """Remove the leftover checkpoints of the stages after the resume point (they start over)."""
    for folder in run_dir.glob("stage-*"):
        suffix = folder.name.removeprefix("stage-")
        if suffix.isdigit() and int(suffix) > plan.row:
            checkpoint.clear(folder)


def record_resume_point(
    store: Store, run_id: str, row: int, step: int | None, completed: Iterable[Handoff]
) -> None:
    """Make the database match a run resumed at stage `row`, `step`: the metric points logged
    after that point go, and the stage rows whose handoff is on disk are completed."""
    store.delete_metrics_after(run_id, row, step)
    _complete_handed_on_rows(store, run_id, completed)


def _complete_handed_on_rows(store: Store, run_id: str, handoffs: Iterable[Handoff]) -> None:
    """Record as completed, from its handoff, each stage row whose process was killed after
    the handoff was written and before the row's completion was committed (the handoff is
    what says a stage completed: such a stage is skipped, never run twice)."""
    status = {row.stage_index: row.status for row in store.stages(run_id)}
    for handoff in handoffs:
        row = handoff.row
        if row is None or status.get(row, COMPLETED) == COMPLETED:
            continue
        store.stage_finished(
            run_id,
            row,
            COMPLETED,
            best_metric=handoff.best_metric,
            best_step=handoff.best_step,
            best_value=handoff.best_value,
            at=handoff.finished_at,
        )
        store.log_event(
            run_id,
            f"stage {row} {handoff.name} completed (recorded from its handoff: the process "
            "ended before it could record it)",
            stage_index=row,
        )


# --- the runner's side --------------------------------------------------------------------


@dataclass
class _Before:
    model: str
    best_checkpoint: Path | None
    splits: str


class RunRecovery:
    """What a run does for resuming: restore the starting state of a resumed run, skip
    the stages that completed before, and write a handoff after each stage that completes."""

    def __init__(self, run_dir: Path, prepared: PreparedRun, plan: ResumePlan | None) -> None:
        self.run_dir = run_dir
        self.prepared = prepared
        self.plan = plan
        handoff = plan.handoff if plan else None
        self._model = handoff.model if handoff else None
        self._splits = handoff.splits if handoff else None

    def initial_state(
        self, env: RunEnvironment, load: Callable[[RunEnvironment], PipelineState]
    ) -> PipelineState:
        """The state the first stage to run gets: `load(env)` for a new run (or one resumed
        in its first stage); for a resumed run, what the last completed stage handed on."""
        handoff = self.plan.handoff if self.plan else None
        if handoff is None:
            return load(env)
        from tuneboard.engine.models import load_model_and_tokenizer

        started = time.perf_counter()
        env.next_row = handoff.next_row
        env.last_values.update(handoff.last_values)
        model_dir = _absolute(handoff.model, self.run_dir)
        if model_dir is None:
            state = load(env)
        else:
            spec = ModelSpec(source=str(model_dir))
            model, tokenizer = load_model_and_tokenizer(
                spec,
                self.prepared.experiment.task,
                handoff.labels,
                self.prepared.project.root,
                env.task,
            )
            model.to(env.device)
            state = PipelineState(
                task=self.prepared.experiment.task,
                labels=list(handoff.labels),
                splits=self.prepared.splits,
                model=model,
                tokenizer=tokenizer,
            )
        splits_file = _absolute(handoff.splits, self.run_dir)
        if splits_file is not None:
            state.splits = read_splits(splits_file)
        state.labels = list(handoff.labels)
        state.best_checkpoint = _absolute(handoff.best_checkpoint, self.run_dir)
        state.metrics = dict(handoff.metrics)
        state.extras.update(handoff.extras)
        source = handoff.model or "the experiment's model"
        env.store.log_event(
            env.run_id,
            f"restored what stage {handoff.position} {handoff.name} handed on (model: {source})"
            f" in {time.perf_counter() - started:.1f} s; stages 0-{handoff.position} skipped",
        )
        return state

    def run_stage(
        self, env: RunEnvironment, spec: StageSpec, state: PipelineState, run: StageRunner
    ) -> PipelineState:
        """Run the pipeline stage `spec` with `run`, which writes its handoff once it returns;
        a stage that completed before the run was resumed is skipped (its state is restored
        already)."""
        if self.plan is not None and spec.index < self.plan.position:
            return state
        before = _Before(model_key(state.model), state.best_checkpoint, splits_key(state.splits))

        def completed(state: PipelineState, outcome: StageOutcome) -> None:
            try:
                self._write_handoff(env, spec, state, before, outcome)
            except Exception as error:  # never fails a stage that completed
                env.store.log_event(
                    env.run_id,
                    f"could not save what stage {spec.index} {spec.name} handed on, so a "
                    f"resumed run will run it again: {error}",
                    level="warning",
                )

        return run(env, spec.index, state, completed=completed)

    def _write_handoff(
        self,
        env: RunEnvironment,
        spec: StageSpec,
        state: PipelineState,
        before: _Before,
        outcome: StageOutcome,
    ) -> None:
        folder = self.run_dir / HANDOFF_DIR
        if state.best_checkpoint != before.best_checkpoint:
            self._model = _relative(state.best_checkpoint, self.run_dir)
        elif state.model is not None and model_key(state.model) != before.model:
            # The stage changed the model without saving it: keep a copy to restore.
            copy = folder / f"{MODEL_COPY}-{spec.index}"
            from tuneboard.engine.adapters import save_model

            save_model(state.model, state.tokenizer, copy)  # a kept adapter with its base
            self._model = _relative(copy, self.run_dir)
        if splits_key(state.splits) != before.splits:
            path = folder / f"splits-{spec.index}.jsonl"
            write_splits(path, state.splits)
            self._splits = _relative(path, self.run_dir)
        handoff = Handoff(
            position=spec.index,
            name=spec.name,
            plugin=spec.plugin,
            next_row=env.next_row,
            labels=list(state.labels),
            model=self._model,
            best_checkpoint=_relative(state.best_checkpoint, self.run_dir),
            splits=self._splits,
            metrics=dict(state.metrics),
            last_values=dict(env.last_values),
            extras=dict(_plain_extras(state.extras.items())),
            row=outcome.row,
            best_metric=outcome.metric,
            best_step=outcome.step,
            best_value=outcome.value,
            finished_at=time.time(),
        )
        value = {"format": HANDOFF_FORMAT, **dataclasses.asdict(handoff)}
        _write_json(handoff_path(self.run_dir, spec.index), value)


def _plain_extras(items: Iterable[tuple[str, Any]]) -> Iterable[tuple[str, Any]]:
    """The `extras` that JSON can hold (caches and other objects are not kept)."""
    for key, value in items:
        if key.startswith(_CACHE_PREFIX):
            continue
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        yield key, value
