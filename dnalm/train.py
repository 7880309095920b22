"""``python -m dnalm.train``: fine-tune a DNA LM on a sequence task and test the best checkpoint."""

from __future__ import annotations

import glob
import logging
import os
import sys
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from dnalm import results, runtime
from dnalm.configs import CONFIG_DIR, exit_on_renamed_config
from dnalm.data.datamodule import DNADataModule
from dnalm.errors import ConfigError
from dnalm.models.backbone import load_backbone
from dnalm.models.module import DNALMModule
from dnalm.utils.cli import run_task

log = logging.getLogger("dnalm.train")


def resolve_ckpt_path(cfg: DictConfig) -> str | None:
    """``last``: the newest ``last.ckpt`` of an earlier run with the same run name; else the path as given."""
    ckpt = cfg.get("ckpt_path")
    if ckpt in (None, ""):
        return None
    if ckpt == "last":
        pattern = os.path.join(cfg.paths.log_dir, cfg.task_name, "runs", cfg.run_name, "*", "checkpoints", "last.ckpt")
        found = sorted(glob.glob(pattern), key=os.path.getmtime)
        if not found:
            raise ConfigError(f"ckpt_path=last: no earlier run of '{cfg.run_name}' left a last.ckpt ({pattern}). "
                              "Give the checkpoint's path instead.")
        log.info("resuming from %s", found[-1])
        return found[-1]
    if not Path(ckpt).is_file():
        raise ConfigError(f"ckpt_path={ckpt} does not exist.")
    return str(ckpt)


def build(cfg: DictConfig) -> tuple[DNALMModule, DNADataModule, Any]:
    """Backbone, strategy, data and module from a composed config."""
    backbone = load_backbone(cfg.model, native_head=bool(cfg.head.get("native", False)))
    strategy = instantiate(cfg.strategy)
    datamodule = DNADataModule(cfg.data, backbone.tokenizer, backbone.max_tokens, seed=int(cfg.seed),
                               cache_dir=cfg.paths.get("cache_dir"))
    datamodule.setup("fit")
    assert datamodule.task is not None
    if getattr(strategy, "cache", False) and cfg.data.get("rc_augment", 0.0):
        raise ConfigError("strategy=probing caches embeddings, so data.rc_augment must be 0 with it "
                          "(or set strategy.cache=false).")
    if getattr(strategy, "cache", False) and cfg.data.get("train_long") == "random_crop":
        raise ConfigError("strategy=probing caches embeddings, so a random crop would be frozen at its first draw: "
                          "use data.train_long=center_crop or windows, or strategy.cache=false.")
    module = DNALMModule(backbone, datamodule.task, strategy, cfg.head, cfg.optim,
                         gradient_checkpointing=bool(cfg.model.get("gradient_checkpointing", False)))
    module.run_config = {key: OmegaConf.to_container(cfg[key], resolve=True)
                         for key in ("model", "strategy", "head", "optim", "data")}
    return module, datamodule, backbone


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train, validate and test; write ``metrics.json`` in the run dir and return the metrics."""
    L.seed_everything(int(cfg.seed), workers=True)
    run_dir = Path(cfg.paths.output_dir)
    ckpt_path = resolve_ckpt_path(cfg)
    module, datamodule, backbone = build(cfg)
    results.save_run_files(run_dir, cfg, datamodule.task.to_dict())
    trainable, total = module.count_parameters()
    log.info("%s: %s trainable of %s parameters (%.2f%%)", cfg.strategy.name,
             f"{trainable:,}", f"{total:,}", 100 * trainable / total)

    callbacks = runtime.make_callbacks(cfg)
    if ckpt_path:
        # Keep checkpointing where the interrupted run did: Lightning restores the best-k ranking only when
        # the folder is unchanged, and a fresh ranking could pick another best epoch than an uninterrupted run.
        for callback in callbacks:
            if isinstance(callback, ModelCheckpoint):
                callback.dirpath = os.path.realpath(os.path.dirname(ckpt_path))
    loggers = runtime.make_loggers(cfg)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    trainer = runtime.make_trainer(cfg, callbacks, loggers)
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)

    checkpoint = trainer.checkpoint_callback
    best = checkpoint.best_model_path if checkpoint is not None and checkpoint.best_model_path else None
    metrics: dict[str, Any] = {}
    eval_ckpt = best if best else None
    metrics.update(_first(trainer.validate(module, datamodule=datamodule, ckpt_path=eval_ckpt, weights_only=True)))
    if cfg.get("test", True) and "test" in datamodule.splits:
        metrics.update(_first(trainer.test(module, datamodule=datamodule, ckpt_path=eval_ckpt, weights_only=True)))
    throughput = next(c for c in callbacks if isinstance(c, runtime.Throughput))
    metrics.update({
        "train/samples_per_second": throughput.samples_per_second,
        "peak_memory_mb": runtime.peak_memory_mb(),
        "model": cfg.model.name,
        "data": cfg.data.name,
        "strategy": cfg.strategy.name,
        "seed": int(cfg.seed),
        "trainable_params": trainable,
        "total_params": total,
        "best_checkpoint": best,
        "epochs": trainer.current_epoch,
        "global_step": trainer.global_step,
        "run_dir": str(run_dir),
    })
    if trainer.is_global_zero:
        path = results.write_metrics(run_dir, metrics)
        for logger in loggers:
            logger.log_metrics({k: v for k, v in metrics.items() if isinstance(v, (int, float))}, step=trainer.global_step)
        results.print_metrics(f"{cfg.run_name}: test metrics (best checkpoint)  ->  {path}", metrics)
    _finish_wandb(loggers)
    return metrics


def _first(outputs: list[dict[str, Any]]) -> dict[str, Any]:
    return dict(outputs[0]) if outputs else {}


def _finish_wandb(loggers: list[Any]) -> None:
    for logger in loggers:
        if type(logger).__name__ == "WandbLogger":
            import wandb

            wandb.finish()


def _sweep_job(cfg: DictConfig) -> dict[str, Any] | None:
    """A multirun job: a failure is written to ``error.txt`` in the job dir and logged; the study goes on."""
    try:
        return train(cfg)
    except Exception as err:  # noqa: BLE001 - one failed job must not end a study (dnalm.report lists it)
        import traceback

        run_dir = Path(cfg.paths.output_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "error.txt").write_text(f"{type(err).__name__}: {err}\n\n{traceback.format_exc()}")
        log.error("job failed, study continues (%s/error.txt): %s: %s", run_dir, type(err).__name__, err)
        return None


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Command-line entry point; returns ``metrics[cfg.optimized_metric]`` for sweepers (Optuna), if set."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    metrics = _sweep_job(cfg) if multirun else run_task(train, cfg)
    value = (metrics or {}).get(cfg.get("optimized_metric") or "")
    return None if value is None else float(value)


if __name__ == "__main__":
    exit_on_renamed_config(sys.argv[1:])
    main()
