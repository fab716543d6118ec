"""QLoRA: loading a model 4-bit (NF4 through bitsandbytes) and merging its LoRA adapters back
into a dequantised base.

How a run gets a 4-bit model: when the first stage of its pipeline that says what trains has
``train = "qlora"`` (`loads_4bit`), the run loads its model 4-bit straight away, on its GPU,
so a model that does not fit in full precision is never loaded in full. A `qlora` stage that
gets a full-precision model (an earlier stage trained it) re-loads it 4-bit (`reload_4bit`).
After training the adapters are merged into the dequantised (bf16) base, so the stage hands
on a plain transformers model, like LoRA does.

`qlora_problem` is what `prepare_run` asks before a run is created: on a machine without a
CUDA GPU or bitsandbytes a qlora stage is refused in one line. Importing this module is
cheap; torch, transformers and peft are imported inside the functions.
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tuneboard.sdk.errors import ConfigError

QLORA = "qlora"


def qlora_problem(devices: str | Sequence[str] = "auto") -> str | None:
    """What this machine lacks for QLoRA (a CUDA GPU among `devices`, bitsandbytes), or None.

    `devices` is the project's setting: ``"auto"`` or its list of devices.
    """
    missing = []
    if isinstance(devices, str):
        import torch

        if not torch.cuda.is_available():
            missing.append("this machine has no CUDA GPU")
    elif not any(device.startswith("cuda") for device in devices):
        missing.append("the project's devices list no CUDA GPU")
    if importlib.util.find_spec("bitsandbytes") is None:
        missing.append("bitsandbytes is not installed")
    return " and ".join(missing) or None


def train_mode(params: Any) -> str | None:
    """The `train` mode of a stage's parameters, or None when the stage has none."""
    mode = getattr(params, "train", None)
    return mode if isinstance(mode, str) else None


def loads_4bit(stage_params: Sequence[Any]) -> bool:
    """Whether a run with these stages (their parameters, in order) loads its model 4-bit:
    the first stage that says what trains says qlora."""
    modes = (train_mode(params) for params in stage_params)
    return next((mode for mode in modes if mode is not None), None) == QLORA


def is_4bit(model: Any) -> bool:
    """Whether `model` (or the model inside a `PeftModel`) is loaded 4-bit."""
    return bool(getattr(model, "is_loaded_in_4bit", False))


def load_kwargs(device: str) -> dict[str, Any]:
    """`from_pretrained` keywords that load a model 4-bit on `device`: NF4 with double
    quantisation, computing in bf16 (the QLoRA recipe)."""
    if not device.startswith("cuda"):
        raise ConfigError(f"train = 'qlora' needs a CUDA GPU; this run got {device}")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ConfigError("train = 'qlora' needs bitsandbytes: pip install bitsandbytes")
    import torch
    from transformers import BitsAndBytesConfig

    factory: Any = BitsAndBytesConfig  # untyped
    config = factory(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )
    return {"quantization_config": config, "dtype": torch.bfloat16, "device_map": {"": device}}


def reload_4bit(model: Any, device: str) -> Any:
    """`model` re-loaded 4-bit on `device` (through a temporary folder): for a model built
    from a config, or trained in full precision by an earlier stage."""
    from tuneboard.engine.models import reload_saved

    kwargs = load_kwargs(device)
    with tempfile.TemporaryDirectory(prefix="tuneboard-4bit-") as folder:
        model.save_pretrained(folder)
        reloaded = reload_saved(type(model), Path(folder), **kwargs)
    return reloaded


def merge_into_dequantised(model: Any) -> Any:
    """Merge the LoRA adapters of a 4-bit `PeftModel` into its base, dequantised to bf16.

    Merging into the 4-bit weights would quantise the merged weights again (and lose part
    of what was learnt); instead the adapters are taken off, the base is dequantised, the
    same adapters are put back on the dequantised base and merged there.
    """
    import torch
    from peft import get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict

    config = model.peft_config["default"]
    adapter = {name: t.detach().clone() for name, t in get_peft_model_state_dict(model).items()}
    base = model.base_model.unload()  # the 4-bit base without its LoRA layers
    base = base.dequantize()
    base = base.to(torch.bfloat16)
    rewrapped = get_peft_model(base, config)
    set_peft_model_state_dict(rewrapped, adapter)
    return rewrapped.merge_and_unload()
