"""Adaptation strategies: each decides which backbone parameters train (LoRA, full, probing, partial)."""

from dnalm.strategies.base import Strategy
from dnalm.strategies.full import FullFineTuning
from dnalm.strategies.lora import LoRA
from dnalm.strategies.partial import PartialUnfreezing
from dnalm.strategies.probing import Probing

__all__ = ["FullFineTuning", "LoRA", "PartialUnfreezing", "Probing", "Strategy"]
