"""Loading plugins: the built-ins, installed packages and a project's own `plugins/` folder.

Every plugin comes through the same door, the hooks in `tuneboard.sdk.hookspecs`:

1. every entry point in the ``tuneboard`` group of the installed packages. The built-in
   stages, datasets, metrics and strategies come this way too (tuneboard's own
   ``pyproject.toml`` lists them); they are marked ``built-in``, the others ``entry point``;
2. every ``*.py`` file in the project's ``plugins/`` folder, marked ``project`` (files whose
   name starts with ``_`` are skipped). A file is imported as
   ``tuneboard_project_plugins.<folder hash>.<stem>`` so two projects never clash.

A plugin may also add commands to the ``tuneboard`` command line with the
``register_commands`` hook; `PluginRegistry.commands` calls it (the CLI does, when it needs
the commands plugins add). A plugin whose ``register_commands`` raises keeps its other parts;
only its commands are left out, and the error is returned for the CLI to report.

A plugin that fails is left out and reported, with a one-line error, in
`PluginRegistry.failures`; every other plugin keeps working. Failing means: it does not
import, it implements a hook that does not exist (a misspelt name, caught by pluggy's
``check_pending``), a registration hook raises, or a class it registers breaks its contract
(wrong base class, no valid ``name``, ``Params`` not a dataclass, a name another plugin took).

Environment variables, each a comma-separated list of plugin names (entry-point names such
as ``builtin_stages``, or the stems of project plugin files):

``TUNEBOARD_PLUGINS_ALLOW``
    When set and not empty, only the plugins named here are loaded.
``TUNEBOARD_PLUGINS_BLOCK``
    The plugins named here are never loaded; this wins over the allow list. Built-ins can be
    blocked like any other plugin.

`load_plugins` caches one registry per project folder and values of these variables, so it
is cheap to call again; pass ``reload=True`` (or call `clear_cache`) to load afresh.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import re
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import pluggy

from tuneboard.sdk import hookspecs
from tuneboard.sdk.contracts import TASKS, Dataset, Metric, Stage, Strategy
from tuneboard.sdk.errors import ConfigError, PluginError
from tuneboard.sdk.execution import Executor
from tuneboard.sdk.hookspecs import hookimpl
from tuneboard.sdk.params import check_value, describe_params, did_you_mean
from tuneboard.sdk.tasks import Task

if TYPE_CHECKING:
    import click

ENTRY_POINT_GROUP = "tuneboard"
ALLOW_ENV = "TUNEBOARD_PLUGINS_ALLOW"
BLOCK_ENV = "TUNEBOARD_PLUGINS_BLOCK"
PROJECT_PLUGINS_DIR = "plugins"

# Used for those of them the installed metadata lacks: when tuneboard runs from a source tree
# that was never installed, or whose editable install predates a built-in; a test keeps this
# in step with pyproject.toml.
BUILTIN_ENTRY_POINTS: Mapping[str, str] = {
    "builtin_datasets": "tuneboard.builtin.datasets",
    "builtin_metrics": "tuneboard.builtin.metrics",
    "builtin_prompt_tasks": "tuneboard.builtin.prompt_tasks",
    "builtin_stages": "tuneboard.builtin.stages",
    "builtin_strategies": "tuneboard.builtin.strategies",
    "builtin_tasks": "tuneboard.builtin.generation",
}

# Names of plugins and of the classes they register: they appear in tuneboard.toml, in
# `--set` paths and in folder names.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")

PluginSource = Literal["built-in", "entry point", "project"]
PluginKind = Literal["stage", "dataset", "metric", "strategy", "executor", "task"]
KINDS: tuple[PluginKind, ...] = ("stage", "dataset", "metric", "strategy", "executor", "task")

_HOOKS: Mapping[PluginKind, str] = {
    "stage": "register_stages",
    "dataset": "register_datasets",
    "metric": "register_metrics",
    "strategy": "register_strategies",
    "executor": "register_executors",
    "task": "register_tasks",
}
# Hooks that tell plugins about runs; see `PluginRegistry.call_lifecycle`.
LIFECYCLE_HOOKS = ("run_queued", "run_started", "stage_finished", "run_finished")
# The hook that adds commands to the command line; see `PluginRegistry.commands`.
COMMANDS_HOOK = "register_commands"
# Hooks that `PluginInfo.describe` names, beside the classes a plugin provides.
DESCRIBED_HOOKS = (*LIFECYCLE_HOOKS, COMMANDS_HOOK)

_BASES: Mapping[PluginKind, type] = {
    "stage": Stage,
    "dataset": Dataset,
    "metric": Metric,
    "strategy": Strategy,
    "executor": Executor,
    "task": Task,
}

C = TypeVar("C")


@dataclass(frozen=True)
class PluginInfo:
    """A plugin that loaded: where it came from and what it provides.

    `location` is the entry point's ``module[:object]`` or the project file's path;
    `provides` maps a kind (``stage``, ``dataset``, ``metric``, ``strategy``) to the names
    registered; `hooks` lists the hooks the plugin implements. `distribution` is the
    installed package's name for entry points; `path` the file its code was loaded from.
    """

    name: str
    version: str | None
    source: PluginSource
    location: str
    provides: dict[str, list[str]] = field(default_factory=dict)
    hooks: list[str] = field(default_factory=list)
    distribution: str | None = None
    path: str | None = None

    def describe(self) -> str:
        """What it provides, on one line: ``stage: calibrate; hooks: run_finished``."""
        parts = [f"{kind}: {', '.join(names)}" for kind, names in self.provides.items() if names]
        hooks = [hook for hook in self.hooks if hook in DESCRIBED_HOOKS]
        if hooks:
            parts.append(f"hooks: {', '.join(hooks)}")
        return "; ".join(parts)


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that was left out, with its error on one line."""

    name: str
    source: PluginSource
    location: str
    error: str


