"""The per-step work of DNALMModule: the training loss reaches loggers at the logging cadence, AdamW is fused."""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lightning as L
import pytest
import torch
from omegaconf import DictConfig, OmegaConf

from dnalm import runtime
from dnalm.models.module import DNALMModule
from dnalm.train import build


class StepLosses(L.Callback):
    """The loss each training step returned, by optimizer step (1-based)."""

    def __init__(self) -> None:
        self.losses: dict[int, float] = {}

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self.losses[trainer.global_step] = float(outputs["loss"])


def _fit(cfg: DictConfig) -> tuple[L.Trainer, DNALMModule, StepLosses]:
    L.seed_everything(int(cfg.seed), workers=True)
    module, datamodule, _ = build(cfg)
    losses = StepLosses()
    trainer = runtime.make_trainer(cfg, [*runtime.make_callbacks(cfg), losses], runtime.make_loggers(cfg))
    trainer.fit(module, datamodule=datamodule)
    return trainer, module, losses


def _csv_losses(run_dir: Path) -> dict[int, float]:
    with (run_dir / "csv" / "metrics.csv").open() as handle:
        return {int(row["step"]): float(row["train/loss"]) for row in csv.DictReader(handle) if row.get("train/loss")}


def _count_log_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    names: list[str] = []
    original = DNALMModule.log

    def counting(self: DNALMModule, name: str, *args: Any, **kwargs: Any) -> None:
        names.append(name)
        original(self, name, *args, **kwargs)

    monkeypatch.setattr(DNALMModule, "log", counting)
    return names


def test_train_loss_is_logged_at_the_logging_cadence_only(make_cfg, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """160 demo records in batches of 16 are 10 steps; every 3rd step's own loss is written, nothing else."""
    overrides = ("trainer.log_every_n_steps=3", "callbacks.early_stopping=null", "trainer.limit_val_batches=0")
    calls = _count_log_calls(monkeypatch)
    trainer, _, losses = _fit(make_cfg(*overrides))
    written = _csv_losses(tmp_path / "run")
    assert trainer.global_step == 10
    assert len(written) == 3 and calls.count("train/loss") == 3  # self.log ran only for what loggers write
    # CSV steps are 0-based: step 2 holds the loss of the 3rd optimizer step
    assert written == pytest.approx({step - 1: losses.losses[step] for step in (3, 6, 9)}, abs=1e-6)
    assert float(trainer.callback_metrics["train/loss"]) == pytest.approx(losses.losses[9], abs=1e-6)
    assert float(trainer.progress_bar_metrics["train/loss"]) == pytest.approx(losses.losses[9], abs=1e-6)


def test_loss_rows_match_logging_every_step(make_cfg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Skipping self.log between writes changes nothing a logger receives (same steps, same values)."""
    overrides = ("trainer.log_every_n_steps=4", "callbacks.early_stopping=null", "trainer.limit_val_batches=0",
                 "trainer.max_epochs=2")
    _fit(make_cfg(*overrides))
    skipping = _csv_losses(tmp_path / "run")

    monkeypatch.setattr(DNALMModule, "_logs_this_step", lambda self: True)
    cfg = make_cfg(*overrides)
    cfg.paths.output_dir = str(tmp_path / "every")
    _fit(cfg)
    every = _csv_losses(tmp_path / "every")
    assert len(skipping) == 5  # 20 steps over two epochs, every 4th
    assert skipping.keys() == every.keys()
    assert skipping == pytest.approx(every, abs=1e-6)


def test_log_every_n_steps_zero_logs_no_train_loss(make_cfg, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_log_calls(monkeypatch)
    _fit(make_cfg("trainer.log_every_n_steps=0", "callbacks.early_stopping=null", "trainer.limit_val_batches=0"))
    assert "train/loss" not in calls


def test_adamw_is_fused_on_cpu_and_trains_like_the_unfused_one(make_cfg) -> None:
    overrides = ("callbacks.early_stopping=null", "trainer.limit_val_batches=0", "trainer.max_epochs=2")
    fused_trainer, fused, fused_losses = _fit(make_cfg(*overrides))
    plain_trainer, plain, plain_losses = _fit(make_cfg(*overrides, "optim.fused=false"))
    assert fused_trainer.optimizers[0].defaults["fused"] is True
    assert not plain_trainer.optimizers[0].defaults["fused"]
    # the same arithmetic: equal losses every step and equal weights after 20 steps, up to float rounding
    assert fused_losses.losses == pytest.approx(plain_losses.losses, abs=1e-5)
    for (name, a), (_, b) in zip(fused.named_parameters(), plain.named_parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4, msg=name)


def test_fused_adamw_is_left_off_where_something_else_updates(make_cfg) -> None:
    """A GradScaler (16-bit mixed precision) and DeepSpeed handle the step themselves; optim.fused forces it."""
    module, _, _ = build(make_cfg())
    params = [p for p in module.parameters() if p.requires_grad]
    assert module.fused_optimizer(params)
    module._trainer = SimpleNamespace(precision_plugin=SimpleNamespace(scaler=torch.amp.GradScaler("cpu")),
                                      strategy=SimpleNamespace())
    assert not module.fused_optimizer(params)

    class DeepSpeedStrategy:
        pass

    module._trainer = SimpleNamespace(precision_plugin=SimpleNamespace(), strategy=DeepSpeedStrategy())
    assert not module.fused_optimizer(params)
    module.optim_cfg = OmegaConf.merge(module.optim_cfg, {"fused": True})
    assert module.fused_optimizer(params)
