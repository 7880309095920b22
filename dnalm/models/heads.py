"""Prediction heads on pooled embeddings.

Each head has a config in ``conf/head/`` (``_target_`` + ``_partial_: true``); :func:`build_head` calls it with
``hidden_size`` and ``num_outputs``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dnalm.errors import ConfigError
from dnalm.models.components import as_spec, build


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


# Keys of a head config that dnalm reads itself; the others are the head class's keyword arguments.
HEAD_KEYS = ("pooling", "lr", "native")


def build_head(head_cfg: Any, hidden_size: int, num_outputs: int) -> nn.Module:
    """The head a config names by ``_target_`` (``conf/head/*.yaml``), given ``hidden_size`` and ``num_outputs``."""
    head = build(as_spec(head_cfg, "head", "head"), "head", ignore=HEAD_KEYS, hidden_size=hidden_size,
                 num_outputs=num_outputs)
    if not isinstance(head, nn.Module):
        raise ConfigError(f"head built a {type(head).__name__}, not a torch module mapping (batch, hidden) to "
                          "(batch, outputs); see docs/extending.md.")
    return head
