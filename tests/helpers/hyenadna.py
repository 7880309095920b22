"""HyenaDNA reference builders: random models of chosen sizes, saved in the published -hf layout."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from dnalm.models.families import HyenaDNAConfig, HyenaDNAForCausalLM, HyenaDNAModel

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden"
BASE_FIXTURE, CLASSIFIER_FIXTURE = GOLDEN / "hyenadna", GOLDEN / "hyenadna_classifier"


def published_copy(folder: Path, **fields: int) -> Path:
    """A random native model saved in the published layout: config.json with model_type hyenadna and the
    auto_map of the -hf repositories, tokenizer files naming remote code (copied from the golden fixture)."""
    torch.manual_seed(0)
    HyenaDNAForCausalLM(HyenaDNAConfig(**fields)).save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    published = json.loads((BASE_FIXTURE / "model" / "config.json").read_text())
    config = {**{k: v for k, v in config.items() if k in published}, **fields, "model_type": "hyenadna",
              "auto_map": published["auto_map"]}
    (folder / "config.json").write_text(json.dumps(config))
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(BASE_FIXTURE / "model" / name, folder / name)
    return folder


def random_model(**overrides: int) -> HyenaDNAModel:
    """A small HyenaDNA in eval mode with every parameter moved off its initial value, so the long filters
    carry information far (as trained ones do)."""
    torch.manual_seed(0)
    fields = {"d_model": 16, "n_layer": 2, "max_seq_len": 64, "emb_dim": 5, "filter_order": 8,
              "activation_freq": 10, **overrides}
    model = HyenaDNAModel(HyenaDNAConfig(**fields)).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.2 * torch.randn(param.shape))
    return model
