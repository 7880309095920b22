"""Full fine-tuning: every backbone parameter trains."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from dnalm.models.backbone import Backbone
from dnalm.strategies.base import Strategy


@dataclass
class FullFineTuning(Strategy):
    """Train all backbone parameters (and the head)."""

    name: str = "full"

    def prepare(self, backbone: Backbone) -> nn.Module:
        for param in backbone.model.parameters():
            param.requires_grad_(True)
        return backbone.model
