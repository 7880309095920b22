"""The GPU check: the figures users care about, measured in one run on one CUDA GPU, printed as one table.

    bash benchmarks/gpu_check.sh                      # on a CUDA machine (about 5 minutes on one H100)
    bash benchmarks/gpu_check.sh --device cpu --tiny  # the same code path at toy sizes (the test suite runs it)

Rows (every model has random weights built from the published architecture: no download):

1. LoRA fine-tuning of NT v2 500M's architecture at 1,000 tokens, bf16: dnalm against ``transformers.Trainer``
   + PEFT (``benchmarks/train_throughput.py``, each side in its own process, same data, steps and settings);
2. full fine-tuning of NT v2 100M's architecture, the same two routes;
3. one ``preset=low_memory`` training step of NT 2.5B's architecture (32 layers, LoRA r=8, 16-bit weights,
   gradient checkpointing; ``benchmarks/memory_measure.py``) with its measured peak memory;
4. attention kernels at 2,048 tokens (forward + backward of one attention call, bf16): SDPA's flash and
   memory-efficient kernels against eager ``softmax(QK^T)V``.

``--tiny`` shrinks every size (2 layers, hidden 32, short sequences, 2-3 steps) so the whole script runs on a
CPU in well under a minute; its figures mean nothing beyond "the path works".
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmarks import memory_measure, train_throughput  # noqa: E402

NT_V2 = {"500m": "InstaDeepAI/nucleotide-transformer-v2-500m-multi-species",
         "100m": "InstaDeepAI/nucleotide-transformer-v2-100m-multi-species"}
TINY_ARCH = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}


def nt_v2_folder(folder: Path, size: str, tiny: bool) -> Path:
    """An NT v2 checkpoint folder (random weights, published architecture, 6-mer tokenizer) in ``folder``."""
    from dnalm.models.families import (
        PUBLISHED_CONFIGS,
        NucleotideTransformerV2Config,
        NucleotideTransformerV2ForMaskedLM,
    )
    from dnalm.tokenizers.kmer import KmerTokenizer

    fields = {k: v for k, v in PUBLISHED_CONFIGS[NT_V2[size]].items() if k != "model_type"}
    if tiny:
        fields.update(TINY_ARCH)
    model = NucleotideTransformerV2ForMaskedLM(NucleotideTransformerV2Config(**fields))
    model.save_pretrained(folder)
    KmerTokenizer(k=6).to_hf().save_pretrained(folder)
    return folder


def table_folder(folder: Path, tokens: int, rows: int, seed: int = 0) -> Path:
    """A binary table task of random DNA whose sequences are ``tokens`` NT 6-mer tokens long (with <cls>)."""
    rng = np.random.default_rng(seed)
    length = 6 * (tokens - 1)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", rows), ("valid", 8), ("test", 8)):
        bases = rng.choice(list("ACGT"), size=(n, length))
        pd.DataFrame({"sequence": ["".join(row) for row in bases],
                      "label": rng.integers(0, 2, size=n)}).to_csv(folder / f"{split}.csv", index=False)
    return folder


def fine_tuning_rows(name: str, model: Path, data: Path, strategy: str, args: argparse.Namespace,
                     steps: int, batch: int) -> list[dict[str, Any]]:
    """Both routes once each (own processes), as table rows."""
    options = train_throughput.parse_args([
        "--model", str(model), "--data", str(data), "--steps", str(steps), "--batch-size", str(batch),
        "--device", args.device, "--threads", str(args.threads), "--strategy", strategy,
        "--targets", "query", "value", "--lr", "1e-4"])
    rows = []
    for side, route in (("dnalm", "dnalm"), ("hf", "Trainer + PEFT" if strategy == "lora" else "Trainer")):
        result = train_throughput.spawn(side, options)
        rows.append({"check": name, "route": route, "samples/s": result["samples_per_s"],
                     "tokens/s": result["samples_per_s"] * result["tokens_per_sample"],
                     "peak MB": result["peak_mb"], "ms": None})
    ours, theirs = rows
    ours["note"] = f"x{ours['samples/s'] / theirs['samples/s']:.2f} samples/s vs {theirs['route']}"
    return rows


def low_memory_row(args: argparse.Namespace) -> dict[str, Any]:
    """One NT 2.5B-architecture ``preset=low_memory`` step in a fresh process, with its peak memory."""
    layers, batch, tokens = (1, 1, 8) if args.tiny else (memory_measure.NT_2500M["layers"], 8, 1000)
    dims = {"hidden_size": 64, "num_attention_heads": 2, "intermediate_size": 128} if args.tiny else None
    job = (layers, batch, tokens, args.device, args.threads, dims)
    start = time.perf_counter()
    with mp.get_context("spawn").Pool(1) as pool:
        result = pool.apply(memory_measure._child, (job,))
    seconds = time.perf_counter() - start
    return {"check": f"NT 2.5B arch low_memory step, {layers} layers, {batch}x{tokens} tokens",
            "route": "dnalm preset", "samples/s": None, "tokens/s": None,
            "peak MB": result["peak_bytes"] / 2**20, "ms": 1000 * seconds,
            "note": f"{result['params'] / 1e6:.0f}M params; ms = build + one step"}


def _attention_fns() -> dict[str, Callable[..., Any]]:
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    def eager(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        scores = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
        return scores.softmax(-1) @ v

    def with_backend(backend: SDPBackend) -> Callable[..., Any]:
        def run(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            with sdpa_kernel(backend):
                return F.scaled_dot_product_attention(q, k, v)
        return run

    return {"eager": eager, "sdpa flash": with_backend(SDPBackend.FLASH_ATTENTION),
            "sdpa efficient": with_backend(SDPBackend.EFFICIENT_ATTENTION)}


def attention_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Forward + backward time and peak memory of one attention call per kernel (n/a where unsupported)."""
    import torch

    batch, heads, tokens, dim = (2, 2, 64, 16) if args.tiny else (8, 16, 2048, 64)
    cuda = args.device == "cuda"
    dtype = torch.bfloat16 if cuda else torch.float32
    rows = []
    for name, fn in _attention_fns().items():
        q, k, v = (torch.randn(batch, heads, tokens, dim, device=args.device, dtype=dtype, requires_grad=True)
                   for _ in range(3))
        try:
            timings = []
            for repeat in range(3 + args.attention_repeats):
                if cuda:
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                start = time.perf_counter()
                fn(q, k, v).sum().backward()
                if cuda:
                    torch.cuda.synchronize()
                if repeat >= 3:
                    timings.append(time.perf_counter() - start)
        except RuntimeError as error:  # a kernel this device or dtype does not have
            rows.append({"check": f"attention fwd+bwd, {batch}x{heads}x{tokens}x{dim}", "route": name,
                         "samples/s": None, "tokens/s": None, "peak MB": None, "ms": None,
                         "note": f"n/a: {str(error).splitlines()[0][:60]}"})
            continue
        peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
        rows.append({"check": f"attention fwd+bwd, {batch}x{heads}x{tokens}x{dim}", "route": name,
                     "samples/s": None, "tokens/s": batch * tokens / float(np.median(timings)),
                     "peak MB": peak, "ms": 1000 * float(np.median(timings)), "note": ""})
    eager = next(r for r in rows if r["route"] == "eager")
    for row in rows:
        if row["ms"] is not None and eager["ms"] and row is not eager:
            row["note"] = f"x{eager['ms'] / row['ms']:.2f} faster than eager"
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    """One Markdown table."""
    def number(value: float | None, digits: int) -> str:
        return "" if value is None else f"{value:,.{digits}f}"

    lines = ["| check | route | samples/s | tokens/s | peak MB | ms | note |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['check']} | {r['route']} | {number(r['samples/s'], 1)} | {number(r['tokens/s'], 0)} | "
                     f"{number(r['peak MB'], 0)} | {number(r['ms'], 1)} | {r.get('note', '')} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--tiny", action="store_true", help="toy sizes: checks the path, not the speed")
    parser.add_argument("--steps", type=int, default=40, help="optimiser steps per fine-tuning route")
    parser.add_argument("--threads", type=int, default=4, help="CPU threads per process")
    parser.add_argument("--attention-repeats", type=int, default=10)
    parser.add_argument("--only", nargs="+", choices=("lora", "full", "low_memory", "attention"),
                        help="run only these checks")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Run every check and print the table."""
    args = parse_args(argv)
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("dnalm: error: --device cuda but torch sees no CUDA device; "
                             "run with --device cpu --tiny to check the path on a CPU")
    wanted = set(args.only or ("lora", "full", "low_memory", "attention"))
    steps = 2 if args.tiny else args.steps
    tokens = 8 if args.tiny else 1000
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="dnalm-gpu-check-") as tmp:
        root = Path(tmp)
        batch = 2 if args.tiny else 8
        data = table_folder(root / "data", tokens, rows=batch * (steps + 1))
        if "lora" in wanted:
            model = nt_v2_folder(root / "nt_v2_500m", "500m", args.tiny)
            rows += fine_tuning_rows(f"LoRA, NT v2 500M arch, {tokens} tokens", model, data, "lora", args,
                                     steps, batch)
        if "full" in wanted:
            model = nt_v2_folder(root / "nt_v2_100m", "100m", args.tiny)
            rows += fine_tuning_rows(f"full, NT v2 100M arch, {tokens} tokens", model, data, "full", args,
                                     steps, batch)
    if "low_memory" in wanted:
        rows.append(low_memory_row(args))
    if "attention" in wanted:
        rows += attention_rows(args)
    print()
    print(f"device={args.device}{' (tiny sizes)' if args.tiny else ''}")
    print(render(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
