"""The causal-lm and seq2seq tasks' templates and encoding (loss masking, truncation)."""

from __future__ import annotations

from typing import Any

import pytest

from tuneboard import IGNORE_INDEX, ChatTurn, DataError, GenerationExample, TextExample
from tuneboard.builtin.generation.encoding import encode_causal, encode_seq2seq
from tuneboard.builtin.generation.tasks import CausalLM, CausalLMParams
from tuneboard.builtin.generation.templates import prompt_text, segments
from tuneboard.testing import TINY_TOKENIZER

CHAT_TEMPLATE = (
    "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from transformers import AutoTokenizer

    from tuneboard.engine.models import resolve_model_source

    tok = AutoTokenizer.from_pretrained(
        resolve_model_source(TINY_TOKENIZER, __import__("pathlib").Path.cwd())
    )
    CausalLM(CausalLMParams()).prepare(tok, {})
    return tok


def _decoded(tokenizer: Any, ids: Any) -> str:
    return str(tokenizer.decode([i for i in ids if i != IGNORE_INDEX]))


def test_default_template_trains_on_the_reply_and_its_end_only(tokenizer: Any) -> None:
    example = GenerationExample(prompt="where is my order", response="it ships today")
    assert segments(example, tokenizer, "auto", "[SEP]") == [
        ("User: where is my order\n", False),
        ("Assistant: ", False),
        ("it ships today[SEP]", True),
        ("\n", False),
    ]
    assert prompt_text(example, tokenizer, "auto") == "User: where is my order\nAssistant: "
    features = encode_causal([example], tokenizer, 64, "auto", train_on_prompt=False)
    assert _decoded(tokenizer, features.labels[0]) == "it ships today [SEP]"
    everything = encode_causal([example], tokenizer, 64, "auto", train_on_prompt=True)
    assert (everything.labels[0] != IGNORE_INDEX).sum() == everything.lengths[0]


def test_every_assistant_turn_of_a_chat_is_trained_on(tokenizer: Any) -> None:
    tokenizer.chat_template = CHAT_TEMPLATE
    try:
        turns = (
            ChatTurn("user", "hi"),
            ChatTurn("assistant", "hello"),
            ChatTurn("user", "refund?"),
            ChatTurn("assistant", "sure"),
        )
        pieces = segments(GenerationExample(messages=turns), tokenizer, "auto", "</s>")
        assert [text for text, trained in pieces if trained] == ["hello</s>", "sure</s>"]
        assert "".join(text for text, _ in pieces).startswith("<user>hi</s><assistant>hello")
        context = prompt_text(GenerationExample(messages=turns), tokenizer, "auto")
        assert context.endswith("<user>refund?</s><assistant>")
    finally:
        tokenizer.chat_template = None


def test_truncation_cuts_the_prompt_first_and_never_drops_a_response(tokenizer: Any) -> None:
    long_prompt = " ".join(["word"] * 200)
    examples = [
        GenerationExample(prompt=long_prompt, response="yes"),
        GenerationExample(prompt="q", response=" ".join(["answer"] * 200)),
        GenerationExample(prompt="short", response="fine"),
    ]
    features = encode_causal(examples, tokenizer, 32, "default", train_on_prompt=False)
    assert features.input_ids.shape[1] <= 32
    for row in range(3):
        assert (features.labels[row] != IGNORE_INDEX).any()
    assert _decoded(tokenizer, features.labels[0]) == "yes [SEP]"
    assert len(features.notes) == 1 and "1 prompts cut" in features.notes[0]
    assert "1 responses cut" in features.notes[0]


def test_documents_are_trained_on_whole_and_cut_into_pieces(tokenizer: Any) -> None:
    document = GenerationExample(response=" ".join(f"w{i}" for i in range(100)))
    features = encode_causal([document], tokenizer, 16, "auto", train_on_prompt=False)
    assert len(features) > 1 and features.input_ids.shape[1] == 16
    assert (features.labels[features.input_ids != features.pad_id] != IGNORE_INDEX).all()
    assert "cut into" in features.notes[0]


def test_classification_examples_are_refused_with_the_example_named(tokenizer: Any) -> None:
    with pytest.raises(DataError, match="example 0 is a TextExample"):
        encode_causal([TextExample("a", "b")], tokenizer, 32, "auto", train_on_prompt=False)


def test_seq2seq_labels_have_their_own_width(tokenizer: Any) -> None:
    examples = [
        GenerationExample(prompt="one two three four five", response="1"),
        GenerationExample(prompt="six", response="6 6 6 6 6 6"),
    ]
    features = encode_seq2seq(examples, tokenizer, 32, "count: ")
    assert features.label_lengths is not None
    assert list(features.label_lengths) == [3, 8]  # [CLS] ... [SEP] around the target
    assert features.labels.shape == (2, 8)
    assert features.labels[0, 3] == IGNORE_INDEX


def test_packed_examples_do_not_see_each_other(tokenizer: Any) -> None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    examples = [
        GenerationExample(prompt="where is my order", response="it ships today"),
        GenerationExample(prompt="hi", response="hello there"),
        GenerationExample(prompt="refund", response="thirty days"),
    ]
    plain = encode_causal(examples, tokenizer, 64, "default", train_on_prompt=False)
    packed = encode_causal(examples, tokenizer, 64, "default", False, packing=True)
    assert len(packed) == 1 and packed.position_ids is not None
    assert "packed 3 examples into 1 sequences" in packed.notes[-1]
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_layer=2, n_embd=32, n_head=2, n_positions=64)
    model = GPT2LMHeadModel(config).eval()
    ids = torch.from_numpy(packed.input_ids)
    with torch.no_grad():
        positions = torch.from_numpy(packed.position_ids)
        together = model(input_ids=ids, position_ids=positions, use_cache=False).logits
    starts = [int(i) for i in (packed.position_ids[0] == 0).nonzero()[0]]
    found = 0
    for row in range(len(plain)):
        length = int(plain.lengths[row])
        alone_ids = torch.from_numpy(plain.input_ids[row : row + 1, :length])
        with torch.no_grad():
            alone = model(input_ids=alone_ids).logits[0]
        for start in starts:
            if torch.equal(ids[0, start : start + length], alone_ids[0]):
                assert torch.allclose(together[0, start : start + length], alone, atol=1e-5)
                found += 1
                break
    assert found == 3
    # No example learns to follow the one before it: every example's first token is no target.
    assert all(packed.labels[0, start] == IGNORE_INDEX for start in starts)


