"""CPU dropout, forward + backward: dnalm's PackedDropout against torch.nn.Dropout, in one process.

Shapes are activations dnalm trains on: LoRA inputs of the 1M-parameter Mixtral DNA LM on GUE (101 nt) and on
gut_phage windows (1,024 nt), and a BERT-base hidden state at 512 tokens. The two sides alternate in rounds so
drifts in machine speed hit both alike; the table shows medians over rounds::

    python benchmarks/dropout.py --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from dnalm.models.dropout import PackedDropout

SHAPES = {"LoRA input, GUE 101 nt": (32, 24, 64), "LoRA input, gut_phage 1,024 nt": (32, 243, 64),
          "BERT-base hidden, 512 tokens": (8, 512, 768)}


def time_one(layer: nn.Module, x: torch.Tensor, grad: torch.Tensor, calls: int) -> float:
    """Microseconds per forward + backward."""
    start = time.perf_counter()
    for _ in range(calls):
        layer(x).backward(grad)
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    """Print one row per shape."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--p", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sides = {"torch": nn.Dropout(args.p).train(), "packed": PackedDropout(args.p).train()}
    print(f"p={args.p}  threads={args.threads}  rounds={args.rounds}\n")
    print("| activation | shape | torch us | packed us | speed-up |")
    print("|---|---|---|---|---|")
    for label, shape in SHAPES.items():
        x = torch.randn(*shape, requires_grad=True)
        grad = torch.ones(shape)
        calls = max(1, 200_000 // x.numel())
        times: dict[str, list[float]] = {name: [] for name in sides}
        for layer in sides.values():
            time_one(layer, x, grad, calls)  # warm-up
        for _ in range(args.rounds):
            for name, layer in sides.items():
                times[name].append(time_one(layer, x, grad, calls))
        ours, theirs = statistics.median(times["packed"]), statistics.median(times["torch"])
        print(f"| {label} | {tuple(shape)} | {theirs:,.0f} | {ours:,.0f} | x{theirs / ours:.2f} |")


if __name__ == "__main__":
    main()
