"""SDPA versus eager attention in the native families: forward+backward throughput and peak memory.

Runs a small randomly initialised NT v2, GENA-LM BERT or GENA-LM sparse BigBird (architecture only;
weights do not matter for speed) at each sequence length with ``attn_implementation="eager"`` and
``"sdpa"``, and prints one JSON line per measurement plus a table. For ``gena_sparse`` (the published
pattern: blocks of 64, 2 global, 3 window and 3 random blocks per head) eager is dense attention under
the BigBird token mask and sdpa the gathered block-sparse kernel. Defaults are small so it finishes
on a laptop CPU::

    python -m benchmarks.attention                               # CPU, NT v2, 1,024 and 2,048 tokens
    python -m benchmarks.attention --family gena_sparse --seq-lens 1024 2048 4096
    python -m benchmarks.attention --device cuda --dtype bfloat16 --hidden 512 --layers 12 --heads 16

Peak memory is ``torch.cuda.max_memory_allocated`` on CUDA. On CPU each measurement runs in a fresh
process and reports the growth of its peak resident set size over the loaded-model baseline.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time
from pathlib import Path
from typing import Any

import torch

from dnalm.models.families import (
    PUBLISHED_CONFIGS,
    GenaBertConfig,
    GenaBertForMaskedLM,
    NucleotideTransformerV2Config,
    NucleotideTransformerV2ForMaskedLM,
)

SPARSE_PATTERN = PUBLISHED_CONFIGS["AIRI-Institute/gena-lm-bigbird-base-sparse"]["sparse_attention"]


def build(args: argparse.Namespace, seq_len: int, implementation: str) -> torch.nn.Module:
    """A masked-LM model of the requested family and size, on the requested device and dtype."""
    common = {
        "vocab_size": 4107 if args.family == "nt_v2" else 32000,
        "hidden_size": args.hidden,
        "num_hidden_layers": args.layers,
        "num_attention_heads": args.heads,
        "intermediate_size": 4 * args.hidden,
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
    }
    if args.family == "nt_v2":
        model = NucleotideTransformerV2ForMaskedLM(NucleotideTransformerV2Config(**common))
    elif args.family == "gena_sparse":
        sparse = {**SPARSE_PATTERN, "num_heads": args.heads}
        model = GenaBertForMaskedLM(GenaBertConfig(
            **common, max_position_embeddings=seq_len, position_embedding_type="rotary",
            rotary_dim=args.hidden // args.heads // 2, sparse_attention=sparse,
        ))
    else:
        model = GenaBertForMaskedLM(GenaBertConfig(**common, max_position_embeddings=seq_len))
    model.set_attn_implementation(implementation)
    return model.to(device=args.device, dtype=getattr(torch, args.dtype)).train()


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def measure(args: argparse.Namespace, seq_len: int, implementation: str) -> dict[str, Any]:
    """Time ``args.steps`` forward+backward passes after ``args.warmup`` untimed ones."""
    torch.manual_seed(0)
    model = build(args, seq_len, implementation)
    ids = torch.randint(5, model.config.vocab_size, (args.batch_size, seq_len), device=args.device)
    mask = torch.ones_like(ids)
    cuda = args.device.startswith("cuda")

    def step() -> None:
        if args.head == "mlm":
            loss = model(input_ids=ids, attention_mask=mask, labels=ids).loss
        else:  # the encoder alone: its activations are what the attention kernel changes
            loss = model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state.float().pow(2).mean()
        loss.backward()
        model.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    baseline = _rss_mb()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if cuda:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    if cuda:
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - baseline
    return {
        "family": args.family,
        "head": args.head,
        "implementation": implementation,
        "seq_len": seq_len,
        "batch_size": args.batch_size,
        "device": args.device,
        "dtype": args.dtype,
        "samples_per_second": args.batch_size * args.steps / elapsed,
        "peak_memory_mb": peak,
        "peak_memory_kind": "cuda_max_allocated" if cuda else "rss_growth_over_baseline",
    }


def _child(payload: tuple) -> dict[str, Any]:
    args, seq_len, implementation = payload
    torch.set_num_threads(args.threads)
    return measure(args, seq_len, implementation)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Parse arguments, run every (sequence length, implementation) pair and print the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=["nt_v2", "gena_bert", "gena_sparse"], default="nt_v2")
    parser.add_argument("--head", choices=["mlm", "base"], default="mlm",
                        help="train through the MLM head (vocabulary logits included) or the encoder alone")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--seq-lens", type=int, nargs="+", default=[1024, 2048])
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--output", type=Path, help="also write the results as a JSON list here")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda requested but torch.cuda.is_available() is False")

    jobs = [(args, n, impl) for n in args.seq_lens for impl in ("eager", "sdpa")]
    results = []
    for job in jobs:
        if args.device == "cpu":
            # A fresh process per run: the CPU peak (ru_maxrss) cannot be reset inside one process.
            with mp.get_context("spawn").Pool(1) as pool:
                result = pool.apply(_child, (job,))
        else:
            result = measure(*job)
        print(json.dumps(result), flush=True)
        results.append(result)

    print(f"\n{'seq_len':>8} {'impl':>6} {'samples/s':>10} {'peak MB':>9}")
    for r in results:
        print(
            f"{r['seq_len']:>8} {r['implementation']:>6} {r['samples_per_second']:>10.3f} {r['peak_memory_mb']:>9.1f}"
        )
    if args.output:
        args.output.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
