"""The command line as users meet it: a clear failure without network, Hydra's errors, and --help."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NO_NETWORK_LIMIT_S = 30  # fails fast (import ~5 s + a 3 s hub probe) instead of ~30 s of hub retries per file


def _run(tmp_path: Path, *args: str, offline_flag: bool = True) -> tuple[subprocess.CompletedProcess, float]:
    env = dict(os.environ, OMP_NUM_THREADS="1", DNALM_CACHE=str(tmp_path / "cache"), WANDB_MODE="offline",
               HF_HOME=str(tmp_path / "hf"))  # an empty HF cache: nothing to fall back on
    if not offline_flag:
        env.pop("HF_HUB_OFFLINE", None)
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "dnalm.train", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    return done, time.monotonic() - start


def test_missing_model_without_network_fails_fast_and_clearly(tmp_path: Path) -> None:
    # No HF_HUB_OFFLINE: the hub is simply unreachable, as on a cluster node without internet.
    done, seconds = _run(tmp_path, "model=nt_v2_250m", "data=gut_phage", f"paths.log_dir={tmp_path / 'out'}",
                         offline_flag=False)
    assert done.returncode == 2, done.stderr[-2000:]
    assert seconds < NO_NETWORK_LIMIT_S, f"took {seconds:.1f} s"
    assert "model.name_or_path" in done.stderr
    assert "InstaDeepAI/nucleotide-transformer-v2-250m-multi-species" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_unknown_config_name_gives_hydras_error(tmp_path: Path) -> None:
    done, _ = _run(tmp_path, "model=nope", f"paths.log_dir={tmp_path / 'out'}")
    assert done.returncode != 0
    assert "Could not find 'model/nope'" in done.stderr
    assert "tiny" in done.stderr  # Hydra lists the available options
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()  # nothing ran


def test_help_lists_config_groups(tmp_path: Path) -> None:
    done, _ = _run(tmp_path, "--help")
    assert done.returncode == 0, done.stderr[-2000:]
    for group in ("model", "data", "strategy", "head", "trainer"):
        assert f"{group}:" in done.stdout
    assert "nt_v2_250m" in done.stdout and "lora" in done.stdout
