"""Resume honestly: SIGKILL ``python -m dnalm.train`` mid-epoch, resume with ``ckpt_path=last``, and get the
same weights and metrics as a run that was never interrupted (same seed, dropout on, CPU)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
EVERY = 3  # write last.ckpt every EVERY optimizer steps
# A resumed run on CPU is bit-for-bit the uninterrupted one: same batches, same dropout masks, same optimizer
# and scheduler state. Exact equality is asserted; this tolerance only absorbs float printing in metrics.json.
METRIC_TOL = 1e-7


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1", WANDB_MODE="offline",
               TOKENIZERS_PARALLELISM="false", DNALM_CACHE=str(tmp_path / "cache"), PYTHONUNBUFFERED="1")
    return env


def _command(tmp_path: Path, logs: Path, run: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "dnalm.train", "logger=csv", "trainer.accelerator=cpu", "seed=3",
            "data.demo.train=160", "data.demo.valid=32", "data.demo.test=32", "data.demo.length=100",
            "data.batch_size=16", "trainer.max_epochs=4", "trainer.log_every_n_steps=1",
            "callbacks.early_stopping.patience=10",
            f"callbacks.checkpoint.every_n_train_steps={EVERY}", "run_name=resume",
            f"paths.log_dir={logs}", f"paths.cache_dir={tmp_path / 'cache'}",
            f"hydra.run.dir={logs}/train/runs/resume/{run}", *extra]


def _load(path: Path) -> dict | None:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception:  # noqa: BLE001 - a file still being moved into place reads as not there yet
        return None


def _mid_epoch(ckpt: dict) -> bool:
    """The checkpoint was written inside an epoch after the first (so callback states restore too)."""
    loader = ckpt["loops"]["fit_loop"]["state_dict"].get("combined_loader", [{}])[0]
    progress = ckpt["loops"]["fit_loop"]["epoch_loop.batch_progress"]
    # written at the end of a training step: that batch is processed, and the loader counts it as consumed
    return (ckpt["epoch"] >= 1 and loader.get("consumed", 0) > 0 and not progress["is_last_batch"]
            and loader["consumed"] == progress["current"]["processed"])


def _kill_mid_epoch(proc: subprocess.Popen, last: Path, deadline: float) -> dict:
    """Poll last.ckpt; freeze the run (SIGSTOP) to inspect a new one, SIGKILL it once it is mid-epoch."""
    seen = 0.0
    while time.time() < deadline and proc.poll() is None:
        if last.is_file() and last.stat().st_mtime != seen:
            proc.send_signal(signal.SIGSTOP)  # nothing moves while we look
            seen = last.stat().st_mtime
            ckpt = _load(last)
            if ckpt is not None and _mid_epoch(ckpt):
                proc.kill()
                proc.wait()
                return ckpt
            proc.send_signal(signal.SIGCONT)
        time.sleep(0.01)
    proc.kill()
    out = proc.stdout.read() if proc.stdout else ""
    pytest.fail(f"no mid-epoch last.ckpt appeared before the run ended (rc={proc.returncode}):\n{out[-3000:]}")


def _run(cmd: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _logged_after(path: Path, step: int) -> dict[tuple[int, str], list[float]]:
    """(step, metric) -> values, from a CSVLogger file, for steps after ``step``."""
    logged: dict[tuple[int, str], list[float]] = {}
    with path.open() as handle:
        for row in csv.DictReader(handle):
            if int(row["step"]) <= step:
                continue
            for key, value in row.items():
                if value and key not in ("step", "epoch"):
                    logged.setdefault((int(row["step"]), key), []).append(float(value))
    return logged




@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tmp_path: Path) -> None:
    env = _env(tmp_path)
    logs, other = tmp_path / "outputs", tmp_path / "other"
    runs = logs / "train" / "runs" / "resume"

    proc = subprocess.Popen(_command(tmp_path, logs, "a"), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    killed_at = _kill_mid_epoch(proc, runs / "a" / "checkpoints" / "last.ckpt", time.time() + 240)
    assert proc.returncode == -signal.SIGKILL
    assert not (runs / "a" / "metrics.json").exists()

    _run(_command(tmp_path, logs, "b", "ckpt_path=last"), env)
    _run(_command(tmp_path, other, "full"), env)

    # one training, one run: the resumed launch continues in the interrupted run's folder
    assert (runs / "b" / "resumed_into.txt").is_file() and not (runs / "b" / "metrics.json").exists()
    resumed = json.loads((runs / "a" / "metrics.json").read_text())
    assert "test/mcc" in (runs / "a" / "train.log").read_text()
    full_dir = other / "train" / "runs" / "resume" / "full"
    full = json.loads((full_dir / "metrics.json").read_text())
    step = killed_at["global_step"]
    assert step < resumed["global_step"] == full["global_step"]
    for key in [k for k in full if k.startswith(("test/", "val/"))]:
        assert resumed[key] == pytest.approx(full[key], abs=METRIC_TOL), key
    assert Path(resumed["best_checkpoint"]).name == Path(full["best_checkpoint"]).name
    assert Path(resumed["best_checkpoint"]).parent == runs / "a" / "checkpoints"  # the resumed run's folder

    # Every loss, learning rate and validation score logged after the kill point is the same: the first
    # resumed step sees the same batch, dropout masks, weights and optimizer state as the uninterrupted run.
    after_kill = _logged_after(runs / "a" / "csv" / "metrics.csv", step)
    assert any(k == "train/loss" for _, k in after_kill) and any(k == "val/mcc" for _, k in after_kill)
    expected = _logged_after(full_dir / "csv" / "metrics.csv", step)
    assert after_kill.keys() == expected.keys()
    for where, values in expected.items():
        assert after_kill[where] == pytest.approx(values, abs=METRIC_TOL), where
