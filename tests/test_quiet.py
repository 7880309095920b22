"""Library chatter that says nothing about the run is silenced; everything else still gets through."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest

from dnalm.utils.quiet import quiet_wandb_logger, silence_library_noise


def test_lightning_tips_are_dropped_other_messages_kept(caplog: pytest.LogCaptureFixture) -> None:
    silence_library_noise()
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    with caplog.at_level(logging.INFO):
        logger.info("💡 Tip: For seamless cloud logging and experiment tracking, try installing litlogger")
        logger.info("GPU available: False, used: False")
    assert "Tip" not in caplog.text and "GPU available" in caplog.text


def test_custom_batch_sampler_warning_is_dropped() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        silence_library_noise()
        warnings.warn("You are using a custom batch sampler `X` for prediction. Lightning would normally set "
                      "`drop_last=False` to ensure all samples are returned, but for custom samplers it can't "
                      "guarantee this.", UserWarning, stacklevel=1)
        warnings.warn("something else", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["something else"]


def test_wandb_logger_has_no_anonymous_setting(tmp_path: Path) -> None:
    from lightning.pytorch.loggers import WandbLogger

    logger = quiet_wandb_logger(WandbLogger(offline=True, save_dir=str(tmp_path)))
    assert "anonymous" not in logger._wandb_init


def test_model_summary_with_its_zero_flops_is_off(make_cfg) -> None:
    assert make_cfg().trainer.enable_model_summary is False
