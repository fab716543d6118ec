"""The engine's side of remote runs: the remote process and its records.

`python -m tuneboard.remote --spec SPEC` (`__main__`) executes one run on the machine a remote
executor started it on, writing what the run records as lines on stdout (`records`); the
launching process replays them into its database. The spec and the executor base are public:
`tuneboard.RemoteSpec`, `tuneboard.remote_command`, `tuneboard.RemoteExecutor`
(`tuneboard.sdk.remote`).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tuneboard.sdk.remote import RemoteSpec


def run_spec(spec: RemoteSpec, out_fd: int, cancel: threading.Event | None = None) -> int:
    """Run `spec` in this process as ``python -m tuneboard.remote`` does, its records written
    to `out_fd` (by rank 0 only, in a data-parallel run: a Ray Train worker calls it with
    the torchrun environment set, or its process group made); return the exit status."""
    from tuneboard.remote.__main__ import run_spec as run

    return run(spec, out_fd, cancel)
