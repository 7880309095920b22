"""Turn per-token hidden states into one vector per sequence (padding never counts)."""

from __future__ import annotations

import torch
from torch import nn


class Pooling(nn.Module):
    """Base class: ``forward(hidden [B, T, H], mask [B, T]) -> [B, H]``."""

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError


class ClsPooling(Pooling):
    """The first token (``<cls>`` / ``[CLS]``)."""

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return hidden[:, 0]


class LastTokenPooling(Pooling):
    """The last non-padding token: what a causal (decoder-only) model has seen the whole sequence at.

    Works for right and left padding.
    """

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
        last = torch.where(mask.bool(), positions, -1).max(dim=1).values.clamp(min=0)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


class MeanPooling(Pooling):
    """Average over real tokens only."""

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class MaxPooling(Pooling):
    """Element-wise maximum over real tokens only."""

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        filled = hidden.masked_fill(~mask.bool().unsqueeze(-1), torch.finfo(hidden.dtype).min)
        return filled.max(dim=1).values


class AttentionPooling(Pooling):
    """A learned query scores each token; the softmax-weighted sum of real tokens is the embedding."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.score = nn.Linear(hidden_size, 1)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = self.score(hidden).squeeze(-1).float()
        scores = scores.masked_fill(~mask.bool(), float("-inf"))
        weights = torch.softmax(scores, dim=1).to(hidden.dtype)
        return torch.einsum("bt,bth->bh", weights, hidden)


POOLINGS = {"cls": ClsPooling, "mean": MeanPooling, "max": MaxPooling, "last": LastTokenPooling,
            "attention": AttentionPooling}


def make_pooling(kind: str, hidden_size: int, is_causal: bool) -> Pooling:
    """Build a pooling by name; ``auto`` means ``last`` for causal models and ``mean`` otherwise."""
    if kind == "auto":
        kind = "last" if is_causal else "mean"
    if kind not in POOLINGS:
        from dnalm.errors import ConfigError

        raise ConfigError(f"head.pooling={kind!r} is unknown; choose one of {sorted(POOLINGS)} or 'auto'.")
    cls = POOLINGS[kind]
    return cls(hidden_size) if cls is AttentionPooling else cls()
