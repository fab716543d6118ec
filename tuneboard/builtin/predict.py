"""The `predict` stage: the current model's predictions for a split or a file, written
to a CSV or JSON-lines file in the run's folder.

Sequence classification: the predicted label and a probability per label for each text.
Token classification: the predicted tag of each word (words cut off by `max_length` get
none). Reference labels or tags are copied next to the predictions when the data has them.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePath
from typing import Any, Literal

from tuneboard import (
    IGNORE_INDEX,
    PRECISION_HELP,
    TOKEN_CLASSIFICATION,
    ConfigError,
    DataError,
    Example,
    PipelineState,
    Precision,
    Stage,
    StageContext,
    TextExample,
    TokenExample,
    param,
)
from tuneboard.builtin.conll import read_conll
from tuneboard.builtin.textfiles import jsonl_objects
from tuneboard.sdk.files import is_inside, open_private, private_folder

Row = dict[str, Any]


@dataclass
class PredictParams:
    """Parameters of the `predict` stage."""

    split: Literal["test", "validation", "train"] = param(
        "test", "Split to predict (when no file is given)"
    )
    file: str | None = param(
        None,
        "A file to predict instead of a split (relative to the project folder). Token "
        "classification: CoNLL (tags optional) or .txt, a sentence per line; otherwise .txt, "
        "a text per line, or .csv, .tsv, .jsonl with text_column",
    )
    text_column: str = param("text", "Column (or JSON field) holding the texts of a file")
    label_column: str = param(
        "label", "Column (or JSON field) of reference labels in a file, copied when present"
    )
    format: Literal["csv", "jsonl"] = param(
        "csv",
        "csv: a row per text with a prob_<label> column per label, or a row per word; jsonl: "
        "an object per text or sentence",
    )
    output: str = param(
        "", "File inside the run's folder (empty = predictions-<split or file name>.<format>)"
    )
    batch_size: int = param(64, "Examples per batch", min=1, max=65_536)
    precision: Precision = param("auto", PRECISION_HELP)

    def __post_init__(self) -> None:
        path = PurePath(self.output)
        if self.output and (path.is_absolute() or ".." in path.parts or not path.name):
            raise ValueError(
                "key 'output' must be a relative path inside the run's folder "
                f"(no '..', not absolute), got {self.output!r}"
            )


class Predict(Stage[PredictParams]):
    """Write the current model's predictions for a split or a file."""

    name = "predict"
    Params = PredictParams
    description = "Write predictions (labels and probabilities, or tags) to a CSV or JSONL file"

    def run(self, ctx: StageContext, state: PipelineState) -> PipelineState:
        """Predict and write the file; record it as a `predictions` artifact."""
        return run_predict(self.params, ctx, state)


# --- reading a file -------------------------------------------------------------------------


def read_inputs(path: Path, task: str, text_column: str, label_column: str) -> list[Example]:
    """The examples of a file to predict; see `PredictParams.file` for the formats."""
    text = _decode(path)
    suffix = path.suffix.lower()
    if task == TOKEN_CLASSIFICATION:
        if suffix == ".txt":
            return [TokenExample(tuple(line.split())) for line in text.splitlines() if line.strip()]
        try:
            return list(read_conll(path))
        except DataError:  # no tag column: tokens only
            return list(read_conll(path, tags=False))
    if suffix == ".txt":
        return [TextExample(line) for line in text.splitlines() if line.strip()]
    if suffix in (".csv", ".tsv"):
        reader = csv.DictReader(
            io.StringIO(text, newline=""), delimiter="," if suffix == ".csv" else "\t"
        )
        rows: Iterator[tuple[int, dict[str, Any]]] = ((i + 2, row) for i, row in enumerate(reader))
    elif suffix == ".jsonl":
        rows = jsonl_objects(path, text)
    else:
        raise DataError(
            f"{path}: cannot read {suffix or 'extension-less'} files; "
            "use .txt, .csv, .tsv or .jsonl"
        )
    examples: list[Example] = []
    for line, row in rows:
        value = row.get(text_column)
        if not isinstance(value, str):
            have = ", ".join(str(c) for c in row) or "none"
            raise DataError(
                f"{path}: line {line}: no text in column {text_column!r} (columns: {have})"
            )
        label = row.get(label_column)
        examples.append(TextExample(value, None if label in (None, "") else str(label)))
    if not examples:
        raise DataError(f"{path}: nothing to predict (empty file)")
    return examples


