"""The card's model names with local copies: a published-layout NT v2 checkpoint fine-tunes with LoRA, no remote code."""

from __future__ import annotations

import json
from pathlib import Path

from tests.models.families.test_nt_v2 import TINY, published_state_dict, write_published

from dnalm.tokenizers import KmerTokenizer
from dnalm.train import train


def test_nt_v2_config_name_with_local_copy_trains_with_lora(make_cfg, tmp_path: Path) -> None:
    config = {**TINY, "vocab_size": 4107, "max_position_embeddings": 2050}
    folder = write_published(tmp_path / "nt_v2_local", config, published_state_dict(config))
    KmerTokenizer().to_hf().save_pretrained(folder)
    assert "auto_map" in json.loads((folder / "config.json").read_text())  # remote code is named but not used

    cfg = make_cfg("model=nt_v2_50m", f"model.name_or_path={folder}", "strategy=lora", "strategy.r=2")
    metrics = train(cfg)

    assert metrics["model"] == "nt_v2_50m" and metrics["strategy"] == "lora"
    assert 0 < metrics["trainable_params"] < metrics["total_params"]
    assert metrics["test/accuracy"] is not None
