"""Which parameters of a model train (all, the head, the top k layers; peft adapters are in
`tuneboard.engine.adapters`), gradient checkpointing, and optimizer parameter groups.

Imports torch at module level: import it lazily, from code that trains.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import torch
from torch import nn

from tuneboard.sdk.errors import ConfigError
from tuneboard.sdk.training import TrainMode

_DROPOUT_CONFIG_KEYS = (
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "dropout",
    "attention_dropout",
    "hidden_dropout",
)


def set_dropout(model: nn.Module, p: float) -> None:
    """Set every dropout module of `model` (and the matching config keys) to probability `p`."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = p
    config = getattr(model, "config", None)
    for key in _DROPOUT_CONFIG_KEYS:
        if config is not None and isinstance(getattr(config, key, None), float):
            setattr(config, key, p)


def base_prefix(model: nn.Module) -> str:
    """The attribute name of the encoder inside a task model (``bert`` for BERT)."""
    prefix = getattr(model, "base_model_prefix", "")
    if not prefix or not isinstance(getattr(model, prefix, None), nn.Module):
        raise ConfigError(f"{type(model).__name__}: cannot tell its encoder from its head")
    return str(prefix)


def is_head(name: str, prefix: str) -> bool:
    """Whether parameter `name` belongs to the task head (anything outside the encoder, plus
    the encoder's pooler)."""
    return not name.startswith(prefix + ".") or ".pooler." in name


def encoder_layers(model: nn.Module) -> tuple[str, int]:
    """The dotted name of the encoder's layer list and how many layers it has."""
    prefix = base_prefix(model)
    best_name, best_len = "", 0
    for name, module in getattr(model, prefix).named_modules():
        if isinstance(module, nn.ModuleList) and len(module) > best_len:
            best_name, best_len = name, len(module)
    if not best_len:
        raise ConfigError(f"{type(model).__name__}: no list of encoder layers found")
    return f"{prefix}.{best_name}", best_len


def freeze_except(model: nn.Module, mode: TrainMode, top_k: int) -> None:
    """Set `requires_grad` for `mode` ``all``, ``head`` or ``top_k`` (the top `top_k` encoder
    layers and the head)."""
    if mode == "all":
        model.requires_grad_(True)
        return
    prefix = base_prefix(model)
    layer_prefixes: tuple[str, ...] = ()
    if mode == "top_k":
        layers, count = encoder_layers(model)
        if not 1 <= top_k <= count:
            raise ConfigError(
                f"top_k must be between 1 and the model's {count} layers, got {top_k}"
            )
        layer_prefixes = tuple(f"{layers}.{i}." for i in range(count - top_k, count))
    for name, param in model.named_parameters():
        param.requires_grad_(is_head(name, prefix) or name.startswith(layer_prefixes))


def enable_gradient_checkpointing(model: Any, adapters: bool) -> None:
    """Recompute activations in the backward pass (non-reentrant checkpointing); with
    `adapters` (a frozen base), make the embeddings' output need gradients, as peft needs."""
    if not getattr(model, "supports_gradient_checkpointing", False):
        raise ConfigError(f"gradient_checkpointing: {type(model).__name__} does not support it")
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers 5 renamed it
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "use_cache"):
        config.use_cache = False  # a cache is useless (and warned about) while training
    if adapters:
        model.enable_input_require_grads()


def disable_gradient_checkpointing(model: Any) -> None:
    """Undo `enable_gradient_checkpointing` on `model` (a plain transformers model)."""
    if hasattr(model, "activation_checkpointing_disable"):
        model.activation_checkpointing_disable()
    elif hasattr(model, "gradient_checkpointing_disable"):
        model.gradient_checkpointing_disable()
    if hasattr(model, "disable_input_require_grads"):
        # Older transformers raise AttributeError when no hook was registered.
        with contextlib.suppress(AttributeError):
            model.disable_input_require_grads()
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "use_cache"):
        config.use_cache = True


def decay_groups(
    model: nn.Module, weight_decay: float, lr: float | None = None, layer_lr_decay: float = 1.0
) -> list[dict[str, Any]]:
    """Optimizer parameter groups: weight decay on matrices, none on biases and norms.

    With `layer_lr_decay` < 1 the groups are split by depth too, each with its own ``lr``
    (`lr` times the scale from `layer_lr_scales`), the full-rate groups first.
    """
    if layer_lr_decay == 1.0:
        decay: list[torch.Tensor] = []
        no_decay: list[torch.Tensor] = []
        for _, param in model.named_parameters():
            if param.requires_grad:
                (decay if param.ndim >= 2 else no_decay).append(param)
        return [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
    if lr is None:
        raise ValueError("layer-wise learning-rate decay needs the base lr")
    scales = layer_lr_scales(model, layer_lr_decay)
    groups: dict[tuple[float, bool], list[torch.Tensor]] = {}
    for param in model.parameters():
        if param.requires_grad:
            groups.setdefault((scales[id(param)], param.ndim >= 2), []).append(param)
    return [
        {"params": params, "weight_decay": weight_decay if decays else 0.0, "lr": lr * scale}
        for (scale, decays), params in sorted(groups.items(), key=lambda g: (-g[0][0], not g[0][1]))
    ]


def layer_lr_scales(model: nn.Module, decay: float) -> dict[int, float]:
    """The learning-rate multiplier of each parameter (keyed by `id`) for layer-wise decay.

    The head and the top encoder layer get 1, each layer below `decay` times the one above,
    and the embeddings (everything else in the encoder) `decay` times the lowest layer.
    A LoRA-wrapped model is measured on the model underneath.
    """
    get_base = getattr(model, "get_base_model", None)
    base: nn.Module = get_base() if callable(get_base) else model
    prefix = base_prefix(base)
    layers, count = encoder_layers(base)
    layer = re.compile(re.escape(layers) + r"\.(\d+)\.")
    scales: dict[int, float] = {}
    for name, param in base.named_parameters():
        if is_head(name, prefix):
            scales[id(param)] = 1.0
        elif found := layer.match(name):
            scales[id(param)] = decay ** (count - 1 - int(found.group(1)))
        else:
            scales[id(param)] = decay**count
    return scales
