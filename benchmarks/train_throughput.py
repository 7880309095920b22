"""LoRA fine-tuning throughput: dnalm against the usual ``transformers.Trainer`` + PEFT notebook route.

Both sides fine-tune the same pretrained backbone on the same table dataset with the same LoRA settings
(r, alpha, dropout, target modules), batch size, optimiser (AdamW, linear schedule with warmup, gradient
clipping at 1.0), precision and number of optimiser steps, without evaluation or checkpoints:

* ``dnalm``: the Hydra config composed as ``python -m dnalm.train model=hf data=table strategy=lora`` would,
  then the same calls as ``dnalm.train.build`` / ``train`` (``load_backbone``, ``DNADataModule.setup``,
  ``DNALMModule``, ``runtime.make_trainer`` and ``Trainer.fit``).
* ``hf``: what the Nucleotide Transformer fine-tuning notebooks do: ``AutoModelForSequenceClassification``,
  ``datasets.load_dataset("csv")`` + ``Dataset.map`` with the Hugging Face tokenizer, PEFT ``get_peft_model``
  (``TaskType.SEQ_CLS``), ``DataCollatorWithPadding`` and ``transformers.Trainer``.

Each side runs in its own subprocess (so peak memory is its own), alternating the order over ``--repeats``;
the table shows medians. Columns: ``prep s`` reading + tokenizing every split (cold caches), ``fit s`` the
whole training call, ``loop samples/s`` training samples per second from the end of the first step to the end
of the last one (data loading, forward, backward, optimiser and framework overhead included),
``tokens/sample`` real (unpadded) tokens per training sample, the same on both sides when they do the same
work, ``pad %``
padding tokens in the training batches, ``peak MB`` the peak resident set size (CPU) or
``torch.cuda.max_memory_allocated`` (CUDA)::

    python benchmarks/train_throughput.py                                   # human_tf_1, 200 steps, CPU
    python benchmarks/train_throughput.py --data ../shared/data/gut_phage --steps 60 --threads 1
    python benchmarks/train_throughput.py --device cuda --batch-size 64 --steps 300
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
DEFAULT_MODEL = SHARED / "models" / "mistral_dna_1m_hg38_tf0"
DEFAULT_DATA = SHARED / "data" / "gue" / "human_tf_1"
SIDES = ("dnalm", "hf")
_RESULT = "RESULT "


# -- helpers shared by both sides ----------------------------------------------------------------------------
def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def peak_memory_mb(device: str) -> float:
    """Peak CUDA memory allocated by torch, or this process's peak resident set size on CPU."""
    if device == "cuda":
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class StepClock:
    """Timestamps at the end of every optimiser step, with the samples and tokens of each step's batch."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.ends: list[float] = []
        self.samples: list[int] = []
        self.tokens = 0
        self.slots = 0

    def batch(self, attention_mask: Any) -> None:
        """Count the real and padded token slots of one training batch."""
        self.tokens += int(attention_mask.sum())
        self.slots += int(attention_mask.numel())
        self.samples.append(int(attention_mask.shape[0]))

    def step_end(self) -> None:
        """Record the end of one optimiser step."""
        _sync(self.device)
        self.ends.append(time.perf_counter())

    def summary(self) -> dict[str, float]:
        """Loop samples/s over steps 2..N (step 1 is warm-up) and the padding fraction."""
        steps = len(self.ends)
        seconds = self.ends[-1] - self.ends[0] if steps > 1 else float("nan")
        samples = sum(self.samples[1:steps])
        return {"steps": steps, "loop_seconds": seconds, "loop_samples": samples,
                "samples_per_s": samples / seconds if steps > 1 else float("nan"),
                "tokens_per_sample": self.tokens / sum(self.samples) if self.samples else float("nan"),
                "pad_fraction": 1 - self.tokens / self.slots if self.slots else float("nan")}


# -- dnalm ---------------------------------------------------------------------------------------------------
def run_dnalm(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Fine-tune through dnalm's own building blocks, configured as ``python -m dnalm.train`` would be."""
    import lightning as L
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from dnalm import runtime
    from dnalm.configs import CONFIG_DIR
    from dnalm.data.datamodule import DNADataModule
    from dnalm.models.backbone import load_backbone
    from dnalm.models.module import DNALMModule

    overrides = [
        "model=hf", f"model.name_or_path={args.model}", "data=table", f"data.path={args.data}",
        f"data.batch_size={args.batch_size}", *strategy_overrides(args), f"optim.lr={args.lr}",
        f"optim.warmup_steps={warmup_steps(args)}", "logger=csv", "~callbacks",
        f"trainer.accelerator={'gpu' if args.device == 'cuda' else 'cpu'}", f"trainer.max_steps={args.steps}",
        "trainer.max_epochs=-1", "trainer.limit_val_batches=0", "+trainer.enable_checkpointing=false",
        "trainer.enable_model_summary=false", f"paths.output_dir={workdir / 'run'}",
        f"paths.cache_dir={workdir / 'cache'}", f"seed={args.seed}",
    ]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    L.seed_everything(int(cfg.seed), workers=True)

    start = time.perf_counter()
    backbone = load_backbone(cfg.model)
    strategy = instantiate(cfg.strategy)
    load_s = time.perf_counter() - start

    start = time.perf_counter()
    datamodule = DNADataModule(cfg.data, backbone.tokenizer, backbone.max_tokens, seed=int(cfg.seed),
                               cache_dir=cfg.paths.cache_dir)
    datamodule.setup("fit")
    prep_s = time.perf_counter() - start
    prep_peak_mb = peak_memory_mb("cpu")

    assert datamodule.task is not None
    module = DNALMModule(backbone, datamodule.task, strategy, cfg.head, cfg.optim)
    clock = StepClock(args.device)

    class Clock(L.Callback):
        def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                                 batch_idx: int) -> None:
            clock.batch(batch["attention_mask"])

        def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                               batch: Any, batch_idx: int) -> None:
            clock.step_end()

    callbacks = [*runtime.make_callbacks(cfg), Clock()]
    trainer = runtime.make_trainer(cfg, callbacks, runtime.make_loggers(cfg))
    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule)
    _sync(args.device)
    fit_s = time.perf_counter() - start
    trainable, total = module.count_parameters()
    return {"load_s": load_s, "prep_s": prep_s, "prep_peak_mb": prep_peak_mb, "fit_s": fit_s,
            "trainable_params": trainable, "total_params": total,
            "train_items": len(datamodule.splits["train"].ids), **clock.summary()}


