"""The built-in training-step strategies: `standard` here, and registration of all of them
(the adversarial and regularising FGM, PGD, FreeLB and R-Drop are in
`tuneboard.builtin.adversarial`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tuneboard import NoParams, Strategy, TrainStep, hookimpl
from tuneboard.builtin.adversarial import FgmStrategy, FreelbStrategy, PgdStrategy, RdropStrategy


class StandardStrategy(Strategy[NoParams]):
    """Forward the batch, back-propagate its loss, return the loss."""

    name = "standard"
    Params = NoParams
    description = "Plain training step: forward, then backward of the model's loss"

    def step(self, inputs: TrainStep) -> Any:
        """Compute gradients for one micro-batch and return its loss (a tensor on the device:
        reading it here would make the host wait for the device)."""
        loss = inputs.forward(inputs.batch).loss
        inputs.backward(loss)
        return loss.detach()


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
