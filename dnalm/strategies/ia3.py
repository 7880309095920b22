"""(IA)^3 through PEFT: learned vectors that rescale keys, values and feed-forward activations."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from dnalm.errors import ConfigError
from dnalm.models.backbone import Backbone
from dnalm.strategies.base import Strategy
from dnalm.strategies.lora import check_targets


@dataclass
class IA3(Strategy):
    """Infused adapter by inhibiting and amplifying inner activations (Liu et al. 2022).

    ``target_modules`` defaults to PEFT's table for the architecture, else to the model config's LoRA
    targets (attention projections); ``feedforward_modules`` (a subset of the targets, scaled at their input
    instead of their output) defaults to PEFT's table, else none.
    """

    name: str = "ia3"
    target_modules: list[str] | None = None
    feedforward_modules: list[str] | None = None
    modules_to_save: list[str] = field(default_factory=list)

    def prepare(self, backbone: Backbone) -> nn.Module:
        from peft import IA3Config, get_peft_model

        targets, feedforward = self._targets(backbone)
        check_targets(backbone, targets)
        extra = sorted(set(feedforward) - set(targets))
        if extra:
            raise ConfigError(f"strategy.feedforward_modules {extra} are not in strategy.target_modules {targets}; "
                              "every feed-forward module must also be a target.")
        config = IA3Config(target_modules=targets, feedforward_modules=feedforward,
                           modules_to_save=list(self.modules_to_save) or None)
        return get_peft_model(backbone.model, config)

    def _targets(self, backbone: Backbone) -> tuple[list[str], list[str]]:
        from peft.utils.constants import (
            TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING as peft_feedforward,
        )
        from peft.utils.constants import TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as peft_targets

        table = peft_targets.get(backbone.model_type)
        targets = list(self.target_modules or table or backbone.lora_targets)
        if not targets:
            raise ConfigError(f"no default IA3 target modules are known for model_type={backbone.model_type!r}; "
                              "set strategy.target_modules=[...] (names of linear layers in the backbone).")
        if self.feedforward_modules is not None:
            return targets, list(self.feedforward_modules)
        default_ff = peft_feedforward.get(backbone.model_type) or []
        return targets, [m for m in default_ff if m in targets]
