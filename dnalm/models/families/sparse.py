"""BigBird block-sparse attention in plain PyTorch (no DeepSpeed, no Triton).

GENA-LM's sparse checkpoints (``gena-lm-bigbird-base-sparse``, ``-sparse-t2t``) were trained with
DeepSpeed's ``SparseSelfAttention`` and a ``BigBirdSparsityConfig``: the sequence is cut into blocks
of ``block`` tokens and each query block attends to

* the ``num_global_blocks`` first blocks, which in turn attend everywhere (global rows/columns),
* a sliding window of ``num_sliding_window_blocks`` blocks centred on itself,
* ``num_random_blocks`` random key blocks (bidirectional: sampled from all blocks).

Each attention layer owns a block layout ``(heads, blocks, blocks)`` drawn once for the longest
input and sliced for shorter ones. DeepSpeed keeps it as the persistent buffer
``sparse_self_attention.master_layout``, so the published files carry one layout per layer and
:class:`BlockSparseAttention` loads them bit-exactly under the same name. A model built from scratch
draws its layouts from a seeded generator instead (``seed`` + layer index).

**Which layout runs (DeepSpeed 0.6.x quirk).** DeepSpeed's ``SparseSelfAttention.get_ops`` caches the
Triton kernels in ``SparseSelfAttention.ops``, a *class-level* dict keyed only by sequence length and
built from ``self.get_layout(L)`` of the first instance that runs at that length. In a forward pass
that is layer 0, so in training and inference every layer attended with layer 0's layout; the other
layers' ``master_layout`` buffers were saved but never used. The GENA model passes layer 0's layout to
every layer (:meth:`BlockSparseAttention.runtime_layout`) to compute what the checkpoints were trained
with, while each layer keeps its own buffer so files round-trip unchanged.

Two kernels compute the same function: ``"eager"`` is dense attention under the token mask the
layout implies (the reference); ``"sdpa"`` gathers, for each query block, only the key blocks its
layout row allows and runs :func:`torch.nn.functional.scaled_dot_product_attention` on those, so
compute and memory grow with ``L x blocks-per-row`` instead of ``L^2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dnalm.models.families.attention import attend

SPARSE_FIELDS = (
    "block",
    "num_global_blocks",
    "num_sliding_window_blocks",
    "num_random_blocks",
    "different_layout_per_head",
    "num_heads",
    "attention",
    "seed",
)
# The only DeepSpeed sparsity config these checkpoints use; others (Fixed, Variable, ...) differ.
BIGBIRD_CONFIG_CLS = "deepspeed.ops.sparse_attention:BigBirdSparsityConfig"


@dataclass(frozen=True)
class BigBirdPattern:
    """Block-sparse layout parameters (names follow DeepSpeed's ``BigBirdSparsityConfig``)."""

    block: int = 64
    num_global_blocks: int = 1
    num_sliding_window_blocks: int = 3
    num_random_blocks: int = 1
    different_layout_per_head: bool = False
    num_heads: int | None = None
    attention: str = "bidirectional"
    seed: int = 0

    @classmethod
    def from_dict(cls, values: dict) -> BigBirdPattern:
        """Build from a config dict, naming any unknown key instead of ignoring it."""
        unknown = sorted(set(values) - set(SPARSE_FIELDS))
        if unknown:
            raise ValueError(f"unknown sparse_attention keys {unknown}; allowed: {list(SPARSE_FIELDS)}")
        pattern = cls(**values)
        if pattern.block < 1 or min(pattern.num_global_blocks, pattern.num_random_blocks) < 0:
            raise ValueError(f"invalid sparse_attention {values}: block >= 1 and block counts >= 0 required")
        if pattern.num_sliding_window_blocks < 1 or pattern.num_sliding_window_blocks % 2 == 0:
            raise ValueError(
                f"num_sliding_window_blocks must be odd and >= 1 (a window centred on the query block), "
                f"got {pattern.num_sliding_window_blocks}"
            )
        if pattern.attention != "bidirectional":
            raise ValueError(
                f"sparse_attention.attention={pattern.attention!r}: GENA-LM encoders use 'bidirectional' only"
            )
        return pattern


def bigbird_layout(pattern: BigBirdPattern, num_heads: int, num_blocks: int, seed_offset: int = 0) -> torch.Tensor:
    """Block layout ``(num_heads, num_blocks, num_blocks)`` of 0/1 (int64, as DeepSpeed stores it).

    1 where a query block sees a key block. The random blocks come from a generator seeded with
    ``pattern.seed + seed_offset`` (the layer index), so every layer differs and each run repeats.
    """
    generator = torch.Generator().manual_seed(pattern.seed + seed_offset)
    layout_heads = num_heads if pattern.different_layout_per_head else 1
    layout = torch.zeros(layout_heads, num_blocks, num_blocks, dtype=torch.int64)
    half_window = pattern.num_sliding_window_blocks // 2
    n_random = min(pattern.num_random_blocks, num_blocks)
    for head in range(layout_heads):
        for row in range(num_blocks):
            random_cols = torch.randperm(num_blocks, generator=generator)[:n_random]
            layout[head, row, random_cols] = 1
            layout[head, row, max(0, row - half_window) : row + half_window + 1] = 1
        layout[head, : pattern.num_global_blocks, :] = 1
        layout[head, :, : pattern.num_global_blocks] = 1
    return layout.expand(num_heads, -1, -1).clone()


def bigbird_token_mask(layout: torch.Tensor, block: int, seq_len: int) -> torch.Tensor:
    """Expand a block layout to a boolean token mask ``(num_heads, seq_len, seq_len)`` (True = may attend)."""
    needed = math.ceil(seq_len / block)
    if needed > layout.shape[-1]:
        raise ValueError(
            f"sequence of {seq_len} tokens needs {needed} blocks of {block}, layout has {layout.shape[-1]}; "
            "raise max_position_embeddings or shorten the input"
        )
    blocks = layout[:, :needed, :needed].bool()
    tokens = blocks.repeat_interleave(block, dim=1).repeat_interleave(block, dim=2)
    return tokens[:, :seq_len, :seq_len]


def _pad_to_blocks(x: torch.Tensor, padded_len: int) -> torch.Tensor:
    return F.pad(x, (0, 0, 0, padded_len - x.shape[-2]))


def gathered_block_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    layout: torch.Tensor,
    block: int,
    key_mask: torch.Tensor | None,
    dropout_p: float = 0.0,
) -> torch.Tensor:
    """Attention over ``(batch, heads, L, head_dim)`` restricted to the key blocks ``layout`` allows.

    ``layout`` is ``(heads, >= ceil(L / block), ...)`` of 0/1; ``key_mask`` is ``(batch, L)`` boolean
    (True = real token) or None. Equal to dense attention under :func:`bigbird_token_mask` AND the
    key mask, but the score matrix of a query block only spans its allowed key blocks. Query blocks
    whose row allows every block (the global rows) attend densely.
    """
    batch, heads, seq_len, head_dim = query.shape
    num_blocks = math.ceil(seq_len / block)
    if num_blocks > layout.shape[-1]:
        raise ValueError(
            f"sequence of {seq_len} tokens needs {num_blocks} blocks of {block}, layout has {layout.shape[-1]}; "
            "raise max_position_embeddings or shorten the input"
        )
    rows = layout[:, :num_blocks, :num_blocks].bool().expand(heads, -1, -1)
    padded = num_blocks * block
    valid = torch.ones(batch, seq_len, dtype=torch.bool, device=query.device) if key_mask is None else key_mask
    valid = F.pad(valid, (0, padded - seq_len), value=False)
    query, key, value = (_pad_to_blocks(t, padded) for t in (query, key, value))
    out = query.new_zeros(batch, heads, num_blocks, block, head_dim)

    full = rows.all(dim=-1).all(dim=0)  # query blocks that see every key block, in every head
    if full.any():
        q_full = query.view(batch, heads, num_blocks, block, head_dim)[:, :, full].flatten(2, 3)
        dense = attend(q_full, key, value, valid[:, None, None, :], dropout_p)
        out[:, :, full] = dense.view(batch, heads, -1, block, head_dim)
    sparse_rows = (~full).nonzero().flatten()
    if sparse_rows.numel():
        allowed = rows[:, sparse_rows]  # (heads, rows, blocks)
        width = int(allowed.sum(dim=-1).max())
        # Allowed block indices first, in ascending order; `slot_ok` marks the padding slots.
        order = torch.sort(allowed.to(torch.int8), dim=-1, descending=True, stable=True).indices[..., :width]
        slot_ok = torch.gather(allowed, -1, order)
        head_index = torch.arange(heads, device=query.device)[:, None, None]
        key_blocks = key.view(batch, heads, num_blocks, block, head_dim)[:, head_index, order]
        value_blocks = value.view(batch, heads, num_blocks, block, head_dim)[:, head_index, order]
        key_ok = valid.view(batch, num_blocks, block)[:, order] & slot_ok[None, ..., None]
        q_rows = query.view(batch, heads, num_blocks, block, head_dim)[:, :, sparse_rows]
        context = attend(
            q_rows.flatten(1, 2),
            key_blocks.flatten(3, 4).flatten(1, 2),
            value_blocks.flatten(3, 4).flatten(1, 2),
            key_ok.flatten(3, 4).flatten(1, 2)[:, :, None, :],
            dropout_p,
        )
        out[:, :, sparse_rows] = context.view(batch, heads, -1, block, head_dim)
    return out.flatten(2, 3)[:, :, :seq_len]


