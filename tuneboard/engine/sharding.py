"""How one rank of several wraps the model it trains: DDP, or FSDP2's `fully_shard`.

`wrap` gives the module the training step calls; `unwrap` hands a plain model on to the
next stage once training is done (for FSDP: every weight gathered whole on every rank, the
sharding undone). Imports torch: the training loop imports it inside a stage.
"""

from __future__ import annotations

from typing import Any

import torch

from tuneboard.engine.ranks import Ranks

_FSDP_KEYS = ("__composable_api_state_key", "_is_fsdp_managed_module", "_fsdp_use_orig_params")


def wrap(model: Any, ranks: Ranks, device: str, dtype: torch.dtype | None) -> Any:
    """`model` ready to train across the ranks: in DDP (rank 0's weights broadcast), or
    sharded in place by FSDP2, each of its layers a unit (the model's `_no_split_modules`),
    computing in `dtype` when mixed precision is on."""
    if ranks.parallel == "fsdp":
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        policy = MixedPrecisionPolicy(param_dtype=dtype, reduce_dtype=torch.float32)
        layers = set(getattr(model, "_no_split_modules", None) or ())
        for module in model.modules():
            if type(module).__name__ in layers and module is not model:
                fully_shard(module, mp_policy=policy)
        fully_shard(model, mp_policy=policy)
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [torch.device(device).index] if device.startswith("cuda") else None
    return DistributedDataParallel(model, device_ids=ids)


def sync_gradients(net: Any, ranks: Ranks, sync: bool) -> None:
    """Whether the next backward pass averages the gradients across the ranks (off for the
    micro-batches of a step but its last)."""
    if ranks.parallel == "fsdp":
        net.set_requires_gradient_sync(sync)
    else:
        net.require_backward_grad_sync = sync


def unwrap(model: Any, ranks: Ranks) -> Any:
    """The plain model after training: for FSDP, its weights gathered whole (every rank
    takes part) and the sharding taken off, so later stages and saving see a plain module."""
    if ranks.parallel != "fsdp":
        return model
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
    from torch.distributed.fsdp import FSDPModule

    full: dict[str, Any] = dict(
        get_model_state_dict(model, options=StateDictOptions(full_state_dict=True))
    )
    module: Any
    for module in model.modules():
        sharded = isinstance(module, FSDPModule)
        if sharded:
            plain = [c for c in type(module).__mro__[1:] if not issubclass(c, FSDPModule)]
            module.__class__ = plain[0]
            for hooks in (module._forward_pre_hooks, module._forward_hooks):
                for key, hook in list(hooks.items()):
                    if "fsdp" in type(getattr(hook, "__self__", None)).__module__:
                        del hooks[key]  # FSDP's own hooks: other hooks stay
        for key in [k for k in vars(module) if k.startswith(_FSDP_KEYS)]:
            delattr(module, key)
    for name, param in list(model.named_parameters()):
        owner_name, _, leaf = name.rpartition(".")
        owner = model.get_submodule(owner_name) if owner_name else model
        owner._parameters[leaf] = torch.nn.Parameter(
            full[name].detach().clone(), requires_grad=param.requires_grad
        )
    return model


def full_state(model: Any, optimizer: Any, trained_only: bool) -> tuple[dict[str, Any], Any]:
    """The FSDP model's and optimizer's whole state dicts, on rank 0's CPU ({} elsewhere).

    A collective: every rank calls it. The optimizer's state is keyed by parameter name.
    `trained_only` leaves out the frozen weights (a model with peft adapters)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    options = StateDictOptions(
        full_state_dict=True, cpu_offload=True, ignore_frozen_params=trained_only
    )
    weights, optim = get_state_dict(model, optimizer, options=options)
    return dict(weights), optim


def load_full_state(
    model: Any, optimizer: Any, weights: dict[str, Any], optim: Any, trained_only: bool
) -> None:
    """Load whole state dicts (as `full_state` gave them, read on every rank) back into the
    FSDP model and optimizer, each rank keeping its shard. A collective."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

    options = StateDictOptions(full_state_dict=True, strict=not trained_only)
    set_state_dict(
        model, optimizer, model_state_dict=weights, optim_state_dict=optim, options=options
    )


def shard_like(full: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """`full` (a whole tensor, the same on every rank) cut as `like` is: this rank's shard
    when `like` is a DTensor, else `full` itself."""
    from torch.distributed.tensor import DTensor, distribute_tensor

    if not isinstance(like, DTensor):
        return full
    return distribute_tensor(full.to(like.device), like.device_mesh, like.placements)
