"""QLoRA: LoRA adapters over a backbone whose linear layers are stored in 4 bits (bitsandbytes NF4).

GPU only: bitsandbytes quantizes weights when they move to a CUDA device, and its 4-bit kernels are CUDA kernels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dnalm.errors import ConfigError
from dnalm.models.backbone import Backbone
from dnalm.strategies.lora import LoRA


@dataclass
class QLoRA(LoRA):
    """LoRA on a 4-bit backbone: the frozen base weights take a quarter of their bf16 memory.

    ``quant_type`` is ``nf4`` (QLoRA's NormalFloat) or ``fp4``; ``compute_dtype`` is the dtype the 4-bit
    matmuls compute in; ``double_quant`` also quantizes the quantization constants.
    """

    name: str = "qlora"
    quant_type: str = "nf4"
    compute_dtype: str = "bfloat16"
    double_quant: bool = True

    def prepare(self, backbone: Backbone) -> nn.Module:
        bnb = require_bitsandbytes()
        if self.quant_type not in ("nf4", "fp4"):
            raise ConfigError(f"strategy.quant_type={self.quant_type!r} must be nf4 or fp4.")
        compute_dtype = getattr(torch, self.compute_dtype, None)
        if not isinstance(compute_dtype, torch.dtype):
            raise ConfigError(f"strategy.compute_dtype={self.compute_dtype!r} is not a torch dtype "
                              "(use bfloat16, float16 or float32).")
        _quantize_linears(backbone.model, bnb, self.quant_type, compute_dtype, self.double_quant)
        return super().prepare(backbone)


def require_bitsandbytes():  # noqa: ANN201 - the bitsandbytes module
    """The ``bitsandbytes`` module, or a ``ConfigError`` saying why QLoRA cannot run here and what to do."""
    if not torch.cuda.is_available():
        raise ConfigError("strategy=qlora needs a CUDA GPU (bitsandbytes 4-bit kernels); on this machine use "
                          "strategy=lora instead.")
    try:
        import bitsandbytes
    except ImportError as err:
        raise ConfigError("strategy=qlora needs bitsandbytes: pip install 'dnalm[qlora]' "
                          "(or pip install bitsandbytes), or use strategy=lora.") from err
    return bitsandbytes


def _quantize_linears(model: nn.Module, bnb, quant_type: str, compute_dtype: torch.dtype,  # noqa: ANN001
                      double_quant: bool) -> None:
    """Swap every ``nn.Linear`` for a frozen ``bnb.nn.Linear4bit``; the weights quantize on their move to the GPU."""
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if type(child) is not nn.Linear:
                continue
            layer = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=child.bias is not None,
                                      compute_dtype=compute_dtype, compress_statistics=double_quant,
                                      quant_type=quant_type)
            layer.weight = bnb.nn.Params4bit(child.weight.data, requires_grad=False,
                                             compress_statistics=double_quant, quant_type=quant_type)
            if child.bias is not None:
                layer.bias = nn.Parameter(child.bias.data, requires_grad=False)
            setattr(parent, child_name, layer)
