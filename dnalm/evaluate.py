"""``python -m dnalm.evaluate ckpt_path=... data=...``: metrics.json and per-sequence predictions of a split."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from omegaconf import DictConfig

from dnalm import results, runtime
from dnalm.configs import CONFIG_DIR, exit_on_renamed_config
from dnalm.data.datamodule import DNADataModule
from dnalm.inference import describe, load_module, predict_loader, predictions_frame
from dnalm.utils.cli import run_task

log = logging.getLogger("dnalm.evaluate")


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Score ``cfg.split`` of ``cfg.data`` with a checkpoint or a published classifier."""
    L.seed_everything(int(cfg.seed), workers=True)
    module, backbone, task = load_module(cfg)
    split = str(cfg.split)
    datamodule = DNADataModule(cfg.data, backbone.tokenizer, backbone.max_tokens, seed=int(cfg.seed), task=task,
                               cache_dir=cfg.paths.get("cache_dir"), only_splits=(split,))
    datamodule.setup("test")
    if task.describe_positive():
        log.info(task.describe_positive())
    trainer = runtime.make_trainer(cfg, runtime.make_callbacks(cfg), runtime.make_loggers(cfg))
    scores = trainer.test(module, dataloaders=datamodule.loader(split, shuffle=False))
    metrics = {k.replace("test/", f"{cfg.metric_prefix}/", 1): v for k, v in (scores[0] if scores else {}).items()}
    records = datamodule.splits[split].records
    logits = predict_loader(trainer, module, datamodule.loader(split, shuffle=False), len(records))
    run_dir = Path(cfg.paths.output_dir)
    frame = predictions_frame(logits, records, task)
    metrics.update(describe(module, {
        "task": "evaluate", "model": backbone.name, "data": cfg.data.name, "split": split,
        "checkpoint": cfg.get("ckpt_path"),
        "positive_class": task.positive_class,
        "records": len(frame), "windows": len(datamodule.splits[split].ids), "peak_memory_mb": runtime.peak_memory_mb(),
    }))
    if trainer.is_global_zero:
        run_dir.mkdir(parents=True, exist_ok=True)
        frame.to_csv(run_dir / "predictions.csv", index=False)
        path = results.write_metrics(run_dir, metrics)
        results.print_metrics(f"{backbone.name} on {cfg.data.name}/{split}  ->  {path}", metrics,
                              prefixes=(f"{cfg.metric_prefix}/",))
    return metrics


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="evaluate")
def main(cfg: DictConfig) -> None:
    """Command-line entry point."""
    run_task(evaluate, cfg)


if __name__ == "__main__":
    exit_on_renamed_config(sys.argv[1:])
    main()
