"""Sequences shared between train, valid and test are counted, and warned about, refused or dropped from train."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from dnalm.data.leakage import check_leakage
from dnalm.errors import ConfigError, DataError


def _frame(prefix: str, seqs: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"{prefix}{i}" for i in range(len(seqs))], "sequence": seqs, "label": [0] * len(seqs)})


def _frames() -> dict[str, pd.DataFrame]:
    return {"train": _frame("tr", ["AAAC", "CCCG", "GGGT", "ACGA"]),
            "valid": _frame("va", ["CCCG", "TTTA"]),
            "test": _frame("te", ["AAAC", "TTTA", "GTTT", "CATG"])}  # GTTT is the reverse complement of AAAC


def test_counts_and_warns_with_examples(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        frames, report = check_leakage(_frames())
    assert report == {"leakage/valid_in_train": 1, "leakage/test_in_train": 1, "leakage/test_in_valid": 1}
    assert len(frames["train"]) == 4
    assert "1 of 4 test record(s) have a sequence that is also in train, e.g. ['te0']" in caplog.text


def test_reverse_complements_count_when_asked() -> None:
    _, report = check_leakage(_frames(), reverse_complement=True)
    # GTTT (test) is AAAC's reverse complement; CATG is its own reverse complement but in no other split
    assert report["leakage/test_in_train"] == 2


def test_error_policy_names_the_fix() -> None:
    with pytest.raises(DataError, match=r"valid record\(s\).*data.leakage=drop_from_train"):
        check_leakage(_frames(), "error")
    with pytest.raises(ConfigError, match="data.leakage='sometimes'"):
        check_leakage(_frames(), "sometimes")


def test_drop_from_train_keeps_valid_and_test_whole() -> None:
    frames, report = check_leakage(_frames(), "drop_from_train")
    assert frames["train"]["id"].tolist() == ["tr2", "tr3"]
    assert len(frames["valid"]) == 2 and len(frames["test"]) == 4
    assert report["leakage/dropped_from_train"] == 2


def test_clean_splits_report_zero_and_say_nothing(caplog: pytest.LogCaptureFixture) -> None:
    frames = {"train": _frame("tr", ["AAAC"]), "test": _frame("te", ["CCCC"])}
    with caplog.at_level(logging.WARNING):
        _, report = check_leakage(frames, "error")
    assert report == {"leakage/test_in_train": 0} and not caplog.text
