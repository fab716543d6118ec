"""The `export` stage's work: a self-contained model folder."""

from __future__ import annotations

import json

from tuneboard.builtin.stages import ExportParams
from tuneboard.sdk.contracts import PipelineState, StageContext
from tuneboard.sdk.errors import ConfigError


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