def test_generation_fits_in_the_models_positions(tokenizer: Any) -> None:
    """A prompt near the model's position limit, or longer, still generates (no index error):
    the prompt keeps its end and the output gets the positions that are left."""
    import contextlib
    from types import SimpleNamespace

    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from tuneboard import GenerationParams
    from tuneboard.builtin.generation.decoding import generate

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_layer=1, n_embd=16, n_head=2, n_positions=16)
    model = GPT2LMHeadModel(config)
    ctx: Any = SimpleNamespace(device="cpu", check_stop=lambda: None)
    prompts = [list(range(1000, 1012)), list(range(1000, 1030))]
    outputs = generate(
        ctx,
        model,
        tokenizer,
        prompts,
        GenerationParams(max_new_tokens=64),
        batch_size=2,
        autocast=contextlib.nullcontext,
        decoder_only=True,
    )
    assert len(outputs) == 2
    assert all(len(tokenizer(o, add_special_tokens=False)["input_ids"]) <= 4 for o in outputs)


def test_clm_names_what_it_needs(tmp_path: Any) -> None:
    """`clm` refuses a classification experiment and a missing corpus in one line each."""
    from tuneboard.testing import ThrowawayProject

    project = ThrowawayProject(tmp_path)
    classify = project.run({"plugin": "clm", "corpus": "corpus.txt"})
    assert classify.status == "failed"
    assert classify.error is not None and "clm: continues pretraining a decoder" in classify.error
    (tmp_path / "docs.jsonl").write_text('{"prompt": "hi", "response": "hello"}\n' * 4)
    gpt2 = {"model_type": "gpt2", "n_layer": 1, "n_embd": 16, "n_head": 2, "n_positions": 64}
    no_corpus = project.run(
        {"plugin": "clm"},
        task="causal-lm",
        metrics=["perplexity"],
        model={"tokenizer": TINY_TOKENIZER, "config": gpt2},
        dataset={"plugin": "chat", "train": "docs.jsonl"},
    )
    assert no_corpus.status == "failed"
    assert no_corpus.error == "clm: key 'corpus': name the text file of documents to train on"
