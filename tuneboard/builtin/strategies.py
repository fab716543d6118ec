"""The built-in training-step strategy: one forward and one backward pass per micro-batch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tuneboard.api import NoParams, Strategy, TrainStep
from tuneboard.hookspecs import hookimpl


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


@hookimpl
def register_strategies(register: Callable[[type[Any]], None]) -> None:
    """Register the built-in strategies."""
    register(StandardStrategy)
