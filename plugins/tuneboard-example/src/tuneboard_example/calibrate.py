"""The `calibrate` stage: temperature scaling of a classifier's probabilities.

Fine-tuned transformers are usually over-confident: when they say 95 %, they are right less
often than that. Temperature scaling (Guo et al., 2017, "On Calibration of Modern Neural
Networks") divides the logits by one number T, fitted to minimise the negative log-likelihood
on held-out data. Predictions (and accuracy) do not change; probabilities become honest.

The stage fits T on the validation split, logs the expected calibration error (ECE) and the
NLL before and after (on the test split too, when there is one: the fair measure), writes
``calibration.json``, and folds 1/T into the model's classification layer so that later stages
(``evaluate``, ``export``) use the calibrated model.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from tuneboard import (
    SEQUENCE_CLASSIFICATION,
    DataError,
    PipelineState,
    PluginError,
    Stage,
    StageContext,
    TextExample,
    param,
)

# How metric names of a split start (tuneboard logs validation metrics as `val/...`).
PREFIXES = {"train": "train", "validation": "val", "test": "test"}


@dataclass
class CalibrateParams:
    """Parameters of `calibrate`."""

    split: str = param(
        "validation", "Split to fit the temperature on", choices=["validation", "train"]
    )
    bins: int = param(15, "Equal-width confidence bins of the ECE", min=2, max=100)
    batch_size: int = param(32, "Examples per forward pass", min=1)
    max_iter: int = param(100, "Most L-BFGS iterations when fitting the temperature", min=1)
    fold: bool = param(True, "Scale the classification layer by 1/T, so later stages use it")


class Calibrate(Stage[CalibrateParams]):
    """Fit a softmax temperature on held-out data; log ECE and NLL before and after."""

    name = "calibrate"
    Params = CalibrateParams
    description = "Temperature scaling: calibrated probabilities, ECE before/after"

    def run(self, ctx: StageContext, state: PipelineState) -> PipelineState:
        """Fit T on `split`, log the numbers, fold T into the model, save calibration.json."""
        import torch

        if state.task != SEQUENCE_CLASSIFICATION:
            raise PluginError(f"calibrate needs sequence classification, not {state.task}")
        if state.model is None:
            raise PluginError("calibrate needs a model: put it after a training stage")
        fit_split = self.params.split
        logits, labels = self._logits(ctx, state, fit_split)
        temperature = fit_temperature(logits, labels, self.params.max_iter)
        report: dict[str, Any] = {"temperature": temperature, "fit_on": fit_split}
        values: dict[str, float] = {"calibration/temperature": temperature}
        splits = [fit_split, "test"] if state.splits.get("test") else [fit_split]
        for split in splits:
            if split != fit_split:
                logits, labels = self._logits(ctx, state, split)
            prefix = PREFIXES[split]
            for when, t in (("before", 1.0), ("after", temperature)):
                scaled = logits / t
                values[f"{prefix}/ece_{when}"] = expected_calibration_error(
                    scaled, labels, self.params.bins
                )
                values[f"{prefix}/nll_{when}"] = float(
                    torch.nn.functional.cross_entropy(scaled, labels)
                )
        ctx.log(values, 0)
        report["metrics"] = values
        path = ctx.stage_dir / "calibration.json"
        path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        ctx.artifact(path, "calibration")
        prefix = PREFIXES[fit_split]
        ctx.event(
            f"temperature {temperature:.3f}: {prefix}/ece {values[f'{prefix}/ece_before']:.4f}"
            f" -> {values[f'{prefix}/ece_after']:.4f}"
        )
        if self.params.fold:
            self._fold(ctx, state.model, temperature)
        state.extras["temperature"] = temperature
        state.metrics.update({k: v for k, v in values.items() if k.startswith("test/")})
        return state

    def _logits(self, ctx: StageContext, state: PipelineState, split: str) -> tuple[Any, Any]:
        """The model's logits and the label indices of a split's labelled examples."""
        import torch

        examples = [
            e for e in state.splits.get(split, []) if isinstance(e, TextExample) and e.label
        ]
        if not examples:
            raise DataError(f"calibrate: the {split!r} split has no labelled examples")
        index = {label: i for i, label in enumerate(state.labels)}
        model = state.model
        model.eval()
        outputs = []
        size = self.params.batch_size
        total = math.ceil(len(examples) / size)
        with torch.no_grad():
            for number, start in enumerate(range(0, len(examples), size), start=1):
                ctx.check_stop()
                batch = examples[start : start + size]
                pairs = [e.text_pair for e in batch]
                encoded = state.tokenizer(
                    [e.text for e in batch],
                    pairs if any(p is not None for p in pairs) else None,
                    truncation=True,
                    max_length=ctx.max_length,
                    padding=True,
                    return_tensors="pt",
                ).to(ctx.device)
                outputs.append(model(**encoded).logits.float().cpu())
                ctx.progress(number, total, f"logits on {split}")
        labels = torch.tensor([index[e.label] for e in examples if e.label is not None])
        return torch.cat(outputs), labels

    def _fold(self, ctx: StageContext, model: Any, temperature: float) -> None:
        """Divide the classification layer's weights and bias by T (logits / T exactly)."""
        import torch

        layer = output_layer(model)
        if layer is None:
            ctx.event("no linear classification layer found: T is recorded only", "warning")
            return
        with torch.no_grad():
            layer.weight.div_(temperature)
            if layer.bias is not None:
                layer.bias.div_(temperature)


def fit_temperature(logits: Any, labels: Any, max_iter: int) -> float:
    """The temperature T > 0 minimising the NLL of softmax(logits / T); 1.0 if none is better."""
    import torch

    log_t = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> Any:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    temperature = float(log_t.detach().exp().clamp(0.05, 20.0))
    with torch.no_grad():
        before = torch.nn.functional.cross_entropy(logits, labels)
        after = torch.nn.functional.cross_entropy(logits / temperature, labels)
    return temperature if math.isfinite(temperature) and after <= before else 1.0


def expected_calibration_error(logits: Any, labels: Any, bins: int) -> float:
    """ECE: how far confidence is from accuracy, averaged over equal-width confidence bins."""
    import torch

    confidence, predicted = torch.softmax(logits, dim=-1).max(dim=-1)
    correct = (predicted == labels).float()
    # Bin b holds confidences in (b/bins, (b+1)/bins].
    in_bin = ((confidence * bins).ceil().long() - 1).clamp(0, bins - 1)
    count = torch.zeros(bins).index_add_(0, in_bin, torch.ones_like(confidence))
    gap = torch.zeros(bins).index_add_(0, in_bin, confidence - correct)
    # sum over bins of |mean confidence - accuracy| * (share of examples in the bin)
    return float(gap.abs().sum() / count.sum())


def output_layer(model: Any) -> Any:
    """The final `torch.nn.Linear` of a sequence classifier (BERT, RoBERTa, GPT-2 ...), or None."""
    import torch

    for name in ("classifier", "score"):
        head = getattr(model, name, None)
        if isinstance(head, torch.nn.Linear):
            return head
        out_proj = getattr(head, "out_proj", None)
        if isinstance(out_proj, torch.nn.Linear):
            return out_proj
    return None
