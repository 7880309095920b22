"""Two CPU processes (DDP over gloo) score a checkpoint exactly as one process does: evaluation batches are
split across ranks with no duplicate, metrics are synced, and the predictions of both ranks are written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dnalm.data import sampler as sampler_module
from tests.helpers.configs import train_tiny

ROOT = Path(__file__).resolve().parents[1]
# 40 test records in batches of 8: 5 batches, so the ranks get 3 and 2 (an uneven split must not pad).
DATA = ["data=demo", "data.demo.test=40", "data.demo.length=120", "data.eval_batch_size=8"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny model trained for one epoch on the demo task."""
    root = tmp_path_factory.mktemp("ddp_trained")
    return train_tiny(root)["best_checkpoint"]


def _evaluate(tmp_path: Path, run: str, checkpoint: str, *extra: str) -> tuple[dict, pd.DataFrame]:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", DNALM_CACHE=str(tmp_path / "cache"))
    out = tmp_path / run
    done = subprocess.run([sys.executable, "-m", "dnalm.evaluate", f"ckpt_path={checkpoint}", *DATA,
                           "trainer.accelerator=cpu", f"hydra.run.dir={out}", *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((out / "metrics.json").read_text()), pd.read_csv(out / "predictions.csv")


@pytest.mark.slow
def test_two_process_evaluation_equals_one_process(checkpoint: str, tmp_path: Path) -> None:
    one, one_frame = _evaluate(tmp_path, "one", checkpoint)
    two, two_frame = _evaluate(tmp_path, "two", checkpoint, "trainer=ddp", "trainer.devices=2")
    assert (tmp_path / "two" / "train_ddp_process_1.log").exists()  # a second process really ran
    assert one["records"] == two["records"] == 40
    for key in [k for k in one if k.startswith("test/")]:
        # AUROC/AUPRC/loss see every score: a missing or duplicated record would move them
        assert two[key] == pytest.approx(one[key], abs=1e-5), key
    assert len(two_frame) == 40 and two_frame["id"].is_unique
    merged = one_frame.merge(two_frame, on="id", suffixes=("_one", "_two"))
    assert len(merged) == 40
    assert (merged["prob_1_one"] - merged["prob_1_two"]).abs().max() < 1e-5


def test_evaluation_batches_split_across_ranks_without_duplicates(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each record is scored by exactly one rank, whole."""
    lengths = np.random.default_rng(0).integers(10, 50, 37)
    groups = np.repeat(np.arange(30), [1] * 25 + [2] * 3 + [3] * 2)[:37]  # some records have several windows
    seen: list[int] = []
    per_rank = []
    for rank in range(2):
        monkeypatch.setattr(sampler_module, "_rank_and_world", lambda rank=rank: (rank, 2))
        batches = list(sampler_module.GroupedLengthBatchSampler(lengths, groups, 4, shuffle=False))
        per_rank.append(len(batches))
        seen.extend(i for b in batches for i in b)
        for batch in batches:  # a record's windows never straddle ranks or batches
            assert set(np.flatnonzero(np.isin(groups, groups[batch]))) == set(batch)
    assert sorted(seen) == list(range(37))
    assert abs(per_rank[0] - per_rank[1]) <= 1
