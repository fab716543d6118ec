"""Lineage at run creation: which other run's model a new run starts from.

`trace_model` runs while a run is prepared, before anything is written. It turns a
``run:RUN_ID[/STAGE]`` model source into the folder of that run's artifact (refusing, in one
line naming the key and the value, an unknown run, an ambiguous prefix, or a run without
such an artifact), and finds the run that made the model when the source is a path that is,
or lies inside, an artifact some run recorded (a run folder's `export`, a stage's `best`).
The engine records that origin in `run_parents` once the run exists.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuneboard.config import ExperimentConfig, Project
from tuneboard.config.experiment import RUN_PREFIX, parse_run_source
from tuneboard.sdk.errors import ConfigError, TuneboardError
from tuneboard.store import ArtifactRow, RunLink, Store

MODEL_KINDS = ("model", "checkpoint")
"""Artifact kinds that hold a model another run can start from."""


@dataclass(frozen=True)
class ModelOrigin:
    """The artifact of another run that a run's model comes from."""

    parent_run_id: str
    parent_stage_index: int
    kind: str
    artifact_path: str
    artifact_sha256: str
    source: str

    def link(self, run_id: str) -> RunLink:
        """The `run_parents` row of run `run_id`."""
        return RunLink(
            run_id=run_id,
            parent_run_id=self.parent_run_id,
            parent_stage_index=self.parent_stage_index,
            kind=self.kind,
            artifact_path=self.artifact_path,
            artifact_sha256=self.artifact_sha256,
            source=self.source,
        )

    def describe(self) -> str:
        """One line for the run's log, e.g. `run 2026… stage 2 (model)`."""
        return f"run {self.parent_run_id} stage {self.parent_stage_index} ({self.kind})"


def trace_model(
    project: Project, experiment: ExperimentConfig, store: Store | None = None
) -> tuple[ExperimentConfig, ModelOrigin | None]:
    """The experiment with its ``run:`` sources replaced by artifact folders, and where its
    model comes from (None: not from a run of this project).

    `store` is the project's open store; without one the database is opened read-only,
    and only when needed (a ``run:`` source, or a model source that is a local folder).
    Raises `ConfigError` naming the key and the value for a ``run:`` source that names no
    usable artifact.
    """
    spec = experiment.model
    values = {"source": spec.source, "tokenizer": spec.tokenizer}
    named = {key: value for key, value in values.items() if value and _is_run(value)}
    local = _local_folder(project, spec.source) if spec.source and not named else None
    if not named and local is None:
        return experiment, None
    if not project.database.exists():
        if named:
            key, value = next(iter(named.items()))
            raise ConfigError(f"{_where(project, experiment, key)}: {value!r}: no runs yet")
        return experiment, None
    with _opened(project, store) as reader:
        origin = None
        resolved = dict(values)
        for key, value in named.items():
            artifact = _named_artifact(reader, value, _where(project, experiment, key))
            resolved[key] = artifact.path
            if key == "source":
                origin = _origin(artifact, value)
        if local is not None and spec.source:
            found = reader.artifact_holding(str(local))
            if found is not None:
                origin = _origin(found, spec.source)
    if spec.config is not None:
        origin = None  # a new model built from a config: only its tokenizer comes from there
    if named:
        model = dataclasses.replace(
            spec, source=resolved["source"], tokenizer=resolved["tokenizer"]
        )
        experiment = dataclasses.replace(experiment, model=model)
    return experiment, origin


def resolved_table(experiment: ExperimentConfig) -> Mapping[str, Any]:
    """The experiment's table with ``run:`` sources written as the folders they resolved to
    (what a remote machine, which has no database, is given)."""
    raw = dict(experiment.raw)
    model = raw.get("model")
    if isinstance(model, str) and _is_run(model):
        raw["model"] = experiment.model.source
    elif isinstance(model, Mapping):
        table = dict(model)
        for key in ("source", "tokenizer"):
            value = table.get(key)
            if isinstance(value, str) and _is_run(value):
                table[key] = getattr(experiment.model, key)
        raw["model"] = table
    return raw


