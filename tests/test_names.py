"""Paths given as model or data become short, safe names in run folders, W&B names and legends."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from dnalm.names import short_name
from tests.helpers.configs import CONF_DIR


@pytest.mark.parametrize(("reference", "name"), [
    ("../shared/models/mistral_dna_1m_hg38_tf0", "mistral_dna_1m_hg38_tf0"),
    ("/data/gue/human_tf_1/", "human_tf_1"),
    ("InstaDeepAI/nucleotide-transformer-v2-50m", "nucleotide-transformer-v2-50m"),
    ("C:\\data\\my set", "my_set"),
    ("reads/test.csv.gz", "test"),
    ("../", "unnamed"),
])
def test_short_name(reference: str, name: str) -> None:
    assert short_name(reference) == name


def test_run_folder_and_wandb_name_come_from_last_path_components() -> None:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="train", return_hydra_config=True, overrides=[
            "model=hf", "model.name_or_path=../shared/models/x", "data=table", "data.path=../shared/data/gue/human_tf_1",
            "logger=wandb"])
    assert cfg.run_name == "x-human_tf_1-full-s42"
    assert cfg.logger.wandb.name == "x-human_tf_1-full-s42" and cfg.study == "human_tf_1"
    assert str(cfg.hydra.run.dir).startswith("./outputs/train/runs/x-human_tf_1-full-s42/")
    assert "/" not in cfg.model.name and "/" not in cfg.data.name
