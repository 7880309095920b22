"""Each adaptation strategy trains exactly the parameters it promises (checked through real gradients)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from dnalm.errors import ConfigError
from dnalm.models.module import DNALMModule
from dnalm.strategies import LoRA, PartialUnfreezing, Probing
from dnalm.strategies.full import FullFineTuning
from dnalm.train import build
from tests.helpers import load_tiny, make_module, random_dna, save_tiny_model, token_batch

HEAD = ("head.", "pooling.")
_TOKENIZERS: dict[int, object] = {}  # module id -> its tokenizer (for _step)


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One encoder (ESM: final norm ``emb_layer_norm_after``) and one decoder (Mistral: final ``norm``)."""
    root = tmp_path_factory.mktemp("models")
    return {kind: save_tiny_model(root / kind, kind) for kind in ("esm", "mistral")}


def _step(module: DNALMModule) -> torch.Tensor:
    """One forward + backward on a padded batch of three sequences; returns the loss."""
    batch = token_batch(_TOKENIZERS[id(module)], random_dna(3, [12, 7, 10]))
    loss = module.loss(module(batch["input_ids"], batch["attention_mask"]), batch["target"])
    loss.backward()
    return loss


def _build(folder: Path, strategy: object) -> DNALMModule:
    backbone = load_tiny(folder)
    module = make_module(backbone, strategy)  # type: ignore[arg-type]
    _TOKENIZERS[id(module)] = backbone.tokenizer
    return module


def _with_grad(module: DNALMModule) -> set[str]:
    return {name for name, p in module.named_parameters() if p.grad is not None}


def _requires_grad(module: DNALMModule) -> set[str]:
    return {name for name, p in module.named_parameters() if p.requires_grad}


def _numel(module: DNALMModule, names: set[str]) -> int:
    return sum(p.numel() for name, p in module.named_parameters() if name in names)


@pytest.mark.parametrize("kind", ["esm", "mistral"])
def test_full_trains_every_parameter(tiny_models: dict[str, Path], kind: str) -> None:
    module = _build(tiny_models[kind], FullFineTuning())
    loss = _step(module)
    assert torch.isfinite(loss)
    everything = {name for name, _ in module.named_parameters()}
    # Every parameter gets a gradient: none is dead weight (an unused pooler would break DDP).
    assert _with_grad(module) == everything == _requires_grad(module)
    assert module.count_parameters() == (_numel(module, everything), _numel(module, everything))


@pytest.mark.parametrize("kind", ["esm", "mistral"])
def test_lora_trains_adapters_and_head_only(tiny_models: dict[str, Path], kind: str) -> None:
    module = _build(tiny_models[kind], LoRA(r=2, alpha=4))
    _step(module)
    names = {name for name, _ in module.named_parameters()}
    expected = {n for n in names if ".lora_" in n or n.startswith(HEAD)}
    assert any(".lora_A." in n for n in expected) and any(".lora_B." in n for n in expected)
    assert _with_grad(module) == expected == _requires_grad(module)
    targets = ("query", "value") if kind == "esm" else ("q_proj", "v_proj")
    adapted = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in expected if ".lora_" in n}
    assert adapted == set(targets)
    trainable, total = module.count_parameters()
    assert trainable == _numel(module, expected) and total == _numel(module, names)
    assert trainable < total / 2


def test_lora_modules_to_save_trains_copies(tiny_models: dict[str, Path]) -> None:
    module = _build(tiny_models["esm"], LoRA(r=2, alpha=4, modules_to_save=["intermediate"]))
    _step(module)
    names = {name for name, _ in module.named_parameters()}
    copies = {n for n in names if ".intermediate.modules_to_save." in n}
    originals = {n for n in names if ".intermediate.original_module." in n}
    assert copies and originals  # PEFT keeps the frozen original beside the trained copy
    expected = {n for n in names if ".lora_" in n or n.startswith(HEAD)} | copies
    assert _with_grad(module) == expected == _requires_grad(module)
    assert module.count_parameters()[0] == _numel(module, expected)


def test_lora_unknown_target_is_a_config_error(tiny_models: dict[str, Path]) -> None:
    backbone = load_tiny(tiny_models["esm"])
    with pytest.raises(ConfigError) as err:
        make_module(backbone, LoRA(target_modules=["q_proj", "value"]))
    message = str(err.value)
    assert "['q_proj']" in message and "strategy.target_modules" in message
    assert "query" in message  # it lists the linear layers the model does have


def test_lora_without_known_targets_asks_for_them(tiny_models: dict[str, Path]) -> None:
    backbone = load_tiny(tiny_models["esm"])
    backbone.lora_targets = []
    with pytest.raises(ConfigError, match="target_modules"):
        make_module(backbone, LoRA())


@pytest.mark.parametrize("kind", ["esm", "mistral"])
def test_partial_trains_last_layers_final_norm_and_head(tiny_models: dict[str, Path], kind: str) -> None:
    module = _build(tiny_models[kind], PartialUnfreezing(num_layers=1))
    _step(module)
    names = {name for name, _ in module.named_parameters()}
    last_layer = "backbone.encoder.layer.1." if kind == "esm" else "backbone.layers.1."
    final_norm = "backbone.encoder.emb_layer_norm_after." if kind == "esm" else "backbone.norm."
    expected = {n for n in names if n.startswith((last_layer, final_norm, *HEAD))}
    assert any(n.startswith(final_norm) for n in expected)
    assert _with_grad(module) == expected == _requires_grad(module)
    assert module.count_parameters()[0] == _numel(module, expected)


