"""This machine's devices and their figures: GPUs through NVML, else the CPU and RAM.

GPU figures (name, utilisation, memory, temperature) come from `nvidia-ml-py` (the `pynvml`
module) when it is installed and a driver answers; free GPU memory falls back to
`torch.cuda.mem_get_info` (asked only by a process about to train). Without either, or on a machine
without GPUs, only the CPU is listed (cores, utilisation, RAM through psutil) and no memory
check applies. Only `free_memory` may import torch.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

GB = 1024**3

_nvml_lock = threading.Lock()
_nvml: Any = None  # the pynvml module once initialised; False when unusable


@dataclass(frozen=True)
class DeviceFigures:
    """What a device reports now. Memory in bytes; utilisation in percent; None: unknown."""

    device: str
    name: str
    utilisation: float | None
    memory_used: float | None
    memory_total: float | None
    temperature: float | None = None
    cores: int | None = None


def _pynvml() -> Any:
    """The initialised pynvml module, or None without it (or without a driver)."""
    global _nvml
    with _nvml_lock:
        if _nvml is None:
            try:
                import pynvml  # type: ignore[import-not-found,unused-ignore]

                pynvml.nvmlInit()
                _nvml = pynvml
            except Exception:  # not installed, no driver, no GPU: the CPU path
                _nvml = False
        return _nvml or None


def _cuda_index(device: str) -> int | None:
    """The NVML index of `cuda:N`, honouring a CUDA_VISIBLE_DEVICES list of indices."""
    if not device.startswith("cuda:"):
        return None
    number = int(device.partition(":")[2])
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        ids = [part.strip() for part in visible.split(",")]
        if number >= len(ids) or not ids[number].isdigit():
            return None
        return int(ids[number])
    return number


def gpu_figures() -> list[DeviceFigures]:
    """Every GPU NVML sees, as `cuda:N` (empty without NVML)."""
    nvml = _pynvml()
    if nvml is None:
        return []
    figures = []
    try:
        count = nvml.nvmlDeviceGetCount()
        for index in range(count):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            name = nvml.nvmlDeviceGetName(handle)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            try:
                utilisation: float | None = float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            except nvml.NVMLError:
                utilisation = None
            try:
                temperature: float | None = float(
                    nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)
                )
            except nvml.NVMLError:
                temperature = None
            figures.append(
                DeviceFigures(
                    f"cuda:{index}",
                    name.decode() if isinstance(name, bytes) else str(name),
                    utilisation,
                    float(memory.used),
                    float(memory.total),
                    temperature,
                )
            )
    except nvml.NVMLError:
        return figures
    return figures


def cpu_figures(interval: float | None = None) -> DeviceFigures:
    """The CPU: cores, utilisation, RAM used/total. Utilisation is over the `interval`
    seconds this waits, or with None since the last call (a poller's way; meaningless on
    the first)."""
    import psutil

    memory = psutil.virtual_memory()
    return DeviceFigures(
        "cpu",
        f"{psutil.cpu_count() or 1} cores",
        psutil.cpu_percent(interval=interval),
        float(memory.total - memory.available),
        float(memory.total),
        cores=psutil.cpu_count(),
    )


def device_figures(
    devices: tuple[str, ...] | str = "auto", *, cpu_interval: float | None = None
) -> list[DeviceFigures]:
    """The figures of the project's devices: `devices` as in `[project]`; "auto" lists the
    GPUs NVML sees, else the CPU (`cpu_interval`: see `cpu_figures`)."""
    gpus = {figures.device: figures for figures in gpu_figures()}
    wanted = (list(gpus) or ["cpu"]) if devices == "auto" else list(devices)
    shown = []
    for device in wanted:
        if device in gpus:
            shown.append(gpus[device])
        elif device == "cpu":
            shown.append(cpu_figures(cpu_interval))
        else:
            shown.append(DeviceFigures(device, "", None, None, None))
    return shown


def free_memory(device: str) -> tuple[float, float] | None:
    """Free and total memory of a CUDA device in bytes; None when unknown (the CPU, no NVML
    and no CUDA torch, or no such GPU)."""
    index = _cuda_index(device)
    if index is None:
        return None
    nvml = _pynvml()
    if nvml is not None:
        try:
            info = nvml.nvmlDeviceGetMemoryInfo(nvml.nvmlDeviceGetHandleByIndex(index))
            return float(info.free), float(info.total)
        except nvml.NVMLError:
            return None
    try:
        # Asked on the dispatcher thread of a process about to train on this GPU.
        import torch

        free, total = torch.cuda.mem_get_info(int(device.partition(":")[2]))
    except Exception:  # no CUDA here after all
        return None
    return float(free), float(total)
