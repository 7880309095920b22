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
from dnalm.checkpoints import read_checkpoint
from dnalm.configs import CONFIG_DIR, exit_on_renamed_config
from dnalm.data.datamodule import DNADataModule
from dnalm.errors import ConfigError, ModelLoadError
from dnalm.models.backbone import load_backbone
from dnalm.models.module import DNALMModule
from dnalm.utils.cli import check_types, run_task

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
        what = "is a folder; give a .ckpt file in it" if Path(ckpt).is_dir() else "does not exist"
        raise ConfigError(f"ckpt_path={ckpt} {what}.")
    return str(ckpt)


# What a checkpoint's weights and optimizer state belong to: resuming under another value is a different run.
RESUME_KEYS = (("model", "name"), ("model", "name_or_path"), ("strategy", "name"), ("head", "_target_"))


def check_resume_matches(cfg: DictConfig, ckpt_path: str) -> None:
    """Refuse to resume a checkpoint trained with another model, strategy or head (``resume_any_model=true`` allows)."""
    checkpoint = read_checkpoint(ckpt_path, mmap=True)
    saved = checkpoint.get("dnalm_config") or {}
    if not saved:
        raise ModelLoadError(f"ckpt_path={ckpt_path} is not a dnalm checkpoint (no saved config): it cannot be "
                             "resumed. Give a checkpoint written by dnalm.train.")
    differ = []
    for group, key in RESUME_KEYS:
        before, now = (saved.get(group) or {}).get(key), (cfg.get(group) or {}).get(key)
        if before is not None and str(before) != str(now):
            differ.append(f"{group}.{key}: {before} in the checkpoint, {now} now")
    if not differ:
        return
    if cfg.get("resume_any_model", False):
        log.warning("resuming %s with another configuration (resume_any_model=true): %s", ckpt_path, "; ".join(differ))
        return
    raise ConfigError(f"ckpt_path={ckpt_path} was trained with another configuration ({'; '.join(differ)}): "
                      "resuming would apply its weights to a different model. Resume with the checkpoint's settings, "
                      "or start a new run without ckpt_path (resume_any_model=true forces it).")


def continue_run(cfg: DictConfig, ckpt_path: str) -> tuple[DictConfig, str | None]:
    """Resume in the interrupted run's folder (``<run>/checkpoints/x.ckpt``) and W&B run: one training, one run.

    Returns the config with ``paths.output_dir`` set to that folder (a copy; this launch's own folder gets a
    ``resumed_into.txt`` pointer) and the W&B run id saved there, if any. A checkpoint outside a run folder
    leaves both as they are.
    """
    original = Path(os.path.realpath(ckpt_path)).parent.parent
    here = Path(cfg.paths.output_dir)
    if not (original / "config_resolved.yaml").is_file() or original == Path(os.path.realpath(here)):
        return cfg, None
    here.mkdir(parents=True, exist_ok=True)
    (here / "resumed_into.txt").write_text(f"{original}\n")
    log.info("resuming run %s: its metrics, logs and checkpoints continue there", original)
    for handler in logging.getLogger().handlers:  # Hydra's train.log of this launch: continue the original's
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).parent == Path(os.path.realpath(here)):
            extra = logging.FileHandler(original / Path(handler.baseFilename).name, mode="a")
            extra.setFormatter(handler.formatter)
            logging.getLogger().addHandler(extra)
    wandb_file = original / runtime.WANDB_ID_FILE
    wandb_id = wandb_file.read_text().strip() if wandb_file.is_file() else None
    return OmegaConf.merge(cfg, {"paths": {"output_dir": str(original)}}), wandb_id


