"""An exponential moving average (EMA) of a model's trainable weights.

Imports torch at module level: import it lazily, from code that trains.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


class WeightAverage:
    """Keeps ``ema = d * ema + (1 - d) * weights`` after every `update`.

    The decay `d` is ``min(decay, (1 + n) / (10 + n))`` after `n` updates, so the average
    follows the weights closely early on instead of staying near the starting point (the
    schedule of TensorFlow's ExponentialMovingAverage with `num_updates`).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.average = [p.detach().clone() for p in self.params]

    def current_decay(self) -> float:
        """The decay the next `update` uses."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        """Move the average towards the current weights."""
        weight = 1.0 - self.current_decay()
        for average, param in zip(self.average, self.params, strict=True):
            average.lerp_(param.detach(), weight)
        self.updates += 1

    @torch.no_grad()
    def copy_to_model(self) -> None:
        """Overwrite the weights with the average."""
        for average, param in zip(self.average, self.params, strict=True):
            param.copy_(average)

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """Hold the averaged weights in the model inside the block, the trained ones after."""
        with torch.no_grad():
            trained = [p.detach().clone() for p in self.params]
        self.copy_to_model()
        try:
            yield
        finally:
            with torch.no_grad():
                for saved, param in zip(trained, self.params, strict=True):
                    param.copy_(saved)
