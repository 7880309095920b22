"""Every row of docs/data_policy.md (sequence level) has a test here."""

from __future__ import annotations

import time

import pytest

from dnalm.data.normalise import BadSequenceError, NormaliseReport, SequencePolicy, normalise, normalise_many
from dnalm.errors import ConfigError

DEFAULT = SequencePolicy()


def test_clean_sequence_passes_unchanged_and_counts_nothing() -> None:
    report = NormaliseReport()
    assert normalise("ACGTN", "r1", DEFAULT, report=report) == "ACGTN"
    assert (report.records, report.kept, report.uppercased, report.iupac_to_n) == (1, 1, 0, 0)


def test_soft_masked_lowercase_is_uppercased_and_counted() -> None:
    report = NormaliseReport()
    assert normalise("acgtnACGT", "r1", DEFAULT, report=report) == "ACGTNACGT"
    assert report.uppercased == 5


def test_rna_u_becomes_t_in_both_cases() -> None:
    report = NormaliseReport()
    assert normalise("ACGUu", "r1", DEFAULT, report=report) == "ACGTT"
    assert report.u_to_t == 2 and report.uppercased == 1


@pytest.mark.parametrize("code", list("RYKMSWBDHVrykmswbdhv"))
def test_every_iupac_code_becomes_n_by_default(code: str) -> None:
    report = NormaliseReport()
    assert normalise(f"AC{code}T", "r1", DEFAULT, report=report) == "ACNT"
    assert report.iupac_to_n == 1


def test_iupac_error_policy_names_record_line_position_letter_and_fix() -> None:
    with pytest.raises(BadSequenceError) as err:
        normalise("ACGTAR", "chr7", SequencePolicy(iupac="error"), line=12)
    msg = str(err.value)
    assert "'chr7'" in msg and "line 12" in msg and "position 6" in msg and "'R'" in msg and "iupac=to_n" in msg


@pytest.mark.parametrize("letter", ["X", "E", "*", "1", "?", "_", "\x00"])
def test_invalid_letters_raise_with_position(letter: str) -> None:
    with pytest.raises(BadSequenceError, match=r"record 'r9'.*invalid letter.*position 3"):
        normalise(f"AC{letter}GT", "r9", DEFAULT)


def test_non_ascii_raises_with_position() -> None:
    with pytest.raises(BadSequenceError, match=r"non-ASCII character 'é' at position 2"):
        normalise("Aé", "r1", DEFAULT)


def test_gaps_are_removed_and_counted_by_default() -> None:
    report = NormaliseReport()
    assert normalise("AC-G.T--", "aln1", DEFAULT, report=report) == "ACGT"
    assert report.gaps_removed == 4


def test_gaps_error_policy_raises() -> None:
    with pytest.raises(BadSequenceError, match=r"gap character '-' at position 3; set data.policy.gaps=remove"):
        normalise("AC-GT", "aln1", SequencePolicy(gaps="error"))


def test_whitespace_and_windows_line_endings_are_removed() -> None:
    report = NormaliseReport()
    assert normalise("AC GT\r\nAC\tGT\r", "r1", DEFAULT, report=report) == "ACGTACGT"
    assert report.whitespace_removed == 5


@pytest.mark.parametrize("seq", ["", "   ", "--..", "\r\n"])
def test_empty_records_raise_by_default(seq: str) -> None:
    with pytest.raises(BadSequenceError, match=r"record 'e1' \(line 4\) is empty.*empty=skip"):
        normalise(seq, "e1", DEFAULT, line=4)


def test_empty_records_are_skipped_and_counted_under_skip_policy() -> None:
    report = NormaliseReport()
    assert normalise("", "e1", SequencePolicy(empty="skip"), report=report) is None
    assert report.empty_skipped == 1 and report.skipped_ids == ["e1"] and report.kept == 0
    assert "empty_skipped=1 records (e1)" in report.summary()


def test_policy_rejects_unknown_values() -> None:
    with pytest.raises(ValueError, match="iupac"):
        SequencePolicy(iupac="drop")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"data.policy.empty=.drop.*choose one of"):
        SequencePolicy(empty="drop")  # type: ignore[arg-type]


def test_normalise_many_keeps_indices_and_merges_reports() -> None:
    report = NormaliseReport()
    seqs, kept = normalise_many(["acg", "", "TTR"], ["a", "b", "c"], SequencePolicy(empty="skip"), report)
    assert seqs == ["ACG", "TTN"] and kept == [0, 2]
    total = NormaliseReport(records=1, kept=1, uppercased=2).merge(report)
    assert (total.records, total.kept, total.uppercased, total.iupac_to_n, total.empty_skipped) == (4, 3, 5, 1, 1)
    assert total.skipped_ids == ["b"]


def test_normalise_many_error_names_row() -> None:
    with pytest.raises(BadSequenceError, match=r"record 'row7' \(line 8\)"):
        normalise_many(["ACGT", "ACXT"], ["row6", "row7"], DEFAULT, lines=[7, 8])
    with pytest.raises(ValueError, match="one id per sequence"):
        normalise_many(["A"], [], DEFAULT)


def test_skipped_ids_are_capped_but_counts_exact() -> None:
    report = NormaliseReport()
    normalise_many([""] * 50, [f"r{i}" for i in range(50)], SequencePolicy(empty="skip"), report)
    assert report.empty_skipped == 50 and len(report.skipped_ids) == 20


def test_ten_million_bp_normalise_fast() -> None:
    clean, masked = "ACGT" * 2_500_000, "acgtRN-." * 1_250_000
    t = time.perf_counter()
    assert normalise(clean, "c", DEFAULT) is not None
    out = normalise(masked, "m", DEFAULT)
    # 10^8 bp in seconds means 10^7 bp well under a second even on a slow CI core
    assert time.perf_counter() - t < 1.5
    assert out is not None and len(out) == 7_500_000 and set(out) == set("ACGTN")
