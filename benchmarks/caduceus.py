"""Caduceus forward+backward at long context: dnalm's native implementation against the authors' code.

Each measurement runs in its own subprocess (so its peak memory is its own): a Caduceus-PS masked LM of the
published width (d_model 256, the published ssm_cfg, RMSNorm, fused_add_norm) with ``--layers`` blocks, batch 1,
random tokens, one forward + backward of the masked-LM loss, fp32 on CPU.

* **native**: ``dnalm.models.families.CaduceusForMaskedLM`` (chunked pure-PyTorch scan; the ``mamba-ssm`` CUDA
  kernels when installed and ``--device cuda``).
* **authors**: kuleshov-group/caduceus ``CaduceusForMaskedLM`` with the Mamba authors' pure-PyTorch reference
  scans standing in for the kernels (``selective_scan_ref`` loops over positions in Python), run by
  ``--reference-python`` (the environment of tools/golden/caduceus.py) from the git mirrors. Skipped when that
  interpreter is missing.

    python benchmarks/caduceus.py                                     # 1k and 4k tokens, 2 blocks, both sides
    python benchmarks/caduceus.py --lengths 1024 4096 16384 --only native
    python benchmarks/caduceus.py --device cuda --layers 16 --lengths 131072 --only native

Columns: **s** wall time of forward + backward (median of ``--repeats`` runs after one warm-up run),
**tokens/s**, **peak MiB** the process's peak resident set size on CPU (``ru_maxrss``: imports count too; glibc's
mmap threshold is fixed at 1 MiB in both children so that freed tensors leave it) or
``torch.cuda.max_memory_allocated`` on CUDA, **run MiB** on CPU that peak less the resident size just before the
runs (what forward + backward add on top of imports and weights).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMPLEMENT = {**{i: i for i in range(16)}, 7: 10, 8: 9, 9: 8, 10: 7}
SSM_CFG = {"d_state": 16, "d_conv": 4, "expand": 2, "dt_rank": "auto", "bias": False, "conv_bias": True,
           "use_fast_path": True}


def config_fields(layers: int) -> dict:
    return {"d_model": 256, "n_layer": layers, "vocab_size": 16, "ssm_cfg": dict(SSM_CFG), "rms_norm": True,
            "residual_in_fp32": False, "fused_add_norm": True, "bidirectional": True,
            "bidirectional_strategy": "add", "bidirectional_weight_tie": True, "rcps": True,
            "complement_map": dict(COMPLEMENT)}


def measure(model, length: int, repeats: int, device: str) -> dict:
    """Median forward+backward seconds and peak memory for one model."""
    import resource

    import torch

    torch.manual_seed(0)
    ids = torch.randint(7, 11, (1, length), device=device)
    before = _rss_mib()
    times = []
    for run in range(repeats + 1):
        model.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        logits = model(ids).logits
        loss = torch.nn.functional.cross_entropy(logits.view(-1, logits.shape[-1]), ids.view(-1))
        loss.backward()
        if device == "cuda":
            torch.cuda.synchronize()
        if run:  # the first run warms up
            times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    extra = peak if device == "cuda" else peak - before
    return {"length": length, "s": seconds, "tokens/s": length / seconds, "peak MiB": peak, "extra MiB": extra}


def _rss_mib() -> float:
    """Current resident set size (Linux), to separate the run's memory from imports and weights."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_native(args: argparse.Namespace) -> dict:
    import torch

    from dnalm.models.families import CaduceusConfig, CaduceusForMaskedLM

    torch.set_num_threads(args.threads)
    model = CaduceusForMaskedLM(CaduceusConfig(**config_fields(args.layers))).to(args.device).train()
    if getattr(args, "checkpointing", False):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    return measure(model, args.length, args.repeats, args.device)


def run_authors(args: argparse.Namespace) -> dict:
    """The authors' model with the reference scans (see tools/golden/caduceus.py for the stand-in package)."""
    import torch

    sys.path.insert(0, str(ROOT))
    from tools.golden.caduceus import write_caduceus_package, write_stub

    torch.set_num_threads(args.threads)
    root = Path(tempfile.mkdtemp())
    mirrors = Path(args.mirrors)
    write_stub(root, mirrors / "state-spaces+mamba/repo", mirrors / "Dao-AILab+causal-conv1d/repo")
    write_caduceus_package(root, mirrors / "kuleshov-group+caduceus/repo")
    sys.path.insert(0, str(root))
    from caduceus_ref.configuration_caduceus import CaduceusConfig
    from caduceus_ref.modeling_caduceus import CaduceusForMaskedLM

    model = CaduceusForMaskedLM(CaduceusConfig(**config_fields(args.layers))).train()
    return measure(model, args.length, args.repeats, "cpu")


def child(args: argparse.Namespace, impl: str, length: int) -> dict | str:
    python = sys.executable if impl == "native" else args.reference_python
    command = [python, __file__, "--child", impl, "--length", str(length), "--layers", str(args.layers),
               "--repeats", str(args.repeats), "--threads", str(args.threads), "--device", args.device,
               "--mirrors", args.mirrors]
    # glibc's mmap threshold fixed at 1 MiB on both sides: freed tensors leave the resident set, so the peak
    # measures live memory rather than what the allocator kept after earlier frees
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": str(args.threads),
           "MALLOC_MMAP_THRESHOLD_": str(2**20)}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout, env=env)
    except subprocess.TimeoutExpired:
        return f"over {args.timeout} s"
    if done.returncode:
        return "failed: " + (done.stderr.strip().splitlines() or ["?"])[-1][:80]
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--only", choices=["native", "authors"])
    parser.add_argument("--reference-python", default="/work/refenv-caduceus/bin/python")
    parser.add_argument("--mirrors", default="/work/.mirror")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per measurement")
    parser.add_argument("--child", choices=["native", "authors"], help=argparse.SUPPRESS)
    parser.add_argument("--length", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_native(args) if args.child == "native" else run_authors(args)))
        return
    impls = [args.only] if args.only else ["native", "authors"]
    if "authors" in impls and (args.device != "cpu" or not Path(args.reference_python).exists()):
        impls.remove("authors")
    print(f"Caduceus-PS, d_model 256, {args.layers} blocks, batch 1, forward+backward, {args.device}, "
          f"{args.threads} thread(s)")
    print(f"{'impl':8} {'tokens':>8} {'s':>8} {'tokens/s':>9} {'peak MiB':>9} {'run MiB':>8}")
    for length in args.lengths:
        for impl in impls:
            row = child(args, impl, length)
            if isinstance(row, str):
                print(f"{impl:8} {length:>8} {row}")
            else:
                print(f"{impl:8} {length:>8} {row['s']:>8.2f} {row['tokens/s']:>9.0f} {row['peak MiB']:>9.0f} "
                      f"{row['extra MiB']:>8.0f}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
