"""Installing and uninstalling plugin packages with pip, in the interpreter tuneboard runs in.

pip runs as ``python -m pip`` of that interpreter, so a plugin lands where tuneboard loads it
from; its output is streamed line by line. What the packages provide afterwards is read by a
fresh ``python -m tuneboard.cli plugins --json`` (a new process sees exactly what is installed
now), and compared with what was loaded before. Used by ``tuneboard plugins install`` /
``uninstall`` and by the app's Plugins screen; nothing here imports Textual.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import re
import site
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from tuneboard.plugins.manager import ENTRY_POINT_GROUP, PluginInfo, PluginRegistry
from tuneboard.sdk.errors import PluginError

Action = Literal["install", "uninstall"]

# A distribution name or requirement (`name`, `name>=1.0`, `name[extra]`); anything else given
# to `install` must be an existing file or folder.
_REQUIREMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,-]+\])?([<>=!~][^\s;]*)?")


@dataclass(frozen=True)
class InstallOptions:
    """pip options that `install` passes on; see `pip install --help`."""

    upgrade: bool = False
    editable: bool = False
    no_deps: bool = False
    no_build_isolation: bool = False


@dataclass
class Listing:
    """The plugins one process loaded: each plugin's `PluginInfo` as a dict, and failures."""

    plugins: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, registry: PluginRegistry) -> Listing:
        """What `registry` loaded."""
        return cls(
            {p.name: asdict(p) for p in registry.plugins},
            {f.name: asdict(f) for f in registry.failures},
        )


@dataclass(frozen=True)
class Change:
    """How the plugins differ after pip ran: added or changed, removed, and newly failing."""

    added: list[dict[str, Any]]
    removed: list[dict[str, Any]]
    failed: list[dict[str, Any]]

    def lines(self) -> list[str]:
        """One line per plugin for people, such as ``+ example (tuneboard-example 0.1.0): ...``."""
        out = [f"+ {_label(p)}: {describe(p) or 'provides nothing'}" for p in self.added]
        out += [f"- {_label(p)}" for p in self.removed]
        out += [f"✗ {f['name']} ({f['location']}): {f['error']}" for f in self.failed]
        return out


def describe(plugin: dict[str, Any]) -> str:
    """What a listed plugin provides, on one line (see `PluginInfo.describe`)."""
    return PluginInfo(**plugin).describe()


def _label(plugin: dict[str, Any]) -> str:
    package = plugin.get("distribution")
    version = plugin.get("version")
    where = f"{package} {version}" if package and version else package or plugin["source"]
    return f"{plugin['name']} ({where})"


def compare(before: Listing, after: Listing) -> Change:
    """What pip changed, from the listings before and after it ran."""
    added = [p for name, p in after.plugins.items() if before.plugins.get(name) != p]
    removed = [p for name, p in before.plugins.items() if name not in after.plugins]
    failed = [f for name, f in after.failures.items() if before.failures.get(name) != f]
    return Change(added, removed, failed)


# --- pip ------------------------------------------------------------------------------------


_FLAGS = {
    "-U": "upgrade",
    "--upgrade": "upgrade",
    "-e": "editable",
    "--editable": "editable",
    "--no-deps": "no_deps",
    "--no-build-isolation": "no_build_isolation",
}


def parse_install_line(line: str) -> tuple[list[str], InstallOptions]:
    """Targets and options from one line as typed in the app: ``--upgrade ./my-plugin``.

    Words are split as a shell would; the options are those of ``tuneboard plugins install``.
    """
    import shlex

    try:
        words = shlex.split(line)
    except ValueError as error:
        raise PluginError(f"cannot read {line!r}: {error}") from None
    flags = {flag for flag in words if flag.startswith("-")}
    unknown = sorted(flags - set(_FLAGS))
    if unknown:
        raise PluginError(f"unknown option {unknown[0]!r}; options: {', '.join(_FLAGS)}")
    targets = [word for word in words if not word.startswith("-")]
    if not targets:
        raise PluginError("name a package, a wheel or a folder to install")
    options = InstallOptions(**{_FLAGS[flag]: True for flag in flags})
    return targets, options


def install_command(
    targets: Sequence[str], options: InstallOptions, *, python: str | None = None
) -> list[str]:
    """The pip command that installs `targets` (names, requirements, files or folders).

    Paths are made absolute; anything that is neither an existing path nor a plain
    requirement (such as an option smuggled in as a name) raises `PluginError`.
    """
    if not targets:
        raise PluginError("name a package, a wheel or a folder to install")
    command = [*_pip(python), "install"]
    if options.upgrade:
        command.append("--upgrade")
    if options.no_deps:
        command.append("--no-deps")
    if options.no_build_isolation:
        command.append("--no-build-isolation")
    for target in targets:
        path = Path(target).expanduser()
        if path.exists():
            argument = str(path.resolve())
        elif _REQUIREMENT.fullmatch(target) and not target.startswith("-"):
            argument = target
        else:
            raise PluginError(f"not a package name and no such file or folder: {target!r}")
        if options.editable:
            if not path.is_dir():
                raise PluginError(f"--editable needs a project folder, got {target!r}")
            command.append("--editable")
        command.append(argument)
    return command


