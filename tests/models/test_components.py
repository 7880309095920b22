"""Heads and poolings are chosen by ``_target_``: a user's own class in a user config dir needs no dnalm edit."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from dnalm.checkpoints import read_checkpoint, upgrade_head_config
from dnalm.errors import ConfigError
from dnalm.inference import load_module
from dnalm.models.heads import LinearHead, MLPHead, build_head
from dnalm.models.pooling import MaxPooling, build_pooling
from dnalm.train import build, train

USER_HEADS = textwrap.dedent('''
    import torch
    from torch import nn


    class ScaledHead(nn.Module):
        """A user's head: one linear layer whose output is multiplied by a fixed scale."""

        def __init__(self, hidden_size: int, num_outputs: int, scale: float = 1.0) -> None:
            super().__init__()
            self.linear = nn.Linear(hidden_size, num_outputs)
            self.scale = scale

        def forward(self, pooled: torch.Tensor) -> torch.Tensor:
            return self.linear(pooled) * self.scale


    class FirstTwoMean(nn.Module):
        """A user's pooling: the mean of the first two tokens (no hidden_size argument)."""

        def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return hidden[:, :2].mean(1)
''')


@pytest.fixture
def user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with the user's module and ``conf/`` configs naming its classes."""
    work = tmp_path / "work"
    (work / "conf" / "head" / "pooling").mkdir(parents=True)
    (work / "my_heads.py").write_text(USER_HEADS)
    (work / "conf" / "head" / "scaled.yaml").write_text(
        "defaults:\n  - pooling: suggested\n  - _self_\n_target_: my_heads.ScaledHead\n_partial_: true\nscale: 0.5\n")
    (work / "conf" / "head" / "pooling" / "first_two.yaml").write_text(
        "_target_: my_heads.FirstTwoMean\n_partial_: true\n")
    monkeypatch.syspath_prepend(str(work))
    monkeypatch.chdir(work)
    return work


def test_a_users_head_and_pooling_from_their_config_dir_train(make_cfg, user_dir: Path) -> None:
    cfg = make_cfg("head=scaled", "head/pooling=first_two", "trainer.max_steps=3", "trainer.val_check_interval=3")
    module, _, backbone = build(cfg)
    assert type(module.head).__name__ == "ScaledHead" and module.head.scale == 0.5
    assert module.head.linear.in_features == backbone.hidden_size and module.head.linear.out_features == 2
    assert type(module.pooling).__name__ == "FirstTwoMean"
    metrics = train(cfg)
    assert metrics["global_step"] == 3
    # evaluate/predict rebuild the user's head from the checkpoint's config, with its trained weights
    reloaded, _, _ = load_module(OmegaConf.create({"ckpt_path": metrics["best_checkpoint"]}))
    saved = read_checkpoint(metrics["best_checkpoint"])["state_dict"]
    assert type(reloaded.head).__name__ == "ScaledHead" and reloaded.head.scale == 0.5
    torch.testing.assert_close(reloaded.head.linear.weight, saved["head.linear.weight"])
    assert not torch.equal(saved["head.linear.weight"], module.head.linear.weight)  # it trained
    # the short spelling finds the working directory's conf/ too
    assert type(build_pooling("first_two", 8, is_causal=False)).__name__ == "FirstTwoMean"


def test_shipped_heads_get_the_runtime_sizes() -> None:
    linear = build_head(OmegaConf.create({"_target_": "dnalm.models.heads.LinearHead", "_partial_": True,
                                          "dropout": 0.2, "pooling": "mean", "lr": None, "native": False}), 16, 3)
    assert isinstance(linear, LinearHead) and linear.net[0].p == 0.2 and linear.net[1].weight.shape == (3, 16)
    mlp = build_head({"_target_": "dnalm.models.heads.MLPHead", "mlp_hidden": 7}, 16, 2)
    assert isinstance(mlp, MLPHead) and mlp.net[1].weight.shape == (7, 16) and mlp.net[4].weight.shape == (2, 7)


@pytest.mark.parametrize(("spec", "message"), [
    ({"_target_": "nowhere.Head"}, r"head._target_=nowhere.Head cannot be built"),
    ({"_target_": "dnalm.models.heads.LinearHead", "width": 3}, r"head._target_=.*LinearHead rejected its arguments"),
    ({"_target_": "builtins.dict"}, r"head built a dict, not a torch module"),
    ({"dropout": 0.1}, r"head must name an option of head/"),
])
def test_bad_head_configs_are_one_config_error(spec: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_head(spec, 16, 2)


def test_old_head_configs_in_checkpoints_are_upgraded() -> None:
    """Checkpoints written before heads had a _target_ saved ``kind`` (and every key of linear.yaml)."""
    old_mlp = {"kind": "mlp", "pooling": "max", "dropout": 0.1, "mlp_hidden": 32, "lr": None, "native": False}
    new = upgrade_head_config(old_mlp)
    assert new == {"_target_": "dnalm.models.heads.MLPHead", "_partial_": True, "dropout": 0.1, "mlp_hidden": 32,
                   "pooling": "max", "lr": None, "native": False}
    head = build_head(new, 16, 2)
    assert isinstance(head, MLPHead) and head.net[1].out_features == 32
    assert isinstance(build_pooling(new["pooling"], 16, is_causal=False), MaxPooling)
    old_linear = {**old_mlp, "kind": "linear", "mlp_hidden": 256}  # linear.yaml carried mlp_hidden, unused
    assert "mlp_hidden" not in upgrade_head_config(old_linear)
    assert isinstance(build_head(upgrade_head_config(old_linear), 16, 2), LinearHead)
    assert upgrade_head_config(new) == new  # today's layout stays as it is


def test_pooling_runtime_arguments_follow_the_signature() -> None:
    hidden, mask = torch.randn(2, 4, 8), torch.ones(2, 4, dtype=torch.long)
    suggested = build_pooling({"_target_": "dnalm.models.pooling.suggested_pooling", "name": "max"}, 8, False)
    assert isinstance(suggested, MaxPooling)
    torch.testing.assert_close(suggested(hidden, mask), hidden.max(1).values)
