"""BigBird block-sparse attention patterns as boolean PyTorch attention masks (no DeepSpeed, no Triton).

GENA-LM's sparse checkpoints were trained with DeepSpeed's ``SparseSelfAttention`` and a
``BigBirdSparsityConfig``: the sequence is cut into blocks of ``block`` tokens and each query
block attends to

* the ``num_global_blocks`` first blocks, which in turn attend everywhere (global rows/columns),
* a sliding window of ``num_sliding_window_blocks`` blocks centred on itself,
* ``num_random_blocks`` random key blocks (bidirectional: sampled from all blocks).

DeepSpeed draws the layout once for the maximum sequence length and slices it for shorter
inputs; so do we. DeepSpeed samples the random blocks with Python's unseeded ``random`` module, so
the exact random edges a checkpoint was trained with are not recorded anywhere: here they come
from a seeded ``torch.Generator`` and are reproducible per config.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

SPARSE_FIELDS = (
    "block",
    "num_global_blocks",
    "num_sliding_window_blocks",
    "num_random_blocks",
    "different_layout_per_head",
    "seed",
)


@dataclass(frozen=True)
class BigBirdPattern:
    """Block-sparse layout parameters (names follow DeepSpeed's ``BigBirdSparsityConfig``)."""

    block: int = 64
    num_global_blocks: int = 1
    num_sliding_window_blocks: int = 3
    num_random_blocks: int = 1
    different_layout_per_head: bool = False
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
        return pattern


def bigbird_layout(pattern: BigBirdPattern, num_heads: int, num_blocks: int) -> torch.Tensor:
    """Block layout ``(num_heads, num_blocks, num_blocks)`` of 0/1: 1 where a query block sees a key block."""
    generator = torch.Generator().manual_seed(pattern.seed)
    layout_heads = num_heads if pattern.different_layout_per_head else 1
    layout = torch.zeros(layout_heads, num_blocks, num_blocks, dtype=torch.bool)
    half_window = pattern.num_sliding_window_blocks // 2
    n_random = min(pattern.num_random_blocks, num_blocks)
    for head in range(layout_heads):
        for row in range(num_blocks):
            random_cols = torch.randperm(num_blocks, generator=generator)[:n_random]
            layout[head, row, random_cols] = True
            layout[head, row, max(0, row - half_window) : row + half_window + 1] = True
        layout[head, : pattern.num_global_blocks, :] = True
        layout[head, :, : pattern.num_global_blocks] = True
    return layout.expand(num_heads, -1, -1).clone()


def bigbird_token_mask(layout: torch.Tensor, block: int, seq_len: int) -> torch.Tensor:
    """Expand a block layout to a token mask ``(num_heads, seq_len, seq_len)`` (True = may attend)."""
    needed = math.ceil(seq_len / block)
    if needed > layout.shape[-1]:
        raise ValueError(
            f"sequence of {seq_len} tokens needs {needed} blocks of {block}, layout has {layout.shape[-1]}; "
            "raise max_position_embeddings or shorten the input"
        )
    blocks = layout[:, :needed, :needed]
    tokens = blocks.repeat_interleave(block, dim=1).repeat_interleave(block, dim=2)
    return tokens[:, :seq_len, :seq_len]
