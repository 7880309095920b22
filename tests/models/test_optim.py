"""Optimisers and schedules are chosen by ``_target_`` in ``conf/optim``: AdamW as before, SGD, and the schedules."""

from __future__ import annotations

import pytest
import torch
from transformers import get_scheduler

from dnalm.checkpoints import read_checkpoint
from dnalm.errors import ConfigError
from dnalm.models.optim import make_optimizer, with_step_scheduler
from dnalm.train import train

TINY_RUN = ["trainer.max_steps=4", "trainer.val_check_interval=4"]


def _params() -> list[dict]:
    torch.manual_seed(0)
    weight, bias = torch.nn.Parameter(torch.randn(3, 4)), torch.nn.Parameter(torch.zeros(3))
    return [{"params": [weight], "lr": 0.01, "weight_decay": 0.1, "name": "backbone"},
            {"params": [bias], "lr": 0.02, "weight_decay": 0.0, "name": "backbone_no_decay"}]


def test_adamw_config_is_the_adamw_of_before(make_cfg) -> None:
    opt = make_cfg(small=False).optim
    optimizer = make_optimizer(opt, _params(), fused=False)
    assert type(optimizer) is torch.optim.AdamW
    group = optimizer.param_groups[0]
    assert (group["lr"], group["weight_decay"], tuple(group["betas"]), group["eps"]) == (0.01, 0.1, (0.9, 0.999), 1e-8)
    assert optimizer.param_groups[1]["lr"] == 0.02 and optimizer.defaults["lr"] == float(opt.lr)
    assert optimizer.defaults["fused"] is None
    # the same updates as torch.optim.AdamW built by hand, as dnalm did before optimisers had a _target_
    mine, reference = _params(), _params()
    ours = make_optimizer(opt, mine)
    theirs = torch.optim.AdamW(reference, betas=(0.9, 0.999), eps=1e-8)
    for _ in range(3):
        for groups, optim in ((mine, ours), (reference, theirs)):
            optim.zero_grad()
            sum((g["params"][0] ** 2).sum() for g in groups).backward()
            optim.step()
    for a, b in zip(mine, reference):
        torch.testing.assert_close(a["params"][0], b["params"][0], rtol=0, atol=0)


@pytest.mark.filterwarnings("ignore:Detected call of")
@pytest.mark.parametrize("name", ["linear", "cosine", "constant"])
@pytest.mark.parametrize("spelling", ["group", "short"])
def test_schedules_are_transformers_schedules(make_cfg, name: str, spelling: str) -> None:
    override = f"optim/scheduler={name}" if spelling == "group" else f"optim.scheduler={name}"
    opt = make_cfg(override, "optim.warmup_ratio=0.2", small=False).optim
    ours = with_step_scheduler(torch.optim.SGD(_params(), lr=1.0), opt, total_steps=10)["lr_scheduler"]["scheduler"]
    reference_name = {"constant": "constant_with_warmup"}.get(name, name)
    theirs = get_scheduler(reference_name, torch.optim.SGD(_params(), lr=1.0), num_warmup_steps=2,
                           num_training_steps=10)
    for _ in range(10):
        assert ours.get_last_lr() == theirs.get_last_lr()
        ours.step()
        theirs.step()


def test_sgd_trains_through_its_config(make_cfg) -> None:
    cfg = make_cfg("optim=sgd", "optim.lr=0.05", "optim/scheduler=constant", *TINY_RUN)
    assert cfg.optim.momentum == 0.9 and "fused" not in cfg.optim
    metrics = train(cfg)
    assert metrics["global_step"] == 4
    state = read_checkpoint(metrics["best_checkpoint"])["optimizer_states"][0]
    assert all("momentum_buffer" in s and "exp_avg" not in s for s in state["state"].values())  # SGD's, not AdamW's
    assert {g["lr"] for g in state["param_groups"]} == {0.05}  # after warm-up, the constant schedule


def test_bad_optimizer_configs_are_one_config_error(make_cfg) -> None:
    opt = make_cfg(small=False).optim
    with pytest.raises(ConfigError, match=r"optim.scheduler='sometimes' is unknown.*'constant', 'cosine', 'linear'"):
        with_step_scheduler(torch.optim.SGD(_params(), lr=1.0), {**opt, "scheduler": "sometimes"}, 10)
    with pytest.raises(ConfigError, match=r"optim._target_=torch.optim.Nope cannot be built"):
        make_optimizer({**opt, "_target_": "torch.optim.Nope"}, _params())
    with pytest.raises(ConfigError, match=r"optim built a dict, not a torch.optim.Optimizer"):
        make_optimizer({**opt, "_target_": "builtins.dict"}, _params())
