"""Log a Hugging Face `Trainer` run into a tuneboard project: one line added to an existing script.

    from tuneboard.integrations.hf import TuneboardCallback

    trainer = Trainer(..., callbacks=[TuneboardCallback(project_dir="my-project")])

Each `trainer.train()` becomes one run of the project, with one stage (`train`, plugin
`hf_trainer`): status `running` while it trains, then `completed`, `failed` (an exception the
script does not catch, with its traceback in the events) or `cancelled` (Ctrl-C, or
`tuneboard cancel` / the app, which stop the Trainer after its current step). Metrics go
through the store's batched writer: `loss` -> `train/loss`, `learning_rate` -> `train/lr`,
`eval_X` -> `val/X`, `test_X` -> `test/X`, other keys -> `train/KEY`. The output folder is
recorded as an artifact when training ends.

The experiment name is, in order: the `experiment` argument; `TrainingArguments.run_name` when
set; the name of `output_dir`'s folder; `trainer`. It need not be an experiment of the
project's `tuneboard.toml`; a `project_dir` without one gets a minimal `tuneboard.toml`, so the
`tuneboard` commands and the app work there.

`transformers` is imported here, at import time: import this module only where it is used.
"""

from __future__ import annotations

import atexit
import os
import platform
import re
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from tuneboard.config import CONFIG_FILE, Project, load_project
from tuneboard.engine.engine import new_run_id
from tuneboard.engine.provenance import git_state, package_versions
from tuneboard.plugins import NAME_PATTERN
from tuneboard.sdk.errors import TuneboardError
from tuneboard.store import Store

STAGE_NAME = "train"
PLUGIN_NAME = "hf_trainer"
OUTPUT_KIND = "output_dir"
DEFAULT_EXPERIMENT = "trainer"

NEW_PROJECT_FILE = """\
# Created by tuneboard's Hugging Face callback: runs of Trainer scripts logged here are kept
# in .tuneboard/tuneboard.duckdb (see them with `tuneboard runs` or `tuneboard`).
# Add [experiments.NAME] tables to launch runs from tuneboard as well.
[project]
"""

# The Trainer's own log keys, and prefixes of the keys it builds (eval_loss, test_accuracy).
_NAMES = {
    "loss": "train/loss",
    "learning_rate": "train/lr",
    "grad_norm": "train/grad_norm",
    "epoch": "train/epoch",
    "train_loss": "train/mean_loss",  # the average over the whole run, logged at the end
}
_PREFIXES = (("eval_", "val/"), ("test_", "test/"), ("predict_", "test/"), ("train_", "train/"))
_HYPERPARAMETERS = (
    "learning_rate",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "weight_decay",
    "warmup_steps",
    "lr_scheduler_type",
    "seed",
    "eval_strategy",
    "metric_for_best_model",
)
_NOT_NAME = re.compile(r"[^A-Za-z0-9_.-]+")

ExceptHook = Callable[[type[BaseException], BaseException, TracebackType | None], Any]


def metric_name(key: str) -> str:
    """tuneboard's name for a key of the Trainer's logs (`eval_accuracy` -> `val/accuracy`)."""
    if key in _NAMES:
        return _NAMES[key]
    for prefix, group in _PREFIXES:
        if key.startswith(prefix) and len(key) > len(prefix):
            return group + key[len(prefix) :]
    return f"train/{key}"


def experiment_name(args: TrainingArguments, given: str | None = None) -> str:
    """The experiment a run is recorded under (see the module docstring for the order)."""
    if given is not None:
        return _checked_name(given)
    output_dir = str(args.output_dir) if args.output_dir else None
    run_name = args.run_name if args.run_name and args.run_name != output_dir else None
    folder = Path(output_dir).name if output_dir else None
    for candidate in (run_name, folder):
        name = _NOT_NAME.sub("-", candidate or "").strip("-.")
        if name and NAME_PATTERN.fullmatch(name):
            return name
    return DEFAULT_EXPERIMENT


def _checked_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise TuneboardError(
            f"experiment name {name!r} must be a plain name (letters, digits, _ . -)"
        )
    return name


def open_project(project_dir: Path) -> Project:
    """The project in `project_dir`; a folder without a `tuneboard.toml` gets a minimal one."""
    file = project_dir / CONFIG_FILE
    if not file.is_file():
        project_dir.mkdir(parents=True, exist_ok=True)
        try:
            with file.open("x", encoding="utf-8") as out:
                out.write(NEW_PROJECT_FILE)
        except FileExistsError:  # another process made it meanwhile
            pass
    return load_project(project_dir)


