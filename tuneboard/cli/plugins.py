"""`tuneboard plugins`: list the loaded plugins; `plugins install` / `uninstall` run pip."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tuneboard.cli.shared import echo, friendly_errors, plugins_root, project_option

if TYPE_CHECKING:
    from tuneboard.plugins import PluginFailure, PluginRegistry


@click.group(invoke_without_command=True)
@project_option
@click.option("--json", "as_json", is_flag=True, help="As JSON, for scripts.")
@click.pass_context
@friendly_errors
def plugins(ctx: click.Context, project_dir: Path | None, as_json: bool) -> None:
    """List every loaded plugin (name, version, source, what it provides) and load failures.

    `tuneboard plugins install` and `uninstall` add and remove plugin packages with pip.
    """
    from dataclasses import asdict

    from tuneboard.plugins import load_plugins

    ctx.obj = project_dir
    if ctx.invoked_subcommand is not None:
        return
    registry = load_plugins(plugins_root(project_dir))
    failures = [*registry.failures, *command_failures(registry)]
    if as_json:
        document = {
            "plugins": [asdict(p) for p in registry.plugins],
            "failures": [asdict(f) for f in failures],
        }
        echo(json.dumps(document, indent=2, default=str))
        return
    from rich.console import Console

    from tuneboard.ui.render import rich_table
    from tuneboard.ui.safe import safe_text

    console = Console()
    rows = [
        (
            p.name,
            p.distribution or "-",
            p.version,
            p.source,
            p.describe(),
            p.location if p.path in (None, p.location) else f"{p.location} ({p.path})",
        )
        for p in registry.plugins
    ]
    columns = ["plugin", "package", "version", "source", "provides", "location"]
    console.print(rich_table(columns, rows, title="plugins"))
    for failure in failures:
        line = safe_text(f"✗ {failure.name}", "red")
        console.print(
            line.append_text(safe_text(f" ({failure.source}, {failure.location}): {failure.error}"))
        )


def command_failures(registry: PluginRegistry) -> list[PluginFailure]:
    """The plugins whose `register_commands` raised or whose commands clash, as failures."""
    from tuneboard.cli import main
    from tuneboard.cli.plugin_commands import added_commands

    return added_commands(registry, main.commands).failures


@plugins.command("install")
@click.argument("targets", nargs=-1, required=True, metavar="NAME_OR_PATH...")
@project_option
@click.option("--upgrade", "-U", is_flag=True, help="Upgrade packages that are installed.")
@click.option("--editable", "-e", is_flag=True, help="Install project folders in editable mode.")
@click.option("--no-deps", is_flag=True, help="Do not install the packages' dependencies.")
@click.option(
    "--no-build-isolation", is_flag=True, help="Build with the installed build tools (offline)."
)
@click.pass_obj
@friendly_errors
def plugins_install(
    group_project: Path | None,
    targets: tuple[str, ...],
    project_dir: Path | None,
    upgrade: bool,
    editable: bool,
    no_deps: bool,
    no_build_isolation: bool,
) -> None:
    """Install plugin packages (PyPI names, wheels or folders) with pip, then show what they add.

    pip runs in tuneboard's own interpreter, so the plugins land where tuneboard loads them.
    """
    from dataclasses import asdict

    from tuneboard.plugins import load_plugins
    from tuneboard.plugins.install import InstallOptions, Listing, install_plugins

    root = plugins_root(project_dir or group_project)
    options = InstallOptions(upgrade, editable, no_deps, no_build_isolation)
    registry = load_plugins(root)
    before = Listing.of(registry)
    # As `tuneboard plugins --json` lists them, so that only new failures are reported.
    before.failures.update({f.name: asdict(f) for f in command_failures(registry)})
    install_plugins(targets, options, before=before, project_dir=root, echo=echo)


@plugins.command("uninstall")
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@project_option
@click.pass_obj
@friendly_errors
def plugins_uninstall(
    group_project: Path | None, names: tuple[str, ...], project_dir: Path | None
) -> None:
    """Uninstall plugin packages with pip; NAME is a plugin's name or its package's."""
    from tuneboard.plugins import load_plugins
    from tuneboard.plugins.install import uninstall_plugins

    root = plugins_root(project_dir or group_project)
    uninstall_plugins(names, load_plugins(root), project_dir=root, echo=echo)
