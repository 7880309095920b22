"""Reference builders for GENA-LM sparse (BigBird) tests: the published sparse config, shrunk, and saved layouts."""

from __future__ import annotations

import torch

from tests.helpers.gena_bert import TINY

PATTERN = {"block": 2, "num_global_blocks": 1, "num_sliding_window_blocks": 3, "num_random_blocks": 1}


# The published sparse config.json (GENA_LM data/configs/...-sparse-rope.json), shrunk: 4 heads of
# 8 dims with 4 rotary dims, blocks of 2 tokens, 16 positions.
SPARSE_TINY = {
    **TINY,
    "max_position_embeddings": 16,
    "position_embedding_type": "rotary",
    "rotary_dim": 4,
    "rotary_base": 10000,
    "sparse_config_cls": "deepspeed.ops.sparse_attention:BigBirdSparsityConfig",
    "sparse_attention": {
        "num_heads": 4,
        "block": 2,
        "different_layout_per_head": True,
        "num_sliding_window_blocks": 3,
        "num_global_blocks": 1,
        "num_random_blocks": 1,
    },
}


def deepspeed_like_layouts(layers: int, heads: int, blocks: int, seed: int = 123) -> list[torch.Tensor]:
    """Per-layer int64 layouts as DeepSpeed would save them, drawn independently of dnalm's seeding."""
    gen = torch.Generator().manual_seed(seed)
    layouts = []
    for _ in range(layers):
        layout = (torch.rand(heads, blocks, blocks, generator=gen) < 0.3).long()
        rows = torch.arange(blocks)
        layout[:, rows, rows] = 1
        layout[:, :, 0] = layout[:, 0, :] = 1  # one global block
        layouts.append(layout)
    return layouts
