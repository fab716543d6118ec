"""The `mlm` stage: BERT's masking, and continued pretraining of a tiny BERT's encoder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import RecordingContext, one_torch_thread, toy_state, weights
from multistep_helpers import toy_ner_state

from tuneboard import IGNORE_INDEX
from tuneboard.builtin.mlm import Mlm, MlmParams, encode_texts, mask_tokens, masked_lm_for, run_mlm
from tuneboard.sdk.contracts import TextExample
from tuneboard.sdk.params import build_params, describe_params


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


MASK, VOCAB = 3, 1000


def masked(seed: int, whole_word: bool, words: torch.Tensor | None = None) -> tuple:
    ids = torch.randint(10, VOCAB, (400, 30), generator=torch.Generator().manual_seed(99))
    maskable = torch.ones_like(ids, dtype=torch.bool)
    maskable[:, 0] = maskable[:, -3:] = False  # [CLS], [SEP] and padding
    if words is None:
        words = torch.arange(30).expand(400, 30)
    inputs, labels = mask_tokens(
        ids,
        maskable,
        words,
        torch.Generator().manual_seed(seed),
        mask_id=MASK,
        vocab_size=VOCAB,
        probability=0.15,
        whole_word=whole_word,
    )
    return ids, maskable, inputs, labels


def test_masking_follows_bert() -> None:
    ids, maskable, inputs, labels = masked(0, whole_word=False)
    chosen = labels != IGNORE_INDEX
    assert not (chosen & ~maskable).any()
    assert torch.equal(labels[chosen], ids[chosen])
    assert torch.equal(inputs[~chosen], ids[~chosen])
    assert 0.13 < chosen.sum() / maskable.sum() < 0.17
    n = int(chosen.sum())
    as_mask = int((inputs[chosen] == MASK).sum()) / n
    kept = int((inputs[chosen] == ids[chosen]).sum()) / n
    assert 0.75 < as_mask < 0.85 and 0.06 < kept < 0.14 and 0.06 < 1 - as_mask - kept < 0.14
    again = masked(0, whole_word=False)
    assert torch.equal(again[2], inputs) and torch.equal(again[3], labels)
    assert not torch.equal(masked(1, whole_word=False)[3], labels)


def test_whole_word_masking_masks_every_piece_of_a_word() -> None:
    words = (torch.arange(30) // 3).expand(400, 30)  # words of three pieces each
    _, maskable, inputs, labels = masked(0, whole_word=True, words=words)
    chosen = (labels != IGNORE_INDEX).view(400, 10, 3)
    real = maskable.view(400, 10, 3).all(-1)
    assert torch.equal(chosen[real].all(-1), chosen[real].any(-1))
    assert 0.12 < chosen[real].all(-1).float().mean() < 0.18
    became_mask = (inputs == MASK).view(400, 10, 3)[real]
    assert torch.equal(became_mask.all(-1), became_mask.any(-1))


def test_at_least_one_token_is_masked() -> None:
    ids = torch.tensor([[101, 7, 8, 102]])
    maskable = torch.tensor([[False, True, True, False]])
    for seed in range(20):
        _, labels = mask_tokens(
            ids,
            maskable,
            torch.zeros_like(ids),
            torch.Generator().manual_seed(seed),
            mask_id=MASK,
            vocab_size=VOCAB,
            probability=0.01,
            whole_word=False,
        )
        assert (labels != IGNORE_INDEX).sum() >= 1


def test_word_numbers_run_across_both_texts_of_a_pair() -> None:
    tokenizer = toy_state(n_train=4).tokenizer
    features = encode_texts(
        [TextExample("good movie", "pos", text_pair="terrible plot")], tokenizer, 32
    )
    assert features.words[0].tolist() == [-1, 0, 1, -1, 2, 3, -1]
    assert features.maskable[0].tolist() == [False, True, True, False, True, True, False]
    assert features.token_type_ids is not None and features.token_type_ids[0, 4] == 1


def test_mlm_adapts_the_encoder_and_leaves_the_head_alone(tmp_path: Path) -> None:
    state = toy_state(n_train=4)
    text = "the quick brown fox jumps over the lazy dog near the river bank"
    state.splits["train"] = [TextExample(text, "pos"), TextExample(text, "neg")] * 16
    state.splits["validation"] = [TextExample(text, "pos")] * 4
    before = weights(state.model)
    mlm = masked_lm_for(state.model, RecordingContext(tmp_path).training)
    torch.testing.assert_close(
        mlm.bert.embeddings.word_embeddings.weight, before["bert.embeddings.word_embeddings.weight"]
    )
    ctx = RecordingContext(tmp_path, max_length=24)
    values = {"epochs": 4, "batch_size": 8, "lr": 1e-2, "warmup_ratio": 0.0}
    params = build_params(MlmParams, values, "test (mlm)")
    state = Mlm(params).run(ctx, state)

    losses = [v for _, v in ctx.series("train/loss")]
    assert len(losses) == 16
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3])
    perplexities = ctx.series("val/perplexity")
    assert [step for step, _ in perplexities] == [4, 8, 12, 16]
    assert perplexities[-1][1] < perplexities[0][1]
    assert ctx.best is not None and ctx.best[2] == "val/perplexity"
    assert ctx.best[1] == min(v for _, v in perplexities)
    assert all(
        v == pytest.approx(np.exp(loss))
        for (_, v), loss in zip(ctx.series("train/perplexity"), losses, strict=True)
    )

    after = weights(state.model)
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert "bert.embeddings.word_embeddings.weight" in changed
    assert "bert.encoder.layer.0.attention.self.query.weight" in changed
    assert not any(name.startswith(("classifier", "bert.pooler")) for name in changed)
    assert state.best_checkpoint == ctx.stage_dir / "best"


def test_mlm_on_sentences_with_whole_word_masking(tmp_path: Path) -> None:
    state = toy_ner_state(n_train=16, n_val=4)
    before = weights(state.model)
    ctx = RecordingContext(tmp_path)
    values = {"max_steps": 3, "batch_size": 8, "whole_word_mask": True, "include_validation": True}
    run_mlm(build_params(MlmParams, values, "test (mlm)"), ctx, state)
    assert [step for step, _ in ctx.series("train/loss")] == [1, 2, 3]  # 20 texts, batches of 8
    assert len(ctx.series("val/perplexity")) == 1
    after = weights(state.model)
    assert not torch.equal(
        before["bert.encoder.layer.1.output.dense.weight"],
        after["bert.encoder.layer.1.output.dense.weight"],
    )
    assert torch.equal(before["classifier.weight"], after["classifier.weight"])


def test_every_parameter_has_help() -> None:
    assert all(spec.help for spec in describe_params(MlmParams))
