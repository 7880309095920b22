"""The optimiser and learning-rate schedule of fine-tuning and pre-training, from ``conf/optim/``.

``optim`` names the optimiser class by ``_target_`` (``conf/optim/adamw.yaml``, ``sgd.yaml``, ...) beside the
keys dnalm reads itself (:data:`OPTIM_KEYS`); ``optim.scheduler`` names the schedule the same way
(``conf/optim/scheduler/linear.yaml``, ``cosine.yaml``, ``constant.yaml``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from dnalm.errors import ConfigError
from dnalm.models.components import as_spec, build

# Keys of the optim config that dnalm reads itself; the others are the optimiser class's keyword arguments.
# ``fused`` is passed on (resolved: null means "wherever the kernel exists") only where the config has it.
OPTIM_KEYS = ("scheduler", "warmup_ratio", "warmup_steps", "packed_dropout", "fused")


def make_optimizer(opt: Mapping[str, Any], groups: list[dict[str, Any]], fused: bool | None = None
                   ) -> torch.optim.Optimizer:
    """The optimiser ``opt`` names over parameter ``groups``; ``optim.lr`` / ``weight_decay`` are the defaults of
    groups that set none. ``fused`` goes to the class only when its config has a ``fused`` key (AdamW)."""
    spec = as_spec(opt, "optim", "optim")
    runtime: dict[str, Any] = {"params": [g for g in groups if g["params"]], "lr": float(spec["lr"])}
    if spec.get("weight_decay") is not None:
        runtime["weight_decay"] = float(spec["weight_decay"])
    if "fused" in spec:
        runtime["fused"] = fused or None
    optimizer = build(spec, "optim", ignore=OPTIM_KEYS + ("lr", "weight_decay"), **runtime)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ConfigError(f"optim built a {type(optimizer).__name__}, not a torch.optim.Optimizer; "
                          "see docs/extending.md.")
    return optimizer


def warmup_steps(opt: Mapping[str, Any], total_steps: int) -> int:
    """``optim.warmup_steps``, else ``optim.warmup_ratio`` of ``total_steps``."""
    steps = opt.get("warmup_steps")
    return int(steps) if steps is not None else int(float(opt.get("warmup_ratio", 0.0)) * total_steps)


def with_step_scheduler(optimizer: torch.optim.Optimizer, opt: Mapping[str, Any], total_steps: int) -> dict[str, Any]:
    """Lightning's optimizer dict: ``optim.scheduler`` (linear, cosine, constant, ...; called with the optimiser,
    ``num_warmup_steps`` and ``num_training_steps`` where it takes them) stepped every optimiser step."""
    spec = as_spec(opt.get("scheduler") or "linear", "optim/scheduler", "optim.scheduler")
    scheduler = build(spec, "optim.scheduler", optimizer=optimizer,
                      num_warmup_steps=warmup_steps(opt, total_steps), num_training_steps=total_steps)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
