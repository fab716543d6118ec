"""Human review of a run's generations: read them, and save what people decided.

A `generate` stage writes ``generations.jsonl`` in its stage folder (a `generations`
artifact): one object per line, ``{"index", "split", "prompt", "output", "reference"}``
(`reference` null when the data has none). A reviewer accepts an output, edits it, or marks
it bad. Saving writes two of the project's files in one step (`save_review`):

- the **responses** file (`[project] responses`, default ``responses.jsonl``): one
  ``{"prompt", "response", "run", "time"}`` per accepted or edited output (the edited text
  when edited), the latest per prompt; the `feedback` stage trains on it;
- the **preferences** file (`[project] preferences`, default ``preferences.jsonl``): one
  ``{"prompt", "chosen", "rejected", "run", "time"}`` per edit (chosen: the edit, rejected:
  the output) and per bad output that has a reference (chosen: the reference); the
  `preference` stage's `pairs` reads it.

The app's Review screen and `tuneboard review` both use this module. No Textual, no torch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tuneboard.builtin.textfiles import jsonl_objects
from tuneboard.review import files as shared
from tuneboard.review.corrections import _save_lock, locked, now_iso, write_json_lines
from tuneboard.sdk.errors import DataError, TuneboardError
from tuneboard.sdk.preferences import read_preferences

if TYPE_CHECKING:
    from tuneboard.store import Store

GENERATIONS = "generations"
Verdict = Literal["accept", "edit", "bad"]
VERDICTS: tuple[Verdict, ...] = ("accept", "edit", "bad")


@dataclass(frozen=True)
class GenerationItem:
    """One generated output: the prompt, what the model wrote, and the reference (when the
    data had one); `index` and `split` say which example of the split it is."""

    index: int
    split: str
    prompt: str
    output: str
    reference: str | None = None

    @property
    def key(self) -> str:
        """The example's identity in the responses file: its prompt."""
        return self.prompt

    @property
    def differs(self) -> bool:
        """True when there is a reference and the output is not it (ignoring spacing)."""
        return self.reference is not None and _squeeze(self.output) != _squeeze(self.reference)


@dataclass(frozen=True)
class Decision:
    """What a reviewer said about one output: ``accept`` it, ``edit`` it (`text` is the edit),
    or mark it ``bad``."""

    verdict: Verdict
    text: str | None = None


@dataclass(frozen=True)
class ReviewOutcome:
    """What `save_review` wrote: responses and preference pairs, and the bad outputs without
    a reference (nothing can be saved for them)."""

    responses: int
    preferences: int
    unsaved_bad: int


def _squeeze(text: str) -> str:
    return " ".join(text.split())


# --- finding and reading generations -------------------------------------------------------


def generation_files(store: Store, run_id: str) -> list[Path]:
    """The run's generations files that still exist, newest first."""
    return shared.artifact_files(store, run_id, GENERATIONS)


def reviews_generations(store: Store, run_id: str) -> bool:
    """True when the newest reviewable artifact of the run is generations (not predictions)."""
    for artifact in reversed(store.artifacts(run_id)):
        if artifact.kind in (GENERATIONS, "predictions"):
            return artifact.kind == GENERATIONS
    return False


def pick_generation_file(files: Sequence[Path], run_id: str, name: str | None) -> Path:
    """The one of `files` whose name (or path ending) is `name`, by default the newest."""
    if not files:
        raise TuneboardError(
            f"run {run_id} has no generations to review: add a `generate` stage to the "
            "experiment (it writes generations.jsonl)"
        )
    if name is None:
        return files[0]
    return shared.named_file(files, run_id, name, "generations", _folder_and_name)


