"""Lineage across runs read as a tree: a run's ancestors up to the root and its descendants.

Pure functions over the store's rows (no Textual, no click), shared by `tuneboard lineage`
and Run detail in the app. A run's parent is the run whose export or checkpoint its model
came from (`run_parents`); iterated rounds (review, then feedback from the previous export)
read as one chain.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from tuneboard.store import RunLink, RunRow, StageLink, Store
from tuneboard.ui.render import format_number, status_text

MAX_CHAIN_INDENT = 8
"""How many steps a chain of ancestors is indented at most."""


@dataclass(frozen=True)
class Lineage:
    """The runs around `run_id`: how each came from its parent, and what came from each."""

    run_id: str
    runs: Mapping[str, RunRow] = field(default_factory=dict)
    parent_links: Mapping[str, RunLink] = field(default_factory=dict)
    child_links: Mapping[str, tuple[RunLink, ...]] = field(default_factory=dict)
    stages: tuple[StageLink, ...] = ()
    """How the run's own stages handed the model on, stage to stage."""

    @property
    def parent(self) -> RunLink | None:
        """How the run came from its parent; None for a root."""
        return self.parent_links.get(self.run_id)

    @property
    def children(self) -> tuple[RunLink, ...]:
        """The runs that started from this run's models, oldest first."""
        return self.child_links.get(self.run_id, ())

    def ancestors(self) -> list[RunLink]:
        """The links from the run up to the root: its own first, the root's child's last."""
        chain: list[RunLink] = []
        seen = {self.run_id}
        link = self.parent_links.get(self.run_id)
        while link is not None and link.parent_run_id not in seen:
            chain.append(link)
            seen.add(link.parent_run_id)
            link = self.parent_links.get(link.parent_run_id)
        return chain

    def descendants(self, run_id: str | None = None) -> list[tuple[int, RunLink]]:
        """The runs below `run_id` (default: the run), depth first: (depth from 1, link)."""
        found: list[tuple[int, RunLink]] = []
        top = run_id or self.run_id
        seen = {top}
        # Depth first without recursion: a chain of iterated runs can be thousands long.
        stack = [(1, link) for link in reversed(self.child_links.get(top, ()))]
        while stack:
            depth, link = stack.pop()
            if link.run_id in seen:
                continue
            seen.add(link.run_id)
            found.append((depth, link))
            below = self.child_links.get(link.run_id, ())
            stack.extend((depth + 1, child) for child in reversed(below))
        return found


def read_lineage(store: Store, run_id: str, *, whole: bool = True) -> Lineage:
    """The lineage of run `run_id` (a full id), read in one open of the database.

    With `whole` false, only the run's parent and children (and not its stages): what Run
    detail shows, read while the run trains.
    """
    with store.hold():
        links = store.run_links() if whole else store.run_links(around=run_id)
        parents = {link.run_id: link for link in links}
        children: dict[str, list[RunLink]] = {}
        for link in links:
            children.setdefault(link.parent_run_id, []).append(link)
        lineage = Lineage(
            run_id, {}, parents, {key: tuple(value) for key, value in children.items()}
        )
        ids = [run_id]
        ids += [link.parent_run_id for link in lineage.ancestors()]
        ids += [link.run_id for _, link in lineage.descendants()]
        # Run detail has the run itself: without links it needs no run read.
        runs = store.runs_by_id(ids) if whole or links else {}
        stages = tuple(store.stage_links(run_id)) if whole else ()
    return Lineage(run_id, runs, lineage.parent_links, lineage.child_links, stages)


def link_label(link: RunLink) -> str:
    """What of the parent the child started from: `export`, `finetune checkpoint`."""
    stage = link.parent_stage or (
        f"stage {link.parent_stage_index}" if link.parent_stage_index is not None else "a stage"
    )
    if link.kind == "model":
        return "export"
    if link.kind == "checkpoint":
        return f"{stage} checkpoint"
    return f"{link.kind or 'artifact'} of {stage}"


def run_label(run: RunRow | None, run_id: str) -> str:
    """A run as one line: id, experiment, status and headline value."""
    if run is None:
        return f"{run_id}  (not in this project)"
    parts = [run.run_id, run.experiment, status_text(run.status)]
    if run.headline_value is not None:
        parts.append(f"{run.headline} {format_number(run.headline_value)}")
    return "  ".join(parts)