@dataclass(frozen=True)
class HookFailure:
    """A plugin whose lifecycle hook raised: its name, the hook, and the error on one line."""

    plugin: str
    hook: str
    error: str


@dataclass(frozen=True)
class PluginCommands:
    """What the plugins' `register_commands` hooks added to the command line.

    `by_plugin` maps a plugin's name to the click commands (by command name) it added, in
    load order; `failures` holds the plugins whose hook raised: none of their commands are
    kept. Clashes with tuneboard's own commands are the CLI's to check.
    """

    by_plugin: dict[str, dict[str, click.Command]]
    failures: list[HookFailure]


@dataclass
class _Candidate:
    name: str
    source: PluginSource
    location: str
    load: Callable[[], object]
    version: str | None = None
    distribution: str | None = None


class _Rejected(Exception):
    """A plugin broke its contract; the message is what the user sees."""


class PluginRegistry:
    """The loaded plugins, and typed access to what they provide.

    App code asks this object for stage, dataset, metric and strategy classes by name and
    never calls pluggy hooks itself.
    """

    def __init__(self, project_dir: Path | None = None) -> None:
        self.project_dir = project_dir
        self.plugins: list[PluginInfo] = []
        self.failures: list[PluginFailure] = []
        self.skipped: list[str] = []
        self._pm = pluggy.PluginManager("tuneboard")
        self._pm.add_hookspecs(hookspecs)
        self._classes: dict[PluginKind, dict[str, type]] = {kind: {} for kind in KINDS}
        self._providers: dict[tuple[PluginKind, str], PluginInfo] = {}
        self._commands: PluginCommands | None = None

    # --- typed access ---------------------------------------------------------------------

    @property
    def stages(self) -> dict[str, type[Stage[Any]]]:
        """Stage classes by name."""
        return dict(self._classes["stage"])

    @property
    def datasets(self) -> dict[str, type[Dataset[Any]]]:
        """Dataset classes by name."""
        return dict(self._classes["dataset"])

    @property
    def metrics(self) -> dict[str, type[Metric]]:
        """Metric classes by name."""
        return dict(self._classes["metric"])

    @property
    def strategies(self) -> dict[str, type[Strategy[Any]]]:
        """Strategy classes by name."""
        return dict(self._classes["strategy"])

    @property
    def executors(self) -> dict[str, type[Executor[Any]]]:
        """Executor classes by name (the built-in `local` executor is not one of them)."""
        return dict(self._classes["executor"])

    def executor(self, name: str) -> type[Executor[Any]]:
        """The executor class called `name`; `PluginError` with suggestions when unknown."""
        return self._lookup("executor", self.executors, name)

    @property
    def tasks(self) -> dict[str, type[Task[Any]]]:
        """Task classes by name (the built-in classification tasks are not plugins)."""
        return dict(self._classes["task"])

    def task(self, name: str) -> type[Task[Any]]:
        """The task class called `name`; `PluginError` with suggestions when unknown."""
        return self._lookup("task", self.tasks, name)

    def stage(self, name: str) -> type[Stage[Any]]:
        """The stage class called `name`; `PluginError` with suggestions when unknown."""
        return self._lookup("stage", self.stages, name)

    def dataset(self, name: str) -> type[Dataset[Any]]:
        """The dataset class called `name`; `PluginError` with suggestions when unknown."""
        return self._lookup("dataset", self.datasets, name)

    def metric(self, name: str) -> type[Metric]:
        """The metric class called `name`; `PluginError` with suggestions when unknown."""
        return self._lookup("metric", self.metrics, name)

    def strategy(self, name: str) -> type[Strategy[Any]]:
        """The strategy class called `name`; `PluginError` with suggestions when unknown."""
        return self._lookup("strategy", self.strategies, name)

    def provider(self, kind: PluginKind, name: str) -> PluginInfo:
        """The plugin that registered the `kind` called `name`."""
        self._lookup(kind, self._classes[kind], name)
        return self._providers[(kind, name)]

    def origin(self, kind: PluginKind, name: str) -> str:
        """`` from plugin 'NAME' of DIST VERSION`` for a class a non-built-in plugin provides.

        Empty for built-ins and unknown names; error messages append it so that a user
        knows which installed package or project file to blame.
        """
        info = self._providers.get((kind, name))
        if info is None or info.source == "built-in":
            return ""
        where = f" from plugin {info.name!r}"
        if info.distribution:
            version = f" {info.version}" if info.version else ""
            where += f" of {info.distribution}{version}"
        return where

    # --- lifecycle hooks ------------------------------------------------------------------

    def call_lifecycle(self, hook: str, **arguments: Any) -> list[HookFailure]:
        """Call lifecycle `hook` (one of `LIFECYCLE_HOOKS`) of every plugin, one at a time.

        A plugin that raises is skipped: the others are still called, and its error comes
        back in the returned list instead of propagating.
        """
        if hook not in LIFECYCLE_HOOKS:
            raise ValueError(f"not a lifecycle hook: {hook!r}")
        failures: list[HookFailure] = []
        for name, call in self._each_implementation(hook):
            try:
                call(**arguments)
            except Exception as exc:
                failures.append(HookFailure(name, hook, _describe_exception(exc)))
        return failures

    # --- command-line hook ----------------------------------------------------------------

    def commands(self) -> PluginCommands:
        """Call every plugin's `register_commands`, one at a time, each on a fresh click group.

        Each plugin gets a group of its own, so that what it adds can be told apart and
        checked before it joins the ``tuneboard`` group. A plugin that raises is skipped and
        reported in the result. The hooks run once per registry; later calls return the same.
        """
        if self._commands is None:
            import click

            by_plugin: dict[str, dict[str, click.Command]] = {}
            failures: list[HookFailure] = []
            # In load order, so that of two plugins adding one name the first loaded keeps it.
            for name, call in reversed(self._each_implementation(COMMANDS_HOOK)):
                group = click.Group("tuneboard")
                try:
                    call(cli=group)
                except Exception as exc:
                    failures.append(HookFailure(name, COMMANDS_HOOK, _describe_exception(exc)))
                    continue
                if group.commands:
                    by_plugin[name] = dict(group.commands)
            self._commands = PluginCommands(by_plugin, failures)
        return self._commands

    def _each_implementation(self, hook: str) -> list[tuple[str, Callable[..., Any]]]:
        """``(plugin name, caller of just that plugin's hook)``, last registered first."""
        caller = getattr(self._pm.hook, hook)
        plugins = self._pm.get_plugins()
        callers: list[tuple[str, Callable[..., Any]]] = []
        for impl in reversed(caller.get_hookimpls()):  # pluggy's order: last registered first
            only = self._pm.subset_hook_caller(
                hook, remove_plugins=[p for p in plugins if p is not impl.plugin]
            )
            callers.append((impl.plugin_name, only))
        return callers

    def _lookup(self, kind: PluginKind, table: Mapping[str, C], name: str) -> C:
        if name in table:
            return table[name]
        available = ", ".join(sorted(table)) or "(none)"
        hint = did_you_mean(name, table)
        message = f"unknown {kind} plugin {name!r}{hint}; available: {available}"
        if self.failures:
            failed = ", ".join(f.name for f in self.failures)
            message += f"; plugins that failed to load: {failed}"
        raise PluginError(message)

    # --- building -------------------------------------------------------------------------

    @classmethod
    def from_classes(cls, classes: Iterable[type], name: str = "local") -> PluginRegistry:
        """A registry of just these classes, checked like any plugin's (handy in tests).

        Each class goes to the kind its base class says. Raises `PluginError` when one
        breaks its contract.
        """
        registry = cls()
        plugin = _ClassesPlugin(list(classes))
        registry._add(_Candidate(name, "project", "<classes>", lambda: plugin))
        if registry.failures:
            raise PluginError(f"plugin {name!r}: {registry.failures[0].error}")
        return registry

    def _add(self, candidate: _Candidate) -> None:
        """Import, register, check and collect one plugin; record a failure instead of raising."""
        registered: object | None = None
        try:
            try:
                plugin = candidate.load()
            except (Exception, SystemExit) as exc:
                raise _Rejected(_describe_exception(exc)) from None
            registered = self._register(candidate.name, plugin)
            provided = self._collect(plugin)
        except _Rejected as exc:
            self._fail(candidate, str(exc), registered)
            return
        except Exception as exc:  # a plugin must never take the others down with it
            self._fail(candidate, _describe_exception(exc), registered)
            return
        callers = self._pm.get_hookcallers(plugin) or []
        info = PluginInfo(
            name=candidate.name,
            version=candidate.version or _module_version(plugin),
            source=candidate.source,
            location=candidate.location,
            provides={kind: sorted(classes) for kind, classes in provided.items() if classes},
            hooks=sorted(caller.name for caller in callers),
            distribution=candidate.distribution,
            path=_source_file(plugin),
        )
        for kind, classes in provided.items():
            for class_name, plugin_class in classes.items():
                self._classes[kind][class_name] = plugin_class
                self._providers[(kind, class_name)] = info
        self.plugins.append(info)

    def _fail(self, candidate: _Candidate, error: str, registered: object | None) -> None:
        if registered is not None:
            self._pm.unregister(registered)
        failure = PluginFailure(candidate.name, candidate.source, candidate.location, error)
        self.failures.append(failure)

    def _register(self, name: str, plugin: object) -> object:
        """Register `plugin` with pluggy and check that every hook it implements exists."""
        if self._pm.has_plugin(name):
            other = next(p for p in self.plugins if p.name == name)
            raise _Rejected(f"a plugin named {name!r} is already loaded from {other.location}")
        if self._pm.is_registered(plugin):
            other_name = self._pm.get_name(plugin)
            raise _Rejected(f"the same object is already loaded as plugin {other_name!r}")
        try:
            self._pm.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            raise _Rejected(_one_line(str(exc))) from None
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError:
            message = self._unknown_hooks_message(plugin)
            self._pm.unregister(plugin)
            raise _Rejected(message) from None
        return plugin

    def _unknown_hooks_message(self, plugin: object) -> str:
        specced = sorted([*_HOOKS.values(), *LIFECYCLE_HOOKS, COMMANDS_HOOK])
        callers = self._pm.get_hookcallers(plugin) or []
        unknown = [caller.name for caller in callers if not caller.has_spec()]
        name = unknown[0] if unknown else "?"
        return (
            f"unknown hook {name!r}{did_you_mean(name, specced)}; "
            f"hooks tuneboard knows: {', '.join(specced)}"
        )

    def _collect(self, plugin: object) -> dict[PluginKind, dict[str, type]]:
        """Call the plugin's registration hooks and check every class it registers."""
        others = [p for p in self._pm.get_plugins() if p is not plugin]
        provided: dict[PluginKind, dict[str, type]] = {}
        for kind, hook_name in _HOOKS.items():
            received: list[Any] = []
            caller = self._pm.subset_hook_caller(hook_name, remove_plugins=others)
            try:
                caller(register=received.append)
            except Exception as exc:
                raise _Rejected(f"{hook_name} raised {_describe_exception(exc)}") from None
            classes: dict[str, type] = {}
            for item in received:
                class_name, plugin_class = _check_class(kind, item)
                if class_name in classes or class_name in self._classes[kind]:
                    where = "this plugin"
                    if class_name in self._classes[kind]:
                        where = f"plugin {self._providers[(kind, class_name)].name!r}"
                    raise _Rejected(f"{kind} {class_name!r} is already provided by {where}")
                classes[class_name] = plugin_class
            provided[kind] = classes
        return provided


