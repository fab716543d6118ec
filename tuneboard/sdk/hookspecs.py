"""Every hook a tuneboard plugin can implement.

A plugin is a module (or object) with functions decorated by `tuneboard.hookimpl` whose names
match the hooks below. The plugin API reference (docs/REFERENCE.md) is generated from these
docstrings, and a test fails when a hook has none.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

hookspec = pluggy.HookspecMarker("tuneboard")
hookimpl = pluggy.HookimplMarker("tuneboard")

# --- registration -------------------------------------------------------------------------
# Each registration hook gets a `register` callback; call it once per class you provide.


@hookspec
def register_stages(register: Callable[[type[Any]], None]) -> None:
    """Register stage plugins.

    Call `register(StageClass)` for each `tuneboard.Stage` subclass the plugin provides. The
    class's `name` is what `plugin = "..."` in a `[[experiments.NAME.stages]]` table refers to.
    """


@hookspec
def register_datasets(register: Callable[[type[Any]], None]) -> None:
    """Register dataset plugins.

    Call `register(DatasetClass)` for each `tuneboard.Dataset` subclass the plugin provides.
    The class's `name` is what `plugin = "..."` in an experiment's `[dataset]` table refers to.
    """


@hookspec
def register_metrics(register: Callable[[type[Any]], None]) -> None:
    """Register metric plugins.

    Call `register(MetricClass)` for each `tuneboard.Metric` subclass the plugin provides. The
    class's `name` is what an experiment's `metrics = [...]` list refers to.
    """


@hookspec
def register_strategies(register: Callable[[type[Any]], None]) -> None:
    """Register training-step strategy plugins.

    Call `register(StrategyClass)` for each `tuneboard.Strategy` subclass the plugin provides.
    The class's `name` is what a training stage's `strategy = "..."` parameter refers to.
    """


@hookspec
def register_executors(register: Callable[[type[Any]], None]) -> None:
    """Register executor plugins: places where runs execute (a cluster, a job queue).

    Call `register(ExecutorClass)` for each `tuneboard.Executor` subclass the plugin provides.
    The class's `name` is what `executor = "..."` (or `plugin = "..."` in a
    `[project.executor]` table) and `tuneboard run --executor NAME` refer to; its `Params`
    declare the other keys of that table. The built-in `local` executor (this machine's
    device slots) is the default.
    """


@hookspec
def register_tasks(register: Callable[[type[Any]], None]) -> None:
    """Register task plugins: kinds of model and how they learn (``causal-lm``, ``seq2seq``).

    Call `register(TaskClass)` for each `tuneboard.Task` subclass the plugin provides. The
    class's `name` is what an experiment's `task = "..."` (or `plugin = "..."` in an
    `[experiments.NAME.task]` table) refers to; its `Params` declare that table's other keys.
    """


# --- command line -------------------------------------------------------------------------
# Called by the `tuneboard` command when it lists its commands (`tuneboard --help`) or meets a
# name that is not one of its own (and by `tuneboard plugins`); never for its own commands, so
# they stay fast.


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the `tuneboard` command line.

    `cli` is a click group of the plugin's own: decorate functions with `@cli.command()` (or
    `@cli.group()`), or call `cli.add_command(...)`; each then runs as `tuneboard NAME`.
    Installed plugins add commands everywhere; a project's `plugins/` files add them inside
    that project (the current folder's, or the one `tuneboard --project DIR NAME` names). A
    command whose name is one of tuneboard's own (`run`, `sql`, ...) or another plugin's is
    left out and reported. When the hook raises, none of the plugin's commands are added and
    the error is reported (`tuneboard plugins` lists it); the rest of the plugin and the
    command line work as before. The return value is ignored.
    """


# --- run lifecycle ------------------------------------------------------------------------
# Called for every run of every experiment, on the thread that queues or runs it: return
# quickly (start your own thread for slow work such as a webhook). A plugin that raises here is
# skipped for that call, with a warning event naming it in the run's log; the run goes on.
# Implement only the arguments you need: pluggy passes a hook just the ones it names.


@hookspec
def run_queued(run_id: str, experiment: str, run_dir: Path, project_dir: Path) -> None:
    """A run was created and waits for a free device slot.

    `run_id` is the run's id, `experiment` the experiment's name, `run_dir` the run's folder
    (it exists already) and `project_dir` the project folder. The return value is ignored.
    """


@hookspec
def run_started(
    run_id: str, experiment: str, device: str, run_dir: Path, project_dir: Path
) -> None:
    """A run got its device (``"cpu"`` or ``"cuda:N"``) and is about to load its model.

    Arguments as for `run_queued`, plus `device`. The return value is ignored.
    """


@hookspec
def stage_finished(
    run_id: str,
    stage_index: int,
    name: str,
    plugin: str,
    status: str,
    steps: int,
    seconds: float,
    best_metric: str | None,
    best_value: float | None,
    run_dir: Path,
) -> None:
    """A stage of a run ended: `status` is ``completed``, ``failed`` or ``cancelled``.

    `stage_index` is its 0-based position, `name` its name in the experiment and `plugin` the
    stage plugin it ran; `steps` the progress it reached, `seconds` how long it took, and
    `best_metric` / `best_value` the best monitored value it reported (None when it reported
    none). Called once per stage that started, before the next one starts.
    """


@hookspec
def run_finished(
    run_id: str,
    experiment: str,
    status: str,
    error: str | None,
    metrics: dict[str, float],
    run_dir: Path,
    project_dir: Path,
) -> None:
    """A run ended: `status` is ``completed``, ``failed`` or ``cancelled``.

    Called exactly once for every queued run, also for one cancelled before it started.
    `error` is the one-line reason for a failed or cancelled run (None when completed);
    `metrics` maps each metric name the run logged (such as ``test/accuracy``) to its last
    value. The run's status is already in the database. The return value is ignored.
    """
