"""Runs of the real entry points, shrunk for a CPU: composed configs, training in-process or as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# tiny sizes (as SMALL in tests/helpers/configs.py), so a job takes seconds on one core
TINY = ["logger=csv", "data.demo.train=160", "data.demo.valid=48", "data.demo.test=48", "data.demo.length=120",
        "data.batch_size=16", "trainer.max_epochs=1", "trainer.accelerator=cpu", "trainer.log_every_n_steps=1",
        "trainer.limit_val_batches=2", "trainer.limit_test_batches=2"]


def run_train(log_dir: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    """``python -m dnalm.train -m ...`` in a subprocess writing under ``log_dir``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "WANDB_MODE": "offline", "DNALM_CACHE": str(log_dir / "cache"), "TOKENIZERS_PARALLELISM": "false"}
    env.pop("WANDB_API_KEY", None)
    return subprocess.run([sys.executable, "-m", "dnalm.train", "-m", *TINY, f"paths.log_dir={log_dir}", *overrides],
                          env=env, capture_output=True, text=True, timeout=600)
