"""LoRA through PEFT: low-rank adapters on chosen projections, optionally with whole modules trained."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from dnalm.errors import ConfigError
from dnalm.models.backbone import Backbone
from dnalm.strategies.base import Strategy


@dataclass
class LoRA(Strategy):
    """Low-rank adaptation.

    ``target_modules`` defaults to the architecture's attention projections (from the model config group or
    PEFT's table); ``modules_to_save`` names backbone modules trained in full beside the adapters (the thesis
    trained the ``intermediate`` feed-forward layers this way).
    """

    name: str = "lora"
    r: int = 8
    alpha: int = 16
    dropout: float = 0.1
    target_modules: list[str] | None = None
    modules_to_save: list[str] = field(default_factory=list)
    bias: str = "none"

    def prepare(self, backbone: Backbone) -> nn.Module:
        from peft import LoraConfig, get_peft_model

        targets = list(self.target_modules or backbone.lora_targets)
        if not targets:
            raise ConfigError(f"no default LoRA target modules are known for model_type={backbone.model_type!r}; "
                              "set strategy.target_modules=[...] (names of linear layers in the backbone).")
        check_targets(backbone, targets)
        config = LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout, target_modules=targets,
                            modules_to_save=list(self.modules_to_save) or None, bias=self.bias,
                            # the family's own head (head=native) must train and be saved beside the adapters:
                            # SEQ_CLS makes PEFT add it (classifier/score) to modules_to_save
                            task_type="SEQ_CLS" if backbone.native_head else None)
        return get_peft_model(backbone.model, config)


def check_targets(backbone: Backbone, targets: list[str]) -> None:
    """Raise ``ConfigError`` naming the targets that match no module (and some linear layers that exist)."""
    names = {name for name, _ in backbone.model.named_modules()}
    missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if missing:
        raise ConfigError(f"strategy.target_modules {missing} match no module of {backbone.name}; "
                          f"linear layers it has include: {sorted(_linear_names(backbone.model))[:12]}")


def _linear_names(model: nn.Module) -> set[str]:
    return {name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, nn.Linear)}
