"""Parameter-efficient training through peft: the adapter each `train` mode adds, and what
becomes of it after training.

LoRA, QLoRA, AdaLoRA and IA3 adapters are merged into the weights once a stage has trained,
so the stage hands on a plain transformers model. The prompt-learning methods (prefix, prompt
and P-tuning) add virtual tokens that cannot be merged: the stage hands on the `PeftModel`,
and its checkpoint is the adapter (``adapter_config.json`` + weights) with the base model in
``base/`` (see `save_model`), which tuneboard's model loader and peft's ``AutoPeftModel*`` load.

Importing this module is cheap: peft and torch are imported inside the functions that use them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuneboard.sdk.contracts import (
    CAUSAL_LM,
    SEQ2SEQ,
    SEQUENCE_CLASSIFICATION,
    TOKEN_CLASSIFICATION,
)
from tuneboard.sdk.errors import ConfigError
from tuneboard.sdk.files import make_private
from tuneboard.sdk.training import TrainParams

PEFT_MODES = frozenset({"lora", "qlora", "adalora", "ia3", "prefix", "prompt", "p_tuning"})
"""The `train` modes that train peft adapters instead of the model's own weights."""
PROMPT_LEARNING = frozenset({"prefix", "prompt", "p_tuning"})
"""The modes whose adapters cannot be merged into the weights: the adapter is kept."""
BASE_FOLDER = "base"
"""Where a kept adapter's checkpoint holds its base model."""
ADAPTER_CONFIG = "adapter_config.json"

_TASK_TYPES = {
    SEQUENCE_CLASSIFICATION: "SEQ_CLS",
    TOKEN_CLASSIFICATION: "TOKEN_CLS",
    CAUSAL_LM: "CAUSAL_LM",
    SEQ2SEQ: "SEQ_2_SEQ_LM",
}
_PROMPT_LEARNING_PARTS = ("prompt_encoder.", "modules_to_save.")
"""What trains in a prompt-learning `PeftModel`: the virtual tokens and a classifier head."""
_PEFT_TYPES = {"prefix": "PREFIX_TUNING", "prompt": "PROMPT_TUNING", "p_tuning": "P_TUNING"}
_TARGET_KEYS = {"lora": "lora_targets", "qlora": "lora_targets", "adalora": "lora_targets"}
_TARGET_KEYS["ia3"] = "ia3_targets"


def unsupported(mode: str, task: str) -> str | None:
    """Why peft cannot train `mode` adapters for `task`, or None when it can as far as the
    task tells (a model may refuse more: prefix tuning needs one with a KV cache, which
    encoders such as BERT lack; `add_adapters` then says so)."""
    if mode in ("prompt", "p_tuning") and task == TOKEN_CLASSIFICATION:
        return (
            f"train = {mode!r} cannot train a {task} model: virtual tokens put before the "
            "input leave the labels one per real token (use lora, adalora or ia3)"
        )
    return None


@dataclass(frozen=True)
class AdapterSetup:
    """What an adapter's config needs besides the stage's parameters."""

    task_type: str
    """peft's `TaskType` value for the model."""
    total_steps: int
    """Optimizer steps the stage will take (AdaLoRA schedules its pruning over them)."""
    model_type: str
    """The model's `config.model_type` (peft's default target modules are per type)."""


def _lora(settings: TrainParams, setup: AdapterSetup) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        task_type=setup.task_type,
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.lora_dropout,
        # None: peft's own choice for the model type (query/value for BERT, c_attn for GPT-2).
        target_modules=list(settings.lora_targets) or None,
    )


def _adalora(settings: TrainParams, setup: AdapterSetup) -> Any:
    from peft import AdaLoraConfig

    total = max(1, setup.total_steps)
    # Ranks stay whole for the first tenth of training, are pruned until the last fifth, then
    # the final budget is fine-tuned (the schedule of the AdaLoRA paper, in proportion).
    tinit, tfinal = total // 10, total // 5
    return AdaLoraConfig(
        task_type=setup.task_type,
        init_r=settings.adalora_init_r,
        target_r=settings.adalora_target_r,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.lora_dropout,
        target_modules=list(settings.lora_targets) or None,
        total_step=total,
        tinit=tinit,
        tfinal=tfinal,
    )


