"""The shipped config tree composed for tests, shrunk for a CPU; shared material in ../shared."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import open_dict

from dnalm.configs import config_dir

CONF_DIR = str(config_dir())


SHARED = Path(__file__).resolve().parents[2].parent / "shared"


# Small settings so a whole train/validate/test cycle takes seconds.
SMALL = [
    "logger=csv",
    "data.demo.train=160", "data.demo.valid=48", "data.demo.test=48", "data.demo.length=120",
    "data.batch_size=16", "trainer.max_epochs=1", "trainer.accelerator=cpu", "trainer.log_every_n_steps=1",
]


def shared_path(*parts: str) -> Path:
    """A path in ../shared, skipping the test when the shared material is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared material {path} is not available")
    return path


def train_tiny(root: Path, *overrides: str) -> dict:
    """Train the tiny default model on the shrunk demo task into ``root``; returns its metrics (module fixtures)."""
    from dnalm.train import train

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="train", overrides=[*SMALL, "callbacks.early_stopping=null", *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir, cfg.paths.log_dir = str(root / "run"), str(root / "outputs")
        cfg.paths.cache_dir = str(root / "cache")
    return train(cfg)
