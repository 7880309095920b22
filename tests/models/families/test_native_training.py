"""The card's model names with local copies: a published-layout NT v2 checkpoint fine-tunes with LoRA, no remote code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dnalm.errors import ModelLoadError
from dnalm.tokenizers import KmerTokenizer
from dnalm.train import train
from tests.helpers.nt_v2 import TINY, published_state_dict, write_published


def _tiny_nt_v2(tmp_path: Path) -> Path:
    config = {**TINY, "vocab_size": 4107, "max_position_embeddings": 2050}
    folder = write_published(tmp_path / "nt_v2_local", config, published_state_dict(config))
    KmerTokenizer().to_hf().save_pretrained(folder)
    assert "auto_map" in json.loads((folder / "config.json").read_text())  # remote code is named but not used
    return folder


def test_published_layout_nt_v2_trains_with_lora(make_cfg, tmp_path: Path) -> None:
    folder = _tiny_nt_v2(tmp_path)
    cfg = make_cfg("model=hf", f"model.name_or_path={folder}", "model.name=nt_v2_tiny", "strategy=lora",
                   "strategy.r=2")
    metrics = train(cfg)

    assert metrics["model"] == "nt_v2_tiny" and metrics["strategy"] == "lora"
    assert 0 < metrics["trainable_params"] < metrics["total_params"]
    assert metrics["test/accuracy"] is not None


def test_zoo_name_refuses_a_checkpoint_of_another_size(make_cfg, tmp_path: Path) -> None:
    folder = _tiny_nt_v2(tmp_path)
    cfg = make_cfg("model=nt_v2_50m", f"model.name_or_path={folder}")
    with pytest.raises(ModelLoadError, match="hidden_size: expected 512, found 32"):
        train(cfg)


def test_published_layout_sparse_gena_trains_with_lora(make_cfg, tmp_path: Path) -> None:
    """A DeepSpeed-sparse GENA-LM layout (rotary, per-layer master_layout) fine-tunes on 122-token inputs."""
    from tests.helpers import char_tokenizer
    from tests.helpers.gena_bert import published_state_dict as gena_state_dict
    from tests.helpers.gena_sparse import SPARSE_TINY, deepspeed_like_layouts

    config = {**SPARSE_TINY, "max_position_embeddings": 128,
              "sparse_attention": {**SPARSE_TINY["sparse_attention"], "block": 16}}
    layouts = deepspeed_like_layouts(config["num_hidden_layers"], 4, 8)
    assert not all(layout.all() for layout in layouts)  # genuinely sparse at 8 blocks
    folder = write_published(tmp_path / "gena_sparse_local", config, gena_state_dict(config, layouts=layouts))
    char_tokenizer().save_pretrained(folder)
    cfg = make_cfg("model=hf", f"model.name_or_path={folder}", "model.name=gena_sparse_tiny", "strategy=lora",
                   "strategy.r=2", "model.lora_target_modules=[query,value]")
    metrics = train(cfg)

    assert metrics["model"] == "gena_sparse_tiny" and 0 < metrics["trainable_params"] < metrics["total_params"]
    assert metrics["test/accuracy"] is not None


def test_head_native_evaluates_a_fine_tuned_nt_v2_classifier(make_cfg, tmp_path: Path) -> None:
    """`head=native` on a published-layout NT v2 classifier uses the file's own head: a head biased hard towards
    label 1 predicts 1 everywhere, so accuracy is exactly the share of 1s."""
    import pandas as pd
    import torch

    from dnalm.evaluate import evaluate

    config = {**TINY, "vocab_size": 4107, "max_position_embeddings": 2050,
              "architectures": ["EsmForSequenceClassification"], "id2label": {"0": "0", "1": "1"}}
    state = {k: v for k, v in published_state_dict(config).items() if not k.startswith("lm_head.")}
    hidden = config["hidden_size"]
    state.update({"classifier.dense.weight": torch.zeros(hidden, hidden), "classifier.dense.bias": torch.zeros(hidden),
                  "classifier.out_proj.weight": torch.zeros(2, hidden),
                  "classifier.out_proj.bias": torch.tensor([-20.0, 20.0])})
    folder = write_published(tmp_path / "nt_v2_classifier", config, state)
    KmerTokenizer().to_hf().save_pretrained(folder)
    from tests.helpers import random_dna

    table = tmp_path / "table"
    table.mkdir()
    labels = [1] * 12 + [0] * 28
    pd.DataFrame({"sequence": random_dna(40, 60), "label": labels}).to_csv(
        table / "test.csv", index=False)
    cfg = make_cfg("model=hf", f"model.name_or_path={folder}", "head=native", "trainer.accelerator=cpu",
                   f"data.path={table}", config_name="evaluate")
    metrics = evaluate(cfg)

    frame = pd.read_csv(tmp_path / "run" / "predictions.csv")
    assert len(frame) == metrics["records"] == 40
    assert (frame["predicted"] == 1).all()
    assert metrics["test/accuracy"] == pytest.approx(12 / 40)
