"""Linear probing: a frozen backbone; embeddings from a chosen layer, computed once and cached."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from dnalm.models.backbone import Backbone
from dnalm.strategies.base import Strategy, freeze


@dataclass
class Probing(Strategy):
    """Freeze the backbone; only pooling and head train.

    ``layer`` picks the hidden states (-1 = last layer, 0 = embeddings output); ``cache`` keeps each
    sequence's embedding after its first pass so later epochs skip the backbone.
    """

    name: str = "probing"
    layer: int = -1
    cache: bool = True
    frozen: bool = True

    def prepare(self, backbone: Backbone) -> nn.Module:
        freeze(backbone.model)
        backbone.model.eval()
        return backbone.model
