"""Lineage: the `lineage` view's edges, finding a run's parent from its model source (a path
into another run's artifact, or `run:RUN_ID[/STAGE]`), the tree, and export/import."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest

from tuneboard.config import Project, load_project
from tuneboard.engine.lineage import resolved_table, trace_model
from tuneboard.plugins import PluginRegistry, load_plugins
from tuneboard.sdk.errors import ConfigError
from tuneboard.store import RunLink, Store, run_query
from tuneboard.store.transfer import export_runs, import_runs
from tuneboard.ui.lineage import (
    Lineage,
    lineage_document,
    read_lineage,
    stage_chain,
    summary_line,
    tree_lines,
)

A = "20260101-000000-aaaa"
B = "20260102-000000-bbbb"
C = "20260103-000000-cccc"
D = "20260104-000000-dddd"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "db" / "tuneboard.duckdb", flush_interval=60)
    yield store
    store.close()


def _stages(store: Store, run_id: str, names: list[str]) -> None:
    for index, name in enumerate(names):
        store.stage_started(run_id, index, name=name, plugin=name.split()[0], params={}, at=1.0)
        store.stage_finished(run_id, index, "completed", at=2.0)


def _pipeline_with_rounds(store: Store) -> None:
    """Run A: finetune, repeat (round 2 of finetune as a row of its own), export."""
    store.create_run(A, "iterative", {}, status="completed", at=1.0)
    _stages(store, A, ["finetune", "repeat", "finetune · round 2", "export"])
    # The best checkpoint is recorded each time it improves: the last one is what stayed.
    store.record_artifact(A, 0, "checkpoint", "/r/a/stage-0/best", 1, "old", at=3.0)
    store.record_artifact(A, 0, "checkpoint", "/r/a/stage-0/best", 1, "kept", at=4.0)
    store.record_artifact(A, 0, "predictions", "/r/a/p.jsonl", 1, "p", at=4.5)
    store.record_artifact(A, 2, "checkpoint", "/r/a/stage-2/best", 1, "round2", at=5.0)
    store.record_artifact(A, 3, "model", "/r/a/export", 1, "exported", at=6.0)


def test_the_view_chains_stages_and_runs(store: Store) -> None:
    _pipeline_with_rounds(store)
    store.create_run(B, "iterative", {}, status="completed", at=7.0)
    _stages(store, B, ["feedback"])
    link = RunLink(B, A, 3, "model", "/r/a/export", "exported", "run:2026")
    store.record_parent(link, at=7.0)
    store.flush()
    result = run_query(store, "SELECT * FROM lineage ORDER BY link DESC, 3")
    assert result.columns == [
        "link",
        "parent_run_id",
        "parent_stage_index",
        "parent_stage",
        "child_run_id",
        "child_stage_index",
        "child_stage",
        "kind",
        "artifact_path",
        "artifact_sha256",
    ]
    assert result.rows == [
        ("stage", A, 0, "finetune", A, 1, "repeat", "checkpoint", "/r/a/stage-0/best", "kept"),
        ("stage", A, 1, "repeat", A, 2, "finetune · round 2", None, None, None),
        (
            "stage",
            A,
            2,
            "finetune · round 2",
            A,
            3,
            "export",
            "checkpoint",
            "/r/a/stage-2/best",
            "round2",
        ),
        ("run", A, 3, "export", B, 0, "feedback", "model", "/r/a/export", "exported"),
    ]
    assert stage_chain(tuple(store.stage_links(A))) == (
        "finetune (checkpoint) → repeat → finetune · round 2 (checkpoint) → export"
    )
    assert store.run_links() == [
        RunLink(B, A, 3, "model", "/r/a/export", "exported", "run:2026", "export")
    ]
    store.delete_run(B)
    store.flush()
    assert store.run_links() == []


def test_the_tree_shows_ancestors_and_descendants(store: Store) -> None:
    for number, run_id in enumerate((A, B, C, D)):
        store.create_run(
            run_id, "tiny", {}, headline="test/accuracy", status="completed", at=number
        )
        store.set_headline_value(run_id, 0.5 + number / 10)
    _stages(store, A, ["finetune", "export"])
    store.record_parent(RunLink(B, A, 1, "model", "/a/export", "h1", "run:a"), at=1)
    store.record_parent(RunLink(C, B, 1, "model", "/b/export", "h2", "/b/export"), at=2)
    store.record_parent(RunLink(D, A, 0, "checkpoint", "/a/best", "h3", "run:a/0"), at=3)
    store.flush()

    middle = read_lineage(store, B)
    assert summary_line(middle) == f"from {A} (export of tiny) · children: 1"
    assert tree_lines(middle) == [
        (f"{A}  tiny  ✓ completed  test/accuracy 0.5", False),
        (f"└─ {B}  tiny  ✓ completed  test/accuracy 0.6  ← export  ◀ this run", True),
        (f"   └─ {C}  tiny  ✓ completed  test/accuracy 0.7  ← export", False),
    ]
    # What Run detail reads: only the run's own links.
    near = read_lineage(store, C, whole=False)
    assert [link.parent_run_id for link in near.ancestors()] == [B]
    assert near.stages == () and summary_line(near) == f"from {B} (export of tiny)"
    root = read_lineage(store, A)
    assert [own for _, own in tree_lines(root)] == [True, False, False, False]
    assert [text.partition("  tiny")[0] for text, _ in tree_lines(root)] == [
        A,
        f"├─ {B}",
        f"│  └─ {C}",
        f"└─ {D}",
    ]
    assert tree_lines(root)[-1][0].endswith("← finetune checkpoint")
    leaf = lineage_document(read_lineage(store, C))
    assert [node["run_id"] for node in leaf["ancestors"]] == [A, B]
    assert leaf["run"]["link"]["parent_run_id"] == B and leaf["descendants"] == []
    assert [node["run_id"] for node in lineage_document(root)["descendants"]] == [B, D]
    # A parent that is not in the file (deleted, or not imported) still shows by its id.
    store.delete_run(A)
    store.flush()
    assert tree_lines(read_lineage(store, B))[0] == (f"{A}  (not in this project)", False)


def test_an_exported_run_keeps_its_parent(store: Store, tmp_path: Path) -> None:
    _pipeline_with_rounds(store)
    store.create_run(B, "iterative", {}, status="completed", at=7.0)
    link = RunLink(B, A, 3, "model", "/r/a/export", "exported", "run:2026")
    store.record_parent(link, at=7.0)
    store.flush()
    out = tmp_path / "export"
    exported = export_runs(store, [B], out, "csv", source_project="a")
    assert exported.rows["run_parents"] == 1
    with Store(tmp_path / "b" / "tuneboard.duckdb") as target:
        imported = import_runs(target, out)
        assert imported.imported == [B] and imported.rows["run_parents"] == 1
        assert target.run_links() == [link]  # the parent's stage is not in this project
        assert read_lineage(target, B).parent == link


# --- finding the parent when a run is prepared -----------------------------------------


@pytest.fixture
def project(sentiment_project: Path) -> Project:
    return load_project(sentiment_project)


@pytest.fixture
def registry(project: Project) -> PluginRegistry:
    return load_plugins(project.root)


def _recorded_run(project: Project, run_id: str, at: float) -> Path:
    """A completed run with a finetune checkpoint and an export, both real folders."""
    folder = project.runs_dir / run_id
    for name in ("stage-0/best", "export/base"):
        (folder / name).mkdir(parents=True)
        (folder / name / "config.json").write_text("{}")
    with Store(project.database) as store:
        store.create_run(run_id, "tiny", {}, status="completed", at=at)
        _stages(store, run_id, ["finetune", "export"])
        store.add_artifact(run_id, 0, "checkpoint", folder / "stage-0/best", at=at + 1)
        store.add_artifact(run_id, 1, "model", folder / "export", at=at + 2)
    return folder


def _traced(project: Project, registry: PluginRegistry, model: str) -> tuple[str | None, object]:
    experiment = project.experiment("tiny", registry, [f"model={model}"])
    traced, origin = trace_model(project, experiment)
    return traced.model.source, origin


def test_a_path_inside_another_runs_artifact_names_its_parent(
    project: Project, registry: PluginRegistry, tmp_path: Path
) -> None:
    folder = _recorded_run(project, A, 1.0)
    relative = folder.relative_to(project.root).as_posix()
    source, origin = _traced(project, registry, f"{relative}/export")
    assert source == f"{relative}/export"  # a path stays as written
    assert origin is not None
    assert (origin.parent_run_id, origin.parent_stage_index, origin.kind) == (A, 1, "model")
    assert origin.artifact_path == str(folder / "export")
    assert len(origin.artifact_sha256) == 64 and origin.source == f"{relative}/export"
    # Inside the folder, and through a symbolic link: the real path counts.
    _, inside = _traced(project, registry, f"{relative}/export/base")
    assert inside is not None and inside.parent_run_id == A
    (tmp_path / "link").symlink_to(folder / "stage-0")
    _, linked = _traced(project, registry, str(tmp_path / "link" / "best"))
    assert linked is not None and (linked.parent_stage_index, linked.kind) == (0, "checkpoint")
    # A folder no run recorded, and a Hugging Face id: no parent.
    (project.root / "models" / "mine").mkdir(parents=True)
    assert _traced(project, registry, "models/mine")[1] is None
    assert _traced(project, registry, "bert-base-uncased") == ("bert-base-uncased", None)


def test_run_sources_name_an_export_or_a_stage_checkpoint(
    project: Project, registry: PluginRegistry
) -> None:
    folder = _recorded_run(project, A, 1.0)
    source, origin = _traced(project, registry, f"run:{A}")
    assert source == str(folder / "export")
    assert origin is not None and (origin.parent_run_id, origin.kind) == (A, "model")
    assert origin.source == f"run:{A}"
    assert _traced(project, registry, "run:20260101")[0] == str(folder / "export")  # a prefix
    assert _traced(project, registry, f"run:{A}/finetune")[0] == str(folder / "stage-0/best")
    assert _traced(project, registry, f"run:{A}/0")[0] == str(folder / "stage-0/best")
    assert _traced(project, registry, f"run:{A}/export")[0] == str(folder / "export")
    # What a remote machine gets: the folder, not the name.
    experiment = project.experiment("tiny", registry, [f"model=run:{A}"])
    traced, _ = trace_model(project, experiment)
    assert resolved_table(traced)["model"] == str(folder / "export")
    assert experiment.raw["model"] == f"run:{A}"


def test_a_run_without_an_export_gives_its_last_checkpoint(
    project: Project, registry: PluginRegistry
) -> None:
    with Store(project.database) as store:
        store.create_run(B, "tiny", {}, status="failed", at=1.0)
        for at, name in ((2.0, "first"), (3.0, "second")):
            path = project.runs_dir / B / name
            path.mkdir(parents=True)
            store.add_artifact(B, 0, "checkpoint", path, at=at)
    assert _traced(project, registry, f"run:{B}")[0] == str(project.runs_dir / B / "second")


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("run:zzz", "'run:zzz': no run matches 'zzz'"),
        ("run:2026", "'run:2026': '2026' matches several runs: " + f"{A}, {B}"),
        (f"run:{A}/nope", f"run {A} has no stage 'nope' (stages: finetune, export)"),
        (f"run:{B}", f"run {B} recorded no exported model nor checkpoint"),
        (
            f"run:{B}/evaluate",
            f"stage 'evaluate' of run {B} recorded no checkpoint nor exported model",
        ),
        (f"run:{C}", "no longer exists"),
    ],
)
def test_bad_run_sources_are_refused_in_one_line(
    project: Project, registry: PluginRegistry, model: str, message: str
) -> None:
    _recorded_run(project, A, 1.0)
    with Store(project.database) as store:
        store.create_run(B, "tiny", {}, status="completed", at=2.0)
        _stages(store, B, ["evaluate"])
        store.create_run(C, "other", {}, status="completed", at=3.0)
        store.record_artifact(C, 0, "model", "/nowhere/export", 1, "00")
    with pytest.raises(ConfigError) as caught:
        _traced(project, registry, model)
    text = str(caught.value)
    assert text.startswith("tuneboard.toml: [experiments.tiny]: key 'model': ")
    assert message in text and "\n" not in text


def test_run_sources_need_a_database_and_a_proper_form(
    project: Project, registry: PluginRegistry
) -> None:
    with pytest.raises(ConfigError, match=r"key 'model': 'run:abc': no runs yet"):
        _traced(project, registry, "run:abc")
    for bad in ("run:", "run:a/b/c", "run:/x"):
        with pytest.raises(ConfigError, match=r"key 'model' must look like run:RUN_ID"):
            project.experiment("tiny", registry, [f"model={bad}"])
    with pytest.raises(ConfigError, match=r"\[experiments.tiny.model\]: key 'source' must look"):
        project.experiment("tiny", registry, ["model.source=run:"])


def test_a_file_written_before_lineage_reads_as_having_none(tmp_path: Path) -> None:
    # A project last written before m006, opened read-only (never migrated).
    import duckdb

    from tuneboard.store.migrations import MIGRATIONS

    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as conn:
        for _, sql in MIGRATIONS[:5]:
            conn.execute(sql)
        conn.execute("INSERT INTO runs (run_id, experiment, status) VALUES ('r', 'x', 'completed')")
    with Store(path, read_only=True) as store:
        found = read_lineage(store, "r")
        assert (found.parent, found.children, found.stages) == (None, (), ())
        assert tree_lines(found) == [("r  x  ✓ completed  ◀ this run", True)]


def test_a_long_chain_of_rounds_stays_readable() -> None:
    # Review -> feedback rounds, each run started from the previous one's export.
    ids = [f"r{number:05d}" for number in range(1500)]
    links = [RunLink(child, parent, 2, "model", "/x", "00") for parent, child in pairwise(ids)]
    lineage = Lineage(
        ids[700],
        {},
        {link.run_id: link for link in links},
        {link.parent_run_id: (link,) for link in links},
    )
    assert len(lineage.ancestors()) == 700 and len(lineage.descendants()) == 799
    lines = [text for text, _ in tree_lines(lineage)]
    assert len(lines) == 1500
    assert max(len(text) - len(text.lstrip(" │")) for text in lines) <= 3 * (8 + 800)
    assert lines[9].startswith(" " * 21 + "└─ r00009") and lines[10].startswith(" " * 21 + "└─ ")
    assert lines[700].endswith("◀ this run") and lines[701].startswith(" " * 24 + "└─ r00701")
    document = lineage_document(lineage)
    assert len(document["ancestors"]) == 700
    deepest = document["descendants"][0]
    for _ in range(798):
        [deepest] = deepest["children"]
    assert deepest["run_id"] == ids[-1] and deepest["children"] == []
