"""Saved views' file: reading with one-line errors naming the file and key, saving, the SQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuneboard.sdk.errors import TuneboardError
from tuneboard.ui.views import View, combine, filter_sql, read_views, save_view

COLUMNS = ("status", "run", "experiment", "headline")


def test_good_and_bad_views_are_read_each_on_its_own(tmp_path: Path) -> None:
    path = tmp_path / "views.toml"
    path.write_text(
        "[views.failed]\n"
        "where = \"status = 'failed'\"\n"
        "order_by = 'created_at DESC'\n"
        "columns = ['status', 'run']\n"
        "[views.typo]\nwhere = 'status = = 1'\n"
        "[views.writes]\nwhere = '1 = 1); DELETE FROM runs; SELECT (1'\n"
        "[views.two]\norder_by = 'run_id; SELECT 1'\n"
        "[views.key]\nwher = 'x'\n"
        "[views.cols]\ncolumns = ['nope']\n"
        "[views.kind]\nwhere = 1\n"
    )
    views, errors = read_views(path, COLUMNS)
    assert views == {
        "failed": View("failed", "status = 'failed'", "created_at DESC", ("status", "run"))
    }
    assert [e.split(": ")[1] for e in errors] == [
        "[views.typo]",
        "[views.writes]",
        "[views.two]",
        "[views.key]",
        "[views.cols]",
        "[views.kind]",
    ]
    assert all(e.startswith("views.toml: ") and "\n" not in e for e in errors)
    assert "key 'where'" in errors[0] and "only read statements" in errors[1]
    assert "key 'order_by'" in errors[2] and "unknown key 'wher'" in errors[3]
    assert "unknown column 'nope'" in errors[4] and "key 'where' must be a string" in errors[5]


def test_a_file_that_is_not_toml_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "views.toml"
    path.write_text("[views.x\n")
    views, [error] = read_views(path, COLUMNS)
    assert views == {} and error.startswith("views.toml: ") and "\n" not in error
    with pytest.raises(TuneboardError, match="fix it before saving"):
        save_view(path, View("y"), COLUMNS)


def test_saving_appends_or_replaces_and_keeps_the_others(tmp_path: Path) -> None:
    path = tmp_path / "views.toml"
    path.write_text("# mine\n[views.hand]\nwhere = \"experiment = 'tiny'\"\n")
    save_view(path, View("done", filter_sql("it's", "completed", None), "run_id"), COLUMNS)
    text = path.read_text()
    assert text.startswith("# mine\n")  # appended: the file stays as written
    views, errors = read_views(path, COLUMNS)
    assert errors == [] and list(views) == ["hand", "done"]
    assert "status = 'completed'" in views["done"].where and "'it''s'" in views["done"].where
    save_view(path, View("hand", "", "", ("run",)), COLUMNS)
    views, _ = read_views(path, COLUMNS)
    assert views["hand"] == View("hand", "", "", ("run",)) and list(views) == ["hand", "done"]
    with pytest.raises(TuneboardError, match="name"):
        save_view(path, View("two words"), COLUMNS)
    with pytest.raises(TuneboardError, match="key 'where'"):
        save_view(path, View("bad", "status = ="), COLUMNS)


def test_the_sql_of_a_view() -> None:
    assert View("all").sql() == "SELECT run_id FROM runs"
    sql = View("v", "status = 'x' -- a comment", "run_id").sql()
    assert (
        sql == "SELECT run_id FROM runs\nWHERE (\nstatus = 'x' -- a comment\n)\nORDER BY\nrun_id\n"
    )
    assert combine("a = 1", "", "b = 2") == "(a = 1) AND (b = 2)"
    assert combine("", "a = 1") == "a = 1"
    assert filter_sql("", None, None) == ""


@pytest.mark.parametrize("text", ["cccc", "TINY", "finetune", "explode", "cpu", "run"])
def test_a_saved_text_filter_matches_what_the_runs_filter_matches(
    sentiment_project: Path, text: str
) -> None:
    from tests.tui.seed import seed_database
    from tuneboard.config import load_project
    from tuneboard.store import Store, run_query
    from tuneboard.tui.screens.runs import _haystack

    seed_database(sentiment_project)
    with Store(load_project(sentiment_project).database) as store:
        runs = store.list_runs()
        on_screen = {run.run_id for run in runs if text.lower() in _haystack(run)}
        result = run_query(store, View("x", filter_sql(text, None, None)).sql())
    assert on_screen and {row[0] for row in result.rows} == on_screen