def build(cfg: DictConfig) -> tuple[DNALMModule, DNADataModule, Any]:
    """Backbone, strategy, data and module from a composed config."""
    backbone = load_backbone(cfg.model, native_head=bool(cfg.head.get("native", False)))
    strategy = instantiate(cfg.strategy)
    strategy.validate_data(cfg.data)
    datamodule = DNADataModule(cfg.data, backbone.tokenizer, backbone.max_tokens, seed=int(cfg.seed),
                               cache_dir=cfg.paths.get("cache_dir"))
    datamodule.setup("fit")
    assert datamodule.task is not None
    module = DNALMModule(backbone, datamodule.task, strategy, cfg.head, cfg.optim,
                         gradient_checkpointing=bool(cfg.model.get("gradient_checkpointing", False)))
    module.run_config = {key: OmegaConf.to_container(cfg[key], resolve=True)
                         for key in ("model", "strategy", "head", "optim", "data")}
    return module, datamodule, backbone


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train, validate and test; write ``metrics.json`` in the run dir and return the metrics."""
    L.seed_everything(int(cfg.seed), workers=True)
    ckpt_path = resolve_ckpt_path(cfg)
    wandb_id = None
    if ckpt_path:
        check_resume_matches(cfg, ckpt_path)
        cfg, wandb_id = continue_run(cfg, ckpt_path)
    run_dir = Path(cfg.paths.output_dir)
    if (run_dir / "metrics.json").exists() and not ckpt_path:
        raise ConfigError(f"{run_dir} already holds another run's metrics.json; give this run its own folder "
                          "(hydra.run.dir=...) instead of writing over it.")
    module, datamodule, backbone = build(cfg)
    results.save_run_files(run_dir, cfg, datamodule.task.to_dict())
    trainable, total = module.count_parameters()
    if datamodule.task.describe_positive():
        log.info(datamodule.task.describe_positive())
    log.info("%s: %s trainable of %s parameters (%.2f%%)", cfg.strategy.name,
             f"{trainable:,}", f"{total:,}", 100 * trainable / total)

    callbacks = runtime.make_callbacks(cfg)
    if ckpt_path:
        # Keep checkpointing where the interrupted run did: Lightning restores the best-k ranking only when
        # the folder is unchanged, and a fresh ranking could pick another best epoch than an uninterrupted run.
        for callback in callbacks:
            if isinstance(callback, ModelCheckpoint):
                callback.dirpath = os.path.realpath(os.path.dirname(ckpt_path))
    csv_history = runtime.keep_csv_history(run_dir) if ckpt_path else None
    loggers = runtime.make_loggers(cfg, wandb_id=wandb_id)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    runtime.save_wandb_id(loggers, run_dir)
    trainer = runtime.make_trainer(cfg, callbacks, loggers)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    except ValueError as err:
        if not ckpt_path or "parameter group" not in str(err):
            raise
        # torch's optimizer refuses a state of another set of trainable parameters
        raise ConfigError(f"ckpt_path={ckpt_path}: its optimizer state does not fit this model's trainable "
                          "parameters (another model, strategy or head). Resume with the checkpoint's settings, "
                          "or start a new run without ckpt_path.") from err

    checkpoint = trainer.checkpoint_callback
    best = checkpoint.best_model_path if checkpoint is not None and checkpoint.best_model_path else None
    metrics: dict[str, Any] = {}
    eval_ckpt = best if best else None
    # A run stopped by trainer.max_steps inside the first epoch never validated, so it has no best checkpoint:
    # it is validated and tested with its final weights, and the banner and metrics.json say so.
    tested = f"best checkpoint {Path(best).name}" if best else "final weights: no validation ran during training"
    if not best:
        log.warning("no best checkpoint (training ended before the first validation): validating and testing "
                    "the final weights; validate earlier with trainer.val_check_interval=<steps>")
    metrics.update(_first(trainer.validate(module, datamodule=datamodule, ckpt_path=eval_ckpt, weights_only=True)))
    if cfg.get("test", True) and "test" in datamodule.splits:
        metrics.update(_first(trainer.test(module, datamodule=datamodule, ckpt_path=eval_ckpt, weights_only=True)))
    throughput = next(c for c in callbacks if isinstance(c, runtime.Throughput))
    metrics.update({
        "task": "train",
        "train/samples_per_second": throughput.samples_per_second,
        "peak_memory_mb": runtime.peak_memory_mb(),
        "model": cfg.model.name,
        "data": cfg.data.name,
        "strategy": cfg.strategy.name,
        "positive_class": datamodule.task.positive_class,
        "seed": int(cfg.seed),
        "trainable_params": trainable,
        "total_params": total,
        "best_checkpoint": best,
        "tested": tested,
        "epochs": trainer.current_epoch,
        "global_step": trainer.global_step,
        "run_dir": str(run_dir),
        **datamodule.report.get("leakage", {}),
    })
    if trainer.is_global_zero:
        path = results.write_metrics(run_dir, metrics)
        for logger in loggers:
            logger.log_metrics({k: v for k, v in metrics.items() if isinstance(v, (int, float))}, step=trainer.global_step)
        results.print_metrics(f"{cfg.run_name}: test metrics ({tested})  ->  {path}", metrics)
    _finish_wandb(loggers)
    if trainer.is_global_zero:
        runtime.merge_csv_history(csv_history)  # the Trainer flushed the CSV rows when testing ended
    return metrics


def _first(outputs: list[dict[str, Any]]) -> dict[str, Any]:
    return dict(outputs[0]) if outputs else {}


def _finish_wandb(loggers: list[Any]) -> None:
    for logger in loggers:
        if type(logger).__name__ == "WandbLogger":
            import wandb

            wandb.finish()


def write_error(cfg: DictConfig, err: BaseException) -> Path:
    """``error.txt`` (type, message, traceback) in the run dir, so a failed run is listed with its reason."""
    import traceback

    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "error.txt"
    path.write_text(f"{type(err).__name__}: {err}\n\n{''.join(traceback.format_exception(err))}")
    return path


def train_or_record(cfg: DictConfig) -> dict[str, Any]:
    """:func:`train`; a failure (or Ctrl-C) leaves ``error.txt`` in the run dir before it propagates."""
    try:
        check_types(cfg)
        return train(cfg)
    except (Exception, KeyboardInterrupt) as err:
        write_error(cfg, err)
        raise


def _sweep_job(cfg: DictConfig) -> dict[str, Any] | None:
    """A multirun job: a failure is written to ``error.txt`` in the job dir and logged; the study goes on."""
    try:
        return train_or_record(cfg)
    except Exception as err:  # noqa: BLE001 - one failed job must not end a study (dnalm.report lists it)
        log.error("job failed, study continues (%s/error.txt): %s: %s", cfg.paths.output_dir, type(err).__name__, err)
        return None


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Command-line entry point; returns ``metrics[cfg.optimized_metric]`` for sweepers (Optuna), if set."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    metrics = _sweep_job(cfg) if multirun else run_task(train_or_record, cfg)
    value = (metrics or {}).get(cfg.get("optimized_metric") or "")
    return None if value is None else float(value)


if __name__ == "__main__":
    exit_on_renamed_config(sys.argv[1:])
    main()
