"""Resume checkpoints of the training loop: written atomically, only the latest kept.

A checkpoint is a folder ``resume-<step>`` in the stage's folder:

- ``model.safetensors``: the trained module's whole state dict, or for a model with peft
  adapters only what trains (and the buffers): its frozen base does not change, and a 4-bit
  base would not load back from a state dict;
- ``best.safetensors`` and ``ema.safetensors``: named tensors (the best weights so far, the
  moving average of the weights), when there are any;
- ``trainer.pt``: optimizer, lr-scheduler and grad-scaler state dicts and the torch RNG
  states: tensors and plain values only, read back with ``torch.load(weights_only=True)``,
  which refuses anything else (no pickled code runs);
- ``meta.json``: the step, epoch and position in the epoch, the early-stopping state, the
  Python and numpy RNG states and whatever else the loop keeps (see `_Loop.checkpoint`).

It is written to a hidden temporary folder that is then renamed, so a kill while writing
leaves the previous checkpoint whole; older checkpoints are removed after the rename. The
functions that only look at folders (`latest`, `read_meta`, `clear`) do not import torch.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneboard.engine import killpoints
from tuneboard.sdk.errors import TuneboardError
from tuneboard.sdk.files import make_private

if TYPE_CHECKING:
    import torch

PREFIX = "resume-"
META = "meta.json"
MODEL = "model.safetensors"
BEST = "best.safetensors"
EMA = "ema.safetensors"
TRAINER = "trainer.pt"
FORMAT = 1
"""Version of the checkpoint layout; a checkpoint of another version is refused."""


def latest(stage_dir: Path) -> Path | None:
    """The newest complete resume checkpoint in a stage's folder, or None."""
    found: tuple[int, Path] | None = None
    for path in stage_dir.glob(f"{PREFIX}*"):
        step = path.name[len(PREFIX) :]
        if step.isdigit() and (path / META).is_file() and (found is None or int(step) > found[0]):
            found = (int(step), path)
    return found[1] if found else None


def read_meta(folder: Path) -> dict[str, Any]:
    """The ``meta.json`` of a checkpoint; `TuneboardError` naming the file when unreadable."""
    path = folder / META
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise TuneboardError(f"resume checkpoint {path}: cannot be read: {error}") from None
    version = meta.get("format") if isinstance(meta, dict) else None
    if not isinstance(meta, dict) or version != FORMAT:
        raise TuneboardError(
            f"resume checkpoint {path}: format {version!r} is not {FORMAT}"
            " (written by another tuneboard version)"
        )
    return meta


def clear(stage_dir: Path) -> None:
    """Remove every resume checkpoint (and leftover temporary folder) of a stage."""
    for path in [*stage_dir.glob(f"{PREFIX}*"), *stage_dir.glob(f".{PREFIX}*")]:
        shutil.rmtree(path, ignore_errors=True)


