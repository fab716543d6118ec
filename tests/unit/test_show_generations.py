"""`tuneboard show RUN`: the generations section (a few prompts, first and latest outputs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.cells import cell_len

from tuneboard.cli import main
from tuneboard.sdk.tasks import Generation
from tuneboard.store import Store

RUN = "20261123-000000-abcd"
PLAIN = "20261123-000000-beef"
WIDTH = 60
LONG_PROMPT = "How do I reset my password? I tried the link twice and it never came."


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with a run that generated at three evaluations, and one that generated none."""
    (tmp_path / "tuneboard.toml").write_text('[project]\nname = "p"\n')
    with Store(tmp_path / ".tuneboard" / "tuneboard.duckdb") as store:
        for run_id in (RUN, PLAIN):
            store.create_run(run_id, "e", {}, status="completed")
            store.stage_started(run_id, 0, name="finetune", plugin="finetune", params={})
        for step, output in ((10, "the the the"), (20, "Settings"), (30, "Open Settings\nthen")):
            store.log_generations(
                RUN,
                0,
                [
                    Generation(
                        "validation",
                        index,
                        prompt,
                        "" if (index, step) == (1, 10) else output,  # nothing generated
                        reference=ref,
                        step=step,
                    )
                    for index, (prompt, ref) in enumerate(
                        [(LONG_PROMPT, "Open Settings, then Password."), ("Hi", None)]
                        + [(f"q{i}", None) for i in range(2, 5)]
                    )
                ],
            )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def show(*args: str) -> str:
    result = CliRunner().invoke(main, ["show", *args], env={"COLUMNS": str(WIDTH)})
    assert result.exit_code == 0, result.output
    return result.output


def test_show_prints_a_few_prompts_with_their_first_and_latest_outputs(project: Path) -> None:
    lines = show(RUN).splitlines()
    start = lines.index("generations (3 of 5 prompts)")
    assert lines[start + 1 : start + 10] == [
        "  validation #0",
        "    prompt     How do I reset my password? I tried the link…",
        "    reference  Open Settings, then Password.",
        "    step 10    the the the",
        "    step 30    Open Settings ⏎ then",
        "  validation #1",
        "    prompt     Hi",
        "    step 10    (empty)",
        "    step 30    Open Settings ⏎ then",
    ]
    assert lines[start + 10] == "  validation #2"
    assert "validation #3" not in lines
    assert all(cell_len(line) <= WIDTH for line in lines[start:])


def test_show_of_a_run_without_generations_has_no_section(project: Path) -> None:
    assert "generations" not in show(PLAIN)


def test_show_json_holds_every_generation(project: Path) -> None:
    document = json.loads(show(RUN, "--json"))
    assert len(document["generations"]) == 15
    first = document["generations"][0]
    assert (first["step"], first["idx"], first["prompt"], first["output"]) == (
        10,
        0,
        LONG_PROMPT,
        "the the the",
    )
    assert json.loads(show(PLAIN, "--json"))["generations"] == []
