"""What generative runs wrote, shaped for the run detail and compare screens.

The reads run in the screens' thread workers; the rest are pure functions, no Textual. A
screen follows a few fixed prompts: the first `SHOWN_PROMPTS` rows of the validation split
(or, for a run with no validation generations, of the first split it generated for).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rich.text import Text

from tuneboard.ui.safe import safe_text, visible

if TYPE_CHECKING:
    from tuneboard.store import GenerationRow, Store

SHOWN_PROMPTS = 8
WATCHED_SPLIT = "validation"

PromptKey = tuple[str, int]  # (split, row)


def read_watched(store: Store, run_id: str, limit: int = SHOWN_PROMPTS) -> list[GenerationRow]:
    """The run's generations for its first `limit` prompts of one split, in the store's order
    (by stage, then step with those outside training last). Call it in a thread."""
    rows = store.generations(run_id, split=WATCHED_SPLIT)
    if not rows:
        rows = store.generations(run_id)
        if not rows:
            return []
        split = rows[0].split
        rows = [row for row in rows if row.split == split]
    shown = set(sorted({row.idx for row in rows})[:limit])
    return [row for row in rows if row.idx in shown]


@dataclass
class GenerationReader:
    """Reads a run's watched generations again only when its `version` changes.

    A version is anything cheap the screen already read that changes when new generations
    may have been written (a new validation point, a stage's status). Used by one thread
    at a time: a live screen runs one load at a time.
    """

    _seen: dict[str, tuple[Hashable, list[GenerationRow]]] = field(default_factory=dict)

    def read(self, store: Store, run_id: str, version: Hashable) -> list[GenerationRow]:
        """The run's watched generations, read afresh if `version` is new."""
        seen = self._seen.get(run_id)
        if seen is not None and seen[0] == version:
            return seen[1]
        rows = read_watched(store, run_id)
        self._seen[run_id] = (version, rows)
        return rows


@dataclass(frozen=True)
class PromptHistory:
    """One prompt and what the model wrote for it at each evaluation, latest first."""

    split: str
    idx: int
    prompt: str
    reference: str | None
    outputs: list[tuple[str, str]]  # (when: "step 40", the output)


def evaluation_label(row: GenerationRow, stage_names: Mapping[int, str], several: bool) -> str:
    """`step 40`; with generations from several stages, the stage's name first (a row
    written outside training, by a `generate` stage, is named by its stage alone)."""
    stage = stage_names.get(row.stage_index, f"stage {row.stage_index}")
    if row.step is None:
        return stage if several else "after training"
    return f"{stage} step {row.step}" if several else f"step {row.step}"


def prompt_histories(
    rows: Sequence[GenerationRow], stage_names: Mapping[int, str]
) -> list[PromptHistory]:
    """Each prompt of `rows` (in row order) with its outputs at every evaluation, latest first."""
    by_prompt: dict[PromptKey, list[GenerationRow]] = {}
    for row in rows:  # the store's order: by stage, then step
        by_prompt.setdefault((row.split, row.idx), []).append(row)
    several = len({row.stage_index for row in rows}) > 1
    histories = []
    for (split, idx), prompt_rows in sorted(by_prompt.items()):
        last = prompt_rows[-1]
        reference = next((r.reference for r in reversed(prompt_rows) if r.reference), None)
        outputs = [
            (evaluation_label(row, stage_names, several), row.output)
            for row in reversed(prompt_rows)
        ]
        histories.append(PromptHistory(split, idx, last.prompt, reference, outputs))
    return histories


def latest_outputs(rows: Sequence[GenerationRow]) -> dict[PromptKey, GenerationRow]:
    """The latest row of each prompt (the last in the store's order)."""
    return {(row.split, row.idx): row for row in rows}


def compared_prompts(per_run: Mapping[str, Sequence[GenerationRow]]) -> list[PromptKey]:
    """The prompts any of the runs generated for, validation first, then by split and row."""
    keys = {(row.split, row.idx) for rows in per_run.values() for row in rows}
    return sorted(keys, key=lambda key: (key[0] != WATCHED_SPLIT, key))


def heading(text: str) -> Text:
    """A bold line."""
    return safe_text(text + "\n", "bold", multiline=True)


def body(text: str | None) -> Text:
    """User text, never read as markup; `(empty)` dimmed when there is none."""
    if not text or not text.strip():
        return Text("(empty)\n", style="dim")
    return safe_text(text.rstrip() + "\n", multiline=True)


def history_text(history: PromptHistory, position: int, count: int) -> Text:
    """One prompt's panel: the prompt, its reference, then the outputs, latest first."""
    text = Text()
    text.append(f"prompt {position + 1} of {count}", style="bold")
    where = visible(f" · {history.split} #{history.idx}")
    text.append(f"{where} · [ ] other prompts\n\n", style="dim")
    text.append_text(heading("prompt"))
    text.append_text(body(history.prompt))
    if history.reference is not None:
        text.append_text(heading("\nreference"))
        text.append_text(body(history.reference))
    for number, (when, output) in enumerate(history.outputs):
        latest = number == 0
        text.append_text(heading(f"\n{when}{' (latest)' if latest else ''}"))
        text.append_text(body(output))
    return text
