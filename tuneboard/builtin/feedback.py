"""The `feedback` stage: what people corrected in reviews (and rules) goes into the training split.

For sequence classification it reads the project's corrections file (labels), for the
generation tasks (`ctx.task` set) its responses file (outputs accepted or edited while
reviewing generations; `ctx.responses()`), both written by the app's Review screen and
`tuneboard review --apply`, each time it runs, so inside a `repeat` round it picks up what was
reviewed since the round before. Both go through one path: an example is its text and text
pair (classification) or its prompt (generation). A corrected example already in the
training split gets its new label (response); one in the validation or test split is moved
into training (`eval_overlap = "move"`) or only corrected there (``"relabel"``); any other
is added. Each corrected example is in the training split `weight` times. Training examples
whose text (prompt or response) matches one of `drop_patterns` are dropped. Running it again
(the next round) first undoes what it changed the time before, so nothing counts twice and a
correction taken back is gone. The stage trains nothing itself: a training stage after it
(`finetune`) trains on the new split. Standard library only.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from tuneboard import (
    SEQUENCE_CLASSIFICATION,
    ConfigError,
    Example,
    GenerationExample,
    PipelineState,
    Stage,
    StageContext,
    TextExample,
    param,
)

Key = tuple[str, str | None]

_APPLIED = "tuneboard.feedback"


@dataclass
class FeedbackParams:
    """Parameters of the `feedback` stage."""

    file: str = param(
        "",
        "Corrections file (classification) or reviewed responses file (generation tasks), "
        "relative to the project folder (empty = the project's `corrections` setting, "
        "corrections.jsonl, or `responses` setting, responses.jsonl); a missing file merges "
        "nothing",
    )
    weight: int = param(
        1, "How many times each corrected example is in the training split", min=1, max=100
    )
    drop_patterns: list[str] = param(
        [],
        "Regular expressions (Python syntax); training examples whose text (or prompt or "
        "response) matches one are dropped, corrected ones too",
    )
    ignore_case: bool = param(True, "Match drop_patterns ignoring case")
    eval_overlap: Literal["move", "relabel"] = param(
        "move",
        "A corrected example found in the validation or test split: move it into training "
        "with its new label (response), or only correct it where it is (it is then not "
        "trained on)",
    )

    def __post_init__(self) -> None:
        for pattern in self.drop_patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(
                    f"key 'drop_patterns': {pattern!r} is not a regular expression ({exc})"
                ) from None


class Feedback(Stage[FeedbackParams]):
    """Merge the project's label corrections into training, and drop examples by pattern."""

    name = "feedback"
    Params = FeedbackParams
    description = (
        "Add reviewed label corrections (or reviewed responses) to training; drop examples "
        "matching patterns"
    )

    def run(self, ctx: StageContext, state: PipelineState) -> PipelineState:
        """Change the splits; log `feedback/*` counts."""
        return run_feedback(self.params, ctx, state)


@dataclass
class _Applied:
    """What one run of the stage changed, so that the next run (the next round) can undo it
    first: rows it added to training, rows it took out of a split, rows it relabelled in
    place (new, original)."""

    added: list[Example] = field(default_factory=list)
    removed: list[tuple[str, Example]] = field(default_factory=list)
    replaced: list[tuple[str, Example, Example]] = field(default_factory=list)


def run_feedback(params: FeedbackParams, ctx: StageContext, state: PipelineState) -> PipelineState:
    """Merge the corrections (or reviewed responses) into the splits; apply the drop patterns."""
    file = params.file or None
    if ctx.task is not None:
        path = ctx.responses_path(file)
        corrections = _reviewed(ctx.responses(file))
        what = "reviewed responses"
    elif state.task == SEQUENCE_CLASSIFICATION:
        path = ctx.corrections_path(file)
        saved = {c.key: TextExample(c.text, c.label, c.text_pair) for c in ctx.corrections(file)}
        corrections = _usable(saved, state.labels, ctx)
        what = "corrections"
    else:
        raise ConfigError(f"feedback: supports {SEQUENCE_CLASSIFICATION} and generation tasks")
    memory = f"{_APPLIED}.{ctx.pipeline_index}"  # this stage's, whichever round runs it
    previous = state.extras.get(memory)
    if isinstance(previous, _Applied):
        _undo(state, previous)
    applied = _Applied()
    counts: Counter[str] = Counter()

    for split in ("validation", "test"):
        if state.splits.get(split):
            state.splits[split] = _merge_eval(
                split, state.splits[split], corrections, params.eval_overlap, applied, counts
            )
    stay_in_eval = {_key(new) for _, new, _ in applied.replaced}
    train = list(state.splits.get("train", []))
    in_train = {_key(ex) for ex in train}
    to_train = {k: c for k, c in corrections.items() if k not in stay_in_eval or k in in_train}
    kept: list[Example] = []
    for ex in train:
        correction = _find(to_train, ex)
        if correction is None:
            kept.append(ex)
            continue
        applied.removed.append(("train", ex))
        if _target(ex) != _target(correction):
            counts["relabelled"] += 1
    added: list[Example] = [c for c in to_train.values() for _ in range(params.weight)]
    train, dropped = _drop([*kept, *added], params.drop_patterns, params.ignore_case, ctx)
    added_ids = {id(ex) for ex in added}
    applied.removed += [("train", ex) for ex in dropped if id(ex) not in added_ids]
    survivors = {id(ex) for ex in train}
    applied.added = [ex for ex in added if id(ex) in survivors]
    state.splits["train"] = train
    state.extras[memory] = applied

    ctx.log(
        {
            "feedback/corrections": float(len(corrections)),
            "feedback/relabelled": float(counts["relabelled"]),
            "feedback/moved": float(counts["moved"]),
            "feedback/added": float(len(applied.added)),
            "feedback/dropped": float(len(dropped)),
        },
        0,
    )
    ctx.progress(1, 1, "merged feedback")
    where = path.name if path.exists() else f"{path.name} (not there yet)"
    ctx.event(
        f"{len(corrections)} {what} from {where}: {counts['relabelled']} training examples "
        f"relabelled, {counts['moved']} moved from validation/test, {counts['eval_relabelled']} "
        f"relabelled there; {len(applied.added)} training rows from {what} (weight "
        f"{params.weight}); {len(dropped)} dropped by patterns; train has {len(train)}"
    )
    return state


