"""The `prompt-classification` task's parts: prompts, shots, encoding and label-word scoring,
on tiny randomly initialised GPT-2 models and the packaged WordPiece tokenizer."""

from __future__ import annotations

import contextlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch

from tuneboard import IGNORE_INDEX, ConfigError, DataError, TextExample
from tuneboard.builtin.prompt_classification import (
    PromptClassification,
    PromptParams,
    label_log_likelihoods,
)
from tuneboard.engine.models import resolve_model_source
from tuneboard.testing import TINY_TOKENIZER, plugin_registry

TEXTS = [
    TextExample("the film was great", "positive"),
    TextExample("this meal was awful and the service was slow", "negative"),
    TextExample("ok", "positive"),
]


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model_source(TINY_TOKENIZER, Path(".")))


def gpt2(tokenizer: Any, **config: Any) -> Any:
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    values = {"n_layer": 2, "n_embd": 32, "n_head": 2, "n_positions": 256, **config}
    settings = AutoConfig.for_model("gpt2", vocab_size=len(tokenizer), **values)
    return AutoModelForCausalLM.from_config(settings).eval()


def task(**params: Any) -> PromptClassification:
    return PromptClassification(PromptParams(**params))


def test_the_task_and_the_classification_metrics_are_registered() -> None:
    registry = plugin_registry()
    assert registry.tasks["prompt-classification"] is PromptClassification
    provider = registry.provider("task", "prompt-classification")
    assert (provider.name, provider.source) == ("builtin_prompt_tasks", "built-in")
    for metric in ("accuracy", "f1_macro", "precision_micro"):
        assert "prompt-classification" in registry.metric(metric).tasks


def test_scoring_picks_the_label_whose_word_the_model_makes_likelier(tokenizer: Any) -> None:
    model = gpt2(tokenizer, tie_word_embeddings=False)
    classify = task(label_words={"positive": "very good", "negative": "bad"})
    labels = ["negative", "positive"]
    words = [classify.word_ids(tokenizer, label) for label in labels]
    assert [len(ids) for ids in words] == [1, 2]
    prompts = [classify.prompt_text(ex) for ex in TEXTS]
    with torch.no_grad():  # the last hidden state is the same vector whatever the input
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.fill_(1.0)
    for favoured, other in ((0, 1), (1, 0)):
        with torch.no_grad():
            model.lm_head.weight.zero_()
            model.lm_head.weight[words[favoured]] = 0.2  # a logit of 6.4 for its tokens
        scores, cut = classify.score_texts(
            model, tokenizer, prompts, words, 64, 4, contextlib.nullcontext
        )
        assert cut == 0
        assert (scores.argmax(axis=1) == favoured).all()
        assert (scores[:, favoured] > scores[:, other]).all()


@pytest.mark.parametrize("label_words", [{}, {"positive": "very good indeed"}])
def test_scores_are_the_words_log_likelihoods_after_each_prompt(
    tokenizer: Any, label_words: dict[str, str]
) -> None:
    model = gpt2(tokenizer)
    classify = task(label_words=label_words)
    words = [classify.word_ids(tokenizer, label) for label in ("negative", "positive")]
    prompts = [classify.prompt_ids(tokenizer, classify.prompt_text(ex), 60)[0] for ex in TEXTS]
    expected = torch.zeros(len(prompts), len(words), dtype=torch.float64)
    with torch.no_grad():
        for p, prompt in enumerate(prompts):  # one unpadded sequence at a time
            for w, word in enumerate(words):
                logits = model(torch.tensor([prompt + word])).logits[0]
                log_probs = torch.log_softmax(logits, dim=-1)
                picks = [log_probs[len(prompt) - 1 + i, t] for i, t in enumerate(word)]
                expected[p, w] = float(sum(picks))
    for shared_first in (True, False):  # batched, left-padded, one or two per pass
        for batch_size in (1, 5):
            scores = label_log_likelihoods(
                model,
                prompts,
                words,
                batch_size=batch_size,
                autocast=contextlib.nullcontext,
                shared_first=shared_first,
            )
            assert torch.allclose(torch.from_numpy(scores), expected, atol=1e-4)


