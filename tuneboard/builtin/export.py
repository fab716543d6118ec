"""The `export` stage: the current model as a self-contained folder in the run's folder,
with a README that says how to load it (transformers alone, or peft for a kept adapter)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import PurePath

from tuneboard import (
    CAUSAL_LM,
    SEQ2SEQ,
    SEQUENCE_CLASSIFICATION,
    TOKEN_CLASSIFICATION,
    ConfigError,
    PipelineState,
    Stage,
    StageContext,
    param,
)
from tuneboard.sdk.files import is_inside, make_private, private_folder

_AUTO_CLASSES = {
    CAUSAL_LM: "AutoModelForCausalLM",
    SEQ2SEQ: "AutoModelForSeq2SeqLM",
    SEQUENCE_CLASSIFICATION: "AutoModelForSequenceClassification",
    TOKEN_CLASSIFICATION: "AutoModelForTokenClassification",
}


@dataclass
class ExportParams:
    """Parameters of the `export` stage."""

    folder: str = param("export", "Folder inside the run's folder to write the model to")

    def __post_init__(self) -> None:
        path = PurePath(self.folder)
        if not self.folder.strip() or path.is_absolute() or ".." in path.parts or not path.name:
            raise ValueError(
                "key 'folder' must be a relative path inside the run's folder "
                f"(no '..', not absolute), got {self.folder!r}"
            )


class Export(Stage[ExportParams]):
    """Write the current model, tokenizer, labels and metrics to a folder."""

    name = "export"
    Params = ExportParams
    description = (
        "Save the model (safetensors; a prompt-learning adapter with its base), tokenizer,"
        " labels.json, metrics.json and a README.md that says how to load it"
    )

    def run(self, ctx: StageContext, state: PipelineState) -> PipelineState:
        """Write the files and record the folder as a `model` artifact."""
        return run_export(self.params, ctx, state)


def run_export(params: ExportParams, ctx: StageContext, state: PipelineState) -> PipelineState:
    """Write model (safetensors), tokenizer, `labels.json`, `metrics.json`, `README.md`."""
    if state.model is None or state.tokenizer is None:
        raise ConfigError("export: no model in the pipeline state")
    if not is_inside(ctx.run_dir / params.folder, ctx.run_dir):
        # Checked again here, after symbolic links are followed.
        raise ConfigError(f"export: folder {params.folder!r} is not inside the run's folder")
    folder = private_folder(ctx.run_dir / params.folder, ctx.run_dir, "export: key 'folder'")
    adapter = ctx.training.save_model(state, folder)
    labels = {str(i): label for i, label in enumerate(state.labels)}
    (folder / "labels.json").write_text(json.dumps(labels, indent=2) + "\n", encoding="utf-8")
    metrics = json.dumps(state.metrics, indent=2, sort_keys=True)
    (folder / "metrics.json").write_text(metrics + "\n", encoding="utf-8")
    readme = loading_note(auto_class(ctx, state), adapter)
    (folder / "README.md").write_text(readme, encoding="utf-8")
    make_private(folder)
    ctx.artifact(folder, "model")
    ctx.event(f"model exported to {folder}")
    ctx.progress(1, 1, "exported")
    return state


def auto_class(ctx: StageContext, state: PipelineState) -> str:
    """The transformers auto class that loads the model of `state.task`."""
    if state.task in _AUTO_CLASSES:
        return _AUTO_CLASSES[state.task]
    if ctx.task is not None:
        return str(getattr(ctx.task.model_class(), "__name__", "AutoModel"))
    return "AutoModel"


def loading_note(auto: str, adapter: bool) -> str:
    """The README of an exported folder: what is in it and how to load it."""
    if not adapter:
        return f"""# Exported by tuneboard

A transformers model (weights in safetensors) with its tokenizer; `labels.json` names the
labels of a classifier, `metrics.json` holds the run's metrics. Load it with
transformers alone:

```python
from transformers import {auto}, AutoTokenizer

model = {auto}.from_pretrained("path/to/this/folder")
tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")
```
"""
    peft_auto = auto.replace("AutoModel", "AutoPeftModel", 1)
    return f"""# Exported by tuneboard: a peft adapter and its base model

The model was trained with a prompt-learning adapter (prefix, prompt or P-tuning), whose
virtual tokens cannot be merged into the weights. This folder holds the adapter
(`adapter_config.json`, `adapter_model.safetensors`) and the tokenizer; `base/` holds the
base model. Load both with peft:

```python
from peft import PeftModel
from transformers import {auto}, AutoTokenizer

folder = "path/to/this/folder"
base = {auto}.from_pretrained(f"{{folder}}/base")
model = PeftModel.from_pretrained(base, folder)
tokenizer = AutoTokenizer.from_pretrained(folder)
```

While the folder stays where it was written, `peft.{peft_auto}.from_pretrained(folder)`
loads it in one call too (`adapter_config.json` names `base/` by its absolute path).
"""