def uninstall_command(
    names: Sequence[str], registry: PluginRegistry, *, python: str | None = None
) -> list[str]:
    """The pip command that uninstalls the packages of `names`.

    A name is a plugin's name (as `tuneboard plugins` lists it) or a package's. Each must be
    an installed package that declares a ``tuneboard`` entry point, so that this never
    removes tuneboard itself or a package that is no plugin; `PluginError` otherwise.
    """
    if not names:
        raise PluginError("name a plugin or plugin package to uninstall")
    # Entry points, not just the loaded plugins: one that fails to load can be removed too.
    by_plugin = {p.name: p.distribution for p in registry.plugins if p.distribution}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.dist is not None:
            by_plugin.setdefault(ep.name, ep.dist.name)
    packages: list[str] = []
    for name in names:
        package = by_plugin.get(name) or name
        if _normal(package) == "tuneboard":
            raise PluginError(f"{name!r} is tuneboard itself (built-in plugins cannot be removed)")
        try:
            distribution = importlib.metadata.distribution(package)
        except (importlib.metadata.PackageNotFoundError, ValueError):
            installed = ", ".join(sorted(plugin_packages())) or "none"
            raise PluginError(
                f"no installed plugin or package named {name!r}; plugin packages: {installed}"
            ) from None
        if not any(ep.group == ENTRY_POINT_GROUP for ep in distribution.entry_points):
            raise PluginError(
                f"package {distribution.metadata['Name']!r} is not a tuneboard plugin (it "
                f"declares no {ENTRY_POINT_GROUP!r} entry point); uninstall it with pip"
            )
        if package not in packages:
            packages.append(package)
    return [*_pip(python), "uninstall", "--yes", *packages]


def plugin_packages() -> set[str]:
    """Names of the installed packages, other than tuneboard, with a ``tuneboard`` entry point."""
    names = set()
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.dist is not None and _normal(ep.dist.name) != "tuneboard":
            names.add(ep.dist.name)
    return names


def run_pip(command: Sequence[str], echo: Callable[[str], None]) -> None:
    """Run a pip command, passing each line of its output to `echo` as it comes.

    Raises `PluginError` with pip's last error line when pip fails.
    """
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",  # never wait for a prompt nobody sees
    }
    lines: list[str] = []
    with subprocess.Popen(
        list(command),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        env=env,
    ) as process:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip("\n")
            lines.append(line)
            echo(line)
    if process.returncode != 0:
        action = command[3] if len(command) > 3 else "run"
        raise PluginError(
            f"pip {action} failed (exit status {process.returncode}): {_pip_error(lines)}"
        )


def _pip_error(lines: Iterable[str]) -> str:
    text = [line.strip() for line in lines if line.strip()]
    errors = [line for line in text if line.startswith("ERROR:")]
    last = errors[-1] if errors else (text[-1] if text else "no output")
    return last.removeprefix("ERROR:").strip()


def _pip(python: str | None) -> list[str]:
    return [python or sys.executable, "-m", "pip"]


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# --- what is installed now ------------------------------------------------------------------


def list_in_fresh_process(project_dir: Path | None, *, python: str | None = None) -> Listing:
    """The plugins a new tuneboard process loads (after pip ran, this process may be stale)."""
    command = [python or sys.executable, "-m", "tuneboard.cli", "plugins", "--json"]
    if project_dir is not None:
        command += ["--project", str(project_dir)]
    done = subprocess.run(
        command, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise PluginError(f"could not list the plugins after pip ran: {last}")
    document = json.loads(done.stdout)
    return Listing(
        {p["name"]: p for p in document["plugins"]},
        {f["name"]: f for f in document["failures"]},
    )


def pth_files() -> set[Path]:
    """The ``.pth`` files in the site folders on `sys.path` (editable installs add one)."""
    found: set[Path] = set()
    for entry in sys.path:
        folder = Path(entry or ".")
        if folder.name in ("site-packages", "dist-packages") and folder.is_dir():
            found.update(folder.glob("*.pth"))
    return found


def refresh_import_system(known_pth: set[Path]) -> None:
    """Make what pip just installed importable in this process.

    Processes ``.pth`` files not in `known_pth` (as Python does at start-up, for editable
    installs) and clears the import caches, so that `importlib.metadata` finds new entry
    points. A package that was already imported keeps its old code until a restart.
    """
    for pth in sorted(pth_files() - known_pth):
        site.addpackage(str(pth.parent), pth.name, None)
    importlib.invalidate_caches()


# --- the whole job, for the CLI and the app -------------------------------------------------


def install_plugins(
    targets: Sequence[str],
    options: InstallOptions,
    *,
    before: Listing,
    project_dir: Path | None,
    echo: Callable[[str], None],
    python: str | None = None,
) -> Change:
    """pip-install `targets`, streaming pip's output to `echo`; return what changed.

    `before` is what was loaded before (`Listing.of(registry)`). Raises `PluginError` when
    pip fails, or when a plugin it installed does not load (after echoing what changed).
    """
    command = install_command(targets, options, python=python)
    echo("$ " + " ".join(command))
    run_pip(command, echo)
    change = compare(before, list_in_fresh_process(project_dir, python=python))
    _echo_change(change, echo, "no plugin was added or changed (already installed?)")
    if change.failed:
        failure = change.failed[0]
        raise PluginError(
            f"plugin {failure['name']!r} was installed but does not load: {failure['error']} "
            f"(`tuneboard plugins uninstall {failure['name']}` removes it)"
        )
    return change


def uninstall_plugins(
    names: Sequence[str],
    registry: PluginRegistry,
    *,
    project_dir: Path | None,
    echo: Callable[[str], None],
    python: str | None = None,
) -> Change:
    """pip-uninstall the packages of `names` (plugin or package names); return what changed."""
    command = uninstall_command(names, registry, python=python)
    echo("$ " + " ".join(command))
    run_pip(command, echo)
    change = compare(Listing.of(registry), list_in_fresh_process(project_dir, python=python))
    _echo_change(change, echo, "no plugin was removed")
    return change


def _echo_change(change: Change, echo: Callable[[str], None], nothing: str) -> None:
    lines = change.lines()
    echo("")
    for line in lines or [nothing]:
        echo(line)
