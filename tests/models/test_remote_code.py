"""Remote-code families (DNABERT-2, HyenaDNA, Caduceus) are opt-in: a clear error without trust, loading with it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from safetensors.torch import save_file

from dnalm.errors import ModelLoadError
from dnalm.models.backbone import load_backbone
from dnalm.models.tiny import char_tokenizer

CONFIG_PY = '''
from transformers import PretrainedConfig

class ToyDnaConfig(PretrainedConfig):
    model_type = "toy_remote_dna"

    def __init__(self, vocab_size=10, hidden_size=8, num_hidden_layers=1, pad_token_id=1, **kwargs):
        self.vocab_size, self.hidden_size, self.num_hidden_layers = vocab_size, hidden_size, num_hidden_layers
        super().__init__(pad_token_id=pad_token_id, **kwargs)
'''

MODELING_PY = '''
import torch
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput
from .configuration_toy import ToyDnaConfig

class ToyDnaModel(PreTrainedModel):
    config_class = ToyDnaConfig

    def __init__(self, config):
        super().__init__(config)
        self.embed = torch.nn.Embedding(config.vocab_size, config.hidden_size)
        self.mix = torch.nn.Linear(config.hidden_size, config.hidden_size)
        self.post_init()

    def get_input_embeddings(self):
        return self.embed

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        return BaseModelOutput(last_hidden_state=torch.tanh(self.mix(self.embed(input_ids))))
'''


def _remote_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "toy_remote"
    folder.mkdir()
    (folder / "configuration_toy.py").write_text(CONFIG_PY)
    (folder / "modeling_toy.py").write_text(MODELING_PY)
    (folder / "config.json").write_text(json.dumps({
        "model_type": "toy_remote_dna", "vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1,
        "pad_token_id": 1, "architectures": ["ToyDnaModel"],
        "auto_map": {"AutoConfig": "configuration_toy.ToyDnaConfig", "AutoModel": "modeling_toy.ToyDnaModel"},
    }))
    torch.manual_seed(0)
    save_file({"embed.weight": torch.randn(10, 8), "mix.weight": torch.randn(8, 8), "mix.bias": torch.zeros(8)},
              str(folder / "model.safetensors"))
    char_tokenizer().save_pretrained(folder)
    return folder


def _model_cfg(folder: Path, trust: bool):
    return OmegaConf.create({"name": "toy", "name_or_path": str(folder), "revision": None, "tokenizer": None,
                             "trust_remote_code": trust, "dtype": None, "max_tokens": 64,
                             "lora_target_modules": ["mix"]})


def test_remote_code_is_refused_without_opt_in(tmp_path: Path) -> None:
    folder = _remote_folder(tmp_path)
    with pytest.raises(ModelLoadError, match="trust_remote_code=true") as err:
        load_backbone(_model_cfg(folder, trust=False))
    assert "revision" in str(err.value)


def test_remote_code_loads_with_opt_in(tmp_path: Path) -> None:
    folder = _remote_folder(tmp_path)
    backbone = load_backbone(_model_cfg(folder, trust=True))
    assert type(backbone.model).__name__ == "ToyDnaModel"
    assert backbone.hidden_size == 8 and backbone.lora_targets == ["mix"]
    torch.manual_seed(0)
    assert torch.equal(backbone.model.embed.weight, torch.randn(10, 8))  # the saved weights, not a fresh init


def test_trust_remote_code_runs_a_hyenadna_checkpoints_own_code(tmp_path: Path) -> None:
    """`model.trust_remote_code=true` on a config.json with model_type hyenadna and an auto_map runs that code
    (here a toy stand-in for modeling_hyena.py), not the native class; without it the native class loads."""
    folder = _remote_folder(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "hyenadna"}))
    source = (folder / "configuration_toy.py").read_text().replace('"toy_remote_dna"', '"hyenadna"')
    (folder / "configuration_toy.py").write_text(source)
    assert type(load_backbone(_model_cfg(folder, trust=True)).model).__name__ == "ToyDnaModel"
    with pytest.raises(ModelLoadError, match="native HyenaDNAModel"):  # its weights are not HyenaDNA's
        load_backbone(_model_cfg(folder, trust=False))
