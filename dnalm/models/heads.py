"""Prediction heads on pooled embeddings."""

from __future__ import annotations

import torch
from torch import nn


class LinearHead(nn.Module):
    """Dropout then one linear layer."""

    def __init__(self, hidden_size: int, num_outputs: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden_size, num_outputs))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.net(pooled)


class MLPHead(nn.Module):
    """A hidden layer with GELU between dropouts, then the output layer."""

    def __init__(self, hidden_size: int, num_outputs: int, dropout: float = 0.1, mlp_hidden: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(hidden_size, mlp_hidden), nn.GELU(),
            nn.Dropout(dropout), nn.Linear(mlp_hidden, num_outputs),
        )

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.net(pooled)


def make_head(kind: str, hidden_size: int, num_outputs: int, dropout: float, mlp_hidden: int) -> nn.Module:
    """Build a head by name (``linear`` or ``mlp``)."""
    if kind == "linear":
        return LinearHead(hidden_size, num_outputs, dropout)
    if kind == "mlp":
        return MLPHead(hidden_size, num_outputs, dropout, mlp_hidden)
    from dnalm.errors import ConfigError

    raise ConfigError(f"head.kind={kind!r} is unknown; choose 'linear', 'mlp' (or head=native for a checkpoint's own).")
