"""Networks a strategy names by import path in the torch model's tests."""

from __future__ import annotations

import torch
from torch import nn


class TinyNet(nn.Module):
    """A linear map of the window's last row, then ``width`` hidden units."""

    def __init__(self, n_features: int, window: int, outputs: int, width: int = 4) -> None:
        super().__init__()
        self.hidden = nn.Linear(n_features, width)
        self.out = nn.Linear(width, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.out(torch.tanh(self.hidden(x[:, -1])))
        return out


class NeedsDepth(nn.Module):
    """A module with a parameter that has no default."""

    def __init__(self, n_features: int, window: int, outputs: int, depth: int) -> None:
        super().__init__()
        self.out = nn.Linear(n_features, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.out(x[:, -1])
        return out


class WrongShape(nn.Module):
    """Answers one value per window and feature: not (batch, outputs)."""

    def __init__(self, n_features: int, window: int, outputs: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = x[:, -1] * self.scale
        return out


class ShapeLast(nn.Module):
    """Takes its shape arguments in another order."""

    def __init__(self, window: int, n_features: int, outputs: int) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, -1, :1]