def tree_lines(lineage: Lineage) -> list[tuple[str, bool]]:
    """The tree as lines of text, each with whether it is the run itself: the root first,
    each ancestor's child indented under it, then the run's descendants.

    A chain of ancestors is indented at most `MAX_CHAIN_INDENT` steps: past that, each run
    sits under the one above it at the same indentation (a long chain of iterated rounds
    stays readable)."""
    lines: list[tuple[str, bool]] = []
    chain = list(reversed(lineage.ancestors()))  # the root's child first
    top = chain[0].parent_run_id if chain else lineage.run_id
    lines.append((_node(lineage, top, None), top == lineage.run_id))
    for depth, link in enumerate(chain, start=1):
        indent = "   " * (min(depth, MAX_CHAIN_INDENT) - 1) + "└─ "
        lines.append((indent + _node(lineage, link.run_id, link), False))
    if chain:
        text, _ = lines[-1]
        lines[-1] = (text, True)
    base = "   " * min(len(chain), MAX_CHAIN_INDENT)
    below = lineage.descendants()
    later = _later_siblings([depth for depth, _ in below])
    guides: dict[int, bool] = {}  # depth -> whether the latest run there has a later sibling
    for (depth, link), more in zip(below, later, strict=True):
        prefix = "".join("│  " if guides.get(level) else "   " for level in range(1, depth))
        branch = "├─ " if more else "└─ "
        lines.append((base + prefix + branch + _node(lineage, link.run_id, link), False))
        guides[depth] = more
    return [(text + ("  ◀ this run" if own else ""), own) for text, own in lines]


def _later_siblings(depths: list[int]) -> list[bool]:
    """For each entry of a depth-first list of depths, whether a sibling follows it (an
    entry of the same depth before any shallower one)."""
    result = [False] * len(depths)
    pending: dict[int, bool] = {}
    for position in range(len(depths) - 1, -1, -1):
        depth = depths[position]
        result[position] = pending.get(depth, False)
        for deeper in [d for d in pending if d > depth]:
            del pending[deeper]
        pending[depth] = True
    return result


def _node(lineage: Lineage, run_id: str, link: RunLink | None) -> str:
    text = run_label(lineage.runs.get(run_id), run_id)
    return f"{text}  ← {link_label(link)}" if link is not None else text


def stage_chain(stages: tuple[StageLink, ...]) -> str:
    """The stages in the order they ran, each with the artifact it handed on:
    `finetune (checkpoint) → repeat → finetune · round 2 (checkpoint) → export`."""
    if not stages:
        return ""
    parts = []
    for link in stages:
        name = link.parent_stage or f"stage {link.parent_stage_index}"
        parts.append(f"{name} ({link.kind})" if link.kind else name)
    last = stages[-1]
    parts.append(last.child_stage or f"stage {last.child_stage_index}")
    return " → ".join(parts)


def summary_line(lineage: Lineage) -> str:
    """The app's one line: `from RUN (export of EXPERIMENT) · children: 2`; empty for a run
    with neither parent nor children."""
    parts = []
    link = lineage.parent
    if link is not None:
        parent = lineage.runs.get(link.parent_run_id)
        of = f" of {parent.experiment}" if parent is not None else ""
        parts.append(f"from {link.parent_run_id} ({link_label(link)}{of})")
    if lineage.children:
        parts.append(f"children: {len(lineage.children)}")
    return " · ".join(parts)


def lineage_document(lineage: Lineage) -> dict[str, Any]:
    """The lineage as JSON-ready data: the run, its ancestors (root first) and its
    descendants (nested), each with the link to its parent."""

    def node(run_id: str, link: RunLink | None) -> dict[str, Any]:
        run = lineage.runs.get(run_id)
        return {
            "run_id": run_id,
            "experiment": run.experiment if run else None,
            "status": run.status if run else None,
            "headline": run.headline if run else None,
            "headline_value": run.headline_value if run else None,
            "link": None if link is None else {**asdict(link), "label": link_label(link)},
        }

    def subtree() -> list[dict[str, Any]]:
        """The descendants nested under one another (built from the flat depth-first list)."""
        top: list[dict[str, Any]] = []
        open_: list[list[dict[str, Any]]] = [top]  # the children lists of the current path
        for depth, link in lineage.descendants():
            del open_[depth:]
            entry = {**node(link.run_id, link), "children": []}
            open_[-1].append(entry)
            open_.append(entry["children"])
        return top

    chain = list(reversed(lineage.ancestors()))
    ancestors = []
    if chain:
        ancestors.append(
            node(chain[0].parent_run_id, lineage.parent_links.get(chain[0].parent_run_id))
        )
        ancestors += [node(link.run_id, link) for link in chain[:-1]]
    return {
        "run": node(lineage.run_id, lineage.parent),
        "ancestors": ancestors,
        "descendants": subtree(),
        "stages": [asdict(link) for link in lineage.stages],
    }
