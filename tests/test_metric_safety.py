"""Results that would be silently wrong: undefined metrics of one-class splits are null, not a number."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from dnalm.train import train
from tests.helpers import labelled_frame, write_table

SMALL = ["logger=csv", "trainer.max_epochs=1", "trainer.accelerator=cpu", "trainer.log_every_n_steps=1",
         "callbacks.early_stopping=null"]


def test_one_class_test_split_reports_null_auroc_with_a_warning(make_cfg, tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "table"
    train_frame = labelled_frame(40)
    write_table(folder, "train", train_frame)
    test_frame = labelled_frame(10, seed=3, labels=[1] * 10)
    test_frame.loc[:1, "sequence"] = train_frame["sequence"].iloc[:2].to_numpy()  # two leaked sequences
    write_table(folder, "test", test_frame)
    cfg = make_cfg(*SMALL, "data=table", f"data.path={folder}", small=False)
    with caplog.at_level(logging.WARNING):
        metrics = train(cfg)
    saved = json.loads((Path(metrics["run_dir"]) / "metrics.json").read_text())
    for key in ("test/auroc", "test/auprc", "test/mcc"):
        assert saved[key] is None, key
    assert isinstance(saved["test/accuracy"], float)
    assert "test split's labels hold only the class(es) ['1']" in caplog.text
    assert "test/auroc" in caplog.text
    assert saved["leakage/test_in_train"] == 2
    assert saved["positive_class"] == "1"
    # two classes in valid: its metrics are numbers
    assert isinstance(saved["val/auroc"], float)
