"""The `prompt-classification` task: classify texts with a causal LM, a template and label words.

Each example becomes a prompt (the `template` filled with its text) and each label a word or
phrase (`label_words`). The model's score for a label is the log-likelihood of that label's
word after the prompt, summed over the word's tokens (or their mean, ``scoring = "mean"``);
the prediction is the label with the highest score. `shots` puts k solved training examples
before every prompt at evaluation (few-shot, in-context learning); with ``shots = 0`` it is
zero-shot. Fine-tuning (the `finetune` stage) trains the model to say the gold label word
after the zero-shot prompt: the loss is taken on the label word's tokens only.

Tokenisation: the template's trailing whitespace belongs to the label word (``"Sentiment: "``
+ ``"positive"`` is tokenised as ``"Sentiment:"`` then ``" positive"``), the way byte-level
BPE (GPT-2, Llama 3, Qwen) and SentencePiece tokenizers split running text. A too long prompt
loses tokens from its start, so the template's end and the label word always fit.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from tuneboard import (
    IGNORE_INDEX,
    SEQUENCE_CLASSIFICATION,
    ConfigError,
    DataError,
    EvaluationInputs,
    Example,
    Features,
    Generation,
    GenerationParams,
    StageContext,
    Task,
    TextExample,
    param,
)

if TYPE_CHECKING:
    import numpy as np
    import torch

PROMPT_CLASSIFICATION = "prompt-classification"
LABEL_TASKS = (SEQUENCE_CLASSIFICATION, PROMPT_CLASSIFICATION)
"""The tasks whose examples are labelled texts (`TextExample`) and whose metrics take label
indices: the classification metrics and the table datasets serve them all."""
TEXT, TEXT_PAIR = "{text}", "{text_pair}"


@dataclass
class PromptParams:
    """Parameters of the `prompt-classification` task (the ``[experiments.NAME.task]`` table)."""

    template: str = param(
        "Review: {text}\nSentiment: ",
        "The prompt: {text} (and {text_pair} for text pairs) stand for the example; the label "
        "word follows it directly",
    )
    label_words: dict[str, str] = param(
        {},
        "Label -> the word or phrase the model should say for it (labels not named here: "
        "the label's own name)",
    )
    shots: int = param(
        0,
        "At evaluation, put this many solved train examples before each prompt (0 = "
        "zero-shot); the same seeded choice for every prompt, balanced across labels",
        min=0,
        max=1_000,
    )
    shot_separator: str = param("\n\n", "What goes between the shots and the prompt")
    shot_seed: int | None = param(
        None, "Seed of the shots' choice (unset = the stage's seed)", min=0, max=2**32 - 1
    )
    scoring: Literal["sum", "mean"] = param(
        "sum",
        "A label's score: the sum of its word's token log-likelihoods (the word's "
        "probability), or their mean (favours long words less)",
    )


class PromptClassification(Task[PromptParams]):
    """Zero- and few-shot classification by a causal LM, scored by label-word likelihood."""

    name = PROMPT_CLASSIFICATION
    Params = PromptParams
    description = "Classify with a causal LM: a prompt template, label words, k-shot examples"
    labelled = True
    default_metrics = ("accuracy",)

    def __init__(self, params: PromptParams) -> None:
        super().__init__(params)
        template = params.template
        where = f"task {PROMPT_CLASSIFICATION!r}"
        if TEXT not in template:
            raise ConfigError(f"{where}: template {template!r} has no {TEXT} placeholder")
        bad = {k: v for k, v in params.label_words.items() if not isinstance(v, str) or not v}
        if bad:
            raise ConfigError(f"{where}: label_words must map labels to non-empty strings: {bad}")
        # The whitespace that ends the template is the start of the label word.
        core = template.rstrip()
        self._core, self._gap = core, template[len(core) :]
        last = max(core.rfind(TEXT), core.rfind(TEXT_PAIR))
        tail = core[last:]
        self._tail = tail[len(TEXT_PAIR) :] if tail.startswith(TEXT_PAIR) else tail[len(TEXT) :]

    # --- text --------------------------------------------------------------------------------

    def word(self, label: str) -> str:
        """The label word of `label` (its name unless `label_words` says otherwise)."""
        return self.params.label_words.get(label, label)

    def render(self, example: TextExample, index: int = 0) -> str:
        """The prompt of `example` without the template's trailing whitespace."""
        text = self._core.replace(TEXT_PAIR, "\0pair\0").replace(TEXT, example.text)
        if "\0pair\0" in text:
            if example.text_pair is None:
                raise DataError(f"example {index}: the template has {TEXT_PAIR}, it has none")
            text = text.replace("\0pair\0", example.text_pair)
        elif example.text_pair is not None:
            raise DataError(
                f"example {index} is a text pair but the template has no {TEXT_PAIR}: "
                "add it to the task's template"
            )
        return text

    def prompt_text(self, example: TextExample, shots: Sequence[TextExample] = ()) -> str:
        """The whole prompt the model reads for `example` (shots first), without the
        template's trailing whitespace."""
        solved = [self.render(shot) + self._gap + self.word(shot.label or "") for shot in shots]
        return self.params.shot_separator.join([*solved, self.render(example)])

    def pick_shots(
        self, train: Sequence[Example], labels: Sequence[str], seed: int
    ) -> list[TextExample]:
        """`shots` labelled train examples chosen with `seed`: as many of each label as can be
        (labels in a seeded order take turns), then put in a seeded order."""
        k = self.params.shots
        if k == 0:
            return []
        rng = random.Random(seed)
        pools: dict[str, list[TextExample]] = {label: [] for label in labels}
        for example in train:
            if isinstance(example, TextExample) and example.label in pools:
                pools[example.label].append(example)
        for pool in pools.values():
            rng.shuffle(pool)
        turn = [label for label in labels if pools[label]]
        rng.shuffle(turn)
        chosen: list[TextExample] = []
        while len(chosen) < k and turn:
            for label in list(turn):
                if len(chosen) == k:
                    break
                chosen.append(pools[label].pop())
                if not pools[label]:
                    turn.remove(label)
        if len(chosen) < k:
            raise DataError(f"shots = {k}: the train split has only {len(chosen)} labelled texts")
        rng.shuffle(chosen)
        return chosen

    # --- tokens ------------------------------------------------------------------------------

    def word_ids(self, tokenizer: Any, label: str) -> list[int]:
        """The token ids of `label`'s word as it follows the prompt.

        The template's end is tokenised with and without the word; the word's tokens are
        what the longer adds, when the shorter is its prefix (else the word on its own).
        """
        word = self._gap + self.word(label)
        ids: list[int] = []
        if self._tail:
            before = _ids(tokenizer, self._tail)
            after = _ids(tokenizer, self._tail + word)
            if after[: len(before)] == before:
                ids = after[len(before) :]
        ids = ids or _ids(tokenizer, word)
        if not ids:
            raise ConfigError(f"label {label!r}: its word {word!r} has no tokens")
        return ids

    def prompt_ids(self, tokenizer: Any, text: str, budget: int) -> tuple[list[int], bool]:
        """The prompt's token ids (after the tokenizer's BOS token when it has one), cut from
        the start to `budget` tokens; and whether it was cut."""
        bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
        ids = _ids(tokenizer, text)
        keep = budget - len(bos)
        if keep < 1:
            raise ConfigError(f"max_length is too small for the prompt and label words ({budget})")
        return bos + ids[-keep:], len(ids) > keep

    def _words(self, tokenizer: Any, labels: Sequence[str]) -> list[list[int]]:
        unknown = sorted(set(self.params.label_words) - set(labels))
        if unknown:
            raise ConfigError(
                f"task {PROMPT_CLASSIFICATION!r}: label_words names labels the data does not "
                f"have: {', '.join(unknown)} (labels: {', '.join(labels)})"
            )
        words = [self.word_ids(tokenizer, label) for label in labels]
        seen: dict[tuple[int, ...], str] = {}
        for label, ids in zip(labels, words, strict=True):
            other = seen.setdefault(tuple(ids), label)
            if other != label:
                raise ConfigError(f"labels {other!r} and {label!r} have the same label word")
        return words

    # --- the Task contract ------------------------------------------------------------------

    def model_class(self) -> Any:
        """`AutoModelForCausalLM`."""
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM

    def prepare(self, tokenizer: Any, config: dict[str, Any]) -> None:
        """A model built from a config takes its BOS and EOS ids from the tokenizer (a
        config's defaults may lie outside a smaller vocabulary)."""
        config.setdefault("bos_token_id", tokenizer.bos_token_id)
        config.setdefault("eos_token_id", tokenizer.eos_token_id)

    def encode(self, examples: Sequence[Example], tokenizer: Any, max_length: int) -> Features:
        """Zero-shot prompt + gold label word per example; the loss is on the word only.

        Shots are not part of training rows: fine-tuning teaches the task itself, and rows
        stay short. An example without a label is its prompt alone (no loss).
        """
        import numpy as np

        texts = _texts(examples)
        labels = sorted({ex.label for ex in texts if ex.label is not None})
        words = {label: self.word_ids(tokenizer, label) for label in labels}
        longest = max((len(ids) for ids in words.values()), default=0)
        rows: list[tuple[list[int], list[int]]] = []
        for i, example in enumerate(texts):
            prompt, _ = self.prompt_ids(tokenizer, self.render(example, i), max_length - longest)
            word = words[example.label] if example.label is not None else []
            rows.append((prompt + word, [IGNORE_INDEX] * len(prompt) + word))
        pad = _pad_id(tokenizer)
        width = max(len(ids) for ids, _ in rows)
        input_ids = np.full((len(rows), width), pad, dtype=np.int64)
        targets = np.full((len(rows), width), IGNORE_INDEX, dtype=np.int64)
        for i, (ids, row_labels) in enumerate(rows):
            input_ids[i, : len(ids)] = ids
            targets[i, : len(ids)] = row_labels
        lengths = np.array([len(ids) for ids, _ in rows], dtype=np.int64)
        return Features(input_ids, lengths, targets, None, pad)

    def evaluate(self, ctx: StageContext, inputs: EvaluationInputs) -> dict[str, float]:
        """Score every label's word after each prompt: ``loss`` (the mean negative
        log-likelihood per token of the gold words) and the configured metrics on the
        predicted and gold label indices."""
        import numpy as np

        labels = list(inputs.labels)
        if not labels:
            raise ConfigError(f"task {PROMPT_CLASSIFICATION!r}: the engine gave no label set")
        index = {label: i for i, label in enumerate(labels)}
        rows = [(i, ex) for i, ex in enumerate(_texts(inputs.examples)) if ex.label is not None]
        if not rows:
            raise DataError(f"no labelled examples to score in the {inputs.split!r} split")
        words = self._words(inputs.tokenizer, labels)
        seed = self.params.shot_seed if self.params.shot_seed is not None else ctx.seed
        shots = self.pick_shots(inputs.train, labels, seed)
        scores, cut = self.score_texts(
            inputs.model,
            inputs.tokenizer,
            [self.prompt_text(ex, shots) for _, ex in rows],
            words,
            ctx.max_length,
            inputs.batch_size,
            inputs.autocast,
            ctx.check_stop,
        )
        if cut:
            ctx.event(
                f"{inputs.split}: {cut} of {len(rows)} prompts were longer than max_length "
                f"{ctx.max_length} and lost their start",
                "warning",
            )
        sizes = np.array([len(ids) for ids in words], dtype=np.float64)
        refs = np.array([index[str(ex.label)] for _, ex in rows])
        loss = -scores[np.arange(len(rows)), refs].sum() / sizes[refs].sum()
        predictions = self.ranked(scores, sizes).argmax(axis=1)
        values = {"loss": float(loss)}
        metrics = ctx.compute_metrics(predictions.tolist(), refs.tolist(), labels)
        values.update({name: float(value) for name, value in metrics.items()})
        shown = rows[: inputs.generate_samples]
        ctx.record_generations(
            [
                Generation(
                    split=inputs.split,
                    index=i,
                    prompt=self.prompt_text(example),
                    output=self.word(labels[int(predictions[n])]).strip(),
                    reference=self.word(labels[int(refs[n])]).strip(),
                    step=inputs.step,
                )
                for n, (i, example) in enumerate(shown)
            ]
        )
        return values

    def generate(
        self,
        ctx: StageContext,
        model: Any,
        tokenizer: Any,
        examples: Sequence[Example],
        generation: GenerationParams,
        *,
        batch_size: int,
        autocast: Callable[[], AbstractContextManager[Any]],
    ) -> list[str]:
        """The label word the model scores highest for each example (`generation` is not
        used: nothing is decoded). The labels are the keys of `label_words`, which must then
        name every label; shots are not used here (no train split is at hand)."""
        import numpy as np

        labels = list(self.params.label_words)
        if len(labels) < 2:
            raise ConfigError(
                f"task {PROMPT_CLASSIFICATION!r}: generating needs label_words naming every "
                "label (the label set is known only at evaluation)"
            )
        texts = _texts(examples)
        prompts = [self.prompt_text(ex) for ex in texts]
        words = self._words(tokenizer, labels)
        scores, _ = self.score_texts(
            model, tokenizer, prompts, words, ctx.max_length, batch_size, autocast, ctx.check_stop
        )
        sizes = np.array([len(ids) for ids in words], dtype=np.float64)
        return [self.word(labels[i]).strip() for i in self.ranked(scores, sizes).argmax(axis=1)]

    def ranked(self, scores: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """The scores labels are ranked by: summed log-likelihoods, or per token with
        ``scoring = "mean"`` (`sizes`: the tokens of each label word)."""
        return scores / sizes if self.params.scoring == "mean" else scores

    # --- scoring ---------------------------------------------------------------------------

    def score_texts(
        self,
        model: Any,
        tokenizer: Any,
        prompts: Sequence[str],
        words: Sequence[Sequence[int]],
        max_length: int,
        batch_size: int,
        autocast: Callable[[], AbstractContextManager[Any]],
        check_stop: Callable[[], None] = lambda: None,
    ) -> tuple[np.ndarray, int]:
        """``[prompt, label]`` summed log-likelihoods of each label word after each prompt
        (prompts cut to fit `max_length` with the longest word), and how many were cut."""
        budget = max_length - max(len(ids) for ids in words)
        encoded = [self.prompt_ids(tokenizer, text, budget) for text in prompts]
        cut = sum(was_cut for _, was_cut in encoded)
        ids = [prompt for prompt, _ in encoded]
        scores = label_log_likelihoods(
            model, ids, words, batch_size=batch_size, autocast=autocast, check_stop=check_stop
        )
        return scores, cut


def label_log_likelihoods(
    model: Any,
    prompts: Sequence[Sequence[int]],
    words: Sequence[Sequence[int]],
    *,
    batch_size: int,
    autocast: Callable[[], AbstractContextManager[Any]],
    check_stop: Callable[[], None] = lambda: None,
    shared_first: bool = True,
) -> np.ndarray:
    """``[prompt, word]``: the summed log-likelihood of each word's tokens after each prompt.

    When every word is one token (and `shared_first`), one forward pass per prompt gives all
    of them; otherwise each (prompt, word) pair is a row, `batch_size` rows a pass. Rows are
    padded on the left, so the words end together and only their positions' logits are
    computed.
    """
    import numpy as np
    import torch

    model.eval()
    device = next(model.parameters()).device
    single = shared_first and all(len(ids) == 1 for ids in words)
    if single:  # (prompt, -1): the prompt alone, every word read from its last position
        rows = [(p, -1) for p in range(len(prompts))]
    else:
        rows = [(p, w) for p in range(len(prompts)) for w in range(len(words))]
    out = np.zeros((len(prompts), len(words)), dtype=np.float64)
    first = torch.tensor([ids[0] for ids in words], device=device)
    with torch.inference_mode():
        for start in range(0, len(rows), batch_size):
            check_stop()
            chunk = rows[start : start + batch_size]
            sequences = [[*prompts[p], *(words[w] if w >= 0 else ())] for p, w in chunk]
            keep = 1 if single else max(len(words[w]) for _, w in chunk) + 1
            logits = _last_logits(model, sequences, keep, device, autocast)
            log_probs = torch.log_softmax(logits.float(), dim=-1)
            if single:
                values = log_probs[:, -1, :].index_select(1, first).cpu().numpy()
                out[[p for p, _ in chunk]] = values
                continue
            for j, (p, w) in enumerate(chunk):
                word = torch.tensor(words[w], device=device)
                positions = log_probs[j, keep - 1 - len(word) : keep - 1]
                out[p, w] = float(positions.gather(1, word[:, None]).sum())
    return out


def _last_logits(
    model: Any,
    sequences: Sequence[Sequence[int]],
    keep: int,
    device: torch.device,
    autocast: Callable[[], AbstractContextManager[Any]],
) -> torch.Tensor:
    """The logits of the last `keep` positions of each sequence, left-padded to one width."""
    import torch

    width = max(len(seq) for seq in sequences)
    input_ids = torch.zeros((len(sequences), width), dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, seq in enumerate(sequences):
        input_ids[i, width - len(seq) :] = torch.tensor(seq)
        mask[i, width - len(seq) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    tensors = {"input_ids": input_ids, "attention_mask": mask, "position_ids": positions}
    batch: dict[str, Any] = {key: value.to(device) for key, value in tensors.items()}
    if "logits_to_keep" in inspect.signature(model.forward).parameters:
        batch["logits_to_keep"] = keep  # only the positions that are scored
    with autocast():
        logits: torch.Tensor = model(**batch).logits
    return logits[:, -keep:]


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _pad_id(tokenizer: Any) -> int:
    for value in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if value is not None:
            return int(value)
    return 0


def _texts(examples: Sequence[Example]) -> list[TextExample]:
    texts = []
    for i, example in enumerate(examples):
        if not isinstance(example, TextExample):
            raise DataError(
                f"example {i} is not a text example (task {PROMPT_CLASSIFICATION!r} classifies "
                "texts: a dataset with text and label columns)"
            )
        texts.append(example)
    return texts
