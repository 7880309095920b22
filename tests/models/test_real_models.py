"""The real pretrained Mixtral DNA models in ../shared/models: a published classifier scores its own task well,
and the pretrained backbone fine-tunes with LoRA through ``train()``."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from dnalm.evaluate import evaluate
from dnalm.train import train
from tests.helpers.configs import shared_path

MODEL = ("models", "mistral_dna_1m_hg38_tf0")
# Full human_tf_0 test split (1,000 records): this model measured MCC 0.507 (acc 0.749, AUROC 0.829) here.
MIN_MCC = 0.40  # chance is 0; a broken tokenizer, head or label order lands near it


def test_published_classifier_scores_its_task_well(make_cfg, tmp_path: Path) -> None:
    model, data = shared_path(*MODEL), shared_path("data", "gue", "human_tf_0")
    cfg = make_cfg("model=hf", f"model.name_or_path={model}", "head=native", "data=table", f"data.path={data}",
                   "trainer.accelerator=cpu", config_name="evaluate")
    metrics = evaluate(cfg)
    assert metrics["records"] == 1000
    assert metrics["test/mcc"] > MIN_MCC, metrics
    assert metrics["test/auroc"] > 0.75
    frame = pd.read_csv(tmp_path / "run" / "predictions.csv")
    assert len(frame) == 1000 and {"prob_0", "prob_1", "predicted"} <= set(frame.columns)


def _subset(source: Path, target: Path, rows: dict[str, int]) -> None:
    """The first rows of each class in each split (half each), as a table folder of its own: the files are sorted
    by label, so their first rows alone would be one class and leave AUROC / MCC undefined."""
    target.mkdir(parents=True)
    for split, n in rows.items():
        with gzip.open(source / f"{split}.csv.gz", "rt") as handle:
            frame = pd.read_csv(handle)
        frame.groupby("label").head(n // 2).to_csv(target / f"{split}.csv", index=False)


def test_lora_fine_tunes_the_pretrained_backbone(make_cfg, tmp_path: Path) -> None:
    model, data = shared_path(*MODEL), shared_path("data", "gue", "human_tf_1")
    subset = tmp_path / "human_tf_1_small"
    _subset(data, subset, {"train": 192, "valid": 64, "test": 64})
    cfg = make_cfg("model=hf", f"model.name_or_path={model}", "data=table", f"data.path={subset}", "strategy=lora",
                   "head=linear", "data.batch_size=16", "logger=csv", "trainer.accelerator=cpu", "trainer.max_epochs=1",
                   "callbacks.early_stopping=null", small=False)
    metrics = train(cfg)
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert written["strategy"] == "lora" and written["global_step"] == 12  # 192 rows / batch 16
    assert 0 < written["trainable_params"] < 0.2 * written["total_params"]
    assert {"test/mcc", "test/auroc", "val/mcc"} <= set(written)
    assert written["test/mcc"] is not None and written["test/auroc"] is not None  # both classes in every split
    assert Path(written["best_checkpoint"]).is_file()
    assert metrics["test/mcc"] == pytest.approx(written["test/mcc"])
