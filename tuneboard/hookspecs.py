"""Every hook a tuneboard plugin can implement.

A plugin is a module (or object) with functions decorated by `tuneboard.hookimpl` whose names
match the hooks below. The plugin API reference in the README is generated from these
docstrings, and a test fails when a hook has none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

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
