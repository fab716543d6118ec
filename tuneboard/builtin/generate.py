"""The `generate` stage: the current model's outputs for a split or a file of prompts, written
as JSON lines in the stage's folder (and as rows of the ``generations`` table) for people to
read, review and score.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tuneboard import (
    PRECISION_HELP,
    ChatTurn,
    ConfigError,
    DataError,
    Example,
    Generation,
    GenerationExample,
    GenerationParams,
    PipelineState,
    Precision,
    Stage,
    StageContext,
    TextExample,
    param,
)
from tuneboard.builtin.textfiles import jsonl_objects, read_text
from tuneboard.sdk.files import open_private

OUTPUT = "generations.jsonl"


@dataclass
class GenerateParams(GenerationParams):
    """Parameters of the `generate` stage: what to generate from, and how to decode."""

    split: Literal["test", "validation", "train"] = param(
        "test", "Split to generate from (when no file is given)"
    )
    file: str | None = param(
        None,
        "A file of prompts instead of a split (relative to the project folder): .txt, a "
        'prompt per line, or .jsonl with "prompt" (or "messages") and an optional "response"',
    )
    limit: int = param(
        0,
        "Generate for at most this many examples, the first ones (0 = all)",
        min=0,
        max=100_000_000,
    )
    batch_size: int = param(16, "Prompts per batch", min=1, max=65_536)
    precision: Precision = param("auto", PRECISION_HELP)


class Generate(Stage[GenerateParams]):
    """Write what the model generates for each prompt of a split or a file."""

    name = "generate"
    description = "Write the model's outputs for a split or a file of prompts (generation tasks)"
    Params = GenerateParams

    def run(self, ctx: StageContext, state: PipelineState) -> PipelineState:
        """Generate, write ``generations.jsonl`` and the table rows, record the artifact."""
        p = self.params
        if ctx.task is None:
            raise ConfigError('generate: needs a generation task (task = "causal-lm" or "seq2seq")')
        examples: list[Example]
        if p.file:
            path = ctx.project_file(p.file, "file")
            examples, source = list(read_prompts(path)), path.name
        else:
            examples, source = list(state.splits.get(p.split) or []), p.split
            if not examples:
                raise DataError(f"generate: no {p.split!r} split, or it is empty")
        if p.limit:
            examples = examples[: p.limit]
        ctx.progress(0, 1, f"generating {len(examples)} outputs")
        outputs = ctx.training.generate(
            state, examples, p, batch_size=p.batch_size, precision=p.precision
        )
        rows = [
            Generation(
                split=source,
                index=i,
                prompt=_display(example),
                output=output,
                reference=_reference(example),
            )
            for i, (example, output) in enumerate(zip(examples, outputs, strict=True))
        ]
        target = ctx.stage_dir / OUTPUT
        _write(target, rows)
        ctx.record_generations(rows)
        ctx.artifact(target, "generations")
        ctx.progress(1, 1, "generated")
        ctx.event(f"wrote {len(rows)} generations ({source}) to {target}")
        return state


def _display(example: Example) -> str:
    """The prompt as people read it: a text to classify, or the conversation so far."""
    if isinstance(example, TextExample):
        return example.text
    if isinstance(example, GenerationExample) and example.messages is not None:
        return "\n".join(f"{turn.role}: {turn.content}" for turn in example.context())
    return getattr(example, "prompt", "")


def _reference(example: Example) -> str | None:
    """The expected output: a generation example's reference, a text's label."""
    if isinstance(example, TextExample):
        return example.label
    return example.reference if isinstance(example, GenerationExample) else None


def _write(path: Path, rows: list[Generation]) -> None:
    """Write the rows as JSON lines, all or nothing (a temporary file renamed into place)."""
    partial = path.with_name(path.name + ".partial")
    with open_private(partial) as out:
        for row in rows:
            record = {
                "index": row.index,
                "split": row.split,
                "prompt": row.prompt,
                "output": row.output,
                "reference": row.reference,
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    partial.replace(path)


def read_prompts(path: Path) -> list[GenerationExample]:
    """Prompts from a .txt file (one per non-empty line) or a .jsonl file; `DataError` naming
    the file and line of a bad record."""
    text = read_text(path, "utf-8")
    if path.suffix.lower() != ".jsonl":
        return [GenerationExample(prompt=line) for line in text.splitlines() if line.strip()]
    examples = []
    for line, record in jsonl_objects(path, text):
        examples.append(_prompt_record(path, line, record))
    if not examples:
        raise DataError(f"{path}: no prompts")
    return examples


def _prompt_record(path: Path, line: int, record: dict[str, Any]) -> GenerationExample:
    where = f"{path}: line {line}"
    response = record.get("response")
    if response is not None and not isinstance(response, str):
        raise DataError(f"{where}: key 'response' must be a string")
    if "messages" in record:
        turns = record["messages"]
        if not isinstance(turns, list) or not all(
            isinstance(t, dict)
            and isinstance(t.get("role"), str)
            and isinstance(t.get("content"), str)
            for t in turns
        ):
            raise DataError(f"{where}: key 'messages' must be a list of role/content objects")
        messages = tuple(ChatTurn(t["role"], t["content"]) for t in turns)
        return GenerationExample(messages=messages)
    prompt = record.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise DataError(f"{where}: key 'prompt' must be a non-empty string")
    return GenerationExample(prompt=prompt, response=response)
