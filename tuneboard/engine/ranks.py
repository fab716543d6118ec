"""The rank side of a data-parallel run: which rank this process is, and what ranks agree on.

A run with ``gpus = N`` is N processes of ``python -m tuneboard.remote`` with the torchrun
environment (`WORLD_SIZE`, `RANK`, `LOCAL_RANK`, `MASTER_ADDR`, `MASTER_PORT`), started by
`tuneboard.engine.distributed`. `join` initialises torch.distributed from that environment
(gloo on the CPU, NCCL on CUDA; an existing process group, as Ray Train makes, is used as
it is) and remembers the process's `Ranks`; the training loop reads them with `current`.
A process without that environment is no rank: `current` is None and nothing changes.

Other ranks than 0 run the run in a scratch folder of their own (`Ranks.scratch`) and read
what rank 0 wrote (resume checkpoints, handoffs) through `Ranks.shared`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

RANK_KEYS = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
"""The torchrun environment a rank process is started with."""


@dataclass(frozen=True)
class Ranks:
    """This process's place in a data-parallel run.

    `run_dir` is the run's folder (rank 0 writes it); `scratch` the folder another rank runs
    in instead (None on rank 0); `parallel` is ``ddp`` or ``fsdp``.
    """

    rank: int
    world: int
    local_rank: int
    parallel: str = "ddp"
    run_dir: Path | None = None
    scratch: Path | None = None

    @property
    def main(self) -> bool:
        """True on rank 0, the one that records and writes files."""
        return self.rank == 0

    def shared(self, path: Path) -> Path:
        """Where `path` (inside this rank's scratch folder) lies in the run's folder."""
        if self.scratch is None or self.run_dir is None:
            return path
        try:
            return self.run_dir / Path(path).relative_to(self.scratch)
        except ValueError:
            return path


_current: Ranks | None = None


def current() -> Ranks | None:
    """The ranks of this process's run, or None when it is not one rank of several."""
    return _current if _current is not None and _current.world > 1 else None


def from_env(environ: Mapping[str, str] | None = None) -> tuple[int, int, int] | None:
    """(rank, world size, local rank) from a torchrun environment, or None without one."""
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env or "RANK" not in env:
        return None
    world, rank = int(env["WORLD_SIZE"]), int(env["RANK"])
    return rank, world, int(env.get("LOCAL_RANK", rank))


def join(device: str, parallel: str, run_dir: Path, scratch: Path | None) -> Ranks:
    """Join the run's process group (made from the environment unless one exists already)
    and remember this process's `Ranks`; `device` is its own (``cuda:LOCAL_RANK`` or cpu)."""
    import torch.distributed as dist

    global _current
    found = from_env()
    if found is None:
        raise RuntimeError("not a rank process: WORLD_SIZE and RANK are not set")
    rank, world, local_rank = found
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if device.startswith("cuda"):
            import torch

            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    _current = Ranks(rank, world, local_rank, parallel, run_dir, None if rank == 0 else scratch)
    return _current


def leave() -> None:
    """Leave the process group (at the end of the rank's run)."""
    import torch.distributed as dist

    global _current
    _current = None
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait until every rank is here (no-op outside a data-parallel run)."""
    if current() is not None:
        import torch.distributed as dist

        dist.barrier()


def agree(loss: float, stop: bool, device: str) -> tuple[float, bool]:
    """Sum each rank's `loss` (each weighted by its share already) over the ranks, and stop
    if any rank was asked to: one small all-reduce, so that no rank stops alone."""
    import torch
    import torch.distributed as dist

    values = torch.tensor([loss, 1.0 if stop else 0.0], dtype=torch.float64, device=device)
    dist.all_reduce(values)
    total, stops = values.tolist()
    return total, stops > 0


def same(value: int, device: str) -> bool:
    """True when every rank has the same `value` (a check that they are in step)."""
    import torch
    import torch.distributed as dist

    values = torch.tensor([value, -value], dtype=torch.int64, device=device)
    dist.all_reduce(values, op=dist.ReduceOp.MAX)
    high, low = values.tolist()
    return bool(high == -low == value)


def shard(rows: np.ndarray, group: int, ranks: Ranks) -> tuple[np.ndarray, float]:
    """This rank's part of one global batch of `rows` (row indices, whole groups of `group`
    rows each kept together) and its weight: N x its share of the rows, so that the mean of
    the ranks' weighted losses is the global batch's mean loss. A rank left without a row (a
    last batch shorter than the ranks) takes the first group with weight 0."""
    import numpy as np

    units = rows.reshape(-1, group)
    parts = np.array_split(np.arange(len(units)), ranks.world)
    mine = parts[ranks.rank]
    if len(mine) == 0:
        return units[:1].reshape(-1), 0.0
    return units[mine].reshape(-1), ranks.world * len(mine) / len(units)
