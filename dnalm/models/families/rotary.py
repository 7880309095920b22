"""Rotary position embeddings (RoFormer / GPT-NeoX "half-split" layout) shared by the native families.

NT v2 rotates every dimension of a head with base 10,000; GENA-LM's sparse checkpoints rotate only
the first ``rotary_dim`` dimensions (32 of 64) and pass the rest through. Both pair dimension ``i``
with ``i + rotary_dim / 2``, which is what ``rotate_half`` expresses.
"""

from __future__ import annotations

import torch


def rotary_cos_sin(
    seq_len: int, rotary_dim: int, base: float, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cos/sin tables ``(seq_len, rotary_dim)`` for positions ``0..seq_len``, computed in float32."""
    if rotary_dim % 2:
        raise ValueError(f"rotary_dim must be even, got {rotary_dim}")
    inv_freq = 1.0 / (base ** (torch.arange(0, rotary_dim, 2, device=device).float() / rotary_dim))
    angles = torch.outer(torch.arange(seq_len, device=device).float(), inv_freq)
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the first ``cos.shape[-1]`` dims of ``(batch, heads, seq, head_dim)`` by position.

    ``x_rot cos + rotate_half(x_rot) sin``; dimensions past the rotary width are returned unchanged.
    """
    width = cos.shape[-1]
    rotated, passed = x[..., :width], x[..., width:]
    first, second = rotated.chunk(2, dim=-1)
    rotated = rotated * cos + torch.cat((-second, first), dim=-1) * sin
    return rotated if passed.shape[-1] == 0 else torch.cat((rotated, passed), dim=-1)
