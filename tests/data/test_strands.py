"""Reverse-complement augmentation in training and strand averaging at evaluation."""

from __future__ import annotations

import numpy as np

from dnalm.data.datamodule import DNADataModule
from dnalm.models.tiny import char_tokenizer
from dnalm.tokenizers.strand import reverse_complement


def _datamodule(make_cfg, *overrides: str) -> DNADataModule:
    cfg = make_cfg(*overrides)
    dm = DNADataModule(cfg.data, char_tokenizer(), max_tokens=512, seed=3, cache_dir=None)
    dm.setup("fit")
    return dm


def test_rc_average_scores_both_strands_as_one_record(make_cfg) -> None:
    dm = _datamodule(make_cfg, "data.rc_average=true")
    test = dm.splits["test"]
    records = len(test.records)
    assert len(test.ids) == 2 * records
    assert np.array_equal(np.bincount(test.groups), np.full(records, 2))
    tok = char_tokenizer()
    forward, reverse = (test.ids[i] for i in np.flatnonzero(test.groups == 0))
    letters = "".join(tok.convert_ids_to_tokens(forward[1:-1].tolist()))  # record 0, without <cls>/<eos>
    assert reverse.tolist() == tok(reverse_complement(letters))["input_ids"]
    for batch in dm.test_dataloader():  # both strands of a record land in the same batch, so their logits can be averaged
        _, counts = np.unique(batch["group"].numpy(), return_counts=True)
        assert (counts == 2).all()


def test_rc_augment_flips_strands_per_epoch_deterministically(make_cfg) -> None:
    dm = _datamodule(make_cfg, "data.rc_augment=0.5")
    dataset = dm._dataset("train")
    forward = dm.splits["train"].ids

    def flipped(epoch: int) -> np.ndarray:
        dataset.epoch = epoch
        return np.array([not np.array_equal(dataset[i]["input_ids"], forward[i]) for i in range(len(dataset))])

    epoch0, again, epoch1 = flipped(0), flipped(0), flipped(1)
    assert 0.3 < epoch0.mean() < 0.7  # about half the items are reverse complements
    assert np.array_equal(epoch0, again)  # the same draw for the same (seed, epoch, item): resumable
    assert not np.array_equal(epoch0, epoch1)  # and a new draw each epoch
    assert dm.splits["valid"].ids_rc is None  # evaluation splits are not augmented
