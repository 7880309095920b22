"""Run a typed task function under Hydra and turn user errors into one clear message."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig

from dnalm.errors import DNALMError

log = logging.getLogger("dnalm")


def run_task(task: Callable[[DictConfig], Any], cfg: DictConfig) -> Any:
    """Call ``task(cfg)``; a :class:`DNALMError` becomes a short message on stderr and exit status 2."""
    try:
        return task(cfg)
    except DNALMError as err:
        print(f"\ndnalm: error: {err}", file=sys.stderr)
        sys.exit(2)
