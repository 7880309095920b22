"""Shared fixtures: compose the real Hydra config, shrunk for a CPU, with everything offline and in tmp_path."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

from dnalm.configs import config_dir

CONF_DIR = str(config_dir())
SHARED = Path(__file__).resolve().parents[1].parent / "shared"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Small settings so a whole train/validate/test cycle takes seconds.
SMALL = [
    "logger=csv",
    "data.demo.train=160", "data.demo.valid=48", "data.demo.test=48", "data.demo.length=120",
    "data.batch_size=16", "trainer.max_epochs=1", "trainer.accelerator=cpu", "trainer.log_every_n_steps=1",
]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNALM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """``make_cfg(*overrides, config_name="train")`` -> a composed config writing into ``tmp_path``."""

    def _make(*overrides: str, config_name: str = "train", small: bool = True) -> DictConfig:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            extra = SMALL if (small and config_name == "train") else []
            cfg = compose(config_name=config_name, overrides=[*extra, *overrides], return_hydra_config=False)
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / "run")
            cfg.paths.log_dir = str(tmp_path / "outputs")
            cfg.paths.cache_dir = str(tmp_path / "cache")
        return cfg

    return _make


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
