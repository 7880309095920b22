"""Measure the memory of one LoRA fine-tuning step of NT 2.5B's architecture and check the estimate with it.

    python -m benchmarks.memory_measure [--layers 1 2] [--batch 8] [--tokens 1000] [--device cpu|cuda]

The 2.5B Nucleotide Transformers (ESM, hidden 2,560, 20 heads, feed-forward 10,240, 32 layers) cannot be
downloaded here, and their full depth does not fit a laptop, but every layer is the same size. So this
builds the architecture (random weights: memory does not depend on their values) with only ``--layers``
layers, 16-bit weights, LoRA r=8 on query/value, gradient checkpointing and 16-bit autocast, the settings of
``preset=low_memory``, and runs one real training step (forward, backward, AdamW) on ``batch x tokens``
inputs. Each depth runs in a fresh process; the peak is ``torch.cuda.max_memory_allocated`` on CUDA or the
growth of peak resident memory over the pre-model baseline on CPU. Two depths give a fixed part and a
per-layer part, extrapolated to 32 layers and printed beside ``benchmarks/memory_estimate.py``'s
formula for the same depths (without its 1 GiB CUDA context, which a CPU run does not have).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
from pathlib import Path
from typing import Any

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from benchmarks.memory_estimate import GIB, estimate  # noqa: E402

# nucleotide-transformer-2.5b-multi-species (and -1000g): ESM with absolute positions and GELU.
NT_2500M = {"vocab_size": 4105, "hidden_size": 2560, "num_attention_heads": 20, "intermediate_size": 10240,
            "max_position_embeddings": 1002, "layers": 32}


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize()


def one_step(layers: int, batch: int, tokens: int, device: str, threads: int,
             dims: dict[str, int] | None = None) -> dict[str, Any]:
    """Peak bytes of building the model and one LoRA training step, with the parameter count.

    ``dims`` replaces NT 2.5B's widths (``hidden_size``, ``num_attention_heads``, ``intermediate_size``) for a
    toy run that only checks the code path.
    """
    arch = {**NT_2500M, **(dims or {})}
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import EsmConfig, EsmModel

    torch.set_num_threads(threads)
    cuda = device.startswith("cuda")
    half = torch.float16 if cuda else torch.bfloat16  # CPUs have no fast float16 matmul
    baseline = _rss_bytes()
    config = EsmConfig(
        vocab_size=arch["vocab_size"], hidden_size=arch["hidden_size"], num_hidden_layers=layers,
        num_attention_heads=arch["num_attention_heads"], intermediate_size=arch["intermediate_size"],
        max_position_embeddings=arch["max_position_embeddings"], position_embedding_type="absolute",
        pad_token_id=1, mask_token_id=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )
    backbone = EsmModel._from_config(config, dtype=half, add_pooling_layer=False).to(device)
    params = sum(p.numel() for p in backbone.parameters())
    backbone.gradient_checkpointing_enable()
    model = get_peft_model(backbone, LoraConfig(r=8, lora_alpha=16, target_modules=["query", "value"]))
    head = torch.nn.Linear(config.hidden_size, 2, device=device)
    trainable = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)
    ids = torch.randint(4, config.vocab_size, (batch, tokens), device=device)
    labels = torch.randint(0, 2, (batch,), device=device)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    with torch.autocast(device_type="cuda" if cuda else "cpu", dtype=half):
        hidden = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
        loss = torch.nn.functional.cross_entropy(head(hidden.mean(dim=1)).float(), labels)
    loss.backward()
    optimizer.step()
    if cuda:
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - baseline
    return {"layers": layers, "params": params, "peak_bytes": peak, "device": device}


def _child(payload: tuple) -> dict[str, Any]:
    return one_step(*payload)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Measure each depth in a fresh process, fit fixed + per-layer bytes, extrapolate and compare."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, nargs=2, default=[1, 2], help="two depths to measure")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    results = []
    for layers in args.layers:
        job = (layers, args.batch, args.tokens, args.device, args.threads)
        with mp.get_context("spawn").Pool(1) as pool:
            result = pool.apply(_child, (job,))
        result["estimate_bytes"] = estimate(result["params"], layers, NT_2500M["hidden_size"], args.batch,
                                            args.tokens, False, True, 2) - GIB
        print(json.dumps(result), flush=True)
        results.append(result)

    (small, large) = results
    per_layer = (large["peak_bytes"] - small["peak_bytes"]) / (large["layers"] - small["layers"])
    fixed = small["peak_bytes"] - per_layer * small["layers"]
    full_depth = fixed + per_layer * NT_2500M["layers"]
    params_per_layer = (large["params"] - small["params"]) / (large["layers"] - small["layers"])
    full_params = small["params"] + params_per_layer * (NT_2500M["layers"] - small["layers"])
    formula = estimate(full_params, NT_2500M["layers"], NT_2500M["hidden_size"], args.batch, args.tokens,
                       False, True, 2) - GIB
    print(f"\nNT 2.5B architecture, LoRA r=8, 16-bit weights, checkpointing, batch {args.batch} x {args.tokens} tokens")
    print(f"{'layers':>7} {'params':>9} {'measured GiB':>13} {'formula GiB':>12}")
    for r in results:
        print(f"{r['layers']:>7} {r['params'] / 1e6:>8.0f}M {r['peak_bytes'] / GIB:>13.2f} {r['estimate_bytes'] / GIB:>12.2f}")
    print(f"{NT_2500M['layers']:>7} {full_params / 1e6:>8.0f}M {full_depth / GIB:>13.2f} {formula / GIB:>12.2f}"
          "   (measured column extrapolated: fixed + per-layer x 32)")
    print(f"per layer: {per_layer / 2**20:.0f} MiB measured; add ~1 GiB CUDA context on a GPU")
    return results


if __name__ == "__main__":
    main()