class _ClassesPlugin:
    """A plugin object that registers a fixed list of classes, each under its kind."""

    def __init__(self, classes: list[type]) -> None:
        for plugin_class in classes:
            if not any(_is_subclass(plugin_class, base) for base in _BASES.values()):
                raise PluginError(
                    f"{plugin_class!r} is not a Stage, Dataset, Metric, Strategy, Executor or Task"
                )
        self._classes = classes

    def _register(self, kind: PluginKind, register: Callable[[type[Any]], None]) -> None:
        for plugin_class in self._classes:
            if _is_subclass(plugin_class, _BASES[kind]):
                register(plugin_class)

    @hookimpl
    def register_stages(self, register: Callable[[type[Any]], None]) -> None:
        """Register the stage classes."""
        self._register("stage", register)

    @hookimpl
    def register_datasets(self, register: Callable[[type[Any]], None]) -> None:
        """Register the dataset classes."""
        self._register("dataset", register)

    @hookimpl
    def register_metrics(self, register: Callable[[type[Any]], None]) -> None:
        """Register the metric classes."""
        self._register("metric", register)

    @hookimpl
    def register_strategies(self, register: Callable[[type[Any]], None]) -> None:
        """Register the strategy classes."""
        self._register("strategy", register)

    @hookimpl
    def register_executors(self, register: Callable[[type[Any]], None]) -> None:
        """Register the executor classes."""
        self._register("executor", register)

    @hookimpl
    def register_tasks(self, register: Callable[[type[Any]], None]) -> None:
        """Register the task classes."""
        self._register("task", register)


