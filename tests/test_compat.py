"""Each private API dnalm uses (all behind ``dnalm.compat``) still exists and still does what dnalm relies on.

A failure here after an upgrade names the private attribute that moved: fix ``dnalm/compat.py``, not the callers.
"""

from __future__ import annotations

from types import SimpleNamespace

import lightning as L
import torch
from tokenizers import Tokenizer, models
from transformers import BertConfig, PreTrainedModel, PreTrainedTokenizerFast

from dnalm import compat


class _Recorder(L.LightningModule):
    """A linear model that records ``compat.logs_this_step`` at every training batch."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(2, 1)
        self.seen: list[bool] = []

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        self.seen.append(compat.logs_this_step(compat.attached_trainer(self)))
        return self.net(batch[0]).pow(2).mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 2)), batch_size=2)


def _trainer(**kwargs: object) -> L.Trainer:
    return L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, **kwargs)


def test_attached_trainer_reads_lightning_private_trainer() -> None:
    module = _Recorder()
    assert "_trainer" in vars(module)  # LightningModule's private slot behind the raising .trainer property
    assert compat.attached_trainer(module) is None
    trainer = _trainer()
    module.trainer = trainer
    assert compat.attached_trainer(module) is trainer


def test_logs_this_step_follows_log_every_n_steps() -> None:
    trainer = _trainer(max_epochs=1, log_every_n_steps=2)
    assert hasattr(trainer._logger_connector, "should_update_logs")  # the private switch compat reads
    module = _Recorder()
    trainer.fit(module)
    assert module.seen == [False, True, False, True]


def test_restore_loader_states_calls_lightning_private_loader_restore() -> None:
    loop = _trainer().fit_loop
    assert hasattr(loop, "_combined_loader_states_to_load") and callable(loop._load_combined_loader_states)
    calls: list[int] = []
    waiting = SimpleNamespace(_combined_loader_states_to_load=[{"state": 1}],
                              _load_combined_loader_states=lambda: calls.append(1))
    compat.restore_loader_states(waiting)
    assert calls == [1]
    compat.restore_loader_states(SimpleNamespace(_combined_loader_states_to_load=[],
                                                 _load_combined_loader_states=lambda: calls.append(2)))
    assert calls == [1]


def test_fused_kernel_devices_comes_from_torch() -> None:
    from torch.utils._foreach_utils import _get_fused_kernels_supported_devices  # fails loudly if removed

    devices = compat.fused_kernel_devices()
    assert devices == set(_get_fused_kernels_supported_devices())
    assert {"cpu", "cuda"} <= devices


def test_attn_implementation_reads_the_config_choice() -> None:
    assert compat.attn_implementation(BertConfig(attn_implementation="eager")) == "eager"
    assert compat.attn_implementation(BertConfig()) is None  # not chosen yet: dnalm's default applies
    assert compat.attn_implementation(object()) is None


def test_word_cache_resizer_finds_the_rust_bpe_cache() -> None:
    bpe = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE(vocab={"A": 0, "C": 1}, merges=[])))
    resize = compat.word_cache_resizer(bpe)
    assert resize is not None
    resize(0)  # the call encode.py makes; raises if the signature changed
    resize(10_000)
    word_level = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab={"A": 0}, unk_token="A")))
    assert compat.word_cache_resizer(word_level) is None
    assert compat.word_cache_resizer(object()) is None


def test_transformers_hooks_overridden_by_native_families_still_exist() -> None:
    for name in ("_init_weights", "_can_set_attn_implementation", "_keys_to_ignore_on_load_unexpected"):
        assert hasattr(PreTrainedModel, name), f"transformers.PreTrainedModel.{name} is gone: update dnalm/models/families"


def test_wandb_init_settings_reads_lightning_private_init_kwargs(tmp_path) -> None:
    from lightning.pytorch.loggers import WandbLogger

    from dnalm.compat import wandb_init_settings

    logger = WandbLogger(save_dir=str(tmp_path), offline=True, project="p")
    assert hasattr(logger, "_wandb_init")  # an upgrade that renames it fails here, by name
    settings = wandb_init_settings(logger)
    assert settings is not None and settings["project"] == "p" and "anonymous" in settings
