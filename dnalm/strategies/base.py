"""What every adaptation strategy provides."""

from __future__ import annotations

from torch import nn

from dnalm.models.backbone import Backbone


class Strategy:
    """Prepares a backbone for training; subclasses set which parameters get gradients.

    Attributes read by the LightningModule:
    ``name`` (for run names and metrics), ``layer`` (hidden-state layer to pool, -1 = last),
    ``frozen`` (backbone has no trainable parameters, so its outputs can be cached).
    """

    name: str = "base"
    layer: int = -1
    frozen: bool = False

    def prepare(self, backbone: Backbone) -> nn.Module:
        """Return the module to train in place of ``backbone.model`` (possibly wrapped)."""
        raise NotImplementedError


def freeze(module: nn.Module) -> None:
    """Turn gradients off for every parameter of ``module``."""
    for param in module.parameters():
        param.requires_grad_(False)


def find_layers(model: nn.Module, num_layers: int) -> nn.ModuleList:
    """The transformer block list: the largest ``ModuleList`` with ``num_layers`` entries."""
    candidates = [m for m in model.modules() if isinstance(m, nn.ModuleList) and len(m) == num_layers]
    if not candidates:
        from dnalm.errors import ConfigError

        raise ConfigError(f"could not find the {num_layers} transformer layers of this backbone; "
                          "use strategy=lora or strategy=full instead of strategy=partial.")
    return max(candidates, key=lambda m: sum(p.numel() for p in m.parameters()))