class TuneboardCallback(TrainerCallback):
    """A `TrainerCallback` that records each `trainer.train()` as a run of a tuneboard project.

    `project_dir`: the project folder (created, with a minimal `tuneboard.toml`, if needed).
    `experiment`: the experiment name (default: the run name or the output folder's name).
    `headline`: the metric shown in run lists (default: `val/<metric_for_best_model>`,
    else `val/loss` when the Trainer evaluates, else `train/loss`).
    Only the main process (rank 0) writes. `run_id` is the latest run's id: evaluations and
    predictions after `train()` (`trainer.evaluate(test, metric_key_prefix="test")`) are
    logged into it too, until the next `train()`.
    """

    def __init__(
        self,
        project_dir: str | os.PathLike[str] = ".",
        experiment: str | None = None,
        *,
        headline: str | None = None,
    ) -> None:
        if experiment is not None:
            _checked_name(experiment)  # a bad name fails when the script starts, not later
        self.project_dir = Path(project_dir).expanduser().absolute()
        self.experiment = experiment
        self.headline = headline
        self.run_id: str | None = None
        self._store: Store | None = None
        self._run_headline = ""
        self._training = False
        self._cancelled = False
        self._lock = threading.Lock()
        self._previous_hook: ExceptHook | None = None

    # --- the Trainer's events ------------------------------------------------------------

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Create the run (status running) with the training arguments and model config."""
        if not state.is_world_process_zero:
            return
        if self._training:  # an earlier train() raised and the script went on
            self.mark_failed("a new training started before this one ended")
        self._let_go()
        project = open_project(self.project_dir)
        experiment = experiment_name(args, self.experiment)
        headline = self.headline or _default_headline(args)
        model = kwargs.get("model")
        store = Store(project.database)
        run_id = new_run_id()
        store.create_run(
            run_id,
            experiment,
            _run_config(args, model),
            headline=headline,
            provenance=_provenance(args),
        )
        store.set_run_status(run_id, "running", device=str(args.device))
        store.stage_started(
            run_id,
            0,
            name=STAGE_NAME,
            plugin=PLUGIN_NAME,
            params={key: getattr(args, key, None) for key in _HYPERPARAMETERS},
        )
        store.log_event(
            run_id,
            f"Hugging Face Trainer started by {_script()}: {state.max_steps} steps,"
            f" {args.num_train_epochs:g} epochs",
            stage_index=0,
        )
        with self._lock:
            self._store, self.run_id = store, run_id
            self._run_headline, self._training, self._cancelled = headline, True, False
        self._install_hooks()

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Record progress; stop the Trainer when the run was cancelled from tuneboard."""
        store, run_id = self._store, self.run_id
        if store is None or run_id is None or not self._training:
            return
        store.set_progress(run_id, 0, state.global_step, state.max_steps or None)
        if not self._cancelled and store.cancel_requests([run_id]):
            self._cancelled = True
            store.log_event(run_id, "cancel requested: stopping after this step", level="warning")
        if self._cancelled:
            control.should_training_stop = True

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Record the logged numbers at the current step (one queued write)."""
        self._log(state, logs)

    def on_predict(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Record the metrics of `trainer.predict()` (keys `test_*` by default)."""
        self._log(state, metrics)

    def _log(self, state: TrainerState, logs: Mapping[str, Any] | None) -> None:
        store, run_id = self._store, self.run_id
        if store is None or run_id is None or not logs:
            return
        values = {
            metric_name(key): float(value)
            for key, value in logs.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }
        if not values:
            return
        store.log_metrics(run_id, 0, state.global_step, values)
        if self._run_headline in values:
            store.set_headline_value(run_id, values[self._run_headline])
        if not self._training:
            store.flush()  # after train() (a test evaluation): visible now, not at exit

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """An event with the evaluation's main numbers (the numbers themselves come by on_log)."""
        store, run_id = self._store, self.run_id
        if store is None or run_id is None:
            return
        shown = "  ".join(
            f"{metric_name(key)} {value:.4g}"
            for key, value in (metrics or {}).items()
            if isinstance(value, float)
            and key != "epoch"
            and not key.endswith(("_runtime", "_per_second"))
        )
        store.log_event(run_id, f"evaluated at step {state.global_step}: {shown}", stage_index=0)
        if not self._training:
            store.flush()

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """An event for each checkpoint the Trainer saves."""
        store, run_id = self._store, self.run_id
        if store is not None and run_id is not None:
            store.log_event(run_id, f"checkpoint saved at step {state.global_step}", stage_index=0)

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Mark the run completed (or cancelled), record the output folder, write everything.

        The store stays open for metrics logged after training (a test evaluation).
        """
        with self._lock:
            store, run_id = self._store, self.run_id
            training, self._training = self._training, False
        if store is None or run_id is None or not training:
            return
        status = "cancelled" if self._cancelled else "completed"
        try:
            best = args.metric_for_best_model
            store.stage_finished(
                run_id,
                0,
                status,
                best_metric=metric_name(_eval_key(best)) if best else None,
                best_step=state.best_global_step if state.best_metric is not None else None,
                best_value=state.best_metric,
            )
            output = Path(args.output_dir) if args.output_dir else None
            if output is not None and output.is_dir():
                store.add_artifact(run_id, 0, OUTPUT_KIND, output)
            store.log_event(run_id, f"training {status} after {state.global_step} steps")
            store.set_run_status(
                run_id, status, error="cancelled from tuneboard" if self._cancelled else None
            )
            store.flush()
        finally:
            self._remove_hooks()
            atexit.register(self._let_go)

    # --- failures ------------------------------------------------------------------------

    def mark_failed(self, error: BaseException | str) -> None:
        """Record the current run as failed (cancelled, for Ctrl-C) and write everything.

        Called for an exception the script does not catch and when the process ends in
        the middle of training; a script that catches the Trainer's exception itself (or a
        notebook) can call it with that exception. Does nothing when no training is going on.
        """
        with self._lock:
            store, run_id = self._store, self.run_id
            training, self._training = self._training, False
            if training:
                self._store = self.run_id = None
        if store is None or run_id is None or not training:
            return
        status = "cancelled" if isinstance(error, KeyboardInterrupt) else "failed"
        if isinstance(error, BaseException):
            detail = str(error).strip().splitlines()
            reason = type(error).__name__ + (f": {detail[0]}" if detail else "")
            store.log_event(
                run_id,
                "".join(traceback.format_exception(error)).rstrip(),
                level="error",
                stage_index=0,
            )
        else:
            reason = error
        try:
            store.stage_finished(run_id, 0, status)
            store.set_run_status(
                run_id, status, error=f"stage 0 {STAGE_NAME} ({PLUGIN_NAME}): {reason}"
            )
        finally:
            store.close()
            self._remove_hooks()

    def _let_go(self) -> None:
        """Write what is queued and close the store of the latest run (if training ended)."""
        atexit.unregister(self._let_go)
        with self._lock:
            if self._training:
                return
            store, self._store, self.run_id = self._store, None, None
        if store is not None:
            store.close()

    def _install_hooks(self) -> None:
        if self._previous_hook is None:
            self._previous_hook = sys.excepthook
            sys.excepthook = self._excepthook
        atexit.unregister(self._at_exit)
        atexit.register(self._at_exit)

    def _remove_hooks(self) -> None:
        previous, self._previous_hook = self._previous_hook, None
        if previous is not None and sys.excepthook == self._excepthook:
            sys.excepthook = previous
        atexit.unregister(self._at_exit)

    def _excepthook(
        self, kind: type[BaseException], error: BaseException, tb: TracebackType | None
    ) -> None:
        previous = self._previous_hook or sys.__excepthook__
        self.mark_failed(error)
        previous(kind, error, tb)

    def _at_exit(self) -> None:
        self.mark_failed("the process ended before training finished")


# --- helpers ------------------------------------------------------------------------------


def _eval_key(name: str) -> str:
    return name if name.startswith("eval_") else f"eval_{name}"


def _default_headline(args: TrainingArguments) -> str:
    if args.metric_for_best_model:
        return metric_name(_eval_key(args.metric_for_best_model))
    return "val/loss" if args.eval_strategy != "no" else "train/loss"


def _run_config(args: TrainingArguments, model: Any) -> dict[str, Any]:
    training_args: dict[str, Any] = args.to_dict()  # type: ignore[no-untyped-call]
    config: dict[str, Any] = {"source": "transformers.Trainer", "training_args": training_args}
    if model is not None:
        model_config: Any = getattr(model, "config", None)
        config["model"] = {
            "class": type(model).__name__,
            "config": model_config.to_dict() if hasattr(model_config, "to_dict") else None,
        }
    return config


def _provenance(args: TrainingArguments) -> dict[str, Any]:
    return {
        "seed": args.seed,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "packages": package_versions(),
        "script": _script(),
        "git": git_state(Path.cwd()),
    }


def _script() -> str:
    return sys.argv[0] if sys.argv and sys.argv[0] else "python"
