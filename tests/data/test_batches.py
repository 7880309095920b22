"""Batching internals: length-grouped packing, padding, token storage and table reading."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from dnalm.data import encode
from dnalm.data.datamodule import Collator
from dnalm.data.sampler import GroupedLengthBatchSampler
from dnalm.data.sources import as_str_objects, read_table
from tests.helpers import char_tokenizer, random_dna


def _reference_batches(lengths: np.ndarray, groups: np.ndarray, batch_size: int, shuffle: bool, seed: int,
                       epoch: int, pool_batches: int = 50) -> list[list[int]]:
    """The packing rule written out plainly: groups whole, longest first within each shuffled pool."""
    units = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    unit_lengths = np.array([lengths[u].max() for u in units])

    def pack(order: np.ndarray) -> list[list[int]]:
        batches: list[list[int]] = []
        current: list[int] = []
        for u in order:
            if current and len(current) + len(units[u]) > batch_size:
                batches.append(current)
                current = []
            current.extend(units[u].tolist())
        return batches + ([current] if current else [])

    if not shuffle:
        return pack(np.argsort(-unit_lengths, kind="stable"))
    rng = np.random.default_rng((seed, epoch))
    order = rng.permutation(len(units))
    batches = []
    for start in range(0, len(order), batch_size * pool_batches):
        chunk = order[start:start + batch_size * pool_batches]
        batches.extend(pack(chunk[np.argsort(-unit_lengths[chunk], kind="stable")]))
    return [batches[i] for i in rng.permutation(len(batches))]


@pytest.mark.parametrize("windows", [False, True], ids=["one-item records", "multi-window records"])
@pytest.mark.parametrize("shuffle", [False, True])
def test_packing_matches_the_plain_rule(windows: bool, shuffle: bool) -> None:
    rng = np.random.default_rng(1)
    n = 3000
    lengths = rng.integers(5, 300, n)
    groups = np.sort(rng.integers(0, 1800, n)) if windows else rng.permutation(n)
    sampler = GroupedLengthBatchSampler(lengths, groups, 32, shuffle=shuffle, seed=7, pool_batches=4)
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        expected = _reference_batches(lengths, groups, 32, shuffle, 7, epoch, pool_batches=4)
        assert len(sampler) == len(expected)
        assert list(sampler) == expected
    # one-item records are packed by chunking: the per-group arrays are never built
    assert (sampler._units is None) == (not windows)


def test_an_epoch_is_packed_once_however_often_its_length_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    sampler = GroupedLengthBatchSampler(np.arange(100), np.arange(100), 8, shuffle=True, seed=0)
    packed: list[int] = []
    original = sampler.all_batches
    monkeypatch.setattr(sampler, "all_batches", lambda: packed.append(sampler.epoch) or original())
    sizes = {len(sampler) for _ in range(5)}
    first = list(sampler)
    assert sizes == {len(first)} and list(sampler) == first and packed == [0]
    sampler.set_epoch(1)
    second = list(sampler)
    assert len(sampler) == len(second) and packed == [0, 1]
    assert second != first  # a new epoch is a new shuffle, not the cached one


def test_collator_pads_right_and_masks_real_tokens() -> None:
    rows = [np.array([5, 6, 7], dtype=np.int32), np.array([8], dtype=np.int32), np.array([9, 10], dtype=np.int64)]
    items = [{"input_ids": ids, "target": np.int64(i % 2), "group": 10 + i, "index": i} for i, ids in enumerate(rows)]
    batch = Collator(pad_id=0, pad_to_multiple_of=4)(items)
    assert batch["input_ids"].dtype == batch["attention_mask"].dtype == torch.long
    assert batch["input_ids"].tolist() == [[5, 6, 7, 0], [8, 0, 0, 0], [9, 10, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 0, 0]]
    assert batch["target"].tolist() == [0, 1, 0]
    assert batch["group"].tolist() == [10, 11, 12] and batch["index"].tolist() == [0, 1, 2]
    # a pad id that is also a real token (EOS as padding) stays unmasked where it is real
    batch = Collator(pad_id=8)([items[1], items[0]])
    assert batch["input_ids"].tolist() == [[8, 8, 8], [5, 6, 7]]
    assert batch["attention_mask"].tolist() == [[1, 0, 0], [1, 1, 1]]


def test_encoded_ids_are_compact_views_equal_to_the_tokenizer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tokenizer = char_tokenizer()
    lengths = np.random.default_rng(0).integers(1, 400, 300).tolist()
    sequences = random_dna(len(lengths), lengths)
    expected = tokenizer(sequences)["input_ids"]
    monkeypatch.setattr(encode, "_ENCODE_CHUNK_BASES", 2000)  # many calls of a few sequences each
    fresh = encode.encode_cached(tokenizer, sequences, tmp_path)
    cached = encode.encode_cached(tokenizer, sequences, tmp_path)
    uncached = encode.encode_cached(tokenizer, sequences, None)
    assert len(list((tmp_path / "tokenized").glob("*.npz"))) == 1
    for ids in (fresh, cached, uncached):
        assert [row.tolist() for row in ids] == expected
        assert all(row.dtype == np.uint16 for row in ids)  # a 9-token vocabulary
        assert ids[0].base is not None and ids[0].base is ids[-1].base  # one buffer, no array per sequence


def test_id_dtype_is_the_smallest_that_holds_the_ids() -> None:
    assert encode._id_dtype(0, 4095) is np.uint16
    assert encode._id_dtype(0, 2**16) is np.int32
    assert encode._id_dtype(-100, 5) is np.int32
    assert encode._id_dtype(0, 2**31) is np.int64


def test_encode_chunks_bound_letters_and_sequences(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encode, "_ENCODE_CHUNK", 4)
    monkeypatch.setattr(encode, "_ENCODE_CHUNK_BASES", 100)
    lengths = [30, 30, 30, 30, 5, 5, 5, 5, 5, 500, 1]
    bounds = encode._chunks(["A" * n for n in lengths])
    assert bounds == [(0, 3), (3, 7), (7, 9), (9, 10), (10, 11)]
    assert encode._chunks([]) == []


def test_tables_keep_sequences_as_python_strings(tmp_path: Path) -> None:
    path = tmp_path / "train.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("seq,label\nACGT,1\nNNNN,0\n,1\n")
    frame = read_table(path, sequence_column="seq")
    column = frame["seq"]
    assert column.dtype == object and column.tolist() == ["ACGT", "NNNN", ""]
    assert as_str_objects(column) is column  # no copy of what already is Python strings
    converted = as_str_objects(pd.Series([12, 35]))
    assert converted.dtype == object and converted.tolist() == ["12", "35"]
    arrow = as_str_objects(pd.Series(["AC", "GT"], dtype="str"))
    assert arrow.dtype == object and all(type(s) is str for s in arrow)
