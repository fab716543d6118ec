"""Commands that plugins add with the `register_commands` hook, beside tuneboard's own.

`TuneboardGroup` is the class of the `tuneboard` group. It looks up its own commands first and
loads plugins only when it has to: when it lists its commands (`tuneboard --help`) or meets a
name that is not its own. So `tuneboard run ...` and the other built-in commands never pay
for loading plugins at start-up, and `tuneboard --help` pays once; the built-in plugins, which
add no commands, are not loaded for it.

Plugins come from installed packages (entry points) and from the project's `plugins/`
folder: the project `tuneboard --project DIR` names, or else the nearest one upwards from the
current folder (none outside a project; nothing fails then).

A plugin command never replaces one of tuneboard's own, nor an earlier plugin's: it is left
out with a warning on stderr. A plugin whose hook raises loses its commands, with a warning;
the command line works on. `tuneboard plugins` lists both kinds of failure.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tuneboard.cli.shared import echo, plugins_root

if TYPE_CHECKING:  # tuneboard.plugins is imported only when plugin commands are needed
    from tuneboard.plugins import PluginFailure, PluginRegistry

_CACHE_KEY = "tuneboard.plugin_commands"


@dataclass(frozen=True)
class AddedCommands:
    """The plugin commands that join the `tuneboard` group, and those that could not."""

    commands: dict[str, click.Command]
    failures: list[PluginFailure]


def added_commands(registry: PluginRegistry, own: Collection[str]) -> AddedCommands:
    """The commands `registry`'s plugins add, checked against the group's `own` names.

    A failure names the plugin, with its source and location, as a load failure does.
    """
    from tuneboard.plugins import PluginFailure

    info = {plugin.name: plugin for plugin in registry.plugins}

    def failure(plugin: str, error: str) -> PluginFailure:
        return PluginFailure(plugin, info[plugin].source, info[plugin].location, error)

    found = registry.commands()
    failures = [
        failure(f.plugin, f"{f.hook} raised {f.error}; its commands are left out")
        for f in found.failures
    ]
    commands: dict[str, click.Command] = {}
    owners: dict[str, str] = {}
    for plugin, added in found.by_plugin.items():
        for name, command in added.items():
            if name in own:
                error = f"command {name!r} is one of tuneboard's own; the plugin's is left out"
                failures.append(failure(plugin, error))
            elif name in commands:
                error = f"command {name!r} is already added by plugin {owners[name]!r}; left out"
                failures.append(failure(plugin, error))
            else:
                commands[name] = command
                owners[name] = plugin
    return AddedCommands(commands, failures)


class TuneboardGroup(click.Group):
    """The `tuneboard` group: its own commands, then those plugins add (see the module)."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Tuneboard's own command `cmd_name`, else a plugin's, else None."""
        command = super().get_command(ctx, cmd_name)
        if command is None:
            command = self._plugin_commands(ctx).commands.get(cmd_name)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command's name, sorted: tuneboard's own and the plugins'."""
        return sorted({*super().list_commands(ctx), *self._plugin_commands(ctx).commands})

    def _plugin_commands(self, ctx: click.Context) -> AddedCommands:
        """Load the plugins' commands once per invocation, and warn about each failure."""
        root = ctx.find_root()
        added: AddedCommands | None = root.meta.get(_CACHE_KEY)
        if added is None:
            added = self._load(root.params.get("project_dir"))
            for failure in added.failures:
                message = f"warning: plugin {failure.name!r}: {failure.error}"
                echo(message, fg="yellow", err=True)
            root.meta[_CACHE_KEY] = added
        return added

    def _load(self, project_dir: Path | None) -> AddedCommands:
        from tuneboard.plugins import load_plugins

        try:
            registry = load_plugins(plugins_root(project_dir), builtins=False)  # they add none
            return added_commands(registry, self.commands)
        except Exception as exc:  # plugins must never take tuneboard's own commands down
            echo(f"warning: plugin commands left out: {exc}", fg="yellow", err=True)
            return AddedCommands({}, [])
