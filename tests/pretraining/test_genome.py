"""Packed genomes: letters round-trip, hold-out never shares sequence, windows stay inside their split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dnalm.errors import ConfigError, DataError
from dnalm.pretraining.genome import Genome, Holdout, windows

RECORDS = {"gA|1": "ACGTNACGTT" * 30, "gA|2": "ttgca" * 40, "gB|1": "GGGCCCAAAT" * 50, "gC|1": "ACGT" * 25}


def _fasta(folder: Path) -> Path:
    path = folder / "genome.fa"
    path.write_text("".join(f">{name} some description\n{seq[:150]}\n{seq[150:]}\n" for name, seq in RECORDS.items()))
    return path


def test_pack_round_trips_letters_and_reverse_complements(tmp_path: Path) -> None:
    genome = Genome.pack([str(_fasta(tmp_path))], tmp_path / "cache", group_regex=r"^([^|]+)\|")
    assert isinstance(genome.codes, np.memmap)  # on disk, not in RAM as strings
    assert [r.name for r in genome.records] == list(RECORDS)
    assert [r.group for r in genome.records] == ["gA", "gA", "gB", "gC"]
    record = genome.records[1]
    assert genome.sequence(record, 0, record.length) == RECORDS["gA|2"].upper()
    forward = genome.sequence(genome.records[0], 2, 5)
    assert forward == "GTNAC"
    assert genome.sequence(genome.records[0], 2, 5, reverse=True) == "GTNAC"  # its own reverse complement
    assert genome.sequence(genome.records[2], 0, 4, reverse=True) == "GCCC"  # reverse complement of GGGC
    assert genome.n_fraction(genome.records[0], 0, 10) == pytest.approx(0.1)
    again = Genome.pack([str(tmp_path / "genome.fa")], tmp_path / "cache", group_regex=r"^([^|]+)\|")
    assert again.codes.filename == genome.codes.filename  # packed once, reused


def test_missing_inputs_are_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        Genome.pack([str(tmp_path / "nope.fa")], tmp_path / "cache")
    with pytest.raises(ConfigError):
        Genome.pack([], tmp_path / "cache")


@pytest.mark.parametrize("by", ["group", "record"])
def test_group_and_record_holdout_share_nothing(tmp_path: Path, by: str) -> None:
    genome = Genome.pack([str(_fasta(tmp_path))], tmp_path / "cache", group_regex=r"^([^|]+)\|")
    splits = Holdout(by=by, fraction=0.3, seed=1).split(genome)
    key = (lambda s: s.record.group) if by == "group" else (lambda s: s.record.name)
    train, valid = {key(s) for s in splits["train"]}, {key(s) for s in splits["valid"]}
    assert train and valid and not train & valid
    assert sum(s.end - s.start for v in splits.values() for s in v) == genome.total_bp


def test_block_holdout_covers_every_base_once(tmp_path: Path) -> None:
    genome = Genome.pack([str(_fasta(tmp_path))], tmp_path / "cache")
    splits = Holdout(by="block", fraction=0.4, block_bp=40, seed=0).split(genome)
    for record in genome.records:
        covered = np.zeros(record.length, dtype=int)
        for segment in splits["train"] + splits["valid"]:
            if segment.record is record:
                covered[segment.start:segment.end] += 1
        assert (covered == 1).all()
    assert splits["valid"] and splits["train"]


def test_windows_stay_inside_their_segments_and_offsets_move(tmp_path: Path) -> None:
    genome = Genome.pack([str(_fasta(tmp_path))], tmp_path / "cache")
    splits = Holdout(by="block", fraction=0.5, block_bp=100, seed=0).split(genome)
    starts = []
    for seed in (0, 1):
        found = list(windows(splits["train"], 30, np.random.default_rng(seed)))
        for segment, start in found:
            assert segment.start <= start and start + min(30, segment.end - segment.start) <= segment.end
        starts.append([s for _, s in found])
    assert starts[0] != starts[1]  # a new epoch draws new offsets


@pytest.mark.parametrize(("fraction", "block_bp"), [(0.1, 20), (0.3, 25)])
def test_block_holdout_gives_validation_its_share_of_bases(tmp_path: Path, fraction: float, block_bp: int) -> None:
    # dnalm.build's group splitter fills the validation quota in bases, not a coin flip per block
    genome = Genome.pack([str(_fasta(tmp_path))], tmp_path / "cache")
    splits = Holdout(by="block", fraction=fraction, block_bp=block_bp, seed=3).split(genome)
    valid_bp = sum(s.end - s.start for s in splits["valid"])
    assert abs(valid_bp / genome.total_bp - fraction) <= block_bp / genome.total_bp + 1e-9


def test_packing_and_indexing_show_progress_and_change_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import functools
    import logging

    import dnalm.pretraining.data as data_module
    import dnalm.pretraining.genome as genome_module

    caplog.set_level(logging.INFO, "dnalm.progress")
    genome = Genome.pack([str(_fasta(tmp_path))], tmp_path / "logged")
    total = sum(len(s) for s in RECORDS.values())
    assert [r.getMessage().split(" in ")[0] for r in caplog.records] == [f"packing genome: {total} bp"]
    monkeypatch.setattr(genome_module, "Progress", functools.partial(genome_module.Progress, terminal=True))
    with_bar = Genome.pack([str(tmp_path / "genome.fa")], tmp_path / "with_bar")
    assert np.array_equal(with_bar.codes, genome.codes) and with_bar.records == genome.records

    caplog.clear()
    segments = Holdout(by="record", fraction=0.3).split(genome)["train"]

    def items(description: str | None) -> list:
        rng = np.random.default_rng(5)
        return data_module.GenomeWindows(genome, segments, 64, 0.5, rng, True, description).items

    quiet = items("indexing train windows")  # below PROGRESS_MIN_BP: no progress
    assert not caplog.records
    monkeypatch.setattr(data_module, "PROGRESS_MIN_BP", 0)
    logged = items("indexing train windows")
    lines = [r.getMessage() for r in caplog.records]
    train_bp = sum(s.end - s.start for s in segments)
    assert lines and lines[-1].startswith(f"indexing train windows: {train_bp}/{train_bp} bp (100%)")
    assert logged == quiet