def test_few_shot_prompts_are_seeded_and_balanced() -> None:
    train = [TextExample(f"text {i}", "positive" if i % 3 else "negative") for i in range(30)]
    train.append(TextExample("no label"))
    classify = task(shots=4, shot_separator=" || ")
    labels = ["negative", "positive"]
    shots = classify.pick_shots(train, labels, seed=7)
    assert shots == classify.pick_shots(train, labels, seed=7)
    assert Counter(shot.label for shot in shots) == {"negative": 2, "positive": 2}
    assert len({tuple(classify.pick_shots(train, labels, seed)) for seed in range(5)}) > 1
    prompt = classify.prompt_text(TextExample("new one"), shots)
    parts = prompt.split(" || ")
    assert parts[:-1] == [f"Review: {s.text}\nSentiment: {s.label}" for s in shots]
    assert parts[-1] == "Review: new one\nSentiment:"

    three = task(shots=3).pick_shots(train, labels, seed=1)
    assert sorted(Counter(shot.label for shot in three).values()) == [1, 2]
    assert task().pick_shots(train, labels, seed=1) == []  # zero-shot
    with pytest.raises(DataError, match="only 2 labelled texts"):
        task(shots=3).pick_shots(train[:2], labels, seed=1)


def test_encode_takes_the_loss_on_the_label_word_only(tokenizer: Any) -> None:
    classify = task(label_words={"negative": "not good"})
    features = classify.encode(TEXTS, tokenizer, 12)
    for row, example in enumerate(TEXTS):
        word = classify.word_ids(tokenizer, example.label or "")
        length = int(features.lengths[row])
        ids, labels = features.input_ids[row], features.labels[row]
        assert ids[length - len(word) : length].tolist() == word
        assert labels[length - len(word) : length].tolist() == word
        assert (labels[: length - len(word)] == IGNORE_INDEX).all()
        assert (labels[length:] == IGNORE_INDEX).all()
        assert length <= 12
    # The long review lost its start, not the template's end: "... Sentiment: not good".
    long_row = features.input_ids[1, : features.lengths[1]].tolist()
    assert tokenizer.decode(long_row).endswith("slow sentiment : not good")
    unlabelled = classify.encode([TextExample("fine")], tokenizer, 12)
    assert (unlabelled.labels == IGNORE_INDEX).all()


def test_the_label_word_is_tokenised_as_running_text_would_be() -> None:
    """With a byte-level BPE tokenizer the template's final space goes with the word."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    corpus = ["Review: the film was great\nSentiment: positive", "Sentiment: negative"] * 20
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, show_progress=False))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe)
    classify = task()
    for example in TEXTS[:1]:
        prompt, _ = classify.prompt_ids(tokenizer, classify.prompt_text(example), 100)
        running = tokenizer(f"Review: {example.text}\nSentiment: positive")["input_ids"]
        assert prompt + classify.word_ids(tokenizer, "positive") == running
        word = tokenizer.convert_ids_to_tokens(classify.word_ids(tokenizer, "positive"))
        assert word == ["\u0120positive"]  # one token, the space (Ġ) at its start


def test_bad_templates_and_label_words_are_refused(tokenizer: Any) -> None:
    with pytest.raises(ConfigError, match=r"has no \{text\} placeholder"):
        task(template="Sentiment: ")
    with pytest.raises(ConfigError, match="non-empty strings"):
        task(label_words={"positive": ""})
    pair = TextExample("a", "positive", text_pair="b")
    with pytest.raises(DataError, match="example 0 is a text pair but the template has no"):
        task().encode([pair], tokenizer, 32)
    with pytest.raises(DataError, match=r"the template has \{text_pair\}, it has none"):
        task(template="{text} / {text_pair} ").encode(TEXTS[:1], tokenizer, 32)
    both = task(template="A: {text}\nB: {text_pair}\nSame? ")
    assert both.prompt_text(pair) == "A: a\nB: b\nSame?"
    with pytest.raises(ConfigError, match="'negative' and 'positive' have the same label word"):
        task(label_words={"negative": "x", "positive": "x"})._words(
            tokenizer, ["negative", "positive"]
        )