def _decode(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid utf-8 ({exc.reason})") from None


# --- predicting -----------------------------------------------------------------------------


def prediction_rows(
    examples: Sequence[Example], state: PipelineState, ctx: StageContext, params: PredictParams
) -> list[Row]:
    """One row per example: its input, its reference where known, and the prediction."""
    model, tokenizer, labels = state.model, state.tokenizer, state.labels
    token_level = state.task == TOKEN_CLASSIFICATION
    if token_level:
        # Placeholder tags mark each word's first sub-word, where its prediction is read.
        to_encode: list[Example] = [
            TokenExample(ex.tokens, (labels[0],) * len(ex.tokens))
            for ex in examples
            if isinstance(ex, TokenExample)
        ]
    else:
        to_encode = [replace(ex, label=None) for ex in examples if isinstance(ex, TextExample)]
    if len(to_encode) != len(examples):
        raise DataError(f"predict: the examples do not fit the task {state.task!r}")
    features = ctx.training.encode(to_encode, tokenizer, labels, state.task)
    result = ctx.training.predict(
        model,
        features,
        batch_size=params.batch_size,
        precision=params.precision,
        with_probabilities=not token_level,
    )
    rows: list[Row] = []
    for i, ex in enumerate(examples):
        if isinstance(ex, TokenExample):
            marks = features.labels[i] != IGNORE_INDEX
            tags: list[str | None] = [labels[k] for k in result.label_ids[i][marks]]
            tags += [None] * (len(ex.tokens) - len(tags))
            row: Row = {"tokens": list(ex.tokens)}
            if ex.tags is not None:
                row["tags"] = list(ex.tags)
            rows.append({**row, "predictions": tags})
        else:
            assert isinstance(ex, TextExample) and result.probabilities is not None
            rows.append(text_row(ex, labels, int(result.label_ids[i]), result.probabilities[i]))
    return rows


def text_row(
    example: TextExample, labels: Sequence[str], label_id: int, probabilities: Sequence[float]
) -> Row:
    """A text's row: its text (and pair), reference label where known, the predicted label
    and the probability of each label."""
    row: Row = {"text": example.text}
    if example.text_pair is not None:
        row["text_pair"] = example.text_pair
    if example.label is not None:
        row["label"] = example.label
    row["prediction"] = labels[label_id]
    row["probabilities"] = {label: float(p) for label, p in zip(labels, probabilities, strict=True)}
    return row


# --- writing --------------------------------------------------------------------------------


def write_jsonl(path: Path, rows: Sequence[Row]) -> None:
    """One JSON object per row."""
    with open_private(path) as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_csv(path: Path, rows: Sequence[Row], labels: Sequence[str]) -> None:
    """Texts: a row per text, a ``prob_<label>`` column per label. Sentences: a row per word
    (``sentence``, ``token``, ``tag`` where known, ``prediction``)."""
    token_level = bool(rows) and "tokens" in rows[0]
    if token_level:
        header = ["sentence", "token"] + (["tag"] if any("tags" in r for r in rows) else [])
        header.append("prediction")
    else:
        header = ["text"] + [k for k in ("text_pair", "label") if any(k in r for r in rows)]
        header += ["prediction", *(f"prob_{label}" for label in labels)]
    with open_private(path, newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        for n, row in enumerate(rows):
            if token_level:
                for i, token in enumerate(row["tokens"]):
                    tag = [row["tags"][i]] if "tag" in header else []
                    writer.writerow([n, token, *tag, row["predictions"][i] or ""])
            else:
                values = [row.get(k, "") for k in header if not k.startswith("prob_")]
                writer.writerow(values + [row["probabilities"][label] for label in labels])


def run_predict(params: PredictParams, ctx: StageContext, state: PipelineState) -> PipelineState:
    """Predict the split or file and write the rows; record the file as a `predictions`
    artifact."""
    if state.model is None or state.tokenizer is None:
        raise ConfigError("predict: no model in the pipeline state")
    if ctx.task is not None:
        raise ConfigError(
            f"predict: writes classifier predictions; task {state.task!r} is not one (use the "
            "`evaluate` stage for its metrics, or `generate` for its outputs)"
        )
    if params.file:
        path = ctx.project_file(params.file, "file")
        examples = read_inputs(path, state.task, params.text_column, params.label_column)
        source = path.stem
    else:
        examples = list(state.splits.get(params.split) or [])
        if not examples:
            raise DataError(f"predict: no {params.split!r} split, or it is empty")
        source = params.split
    target = ctx.run_dir / (params.output or f"predictions-{source}.{params.format}")
    if not is_inside(target, ctx.run_dir):
        raise ConfigError(f"predict: output {params.output!r} is not inside the run's folder")
    rows = prediction_rows(examples, state, ctx, params)
    folder = private_folder(target.parent, ctx.run_dir, "predict: key 'output'")
    target = folder / target.name
    if not is_inside(target, ctx.run_dir):  # a link planted in the folder meanwhile
        raise ConfigError(f"predict: output {params.output!r} is not inside the run's folder")
    if params.format == "jsonl":
        write_jsonl(target, rows)
    else:
        write_csv(target, rows, state.labels)
    ctx.artifact(target, "predictions")
    ctx.progress(1, 1, "predicted")
    cut = sum(r["predictions"].count(None) for r in rows if "predictions" in r)
    if cut:
        ctx.event(f"{cut} words were past max_length {ctx.max_length} and have no tag", "warning")
    ctx.event(f"wrote {len(rows)} predictions ({source}) to {target}")
    return state
