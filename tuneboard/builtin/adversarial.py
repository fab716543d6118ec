"""The adversarial and regularising training-step strategies: FGM, PGD, FreeLB and R-Drop.

Perturbations are added to the *output* of the embedding module by a forward hook that is
removed as soon as the pass is done. The weights themselves are never touched, so nothing has
to be restored, the perturbation is computed from this micro-batch's gradient alone (not one
accumulated over a gradient-accumulation group), and it works when the embeddings do not
train (head-only, top-k, LoRA). Each perturbation is scaled per example, by the L2 norm over
that example's real (unpadded) tokens. torch is imported inside the work, so loading the
plugins stays cheap.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from tuneboard import IGNORE_INDEX, ConfigError, Strategy, TrainStep, param

if TYPE_CHECKING:
    import torch
    from torch import nn

EMBEDDING_HELP = "Part of the name of the embedding module whose output is perturbed"


class _AttackParams(Protocol):
    embedding: str


A = TypeVar("A", bound=_AttackParams)


class _EmbeddingAttack(Strategy[A]):
    """Shared set-up of the strategies that perturb the embeddings."""

    perturbation: EmbeddingPerturbation

    def setup(self, model: Any) -> None:
        """Find the embedding module to perturb (a `ConfigError` when the name fits none)."""
        self.perturbation = EmbeddingPerturbation(find_embedding(model, self.params.embedding))


@dataclass
class FgmParams:
    """Parameters of the `fgm` strategy."""

    epsilon: float = param(
        1.0, "L2 norm of each example's perturbation of the embeddings", min=0, max=100
    )
    embedding: str = param("word_embeddings", EMBEDDING_HELP)


class FgmStrategy(_EmbeddingAttack[FgmParams]):
    """Fast Gradient Method (Miyato et al.): one extra pass with the embeddings moved by
    `epsilon` along the loss gradient; the clean and adversarial gradients add up."""

    name = "fgm"
    Params = FgmParams
    description = (
        "Adversarial training (FGM): add the gradients of a loss-increasing embedding step"
    )

    def step(self, inputs: TrainStep) -> float:
        """Clean and adversarial passes; return the clean loss."""
        return fgm_step(inputs, self.perturbation, self.params.epsilon)


@dataclass
class PgdParams:
    """Parameters of the `pgd` strategy."""

    epsilon: float = param(
        1.0, "Radius (L2, per example) the perturbation stays within", min=0, max=100
    )
    alpha: float = param(0.3, "Size of each ascent step of the perturbation", min=0, max=100)
    steps: int = param(3, "Ascent steps; the last one's gradients are added", min=1, max=100)
    embedding: str = param("word_embeddings", EMBEDDING_HELP)


class PgdStrategy(_EmbeddingAttack[PgdParams]):
    """Projected Gradient Descent (Madry et al.): several projected ascent steps on the
    embedding perturbation; the clean gradients plus those at the last step."""

    name = "pgd"
    Params = PgdParams
    description = (
        "Adversarial training (PGD): several projected steps on the embedding perturbation"
    )

    def step(self, inputs: TrainStep) -> float:
        """Clean pass, ascent steps, adversarial pass; return the clean loss."""
        p = self.params
        return pgd_step(inputs, self.perturbation, p.epsilon, p.alpha, p.steps)


@dataclass
class FreelbParams:
    """Parameters of the `freelb` strategy."""

    adv_init_mag: float = param(
        0.05,
        "L2 norm (about, per example) of the random starting perturbation (0 = none)",
        min=0,
        max=100,
    )
    adv_lr: float = param(0.1, "Size of each ascent step of the perturbation", min=0, max=100)
    adv_steps: int = param(
        3, "Passes per micro-batch; their gradients are averaged", min=1, max=100
    )
    max_norm: float = param(
        0.0,
        "Radius (L2, per example) the perturbation stays within (0 = no limit)",
        min=0,
        max=1_000_000,
    )
    embedding: str = param("word_embeddings", EMBEDDING_HELP)


class FreelbStrategy(_EmbeddingAttack[FreelbParams]):
    """FreeLB (Zhu et al.): `adv_steps` passes along an ascending embedding perturbation,
    averaging the gradients of all of them."""

    name = "freelb"
    Params = FreelbParams
    description = "Adversarial training (FreeLB): average the gradients along several ascent steps"

    def step(self, inputs: TrainStep) -> float:
        """Run the passes; return their mean loss."""
        p = self.params
        return freelb_step(
            inputs, self.perturbation, p.adv_init_mag, p.adv_lr, p.adv_steps, p.max_norm
        )


@dataclass
class RdropParams:
    """Parameters of the `rdrop` strategy."""

    alpha: float = param(
        1.0,
        "Weight of the symmetric KL between the two dropout passes' predictions",
        min=0,
        max=100,
    )


class RdropStrategy(Strategy[RdropParams]):
    """R-Drop (Liang et al.): two passes with different dropout masks; their mean loss plus
    `alpha` times the symmetric KL divergence of their predictions. Needs dropout > 0."""

    name = "rdrop"
    Params = RdropParams
    description = "Regularised training (R-Drop): keep two dropout passes' predictions close"

    def step(self, inputs: TrainStep) -> float:
        """Two passes; return their mean loss (without the KL term)."""
        return rdrop_step(inputs, self.params.alpha)


# --- the work -----------------------------------------------------------------------------


def find_embedding(model: nn.Module, pattern: str) -> nn.Embedding:
    """The one `nn.Embedding` of `model` whose dotted name contains `pattern`."""
    from torch import nn

    embeddings = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Embedding)]
    matches = [(n, m) for n, m in embeddings if pattern in n]
    if len(matches) == 1:
        return matches[0][1]
    names = ", ".join(n for n, _ in (matches or embeddings)) or "none"
    if matches:
        raise ConfigError(
            f"embedding {pattern!r} matches {len(matches)} embedding modules ({names}); "
            "give a longer part of one name"
        )
    raise ConfigError(f"embedding {pattern!r} matches no embedding module; the model has: {names}")


class EmbeddingPerturbation:
    """Adds a perturbation to an embedding module's output while a pass is `active`."""

    def __init__(self, module: nn.Embedding) -> None:

        self.module = module
        self.delta: torch.Tensor | None = None

    @contextlib.contextmanager
    def active(self, delta: torch.Tensor | None) -> Iterator[None]:
        """Add `delta` to the module's output during the passes run inside; with None, add a
        zero tensor that requires grad (created at the forward), so that after backward
        ``self.delta.grad`` is the gradient of the loss with respect to the embeddings."""
        self.delta = delta
        handle = self.module.register_forward_hook(self._add)
        try:
            yield
        finally:
            handle.remove()

    def _add(self, module: nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
        import torch

        if self.delta is None:
            self.delta = torch.zeros_like(output, requires_grad=True)
        return output + self.delta.to(output.dtype)

    def shape(self, batch: dict[str, Any]) -> tuple[int, ...]:
        """The shape of the module's output for `batch`."""
        return (*batch["input_ids"].shape, self.module.embedding_dim)


def _token_mask(batch: dict[str, Any], like: torch.Tensor) -> torch.Tensor:
    """1 on real tokens, 0 on padding, shaped to broadcast over the embedding dimension."""
    import torch

    mask: torch.Tensor | None = batch.get("attention_mask")
    if mask is None:
        return torch.ones((*like.shape[:-1], 1), device=like.device, dtype=like.dtype)
    return mask.unsqueeze(-1).to(like.dtype)


def _per_example_norm(values: torch.Tensor) -> torch.Tensor:

    shape = (values.shape[0],) + (1,) * (values.ndim - 1)
    norm: torch.Tensor = values.flatten(1).norm(dim=1)
    return norm.view(shape)


def unit_direction(grad: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`grad` on real tokens, scaled to L2 norm 1 per example; 0 where it is not finite."""
    import torch

    grad = torch.where(torch.isfinite(grad), grad, torch.zeros_like(grad)) * mask
    return grad / _per_example_norm(grad).clamp_min(1e-12)


def project(delta: torch.Tensor, radius: float) -> torch.Tensor:
    """`delta` scaled back, example by example, into the L2 ball of `radius`."""
    import torch

    norm = _per_example_norm(delta)
    return delta * torch.where(norm > radius, radius / norm.clamp_min(1e-12), torch.ones_like(norm))


def _clean_pass(inputs: TrainStep, hook: EmbeddingPerturbation) -> tuple[float, torch.Tensor]:
    """Forward and backward without perturbation; the loss and the embeddings' gradient."""
    import torch

    with hook.active(None):
        loss = inputs.forward(inputs.batch).loss
        inputs.backward(loss)
    assert hook.delta is not None
    grad = hook.delta.grad if hook.delta.grad is not None else torch.zeros_like(hook.delta)
    return float(loss.detach()), grad.detach()


def fgm_step(inputs: TrainStep, hook: EmbeddingPerturbation, epsilon: float) -> float:
    """FGM: gradients of the clean loss plus those of the loss at ``epsilon`` along the
    normalised embedding gradient. Returns the clean loss."""
    loss, grad = _clean_pass(inputs, hook)
    delta = epsilon * unit_direction(grad, _token_mask(inputs.batch, grad))
    with hook.active(delta):
        inputs.backward(inputs.forward(inputs.batch).loss)
    return loss


def pgd_step(
    inputs: TrainStep, hook: EmbeddingPerturbation, epsilon: float, alpha: float, steps: int
) -> float:
    """PGD: `steps` ascent steps of size `alpha`, each projected into the `epsilon` ball;
    gradients of the clean loss plus those of the loss at the last perturbation. Returns the
    clean loss."""
    import torch

    loss, grad = _clean_pass(inputs, hook)
    mask = _token_mask(inputs.batch, grad)
    delta = torch.zeros_like(grad)
    for k in range(steps):
        delta = project(delta + alpha * unit_direction(grad, mask), epsilon)
        last = k == steps - 1
        leaf = delta.detach().requires_grad_(not last)
        with hook.active(leaf):
            adv_loss = inputs.forward(inputs.batch).loss
            if last:
                inputs.backward(adv_loss)
            else:  # the inner steps only move the perturbation: no parameter gradients
                (grad,) = torch.autograd.grad(adv_loss, leaf)
    return loss


def freelb_step(
    inputs: TrainStep,
    hook: EmbeddingPerturbation,
    init_mag: float,
    adv_lr: float,
    adv_steps: int,
    max_norm: float,
) -> float:
    """FreeLB: `adv_steps` passes, each adding its gradients (weighted 1/`adv_steps`) and then
    moving the perturbation by `adv_lr` along its normalised gradient (projected into
    `max_norm` when > 0). Starts from uniform noise of L2 norm about `init_mag`. Returns the
    mean loss over the passes."""
    import torch

    device = inputs.batch["input_ids"].device
    delta = torch.zeros(hook.shape(inputs.batch), device=device)
    mask = _token_mask(inputs.batch, delta)
    if init_mag > 0:
        dims = mask.sum(dim=(1, 2), keepdim=True) * delta.shape[-1]
        delta = (torch.rand_like(delta) * 2 - 1) * mask * (init_mag / dims.clamp_min(1).sqrt())
    total = 0.0
    for k in range(adv_steps):
        leaf = delta.detach().requires_grad_()
        with hook.active(leaf):
            loss = inputs.forward(inputs.batch).loss / adv_steps
            inputs.backward(loss)
        total += float(loss.detach())
        if k == adv_steps - 1:
            break
        grad = leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)
        delta = leaf.detach() + adv_lr * unit_direction(grad, mask)
        if max_norm > 0:
            delta = project(delta, max_norm)
    return total


def symmetric_kl(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """The mean over rows of (KL(a||b) + KL(b||a)) / 2 of two batches of logits."""
    import torch.nn.functional as F

    log_a = F.log_softmax(logits_a.float(), dim=-1)
    log_b = F.log_softmax(logits_b.float(), dim=-1)
    forward = F.kl_div(log_b, log_a, log_target=True, reduction="batchmean")
    backward = F.kl_div(log_a, log_b, log_target=True, reduction="batchmean")
    return 0.5 * (forward + backward)


def rdrop_step(inputs: TrainStep, alpha: float) -> float:
    """R-Drop: two forward passes (different dropout), loss = their mean loss + `alpha` ×
    their symmetric KL (over labelled tokens, for token classification). Returns the mean
    loss of the two passes, without the KL term."""
    first = inputs.forward(inputs.batch)
    second = inputs.forward(inputs.batch)
    loss = 0.5 * (first.loss + second.loss)
    logits_a, logits_b = first.logits, second.logits
    labels = inputs.batch.get("labels")
    if logits_a.ndim == 3 and labels is not None:
        keep = labels != IGNORE_INDEX
        logits_a, logits_b = logits_a[keep], logits_b[keep]
    kl = symmetric_kl(logits_a, logits_b) if logits_a.shape[0] else loss.new_zeros(())
    inputs.backward(loss + alpha * kl)
    return float(loss.detach())
