"""Pre-training throughput: ``dnalm.pretrain`` against ``transformers.Trainer`` + ``DataCollatorForLanguageModeling``.

Both sides train the same causal LM (a Mistral-DNA-style 1M Mixtral built from scratch with the tokenizer of
``../shared/models/mistral_dna_1m_hg38_tf0``) for the same number of optimiser steps with the same batch size,
context, optimiser (AdamW, linear schedule, 10 % warm-up) and precision on the same genome, each side in its own
process, alternating over ``--repeats``:

* ``dnalm``: ``python -m dnalm.pretrain`` as composed by its config (packed genome, windows tokenized per batch);
* ``hf``: the route of the Hugging Face language-modelling examples: windows of the genome as a ``datasets``
  table, ``Dataset.map(tokenizer)``, ``DataCollatorForLanguageModeling(mlm=False)`` and ``Trainer``.

Tokens/s counts real (unpadded) training tokens from the end of step 1 to the end of the last step, per second of
wall clock and per second of the process's CPU time (the second figure stays comparable when other jobs share the
machine)::

    python benchmarks/pretrain_throughput.py                        # 60 steps, batch 32, 256 tokens, CPU
    python benchmarks/pretrain_throughput.py --steps 200 --repeats 3
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
GENOME = SHARED / "data" / "gut_phage" / "raw" / "phage_ecoli_guelin_98.fa.gz"
TOKENIZER = SHARED / "models" / "mistral_dna_1m_hg38_tf0"
_RESULT = "RESULT "
ARCH = {"model_type": "mixtral", "hidden_size": 64, "intermediate_size": 64, "num_hidden_layers": 4,
        "num_attention_heads": 8, "num_key_value_heads": 8, "head_dim": 8, "num_local_experts": 8,
        "num_experts_per_tok": 1, "max_position_embeddings": 256, "rope_theta": 1e6, "tie_word_embeddings": False}


class Clock:
    """End-of-step timestamps and the real tokens of each step."""

    def __init__(self) -> None:
        self.ends: list[float] = []
        self.cpu_ends: list[float] = []
        self.tokens: list[int] = []

    def tick(self) -> None:
        """Mark the end of a step."""
        self.ends.append(time.perf_counter())
        self.cpu_ends.append(time.process_time())

    def summary(self) -> dict[str, float]:
        steps = len(self.ends)
        seconds = self.ends[-1] - self.ends[0] if steps > 1 else float("nan")
        cpu_seconds = self.cpu_ends[-1] - self.cpu_ends[0] if steps > 1 else float("nan")
        tokens = sum(self.tokens[1:steps])
        return {"steps": steps, "tokens_per_s": tokens / seconds if steps > 1 else float("nan"),
                "tokens_per_cpu_s": tokens / cpu_seconds if steps > 1 else float("nan")}


def base_model(folder: Path) -> Path:
    """The from-scratch model both sides start from (same random weights), saved with its tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER)
    fields = {k: v for k, v in ARCH.items() if k != "model_type"}
    config = AutoConfig.for_model(ARCH["model_type"], vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                                  bos_token_id=tokenizer.cls_token_id, **fields)
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def run_dnalm(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """``dnalm.pretrain`` composed as its command line would be."""
    import lightning as L
    from hydra import compose, initialize_config_dir

    from dnalm import pretrain as app
    from dnalm.configs import CONFIG_DIR

    clock = Clock()

    class Timer(L.Callback):
        def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any,
                               batch_idx: int) -> None:
            clock.tokens.append(int(batch["attention_mask"].sum()))
            clock.tick()

    original = app.runtime.make_callbacks
    app.runtime.make_callbacks = lambda cfg: [*original(cfg), Timer()]  # type: ignore[assignment]
    overrides = ["model=hf", f"model.name_or_path={args.model}",
                 "model.max_tokens=256", f"data.paths=[{args.genome}]", "data.holdout.by=record",
                 f"data.batch_size={args.batch_size}", "data.both_strands=false", "logger=csv", "~callbacks",
                 "trainer.accelerator=cpu", f"trainer.max_steps={args.steps}", "trainer.max_epochs=-1",
                 "trainer.limit_val_batches=0", "+trainer.enable_checkpointing=false", "optim.lr=1e-3",
                 f"optim.warmup_steps={args.steps // 10}", f"paths.output_dir={work / 'run'}",
                 f"paths.log_dir={work / 'logs'}", f"paths.cache_dir={work / 'cache'}"]
    conf = CONFIG_DIR
    with initialize_config_dir(config_dir=conf, version_base="1.3"):
        cfg = compose(config_name="pretrain", overrides=overrides)
    start = time.perf_counter()
    L.seed_everything(0)
    module, datamodule, _, _, _ = app.build(cfg, work / "run")
    trainer = app.runtime.make_trainer(cfg, app.runtime.make_callbacks(cfg), app.runtime.make_loggers(cfg))
    trainer.fit(module, datamodule=datamodule)
    return {"wall_s": time.perf_counter() - start, **clock.summary()}


