"""The built-in training-step strategies: standard, and the adversarial and regularising
FGM, PGD, FreeLB and R-Drop.

Only parameter declarations and registration live here, so loading plugins stays fast; the
torch work is in `tuneboard.builtin.adversarial`, imported in `setup()`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from tuneboard import NoParams, Strategy, TrainStep, hookimpl, param

if TYPE_CHECKING:
    from tuneboard.builtin.adversarial import EmbeddingPerturbation

EMBEDDING_HELP = "Part of the name of the embedding module whose output is perturbed"


class StandardStrategy(Strategy[NoParams]):
    """Forward the batch, back-propagate its loss, return the loss."""

    name = "standard"
    Params = NoParams
    description = "Plain training step: forward, then backward of the model's loss"

    def step(self, inputs: TrainStep) -> float:
        """Compute gradients for one micro-batch and return its loss."""
        loss = inputs.forward(inputs.batch).loss
        inputs.backward(loss)
        return float(loss.detach())


class _AttackParams(Protocol):
    embedding: str


A = TypeVar("A", bound=_AttackParams)


class _EmbeddingAttack(Strategy[A]):
    """Shared set-up of the strategies that perturb the embeddings."""

    perturbation: EmbeddingPerturbation

    def setup(self, model: Any) -> None:
        """Find the embedding module to perturb (a `ConfigError` when the name fits none)."""
        from tuneboard.builtin.adversarial import EmbeddingPerturbation, find_embedding

        self.perturbation = EmbeddingPerturbation(find_embedding(model, self.params.embedding))


@dataclass
class FgmParams:
    """Parameters of the `fgm` strategy."""

    epsilon: float = param(1.0, "L2 norm of each example's perturbation of the embeddings", min=0)
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
        from tuneboard.builtin.adversarial import fgm_step

        return fgm_step(inputs, self.perturbation, self.params.epsilon)


@dataclass
class PgdParams:
    """Parameters of the `pgd` strategy."""

    epsilon: float = param(1.0, "Radius (L2, per example) the perturbation stays within", min=0)
    alpha: float = param(0.3, "Size of each ascent step of the perturbation", min=0)
    steps: int = param(3, "Ascent steps; the last one's gradients are added", min=1)
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
        from tuneboard.builtin.adversarial import pgd_step

        p = self.params
        return pgd_step(inputs, self.perturbation, p.epsilon, p.alpha, p.steps)


@dataclass
class FreelbParams:
    """Parameters of the `freelb` strategy."""

    adv_init_mag: float = param(
        0.05, "L2 norm (about, per example) of the random starting perturbation (0 = none)", min=0
    )
    adv_lr: float = param(0.1, "Size of each ascent step of the perturbation", min=0)
    adv_steps: int = param(3, "Passes per micro-batch; their gradients are averaged", min=1)
    max_norm: float = param(
        0.0, "Radius (L2, per example) the perturbation stays within (0 = no limit)", min=0
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
        from tuneboard.builtin.adversarial import freelb_step

        p = self.params
        return freelb_step(
            inputs, self.perturbation, p.adv_init_mag, p.adv_lr, p.adv_steps, p.max_norm
        )


@dataclass
class RdropParams:
    """Parameters of the `rdrop` strategy."""

    alpha: float = param(
        1.0, "Weight of the symmetric KL between the two dropout passes' predictions", min=0
    )


class RdropStrategy(Strategy[RdropParams]):
    """R-Drop (Liang et al.): two passes with different dropout masks; their mean loss plus
    `alpha` times the symmetric KL divergence of their predictions. Needs dropout > 0."""

    name = "rdrop"
    Params = RdropParams
    description = "Regularised training (R-Drop): keep two dropout passes' predictions close"

    def step(self, inputs: TrainStep) -> float:
        """Two passes; return their mean loss (without the KL term)."""
        from tuneboard.builtin.adversarial import rdrop_step

        return rdrop_step(inputs, self.params.alpha)


BUILTIN_STRATEGIES: tuple[type[Strategy[Any]], ...] = (
    StandardStrategy,
    FgmStrategy,
    PgdStrategy,
    FreelbStrategy,
    RdropStrategy,
)


@hookimpl
def register_strategies(register: Callable[[type[Any]], None]) -> None:
    """Register the built-in strategies."""
    for strategy in BUILTIN_STRATEGIES:
        register(strategy)
