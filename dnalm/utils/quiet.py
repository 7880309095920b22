"""Silence third-party chatter that says nothing about the user's run (the one place that knows these libraries).

- Lightning's "Tip: ... litlogger / litmodels" adverts (logged at INFO on every fit).
- Lightning's "custom batch sampler ... can't guarantee" warning at predict/test: dnalm's
  ``GroupedLengthBatchSampler`` never drops a sample when it does not shuffle (tests check every index comes back).
- W&B's "The anonymous setting has no effect" warning: Lightning's ``WandbLogger`` passes ``anonymous=None``,
  which current wandb versions warn about; the setting is dropped before wandb sees it.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from dnalm.compat import wandb_init_settings

_TIP_LOGGERS = ("lightning.pytorch.trainer.connectors.logger_connector.logger_connector",
                "lightning.pytorch.trainer.connectors.callback_connector", "lightning.pytorch.utilities.rank_zero")


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Tip:" not in str(record.getMessage())


def silence_library_noise() -> None:
    """Install the filters above (idempotent)."""
    for name in _TIP_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropTips) for f in logger.filters):
            logger.addFilter(_DropTips())
    warnings.filterwarnings("ignore", message=r".*custom batch sampler.*can't guarantee.*")


def quiet_wandb_logger(logger: Any) -> Any:
    """A Lightning ``WandbLogger`` without the ``anonymous`` init setting (None means unset anyway)."""
    init = wandb_init_settings(logger)
    if init is not None and init.get("anonymous") is None:
        init.pop("anonymous", None)
    return logger
