"""Forward + backward time and peak memory of dnalm's native HyenaDNA against the authors' ``modeling_hyena.py``.

    python benchmarks/hyenadna.py                                   # 32,768 tokens, small-32k shape, native only
    python benchmarks/hyenadna.py --tokens 32768 160000 \\
        --reference-python /work/refenv-hyena/bin/python \\
        --reference-repo /work/.mirror/shubhamtkr+checkpoint-62500/repo \\
        --reference-commit 22f96459d32d1b300fc75b225c53495e7a96ec2b
    python benchmarks/hyenadna.py --device cuda --tokens 32768 160000 450000 1000000 --checkpointing
    python benchmarks/hyenadna.py --params                          # parameters of the published shapes

Builds HyenaDNA of a published shape with random weights (time and memory do not depend on their values):
``--shape small`` is hyenadna-small-32k (d_model 256, 4 layers), ``medium`` the 160k/450k and ``large`` the 1M
checkpoints (d_model 256, 8 layers); ``max_seq_len`` is the input length plus 2, as published. One sequence of
``--tokens`` random nucleotides goes forward and backward (a sum of the last hidden state as the loss) after
one warm-up step; the time is the median of ``--repeats`` steps, as wall-clock seconds and as the process's CPU
seconds (all threads; on a shared CPU the wall clock mostly measures the other jobs). Each (implementation, length) runs in a fresh
process, so the peak is its own: on CPU the growth of peak resident memory over the baseline before the model
is built, on CUDA ``torch.cuda.max_memory_allocated``. The reference (the Hugging Face port the -hf repositories
ship) runs with the python of an environment with the transformers it was written for; its source is read from
a git mirror at run time, never copied here. ``--checkpointing`` enables gradient checkpointing on both sides
(one block's activations at a time).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SHAPES = {"small": (256, 4), "medium": (256, 8), "large": (256, 8), "tiny": (16, 2)}  # tiny: checks the path


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize()


def _fields(shape: str, tokens: int) -> dict[str, Any]:
    d_model, layers = SHAPES[shape]
    return {"vocab_size": 12, "d_model": d_model, "n_layer": layers, "d_inner": 4 * d_model, "max_seq_len": tokens + 2,
            "emb_dim": 5, "filter_order": 64, "activation_freq": 10, "num_inner_mlps": 2, "pad_vocab_size_multiple": 8}


def _model(impl: str, fields: dict[str, Any], args: argparse.Namespace) -> Any:
    if impl == "native":
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from dnalm.models.families.hyenadna import HyenaDNAConfig, HyenaDNAModel

        return HyenaDNAModel(HyenaDNAConfig(**fields, fft_chunk_channels=args.fft_chunk))
    package = Path(tempfile.mkdtemp()) / "hyena_ref"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in ("configuration_hyena.py", "modeling_hyena.py"):
        source = subprocess.run(["git", f"--git-dir={args.reference_repo}", "show", f"{args.reference_commit}:{name}"],
                                check=True, capture_output=True, text=True).stdout
        (package / name).write_text(source)
    sys.path.insert(0, str(package.parent))
    conf = importlib.import_module("hyena_ref.configuration_hyena")
    modeling = importlib.import_module("hyena_ref.modeling_hyena")
    return modeling.HyenaDNAModel(conf.HyenaConfig(**fields))


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """One implementation at one length, in this process: build, warm up, time forward + backward."""
    import torch

    torch.set_num_threads(args.threads)
    cuda = args.device.startswith("cuda")
    baseline = _rss_bytes()
    torch.manual_seed(0)
    model = _model(args.worker, _fields(args.shape, args.tokens[0]), args).to(args.device)
    if args.checkpointing:
        model.gradient_checkpointing_enable()
    model.train()
    ids = torch.randint(7, 11, (1, args.tokens[0]), device=args.device)
    times, cpu_times = [], []
    for step in range(args.repeats + 1):
        if cuda:
            torch.cuda.synchronize()
        start, cpu_start = time.perf_counter(), time.process_time()
        hidden = model(input_ids=ids).last_hidden_state if args.worker == "native" else model(ids)
        hidden = hidden.last_hidden_state if hasattr(hidden, "last_hidden_state") else hidden
        hidden.float().sum().backward()
        if cuda:
            torch.cuda.synchronize()
        if step:  # the first step is a warm-up (allocator, FFT plans)
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
        model.zero_grad(set_to_none=True)
    peak = torch.cuda.max_memory_allocated() if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - baseline
    return {"impl": args.worker, "tokens": args.tokens[0], "seconds": statistics.median(times),
            "cpu_seconds": statistics.median(cpu_times), "peak_gib": peak / 2**30,
            "params": sum(p.numel() for p in model.parameters())}


def run(impl: str, tokens: int, args: argparse.Namespace) -> dict[str, Any] | None:
    """One (implementation, length) in a fresh process (None, with its error printed, when it fails)."""
    python = sys.executable if impl == "native" else args.reference_python
    command = [python, str(Path(__file__).resolve()), "--worker", impl, "--tokens", str(tokens), "--shape", args.shape,
               "--repeats", str(args.repeats), "--threads", str(args.threads), "--device", args.device]
    if args.checkpointing:
        command.append("--checkpointing")
    if args.fft_chunk:
        command += ["--fft-chunk", str(args.fft_chunk)]
    if impl == "reference":
        command += ["--reference-repo", args.reference_repo, "--reference-commit", args.reference_commit]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        print(f"{impl} at {tokens:,} tokens failed:\n{result.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


def print_params() -> None:
    """Parameters of every published HyenaDNA shape (built on the meta device: no memory, no weights)."""
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from dnalm.models.families.hyenadna import HyenaDNAConfig, HyenaDNAModel
    from dnalm.models.families.published import PUBLISHED_CONFIGS

    print(f"{'checkpoint':<45} {'params':>9} {'without z':>10}")
    for name, fields in PUBLISHED_CONFIGS.items():
        if fields.get("model_type") != "hyenadna":
            continue
        with torch.device("meta"):
            model = HyenaDNAModel(HyenaDNAConfig(**{k: v for k, v in fields.items() if k != "model_type"}))
        total = sum(p.numel() for p in model.parameters())
        z = sum(p.numel() for n, p in model.named_parameters() if n.endswith("pos_emb.z"))
        print(f"{name:<45} {total / 1e6:>8.2f}M {(total - z) / 1e6:>9.2f}M")


def main(argv: list[str] | None = None) -> None:
    """Run every (implementation, length) in its own process and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, nargs="+", default=[32768])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="small")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 0)) or len(os.sched_getaffinity(0)))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--checkpointing", action="store_true")
    parser.add_argument("--fft-chunk", type=int, default=None, help="native only: channels per FFT group")
    parser.add_argument("--reference-python", default=None, help="python of an environment with transformers 4.3x")
    parser.add_argument("--reference-repo", default=None, help="git dir holding modeling_hyena.py")
    parser.add_argument("--reference-commit", default="HEAD")
    parser.add_argument("--params", action="store_true", help="print the parameters of the published shapes")
    parser.add_argument("--worker", choices=["native", "reference"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.params:
        print_params()
        return
    if args.worker:
        print(json.dumps(worker(args)))
        return
    impls = ["native"] + (["reference"] if args.reference_python and args.reference_repo else [])
    print(f"HyenaDNA {args.shape} shape, batch 1, forward+backward, {args.device}, {args.threads} threads"
          + (", gradient checkpointing" if args.checkpointing else ""))
    print(f"{'impl':<10} {'tokens':>10} {'seconds':>9} {'CPU s':>9} {'peak GiB':>9}")
    for tokens in args.tokens:
        for impl in impls:
            row = run(impl, tokens, args)
            if row:
                print(f"{row['impl']:<10} {row['tokens']:>10,} {row['seconds']:>9.2f} {row['cpu_seconds']:>9.2f} "
                      f"{row['peak_gib']:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
