"""The ``torch`` model's built-in networks, each a ``torch.nn.Module`` over a window of rows.

Every network takes ``(batch, window, features)`` float32 tensors and returns
``(batch, outputs)``: one output (the logit of an up move, or the scaled forward return)
or three (the logits of down, flat, up). Its constructor takes the shape first
(``n_features``, ``window``, ``outputs``), then its own parameters, the keys of its
params model in `tradeloom.plugins.model.torch_networks`; a user's module follows the
same convention. Each reads the window's last step for its answer: the bar being
predicted, with the rows before it as its context.

This module imports torch: `tradeloom.plugins.model.torch_networks` declares the
networks without it, and imports this one when a network is built.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "GRUNetwork",
    "LSTMNetwork",
    "MLPNetwork",
    "TCNNetwork",
    "TransformerNetwork",
]

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


class MLPNetwork(nn.Module):
    """A multilayer perceptron over the flattened window.

    Args:
        n_features: Feature columns per row.
        window: Rows per window.
        outputs: Outputs of the last layer.
        hidden: Units per hidden layer.
        layers: Hidden layers.
        dropout: Dropout after each hidden layer (training only).
        activation: ``relu``, ``gelu`` or ``tanh``.
    """

    def __init__(
        self,
        n_features: int,
        window: int,
        outputs: int,
        hidden: int = 64,
        layers: int = 2,
        dropout: float = 0.0,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        parts: list[nn.Module] = [nn.Flatten()]
        width = n_features * window
        for _ in range(layers):
            parts += [nn.Linear(width, hidden), _ACTIVATIONS[activation]()]
            if dropout > 0:
                parts.append(nn.Dropout(dropout))
            width = hidden
        parts.append(nn.Linear(width, outputs))
        self.net = nn.Sequential(*parts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``(batch, outputs)`` for ``(batch, window, features)``."""
        out: torch.Tensor = self.net(x)
        return out


class _Recurrent(nn.Module):
    cell: type[nn.LSTM] | type[nn.GRU]

    def __init__(
        self,
        n_features: int,
        window: int,
        outputs: int,
        hidden: int = 32,
        layers: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.rnn = self.cell(
            n_features, hidden, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0
        )
        self.head = nn.Linear(hidden, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``(batch, outputs)`` for ``(batch, window, features)``: the head of the
        last step's hidden state."""
        states, _ = self.rnn(x)
        out: torch.Tensor = self.head(states[:, -1])
        return out


class LSTMNetwork(_Recurrent):
    """An LSTM over the window; a linear head on the last step's hidden state.

    Args:
        n_features: Feature columns per row.
        window: Rows per window.
        outputs: Outputs of the head.
        hidden: Units of the hidden state.
        layers: Stacked LSTM layers.
        dropout: Dropout between stacked layers (training only; none with one layer).
    """

    cell = nn.LSTM


class GRUNetwork(_Recurrent):
    """A GRU over the window; a linear head on the last step's hidden state.

    Args:
        n_features: Feature columns per row.
        window: Rows per window.
        outputs: Outputs of the head.
        hidden: Units of the hidden state.
        layers: Stacked GRU layers.
        dropout: Dropout between stacked layers (training only; none with one layer).
    """

    cell = nn.GRU


class _CausalBlock(nn.Module):
    """A dilated causal convolution with a residual connection (Bai et al., 2018)."""

    def __init__(
        self, inputs: int, channels: int, kernel_size: int, dilation: int, dropout: float
    ) -> None:
        super().__init__()
        self.pad = nn.ConstantPad1d(((kernel_size - 1) * dilation, 0), 0.0)
        self.conv = nn.Conv1d(inputs, channels, kernel_size, dilation=dilation)
        self.act = nn.ReLU()
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.skip = nn.Conv1d(inputs, channels, 1) if inputs != channels else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.drop(self.act(self.conv(self.pad(x)))) + self.skip(x)
        return out


class TCNNetwork(nn.Module):
    """A temporal convolutional network: causal convolutions dilated 1, 2, 4, ... per level.

    The last step sees ``1 + (kernel_size - 1) * (2 ** levels - 1)`` rows; a longer
    window adds nothing to it.

    Args:
        n_features: Feature columns per row.
        window: Rows per window.
        outputs: Outputs of the head.
        channels: Channels of every level.
        kernel_size: Taps of each convolution.
        levels: Levels, the i-th dilated by 2 ** i.
        dropout: Dropout after each level (training only).
    """

    def __init__(
        self,
        n_features: int,
        window: int,
        outputs: int,
        channels: int = 32,
        kernel_size: int = 3,
        levels: int = 3,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        blocks = [
            _CausalBlock(n_features if i == 0 else channels, channels, kernel_size, 2**i, dropout)
            for i in range(levels)
        ]
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(channels, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``(batch, outputs)`` for ``(batch, window, features)``."""
        states = self.blocks(x.transpose(1, 2))
        out: torch.Tensor = self.head(states[:, :, -1])
        return out


class TransformerNetwork(nn.Module):
    """A small Transformer encoder over the window, a learnt position per row; a linear
    head on the last row's encoding.

    Args:
        n_features: Feature columns per row.
        window: Rows per window.
        outputs: Outputs of the head.
        d_model: Width of each row's encoding.
        heads: Attention heads (``d_model`` must be a multiple).
        layers: Encoder layers.
        feedforward: Width of each layer's feed-forward part.
        dropout: Dropout inside the layers (training only).
    """

    def __init__(
        self,
        n_features: int,
        window: int,
        outputs: int,
        d_model: int = 32,
        heads: int = 4,
        layers: int = 2,
        feedforward: int = 64,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.embed = nn.Linear(n_features, d_model)
        self.position = nn.Parameter(torch.zeros(window, d_model))
        layer = nn.TransformerEncoderLayer(d_model, heads, feedforward, dropout, batch_first=True)
        # no nested tensors: every window is full, and the plain path is the one a
        # batch and a single window both take
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``(batch, outputs)`` for ``(batch, window, features)``."""
        encoded = self.encoder(self.embed(x) + self.position)
        out: torch.Tensor = self.head(encoded[:, -1])
        return out
