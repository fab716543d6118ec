"""The benchmark data: a seeded subset of GLUE SST-2 training phrases and the 872 dev sentences.

Where SST-2 is not on disk (a fresh CI machine), the sentiment sample project's data stands in,
so the smoke test can run anywhere.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

from benchmarks.common import REPO, SST2
from benchmarks.plain_loop import Example

SAMPLE = REPO / "sample_projects" / "sentiment" / "data"


def _read(path: Path, label_names: dict[str, int] | None = None) -> list[Example]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader)
        label_col = header.index("label")
        text_col = next(i for i, name in enumerate(header) if name != "label")
        rows = []
        for row in reader:
            label = row[label_col].strip()
            rows.append((label_names[label] if label_names else int(label), row[text_col]))
    return rows


def available() -> bool:
    """True when the SST-2 files are on disk."""
    return (SST2 / "train.tsv").is_file() and (SST2 / "dev.tsv").is_file()


def load(rows: int, seed: int = 13) -> tuple[list[Example], list[Example], str]:
    """`rows` training examples (first after a seeded shuffle), the dev set, and the source name.

    Labels are ids: 0 negative, 1 positive.
    """
    if available():
        train = _read(SST2 / "train.tsv")
        dev = _read(SST2 / "dev.tsv")
        source = f"SST-2 ({SST2})"
    else:
        names = {"negative": 0, "positive": 1}
        train = _read(SAMPLE / "train.tsv", names)
        dev = _read(SAMPLE / "validation.tsv", names)
        source = "sentiment sample project (SST-2 not found)"
    random.Random(seed).shuffle(train)
    return train[:rows], dev, source


def write_tsv(path: Path, examples: list[Example], text_column: str = "sentence") -> None:
    """Write `examples` as a tab-separated file with a ``label<TAB>text_column`` header."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["label", text_column])
        writer.writerows(examples)
