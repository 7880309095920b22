"""Any Hugging Face backbone, encoder or decoder, loads by path with ``model=hf`` and trains through the module."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from dnalm.errors import ConfigError, ModelLoadError
from dnalm.models.backbone import load_backbone
from dnalm.train import train
from tests.helpers import (
    DECODERS,
    ENCODERS,
    TINY_CONFIGS,
    char_tokenizer,
    make_module,
    random_dna,
    save_tiny_model,
    token_batch,
)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every tiny architecture saved with its tokenizer, once per module."""
    root = tmp_path_factory.mktemp("backbones")
    return {kind: save_tiny_model(root / kind, kind) for kind in TINY_CONFIGS}


@pytest.mark.parametrize("kind", [*ENCODERS, *DECODERS])
def test_hf_backbone_loads_and_trains_with_lora(make_cfg, saved: dict[str, Path], kind: str) -> None:
    cfg = make_cfg("model=hf", f"model.name_or_path={saved[kind]}", "strategy=lora", "strategy.r=2")
    assert cfg.model.trust_remote_code is False
    backbone = load_backbone(cfg.model)
    assert backbone.model_type == kind
    assert backbone.is_causal == (kind in DECODERS)
    assert backbone.hidden_size == TINY_CONFIGS[kind]["hidden_size"]
    assert backbone.num_layers == 2
    assert backbone.max_tokens == TINY_CONFIGS[kind]["max_position_embeddings"]
    assert backbone.tokenizer.pad_token_id is not None
    # The default LoRA targets name real modules of this architecture.
    module_names = {name.rsplit(".", 1)[-1] for name, _ in backbone.model.named_modules()}
    assert backbone.lora_targets and set(backbone.lora_targets) <= module_names

    module = make_module(backbone, instantiate(cfg.strategy))
    batch = token_batch(backbone.tokenizer, random_dna(4, [20, 9, 14, 20]))
    loss = module.loss(module.logits(batch, "train"), batch["target"])
    loss.backward()
    assert torch.isfinite(loss)
    lora_grads = [p.grad for n, p in module.named_parameters() if ".lora_A." in n or ".lora_B." in n]
    assert lora_grads and all(g is not None for g in lora_grads)
    assert any(g.abs().sum() > 0 for g in lora_grads)


def test_dtype_option_loads_in_that_precision(make_cfg, saved: dict[str, Path]) -> None:
    cfg = make_cfg("model=hf", f"model.name_or_path={saved['llama']}", "model.dtype=bfloat16")
    assert next(load_backbone(cfg.model).model.parameters()).dtype == torch.bfloat16
    cfg = make_cfg("model=hf", f"model.name_or_path={saved['llama']}", "model.dtype=float8")
    with pytest.raises(ConfigError, match="model.dtype"):
        load_backbone(cfg.model)


def test_tokenizer_larger_than_embeddings_is_refused(make_cfg, tmp_path: Path) -> None:
    folder = save_tiny_model(tmp_path / "small_vocab", "bert", extra_tokens=6, vocab_size=12)
    cfg = make_cfg("model=hf", f"model.name_or_path={folder}")
    with pytest.raises(ModelLoadError) as err:
        load_backbone(cfg.model)
    message = str(err.value)
    assert "16 tokens" in message and "only 12" in message


def test_separate_tokenizer_option(make_cfg, saved: dict[str, Path], tmp_path: Path) -> None:
    tok_folder = tmp_path / "tok"
    char_tokenizer(causal=False, extra_tokens=200).save_pretrained(tok_folder)
    cfg = make_cfg("model=hf", f"model.name_or_path={saved['esm']}", f"model.tokenizer={tok_folder}")
    with pytest.raises(ModelLoadError, match="embeds only"):
        load_backbone(cfg.model)
    cfg = make_cfg("model=hf", f"model.name_or_path={saved['esm']}", f"model.tokenizer={tmp_path / 'nowhere'}")
    with pytest.raises(ModelLoadError, match="nowhere"):
        load_backbone(cfg.model)


def test_unknown_model_type_needs_trust_remote_code(make_cfg, tmp_path: Path) -> None:
    folder = tmp_path / "mystery"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "dna_mystery", "hidden_size": 8}))
    char_tokenizer().save_pretrained(folder)
    cfg = make_cfg("model=hf", f"model.name_or_path={folder}")
    with pytest.raises(ModelLoadError) as err:
        load_backbone(cfg.model)
    message = str(err.value)
    assert "dna_mystery" in message and "trust_remote_code=true" in message and "revision" in message


def test_folder_without_config_and_hub_id_offline(make_cfg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty").mkdir()
    cfg = make_cfg("model=hf", f"model.name_or_path={tmp_path / 'empty'}")
    with pytest.raises(ModelLoadError, match="config.json"):
        load_backbone(cfg.model)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))  # an empty cache: nothing is found there
    cfg = make_cfg("model=hf", "model.name_or_path=nobody/no-such-dna-model")
    with pytest.raises(ModelLoadError, match="unreachable"):
        load_backbone(cfg.model)


def test_train_end_to_end_with_a_saved_mistral_and_lora(make_cfg, tmp_path: Path) -> None:
    folder = save_tiny_model(tmp_path / "mistral", "mistral", max_position_embeddings=256)
    cfg = make_cfg("model=hf", f"model.name_or_path={folder}", "strategy=lora", "data.demo.train=64",
                   "data.demo.valid=16", "data.demo.test=16", "data.demo.length=60")
    metrics = train(cfg)
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert written["strategy"] == "lora" and written["model"] == folder.name  # names come from the last path part
    assert 0 < written["trainable_params"] < written["total_params"]
    assert 0.0 <= written["test/accuracy"] <= 1.0
    assert metrics["global_step"] == 4  # 64 records / batch 16, one epoch
    assert Path(written["best_checkpoint"]).is_file()
