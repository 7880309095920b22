"""Table / hub datasets through the DataModule: formats, splits, errors that name the problem, long sequences."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dnalm.data.datamodule import DNADataModule
from dnalm.errors import DataError
from dnalm.train import train
from tests.helpers import char_tokenizer, labelled_frame, random_dna, write_table
from tests.helpers.configs import shared_path

TOKENIZER = char_tokenizer()  # [CLS] + one token per base + [SEP]
# conftest's shrinking overrides data.demo.*, which a table config has not: these are the non-data ones.
SMALL = ["logger=csv", "trainer.max_epochs=1", "trainer.accelerator=cpu", "trainer.log_every_n_steps=1"]


def _cfg(make_cfg, *overrides: str):
    """The train config with a table/hub data group, shrunk for a CPU."""
    return make_cfg(*SMALL, *overrides, small=False)


def _datamodule(make_cfg, folder: Path, *overrides: str, max_tokens: int | None = 512,
                source: str = "path") -> DNADataModule:
    data = "table" if source == "path" else "hub"
    key = "path" if source == "path" else "id"
    cfg = _cfg(make_cfg, f"data={data}", f"data.{key}={folder}", *overrides)
    dm = DNADataModule(cfg.data, TOKENIZER, max_tokens, seed=0, cache_dir=cfg.paths.cache_dir)
    dm.setup("fit")
    return dm


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".csv.gz", ".tsv.gz"])
def test_table_formats_load(make_cfg, tmp_path: Path, suffix: str) -> None:
    folder = tmp_path / "table"
    write_table(folder, "train", labelled_frame(60, length=20, seed=1), suffix)
    write_table(folder, "test", labelled_frame(10, length=25, seed=2), suffix)
    dm = _datamodule(make_cfg, folder)
    assert set(dm.splits) == {"train", "valid", "test"}
    assert len(dm.splits["train"].records) + len(dm.splits["valid"].records) == 60
    assert len(dm.splits["test"].ids) == 10
    assert all(len(ids) == 27 for ids in dm.splits["test"].ids)  # 25 bases + [CLS] + [SEP]
    assert dm.task is not None and dm.task.kind == "binary"


def test_valid_file_is_used_when_present(make_cfg, tmp_path: Path) -> None:
    folder = tmp_path / "table"
    write_table(folder, "train", labelled_frame(40, seed=1))
    write_table(folder, "valid", labelled_frame(7, seed=2))
    dm = _datamodule(make_cfg, folder)
    assert len(dm.splits["train"].records) == 40 and len(dm.splits["valid"].records) == 7
    assert "test" not in dm.splits


def test_missing_valid_is_carved_stratified_and_deterministic(make_cfg, tmp_path: Path) -> None:
    folder = tmp_path / "table"
    labels = [0] * 300 + [1] * 100
    frame = labelled_frame(400, seed=3, labels=labels).assign(id=[f"r{i}" for i in range(400)])
    write_table(folder, "train", frame)
    first = _datamodule(make_cfg, folder)
    valid, kept = first.splits["valid"].records, first.splits["train"].records
    assert len(valid) == 20 and len(kept) == 380  # 5 %
    assert valid["label"].value_counts().to_dict() == {0: 15, 1: 5}  # class proportions kept
    assert not set(valid["id"]) & set(kept["id"])
    again = _datamodule(make_cfg, folder)
    assert again.splits["valid"].records["id"].tolist() == valid["id"].tolist()
    other_seed = _datamodule(make_cfg, folder, "data.split_seed=7")
    assert other_seed.splits["valid"].records["id"].tolist() != valid["id"].tolist()
    # The training seed does not move the split (it is data.split_seed, 42 by default).
    cfg = _cfg(make_cfg, "data=table", f"data.path={folder}")
    assert cfg.data.split_seed == 42 and cfg.data.val_fraction == 0.05


def test_missing_columns_name_what_is_there(make_cfg, tmp_path: Path) -> None:
    folder = tmp_path / "table"
    write_table(folder, "train", labelled_frame(20).rename(columns={"sequence": "seq", "label": "class"}))
    with pytest.raises(DataError) as err:
        _datamodule(make_cfg, folder)
    message = str(err.value)
    assert "['sequence', 'label']" in message and "['seq', 'class']" in message
    assert "data.sequence_column" in message and "data.label_column" in message
    dm = _datamodule(make_cfg, folder, "data.sequence_column=seq", "data.label_column=class")
    assert dm.task is not None and dm.task.kind == "binary"


def test_unknown_test_label_names_the_record(make_cfg, tmp_path: Path) -> None:
    folder = tmp_path / "table"
    write_table(folder, "train", labelled_frame(20))
    test = labelled_frame(4, labels=[0, 1, 5, 1]).assign(id=["t0", "t1", "odd_one", "t3"])
    write_table(folder, "test", test)
    with pytest.raises(DataError) as err:
        _datamodule(make_cfg, folder)
    assert "'odd_one'" in str(err.value) and "'5'" in str(err.value)


def test_empty_split_is_an_error(make_cfg, tmp_path: Path) -> None:
    folder = tmp_path / "table"
    write_table(folder, "train", labelled_frame(20))
    write_table(folder, "test", labelled_frame(0))
    with pytest.raises(DataError, match="test split is empty"):
        _datamodule(make_cfg, folder)


def test_missing_label_value_is_not_a_class(make_cfg, tmp_path: Path) -> None:
    """An empty label cell must not silently become a third class."""
    folder = tmp_path / "table"
    frame = labelled_frame(20).astype({"label": object})
    frame.loc[5, "label"] = ""
    write_table(folder, "train", frame.assign(id=[f"r{i}" for i in range(20)]))
    with pytest.raises(DataError, match="'r5'"):
        _datamodule(make_cfg, folder)


def test_no_data_folder_and_no_split_files(make_cfg, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        _datamodule(make_cfg, tmp_path / "nowhere")
    (tmp_path / "wrong").mkdir()
    (tmp_path / "wrong" / "data.csv").write_text("sequence,label\nACGT,1\n")
    with pytest.raises(DataError, match="no train or test file"):
        _datamodule(make_cfg, tmp_path / "wrong")


def test_string_multiclass_labels_get_a_label_map(make_cfg, tmp_path: Path) -> None:
    folder = tmp_path / "table"
    names = ["enhancer", "promoter", "silencer"]
    write_table(folder, "train", labelled_frame(60, labels=[names[i % 3] for i in range(60)]))
    write_table(folder, "test", labelled_frame(3, labels=["silencer", "enhancer", "promoter"]))
    dm = _datamodule(make_cfg, folder)
    assert dm.task is not None and dm.task.kind == "multiclass" and dm.task.label_names == names
    assert dm.splits["test"].targets.tolist() == [2, 0, 1]
    assert sorted(np.bincount(dm.splits["valid"].targets).tolist()) == [1, 1, 1]


def _train_metrics(make_cfg, folder: Path, *overrides: str) -> dict:
    cfg = _cfg(make_cfg, "data=table", f"data.path={folder}", "data.batch_size=8", "trainer.max_steps=1", *overrides)
    train(cfg)
    return json.loads(Path(cfg.paths.output_dir, "metrics.json").read_text())


def test_multilabel_list_labels_train_end_to_end(make_cfg, tmp_path: Path) -> None:
    folder = tmp_path / "table"
    rng = np.random.default_rng(0)
    labels = [rng.integers(0, 2, 3).tolist() for _ in range(40)]
    write_table(folder, "train", labelled_frame(40, labels=labels), ".parquet")
    write_table(folder, "test", labelled_frame(8, seed=5, labels=labels[:8]), ".parquet")
    metrics = _train_metrics(make_cfg, folder)
    label_map = json.loads(Path(metrics["run_dir"], "label_map.json").read_text())
    assert label_map["kind"] == "multilabel" and label_map["num_outputs"] == 3
    assert metrics["global_step"] == 1 and 0.0 <= metrics["test/accuracy"] <= 1.0


def test_multilabel_from_several_label_columns(make_cfg, tmp_path: Path) -> None:
    folder = tmp_path / "table"
    frame = pd.DataFrame({"sequence": random_dna(30, 20), "a": [i % 2 for i in range(30)],
                          "b": [(i // 2) % 2 for i in range(30)]})
    write_table(folder, "train", frame)
    dm = _datamodule(make_cfg, folder, "data.label_column=[a,b]")
    assert dm.task is not None and (dm.task.kind, dm.task.num_outputs) == ("multilabel", 2)
    assert dm.splits["train"].targets.shape[1] == 2


def test_regression_float_labels_train_end_to_end(make_cfg, tmp_path: Path) -> None:
    folder = tmp_path / "table"
    values = np.linspace(-1.0, 2.0, 40).round(3).tolist()
    write_table(folder, "train", labelled_frame(40, labels=values))
    write_table(folder, "test", labelled_frame(8, seed=5, labels=values[:8]))
    metrics = _train_metrics(make_cfg, folder, "monitor=val/mse", "monitor_mode=min")
    label_map = json.loads(Path(metrics["run_dir"], "label_map.json").read_text())
    assert label_map["kind"] == "regression"
    assert np.isfinite(metrics["test/mse"]) and "test/pearson" in metrics


def test_hub_dataset_saved_to_disk_loads_offline(make_cfg, tmp_path: Path) -> None:
    import datasets

    folder = tmp_path / "hub_copy"
    splits = {"train": labelled_frame(40, seed=1), "validation": labelled_frame(6, seed=2),
              "test": labelled_frame(8, seed=3)}
    datasets.DatasetDict({k: datasets.Dataset.from_pandas(v) for k, v in splits.items()}).save_to_disk(str(folder))
    dm = _datamodule(make_cfg, folder, source="id")
    assert {s: len(e.records) for s, e in dm.splits.items()} == {"train": 40, "valid": 6, "test": 8}


def test_long_sequences_raise_at_training_by_default(make_cfg, tmp_path: Path) -> None:
    folder = tmp_path / "table"
    frame = labelled_frame(10, length=10).assign(id=[f"r{i}" for i in range(10)])
    frame.loc[3, "sequence"] = "ACGT" * 10
    write_table(folder, "train", frame)
    with pytest.raises(DataError) as err:
        _datamodule(make_cfg, folder, max_tokens=16)
    message = str(err.value)
    assert "'r3'" in message and "40 bp" in message and "16 tokens" in message and "data.train_long" in message


def test_long_sequences_become_windows_at_evaluation(make_cfg, tmp_path: Path) -> None:
    folder = tmp_path / "table"
    write_table(folder, "train", labelled_frame(20, length=10))
    lengths = [10, 40, 14, 29]
    write_table(folder, "test", pd.DataFrame({"sequence": random_dna(4, lengths, seed=9), "label": [0, 1, 1, 0]}))
    dm = _datamodule(make_cfg, folder, max_tokens=16)
    test = dm.splits["test"]
    room = 16 - 2  # [CLS] and [SEP] in every window
    expected = [max(1, -(-n // room)) for n in lengths]  # windows per record
    assert np.bincount(test.groups).tolist() == expected
    assert test.targets.tolist() == [t for t, k in zip([0, 1, 1, 0], expected) for _ in range(k)]
    cls, sep = TOKENIZER.cls_token_id, TOKENIZER.sep_token_id
    for ids in test.ids:
        assert len(ids) <= 16 and ids[0] == cls and ids[-1] == sep
    # The windows of a record cover its sequence exactly, in order.
    full = TOKENIZER(random_dna(4, lengths, seed=9)[1])["input_ids"]
    pieces = [ids[1:-1] for ids, g in zip(test.ids, test.groups) if g == 1]
    assert np.concatenate(pieces).tolist() == full[1:-1]
    assert test.stats["too_long"] == 2 and len(test.records) == 4


def test_training_windows_policy(make_cfg, tmp_path: Path) -> None:
    folder = tmp_path / "table"
    write_table(folder, "train", pd.DataFrame({"sequence": random_dna(6, [40, 10, 10, 10, 10, 30]),
                                               "label": [0, 1, 0, 1, 0, 1]}))
    dm = _datamodule(make_cfg, folder, "data.train_long=windows", "data.val_fraction=0", max_tokens=16)
    assert np.bincount(dm.splits["train"].groups).tolist() == [3, 1, 1, 1, 1, 3]


def _batches_by_group(loader) -> dict[int, set[int]]:
    where: dict[int, set[int]] = {}
    for number, batch in enumerate(loader):
        for g in batch["group"].tolist():
            where.setdefault(g, set()).add(number)
    return where


def test_length_grouped_batches_keep_windows_of_a_record_together(make_cfg, tmp_path: Path) -> None:
    folder = tmp_path / "table"
    lengths = [40, 12, 26, 38, 9, 30, 40, 14, 20, 33]
    frame = pd.DataFrame({"sequence": random_dna(10, lengths, seed=4), "label": [i % 2 for i in range(10)]})
    write_table(folder, "train", frame)
    write_table(folder, "test", frame)
    dm = _datamodule(make_cfg, folder, "data.train_long=windows", "data.val_fraction=0", "data.batch_size=4",
                     "data.eval_batch_size=4", max_tokens=16)
    assert dm.splits["test"].windows_added > 0
    for loader in (dm.test_dataloader(), dm.train_dataloader()):
        where = _batches_by_group(loader)
        assert sorted(where) == list(range(10))  # every record is seen exactly ...
        assert all(len(batches) == 1 for batches in where.values())  # ... in one batch with all its windows
    # Evaluation batches are length-sorted: little padding.
    widths = [batch["input_ids"].shape[1] for batch in dm.test_dataloader()]
    assert widths == sorted(widths, reverse=True)


def test_mus_promoter_loads_with_the_table_config(make_cfg) -> None:
    folder = shared_path("data", "mus_promoter")
    dm = _datamodule(make_cfg, folder)
    counts = {split: len(encoded.records) for split, encoded in dm.splits.items()}
    assert counts["train"] + counts["valid"] == 2056 and counts["test"] == 514
    assert abs(counts["valid"] - 0.05 * 2056) <= 2
    assert dm.task is not None and dm.task.kind == "binary" and dm.task.label_names == ["0", "1"]
    assert dm.splits["test"].stats["tokens_max"] == 302  # 300 nt + [CLS] + [SEP]


def test_window_logits_are_averaged_per_record(make_cfg, tmp_path: Path) -> None:
    """At evaluation each record gives one row: the mean of its windows' logits."""
    import torch

    from dnalm.models.module import group_mean
    from dnalm.strategies import FullFineTuning
    from tests.helpers import load_tiny, make_module, save_tiny_model

    groups, means = group_mean(torch.tensor([[1.0], [3.0], [5.0], [2.0], [4.0]]), torch.tensor([7, 7, 8, 9, 9]))
    assert groups.tolist() == [7, 8, 9] and means.squeeze(1).tolist() == [2.0, 5.0, 3.0]

    folder = tmp_path / "table"
    write_table(folder, "train", labelled_frame(20, length=10))
    write_table(folder, "test", pd.DataFrame({"sequence": random_dna(5, [40, 10, 30, 12, 50], seed=3),
                                              "label": [0, 1, 1, 0, 1]}))
    dm = _datamodule(make_cfg, folder, "data.eval_batch_size=4", max_tokens=16)
    module = make_module(load_tiny(save_tiny_model(tmp_path / "esm", "esm")), FullFineTuning())
    module.eval()
    rows, seen = 0, []
    with torch.no_grad():
        for batch in dm.test_dataloader():
            _, batch_groups, logits, targets = module._eval_step(batch, "test")
            direct = module(batch["input_ids"], batch["attention_mask"])
            first = int(batch_groups[0])
            torch.testing.assert_close(logits[0], direct[batch["group"] == first].mean(0))
            rows += len(logits)
            seen += batch_groups.tolist()
    assert rows == 5 and sorted(seen) == [0, 1, 2, 3, 4]