def run_hf(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """The Hugging Face language-modelling route on the same windows."""
    from datasets import Dataset
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForLanguageModeling,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    from dnalm.data.fasta import read_fasta

    start = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model)
    window = args.window_bp
    texts = [seq[i:i + window] for _, seq, _ in read_fasta(args.genome) for i in range(0, len(seq) - window + 1, window)]
    data = Dataset.from_dict({"text": texts}).map(
        lambda batch: tokenizer(batch["text"], truncation=True, max_length=256), batched=True, remove_columns=["text"])
    collator = DataCollatorForLanguageModeling(tokenizer, mlm=False)
    clock = Clock()

    def counting(features: list[dict[str, Any]]) -> Any:
        batch = collator(features)
        clock.tokens.append(int(batch["attention_mask"].sum()))
        return batch

    class Timer(TrainerCallback):
        def on_step_end(self, *unused: Any, **kwargs: Any) -> None:
            clock.tick()

    training = TrainingArguments(output_dir=str(work / "hf"), per_device_train_batch_size=args.batch_size,
                                 max_steps=args.steps, learning_rate=1e-3, weight_decay=0.01,
                                 warmup_steps=args.steps // 10, lr_scheduler_type="linear", max_grad_norm=1.0,
                                 save_strategy="no", eval_strategy="no", report_to="none", use_cpu=True,
                                 disable_tqdm=True, seed=0)
    Trainer(model=model, args=training, train_dataset=data, data_collator=counting, callbacks=[Timer()]).train()
    return {"wall_s": time.perf_counter() - start, **clock.summary()}


def child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix=f"dnalm-pretrain-bench-{args.side}-") as tmp:
        result = (run_dnalm if args.side == "dnalm" else run_hf)(args, Path(tmp))
    print(_RESULT + json.dumps({"side": args.side, **result}), flush=True)


def spawn(side: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--side", side, "--model", str(args.model),
               "--genome", str(args.genome), "--steps", str(args.steps), "--batch-size", str(args.batch_size),
               "--window-bp", str(args.window_bp), "--threads", str(args.threads)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO)
    lines = [line for line in done.stdout.splitlines() if line.startswith(_RESULT)]
    if done.returncode != 0 or not lines:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-6000:])
        raise SystemExit(f"the {side} run failed (exit {done.returncode})")
    return json.loads(lines[-1][len(_RESULT):])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--genome", type=Path, default=GENOME)
    parser.add_argument("--model", type=Path, default=None, help="(internal) the shared starting model")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--window-bp", type=int, default=1000, help="bp per window on the Trainer side")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--side", choices=("dnalm", "hf"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side:
        child(args)
        return
    with tempfile.TemporaryDirectory(prefix="dnalm-pretrain-bench-") as tmp:
        args.model = base_model(Path(tmp) / "model")
        runs: dict[str, list[dict[str, Any]]] = {"dnalm": [], "hf": []}
        for repeat in range(args.repeats):
            for side in ("dnalm", "hf") if repeat % 2 == 0 else ("hf", "dnalm"):
                result = spawn(side, args)
                runs[side].append(result)
                print(f"[{repeat + 1}/{args.repeats}] {side}: {result['tokens_per_s']:.0f} tokens/s, "
                      f"{result['tokens_per_cpu_s']:.0f} tokens/CPU-s", flush=True)
    print(f"\ngenome={args.genome.name} steps={args.steps} batch={args.batch_size} threads={args.threads} "
          f"repeats={args.repeats}")
    print("| side | tokens/s (median) | tokens per CPU second (median) |\n|---|---|---|")
    medians = {side: {key: statistics.median(r[key] for r in results) for key in ("tokens_per_s", "tokens_per_cpu_s")}
               for side, results in runs.items()}
    for side, label in (("dnalm", "dnalm.pretrain"), ("hf", "Trainer + DataCollatorForLanguageModeling")):
        print(f"| {label} | {medians[side]['tokens_per_s']:.0f} | {medians[side]['tokens_per_cpu_s']:.0f} |")
    ratio = {key: medians["dnalm"][key] / medians["hf"][key] for key in ("tokens_per_s", "tokens_per_cpu_s")}
    print(f"\ndnalm / Trainer: x{ratio['tokens_per_s']:.2f} (wall clock), x{ratio['tokens_per_cpu_s']:.2f} (CPU time)")


if __name__ == "__main__":
    main()
