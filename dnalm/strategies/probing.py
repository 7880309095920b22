"""Linear probing: a frozen backbone; embeddings from a chosen layer, computed once and cached."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from dnalm.errors import ConfigError
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

    def validate_data(self, data_cfg: Mapping[str, Any]) -> None:
        """Cached embeddings are fixed at their first pass, so per-epoch random data transforms cannot apply."""
        if not self.cache:
            return
        if data_cfg.get("rc_augment", 0.0):
            raise ConfigError("strategy=probing caches embeddings, so data.rc_augment must be 0 with it "
                              "(or set strategy.cache=false).")
        if data_cfg.get("train_long") == "random_crop":
            raise ConfigError("strategy=probing caches embeddings, so a random crop would be frozen at its first "
                              "draw: use data.train_long=center_crop or windows, or strategy.cache=false.")