class BlockSparseAttention(nn.Module):
    """One layer's BigBird layout (published name ``master_layout``) and the kernel that applies it."""

    def __init__(self, pattern: BigBirdPattern, num_heads: int, max_positions: int, layer_index: int) -> None:
        super().__init__()
        self.pattern = pattern
        self.layer_index = layer_index
        num_blocks = math.ceil(max_positions / pattern.block)
        self.register_buffer("master_layout", self.initial_layout(num_heads, num_blocks))

    def initial_layout(self, num_heads: int, num_blocks: int) -> torch.Tensor:
        """The seeded layout used when a checkpoint does not provide one."""
        return bigbird_layout(self.pattern, num_heads, num_blocks, seed_offset=self.layer_index)

    def runtime_layout(self, shared: torch.Tensor | None) -> torch.Tensor:
        """The layout this layer attends with: ``shared`` (layer 0's, as DeepSpeed ran) when given, else its own."""
        return self.master_layout if shared is None else shared

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_mask: torch.Tensor | None,
        dropout_p: float,
        implementation: str,
        shared_layout: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Context ``(batch, heads, L, head_dim)``; ``key_mask`` is ``(batch, L)`` boolean or None.

        ``shared_layout`` is the layout every layer runs with (layer 0's, see the module docstring).
        """
        layout = self.runtime_layout(shared_layout)
        if implementation == "eager":
            mask = bigbird_token_mask(layout, self.pattern.block, query.shape[-2])[None]
            if key_mask is not None:
                mask = mask & key_mask[:, None, None, :]
            return attend(query, key, value, mask, dropout_p, "eager")
        return gathered_block_attention(query, key, value, layout, self.pattern.block, key_mask, dropout_p)
