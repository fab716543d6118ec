"""The task contract: what an experiment's `task` names, beyond the classification tasks.

A `Task` plugin owns what differs between kinds of model: which transformers class loads the
model, how examples become token ids and loss labels (collation and loss masking), how a
split is evaluated (loss, generation, metrics) and how outputs are generated. The training
loop, checkpoints, early stopping and everything else stay the engine's, shared by every task.
The built-in ``causal-lm`` and ``seq2seq`` tasks are written against this contract alone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from tuneboard.sdk.contracts import Example, P, Plugin
from tuneboard.sdk.params import param

if TYPE_CHECKING:
    from tuneboard.sdk.contracts import StageContext
    from tuneboard.sdk.training import Features


@dataclass(frozen=True)
class Generation:
    """One output a model generated, as stored in the ``generations`` table.

    `split` is where the prompt came from (``validation``, ``test``, a file name), `index` its
    row there, `step` the training step of the evaluation that generated it (None outside
    training), `reference` the expected output when known.
    """

    split: str
    index: int
    prompt: str
    output: str
    reference: str | None = None
    step: int | None = None


@dataclass
class GenerationParams:
    """How to decode: greedy by default; beams, or sampling with a temperature and top-p."""

    max_new_tokens: int = param(64, "Longest output in new tokens", min=1, max=8_192)
    num_beams: int = param(1, "Beam search width (1 = no beam search)", min=1, max=64)
    do_sample: bool = param(False, "Sample the next token instead of taking the likeliest")
    temperature: float = param(1.0, "With do_sample: softmax temperature", min=0, max=100)
    top_p: float = param(1.0, "With do_sample: nucleus sampling mass", min=0, max=1)


@dataclass
class EvaluationInputs:
    """What `Task.evaluate` gets: the model, one split's examples and features, and limits.

    `autocast()` runs forward passes in the configured precision; `generate_samples` caps how
    many examples (the first ones) are generated from, for generation metrics (0 = none);
    `step` is the training step (None outside training). For a `labelled` task, `labels` are
    the label names in index order (metrics take indices into them); `train` is the train
    split's examples (e.g. for few-shot prompts; empty when there is none).
    """

    model: Any
    tokenizer: Any
    split: str
    examples: Sequence[Example]
    features: Features
    batch_size: int
    autocast: Callable[[], AbstractContextManager[Any]]
    generate_samples: int
    generation: GenerationParams
    step: int | None = None
    labels: Sequence[str] = ()
    train: Sequence[Example] = ()


class Task(Plugin[P], ABC):
    """A task plugin: a kind of model and how it learns and is measured.

    `name` is what an experiment's ``task`` names; `Params` (a dataclass made with
    `tuneboard.param`) holds the keys of an ``[experiments.NAME.task]`` table.
    `default_metrics` are the metrics an experiment gets when it names none; `labelled` says
    whether examples carry labels from a label set (so the engine infers one).
    """

    labelled: ClassVar[bool] = False
    default_metrics: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def model_class(self) -> Any:
        """The transformers auto class that loads the model (e.g. ``AutoModelForCausalLM``)."""

    def prepare(self, tokenizer: Any, config: dict[str, Any]) -> None:
        """Adjust a freshly loaded `tokenizer` and the keys of a model built from a config
        (`config`, changed in place) before the model is built. The default does nothing."""

    @abstractmethod
    def encode(self, examples: Sequence[Example], tokenizer: Any, max_length: int) -> Features:
        """Token ids and loss labels (`IGNORE_INDEX` where no loss is taken) for `examples`.

        Raise `DataError` naming the example when one cannot be encoded.
        """

    @abstractmethod
    def evaluate(self, ctx: StageContext, inputs: EvaluationInputs) -> dict[str, float]:
        """The split's values by name without a prefix: ``loss`` and the configured metrics
        (use `ctx.compute_metrics`); generations may be recorded with
        `ctx.record_generations`."""

    @abstractmethod
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
        """The model's output for each example's prompt, in order."""
