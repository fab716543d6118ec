"""The command of a multi-rank run's Ray job, and what each of its ranks asks Ray for.

A run whose experiment has ``gpus = N`` (N > 1) is one Ray job whose entrypoint is
``PYTHON -m tuneboard_ray.train --spec SPEC --workers JSON`` (`train_command`): a Ray Train
driver (`tuneboard_ray.train`) that runs the N ranks as Ray Train workers. This module only
builds and reads that command; it imports neither Ray nor torch.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict, dataclass, field
from typing import Any

from tuneboard import RemoteSpec, TuneboardError
from tuneboard.sdk.remote import encode_spec


@dataclass(frozen=True)
class WorkerResources:
    """How many ranks a run has, and what each rank (a Ray Train worker) asks Ray for.

    `gpus` > 0 puts the ranks on GPUs (`ScalingConfig(use_gpu=True)`, NCCL); 0 on CPUs
    (gloo). `memory` is in bytes (0: none reserved); `resources` are custom Ray resources.
    """

    workers: int
    cpus: float = 1.0
    gpus: float = 0.0
    memory: int = 0
    resources: dict[str, float] = field(default_factory=dict)

    def per_worker(self) -> dict[str, float]:
        """`ScalingConfig.resources_per_worker`: everything one rank asks for."""
        asks: dict[str, float] = {"CPU": self.cpus, **self.resources}
        if self.gpus > 0:
            asks["GPU"] = self.gpus
        if self.memory > 0:
            asks["memory"] = float(self.memory)
        return asks

    def encode(self) -> str:
        """One JSON word for the command line."""
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def decode(cls, text: str) -> WorkerResources:
        """What `encode` wrote; `TuneboardError` when it is not that."""
        try:
            fields: dict[str, Any] = json.loads(text)
            resources = cls(**fields)
        except (ValueError, TypeError) as error:
            raise TuneboardError(f"not a tuneboard-ray --workers value: {error}") from None
        if resources.workers < 1:
            raise TuneboardError(f"--workers: workers must be >= 1, got {resources.workers}")
        return resources


def train_command(python: str, spec: RemoteSpec, workers: WorkerResources) -> str:
    """The shell command that runs `spec` as `workers.workers` Ray Train ranks."""
    return shlex.join(
        [
            python,
            "-m",
            "tuneboard_ray.train",
            "--spec",
            encode_spec(spec),
            "--workers",
            workers.encode(),
        ]
    )