def _folder_and_name(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def read_generations(path: Path) -> list[GenerationItem]:
    """The outputs in a generations file, in file order; DataError naming the file and line
    when a line is not a generation."""
    text = shared.read_text(path)
    items = [_item(f"{path}: line {number}", row) for number, row in jsonl_objects(path, text)]
    if not items:
        raise DataError(f"{path}: no generations in it")
    return items


def _item(where: str, row: dict[str, Any]) -> GenerationItem:
    for key in ("prompt", "output"):
        if not isinstance(row.get(key), str):
            raise DataError(f"{where}: {key!r} must be a string, got {row.get(key)!r}")
    reference = row.get("reference")
    if reference is not None and not isinstance(reference, str):
        raise DataError(f"{where}: 'reference' must be a string or null, got {reference!r}")
    index = row.get("index", 0)
    if not isinstance(index, int) or isinstance(index, bool):
        raise DataError(f"{where}: 'index' must be an integer, got {index!r}")
    return GenerationItem(
        index=index,
        split=str(row.get("split") or ""),
        prompt=row["prompt"],
        output=row["output"],
        reference=reference,
    )


def select_generations(
    items: Sequence[GenerationItem], limit: int | None = 50, skip: Collection[str] = ()
) -> list[GenerationItem]:
    """The outputs to review, at most `limit`: those that differ from their reference first,
    then the others, each in file order; prompts in `skip` (reviewed already) and repeats of
    a prompt are left out."""
    fresh = shared.unseen(items, skip)
    chosen = [i for i in fresh if i.differs] + [i for i in fresh if not i.differs]
    return chosen if limit is None else chosen[:limit]


# --- the responses and preferences files ----------------------------------------------------


def read_responses(path: Path) -> dict[str, dict[str, Any]]:
    """The reviewed responses in `path` by prompt (the last of a repeated prompt wins), each
    as its JSON object; empty when the file does not exist. DataError naming the file and
    line when a line is not ``{"prompt": str, "response": non-empty str, ...}``."""
    responses: dict[str, dict[str, Any]] = {}
    for where, row in _rows(path):
        if not isinstance(row.get("prompt"), str):
            raise DataError(f"{where}: 'prompt' must be a string, got {row.get('prompt')!r}")
        response = row.get("response")
        if not isinstance(response, str) or not response.strip():
            raise DataError(f"{where}: 'response' must be a non-empty string, got {response!r}")
        responses.pop(row["prompt"], None)
        responses[row["prompt"]] = row
    return responses


def read_preference_rows(path: Path) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The preference pairs in `path` by (prompt, chosen, rejected), the last repeat winning;
    empty when the file does not exist; DataError naming the file and line for a bad line."""
    pairs: dict[tuple[str, str, str], dict[str, Any]] = {}
    if not path.exists():
        return pairs
    for pair in read_preferences(path):
        key = (pair.prompt, pair.chosen, pair.rejected)
        pairs.pop(key, None)
        pairs[key] = pair.to_json()
    return pairs


def _rows(path: Path) -> Iterable[tuple[str, dict[str, Any]]]:
    if not path.exists():
        return []
    text = shared.read_text(path)
    return [(f"{path}: line {n}", row) for n, row in jsonl_objects(path, text)]


def reviewed_prompts(responses_path: Path, preferences_path: Path) -> set[str]:
    """The prompts already reviewed: in the responses file or the preferences file."""
    done = set(read_responses(responses_path))
    done.update(prompt for prompt, _, _ in read_preference_rows(preferences_path))
    return done


def outcome_rows(
    items: Mapping[str, GenerationItem], decisions: Mapping[str, Decision], run_id: str, time: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """The response rows and preference rows the `decisions` (by prompt) make, and how many
    bad outputs had no reference (nothing to save for them)."""
    responses: list[dict[str, Any]] = []
    preferences: list[dict[str, Any]] = []
    unsaved = 0
    stamp = {"run": run_id, "time": time}
    for prompt, decision in decisions.items():
        item = items[prompt]
        if decision.verdict == "accept":
            responses.append({"prompt": prompt, "response": item.output, **stamp})
        elif decision.verdict == "edit":
            edited = decision.text or ""
            if not edited.strip():
                raise TuneboardError(f"the edit of output {item.index} is empty")
            responses.append({"prompt": prompt, "response": edited, **stamp})
            if edited != item.output:
                pair = {"prompt": prompt, "chosen": edited, "rejected": item.output}
                preferences.append({**pair, **stamp})
        elif item.reference is not None and item.reference.strip():
            pair = {"prompt": prompt, "chosen": item.reference, "rejected": item.output}
            preferences.append({**pair, **stamp})
        else:
            unsaved += 1
    return responses, preferences, unsaved


def save_review(
    responses_path: Path,
    preferences_path: Path,
    items: Mapping[str, GenerationItem],
    decisions: Mapping[str, Decision],
    run_id: str,
) -> ReviewOutcome:
    """Merge the `decisions` (by prompt, on `items`) into the responses and preferences files.

    Both files are read, merged (a prompt's latest response wins; a pair already there is
    replaced) and rewritten together through temporary files renamed over them: on any error
    neither file changes. A malformed existing file raises DataError and is left as it is.
    """
    responses, preferences, unsaved = outcome_rows(items, decisions, run_id, now_iso())
    folders = sorted({responses_path.parent, preferences_path.parent})
    with _save_lock, contextlib.ExitStack() as stack:
        for folder in folders:  # one lock per folder: a second flock on one would wait forever
            stack.enter_context(locked(folder))
        merged_responses = read_responses(responses_path)
        for row in responses:
            merged_responses.pop(row["prompt"], None)
            merged_responses[row["prompt"]] = row
        merged_pairs = read_preference_rows(preferences_path)
        for row in preferences:
            key = (row["prompt"], row["chosen"], row["rejected"])
            merged_pairs.pop(key, None)
            merged_pairs[key] = row
        files: dict[Path, list[dict[str, Any]]] = {}
        if responses:
            files[responses_path] = list(merged_responses.values())
        if preferences:
            files[preferences_path] = list(merged_pairs.values())
        write_json_lines(files)
    return ReviewOutcome(len(responses), len(preferences), unsaved)


def describe(decision: Decision | None) -> str:
    """A word for a decision, for tables and summaries."""
    if decision is None:
        return ""
    return {"accept": "accepted", "edit": "edited", "bad": "bad"}[decision.verdict]


# --- the review file of `tuneboard review` --------------------------------------------------

REVIEW_COLUMNS = ("run", "split", "index", "prompt", "reference", "output", "decision", "edited")


def write_generation_review_file(path: Path, run_id: str, items: Sequence[GenerationItem]) -> None:
    """Write `items` as a CSV to fill: `decision` ``accept`` or ``bad``, or the better output
    in `edited` (an edit); both empty = skip. Written in one step, readable by its owner."""
    rows = (
        [run_id, item.split, item.index, item.prompt, item.reference or "", item.output, "", ""]
        for item in items
    )
    shared.write_review_csv(path, REVIEW_COLUMNS, rows)


def is_generation_review_file(header: Sequence[str]) -> bool:
    """True when a review file's columns are those of a generations review."""
    return "output" in header and "prompt" in header


def read_generation_review_file(
    path: Path,
) -> tuple[str | None, dict[str, GenerationItem], dict[str, Decision]]:
    """The run, the items and the decisions a person wrote into a generations review file.
    Nothing is returned unless every filled `decision` is ``accept``, ``edit`` or ``bad``
    (``edit`` needs `edited`); otherwise DataError naming the file, line and value."""
    reader = shared.review_csv(path)
    missing = [c for c in REVIEW_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise DataError(
            f"{path}: not a generations review file from `tuneboard review` "
            f"(missing columns: {', '.join(missing)})"
        )
    items: dict[str, GenerationItem] = {}
    decisions: dict[str, Decision] = {}
    run: str | None = None
    start = 2
    for record in reader:
        verdict = (record.get("decision") or "").strip().lower()
        edited = record.get("edited") or ""
        if verdict or edited.strip():
            if verdict not in ("", *VERDICTS):
                raise DataError(
                    f"{path}: line {start}: decision {verdict!r}: expected accept, edit or bad"
                )
            if verdict in ("", "edit") and not edited.strip():
                raise DataError(f"{path}: line {start}: decision edit needs the 'edited' text")
            prompt = record.get("prompt") or ""
            reference = record.get("reference") or None
            index = record.get("index") or "0"
            items[prompt] = GenerationItem(
                index=int(index) if index.isdigit() else 0,
                split=record.get("split") or "",
                prompt=prompt,
                output=record.get("output") or "",
                reference=reference,
            )
            if verdict in ("", "edit"):
                decisions[prompt] = Decision("edit", edited)
            else:
                decisions[prompt] = Decision("accept" if verdict == "accept" else "bad")
            run = run or record.get("run") or None
        start = reader.line_num + 1
    return run, items, decisions
