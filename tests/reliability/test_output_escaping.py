"""Text from the database never breaks or hijacks the output.

Names, SQL results and errors are printed as plain text: markup-like brackets are shown as
they are (never parsed, so `[/x]` cannot crash and `[blink red]` cannot vanish), and
control characters (ESC, C1, DEL, bidi overrides) are shown escaped, never sent to the
terminal. Every value DuckDB can return formats to a cell, `'infinity'::TIMESTAMP` too.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pty
import re
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from tests.conftest import CliRunner
from tests.tui.seed import HOSTILE, HOSTILE_RUN, seed_hostile_run
from tuneboard.config import load_project
from tuneboard.store import RunLink, Store, run_query
from tuneboard.tui.cells import plain
from tuneboard.ui.render import rich_table
from tuneboard.ui.safe import cell_text, safe_text, visible

PROPERTIES = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# What a terminal reads as styling when Rich thinks it writes to one (FORCE_COLOR): the
# only escape sequences the output may hold.
SGR = re.compile(r"\x1b\[[0-9;]*m")


def raw_controls(text: str, allowed: str = "") -> list[str]:
    """The characters of `text` that a terminal would act on or that reorder what it shows."""
    return [
        char
        for char in text
        if char not in allowed
        and (unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") or char in BIDI)
    ]


def printed(renderable: Any) -> str:
    """What Rich prints for `renderable` on a wide console that is not a terminal."""
    out = io.StringIO()
    Console(file=out, width=10_000, color_system=None).print(renderable)
    return out.getvalue()


def is_visible(text: str) -> bool:
    """True when `text` holds nothing `visible` escapes (on one line)."""
    return not raw_controls(text)


# Markup, a backslash before it, emoji codes, escape sequences, controls, a bidi override.
PIECES = ["[", "]", "[/", "[b]", "[/x]", "[/]", "\\", "[@click=app.quit]", "[link=x]", ":smile:"]
PIECES += ["\x1b[2J", "\x1b]0;t\x07", "\u202e", "\x9b", "\x7f", "\r", "\n", "\t"]
markupish = st.lists(
    st.one_of(
        st.sampled_from(PIECES),
        st.text(max_size=4),
    ),
    max_size=8,
).map("".join)
texts = st.one_of(st.text(st.characters(codec=None, categories=None)), markupish)
values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**130), 2**130),
        st.floats(allow_nan=True, allow_infinity=True),
        st.decimals(allow_nan=True),
        texts,
        st.binary(max_size=8),
        st.datetimes(),
        st.datetimes(timezones=st.timezones()),
        st.dates(),
        st.times(),
        st.timedeltas(),
    ),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=4), inner, max_size=3)
        | st.tuples(inner, inner)
    ),
    max_leaves=8,
)


@PROPERTIES
@given(texts)
def test_visible_escapes_every_control_character_and_keeps_the_rest(text: str) -> None:
    shown = visible(text)
    assert not raw_controls(shown)
    assert not raw_controls(visible(text, multiline=True), allowed="\n\t")
    if is_visible(text):
        assert shown == text
    assert visible(shown) == shown  # escaping twice changes nothing more


@PROPERTIES
@given(texts, texts)
def test_rich_prints_user_text_as_it_is(text: str, other: str) -> None:
    out = printed(safe_text(text))
    assert not raw_controls(out, allowed="\n")
    if is_visible(text):
        assert out == text + "\n"
    line = safe_text(text, "bold").append_text(safe_text(other))
    assert printed(line) == visible(text) + visible(other) + "\n"


@PROPERTIES
@given(st.lists(values, min_size=1, max_size=3), texts)
def test_the_cli_and_the_app_format_any_value(row: list[Any], column: str) -> None:
    table = printed(rich_table([column, *map(str, range(len(row) - 1))], [row], title=column))
    assert not raw_controls(table, allowed="\n")
    for value in row:
        cell = plain(value)  # the app's cells
        assert not raw_controls(cell.plain)
        assert cell.plain == cell_text(value)
        assert cell.plain in table
        if isinstance(value, str) and is_visible(value):
            assert cell.plain == value
    if is_visible(column):
        assert column in table


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """An empty project database, shared by the examples of a property."""
    with Store(tmp_path_factory.mktemp("escaping") / "db.duckdb") as store:
        yield store


def sql_string(text: str) -> str:
    """`text` as a DuckDB string expression (chr() for what a literal cannot hold)."""
    parts = []
    for run in re.split(r"(\x00+)", text):
        if run.startswith("\x00"):
            parts += ["chr(0)"] * len(run)
        elif run:
            parts.append("'" + run.replace("'", "''") + "'")
    return " || ".join(parts) or "''"


@settings(PROPERTIES, max_examples=40, suppress_health_check=list(HealthCheck))
@given(st.text(st.characters(codec="utf-8"), max_size=20) | markupish)
def test_sql_results_of_any_text_are_shown_as_they_are(store: Store, text: str) -> None:
    name = text[:3].replace("\x00", "") + "x"
    quoted = '"' + name.replace('"', '""') + '"'
    result = run_query(store, f"SELECT {sql_string(text)} AS value, value AS {quoted}")
    assert result.rows == [(text, text)]
    assert result.columns[1] == name
    table = printed(rich_table(result.columns, result.rows))
    assert not raw_controls(table, allowed="\n")
    assert visible(text) in table and visible(name) in table
    assert [plain(value).plain for value in result.rows[0]] == [visible(text)] * 2


def test_every_kind_of_duckdb_value_gives_a_cell(store: Store) -> None:
    result = run_query(
        store,
        "SELECT 'infinity'::TIMESTAMP AS a, '-infinity'::TIMESTAMP AS b, 'infinity'::DATE AS c,"
        " '294000-01-01'::TIMESTAMP AS d, 'infinity'::TIMESTAMPTZ AS e,"
        " 'infinity'::TIMESTAMP_S AS f, ['-infinity'::TIMESTAMP] AS g,"
        " {'x': '10000-01-01'::DATE} AS h, 'nan'::DOUBLE AS i, 1e308 * 10 AS j,"
        " 12345678901234567890123456789.123456789::DECIMAL(38, 9) AS k, '\\xAA\\x1B'::BLOB AS l,"
        " MAP {'[/k]': [1, NULL]} AS m, INTERVAL 3 DAY AS n, '24:00:00'::TIME AS o,"
        " 170141183460469231731687303715884105727::HUGEINT AS p, NULL AS q,"
        " union_value(u := 'x') AS r, [[1.5]] AS s, '2020-01-01'::DATE AS t",
    )
    cells = [plain(value).plain for value in result.rows[0]]
    assert cells[:4] == ["infinity", "-infinity", "infinity", "294000-01-01 00:00:00"]
    assert cells[4:7] == ["infinity", "infinity", "[-infinity]"]
    assert cells[7:11] == [
        "{'x': 10000-01-01}",
        "nan",
        "inf",
        "12345678901234567890123456789.123456789",
    ]
    assert cells[11:13] == ["b'\\xaa\\x1b'", "[('[/k]', [1, NULL])]"]
    assert cells[15] == "170141183460469231731687303715884105727"
    assert cells[16:] == ["", "x", "[[1.5]]", "2020-01-01"]
    table = printed(rich_table(result.columns, result.rows))
    assert not raw_controls(table, allowed="\n")
    assert "infinity" in table and "[/k]" in table


def output_of(done: Any) -> str:
    """stdout and stderr of a finished CLI, checked to hold no terminal controls."""
    text = done.stdout + done.stderr
    assert "Traceback" not in text
    assert not raw_controls(SGR.sub("", text), allowed="\n"), text
    return text


def test_cli_sql_shows_markup_escapes_and_infinity_as_text(
    cli: CliRunner, sentiment_project: Path
) -> None:
    done = cli(
        "sql",
        "SELECT '[/x]' AS \"[/c]\", '[blink red]hi' AS b, chr(27) || '[2J' AS c,"
        " 'infinity'::TIMESTAMP AS d",
        cwd=sentiment_project,
        env={"COLUMNS": "200"},
    )
    text = output_of(done)
    assert done.returncode == 0, text
    for shown in ("[/c]", "[/x]", "[blink red]hi", "\\x1b[2J", "infinity"):
        assert shown in text


def test_cli_runs_and_show_print_hostile_names_as_text(
    cli: CliRunner, sentiment_project: Path
) -> None:
    toml = sentiment_project / "tuneboard.toml"
    toml.write_text(toml.read_text().replace('name = "sentiment"', 'name = "[/oops]\\u001b[2J"', 1))
    seed_hostile_run(sentiment_project)
    env = {"COLUMNS": "400"}
    runs = cli("runs", cwd=sentiment_project, env=env)
    text = output_of(runs)
    assert runs.returncode == 0, text
    assert "runs of [/oops]\\x1b[2J" in text and HOSTILE_RUN in text
    show = cli("show", HOSTILE_RUN[:18], cwd=sentiment_project, env=env)
    text = output_of(show)
    assert show.returncode == 0, text
    assert text.count(visible(HOSTILE)) >= 5  # experiment, stage, metric, event, error
    assert "second [/line]" in text


def test_cli_lineage_prints_hostile_names_as_text(cli: CliRunner, sentiment_project: Path) -> None:
    seed_hostile_run(sentiment_project)
    child = "20260102-000000-kid"
    with Store(load_project(sentiment_project).database) as store:
        store.create_run(child, HOSTILE, {}, at=1.0)
        link = RunLink(child, HOSTILE_RUN, 0, "checkpoint", f"/x/{HOSTILE}", "00", HOSTILE)
        store.record_parent(link)
    done = cli("lineage", child, cwd=sentiment_project, env={"COLUMNS": "400"})
    text = output_of(done)
    assert done.returncode == 0, text
    assert HOSTILE_RUN in text
    assert text.count(visible(HOSTILE)) == 3  # both experiments, the stage named in the link
    as_json = cli("lineage", child, "--json", cwd=sentiment_project)
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout)["run"]["experiment"] == HOSTILE  # JSON escapes itself


def test_cli_csv_is_exact_when_piped_and_escaped_on_a_terminal(
    cli: CliRunner, sentiment_project: Path
) -> None:
    query = "SELECT chr(27) || '[2J[/x]' AS c"
    piped = cli("sql", query, "--format", "csv", cwd=sentiment_project)
    assert piped.returncode == 0 and piped.stdout == "c\n\x1b[2J[/x]\n"
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tuneboard.cli", "sql", query, "--format", "csv"],
            cwd=sentiment_project,
            stdout=follower,
            stderr=subprocess.PIPE,
            timeout=120,
            check=False,
        )
        os.close(follower)
        shown = b""
        with contextlib.suppress(OSError):  # EIO: the terminal has nothing more to read
            while chunk := os.read(leader, 65536):
                shown += chunk
    finally:
        os.close(leader)
    assert done.returncode == 0, done.stderr
    assert shown.decode().splitlines() == ["c", "\\x1b[2J[/x]"]
