"""The `supcon` strategy: cross-entropy mixed with a supervised contrastive loss.

Gunel et al. (2021, "Supervised Contrastive Learning for Pre-trained Language Model
Fine-tuning") fine-tune with ``(1 - lam) * CE + lam * SupCon``, where SupCon (Khosla et al.,
2020) pulls the L2-normalised sentence embeddings of same-label examples of a batch together
and pushes the others apart. For an anchor i with positives P(i) (the other examples of its
label) and A(i) all examples but i:

    SupCon_i = -1/|P(i)| * sum_{p in P(i)} log(exp(z_i·z_p / T) / sum_{a in A(i)} exp(z_i·z_a / T))

averaged over the anchors that have a positive. Anchors without one are skipped; a batch
where no example has one trains on cross-entropy alone. torch is imported inside the work.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

from tuneboard import IGNORE_INDEX, ConfigError, Strategy, TrainStep, param

if TYPE_CHECKING:
    import torch

Pooling = Literal["mean", "cls"]


@dataclass
class SupConParams:
    """Parameters of the `supcon` strategy (the `contrastive` stage declares them too)."""

    temperature: float = param(
        0.3, "Temperature T of the contrastive softmax (smaller = sharper)", min=0.01
    )
    lam: float = param(
        0.9,
        "Weight of the contrastive term: loss = (1 - lam) * cross-entropy + lam * SupCon",
        min=0,
        max=1,
    )
    pooling: Pooling = param(
        "mean",
        "Sentence embedding: mean of the last layer over real tokens, or its first ([CLS]) token",
    )

    @classmethod
    def of(cls, params: Any) -> SupConParams:
        """The SupCon parameters held by any params object that declares the same fields."""
        return cls(**{f.name: getattr(params, f.name) for f in fields(cls)})


class SupCon(Strategy[SupConParams]):
    """Supervised contrastive fine-tuning (Gunel et al. 2021): ``(1 - lam)`` × cross-entropy
    + ``lam`` × SupCon over the micro-batch's pooled, L2-normalised last-layer embeddings,
    with same-label examples as positives. Returns that mixed loss (cross-entropy alone for a
    batch where no example has a positive)."""

    name = "supcon"
    Params = SupConParams
    description = "Supervised contrastive fine-tuning: cross-entropy + SupCon on embeddings"

    def step(self, inputs: TrainStep) -> float:
        """One forward (with hidden states), one backward of the mixed loss."""
        return supcon_step(inputs, self.params)


# --- the work -----------------------------------------------------------------------------


def supcon_step(inputs: TrainStep, params: SupConParams) -> float:
    """Forward `inputs.batch` asking for hidden states; back-propagate and return the loss."""
    labels = inputs.batch["labels"]
    if labels.ndim != 1:
        raise ConfigError(
            "strategy 'supcon' trains sequence classification only (one label per example)"
        )
    # The loop's forward keeps its autocast; output_hidden_states is a model keyword.
    outputs = inputs.forward({**inputs.batch, "output_hidden_states": True})
    loss = outputs.loss
    if params.lam > 0:
        embeddings = pool(
            outputs.hidden_states[-1], inputs.batch.get("attention_mask"), params.pooling
        )
        contrastive = supcon_loss(embeddings, labels, params.temperature)
        if contrastive is not None:
            loss = (1 - params.lam) * loss + params.lam * contrastive
    inputs.backward(loss)
    return float(loss.detach())


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None, pooling: Pooling) -> Any:
    """Sentence embeddings ``[B, H]`` from last-layer states ``[B, T, H]``, in fp32: the mean
    over real tokens (`attention_mask` 1), or the first token's state (BERT's [CLS])."""
    hidden = hidden.float()
    if pooling == "cls":
        return hidden[:, 0]
    if attention_mask is None:
        return hidden.mean(dim=1)
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)


def supcon_loss(embeddings: torch.Tensor, labels: torch.Tensor, temperature: float) -> Any:
    """The SupCon loss of a batch (see the module docstring), or None when no example has a
    positive. Rows labelled `IGNORE_INDEX` take no part; embeddings are L2-normalised here."""
    import torch
    import torch.nn.functional as F

    keep = labels != IGNORE_INDEX
    z = F.normalize(embeddings[keep].float(), dim=-1)
    labels = labels[keep]
    n = z.shape[0]
    is_self = torch.eye(n, dtype=torch.bool, device=z.device)
    positives = (labels[:, None] == labels[None, :]) & ~is_self
    counts = positives.sum(dim=1)
    anchors = counts > 0
    if not bool(anchors.any()):
        return None
    similarity = (z @ z.T / temperature).masked_fill(is_self, float("-inf"))
    # With an anchor there are >= 2 rows, so every row's logsumexp is finite.
    log_prob = similarity - torch.logsumexp(similarity, dim=1, keepdim=True)
    positive_sum = log_prob.masked_fill(~positives, 0.0).sum(dim=1)
    return -(positive_sum[anchors] / counts[anchors]).mean()
