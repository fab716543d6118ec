"""tuneboard-slurm: run tuneboard runs as Slurm jobs, through submitit.

Set ``executor = "slurm"`` in a project's ``[project]`` table (or a ``[project.executor]``
table with ``plugin = "slurm"`` and its keys), or pass ``tuneboard run EXPERIMENT --executor
slurm --executor-set partition=gpu``. See the package's README for what the cluster needs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tuneboard import hookimpl
from tuneboard_slurm.executor import SlurmExecutor, SlurmParams

__version__ = "0.1.0"


@hookimpl
def register_executors(register: Callable[[type[Any]], None]) -> None:
    """Provide the `slurm` executor."""
    register(SlurmExecutor)


__all__ = ["SlurmExecutor", "SlurmParams", "__version__", "register_executors"]