# -- transformers.Trainer + PEFT -----------------------------------------------------------------------------
def run_hf(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Fine-tune the way the Hugging Face / Nucleotide Transformer notebooks do."""
    from datasets import load_dataset
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        set_seed,
    )

    import dnalm.models.families  # noqa: F401  NT v2 / GENA: the architecture trust_remote_code would load

    set_seed(args.seed)
    start = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=2)
    load_s = time.perf_counter() - start

    start = time.perf_counter()
    files = {split: str(path) for split in ("train", "validation", "test")
             if (path := table_file(Path(args.data), split)) is not None}
    raw = load_dataset("csv", data_files=files, cache_dir=str(workdir / "datasets"))

    def tokenize(batch: dict[str, list[Any]]) -> Any:
        return tokenizer(batch["sequence"])

    tokenized = raw.map(tokenize, batched=True, remove_columns=["sequence"])
    prep_s = time.perf_counter() - start
    prep_peak_mb = peak_memory_mb("cpu")

    if args.strategy == "lora":
        peft_config = LoraConfig(task_type=TaskType.SEQ_CLS, r=args.lora_r, lora_alpha=args.lora_alpha,
                                 lora_dropout=args.lora_dropout, target_modules=list(args.targets))
        model = get_peft_model(model, peft_config)
    clock = StepClock(args.device)
    collate = DataCollatorWithPadding(tokenizer)

    def counting_collate(features: list[dict[str, Any]]) -> Any:
        batch = collate(features)
        clock.batch(batch["attention_mask"])
        return batch

    class Clock(TrainerCallback):
        def on_step_end(self, *unused: Any, **kwargs: Any) -> None:
            clock.step_end()

    training_args = TrainingArguments(
        output_dir=str(workdir / "hf"), per_device_train_batch_size=args.batch_size, max_steps=args.steps,
        learning_rate=args.lr, weight_decay=0.01, warmup_steps=warmup_steps(args), lr_scheduler_type="linear",
        max_grad_norm=1.0, eval_strategy="no", save_strategy="no", report_to="none", seed=args.seed,
        use_cpu=args.device == "cpu", bf16=args.device == "cuda", disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=training_args, train_dataset=tokenized["train"],
                      data_collator=counting_collate, callbacks=[Clock()])
    start = time.perf_counter()
    trainer.train()
    _sync(args.device)
    fit_s = time.perf_counter() - start
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"load_s": load_s, "prep_s": prep_s, "prep_peak_mb": prep_peak_mb, "fit_s": fit_s,
            "trainable_params": trainable, "total_params": total, "train_items": len(tokenized["train"]),
            **clock.summary()}


# -- driver --------------------------------------------------------------------------------------------------
def strategy_overrides(args: argparse.Namespace) -> list[str]:
    """dnalm's strategy settings matching the Trainer side's (LoRA, or every weight trained)."""
    if args.strategy == "full":
        return ["strategy=full"]
    return ["strategy=lora", f"strategy.r={args.lora_r}", f"strategy.alpha={args.lora_alpha}",
            f"strategy.dropout={args.lora_dropout}", f"strategy.target_modules=[{','.join(args.targets)}]"]


def warmup_steps(args: argparse.Namespace) -> int:
    """10 % of the steps, the same on both sides."""
    return int(0.1 * args.steps)


def table_file(folder: Path, split: str) -> Path | None:
    """The ``train`` / ``valid`` / ``test`` file of a table folder (``.csv`` or ``.csv.gz``), if present."""
    names = {"validation": ("valid", "validation", "dev")}.get(split, (split,))
    for name in names:
        for suffix in (".csv.gz", ".csv"):
            if (folder / f"{name}{suffix}").is_file():
                return folder / f"{name}{suffix}"
    return None


def run_side(args: argparse.Namespace) -> None:
    """Child process: run one side and print its measurements as one JSON line."""
    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix=f"dnalm-bench-{args.side}-") as tmp:
        runner = run_dnalm if args.side == "dnalm" else run_hf
        result = runner(args, Path(tmp))
    result.update(side=args.side, peak_mb=peak_memory_mb(args.device), threads=torch.get_num_threads())
    print(_RESULT + json.dumps(result), flush=True)


def spawn(side: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one side in a fresh interpreter and return its measurements."""
    command = [sys.executable, str(Path(__file__).resolve()), "--side", side, "--model", str(args.model),
               "--data", str(args.data), "--steps", str(args.steps), "--batch-size", str(args.batch_size),
               "--device", args.device, "--threads", str(args.threads), "--lora-r", str(args.lora_r),
               "--lora-alpha", str(args.lora_alpha), "--lora-dropout", str(args.lora_dropout),
               "--lr", str(args.lr), "--seed", str(args.seed), "--strategy", args.strategy,
               "--targets", *args.targets]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1", "WANDB_MODE": "disabled",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO)
    lines = [line for line in done.stdout.splitlines() if line.startswith(_RESULT)]
    if done.returncode != 0 or not lines:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-8000:])
        raise SystemExit(f"the {side} run failed (exit {done.returncode})")
    return json.loads(lines[-1][len(_RESULT):])


