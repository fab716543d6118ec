"""The Plugins screen installs and uninstalls a plugin package with pip, for real.

pip installs into a scratch environment layered over this one (`tuneboard.testing.ScratchEnv`,
given to the app as its plugin interpreter) and activated in this process, so the app loads
the new plugin afresh as it would after installing into its own environment.
"""

from __future__ import annotations

import importlib.metadata
import shutil
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Log

from tests.tui.conftest import AppFactory, wait_for
from tuneboard.testing import ScratchEnv
from tuneboard.tui.screens.dialogs import ConfirmDialog
from tuneboard.tui.screens.plugins import PluginsScreen

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "plugins" / "tuneboard-example"


def rows(table: DataTable[object]) -> dict[str, list[str]]:
    """The table's rows by plugin name, as text."""
    return {
        str(row.value): [str(cell) for cell in table.get_row(row)]
        for row in table.rows  # row keys in display order
    }


async def test_install_then_uninstall_from_the_plugins_screen(
    sentiment_project: Path, make_app: AppFactory, scratch_env: ScratchEnv, tmp_path: Path
) -> None:
    with pytest.raises(importlib.metadata.PackageNotFoundError):  # installed here: uninstall it
        importlib.metadata.distribution("tuneboard-example")
    package = tmp_path / "tuneboard-example"
    shutil.copytree(EXAMPLE, package, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    with scratch_env.activate():
        app = make_app(sentiment_project, plugin_python=scratch_env.python)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("3")
            screen = app.screen
            assert isinstance(screen, PluginsScreen)
            table = screen.query_one("#plugins", DataTable)
            await wait_for(pilot, lambda: "builtin_stages" in rows(table))
            assert "example" not in rows(table)

            # `i` moves to the install line; Enter there runs pip in a worker.
            await pilot.press("i")
            line = screen.query_one("#plugin-target", Input)
            assert line.has_focus
            line.value = f"--no-deps --no-build-isolation {package}"
            await pilot.press("enter")
            await wait_for(pilot, lambda: screen.pip_running, timeout=5)
            await wait_for(pilot, lambda: not screen.pip_running, timeout=120)
            log = "\n".join(str(line) for line in screen.query_one("#pip-log", Log).lines)
            assert "Successfully installed tuneboard-example-0.1.0" in log
            assert "+ example (tuneboard-example 0.1.0): stage: calibrate" in log
            # The list and the app's plugins (what launches use) are loaded afresh.
            example = rows(table)["example"]
            assert example[1:4] == ["0.1.0", "entry point", "stage: calibrate; hooks: run_finished"]
            assert app.registry.stage("calibrate").name == "calibrate"
            assert app.engine.registry is app.registry
            assert line.value == ""

            # `u` on its row asks, then uninstalls its package.
            table.focus()
            table.move_cursor(row=table.get_row_index("example"))
            await pilot.press("u")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
            await pilot.press("y")
            await wait_for(pilot, lambda: screen.pip_running, timeout=5)
            await wait_for(pilot, lambda: not screen.pip_running, timeout=120)
            log = "\n".join(str(line) for line in screen.query_one("#pip-log", Log).lines)
            assert "Successfully uninstalled tuneboard-example-0.1.0" in log
            assert "example" not in rows(table)
            assert "calibrate" not in app.registry.stages

            # Built-ins are not for uninstalling: nothing is asked, pip does not run.
            table.move_cursor(row=table.get_row_index("builtin_stages"))
            await pilot.press("u")
            await pilot.pause()
            assert app.screen is screen and not screen.pip_running