def _is_run(value: str) -> bool:
    return value.startswith(RUN_PREFIX)


def _where(project: Project, experiment: ExperimentConfig, key: str) -> str:
    """The file, table and key of a model value, as the other checks name them."""
    table = f"{project.file.name}: [experiments.{experiment.name}"
    if isinstance(experiment.raw.get("model"), str):
        return f"{table}]: key 'model'"
    return f"{table}.model]: key {key!r}"


def _local_folder(project: Project, source: str) -> Path | None:
    """The real path of a model source that is a folder or file on this machine."""
    if source.startswith("package:"):
        return None
    candidate = (project.root / Path(source).expanduser()).resolve()
    return candidate if candidate.exists() else None


@contextlib.contextmanager
def _opened(project: Project, store: Store | None) -> Iterator[Store]:
    """The given store, or the project's database opened read-only for the block."""
    if store is not None:
        yield store
        return
    own = Store(project.database, read_only=True)
    try:
        yield own
    finally:
        own.close()


def _named_artifact(store: Store, value: str, where: str) -> ArtifactRow:
    """The artifact a ``run:RUN_ID[/STAGE]`` value names; `ConfigError` when there is none."""
    parsed = parse_run_source(value)
    if parsed is None:  # the configuration refuses these: only a hand-made config gets here
        raise ConfigError(f"{where}: must look like run:RUN_ID or run:RUN_ID/STAGE, got {value!r}")
    run_ref, stage_ref = parsed
    try:
        run = store.get_run(run_ref)
    except TuneboardError as error:
        raise ConfigError(f"{where}: {value!r}: {error}") from None
    artifacts = [a for a in store.artifacts(run.run_id) if a.kind in MODEL_KINDS]
    if stage_ref is None:
        chosen = _last(artifacts, "model") or _last(artifacts, "checkpoint")
        if chosen is None:
            raise ConfigError(
                f"{where}: {value!r}: run {run.run_id} recorded no exported model nor checkpoint"
            )
    else:
        index = _stage_index(store, run.run_id, stage_ref, value, where)
        mine = [a for a in artifacts if a.stage_index == index]
        chosen = _last(mine, "checkpoint") or _last(mine, "model")
        if chosen is None:
            raise ConfigError(
                f"{where}: {value!r}: stage {stage_ref!r} of run {run.run_id} recorded no "
                "checkpoint nor exported model"
            )
    if not Path(chosen.path).exists():
        raise ConfigError(
            f"{where}: {value!r}: the {chosen.kind} run {run.run_id} recorded, "
            f"{chosen.path}, no longer exists"
        )
    return chosen


def _stage_index(store: Store, run_id: str, stage: str, value: str, where: str) -> int:
    """The stage row named `stage` (or of that index) of the run."""
    stages = store.stages(run_id)
    if stage.isdigit() and any(s.stage_index == int(stage) for s in stages):
        return int(stage)
    named = [s.stage_index for s in stages if s.name == stage]
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        rows = ", ".join(str(i) for i in named)
        raise ConfigError(
            f"{where}: {value!r}: run {run_id} has {len(named)} stages named {stage!r} "
            f"(rows {rows}): name it by its row, run:{run_id}/{named[-1]}"
        )
    names = ", ".join(s.name for s in stages) or "none"
    raise ConfigError(f"{where}: {value!r}: run {run_id} has no stage {stage!r} (stages: {names})")


def _last(artifacts: list[ArtifactRow], kind: str) -> ArtifactRow | None:
    """The artifact of `kind` recorded last (a best checkpoint is recorded each time it
    improves: the last one is the folder as it stayed)."""
    found = [a for a in artifacts if a.kind == kind]
    return found[-1] if found else None


def _origin(artifact: ArtifactRow, source: str) -> ModelOrigin:
    return ModelOrigin(
        parent_run_id=artifact.run_id,
        parent_stage_index=artifact.stage_index,
        kind=artifact.kind,
        artifact_path=artifact.path,
        artifact_sha256=artifact.sha256,
        source=source,
    )