def _ia3(settings: TrainParams, setup: AdapterSetup) -> Any:
    from peft import IA3Config
    from peft.utils import TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING as FEEDFORWARD

    targets = list(settings.ia3_targets) or None
    feedforward = None  # peft's default for the model type, with its default targets
    if targets:
        # Targets that peft lists as feed-forward layers for the model type scale their input.
        feedforward = [t for t in targets if t in FEEDFORWARD.get(setup.model_type, ())]
    return IA3Config(
        task_type=setup.task_type, target_modules=targets, feedforward_modules=feedforward
    )


def _prefix(settings: TrainParams, setup: AdapterSetup) -> Any:
    from peft import PrefixTuningConfig

    return PrefixTuningConfig(
        task_type=setup.task_type, num_virtual_tokens=settings.num_virtual_tokens
    )


def _prompt(settings: TrainParams, setup: AdapterSetup) -> Any:
    from peft import PromptTuningConfig

    return PromptTuningConfig(
        task_type=setup.task_type, num_virtual_tokens=settings.num_virtual_tokens
    )


def _p_tuning(settings: TrainParams, setup: AdapterSetup) -> Any:
    from peft import PromptEncoderConfig

    return PromptEncoderConfig(
        task_type=setup.task_type, num_virtual_tokens=settings.num_virtual_tokens
    )


ADAPTER_CONFIGS: Mapping[str, Callable[[TrainParams, AdapterSetup], Any]] = {
    "lora": _lora,
    "qlora": _lora,  # LoRA on a 4-bit base: the base is what differs
    "adalora": _adalora,
    "ia3": _ia3,
    "prefix": _prefix,
    "prompt": _prompt,
    "p_tuning": _p_tuning,
}
"""The peft config of each adapter `train` mode, built from the stage's parameters."""


def task_type(model: Any, task: str) -> str:
    """peft's task type for `model` trained on `task`; a task plugin's model is told by its
    architecture (encoder-decoder, causal LM, else a classifier)."""
    if task in _TASK_TYPES:
        return _TASK_TYPES[task]
    if getattr(model.config, "is_encoder_decoder", False):
        return "SEQ_2_SEQ_LM"
    if type(model).__name__.endswith(("ForCausalLM", "LMHeadModel")):
        return "CAUSAL_LM"
    return "SEQ_CLS"


def adapter_config(model: Any, task: str, settings: TrainParams, total_steps: int) -> Any:
    """The peft config that `settings.train` asks for, for `model` trained on `task`."""
    setup = AdapterSetup(task_type(model, task), total_steps, str(model.config.model_type))
    return ADAPTER_CONFIGS[settings.train](settings, setup)


def is_peft_model(model: Any) -> bool:
    """Whether `model` is a peft `PeftModel` (an adapter around a base model)."""
    return hasattr(model, "peft_config") and callable(getattr(model, "get_base_model", None))


def kept_mode(model: Any) -> str | None:
    """The prompt-learning mode of a kept adapter `model` carries, or None."""
    if not is_peft_model(model):
        return None
    peft_type = str(getattr(model.peft_config["default"].peft_type, "value", ""))
    return next((mode for mode, name in _PEFT_TYPES.items() if name == peft_type), None)


