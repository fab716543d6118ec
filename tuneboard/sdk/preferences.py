"""Preference pairs: for one prompt, a response people prefer and one they rejected.

The file format, shared by whatever writes pairs (the app's review of generations: an edited
output is chosen over the model's, a rejected one loses to the reference) and whatever trains
on them (the `preference` stage): JSON lines, one object per line with the strings
``prompt``, ``chosen`` and ``rejected``, and optionally ``run`` (the run whose output was
reviewed) and ``time`` (ISO 8601, UTC)::

    {"prompt": "How do I reset my password?", "chosen": "Open Settings ...", "rejected": "No."}

Standard library only, so any part of tuneboard and any plugin can read and write it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuneboard.sdk.errors import DataError
from tuneboard.sdk.textfiles import read_utf8


@dataclass(frozen=True)
class PreferencePair:
    """One preference: for `prompt`, `chosen` is the better response and `rejected` the
    worse. `run` and `time` say where and when it was made (None when unknown)."""

    prompt: str
    chosen: str
    rejected: str
    run: str | None = None
    time: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The object written as one line of a preferences file (no null fields)."""
        document: dict[str, Any] = {
            "prompt": self.prompt,
            "chosen": self.chosen,
            "rejected": self.rejected,
        }
        if self.run is not None:
            document["run"] = self.run
        if self.time is not None:
            document["time"] = self.time
        return document

    @classmethod
    def from_json(cls, value: Any, where: str = "preference pair") -> PreferencePair:
        """The pair an object of a preferences file holds; `DataError` starting with `where`
        when it is not one (not an object, a missing or non-string field, an empty response)."""
        if not isinstance(value, dict):
            raise DataError(
                f'{where}: expected a JSON object like {{"prompt": ..., "chosen": ..., '
                '"rejected": ...}'
            )
        for key in ("prompt", "chosen", "rejected"):
            if not isinstance(value.get(key), str):
                raise DataError(f"{where}: {key!r} must be a string, got {value.get(key)!r}")
        for key in ("chosen", "rejected"):
            if not value[key].strip():
                raise DataError(f"{where}: {key!r} is empty")
        for key in ("run", "time"):
            if value.get(key) is not None and not isinstance(value[key], str):
                raise DataError(f"{where}: {key!r} must be a string, got {value[key]!r}")
        return cls(
            prompt=value["prompt"],
            chosen=value["chosen"],
            rejected=value["rejected"],
            run=value.get("run"),
            time=value.get("time"),
        )


def read_preferences(path: Path) -> list[PreferencePair]:
    """Every pair in the preferences file `path`, in file order (blank lines skipped).

    Raises `DataError` naming the file (and the line) when it cannot be read, is not UTF-8,
    or a line is not valid JSON or not a pair.
    """
    text = read_utf8(path)
    pairs: list[PreferencePair] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}: line {number}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not valid JSON ({exc.msg})") from None
        pairs.append(PreferencePair.from_json(value, where))
    return pairs