def _is_subclass(value: object, base: type) -> bool:
    return isinstance(value, type) and issubclass(value, base)


def _check_class(kind: PluginKind, value: object) -> tuple[str, type]:
    """The name and class of a valid `kind` plugin class; raise `_Rejected` otherwise."""
    base = _BASES[kind]
    if not isinstance(value, type):
        raise _Rejected(f"registered {value!r} as a {kind}, but it is not a class")
    label = value.__qualname__
    if not issubclass(value, base):
        raise _Rejected(f"{kind} class {label} is not a subclass of tuneboard.{base.__name__}")
    name = getattr(value, "name", None)
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise _Rejected(
            f"{kind} class {label} needs a `name`: letters, digits, '_', '.', '-' (got {name!r})"
        )
    if inspect.isabstract(value):
        missing = ", ".join(sorted(getattr(value, "__abstractmethods__", ())))
        raise _Rejected(f"{kind} {name!r} does not implement {missing}")
    if kind == "metric":
        tasks = getattr(value, "tasks", ())
        if not isinstance(tasks, tuple | list) or not all(isinstance(t, str) for t in tasks):
            raise _Rejected(
                f"metric {name!r}: `tasks` must be a tuple of task names ({', '.join(TASKS)} ...)"
            )
        return name, value
    params_cls = getattr(value, "Params", None)
    if not isinstance(params_cls, type) or not dataclasses.is_dataclass(params_cls):
        raise _Rejected(f"{kind} {name!r}: `Params` must be a dataclass, got {params_cls!r}")
    try:
        for spec in describe_params(params_cls):
            if not spec.required:
                check_value(spec, spec.default, f"{kind} {name!r}: default of Params")
    except ConfigError as exc:
        raise _Rejected(str(exc)) from None
    except Exception as exc:
        raise _Rejected(f"{kind} {name!r}: bad Params: {_describe_exception(exc)}") from None
    return name, value


