"""A toy model folder that needs remote code (its own configuration/modeling files), for trust tests."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

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


def remote_code_folder(tmp_path: Path) -> Path:
    """Write the toy remote-code model (config, modeling file, weights, tokenizer) under ``tmp_path``."""
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