def _undo(state: PipelineState, applied: _Applied) -> None:
    """Put the splits back as they were before the stage's previous run (new lists, so the
    tokenised features are made again)."""
    for split, examples in list(state.splits.items()):
        originals = {id(new): old for s, new, old in applied.replaced if s == split}
        added = {id(ex) for ex in applied.added} if split == "train" else set()
        restored = [originals.get(id(ex), ex) for ex in examples if id(ex) not in added]
        restored += [ex for s, ex in applied.removed if s == split]
        state.splits[split] = restored


def _usable(
    corrections: dict[Key, TextExample], labels: list[str], ctx: StageContext
) -> dict[Key, Example]:
    """The corrections whose label the model has; a warning names the others' labels."""
    known = set(labels)
    unknown = Counter(c.label for c in corrections.values() if c.label not in known)
    if unknown:
        names = ", ".join(f"{label!r} ({n})" for label, n in unknown.most_common(5))
        ctx.event(f"skipped corrections with labels the model does not have: {names}", "warning")
    return {key: c for key, c in corrections.items() if c.label in known}


def _reviewed(responses: list[GenerationExample]) -> dict[Key, Example]:
    """The reviewed responses by example key (their prompt)."""
    return {(ex.prompt, None): ex for ex in responses if ex.response}


def _merge_eval(
    split: str,
    examples: list[Example],
    corrections: dict[Key, Example],
    overlap: str,
    applied: _Applied,
    counts: Counter[str],
) -> list[Example]:
    """An evaluation split with its corrected examples moved out (``move``) or relabelled in
    place (``relabel``), each change recorded in `applied`."""
    out: list[Example] = []
    for ex in examples:
        correction = _find(corrections, ex)
        if correction is None:
            out.append(ex)
        elif overlap == "move":
            applied.removed.append((split, ex))
            counts["moved"] += 1
        else:
            new = _corrected(ex, correction)
            applied.replaced.append((split, new, ex))
            counts["eval_relabelled"] += _target(ex) != _target(correction)
            out.append(new)
    return out


def _drop(
    train: list[Example], patterns: list[str], ignore_case: bool, ctx: StageContext
) -> tuple[list[Example], list[Example]]:
    """The examples no pattern matches, and those dropped (an event says by which pattern)."""
    if not patterns:
        return train, []
    flags = re.IGNORECASE if ignore_case else 0
    compiled = [re.compile(pattern, flags) for pattern in patterns]
    kept: list[Example] = []
    dropped: list[Example] = []
    per_pattern: Counter[str] = Counter()
    for ex in train:
        hit = _matching(ex, compiled)
        if hit is None:
            kept.append(ex)
        else:
            dropped.append(ex)
            per_pattern[hit] += 1
    if per_pattern:
        detail = ", ".join(f"{p!r} {n}" for p, n in per_pattern.most_common())
        ctx.event(f"dropped by pattern: {detail}")
    return kept, dropped


def _matching(example: Example, patterns: list[re.Pattern[str]]) -> str | None:
    if isinstance(example, TextExample):
        texts = [example.text, example.text_pair]
    elif isinstance(example, GenerationExample):
        texts = [example.prompt, example.reference]
    else:
        return None
    for pattern in patterns:
        if any(text is not None and pattern.search(text) for text in texts):
            return pattern.pattern
    return None


def _key(example: Any) -> Key | None:
    """What identifies an example across splits and the corrections: its text and text pair,
    or a generation example's prompt (a chat example with `messages` has none)."""
    if isinstance(example, TextExample):
        return (example.text, example.text_pair)
    if isinstance(example, GenerationExample) and example.messages is None:
        return (example.prompt, None)
    return None


def _find(corrections: dict[Key, Example], example: Example) -> Example | None:
    """The correction of `example`, if any."""
    key = _key(example)
    return None if key is None else corrections.get(key)


def _target(example: Any) -> str | None:
    """What a correction changes: the label, or the response."""
    if isinstance(example, TextExample):
        return example.label
    if isinstance(example, GenerationExample):
        return example.reference
    return None


def _corrected(example: Example, correction: Example) -> Example:
    """`example` with the label (response) of `correction`, its weight kept."""
    if isinstance(example, TextExample) and isinstance(correction, TextExample):
        return replace(example, label=correction.label)
    if isinstance(example, GenerationExample) and isinstance(correction, GenerationExample):
        return replace(example, response=correction.response)
    return example
