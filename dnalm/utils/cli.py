"""Run a typed task function under Hydra and turn user errors into one clear message."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from dnalm.errors import ConfigError, DNALMError

log = logging.getLogger("dnalm")


# Options whose type the YAML cannot enforce (a command line can set any string): checked before any work.
# key -> (accepted types, an example); null is always accepted.
TYPED_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    **{key: ((int,), "32") for key in (
        "seed", "data.batch_size", "data.eval_batch_size", "data.num_workers", "data.split_seed",
        "data.window_overlap", "data.pad_to_multiple_of", "trainer.max_epochs", "trainer.max_steps",
        "trainer.accumulate_grad_batches", "trainer.log_every_n_steps", "batch_size", "window", "stride",
        "chunk_bp", "merge_gap", "layer", "optim.warmup_steps")},
    **{key: ((int, float), "0.1") for key in (
        "data.val_fraction", "data.rc_augment", "optim.lr", "optim.weight_decay", "optim.warmup_ratio",
        "head.dropout", "head.lr", "threshold", "trainer.gradient_clip_val")},
    **{key: ((bool,), "true") for key in ("data.rc_average", "data.cache", "test", "overwrite", "resume_any_model")},
}


def check_types(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` naming the first option of :data:`TYPED_KEYS` with a value of the wrong type."""
    for key, (types, example) in TYPED_KEYS.items():
        try:
            value = OmegaConf.select(cfg, key, throw_on_missing=False)
        except Exception:  # noqa: BLE001 - an interpolation error is reported where the value is used
            continue
        if value is None or isinstance(value, (DictConfig, ListConfig)):  # another app's group of that name
            continue
        is_bool = isinstance(value, bool)  # a bool is an int to Python, never a count to a user
        if isinstance(value, types) and (not is_bool or bool in types):
            continue
        kind = "a number" if float in types else {int: "an integer", bool: "true or false"}[types[0]]
        raise ConfigError(f"{key}={value!r} must be {kind}, e.g. {key}={example}.")


def run_task(task: Callable[[DictConfig], Any], cfg: DictConfig) -> Any:
    """Check option types, call ``task(cfg)``; a :class:`DNALMError` becomes one line on stderr and exit status 2."""
    try:
        check_types(cfg)
        return task(cfg)
    except DNALMError as err:
        print(f"\ndnalm: error: {err}", file=sys.stderr)
        sys.exit(2)
