"""The LightningModule of pre-training: a language model, its objective's loss, perplexity and token accuracy."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import nn

from dnalm.compat import attached_trainer, logs_this_step
from dnalm.models.optim import make_optimizer, with_step_scheduler
from dnalm.pretraining.objectives import IGNORE


def lm_token_losses(logits: torch.Tensor, labels: torch.Tensor, causal: bool, accuracy: bool = True
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Summed cross-entropy, number of predicted tokens and correct predictions (labels -100 are skipped).

    Causal models predict token t+1 at position t, so the labels are shifted left by one (the last position
    predicts nothing). Shifting the labels rather than slicing the logits keeps the logits, the largest tensor of
    a small model with a large vocabulary, a view: no copy forward and no zero-filled gradient backward.
    ``accuracy=False`` skips the arg-max over the vocabulary (correct predictions come back as 0).
    """
    if causal:
        labels = F.pad(labels[:, 1:], (0, 1), value=IGNORE)
    flat_logits = logits.reshape(-1, logits.shape[-1]).float()
    flat_labels = labels.reshape(-1)
    total = F.cross_entropy(flat_logits, flat_labels, ignore_index=IGNORE, reduction="sum")
    targets = flat_labels != IGNORE
    if not accuracy:
        return total, targets.sum(), torch.zeros((), dtype=torch.long, device=total.device)
    correct = (flat_logits.argmax(-1) == flat_labels) & targets
    return total, targets.sum(), correct.sum()


class LMModule(L.LightningModule):
    """Trains ``model`` (a masked or causal LM, possibly wrapped by a strategy) on its objective."""

    def __init__(self, model: nn.Module, causal: bool, optim_cfg: DictConfig) -> None:
        super().__init__()
        self.model, self.causal, self.optim_cfg = model, causal, optim_cfg
        self._val_sums: list[torch.Tensor] = []  # (summed loss, tokens, correct) per validation batch
        self.curve: list[tuple[int, float]] = []  # (optimiser step, validation perplexity)
        self.run_config: dict[str, Any] = {}

    def _step(self, batch: dict[str, torch.Tensor], accuracy: bool = True
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return lm_token_losses(logits, batch["labels"], self.causal, accuracy)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        # Metrics only on the steps a logger writes: the arg-max over the vocabulary and each self.log call cost
        # time on every step, and values logged between two writes are overwritten unread.
        trainer = attached_trainer(self)
        logging = trainer is None or logs_this_step(trainer) or bool(trainer.fast_dev_run)
        total, count, correct = self._step(batch, accuracy=logging)
        loss = total / count.clamp(min=1)
        if logging:
            size = len(batch["input_ids"])
            self.log("train/loss", loss, prog_bar=True, batch_size=size)
            self.log("train/perplexity", torch.exp(loss.detach()), batch_size=size)
            self.log("train/accuracy", correct.float() / count.clamp(min=1), batch_size=size)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        total, count, correct = self._step(batch)
        self._val_sums.append(torch.stack([total.detach().double(), count.double(), correct.double()]))

    def on_validation_epoch_end(self) -> None:
        sums = torch.stack(self._val_sums).sum(0) if self._val_sums else torch.zeros(3, dtype=torch.float64)
        self._val_sums.clear()
        sums = self.all_gather(sums)  # every rank's windows (one rank: unchanged)
        nll, tokens, correct = (float(v) for v in sums.reshape(-1, 3).sum(0))
        loss = nll / max(tokens, 1.0)
        if not self.trainer.sanity_checking:
            self.curve.append((int(self.trainer.global_step), math.exp(min(loss, 50.0))))
        # token-weighted over the whole split, not a mean of batch means
        self.log_dict({"val/loss": loss, "val/perplexity": math.exp(min(loss, 50.0)),
                       "val/accuracy": correct / max(tokens, 1.0), "val/tokens": tokens}, prog_bar=False)

    def configure_optimizers(self) -> dict[str, Any]:
        opt = self.optim_cfg
        decay, no_decay = [], []
        for name, param in self.model.named_parameters():
            if param.requires_grad:
                (no_decay if param.ndim < 2 or "norm" in name.lower() else decay).append(param)
        groups = [{"params": decay, "weight_decay": float(opt.get("weight_decay", 0.01))},
                  {"params": no_decay, "weight_decay": 0.0}]
        # torch's fused kernel (one call per step), as transformers.Trainer defaults to; not under a GradScaler
        fused = opt.get("fused")
        if fused is None:
            fused = getattr(self.trainer.precision_plugin, "scaler", None) is None
        optimizer = make_optimizer(opt, groups, bool(fused))
        return with_step_scheduler(optimizer, opt, int(self.trainer.estimated_stepping_batches))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["dnalm_config"] = self.run_config
        checkpoint["dnalm_rng"] = {"torch": torch.get_rng_state()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        rng = checkpoint.get("dnalm_rng")
        if rng is not None:
            torch.set_rng_state(rng["torch"])


def plot_curve(points: list[tuple[int, float]], path: Path, title: str) -> Path:
    """Validation perplexity against optimiser steps (log scale), one marker per validation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    unique = sorted(dict(points).items())  # one point per step (the final re-validation repeats the last)
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    ax.plot([s for s, _ in unique], [p for _, p in unique], marker="o")
    ax.set(xlabel="optimiser step", ylabel="validation perplexity (held out)", yscale="log", title=title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
