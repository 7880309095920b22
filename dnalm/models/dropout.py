"""Dropout whose CPU masks cost a quarter of the random draws.

``torch.nn.Dropout`` on CPU draws one Bernoulli number per element from the Mersenne Twister and multiplies
by a boolean mask, both slow paths on CPU (about 12 ns per element here, more than the layers around it
cost in a small model). :class:`PackedDropout` draws one 64-bit word per four elements, splits it into four
uniform 16-bit numbers, and turns them into the scaled keep mask with float arithmetic only. An element is
dropped with probability ``round(p * 65536) / 65536`` (within 1e-5 of ``p``), kept elements are scaled by
``1 / (1 - p)`` as in torch, and the draws come from torch's seeded default generator, so runs repeat.
Backward keeps the 16-bit numbers (2 bytes per element) and rebuilds the mask from them.

On any other device, for other dtypes, with ``inplace=True`` or outside training it is ``nn.Dropout``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_LEVELS = 65536  # 16-bit uniform numbers per mask element
_FAST_DTYPES = (torch.float32, torch.float64)


def uniform_int16(count: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``count`` independent uniform int16 numbers, drawn four per 64-bit word of the default generator."""
    words = torch.randint(-2**63, 2**63 - 1, ((count + 3) // 4,), dtype=torch.int64, device=device)
    return words.view(torch.int16)[:count]


def keep_scale(draws: torch.Tensor, p: float, dtype: torch.dtype) -> torch.Tensor:
    """``1 / (1 - p)`` where a draw keeps its element, 0 where it drops it (float arithmetic, no booleans)."""
    lowest_kept = round(p * _LEVELS) - _LEVELS // 2  # draws below this value are dropped
    # draw - (lowest_kept - 1) is >= 1 exactly for kept draws and <= 0 for dropped ones (integers in float)
    return draws.to(dtype).sub_(lowest_kept - 1).clamp_(0, 1).mul_(1.0 / (1.0 - p))


class _PackedDropoutFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, p: float) -> torch.Tensor:
        draws = uniform_int16(x.numel(), x.device)
        ctx.save_for_backward(draws)
        ctx.p = p  # type: ignore[attr-defined]
        return x * keep_scale(draws, p, x.dtype).view(x.shape)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (draws,) = ctx.saved_tensors  # type: ignore[attr-defined]
        return grad * keep_scale(draws, ctx.p, grad.dtype).view(grad.shape), None  # type: ignore[attr-defined]


class PackedDropout(nn.Dropout):
    """``nn.Dropout`` with packed random draws on CPU (see the module docstring); same ``p`` and semantics."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.inplace or self.p >= 1.0 or x.device.type != "cpu" or x.dtype not in _FAST_DTYPES:
            return F.dropout(x, self.p, True, self.inplace)
        return _PackedDropoutFunction.apply(x, self.p)


def use_packed_dropout(module: nn.Module) -> int:
    """Replace every plain ``nn.Dropout`` (not in-place) under ``module`` by :class:`PackedDropout`.

    Returns how many were replaced. Dropout has no parameters or buffers, so state dicts do not change.
    """
    replaced = 0
    for parent in module.modules():
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout and not child.inplace:
                setattr(parent, name, PackedDropout(child.p))
                replaced += 1
    return replaced
