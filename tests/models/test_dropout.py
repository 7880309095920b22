"""PackedDropout: the rate, scaling, gradients and seeding of torch's dropout, from a quarter of the draws."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from dnalm.models.dropout import PackedDropout, uniform_int16, use_packed_dropout
from dnalm.models.module import DNALMModule
from dnalm.strategies import LoRA
from dnalm.tasks import BinaryTask
from tests.helpers import head_cfg, load_tiny, optim_cfg, save_tiny_model


def _five_sigma(p: float, n: int) -> float:
    return 5 * (p * (1 - p) / n) ** 0.5


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_drop_rate_and_scaling_match_the_requested_p(p: float) -> None:
    torch.manual_seed(0)
    x = torch.rand(200, 1000) + 0.5  # no zeros of its own
    y = PackedDropout(p).train()(x)
    dropped = y == 0
    assert abs(dropped.float().mean().item() - p) < _five_sigma(p, x.numel())
    torch.testing.assert_close(y[~dropped], x[~dropped] / (1 - p))


def test_each_of_the_four_lanes_of_a_random_word_is_uniform() -> None:
    # a generator that leaves the sign bit of its 64-bit words clear would bias every fourth lane
    torch.manual_seed(1)
    draws = uniform_int16(400_000).view(-1, 4).float()
    for lane in draws.T:
        assert abs((lane < -26214).float().mean().item() - 0.1) < _five_sigma(0.1, len(lane))
        assert abs(lane.mean().item()) < 5 * (65536 / 12**0.5) / len(lane) ** 0.5
    assert draws.min() == -32768 and draws.max() == 32767


def test_gradient_flows_through_kept_elements_only_with_the_same_scale() -> None:
    torch.manual_seed(2)
    x = (torch.rand(64, 33) + 0.5).requires_grad_()
    y = PackedDropout(0.3).train()(x)
    upstream = torch.randn_like(y)
    y.backward(upstream)
    expected = torch.where(y == 0, 0.0, upstream / 0.7)
    torch.testing.assert_close(x.grad, expected)


def test_same_seed_same_mask_and_other_seeds_differ() -> None:
    drop = PackedDropout(0.2).train()
    x = torch.ones(10_000)
    torch.manual_seed(3)
    first = drop(x)
    torch.manual_seed(3)
    assert torch.equal(drop(x), first)
    torch.manual_seed(4)
    assert not torch.equal(drop(x), first)


def test_identity_in_eval_and_at_p_zero() -> None:
    x = torch.randn(8, 16)
    assert PackedDropout(0.5).eval()(x) is x
    assert PackedDropout(0.0).train()(x) is x


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_other_dtypes_fall_back_to_torch_dropout(dtype: torch.dtype) -> None:
    x = torch.randn(32, 64).to(dtype)
    torch.manual_seed(5)
    ours = PackedDropout(0.25).train()(x)
    torch.manual_seed(5)
    theirs = nn.Dropout(0.25).train()(x)
    assert ours.dtype == dtype and torch.equal(ours, theirs)


def test_p_one_drops_everything() -> None:
    assert torch.count_nonzero(PackedDropout(1.0).train()(torch.ones(100))) == 0


def test_replaces_plain_dropouts_only_and_keeps_the_state_dict() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.1), nn.Sequential(nn.Dropout(0.2), nn.Dropout(0.3, inplace=True)))
    keys = set(model.state_dict())
    assert use_packed_dropout(model) == 2
    assert isinstance(model[1], PackedDropout) and model[1].p == 0.1
    assert isinstance(model[2][0], PackedDropout) and model[2][0].p == 0.2
    assert type(model[2][1]) is nn.Dropout  # in-place dropouts are left to torch
    assert set(model.state_dict()) == keys
    assert use_packed_dropout(model) == 0  # already replaced


def _module(folder: Path, packed: bool) -> DNALMModule:
    optim = OmegaConf.merge(optim_cfg(), {"packed_dropout": packed})
    return DNALMModule(load_tiny(folder), BinaryTask(2, ["0", "1"]), LoRA(r=2, alpha=4, dropout=0.1),
                       head_cfg(dropout=0.1), optim)


def test_the_module_uses_it_for_lora_backbone_and_head_dropout(tmp_path: Path) -> None:
    folder = save_tiny_model(tmp_path / "bert", "bert")
    packed = _module(folder, packed=True)
    names = {n for n, m in packed.named_modules() if isinstance(m, PackedDropout)}
    assert any("lora_dropout" in n for n in names)
    assert any(n.startswith("head.") for n in names)
    assert any("attention.output.dropout" in n for n in names)  # the backbone's own hidden dropout
    assert not [n for n, m in packed.named_modules() if type(m) is nn.Dropout]

    plain = _module(folder, packed=False)
    assert not any(isinstance(m, PackedDropout) for m in plain.modules())
    assert set(packed.state_dict()) == set(plain.state_dict())
