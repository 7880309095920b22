"""Remote-code families (DNABERT-2, HyenaDNA, Caduceus) are opt-in: a clear error without trust, loading with it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from dnalm.errors import ModelLoadError
from dnalm.models.backbone import load_backbone
from tests.helpers.remote_code import remote_code_folder


def _model_cfg(folder: Path, trust: bool):
    return OmegaConf.create({"name": "toy", "name_or_path": str(folder), "revision": None, "tokenizer": None,
                             "trust_remote_code": trust, "dtype": None, "max_tokens": 64,
                             "lora_target_modules": ["mix"]})


def test_remote_code_is_refused_without_opt_in(tmp_path: Path) -> None:
    folder = remote_code_folder(tmp_path)
    with pytest.raises(ModelLoadError, match="trust_remote_code=true") as err:
        load_backbone(_model_cfg(folder, trust=False))
    assert "revision" in str(err.value)


def test_remote_code_loads_with_opt_in(tmp_path: Path) -> None:
    folder = remote_code_folder(tmp_path)
    backbone = load_backbone(_model_cfg(folder, trust=True))
    assert type(backbone.model).__name__ == "ToyDnaModel"
    assert backbone.hidden_size == 8 and backbone.lora_targets == ["mix"]
    torch.manual_seed(0)
    assert torch.equal(backbone.model.embed.weight, torch.randn(10, 8))  # the saved weights, not a fresh init


def test_trust_remote_code_runs_a_hyenadna_checkpoints_own_code(tmp_path: Path) -> None:
    """`model.trust_remote_code=true` on a config.json with model_type hyenadna and an auto_map runs that code
    (here a toy stand-in for modeling_hyena.py), not the native class; without it the native class loads."""
    folder = remote_code_folder(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "hyenadna"}))
    source = (folder / "configuration_toy.py").read_text().replace('"toy_remote_dna"', '"hyenadna"')
    (folder / "configuration_toy.py").write_text(source)
    assert type(load_backbone(_model_cfg(folder, trust=True)).model).__name__ == "ToyDnaModel"
    with pytest.raises(ModelLoadError, match="native HyenaDNAModel"):  # its weights are not HyenaDNA's
        load_backbone(_model_cfg(folder, trust=False))
