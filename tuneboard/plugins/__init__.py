"""Plugins: loading them (`manager`), installing them with pip (`install`), and the reference
documentation generated from the hooks and parameters (`reference`).

This package exports the plugin manager's names, so `from tuneboard.plugins import load_plugins`
is the way in; `install` and `reference` are imported by module, only where they are used.
"""

from tuneboard.plugins.manager import (
    ALLOW_ENV,
    BLOCK_ENV,
    BUILTIN_ENTRY_POINTS,
    ENTRY_POINT_GROUP,
    NAME_PATTERN,
    HookFailure,
    PluginCommands,
    PluginFailure,
    PluginInfo,
    PluginRegistry,
    clear_cache,
    load_plugins,
)

__all__ = [
    "ALLOW_ENV",
    "BLOCK_ENV",
    "BUILTIN_ENTRY_POINTS",
    "ENTRY_POINT_GROUP",
    "NAME_PATTERN",
    "HookFailure",
    "PluginCommands",
    "PluginFailure",
    "PluginInfo",
    "PluginRegistry",
    "clear_cache",
    "load_plugins",
]