def add_adapters(model: Any, task: str, settings: TrainParams, total_steps: int) -> Any:
    """Wrap `model` with the adapters `settings.train` names; only they (and a classifier
    head, which peft trains in full) train. A model that already carries a kept
    prompt-learning adapter goes on training it when the mode is the same.

    Raises `ConfigError` in one line where peft cannot train that mode on this model.
    """
    mode = settings.train
    carried = kept_mode(model)
    if carried is not None:
        if carried != mode:
            raise ConfigError(
                f"train = {mode!r}: the model carries a {carried!r} adapter from an earlier "
                f"stage, which cannot be merged; train it further with train = {carried!r}"
            )
        for name, param in model.named_parameters():  # loaded adapters come frozen
            param.requires_grad_(any(part in name for part in _PROMPT_LEARNING_PARTS))
        return model
    reason = unsupported(mode, task)
    if reason:
        raise ConfigError(reason)
    if mode == "prefix" and not _takes_past_key_values(model, task):
        raise ConfigError(
            f"train = 'prefix' with {type(model).__name__}: the model takes no past key values,"
            " which prefix tuning needs (use prompt or p_tuning)"
        )
    from peft import get_peft_model

    if mode == "qlora":
        from peft import prepare_model_for_kbit_training

        prepare: Any = prepare_model_for_kbit_training  # untyped
        # Casts norms and the head to fp32 and makes the embeddings' output need gradients.
        model = prepare(
            model,
            use_gradient_checkpointing=settings.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    config = adapter_config(model, task, settings, total_steps)
    try:
        return get_peft_model(model, config)
    except (ValueError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        key = _TARGET_KEYS.get(mode)
        if key is not None and getattr(settings, key):
            raise ConfigError(f"{key} {list(getattr(settings, key))!r}: {first}") from None
        raise ConfigError(f"train = {mode!r} with {type(model).__name__}: {first}") from None


def _takes_past_key_values(model: Any, task: str) -> bool:
    """Whether a classifier (or its backbone) takes the past key values prefix tuning feeds
    it, as peft asks at the first forward pass (language models always do)."""
    if task_type(model, task) not in ("SEQ_CLS", "TOKEN_CLS"):
        return True
    backbone = getattr(model, str(getattr(model, "base_model_prefix", "")), None)
    return any(
        "past_key_values" in inspect.signature(module.forward).parameters
        for module in (model, backbone)
        if module is not None
    )


def step_hook(model: Any, mode: str) -> Callable[[int], None] | None:
    """What must run after each optimizer step and before the gradients are cleared:
    AdaLoRA's rank allocation (it reads the gradients), None for the other modes."""
    if mode != "adalora":
        return None
    update: Callable[[int], None] = model.base_model.update_and_allocate
    return update


def finish(model: Any, mode: str) -> Any:
    """The model to hand on after training with adapters: merged into the weights (lora,
    adalora, ia3; qlora into the dequantised base), or the `PeftModel` itself for the
    prompt-learning modes, whose virtual tokens cannot be merged."""
    if mode in PROMPT_LEARNING:
        return model
    if mode == "qlora":
        from tuneboard.engine.quantization import merge_into_dequantised

        return merge_into_dequantised(model)
    return model.merge_and_unload()


# --- checkpoints of kept adapters ----------------------------------------------------------


def save_model(model: Any, tokenizer: Any, folder: Path) -> None:
    """Save `model` and `tokenizer` to `folder` so that `from_pretrained` loads them back.

    A plain model is saved as transformers saves it. A `PeftModel` is saved as its adapter
    (``adapter_config.json`` and ``adapter_model.safetensors``) with the tokenizer, and its
    base model in ``base/``; the adapter config names that base folder (by absolute path),
    so ``peft.AutoPeftModelForCausalLM.from_pretrained(folder)`` (or the class for the task)
    loads it, and ``PeftModel.from_pretrained(AutoModel...from_pretrained(folder / "base"),
    folder)`` does too after the folder moves.
    """
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        _save_model(model, tokenizer, folder)
    finally:  # transformers and safetensors create files with the umask's modes
        make_private(folder)


def _save_model(model: Any, tokenizer: Any, folder: Path) -> None:
    if not is_peft_model(model):
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        return
    base_dir = (folder / BASE_FOLDER).resolve()
    base = model.get_base_model()
    base.save_pretrained(base_dir, state_dict=_base_state_dict(base))
    tokenizer.save_pretrained(base_dir)
    config = model.peft_config["default"]
    previous = config.base_model_name_or_path
    config.base_model_name_or_path = str(base_dir)
    try:
        model.save_pretrained(folder)
    finally:
        config.base_model_name_or_path = previous
    tokenizer.save_pretrained(folder)


def _base_state_dict(base: Any) -> dict[str, Any]:
    """The base model's own weights: a head that peft trains beside the adapter (wrapped as
    `modules_to_save`) is saved under its plain name, untrained; the adapter holds the
    trained copy."""
    state: dict[str, Any] = {}
    for key, value in base.state_dict().items():
        if ".modules_to_save." in key:
            continue
        state[key.replace(".original_module.", ".")] = value
    return state


def is_adapter_folder(folder: Path) -> bool:
    """Whether `folder` is a kept adapter's checkpoint (see `save_model`)."""
    return (folder / ADAPTER_CONFIG).is_file() and (folder / BASE_FOLDER).is_dir()
