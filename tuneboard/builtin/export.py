"""The `export` stage: the current model as a self-contained folder in the run's folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import PurePath

from tuneboard import ConfigError, PipelineState, Stage, StageContext, param


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
    description = "Save the model (safetensors), tokenizer, labels.json and metrics.json"

    def run(self, ctx: StageContext, state: PipelineState) -> PipelineState:
        """Write the files and record the folder as a `model` artifact."""
        return run_export(self.params, ctx, state)


def run_export(params: ExportParams, ctx: StageContext, state: PipelineState) -> PipelineState:
    """Write model (safetensors), tokenizer, `labels.json` and `metrics.json`."""
    if state.model is None or state.tokenizer is None:
        raise ConfigError("export: no model in the pipeline state")
    run_dir = ctx.run_dir.resolve()
    folder = (run_dir / params.folder).resolve()
    if not folder.is_relative_to(run_dir) or folder == run_dir:
        # Checked again here, after symbolic links are followed.
        raise ConfigError(f"export: folder {params.folder!r} is not inside the run's folder")
    folder.mkdir(parents=True, exist_ok=True)
    state.model.save_pretrained(folder)
    state.tokenizer.save_pretrained(folder)
    labels = {str(i): label for i, label in enumerate(state.labels)}
    (folder / "labels.json").write_text(json.dumps(labels, indent=2) + "\n", encoding="utf-8")
    metrics = json.dumps(state.metrics, indent=2, sort_keys=True)
    (folder / "metrics.json").write_text(metrics + "\n", encoding="utf-8")
    ctx.artifact(folder, "model")
    ctx.event(f"model exported to {folder}")
    ctx.progress(1, 1, "exported")
    return state
