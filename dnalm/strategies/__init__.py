"""Adaptation strategies: each decides which backbone parameters train (LoRA, IA3, QLoRA, full, probing, partial)."""

from dnalm.strategies.base import Strategy
from dnalm.strategies.full import FullFineTuning
from dnalm.strategies.ia3 import IA3
from dnalm.strategies.lora import LoRA
from dnalm.strategies.partial import PartialUnfreezing
from dnalm.strategies.probing import Probing
from dnalm.strategies.qlora import QLoRA

__all__ = ["IA3", "FullFineTuning", "LoRA", "PartialUnfreezing", "Probing", "QLoRA", "Strategy"]
