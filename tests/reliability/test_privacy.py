"""Owner-only files, and no network: the database, its write-ahead log and the run folders are
created readable by their owner alone (0600 / 0700), wherever the database lives; a run opens
no listening socket and no network connection."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import psutil
import pytest

from tests.reliability.conftest import ProjectFactory, experiment
from tuneboard.config import load_project
from tuneboard.engine.engine import Engine
from tuneboard.plugins import load_plugins
from tuneboard.store import Store
from tuneboard.store.privacy import private_files


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_and_its_wal_are_owner_only_in_a_shared_folder(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)  # a folder others may read: the files must protect themselves
    path = shared / "runs.duckdb"
    umask = os.umask(0o022)
    try:
        with Store(path) as store:
            with store.database.cursor(write=True) as cur:
                cur.execute("INSERT INTO events VALUES ('r', NULL, now(), 'info', 'x')")
                wal = path.with_name(path.name + ".wal")
                assert wal.exists() and mode(wal) == 0o600
            assert mode(path) == 0o600
        # The process's umask is back as it was once the database is let go of.
        assert os.umask(0o022) == 0o022
    finally:
        os.umask(umask)


def test_private_files_nests_and_restores_the_umask(tmp_path: Path) -> None:
    before = os.umask(0o022)
    try:
        with private_files():
            with private_files():
                (tmp_path / "a").write_text("x")
            (tmp_path / "b").mkdir()
        (tmp_path / "c").write_text("x")
        assert (mode(tmp_path / "a"), mode(tmp_path / "b"), mode(tmp_path / "c")) == (
            0o600,
            0o700,
            0o644,
        )
    finally:
        os.umask(before)


@pytest.mark.slow
def test_a_run_keeps_its_files_private_and_opens_no_socket(
    make_project: ProjectFactory, one_thread: None
) -> None:
    short = {"plugin": "finetune", "epochs": 1, "max_steps": 2, "batch_size": 8}
    root = make_project(experiment("tiny", short, {"plugin": "evaluate"}, {"plugin": "export"}))
    project = load_project(root)
    registry = load_plugins(root)
    umask = os.umask(0o022)
    try:
        with Store(project.database) as store:
            engine = Engine(project, store, registry)
            run_id = engine.launch(engine.prepare(project.experiment("tiny", registry)))
            assert engine.wait([run_id], timeout=120)
            engine.shutdown()
            assert store.get_run(run_id).status == "completed"
    finally:
        os.umask(umask)
    state = root / ".tuneboard"
    assert mode(project.database) == 0o600
    assert mode(state) == mode(state / "runs") == mode(state / "runs" / run_id) == 0o700
    assert all(mode(d) == 0o700 for d in (state / "runs" / run_id).glob("stage-*"))
    assert not list(state.glob("*.wal"))  # closed cleanly: no log left behind
    me = psutil.Process()
    assert [c for c in me.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN] == []
    assert me.net_connections(kind="inet") == []


def test_exports_and_checkpoints_are_owner_only_under_umask_000(
    tmp_path: Path, one_thread: None
) -> None:
    from tests.helpers import RecordingContext, toy_state
    from tuneboard.builtin.export import ExportParams, run_export
    from tuneboard.engine import checkpoint

    ctx = RecordingContext(tmp_path)
    state = toy_state(n_train=4, n_val=2, n_test=2)
    umask = os.umask(0)
    try:
        best = ctx.training.save_checkpoint(state, "best")
        resume = checkpoint.write(
            ctx.stage_dir, 1, model=state.model, trainer={}, best={}, ema={}, meta={}
        )
        run_export(ExportParams(folder="models/export"), ctx, state)
    finally:
        os.umask(umask)
    written = [best, resume, ctx.run_dir / "models"]
    paths = [p for top in written for p in (top, *top.rglob("*"))]
    assert len(paths) > 8  # weights, configs, tokenizer files, README ...
    wrong = {str(p): oct(mode(p)) for p in paths if mode(p) != (0o700 if p.is_dir() else 0o600)}
    assert wrong == {}
