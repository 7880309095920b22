"""``python -m dnalm.pretrain``: pre-train or continue pre-training a DNA language model on genomes.

    python -m dnalm.pretrain experiment=pretrain_gut_bacteria_clm           # from scratch, Mixtral-style, BPE
    python -m dnalm.pretrain model=mistral_dna_1m_hg38 model.name_or_path=<folder> model.new_lm_head=true \\
        objective=clm data.paths=[genome.fa.gz] strategy=full
    python -m dnalm.pretrain model=nt_v2_50m model.name_or_path=<folder> objective=mlm strategy=lora ...

The genome is packed once (one byte per base, memory-mapped), held out by group / record / block, and cut
into windows of the model's context with new offsets and strands every epoch. The run directory gets
``metrics.json`` (validation loss, perplexity and token accuracy before and after training, throughput) and
``model/``: a Hugging Face folder (model, tokenizer, model card) that ``dnalm.train model=hf``,
``dnalm.embed``, ``dnalm.generate`` and ``dnalm.variants`` load as it is. ``ckpt_path=last`` resumes.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from transformers import AutoTokenizer

from dnalm import results, runtime
from dnalm.configs import CONFIG_DIR, exit_on_renamed_config
from dnalm.data.encode import SpecialLayout
from dnalm.errors import ConfigError
from dnalm.models.backbone import Backbone, _default_lora_targets
from dnalm.pretraining.data import GenomeDataModule, holdout_from
from dnalm.pretraining.genome import Genome, Segment
from dnalm.pretraining.models import auto_class, continued, from_scratch, save_folder
from dnalm.pretraining.module import LMModule
from dnalm.tokenizers import as_dna_tokenizer
from dnalm.train import resolve_ckpt_path
from dnalm.utils.cli import run_task

log = logging.getLogger("dnalm.pretrain")


def corpus(genome: Genome, segments: list[Segment], sample_bp: int, piece_bp: int = 10_000) -> Iterator[str]:
    """About ``sample_bp`` of training sequence spread evenly over the segments (tokenizer training)."""
    total = sum(s.end - s.start for s in segments)
    every = max(1, total // max(1, sample_bp))
    for segment in segments:
        for start in range(segment.start, segment.end, piece_bp * every):
            yield genome.sequence(segment.record, start, min(piece_bp, segment.end - start))


def context_tokens(model: Any, model_cfg: DictConfig) -> int:
    """Tokens per window: ``model.max_tokens`` or the position limit (ESM reserves two positions)."""
    configured = model_cfg.get("max_tokens")
    if configured:
        return int(configured)
    limit = getattr(model.config, "max_position_embeddings", None) or 1024
    return int(limit) - (2 if model.config.model_type == "esm" else 0)


def bp_per_token(tokenizer: Any, hf: Any, genome: Genome, segments: list[Segment]) -> float:
    """Bases per content token (special tokens not counted), measured on a sample of the training sequence."""
    sample = list(corpus(genome, segments, 200_000, piece_bp=2_000))[:50]
    layout = SpecialLayout.of(hf)
    specials = layout.prefix + layout.suffix
    tokens = sum(len(ids) - specials for ids in tokenizer(sample)["input_ids"])
    return sum(len(s) for s in sample) / max(1, tokens)


def build(cfg: DictConfig, run_dir: Path) -> tuple[LMModule, GenomeDataModule, Any, Any, list[str]]:
    """Genome, language model, strategy, data and module from a composed config."""
    objective = instantiate(cfg.objective)
    data_cfg = cfg.data
    holdout = data_cfg.get("holdout") or {}
    genome = Genome.pack(data_cfg.paths, Path(cfg.paths.cache_dir) / "genomes", holdout.get("group_regex"))
    log.info("genome: %d records, %s bp", len(genome.records), f"{genome.total_bp:,}")
    splits = holdout_from(data_cfg, int(cfg.seed)).split(genome)
    new_weights: list[str] = []
    if cfg.model.get("from_config"):
        saved = run_dir / "tokenizer"
        spec = cfg.model.from_config
        if saved.is_dir():  # a resumed run keeps the tokenizer it started with
            spec = OmegaConf.merge(spec, {"tokenizer": "char"})
        model, hf = from_scratch(spec, objective.causal,
                                 corpus(genome, splits["train"], int(cfg.model.get("tokenizer_sample_bp", 20_000_000))))
        if saved.is_dir():
            hf = AutoTokenizer.from_pretrained(saved)
            model.resize_token_embeddings(len(hf))
        else:
            hf.save_pretrained(saved)
        start = f"random initialisation ({cfg.model.from_config.model_type})"
    else:
        model, hf, new_weights = continued(cfg.model, objective.causal)
        start = str(cfg.model.name_or_path)
    tokenizer = as_dna_tokenizer(hf)
    tokens = context_tokens(model, cfg.model)
    window_bp = int(data_cfg.get("window_bp") or tokens * bp_per_token(tokenizer, hf, genome, splits["train"]) * 0.97)
    log.info("windows of %s bp (~%d tokens)", f"{window_bp:,}", tokens)
    backbone = Backbone(model=model, tokenizer=hf, name=str(cfg.model.name), model_type=model.config.model_type,
                        hidden_size=int(getattr(model.config, "hidden_size", 0)),
                        num_layers=int(getattr(model.config, "num_hidden_layers", 0)), is_causal=objective.causal,
                        max_tokens=tokens, lora_targets=list(cfg.model.get("lora_target_modules") or [])
                        or _default_lora_targets(model.config.model_type))
    strategy = instantiate(cfg.strategy)
    prepared = strategy.prepare(backbone)
    if new_weights:  # a new LM head learns whatever the strategy trains elsewhere
        head = model.get_output_embeddings()
        for param in head.parameters():
            param.requires_grad_(True)
    datamodule = GenomeDataModule(data_cfg, genome, splits, tokenizer, objective, tokens, window_bp, int(cfg.seed))
    module = LMModule(prepared, objective.causal, cfg.optim)
    module.run_config = {key: OmegaConf.to_container(cfg[key], resolve=True)
                         for key in ("model", "strategy", "objective", "optim", "data")}
    card = {"name": cfg.run_name, "objective": objective.name, "strategy": strategy.name, "start": start,
            "data": list(data_cfg.paths), "holdout": dict(holdout), "window_bp": window_bp,
            "auto_class": auto_class(objective.causal).__name__}
    return module, datamodule, hf, card, new_weights


def write_samples(datamodule: GenomeDataModule, run_dir: Path, length: int, num: int, seed: int) -> dict[str, str]:
    """``train_sample.fa`` / ``valid_sample.fa``: windows of each split, for comparisons such as
    ``dnalm.generate reference=<valid_sample.fa> markov_source=<train_sample.fa>``."""
    from dnalm.apps.inputs import write_fasta

    rng = np.random.default_rng(seed)
    paths = {}
    for split, segments in datamodule.splits.items():
        spots = [(s, start) for s in segments for start in range(s.start, s.end - length + 1, length)]
        chosen = rng.choice(len(spots), size=min(num, len(spots)), replace=False) if spots else []
        records = [(f"{spots[i][0].record.name}:{spots[i][1]}-{spots[i][1] + length}",
                    datamodule.genome.sequence(spots[i][0].record, spots[i][1], length)) for i in sorted(chosen)]
        path = run_dir / f"{split}_sample.fa"
        write_fasta(path, records)
        paths[split] = str(path)
    return paths


def pretrain(cfg: DictConfig) -> dict[str, Any]:
    """Pre-train; write ``metrics.json`` and the model folder in the run directory; return the metrics."""
    if cfg.objective.name not in ("mlm", "clm"):
        raise ConfigError(f"objective={cfg.objective.name}: choose objective=mlm or objective=clm.")
    L.seed_everything(int(cfg.seed), workers=True)
    run_dir = Path(cfg.paths.output_dir)
    ckpt_path = resolve_ckpt_path(cfg)
    if ckpt_path:
        run_dir = Path(ckpt_path).resolve().parent.parent  # continue in the interrupted run's folder
    module, datamodule, tokenizer, card, _ = build(cfg, run_dir)
    results.save_run_files(run_dir, cfg, {"objective": cfg.objective.name})
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    total = sum(p.numel() for p in module.parameters())
    log.info("%s: %s trainable of %s parameters", cfg.strategy.name, f"{trainable:,}", f"{total:,}")

    callbacks = runtime.make_callbacks(cfg)
    loggers = runtime.make_loggers(cfg)
    trainer = runtime.make_trainer(cfg, callbacks, loggers)
    metrics: dict[str, Any] = {}
    if not ckpt_path:
        before = trainer.validate(module, datamodule=datamodule, verbose=False)[0]
        metrics.update({f"start/{k.split('/', 1)[1]}": v for k, v in before.items() if k.startswith("val/")})
        for logger in loggers:
            logger.log_metrics({k: v for k, v in before.items() if k.startswith("val/")}, step=0)
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if best:
        module.load_state_dict(torch.load(best, map_location="cpu", weights_only=True)["state_dict"])
    after = trainer.validate(module, datamodule=datamodule, verbose=False)[0]
    throughput = next(c for c in callbacks if isinstance(c, runtime.Throughput))
    metrics.update({k: v for k, v in after.items() if k.startswith("val/")})
    metrics.update({
        "train/samples_per_second": throughput.samples_per_second,
        "train/tokens_per_second": throughput.tokens_per_second,
        "peak_memory_mb": runtime.peak_memory_mb(), "model": cfg.model.name, "data": cfg.data.name,
        "objective": cfg.objective.name, "strategy": cfg.strategy.name, "seed": int(cfg.seed),
        "trainable_params": trainable, "total_params": total, "best_checkpoint": best or None,
        "global_step": trainer.global_step, "windows": datamodule.report, "run_dir": str(run_dir),
    })
    if trainer.is_global_zero:
        card["metrics"] = {k: v for k, v in metrics.items() if k.startswith(("val/", "start/"))}
        folder = save_folder(module.model, tokenizer, run_dir / "model", card)
        metrics["model_folder"] = str(folder)
        metrics["samples"] = write_samples(datamodule, run_dir, int(cfg.get("sample_bp", 1000)),
                                           int(cfg.get("sample_num", 1000)), int(cfg.seed))
        path = results.write_metrics(run_dir, metrics)
        results.print_metrics(f"{cfg.run_name}: held-out validation, before (start/) and after training (val/, "
                              f"best checkpoint)  ->  {path}", metrics, prefixes=("start/", "val/"))
        log.info("model folder: %s", folder)
    return metrics


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="pretrain")
def main(cfg: DictConfig) -> None:
    """Command-line entry point."""
    run_task(pretrain, cfg)


if __name__ == "__main__":
    exit_on_renamed_config(sys.argv[1:])
    main()