def _source_file(plugin: object) -> str | None:
    """The file the plugin's code comes from (its module's), when it has one."""
    module = plugin if isinstance(plugin, ModuleType) else inspect.getmodule(plugin)
    file = getattr(module, "__file__", None)
    return str(Path(file).resolve()) if isinstance(file, str) else None


def _module_version(plugin: object) -> str | None:
    version = getattr(plugin, "__version__", None)
    return version if isinstance(version, str) else None


def _one_line(text: str) -> str:
    return "; ".join(line.strip() for line in text.strip().splitlines() if line.strip())


def _describe_exception(exc: BaseException) -> str:
    """`Type: message (at file:line)` on one line."""
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} ({exc.filename}, line {exc.lineno})"
    text = _one_line(str(exc))
    description = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        description += f" (at {frames[-1].filename}:{frames[-1].lineno})"
    return description


# --- discovery ------------------------------------------------------------------------------


def _names(variable: str) -> set[str]:
    return {name.strip() for name in os.environ.get(variable, "").split(",") if name.strip()}


def _entry_point_candidates() -> list[_Candidate]:
    candidates: dict[tuple[str, str], _Candidate] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        builtin = ep.module == "tuneboard" or ep.module.startswith("tuneboard.")
        dist = ep.dist
        # The same entry point can be listed twice (an editable install plus a stale copy).
        candidates.setdefault(
            (ep.name, ep.value),
            _Candidate(
                name=ep.name,
                source="built-in" if builtin else "entry point",
                location=ep.value,
                load=ep.load,
                version=dist.version if dist else None,
                distribution=dist.name if dist else None,
            ),
        )
    # Built-ins the installed metadata lacks: a source tree never installed, or an editable
    # install made before a built-in was added to pyproject.toml.
    listed = {name for name, _ in candidates}
    from tuneboard import __version__

    for name, module in BUILTIN_ENTRY_POINTS.items():
        if name not in listed:
            candidates[(name, module)] = _Candidate(
                name, "built-in", module, _importer(module), __version__, "tuneboard"
            )
    return sorted(candidates.values(), key=lambda c: (c.source != "built-in", c.name))


