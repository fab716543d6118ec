"""The README and the docs pages work as written: their tuneboard.toml examples validate,
their plugin runs, their SQL runs, and every relative link points to a file and heading."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.conftest import REPO, SAMPLES, CliRunner
from tuneboard.config import load_project
from tuneboard.engine.runner import prepare_run
from tuneboard.plugins import load_plugins

PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
README = (REPO / "README.md").read_text(encoding="utf-8")


def _text(page: str | None) -> str:
    if page is not None:
        return (REPO / page).read_text(encoding="utf-8")
    return "\n".join(path.read_text(encoding="utf-8") for path in PAGES)


def code_blocks(language: str, page: str | None = None) -> list[str]:
    """Every fenced block in `language` of `page` (a path from the repository root), or of the
    README and every docs page when `page` is None."""
    return [str(b) for b in re.findall(rf"```{language}\n(.*?)```", _text(page), flags=re.DOTALL)]


def code_block(language: str, first_line: str, page: str | None = None) -> str:
    """The fenced block in `language` whose first line starts with `first_line`, in `page` (a
    path from the repository root), or in the README and the docs pages when `page` is None."""
    for block in code_blocks(language, page):
        if block.startswith(first_line):
            return block
    where = page or "the README or docs/"
    raise AssertionError(f"no {language} block starting with {first_line!r} in {where}")


def test_quick_start_is_two_make_commands_that_exist() -> None:
    quick = code_block("sh", "make demo", "README.md")
    assert [line.split()[1] for line in quick.splitlines()] == ["demo", "test"]
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "\ndemo:" in makefile and "\ntest:" in makefile
    assert "make test" in (REPO / ".ci" / "run").read_text(encoding="utf-8")


def test_readme_is_a_short_tour_with_a_development_section() -> None:
    assert len(README.splitlines()) < 150
    assert "\n## Development\n" in README


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    anchors: set[str] = set()
    for heading in re.findall(r"^#{1,6} (.+)$", text, flags=re.MULTILINE):
        slug = _slug(heading)
        n = 0
        while (f"{slug}-{n}" if n else slug) in anchors:
            n += 1
        anchors.add(f"{slug}-{n}" if n else slug)
    return anchors


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_points_to_a_file_and_heading(page: Path) -> None:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve() if file else page
        if not path.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(f"{target} (no such heading)")
    assert broken == []


def test_configuration_example_validates(sentiment_project: Path) -> None:
    toml = code_block("toml", "[project]", "docs/configuration.md")
    (sentiment_project / "tuneboard.toml").write_text(toml)
    project = load_project(sentiment_project)
    config = project.experiment("multistep", load_plugins(project.root))
    assert [stage.plugin for stage in config.stages] == [
        "finetune",
        "finetune",
        "evaluate",
        "export",
    ]


def test_readme_first_project_validates_and_its_data_loads(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    with (SAMPLES / "sentiment" / "data" / "train.tsv").open(encoding="utf-8") as source:
        rows = list(csv.reader(source, delimiter="\t"))
    with (tmp_path / "data" / "reviews.csv").open("w", encoding="utf-8", newline="") as target:
        csv.writer(target).writerows(rows)
    block = code_block("toml", "# A first project", "README.md")
    (tmp_path / "tuneboard.toml").write_text(block)
    project = load_project(tmp_path)
    registry = load_plugins(project.root)
    config = project.experiment("first", registry)
    assert [stage.plugin for stage in config.stages] == ["finetune", "finetune", "evaluate"]
    prepared = prepare_run(project, config, registry)
    assert {name: len(split) for name, split in prepared.splits.items()} == {
        "train": 224,
        "validation": 64,
        "test": 32,
    }


def test_tutorial_project_validates_with_its_feedback_stage_and_sweep(tmp_path: Path) -> None:
    shutil.copytree(SAMPLES / "sentiment" / "data", tmp_path / "data")
    blocks = code_blocks("toml", "docs/tutorial.md")
    main = code_block("toml", "# My first project", "docs/tutorial.md")
    feedback = next(b for b in blocks if b.startswith("[[experiments.first.stages]]"))
    sweep = next(b for b in blocks if b.startswith("[experiments.first.sweep]"))
    first_stage = main.index("[[experiments.first.stages]]")
    (tmp_path / "tuneboard.toml").write_text(
        f"{main[:first_stage]}{feedback}\n{main[first_stage:]}\n{sweep}"
    )
    project = load_project(tmp_path)
    registry = load_plugins(project.root)
    config = project.experiment("first", registry)
    assert [stage.name for stage in config.stages] == [
        "feedback",
        "warmup",
        "full",
        "check",
        "test",
    ]
    assert config.dataset.params.train == "data/train.tsv"
    assert prepare_run(project, config, registry).labels == ["negative", "positive"]


@pytest.mark.slow
def test_plugin_example_runs_in_a_project(cli: CliRunner, sentiment_project: Path) -> None:
    plugins = sentiment_project / "plugins"
    plugins.mkdir()
    (plugins / "shout.py").write_text(
        code_block("python", "# plugins/shout.py", "docs/plugins/README.md")
    )
    toml = (sentiment_project / "tuneboard.toml").read_text()
    toml = toml.replace(
        '[[experiments.tiny.stages]]\nplugin = "finetune"',
        '[[experiments.tiny.stages]]\nplugin = "shout"\ntimes = 2\n\n[[experiments.tiny.stages]]\nplugin = "finetune"',
        1,
    )
    (sentiment_project / "tuneboard.toml").write_text(toml)
    listed = cli("plugins", "--json", cwd=sentiment_project)
    assert '"shout"' in listed.stdout
    done = cli("run", "tiny", "--quiet", "--set", "stages.1.epochs=1", cwd=sentiment_project)
    assert done.returncode == 0, done.stdout + done.stderr
    con = duckdb.connect(str(sentiment_project / ".tuneboard" / "tuneboard.duckdb"), read_only=True)
    messages = [m for (m,) in con.execute("SELECT message FROM events").fetchall()]
    con.close()
    assert "added !! to 320 texts" in messages


def test_plugin_command_example_works_in_a_project(cli: CliRunner, sentiment_project: Path) -> None:
    plugins = sentiment_project / "plugins"
    plugins.mkdir()
    (plugins / "notes.py").write_text(
        code_block("python", "# plugins/notes.py", "docs/plugins/commands.md")
    )
    helped = cli("--help", cwd=sentiment_project)
    assert "note " in helped.stdout and helped.stderr == ""
    done = cli("note", "lr 3e-5 overfits", cwd=sentiment_project)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "noted in notes.md\n"
    assert (sentiment_project / "notes.md").read_text().endswith(": lr 3e-5 overfits\n")


@pytest.mark.slow
def test_every_sql_cookbook_query_runs(cli: CliRunner, sentiment_project: Path) -> None:
    queries = code_blocks("sql", "docs/sql.md")
    assert len(queries) >= 15
    done = cli(
        "run", "tiny_sweep", "--quiet", "--set", "stages.0.epochs=1", "--set", "sweep.seeds=[1]",
        cwd=sentiment_project,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    failed = []
    for query in queries:
        result = cli("sql", "--format", "csv", query, cwd=sentiment_project)
        if result.returncode != 0:
            failed.append(f"{query.splitlines()[0]}: {result.stderr.strip()}")
    assert failed == []
