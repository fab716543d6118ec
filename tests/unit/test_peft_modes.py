"""The peft training modes (prefix, prompt, p_tuning, ia3, adalora beside lora), gradient
checkpointing, and the QLoRA refusal, on tiny randomly initialised models."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import MINILM, RecordingContext, one_torch_thread, toy_state
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from tuneboard.builtin.generation.tasks import CausalLM, CausalLMParams
from tuneboard.builtin.strategies import StandardStrategy
from tuneboard.config import ModelSpec
from tuneboard.engine.adapters import add_adapters, finish, is_peft_model, save_model, step_hook
from tuneboard.engine.models import load_model_and_tokenizer, resolve_model_source
from tuneboard.engine.quantization import loads_4bit
from tuneboard.engine.training import fit
from tuneboard.sdk.contracts import (
    CAUSAL_LM,
    SEQUENCE_CLASSIFICATION,
    TOKEN_CLASSIFICATION,
    NoParams,
)
from tuneboard.sdk.errors import ConfigError
from tuneboard.sdk.training import TrainParams
from tuneboard.testing import ThrowawayProject
from tuneboard.ui.render import toml_literal

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")

TINY_GPT2 = {"model_type": "gpt2", "n_layer": 2, "n_embd": 32, "n_head": 2, "n_positions": 128}
# No dropout, and weights large enough that a frozen random base leaves adapters room to learn.
LEARNABLE = {"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0, "initializer_range": 0.5}
ADAPTER_SETTINGS = {
    "num_virtual_tokens": 4,
    "lora_r": 4,
    "lora_dropout": 0.0,
    "adalora_init_r": 4,
    "adalora_target_r": 2,
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return AutoTokenizer.from_pretrained(resolve_model_source(MINILM, Path(".")))


def tiny_gpt2(tokenizer: Any) -> Any:
    torch.manual_seed(0)
    values = dict(TINY_GPT2)
    config = AutoConfig.for_model(
        values.pop("model_type"), vocab_size=len(tokenizer), **values, **LEARNABLE
    )
    return AutoModelForCausalLM.from_config(config)


def logits(model: Any, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(input_ids=ids, attention_mask=torch.ones_like(ids)).logits


@pytest.mark.parametrize("mode", ["lora", "adalora", "ia3", "prefix", "prompt", "p_tuning"])
def test_causal_lm_adapters_train_only_themselves_and_load_back(
    tmp_path: Path, tokenizer: Any, mode: str
) -> None:
    model = tiny_gpt2(tokenizer)
    originals = [(p, p.detach().clone()) for p in model.parameters()]
    settings = TrainParams(train=mode, **ADAPTER_SETTINGS)  # type: ignore[arg-type]
    steps = 12
    wrapped = add_adapters(model, CAUSAL_LM, settings, total_steps=steps)
    trainable = [p for p in wrapped.parameters() if p.requires_grad]
    assert trainable and all(not p.requires_grad for p, _ in originals)
    optimizer = torch.optim.AdamW(trainable, lr=5e-2)
    hook = step_hook(wrapped, mode)
    ids = torch.arange(1000, 1010).repeat(4, 1)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}
    wrapped.train()
    losses = []
    for step in range(steps):
        loss = wrapped(**batch).loss
        loss.backward()
        optimizer.step()
        if hook is not None:
            hook(step)
        optimizer.zero_grad()
        losses.append(float(loss))
    assert losses[-1] < 0.9 * losses[0], losses
    assert all(torch.equal(p, before) for p, before in originals)  # the base never moved

    done = finish(wrapped, mode)
    folder = tmp_path / "best"
    save_model(done, tokenizer, folder)
    probe = ids[:2, :6]
    expected = logits(done, probe)
    if mode in ("prefix", "prompt", "p_tuning"):  # cannot merge: the adapter is kept
        from peft import AutoPeftModelForCausalLM

        assert is_peft_model(done)
        assert (folder / "adapter_config.json").is_file() and (folder / "base").is_dir()
        reloaded = AutoPeftModelForCausalLM.from_pretrained(folder)
        torch.testing.assert_close(logits(reloaded, probe), expected)
        # What a later stage or a resumed run gets from the checkpoint: the same PeftModel.
        again, _ = load_model_and_tokenizer(
            ModelSpec(source=str(folder)), CAUSAL_LM, [], tmp_path, CausalLM(CausalLMParams())
        )
        assert is_peft_model(again)
        torch.testing.assert_close(logits(again, probe), expected)
    else:
        assert type(done).__name__ == "GPT2LMHeadModel"
        assert not (folder / "adapter_config.json").exists()
        reloaded = AutoModelForCausalLM.from_pretrained(folder)
        torch.testing.assert_close(logits(reloaded, probe), expected)


def test_refusals_are_one_line_config_errors() -> None:
    with pytest.raises(ConfigError, match="'prompt' cannot train a token-classification model"):
        add_adapters(toy_state().model, TOKEN_CLASSIFICATION, TrainParams(train="prompt"), 1)
    with pytest.raises(
        ConfigError,
        match=r"^train = 'prefix' with BertForSequenceClassification: .* no past key values",
    ):
        add_adapters(toy_state().model, SEQUENCE_CLASSIFICATION, TrainParams(train="prefix"), 1)
    with pytest.raises(ValueError, match=r"'adalora_target_r' \(8\) must not exceed"):
        TrainParams(train="adalora", adalora_init_r=4, adalora_target_r=8)


def test_qlora_is_refused_before_the_run_without_cuda(tmp_path: Path) -> None:
    project = ThrowawayProject(tmp_path)  # its devices are ["cpu"]
    with pytest.raises(ConfigError) as raised:
        project.run({"plugin": "finetune", "name": "tune", "train": "qlora"})
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(
        "tuneboard.toml: [experiments.run_1.stages.0] (tune): key 'train': qlora needs a CUDA "
        "GPU and bitsandbytes, but the project's devices list no CUDA GPU"
    )
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_pipeline_that_starts_with_qlora_loads_its_model_4bit() -> None:
    assert loads_4bit([None, TrainParams(train="qlora"), TrainParams()])
    assert not loads_4bit([TrainParams(), TrainParams(train="qlora")])
    assert not loads_4bit([None])


def test_gradient_checkpointing_changes_nothing_but_memory(tmp_path: Path) -> None:
    def losses(checkpointing: bool) -> tuple[list[float], Any]:
        state = toy_state()
        ctx = RecordingContext(tmp_path / str(checkpointing))
        settings = TrainParams(
            batch_size=8,
            lr=5e-3,
            dropout=0.0,
            epochs=1,
            train="lora",
            lora_r=4,
            gradient_checkpointing=checkpointing,
        )
        fit(ctx, state, settings, StandardStrategy(NoParams()))
        return [value for _, value in ctx.series("train/loss")], state.model

    plain, _ = losses(False)
    checkpointed, model = losses(True)
    assert checkpointed == pytest.approx(plain, rel=1e-5)
    assert not model.is_activation_checkpointing  # off again for the next stage


def test_prompt_tuning_a_classifier_keeps_its_adapter_and_head(tmp_path: Path) -> None:
    state = toy_state()
    ctx = RecordingContext(tmp_path)
    settings = TrainParams(
        batch_size=8, lr=5e-2, warmup_ratio=0.0, epochs=4, train="prompt", num_virtual_tokens=4
    )
    result = fit(ctx, state, settings, StandardStrategy(NoParams()))
    losses = [value for _, value in ctx.series("train/loss")]
    assert sum(losses[-5:]) < sum(losses[:5])
    assert is_peft_model(state.model)
    config = json.loads((result.checkpoint / "adapter_config.json").read_text())
    assert config["peft_type"] == "PROMPT_TUNING"
    assert config["base_model_name_or_path"] == str((result.checkpoint / "base").resolve())
    again, _ = load_model_and_tokenizer(
        ModelSpec(source=str(result.checkpoint)), SEQUENCE_CLASSIFICATION, state.labels, tmp_path
    )
    ids = torch.tensor([[101, 2204, 3185, 102]])
    torch.testing.assert_close(logits(again, ids), logits(state.model, ids))  # head included


def write_generation_project(root: Path, stages: str) -> None:
    """A causal-lm project on a tiny GPT-2: `stages` are its [[experiments.gen.stages]]."""
    data = root / "data"
    data.mkdir(parents=True)
    for split, count in (("train", 16), ("validation", 4)):
        records = [{"prompt": f"count {i}", "response": f"{i} {i + 1}"} for i in range(count)]
        lines = "".join(json.dumps(record) + "\n" for record in records)
        (data / f"{split}.jsonl").write_text(lines, encoding="utf-8")
    model = {"tokenizer": MINILM, "config": {**TINY_GPT2, **LEARNABLE}}
    (root / "tuneboard.toml").write_text(
        f"""[project]
