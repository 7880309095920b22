"""The training entry point end to end on the demo task and a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

from dnalm.train import train

REQUIRED_KEYS = {"test/mcc", "test/f1", "test/accuracy", "test/auroc", "val/mcc", "train/samples_per_second",
                 "peak_memory_mb", "model", "data", "strategy", "trainable_params", "total_params", "best_checkpoint"}


def test_default_run_writes_metrics_json(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg()
    metrics = train(cfg)
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert REQUIRED_KEYS <= set(written)
    assert written["model"] == "tiny" and written["data"] == "demo" and written["strategy"] == "full"
    assert 0 <= written["test/accuracy"] <= 1 and -1 <= written["test/mcc"] <= 1
    assert written["trainable_params"] == written["total_params"] > 0
    assert Path(written["best_checkpoint"]).is_file()
    assert written["train/samples_per_second"] > 0
    assert metrics["test/mcc"] == written["test/mcc"]
    label_map = json.loads((tmp_path / "run" / "label_map.json").read_text())
    assert label_map == {"kind": "binary", "num_outputs": 2, "label_names": ["0", "1"]}
    assert (tmp_path / "run" / "csv" / "metrics.csv").is_file()


def test_last_checkpoint_follows_every_validation_not_only_improvements(make_cfg, tmp_path: Path) -> None:
    """With a learning rate of 0 the validation score never improves after epoch 1; last.ckpt must still be the
    newest state (Lightning alone would leave it at epoch 1), and the best checkpoint stays the epoch-1 one."""
    import torch

    cfg = make_cfg("optim.lr=0.0", "head.lr=0.0", "trainer.max_epochs=3", "callbacks.early_stopping=null")
    metrics = train(cfg)
    checkpoints = tmp_path / "run" / "checkpoints"
    last = torch.load(checkpoints / "last.ckpt", map_location="cpu", weights_only=True)
    best = torch.load(metrics["best_checkpoint"], map_location="cpu", weights_only=True)
    assert last["epoch"] == 2 and best["epoch"] == 0
    assert last["global_step"] == 3 * best["global_step"]
    assert sorted(p.name for p in checkpoints.iterdir()) == sorted(["last.ckpt", Path(metrics["best_checkpoint"]).name])
