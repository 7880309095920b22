"""IA3 and QLoRA: strategies added as a class + a YAML (the extension path of docs/extending.md)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf

from dnalm.errors import ConfigError
from dnalm.models.module import DNALMModule
from dnalm.strategies import IA3, FullFineTuning, Probing, QLoRA
from dnalm.train import build
from tests.helpers import load_tiny, make_module, random_dna, save_tiny_model, token_batch

HEAD = ("head.", "pooling.")


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {kind: save_tiny_model(root / kind, kind) for kind in ("esm", "mistral")}


def _trained_names(folder: Path, strategy: object) -> tuple[DNALMModule, set[str]]:
    """A module after one forward + backward; the names of the parameters that got a gradient."""
    backbone = load_tiny(folder)
    module = make_module(backbone, strategy)  # type: ignore[arg-type]
    batch = token_batch(backbone.tokenizer, random_dna(3, [12, 7, 10]))
    module.loss(module(batch["input_ids"], batch["attention_mask"]), batch["target"]).backward()
    return module, {name for name, p in module.named_parameters() if p.grad is not None}


@pytest.mark.parametrize(("kind", "scaled"), [("esm", {"query", "value"}),  # the model's LoRA targets
                                              ("mistral", {"k_proj", "v_proj", "down_proj"})])  # PEFT's table
def test_ia3_trains_scaling_vectors_and_head_only(tiny_models: dict[str, Path], kind: str, scaled: set[str]) -> None:
    module, trained = _trained_names(tiny_models[kind], IA3())
    vectors = {n for n in trained if ".ia3_l." in n}
    assert trained == vectors | {n for n in trained if n.startswith(HEAD)}
    assert {n.split(".ia3_l.")[0].rsplit(".", 1)[-1] for n in vectors} == scaled
    assert {n for n, p in module.named_parameters() if p.requires_grad} == trained
    ia3_trainable, total = module.count_parameters()
    full_trainable, _ = make_module(load_tiny(tiny_models[kind]), FullFineTuning()).count_parameters()
    added = sum(p.numel() for n, p in module.named_parameters() if n in vectors)
    assert total == full_trainable + added  # the vectors are the only new parameters
    assert ia3_trainable * 10 < full_trainable


def test_ia3_feedforward_must_be_a_target(tiny_models: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match="feedforward_modules \\['fc2'\\]"):
        make_module(load_tiny(tiny_models["mistral"]), IA3(target_modules=["k_proj"], feedforward_modules=["fc2"]))


def test_ia3_unknown_target_is_a_config_error(tiny_models: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match="\\['q_lin'\\] match no module"):
        make_module(load_tiny(tiny_models["esm"]), IA3(target_modules=["q_lin"]))


def test_ia3_trains_end_to_end(make_cfg, tiny_models: dict[str, Path]) -> None:
    cfg = make_cfg("model=hf", f"model.name_or_path={tiny_models['esm']}", "strategy=ia3", "optim.lr=0.05",
                   "data.demo.train=32", "data.demo.valid=16", "data.demo.test=16", "data.demo.length=40")
    module, datamodule, _ = build(cfg)
    assert type(module.strategy) is IA3
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(module, datamodule=datamodule)
    vectors = [p for n, p in module.named_parameters() if ".ia3_l." in n]
    assert vectors and all(p.requires_grad for p in vectors)
    # PEFT starts every vector at ones: training moved them
    assert max(float((p.detach() - 1).abs().max()) for p in vectors) > 1e-3
    assert torch.isfinite(trainer.callback_metrics["val/loss"])


def test_probing_refuses_per_epoch_random_data() -> None:
    with pytest.raises(ConfigError, match="data.rc_augment must be 0"):
        Probing().validate_data(OmegaConf.create({"rc_augment": 0.5}))
    with pytest.raises(ConfigError, match="random crop"):
        Probing().validate_data(OmegaConf.create({"train_long": "random_crop"}))
    Probing(cache=False).validate_data(OmegaConf.create({"rc_augment": 0.5, "train_long": "random_crop"}))
    IA3().validate_data(OmegaConf.create({"rc_augment": 0.5}))


def test_build_calls_the_strategy_data_hook(make_cfg) -> None:
    with pytest.raises(ConfigError, match="random crop"):
        build(make_cfg("strategy=probing", "data.train_long=random_crop"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_qlora_refuses_without_cuda(tiny_models: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match="needs a CUDA GPU.*strategy=lora"):
        make_module(load_tiny(tiny_models["esm"]), QLoRA())


def test_qlora_names_the_missing_package(tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=r"pip install 'dnalm\[qlora\]'"):
        make_module(load_tiny(tiny_models["esm"]), QLoRA())


@pytest.mark.gpu
def test_qlora_trains_on_gpu(make_cfg, tiny_models: dict[str, Path]) -> None:
    bnb = pytest.importorskip("bitsandbytes")
    cfg = make_cfg("model=hf", f"model.name_or_path={tiny_models['esm']}", "strategy=qlora",
                   "strategy.compute_dtype=float32", "data.demo.train=32", "data.demo.valid=16",
                   "data.demo.test=16", "data.demo.length=40")
    module, datamodule, _ = build(cfg)
    trainer = L.Trainer(max_epochs=1, accelerator="gpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(module, datamodule=datamodule)
    base = [m for m in module.backbone.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert base and all(m.weight.dtype == torch.uint8 for m in base)  # stored packed in 4 bits
    assert {n for n, p in module.named_parameters() if p.requires_grad and n.startswith("backbone.")} == \
        {n for n, _ in module.named_parameters() if ".lora_" in n}
    assert torch.isfinite(trainer.callback_metrics["val/loss"])
