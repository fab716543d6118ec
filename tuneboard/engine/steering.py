"""Steering the queue from the CLI and the app, and what both show of it.

Each change checks the run (an id prefix works) is queued, writes the change through the
store and waits until it is committed, so that the process running the run sees it at its
next poll (about a second). Errors are one-line `TuneboardError`s naming the run.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from tuneboard.config import Project
from tuneboard.engine.devices import GB, DeviceFigures, device_figures, gpu_figures
from tuneboard.sdk.errors import TuneboardError
from tuneboard.sdk.scheduler import HELD, NO_SLOT, PAUSED
from tuneboard.store import Store
from tuneboard.store.queue import Move, QueueEntry, QueueState, moved, queued_entry

_DEVICE = re.compile(r"cpu|mps|cuda:[0-9]+")


def queued_run(store: Store, run_id: str) -> tuple[str, QueueState]:
    """The full id of the queued run `run_id` names, and the queue; else a one-line error."""
    run = store.get_run(run_id)
    state = store.queue()
    queued_entry(state, run.run_id, run.status)
    return run.run_id, state


def move_run(store: Store, run_id: str, move: Move) -> str:
    """Move a queued run up, down, to the top or the bottom of the queue; its full id."""
    full_id, state = queued_run(store, run_id)
    store.set_queue_order(moved(state.order, full_id, move))
    store.flush()
    return full_id


def hold_run(store: Store, run_id: str, held: bool) -> str:
    """Hold a queued run back, or release it; its full id."""
    full_id, _ = queued_run(store, run_id)
    store.set_held(full_id, held)
    store.flush()
    return full_id


def pin_run(store: Store, project: Project, run_id: str, device: str | None) -> str:
    """Let a queued run start only on `device` (None: anywhere); its full id."""
    if device is not None:
        check_device(project, device)
    full_id, _ = queued_run(store, run_id)
    store.set_pin(full_id, device)
    store.flush()
    return full_id


def pause_queue(store: Store, paused: bool) -> None:
    """Pause or resume the whole queue, for every process."""
    store.set_queue_paused(paused)
    store.flush()


def project_devices(project: Project) -> list[str]:
    """The devices runs of `project` use on this machine: its `devices`, or with "auto" the
    GPUs NVML sees, else the CPU."""
    if project.devices != "auto":
        return list(project.devices)
    return [figures.device for figures in gpu_figures()] or ["cpu"]


def check_device(project: Project, device: str) -> None:
    """A one-line error unless `device` is one the project's runs can use."""
    if not _DEVICE.fullmatch(device):
        raise TuneboardError(f"unknown device {device!r} (use cpu, mps or cuda:N)")
    known = project_devices(project)
    # With "auto" and no NVML, the GPUs are unknown here: any cuda:N may be right.
    unsure = project.devices == "auto" and known == ["cpu"] and device.startswith("cuda:")
    if device not in known and not unsure:
        raise TuneboardError(f"no device {device!r} here; devices: {', '.join(known)}")


# --- what is shown -----------------------------------------------------------------------


def entry_state(entry: QueueEntry) -> str:
    """How a queued run is steered: held, pinned, its memory estimate."""
    parts = []
    if entry.held:
        parts.append("held")
    if entry.pinned:
        parts.append(f"pinned {entry.pinned}")
    if entry.memory_gb is not None:
        parts.append(f"needs {entry.memory_gb:g} GB")
    return ", ".join(parts)


def waiting_reason(state: QueueState, entry: QueueEntry) -> str:
    """Why a queued run waits: the pause and a hold first (set here), else what its process
    last recorded."""
    if state.paused:
        return PAUSED
    if entry.held:
        return HELD
    return entry.waiting or NO_SLOT


@dataclass(frozen=True)
class Slots:
    """A device, its figures, how many runs it takes at once, and the runs running on it."""

    figures: DeviceFigures
    slots: int
    runs: tuple[str, ...]


def device_slots(
    project: Project,
    running: Sequence[tuple[str, str | None]],
    *,
    cpu_interval: float | None = None,
) -> list[Slots]:
    """The project's devices with their figures and the running runs on each (`running`:
    run id and device pairs, from any process; a run on several devices, `cuda:0,cuda:1`,
    shows on each); devices no run uses on this machine last. `cpu_interval`: see
    `cpu_figures`."""
    on: dict[str, list[str]] = defaultdict(list)
    for run_id, devices in running:
        for device in dict.fromkeys((devices or "?").split(",")):
            on[device].append(run_id)
    shown = []
    for figures in device_figures(project.devices, cpu_interval=cpu_interval):
        count = project.cpu_slots if figures.device == "cpu" else project.slots_per_device
        shown.append(Slots(figures, count, tuple(on.pop(figures.device, []))))
    for device, runs in on.items():  # remote runs, or devices not listed here
        shown.append(Slots(DeviceFigures(device, "", None, None, None), 0, tuple(runs)))
    return shown


def memory_text(figures: DeviceFigures) -> str:
    """`3.2/15.6 GB` of memory used (RAM for the CPU); empty when unknown."""
    if figures.memory_used is None or figures.memory_total is None:
        return ""
    return f"{figures.memory_used / GB:.1f}/{figures.memory_total / GB:.1f} GB"


def use_text(figures: DeviceFigures) -> str:
    """Utilisation and temperature, e.g. `87% 64°C`; empty when unknown."""
    parts = []
    if figures.utilisation is not None:
        parts.append(f"{figures.utilisation:.0f}%")
    if figures.temperature is not None:
        parts.append(f"{figures.temperature:.0f}°C")
    return " ".join(parts)
