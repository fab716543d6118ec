"""Running a run on another machine: what the remote process gets, and how it is started.

An executor that runs runs elsewhere (the Ray plugin, say) starts there the command from
`remote_command`: ``python -m tuneboard.remote --spec SPEC``, where SPEC carries the project
folder, the experiment's resolved config, the run id, the run folder and the device. That
process validates and prepares the experiment on the remote machine, runs it with the same
runner as a local run, and writes everything the run records as lines on stdout
(`tuneboard.remote.records`), which the launching process replays into its database. SIGTERM
or SIGINT cancel it cleanly between steps.
"""

from __future__ import annotations

import base64
import json
import shlex
from dataclasses import asdict, dataclass, field
from typing import Any

from tuneboard.sdk.errors import TuneboardError

SPEC_VERSION = 1


@dataclass(frozen=True)
class RemoteSpec:
    """What the remote process needs to execute one run.

    `project` is the project folder as the remote machine sees it (its `tuneboard.toml`,
    data files and `plugins/` are read there); `config` the experiment's resolved table (what
    `runs.config` holds); `run_dir` the folder the run writes checkpoints and exports to on
    the remote machine. `device` is ``"cpu"``, or ``"auto"`` for the first GPU the process
    can see (the CPU when none); `threads`, when set, caps torch's CPU threads.
    """

    project: str
    experiment: str
    config: dict[str, Any]
    run_id: str
    run_dir: str
    device: str = "auto"
    threads: int | None = None
    version: int = field(default=SPEC_VERSION)


def encode_spec(spec: RemoteSpec) -> str:
    """The spec as one shell-safe word (URL-safe base64 of its JSON)."""
    return base64.urlsafe_b64encode(json.dumps(asdict(spec)).encode()).decode("ascii")


def decode_spec(text: str) -> RemoteSpec:
    """The spec that `encode_spec` made; `TuneboardError` when it is not one."""
    try:
        fields = json.loads(base64.urlsafe_b64decode(text.encode("ascii")))
        if fields.get("version") != SPEC_VERSION:
            raise ValueError(f"spec version {fields.get('version')!r}, expected {SPEC_VERSION}")
        return RemoteSpec(**fields)
    except (ValueError, TypeError, AttributeError) as error:
        raise TuneboardError(f"not a tuneboard remote run spec: {error}") from None


def remote_command(python: str, spec: RemoteSpec) -> str:
    """The shell command that runs `spec` with the interpreter `python` on the remote machine."""
    return shlex.join([python, "-m", "tuneboard.remote", "--spec", encode_spec(spec)])