name = "peft"
devices = ["cpu"]

[experiments.gen]
task = "causal-lm"
max_length = 32
seed = 0
dataset = {{plugin = "chat", train = "data/train.jsonl", validation = "data/validation.jsonl"}}
model = {toml_literal(model)}
{stages}""",
        encoding="utf-8",
    )


def run_experiment(root: Path, name: str) -> tuple[str, str | None, Path]:
    """Run experiment `name` of the project at `root` with the real engine; its status,
    error and folder."""
    from tuneboard.config import load_project
    from tuneboard.engine.engine import Engine
    from tuneboard.engine.runner import prepare_run
    from tuneboard.plugins import load_plugins
    from tuneboard.store import Store

    project = load_project(root)
    registry = load_plugins(root, reload=True)
    prepared = prepare_run(project, project.experiment(name, registry), registry)
    store = Store(project.database)
    try:
        engine = Engine(project, store, registry)
        run_id = engine.launch(prepared)
        assert engine.wait([run_id], timeout=300)
        engine.shutdown(cancel=False)
        row = store.get_run(run_id)
        return row.status, row.error, project.runs_dir / run_id
    finally:
        store.close()


def test_a_causal_lm_run_prompt_tunes_with_checkpointing_and_exports_the_adapter(
    tmp_path: Path,
) -> None:
    write_generation_project(
        tmp_path,
        """
[[experiments.gen.stages]]
plugin = "finetune"
train = "prompt"
num_virtual_tokens = 4
gradient_checkpointing = true
epochs = 1
batch_size = 8
lr = 0.05
eval_generate_samples = 1
eval_max_new_tokens = 2

[[experiments.gen.stages]]
plugin = "export"
""",
    )
    status, error, run_dir = run_experiment(tmp_path, "gen")
    assert (status, error) == ("completed", None), error
    folder = run_dir / "export"
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert "PeftModel.from_pretrained(base, folder)" in readme
    assert "AutoPeftModelForCausalLM" in readme
    from peft import AutoPeftModelForCausalLM, PeftModel

    loaded = AutoPeftModelForCausalLM.from_pretrained(folder)
    portable = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(folder / "base"), folder
    )
    ids = torch.tensor([[1000, 1001, 1002]])
    torch.testing.assert_close(logits(loaded, ids), logits(portable, ids))
    out = loaded.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=3)
    assert out.shape[1] > ids.shape[1]