def test_partial_without_final_norm(tiny_models: dict[str, Path]) -> None:
    module = _build(tiny_models["mistral"], PartialUnfreezing(num_layers=2, train_final_norm=False))
    _step(module)
    names = {name for name, _ in module.named_parameters()}
    expected = {n for n in names if n.startswith(("backbone.layers.", *HEAD))}
    assert _with_grad(module) == expected


def test_partial_rejects_too_many_layers(tiny_models: dict[str, Path]) -> None:
    backbone = load_tiny(tiny_models["esm"])
    with pytest.raises(ConfigError, match="between 1 and"):
        make_module(backbone, PartialUnfreezing(num_layers=3))


@pytest.mark.parametrize("kind", ["esm", "mistral"])
def test_probing_trains_head_only_and_backbone_is_untouched(tiny_models: dict[str, Path], kind: str) -> None:
    module = _build(tiny_models[kind], Probing())
    before = {k: v.clone() for k, v in module.backbone.state_dict().items()}
    head_before = module.head.net[1].weight.detach().clone()
    _step(module)
    names = {name for name, _ in module.named_parameters()}
    expected = {n for n in names if n.startswith(HEAD)}
    assert _with_grad(module) == expected == _requires_grad(module)
    optimizer = torch.optim.AdamW(module.parameter_groups())
    optimizer.step()
    assert all(torch.equal(before[k], v) for k, v in module.backbone.state_dict().items())
    assert not torch.equal(head_before, module.head.net[1].weight)
    assert module.count_parameters()[0] == _numel(module, expected)


class _CallsPerEpoch(Callback):
    """Backbone forward calls per (stage, epoch), counted by a forward hook on the backbone."""

    def __init__(self, module: DNALMModule) -> None:
        self.calls = 0
        self.train: list[int] = []
        self.val: list[int] = []
        module.backbone.register_forward_hook(lambda *_: self._count())

    def _count(self) -> None:
        self.calls += 1

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.calls = 0

    def on_validation_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.train.append(self.calls)
        self.calls = 0

    def on_validation_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.val.append(self.calls)


@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_probing_cache_skips_backbone_after_first_epoch(make_cfg, pooling: str) -> None:
    cfg = make_cfg("strategy=probing", f"head.pooling={pooling}", "data.demo.train=48", "data.demo.valid=16",
                   "data.demo.test=16", "data.demo.length=40")
    module, datamodule, _ = build(cfg)
    assert module.uses_cache
    counter = _CallsPerEpoch(module)
    trainer = L.Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        callbacks=[counter])
    trainer.fit(module, datamodule=datamodule)
    train_batches = len(datamodule.train_dataloader())
    assert counter.train == [train_batches, 0, 0]
    assert counter.val[0] > 0 and counter.val[1:] == [0, 0]
    assert len(module._cache["train"]) == len(datamodule.splits["train"].ids)
    assert not module.backbone.training  # frozen backbone stays in eval mode: cached embeddings are exact


def test_probing_cache_matches_uncached_embeddings(tiny_models: dict[str, Path]) -> None:
    """The cached path gives the same logits as running the backbone (padding does not leak into the cache)."""
    module = _build(tiny_models["esm"], Probing())
    module.eval()
    batch = token_batch(_TOKENIZERS[id(module)], random_dna(4, [12, 5, 9, 12]))
    direct = module(batch["input_ids"], batch["attention_mask"])
    first = module.logits(batch, "val")  # fills the cache
    second = module.logits(batch, "val")  # reads it
    torch.testing.assert_close(first, direct)
    torch.testing.assert_close(second, direct)


class _ModeAtStep(Callback):
    """Whether the backbone and its dropout layers were in training mode at each training batch."""

    def __init__(self) -> None:
        self.modes: list[tuple[bool, bool]] = []

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch: object, idx: int) -> None:
        dropouts = [m for m in module.backbone.modules() if isinstance(m, torch.nn.Dropout)]
        assert dropouts
        self.modes.append((module.backbone.training, all(m.training for m in dropouts)))


@pytest.mark.parametrize("strategy", ["full", "lora", "partial"])
def test_trainable_backbone_trains_in_train_mode(make_cfg, tiny_models: dict[str, Path], strategy: str) -> None:
    """``from_pretrained`` returns a model in eval mode; fine-tuning must still use its dropout."""
    cfg = make_cfg("model=hf", f"model.name_or_path={tiny_models['esm']}", f"strategy={strategy}",
                   "data.demo.train=32", "data.demo.valid=16", "data.demo.test=16", "data.demo.length=40",
                   "trainer.max_epochs=2")
    module, datamodule, _ = build(cfg)
    seen = _ModeAtStep()
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        callbacks=[seen])
    trainer.fit(module, datamodule=datamodule)
    assert len(seen.modes) == 4 and all(backbone and dropout for backbone, dropout in seen.modes)