def write(
    stage_dir: Path,
    step: int,
    *,
    model: Any,
    trainer: Mapping[str, Any],
    best: Mapping[str, torch.Tensor],
    ema: Mapping[str, torch.Tensor],
    meta: Mapping[str, Any],
) -> Path:
    """Write a checkpoint at `step` (atomically), remove the older ones, return its folder.

    `model` (a module) is saved with safetensors' `save_model` (shared tensors handled), or
    (a mapping of named tensors) with `save_file`; `trainer` (state dicts, RNG tensors) with
    `torch.save`, `meta` as JSON with ``format`` added.
    """
    import torch
    from safetensors.torch import save_file, save_model

    final = stage_dir / f"{PREFIX}{step:08d}"
    temporary = stage_dir / f".{PREFIX}{step:08d}.tmp"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(mode=0o700, parents=True)
    try:
        if isinstance(model, Mapping):
            save_file(_on_cpu(model), str(temporary / MODEL))
        else:
            save_model(model, str(temporary / MODEL))
        for name, tensors in ((BEST, best), (EMA, ema)):
            if tensors:
                save_file(_on_cpu(tensors), str(temporary / name))
        torch.save(dict(trainer), temporary / TRAINER)
        text = json.dumps({"format": FORMAT, **meta}, indent=1)
        (temporary / META).write_text(text, encoding="utf-8")
        killpoints.reached("checkpoint.writing", _point_key(stage_dir, step))
        if final.exists():  # the same step again (a cancel right after an evaluation)
            shutil.rmtree(final)
        make_private(temporary)  # safetensors and torch.save create files with the umask's modes
        temporary.rename(final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    killpoints.reached("checkpoint.written", _point_key(stage_dir, step))
    for path in stage_dir.glob(f"{PREFIX}*"):
        if path != final:
            shutil.rmtree(path, ignore_errors=True)
    return final


def _point_key(stage_dir: Path, step: int) -> str:
    """``<row>/<step>``: a stage's folder is ``stage-<row>``."""
    return f"{stage_dir.name.removeprefix('stage-')}/{step}"


def _on_cpu(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors on the CPU, a tensor that shares memory with an earlier one (tied weights)
    copied, as safetensors' `save_file` refuses shared memory."""
    seen: set[int] = set()
    out = {}
    for key, value in tensors.items():
        tensor = value.detach().contiguous().cpu()
        if tensor.untyped_storage().data_ptr() in seen:
            tensor = tensor.clone()
        seen.add(tensor.untyped_storage().data_ptr())
        out[key] = tensor
    return out


def load_model_into(model: Any, folder: Path, into: Mapping[str, Any] | None = None) -> None:
    """Load a checkpoint's ``model.safetensors`` into `model` (every key must match).

    `into` (named tensors of `model`, as `write` got them for a model with adapters) loads
    the checkpoint's tensors into those, in place, instead of into the whole model.
    """
    from safetensors.torch import load_file, load_model

    if into is not None:
        import torch

        saved = load_file(str(folder / MODEL))
        missing = sorted(set(into) - set(saved))
        unexpected = sorted(set(saved) - set(into))
        if not missing and not unexpected:
            with torch.no_grad():
                for name, tensor in into.items():
                    tensor.copy_(saved[name])
            return
    else:
        missing, unexpected = load_model(model, str(folder / MODEL), strict=False)
    if missing or unexpected:
        names = ", ".join([*missing, *unexpected][:3])
        raise TuneboardError(
            f"resume checkpoint {folder}: its weights do not fit this stage's model ({names})"
        )


def load_tensors(folder: Path, name: str, device: str) -> dict[str, torch.Tensor]:
    """The named tensors of one of a checkpoint's safetensors files ({} when absent)."""
    from safetensors.torch import load_file

    path = folder / name
    return load_file(str(path), device=device) if path.is_file() else {}


def load_trainer(folder: Path) -> dict[str, Any]:
    """A checkpoint's ``trainer.pt``, read with ``weights_only=True`` (no code can run)."""
    import torch

    state = torch.load(folder / TRAINER, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise TuneboardError(f"resume checkpoint {folder}: {TRAINER} is not a dictionary")
    return state


# --- random number generators -------------------------------------------------------------


def rng_states(stage_rng: random.Random, device: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The states of every RNG training touches: (JSON-able part, tensor part).

    Python's global `random` and the stage's own `rng`, numpy's global generator, torch's CPU
    generator and, on CUDA, the GPU generators.
    """
    import numpy as np
    import torch

    name, keys, position, has_gauss, cached = np.random.get_state(legacy=True)
    plain = {
        "python": _plain_random_state(random.getstate()),
        "stage": _plain_random_state(stage_rng.getstate()),
        "numpy": [name, [int(k) for k in keys], int(position), int(has_gauss), float(cached)],
    }
    tensors: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.startswith("cuda"):
        tensors["cuda"] = torch.cuda.get_rng_state_all()
    return plain, tensors


def set_rng_states(
    plain: Mapping[str, Any], tensors: Mapping[str, Any], stage_rng: random.Random
) -> None:
    """Put every RNG back in the state `rng_states` returned."""
    import numpy as np
    import torch

    random.setstate(_random_state(plain["python"]))
    stage_rng.setstate(_random_state(plain["stage"]))
    name, keys, position, has_gauss, cached = plain["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached))
    torch.set_rng_state(tensors["torch"])
    if "cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(tensors["cuda"])


def _plain_random_state(state: tuple[Any, ...]) -> list[Any]:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _random_state(value: list[Any]) -> tuple[Any, ...]:
    version, internal, gauss = value
    return (version, tuple(internal), gauss)
