"""Build the Lightning Trainer, loggers and callbacks from the config; device and precision choices."""

from __future__ import annotations

import logging
import netrc
import os
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, RichProgressBar
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


def auto_precision() -> str:
    """bf16-mixed on GPUs that support it, 16-mixed on older GPUs (e.g. T4), 32-true on CPU."""
    if torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


def wandb_credentials_present() -> bool:
    """An API key in the environment or in ~/.netrc (what ``wandb login`` writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


class Throughput(Callback):
    """Training samples per second over the timed training batches (first batch excluded as warm-up).

    Only the time inside training batches counts. On CUDA each batch is bracketed by two CUDA events, read
    once when the rate is asked for, so timing never makes the host wait for the GPU in the middle of
    training (a ``cuda.synchronize()`` per batch would stall the launch queue on every step).
    """

    def __init__(self) -> None:
        self.samples = 0
        self.seconds = 0.0
        self._start = 0.0
        self._seen = 0
        self._pending: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []
        self._open: torch.cuda.Event | None = None
        self._tokens: torch.Tensor | None = None  # summed on the batch's device: no sync until read

    @staticmethod
    def _on_cuda(module: L.LightningModule) -> bool:
        return module.device.type == "cuda"

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        if self._on_cuda(module):
            self._open = torch.cuda.Event(enable_timing=True)
            self._open.record()
        else:
            self._start = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._seen += 1
        if self._seen == 1:
            self._open = None
            return
        self.samples += len(batch["input_ids"])
        if "attention_mask" in batch:
            count = batch["attention_mask"].sum()
            self._tokens = count if self._tokens is None else self._tokens + count
        if self._open is not None:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            self._pending.append((self._open, end))
            self._open = None
        else:
            self.seconds += time.perf_counter() - self._start

    def _resolve(self) -> None:
        """Add up the recorded CUDA intervals (waits once for the last of them)."""
        if self._pending:
            self._pending[-1][1].synchronize()
            self.seconds += sum(start.elapsed_time(end) for start, end in self._pending) / 1000.0
            self._pending.clear()

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._resolve()  # bounds the number of events held to one epoch's batches

    @property
    def samples_per_second(self) -> float | None:
        """Measured rate, or None before two batches ran."""
        self._resolve()
        return self.samples / self.seconds if self.seconds > 0 else None

    @property
    def tokens_per_second(self) -> float | None:
        """Real (unpadded) training tokens per second over the same batches, or None."""
        self._resolve()
        if self._tokens is None or self.seconds <= 0:
            return None
        return float(self._tokens) / self.seconds


class EpochSummary(Callback):
    """One log line per validation when no progress bar is shown (non-interactive runs, CI)."""

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        shown = {k: round(float(v), 4) for k, v in trainer.callback_metrics.items()
                 if k.startswith("val/") and not k.startswith(("val/f1_", "val/auroc_"))}
        log.info("epoch %d step %d: %s", trainer.current_epoch, trainer.global_step, shown)


def make_loggers(cfg: DictConfig) -> list[Any]:
    """Instantiate the configured loggers; W&B goes offline (no prompt) when there are no credentials."""
    loggers = []
    for name, logger_cfg in (cfg.get("logger") or {}).items():
        if logger_cfg is None:
            continue
        if name == "wandb":
            logger_cfg = OmegaConf.to_container(logger_cfg, resolve=True)
            if logger_cfg.get("offline") is None:
                logger_cfg["offline"] = not wandb_credentials_present()
            if logger_cfg["offline"]:
                os.environ.setdefault("WANDB_MODE", "offline")
            os.environ.setdefault("WANDB_SILENT", "true")
            Path(logger_cfg["save_dir"]).mkdir(parents=True, exist_ok=True)
        loggers.append(instantiate(logger_cfg))
    return loggers


def make_callbacks(cfg: DictConfig) -> list[Callback]:
    """Configured callbacks plus throughput measurement and a progress display suited to the terminal."""
    callbacks: list[Callback] = []
    for c in (cfg.get("callbacks") or {}).values():
        if c is None:
            continue
        if str(c.get("_target_", "")).endswith("ModelCheckpoint") and c.get("monitor") and c.get("save_last"):
            callbacks.extend(_checkpoint_callbacks(c))
        else:
            callbacks.append(instantiate(c))
    callbacks.append(Throughput())
    if sys.stdout.isatty():
        callbacks.append(RichProgressBar())
    else:
        callbacks.append(EpochSummary())
    return callbacks


def _checkpoint_callbacks(c: DictConfig) -> list[Callback]:
    """Best-k by the monitored metric, plus a ``last.ckpt`` that always holds the newest state.

    Lightning rewrites a monitored callback's last.ckpt at validation only when the best checkpoint changed, so
    a resume would restart from the last improvement; an unmonitored ``last`` checkpoint fixes that. With
    ``every_n_train_steps`` another one also writes last.ckpt mid-epoch: Lightning's own step trigger would
    replace the validation-time saves and rank mid-epoch weights by stale validation scores.
    """
    dirpath = c.get("dirpath")
    callbacks: list[Callback] = [
        instantiate(c, every_n_train_steps=None, save_last=False, enable_version_counter=False),
        ModelCheckpoint(dirpath=dirpath, filename=ModelCheckpoint.CHECKPOINT_NAME_LAST, monitor=None, save_top_k=1,
                        enable_version_counter=False),
    ]
    steps = c.get("every_n_train_steps")
    if steps:
        callbacks.append(ModelCheckpoint(dirpath=dirpath, save_top_k=0, save_last=True, every_n_train_steps=int(steps),
                                         enable_version_counter=False))
    return callbacks


def make_trainer(cfg: DictConfig, callbacks: list[Callback], loggers: list[Any], **overrides: Any) -> L.Trainer:
    """The Lightning Trainer of ``cfg.trainer`` with dnalm's automatic precision."""
    kwargs = OmegaConf.to_container(cfg.trainer, resolve=True)
    kwargs.pop("_target_", None)
    if kwargs.get("precision") == "auto":
        kwargs["precision"] = auto_precision()
    strategy = kwargs.get("strategy")
    if isinstance(strategy, dict):
        kwargs["strategy"] = instantiate(strategy)
    kwargs.update(overrides)
    return L.Trainer(callbacks=callbacks, logger=loggers or False,
                     enable_progress_bar=any(isinstance(c, RichProgressBar) for c in callbacks),
                     default_root_dir=cfg.paths.output_dir, **kwargs)


def peak_memory_mb() -> float:
    """Peak GPU memory allocated by torch on CUDA, else this process's peak resident memory."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
