"""What every adaptation strategy provides."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from dnalm.models.backbone import Backbone


class Strategy:
    """Prepares a backbone for training; subclasses set which parameters get gradients.

    The protocol the rest of dnalm relies on (a new strategy is a subclass + a YAML in ``conf/strategy/``):

    - ``name``: used in run names and metrics.
    - ``layer``: hidden-state layer to pool (-1 = last).
    - ``frozen``: the backbone has no trainable parameters (it then stays in eval mode).
    - ``cache``: a frozen backbone's pooled embeddings may be computed once and reused every epoch.
    - ``prepare(backbone)``: returns the module to train in place of ``backbone.model``.
    - ``validate_data(data_cfg)``: raises ``ConfigError`` for data options this strategy cannot honour;
      ``dnalm.train.build`` calls it before the module is made.
    """

    name: str = "base"
    layer: int = -1
    frozen: bool = False
    cache: bool = False

    def prepare(self, backbone: Backbone) -> nn.Module:
        """Return the module to train in place of ``backbone.model`` (possibly wrapped)."""
        raise NotImplementedError

    def validate_data(self, data_cfg: Mapping[str, Any]) -> None:
        """Raise ``ConfigError`` when ``data_cfg`` asks for something this strategy cannot do (default: accept all)."""


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
