"""Partial unfreezing: only the last N transformer layers (and optionally the final norm) train."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from dnalm.errors import ConfigError
from dnalm.models.backbone import Backbone
from dnalm.strategies.base import Strategy, find_layers, freeze


@dataclass
class PartialUnfreezing(Strategy):
    """Freeze the backbone except its last ``num_layers`` blocks (and norms after them when ``train_final_norm``)."""

    name: str = "partial"
    num_layers: int = 2
    train_final_norm: bool = True

    def prepare(self, backbone: Backbone) -> nn.Module:
        model = backbone.model
        if not 0 < self.num_layers <= backbone.num_layers:
            raise ConfigError(f"strategy.num_layers={self.num_layers} must be between 1 and the backbone's "
                              f"{backbone.num_layers} layers.")
        freeze(model)
        layers = find_layers(model, backbone.num_layers)
        for block in list(layers)[-self.num_layers:]:
            for param in block.parameters():
                param.requires_grad_(True)
        if self.train_final_norm:
            self._unfreeze_final_norms(model, layers)
        return model

    @staticmethod
    def _unfreeze_final_norms(model: nn.Module, layers: nn.ModuleList) -> None:
        """Norm modules registered after the block list (e.g. ``emb_layer_norm_after``, ``norm``)."""
        names = [name for name, _ in model.named_modules()]
        layer_name = next(name for name, module in model.named_modules() if module is layers)
        after = names[names.index(layer_name) + 1:]
        for name, module in model.named_modules():
            if name in after and not name.startswith(layer_name + ".") and "norm" in type(module).__name__.lower():
                for param in module.parameters():
                    param.requires_grad_(True)
