"""Multi-head self-attention kernels shared by the native model families.

Two implementations with one signature: ``"sdpa"`` runs
:func:`torch.nn.functional.scaled_dot_product_attention` (fused kernels on GPU, memory-efficient
on CPU); ``"eager"`` spells out ``softmax(q k^T / sqrt(d) + mask) v`` and is the reference the
tests and the benchmark compare against. Masks are boolean, ``True`` meaning "may attend", or
floating-point biases added to the scores (ALiBi, in the query's dtype).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from dnalm import compat

ATTENTION_IMPLEMENTATIONS = ("sdpa", "eager")


def padding_mask(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """Turn a ``(batch, seq)`` 0/1 padding mask into a boolean ``(batch, 1, 1, seq)`` key mask."""
    if attention_mask is None:
        return None
    if attention_mask.dim() != 2:
        raise ValueError(
            f"attention_mask must have shape (batch, seq_len), got {tuple(attention_mask.shape)}; "
            "pass the tokenizer's 2-D attention_mask"
        )
    return attention_mask.bool()[:, None, None, :]


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """``(batch, seq, heads * head_dim)`` projections -> ``(batch, heads, seq, head_dim)`` (head-major channels)."""
    batch, seq, width = x.shape
    return x.view(batch, seq, num_heads, width // num_heads).transpose(1, 2)


def merge_heads(context: torch.Tensor) -> torch.Tensor:
    """``(batch, heads, seq, head_dim)`` attention context -> ``(batch, seq, heads * head_dim)``."""
    batch, _, seq, _ = context.shape
    return context.transpose(1, 2).reshape(batch, seq, -1)


def attend(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None,
    dropout_p: float = 0.0,
    implementation: str = "sdpa",
) -> torch.Tensor:
    """Scaled dot-product attention over ``(batch, heads, seq, head_dim)`` tensors.

    ``mask`` is broadcastable to ``(batch, heads, q_len, k_len)``: boolean (``True`` keeps a key) or a float
    bias added to the scaled scores.
    Returns the context in ``(batch, heads, q_len, head_dim)``.
    """
    if implementation == "sdpa":
        return F.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=dropout_p)
    if implementation == "eager":
        scores = torch.matmul(query, key.transpose(-1, -2)) / math.sqrt(query.size(-1))
        if mask is not None and mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        elif mask is not None:
            scores = scores + mask
        probs = torch.softmax(scores.float(), dim=-1).to(value.dtype)
        probs = F.dropout(probs, p=dropout_p, training=dropout_p > 0)
        return torch.matmul(probs, value)
    raise ValueError(
        f"unknown attention implementation {implementation!r}; choose one of {ATTENTION_IMPLEMENTATIONS}"
    )


def resolve_implementation(config: object) -> str:
    """The kernel a model should use: ``config._attn_implementation`` when it names one we have."""
    requested = compat.attn_implementation(config) or "sdpa"
    # transformers may report flash/flex variants; everything but "eager" maps onto SDPA here.
    return "eager" if requested == "eager" else "sdpa"
