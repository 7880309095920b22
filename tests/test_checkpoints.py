"""Bad checkpoint files and resuming under another model: one clear error, never a weights_only=False hint."""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

import pytest
import torch

from dnalm.checkpoints import read_checkpoint
from dnalm.errors import ConfigError, DNALMError, ModelLoadError
from dnalm.train import check_resume_matches, train


def _checkpoint(path: Path, model: str = "tiny") -> Path:
    torch.save({"state_dict": {"w": torch.ones(2)},
                "dnalm_config": {"model": {"name": model, "name_or_path": None}, "strategy": {"name": "full"},
                                 "head": {"kind": "linear"}}}, path)
    return path


def test_good_checkpoint_reads(tmp_path: Path) -> None:
    assert read_checkpoint(_checkpoint(tmp_path / "ok.ckpt"))["state_dict"]["w"].sum() == 2


@pytest.mark.parametrize("kind", ["truncated", "text", "empty", "pickle", "no_state_dict"])
def test_bad_files_are_one_clear_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.ckpt"
    good = _checkpoint(tmp_path / "good.ckpt").read_bytes()
    content = {"truncated": good[: len(good) // 2], "text": b"hello\n", "empty": b"",
               "pickle": pickle.dumps(os.system), "no_state_dict": None}[kind]
    if content is None:
        torch.save({"weights": torch.ones(1)}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(ModelLoadError) as err:
        read_checkpoint(path)
    assert str(path) in str(err.value) and "weights_only=False" not in str(err.value)
    assert "ckpt_path=" in str(err.value)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        read_checkpoint(tmp_path / "nope.ckpt")
    with pytest.raises(ConfigError, match="is a folder"):
        read_checkpoint(tmp_path)


def test_resume_under_another_model_is_refused_unless_forced(make_cfg, tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    ckpt = str(_checkpoint(tmp_path / "other.ckpt", model="nt_v2_50m"))
    cfg = make_cfg(f"ckpt_path={ckpt}")
    with pytest.raises(ConfigError, match=r"model.name: nt_v2_50m in the checkpoint, tiny now.*resume_any_model"):
        check_resume_matches(cfg, ckpt)
    with caplog.at_level(logging.WARNING):
        check_resume_matches(make_cfg(f"ckpt_path={ckpt}", "resume_any_model=true"), ckpt)
    assert "another configuration" in caplog.text
    check_resume_matches(cfg, str(_checkpoint(tmp_path / "same.ckpt")))  # same settings: no error


def test_resume_from_a_bad_checkpoint_is_a_dnalm_error(make_cfg, tmp_path: Path) -> None:
    from dnalm.train import train

    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"\x00" * 10)
    with pytest.raises(DNALMError, match="not a readable checkpoint"):
        train(make_cfg(f"ckpt_path={bad}"))


def test_forced_resume_whose_optimizer_state_does_not_fit_is_one_clear_error(make_cfg) -> None:
    """resume_any_model=true with another strategy: torch's parameter-group mismatch becomes a dnalm error."""
    first = train(make_cfg("strategy=full"))
    last = Path(first["run_dir"]) / "checkpoints" / "last.ckpt"
    assert last.is_file()
    with pytest.raises(ConfigError, match="optimizer state does not fit this model's trainable parameters"):
        train(make_cfg("strategy=probing", f"ckpt_path={last}", "resume_any_model=true", "trainer.max_epochs=2"))


def test_old_layout_configs_are_upgraded_on_reading(tmp_path: Path) -> None:
    """Checkpoints written before components had a _target_: head.kind and a bare AdamW optim config."""
    path = tmp_path / "old.ckpt"
    old_optim = {"lr": 1e-3, "weight_decay": 0.01, "betas": [0.9, 0.999], "eps": 1e-8, "scheduler": "cosine",
                 "warmup_ratio": 0.1, "warmup_steps": None, "fused": None, "packed_dropout": True}
    torch.save({"state_dict": {}, "dnalm_config": {
        "model": {"name": "tiny"}, "optim": old_optim,
        "head": {"kind": "mlp", "pooling": "max", "dropout": 0.1, "mlp_hidden": 256, "lr": None, "native": False}}},
        path)
    saved = read_checkpoint(path)["dnalm_config"]
    assert saved["head"] == {"_target_": "dnalm.models.heads.MLPHead", "_partial_": True, "dropout": 0.1,
                             "mlp_hidden": 256, "pooling": "max", "lr": None, "native": False}
    assert saved["optim"] == {"_target_": "torch.optim.AdamW", "_partial_": True, **old_optim}
    assert saved["model"] == {"name": "tiny"}
    torch.save({"state_dict": {}, "dnalm_config": {"head": {"kind": "conv"}}}, path)
    with pytest.raises(ModelLoadError, match=r"head.kind='conv' is unknown to this dnalm"):
        read_checkpoint(path)
