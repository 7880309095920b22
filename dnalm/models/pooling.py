"""Turn per-token hidden states into one vector per sequence (padding never counts).

Each pooling has a config in ``conf/head/pooling/`` (``_target_`` + ``_partial_: true``); :func:`build_pooling`
calls it with ``hidden_size`` and ``is_causal`` where its signature takes them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dnalm.errors import ConfigError
from dnalm.models.components import as_spec, build


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


def auto_pooling(hidden_size: int, is_causal: bool) -> Pooling:
    """``last`` for causal models (the one token that has seen the whole sequence), ``mean`` otherwise."""
    return LastTokenPooling() if is_causal else MeanPooling()


def suggested_pooling(hidden_size: int, is_causal: bool, name: str = "auto") -> nn.Module:
    """The pooling a model config suggests (``model.pooling``, a name in ``conf/head/pooling/``), else ``auto``."""
    return build_pooling(name or "auto", hidden_size, is_causal)


def build_pooling(spec: Any, hidden_size: int, is_causal: bool) -> nn.Module:
    """A pooling from its config (a ``_target_`` node) or a name of ``conf/head/pooling/`` (``mean``, ``auto``, ...)."""
    pooling = build(as_spec(spec, "head/pooling", "head.pooling"), "head.pooling", hidden_size=hidden_size,
                    is_causal=is_causal)
    if not isinstance(pooling, nn.Module):
        raise ConfigError(f"head.pooling built a {type(pooling).__name__}, not a torch module with "
                          "forward(hidden, mask); see docs/extending.md.")
    return pooling
