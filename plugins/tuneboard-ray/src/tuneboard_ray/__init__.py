"""tuneboard-ray: run tuneboard runs on a Ray cluster, one Ray job per run.

Set ``executor = "ray"`` in a project's ``[project]`` table (or a ``[project.executor]`` table
with ``plugin = "ray"`` and its keys), or pass ``tuneboard run EXPERIMENT --executor ray
--address http://HOST:8265``. See the package's README for what the cluster needs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tuneboard import hookimpl
from tuneboard_ray.executor import RayExecutor, RayParams

__version__ = "0.1.0"


@hookimpl
def register_executors(register: Callable[[type[Any]], None]) -> None:
    """Provide the `ray` executor."""
    register(RayExecutor)


__all__ = ["RayExecutor", "RayParams", "__version__", "register_executors"]
