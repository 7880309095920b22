"""W&B runs offline without credentials (no prompt, no crash) and never sees the API key; CSV always."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from dnalm.runtime import wandb_credentials_present


def _train_with_default_logger(tmp_path: Path, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """A tiny demo run with CSV + W&B logging, a private HOME (no ~/.netrc) and no standard input."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "DNALM_CACHE": str(tmp_path / "cache"), **extra_env}
    done = subprocess.run(
        [sys.executable, "-m", "dnalm.train", "logger=default", "data.demo.train=64", "data.demo.valid=16",
         "data.demo.test=16", "data.demo.length=60", "trainer.max_epochs=1", f"hydra.run.dir={tmp_path / 'run'}"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_default_logger_goes_offline_without_credentials(tmp_path: Path) -> None:
    _train_with_default_logger(tmp_path)
    run_dir = tmp_path / "run"
    offline_runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1  # a run `wandb sync` can upload later
    assert (run_dir / "csv" / "metrics.csv").is_file()
    assert "test/mcc" in json.loads((run_dir / "metrics.json").read_text())


def test_credentials_detection(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert not wandb_credentials_present()
    (tmp_path / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password secret-key\n")
    (tmp_path / ".netrc").chmod(0o600)
    assert wandb_credentials_present()
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    assert wandb_credentials_present()


def test_api_key_is_not_written_to_the_run(tmp_path: Path) -> None:
    key = "a1b2c3d4" * 5
    done = _train_with_default_logger(tmp_path, WANDB_API_KEY=key, WANDB_MODE="offline")
    run_dir = tmp_path / "run"
    assert key not in done.stdout + done.stderr
    for path in run_dir.rglob("*"):
        if path.is_file() and path.suffix in {".yaml", ".json", ".csv", ".log", ".txt"}:
            assert key not in path.read_text(errors="ignore"), path