def _importer(module: str) -> Callable[[], object]:
    return lambda: importlib.import_module(module)


def _project_candidates(project_dir: Path) -> list[_Candidate]:
    folder = project_dir / PROJECT_PLUGINS_DIR
    if not folder.is_dir():
        return []
    digest = hashlib.sha1(str(folder).encode()).hexdigest()[:10]
    candidates = []
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        safe_stem = re.sub(r"\W", "_", path.stem)
        module_name = f"tuneboard_project_plugins.p{digest}.{safe_stem}"
        load = _file_importer(module_name, path)
        candidates.append(_Candidate(path.stem, "project", str(path), load))
    return candidates


def _file_importer(module_name: str, path: Path) -> Callable[[], object]:
    def load() -> ModuleType:
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        # In sys.modules while it runs: dataclasses and typing look the module up by name.
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(module_name, None)
            raise
        return module

    return load


def _build(project_dir: Path | None, entry_points: bool, builtins: bool) -> PluginRegistry:
    registry = PluginRegistry(project_dir)
    candidates = _entry_point_candidates() if entry_points else []
    if not builtins:
        candidates = [c for c in candidates if c.source != "built-in"]
    if project_dir is not None:
        candidates += _project_candidates(project_dir)
    allow, block = _names(ALLOW_ENV), _names(BLOCK_ENV)
    for candidate in candidates:
        if candidate.name in block or (allow and candidate.name not in allow):
            registry.skipped.append(candidate.name)
            continue
        registry._add(candidate)
    return registry


_cache: dict[tuple[str | None, str, str, bool, bool], PluginRegistry] = {}
_lock = threading.Lock()


def load_plugins(
    project_dir: Path | None = None,
    *,
    reload: bool = False,
    entry_points: bool = True,
    builtins: bool = True,
) -> PluginRegistry:
    """Load every plugin (see the module docstring) and return the registry.

    Safe to call again: the registry is cached per project folder and allow/block lists.
    `reload=True` loads afresh; `entry_points=False` leaves out installed packages and the
    built-ins (for tests that want only a project's own plugins); `builtins=False` leaves out
    only the built-ins (for the CLI's plugin commands: built-ins add none, and importing them
    is most of what loading costs).
    """
    folder = project_dir.resolve() if project_dir is not None else None
    key = (
        str(folder) if folder else None,
        os.environ.get(ALLOW_ENV, ""),
        os.environ.get(BLOCK_ENV, ""),
        entry_points,
        builtins,
    )
    with _lock:
        if reload or key not in _cache:
            _cache[key] = _build(folder, entry_points, builtins)
        return _cache[key]


def clear_cache() -> None:
    """Forget every cached registry, so the next `load_plugins` loads afresh."""
    with _lock:
        _cache.clear()
