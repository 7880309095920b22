"""Estimate peak GPU memory of fine-tuning each zoo model (an arithmetic estimate, not a measurement).

    python benchmarks/memory_estimate.py [--batch 8] [--tokens 1000]

Counts, in bytes: weights; trainable parameters with their gradients and two AdamW moments (float32);
activations kept at layer boundaries (with gradient checkpointing) or all per-layer activations (without); the
working set of the one layer being recomputed; plus 1 GiB for the CUDA context and allocator slack.
Attention is assumed to run through memory-efficient SDPA (no T x T score matrix kept).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from dnalm.zoo import zoo_entries  # noqa: E402

GIB = 2**30


def parse_params(text: str) -> float:
    """'2.5B' -> 2.5e9, '480M' -> 4.8e8."""
    scale = {"B": 1e9, "M": 1e6, "K": 1e3}[text[-1]]
    return float(text[:-1]) * scale


def estimate(params: float, layers: int, hidden: int, batch: int, tokens: int, full: bool, checkpointing: bool,
             weight_bytes: int) -> float:
    """Peak bytes for one configuration."""
    lora = 0.0 if full else 2 * layers * 2 * hidden * 8  # r=8 on query and value
    trainable = params if full else lora
    state = trainable * 4 * 4  # fp32 master copy, gradient, two AdamW moments
    weights = params * (4 if full else weight_bytes)
    act_per_layer = batch * tokens * hidden * 2 * 18  # qkv, attention out, norms, 4h feed-forward (bf16/fp16)
    boundary = batch * tokens * hidden * 2
    activations = layers * boundary + act_per_layer if checkpointing else layers * act_per_layer
    return weights + state + activations + GIB


def main() -> None:
    """Print a Markdown table for every zoo model."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=1000)
    args = parser.parse_args()
    print(f"batch {args.batch} x {args.tokens} tokens (or the model's context if shorter); GiB\n")
    print("| model | params | LoRA, fp16 weights, checkpointing | LoRA, fp16 weights | full fine-tuning, fp32 AdamW, checkpointing |")
    print("|---|---|---|---|---|")
    for row in zoo_entries():
        params = parse_params(row["params"])
        tokens = min(args.tokens, int(str(row["context (tokens / bp)"]).split("/")[0].replace(",", "")))
        cells = [estimate(params, row["layers"], row["hidden"], args.batch, tokens, full, ckpt, 2) / GIB
                 for full, ckpt in ((False, True), (False, False), (True, True))]
        print(f"| {row['name']} | {row['params']} | " + " | ".join(f"{c:.1f}" for c in cells) + " |")


if __name__ == "__main__":
    main()