def median(runs: list[dict[str, Any]], key: str) -> float:
    """Median of one measurement over repeats."""
    return statistics.median(float(r[key]) for r in runs)


def report(results: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> str:
    """A markdown table of medians plus the dnalm / hf ratios."""
    unit = "CUDA MB" if args.device == "cuda" else "RSS MB"
    lines = [f"data={args.data}  model={Path(args.model).name}  steps={args.steps}  batch={args.batch_size}  "
             f"device={args.device}  threads={args.threads}  repeats={args.repeats}  "
             f"LoRA r={args.lora_r} alpha={args.lora_alpha} targets={','.join(args.targets)}",
             "",
             f"| side | prep s | load s | fit s | loop samples/s | tokens/sample | pad % | peak {unit} | trainable |",
             "|---|---|---|---|---|---|---|---|---|"]
    for side in SIDES:
        runs = results[side]
        lines.append(f"| {side} | {median(runs, 'prep_s'):.2f} | {median(runs, 'load_s'):.2f} | "
                     f"{median(runs, 'fit_s'):.2f} | {median(runs, 'samples_per_s'):.1f} | "
                     f"{median(runs, 'tokens_per_sample'):.1f} | {100 * median(runs, 'pad_fraction'):.1f} | "
                     f"{median(runs, 'peak_mb'):.0f} | "
                     f"{runs[0]['trainable_params']:,} |")
    ours, theirs = results["dnalm"], results["hf"]
    speed = median(ours, "samples_per_s") / median(theirs, "samples_per_s")
    paired = statistics.median(a["samples_per_s"] / b["samples_per_s"] for a, b in zip(ours, theirs))
    lines += ["", f"dnalm / hf: loop samples/s x{speed:.2f} (median of the per-repeat ratios x{paired:.2f}), "
              f"prep time x{median(ours, 'prep_s') / median(theirs, 'prep_s'):.2f}, "
              f"fit time x{median(ours, 'fit_s') / median(theirs, 'fit_s'):.2f}, "
              f"peak memory x{median(ours, 'peak_mb') / median(theirs, 'peak_mb'):.2f}",
              "per run loop samples/s: " + "; ".join(
                  f"{side} " + ", ".join(f"{r['samples_per_s']:.1f}" for r in results[side])
                  for side in SIDES)]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="local Hugging Face model folder")
    parser.add_argument("--data", default=str(DEFAULT_DATA),
                        help="table folder with train/[valid]/test .csv(.gz)")
    parser.add_argument("--steps", type=int, default=200, help="optimiser steps per side")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int,
                        default=int(os.environ.get("OMP_NUM_THREADS") or len(os.sched_getaffinity(0))),
                        help="torch / OpenMP threads in each side (default: $OMP_NUM_THREADS, else every CPU "
                             "this process may use, as torch would)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs per side, order alternating; medians shown")
    parser.add_argument("--strategy", choices=("lora", "full"), default="lora",
                        help="LoRA on --targets, or full fine-tuning on both sides")
    parser.add_argument("--lora-r", type=int, default=8)
    parser.add_argument("--lora-alpha", type=int, default=16)
    parser.add_argument("--lora-dropout", type=float, default=0.1)
    parser.add_argument("--targets", nargs="+", default=["q_proj", "v_proj"], help="LoRA target modules")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--only", choices=SIDES, help="run one side only (no ratio)")
    parser.add_argument("--json", type=Path, help="also write every run's measurements here")
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)  # internal: the child process
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run both sides ``--repeats`` times in alternating order and print the table."""
    args = parse_args(argv)
    if args.side:
        run_side(args)
        return
    sides = [args.only] if args.only else list(SIDES)
    results: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    for repeat in range(args.repeats):
        for side in sides if repeat % 2 == 0 else sides[::-1]:
            result = spawn(side, args)
            results[side].append(result)
            print(f"[{repeat + 1}/{args.repeats}] {side}: prep {result['prep_s']:.2f}s  "
                  f"fit {result['fit_s']:.2f}s  "
                  f"{result['samples_per_s']:.1f} samples/s  pad {100 * result['pad_fraction']:.1f}%  "
                  f"peak {result['peak_mb']:.0f} MB", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if args.only:
        return
    print()
    print(report(results, args))


if __name__ == "__main__":
    main()
