"""Nothing lost: failed runs leave error.txt, runs never share or overwrite a folder, a resume continues its run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import open_dict

from dnalm.errors import ConfigError
from dnalm.train import train, train_or_record
from tests.helpers.configs import CONF_DIR, SMALL


def _cfg(run_dir: Path, root: Path, *overrides: str):  # noqa: ANN202 - a DictConfig
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="train", overrides=[*SMALL, "callbacks.early_stopping=null", "data.demo.train=64",
                                                            "data.demo.valid=16", "data.demo.test=16",
                                                            "data.demo.length=60", *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir, cfg.paths.log_dir = str(run_dir), str(root / "outputs")
        cfg.paths.cache_dir = str(root / "cache")
    return cfg


def test_run_folders_have_microseconds() -> None:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="train", return_hydra_config=True)
    for pattern in (cfg.hydra.run.dir, cfg.hydra.sweep.dir):
        assert re.search(r"\d{2}-\d{2}-\d{2}-\d{6}$", str(pattern)), pattern


def test_a_failed_single_run_leaves_error_txt(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path / "run", tmp_path, "data.batch_size=abc")
    with pytest.raises(ConfigError):
        train_or_record(cfg)
    error = (tmp_path / "run" / "error.txt").read_text()
    assert error.startswith("ConfigError: data.batch_size='abc' must be an integer") and "Traceback" in error


def test_resume_continues_in_the_interrupted_runs_folder(tmp_path: Path) -> None:
    first = tmp_path / "first"
    metrics = train(_cfg(first, tmp_path))
    assert metrics["epochs"] == 1
    with pytest.raises(ConfigError, match="already holds another run's metrics.json"):
        train(_cfg(first, tmp_path))
    (first / "metrics.json").unlink()  # as if it had been killed before the end
    second = tmp_path / "second"
    resumed = train(_cfg(second, tmp_path, f"ckpt_path={first / 'checkpoints' / 'last.ckpt'}",
                         "trainer.max_epochs=2"))
    assert Path(resumed["run_dir"]) == first and resumed["epochs"] == 2
    assert json.loads((first / "metrics.json").read_text())["epochs"] == 2
    assert not (second / "metrics.json").exists()
    assert (second / "resumed_into.txt").read_text().strip() == str(first)
    # one CSV log holds both sessions, each step once
    import pandas as pd

    curve = pd.read_csv(first / "csv" / "metrics.csv")
    assert {0, 1} <= set(curve.dropna(subset=["train/loss"])["epoch"].astype(int))
    assert curve.dropna(subset=["train/loss"])["step"].is_unique


def test_step_limited_run_is_validated_and_says_which_weights_were_tested(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture) -> None:
    metrics = train(_cfg(tmp_path / "run", tmp_path, "trainer.max_steps=2"))  # 64 records / 16: 4 steps an epoch
    assert metrics["global_step"] == 2 and metrics["best_checkpoint"] is None
    assert "val/mcc" in metrics and "test/mcc" in metrics
    assert metrics["tested"].startswith("final weights")
    out = capsys.readouterr().out
    assert "test metrics (final weights: no validation ran during training)" in out
    assert "best checkpoint" not in out


def test_a_resumed_run_continues_its_wandb_run(tmp_path: Path) -> None:
    from dnalm import runtime

    cfg = _cfg(tmp_path / "run", tmp_path, "logger=wandb", "logger.wandb.offline=true")
    (logger,) = runtime.make_loggers(cfg, wandb_id="abc123")
    assert logger.version == "abc123"  # the saved id, not a new run (Lightning passes resume="allow")
