"""A tiny classifier trained (with ``dnalm.train``) to tell GC-rich (label 1) from AT-rich (label 0) windows."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import open_dict

from tests.helpers.apps import gc_table
from tests.helpers.configs import CONF_DIR
from tests.helpers.exports import train_native_lora_run, train_pooled_run


@pytest.fixture(scope="session")
def gc_classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The best checkpoint of a tiny ESM trained on the GC task (a few seconds on a CPU)."""
    from dnalm.train import train

    root = tmp_path_factory.mktemp("gc_classifier")
    data = gc_table(root / "data", 256, seed=0)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="train", overrides=[
            "data=table", f"data.path={data}", "logger=csv", "data.batch_size=32", "trainer.max_epochs=6",
            "trainer.accelerator=cpu", "model.from_config.hidden_size=16", "model.from_config.intermediate_size=32",
            "model.from_config.num_attention_heads=2", "model.max_tokens=64", "head.pooling=mean",
            "head.dropout=0.0", "monitor=val/accuracy"])
    with open_dict(cfg):
        cfg.paths.output_dir = str(root / "run")
        cfg.paths.log_dir = str(root / "outputs")
        cfg.paths.cache_dir = str(root / "cache")
    metrics = train(cfg)
    assert metrics["test/accuracy"] > 0.9, metrics
    return Path(metrics["best_checkpoint"])




@pytest.fixture(scope="module")
def native_lora_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ESM classifier fine-tuned with its own head and LoRA (best checkpoint)."""
    return train_native_lora_run(tmp_path_factory.mktemp("native_lora"))


@pytest.fixture(scope="module")
def pooled_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny default model with dnalm's pooling + linear head, trained in full (best checkpoint)."""
    return train_pooled_run(tmp_path_factory.mktemp("pooled"))
