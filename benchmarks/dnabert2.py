"""DNABERT-2 forward + backward: dnalm's native implementation against the authors' remote code.

Both sides load the same weights, saved once in the published layout (``config.json`` with the hub's
``auto_map`` and no model_type, ``pytorch_model.bin``), and train through the masked-LM head on the same right-padded batch (lengths
drawn between 3/4 of ``--seq-len`` and ``--seq-len``; the loss is the cross-entropy at the real tokens, computed
outside the model so both do the same work; dropout off so the losses can be compared). Each side runs in a
fresh process, so its peak resident set size is its own:

* **native**: ``dnalm.models.families.load_native(folder, "mlm")`` in this interpreter's environment;
* **remote**: the hub's ``bert_layers.py`` (zhihan1996/DNABERT-2-117M at commit d064dec, read from the fetched
  GitHub mirror at run time, never copied here) in an interpreter with the ``transformers`` it was written for
  (``--remote-python``; see tools/golden/dnabert2.py for that venv). Without Triton it runs its PyTorch attention
  path: the padded ``(batch, heads, L, L)`` scores, with padding removed around the feed-forward layers.

Run from the repository root::

    python -m benchmarks.dnabert2 --remote-python /work/refenv-dnabert2/bin/python            # 2 layers, 512 tokens
    python -m benchmarks.dnabert2 --remote-python ... --layers 12 --batch-size 8              # the full 117M model

Peak memory is the growth of peak RSS over the loaded-model baseline (CPU); ``--device cuda`` reports
``torch.cuda.max_memory_allocated`` instead.
"""

from __future__ import annotations

import argparse
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

import torch

MIRROR = Path("/work/.mirror/ashal-ali+CS224N_DNABERT2/repo")
HUB_COMMIT = "d064dece8a8b41d9fb8729fbe3435278786931f1"
AUTO_MAP = {"AutoConfig": "configuration_bert.BertConfig", "AutoModel": "bert_layers.BertModel",
            "AutoModelForMaskedLM": "bert_layers.BertForMaskedLM",
            "AutoModelForSequenceClassification": "bert_layers.BertForSequenceClassification"}


def hub_file(name: str) -> str:
    """A file of the hub repository at HUB_COMMIT, read from its fetched GitHub mirror."""
    return subprocess.run(["git", "--git-dir", str(MIRROR), "show", f"{HUB_COMMIT}:{name}"], check=True,
                          capture_output=True, text=True).stdout


def write_checkpoint(folder: Path, args: argparse.Namespace) -> None:
    """Random weights of the requested size in the published layout: DNABERT-2-117M's architecture with the sizes
    changed and dropout off, every field the authors' ``BertConfig`` reads, the hub's ``auto_map``."""
    from dnalm.models.families import PUBLISHED_CONFIGS, DnaBert2Config, DnaBert2ForMaskedLM

    config = DnaBert2Config(**{**PUBLISHED_CONFIGS["zhihan1996/DNABERT-2-117M"], "hidden_size": args.hidden,
                               "num_hidden_layers": args.layers, "num_attention_heads": args.heads,
                               "intermediate_size": 4 * args.hidden, "hidden_dropout_prob": 0.0})
    torch.manual_seed(0)
    model = DnaBert2ForMaskedLM(config)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    raw = {k: v for k, v in config.to_dict().items() if k != "model_type"}
    (folder / "config.json").write_text(json.dumps({**raw, "auto_map": AUTO_MAP}))


def load_remote(folder: Path, workdir: Path) -> torch.nn.Module:
    """The authors' BertForMaskedLM from the mirror, with the saved weights (Triton left out: PyTorch path)."""
    import importlib

    package = workdir / "dnabert2_hub"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    for name in ("bert_layers.py", "bert_padding.py", "configuration_bert.py"):
        (package / name).write_text(hub_file(name))
    sys.path.insert(0, str(workdir))
    layers = importlib.import_module("dnabert2_hub.bert_layers")
    config_module = importlib.import_module("dnabert2_hub.configuration_bert")
    config = config_module.BertConfig(**json.loads((folder / "config.json").read_text()))
    model = layers.BertForMaskedLM(config)
    missing, unexpected = model.load_state_dict(torch.load(folder / "pytorch_model.bin", weights_only=True),
                                                strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    return model


def batch(args: argparse.Namespace, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    lengths = torch.randint(3 * args.seq_len // 4, args.seq_len + 1, (args.batch_size,), generator=generator)
    lengths[0] = args.seq_len
    ids = torch.randint(5, 4096, (args.batch_size, args.seq_len), generator=generator)
    mask = (torch.arange(args.seq_len)[None] < lengths[:, None]).long()
    ids = torch.where(mask.bool(), ids, 3)  # [PAD]
    return ids.to(device), mask.to(device)


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def child(side: str, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Time forward + backward of one side in this process."""
    torch.set_num_threads(args.threads)
    if side == "native":
        from dnalm.models.families import load_native

        model = load_native(folder, "mlm")
    else:
        model = load_remote(folder, Path(tempfile.mkdtemp(prefix="dnabert2-remote-")))
    model = model.to(device=args.device, dtype=getattr(torch, args.dtype)).train()
    ids, mask = batch(args, args.device)
    real = mask.bool()
    cuda = args.device.startswith("cuda")
    losses, times = [], []

    def step() -> float:
        logits = model(input_ids=ids, attention_mask=mask).logits
        loss = torch.nn.functional.cross_entropy(logits[real].float(), ids[real])
        loss.backward()
        model.zero_grad(set_to_none=True)
        return float(loss)

    baseline = _rss_mb()
    for _ in range(args.warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    for _ in range(args.steps):
        start = time.perf_counter()
        losses.append(step())
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if cuda
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - baseline)
    import transformers

    return {"side": side, "transformers": transformers.__version__, "seq_len": args.seq_len,
            "batch_size": args.batch_size, "real_tokens": int(real.sum()), "layers": args.layers,
            "hidden": args.hidden, "threads": args.threads, "device": args.device, "dtype": args.dtype,
            "median_step_s": statistics.median(times), "samples_per_second": args.batch_size / statistics.median(times),
            "peak_memory_mb": peak, "loss": losses[-1]}


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Save one checkpoint, run each side in its own process, print JSON lines and a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--remote-python", help="interpreter with the authors' transformers (omit: native only)")
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--child", choices=["native", "remote"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.folder, args)))
        return []

    folder = Path(tempfile.mkdtemp(prefix="dnabert2-bench-"))
    write_checkpoint(folder, args)
    forwarded = [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()
                 if k not in ("remote_python", "child", "folder")]
    sides = [("native", sys.executable)] + ([("remote", args.remote_python)] if args.remote_python else [])
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    results = []
    for side, python in sides:
        command = [python, str(Path(__file__).resolve()), "--child", side, "--folder", str(folder), *forwarded]
        done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=root, env=env)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    print(f"\n{'side':>7} {'transformers':>12} {'samples/s':>10} {'step s':>8} {'peak MB':>8} {'loss':>10}")
    for r in results:
        print(f"{r['side']:>7} {r['transformers']:>12} {r['samples_per_second']:>10.3f} {r['median_step_s']:>8.2f} "
              f"{r['peak_memory_mb']:>8.0f} {r['loss']:>10.5f}")
    return results


if __name__ == "__main__":
    main()
