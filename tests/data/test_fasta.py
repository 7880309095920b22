"""FASTA reading: formats, malformed files (file + line in every error), streaming windows."""

from __future__ import annotations

import bz2
import gzip
from pathlib import Path

import pytest

from dnalm.data.fasta import (
    FastaChunk,
    FastaFormatError,
    Window,
    read_fasta,
    read_fasta_chunks,
    sliding_windows,
)
from dnalm.data.normalise import BadSequenceError, NormaliseReport, SequencePolicy

TEXT = ">r1 first record\nACGT\nacgt\n\n>r2\nNNRY\n"


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def test_plain_fasta_records_ids_and_header_lines(tmp_path: Path) -> None:
    report = NormaliseReport()
    out = list(read_fasta(write(tmp_path, "a.fa", TEXT), report=report))
    assert out == [("r1", "ACGTACGT", 1), ("r2", "NNNN", 5)]
    assert (report.records, report.kept, report.uppercased, report.iupac_to_n) == (2, 2, 4, 2)


def test_full_header_keeps_description(tmp_path: Path) -> None:
    assert next(read_fasta(write(tmp_path, "a.fa", TEXT), full_header=True))[0] == "r1 first record"


def test_gzip_detected_by_magic_bytes_not_suffix(tmp_path: Path) -> None:
    path = write(tmp_path, "no_suffix.txt", gzip.compress(TEXT.encode()))
    assert [r[1] for r in read_fasta(path)] == ["ACGTACGT", "NNNN"]


def test_plain_file_named_gz_is_read_as_text(tmp_path: Path) -> None:
    assert len(list(read_fasta(write(tmp_path, "lies.fa.gz", TEXT)))) == 2


def test_windows_line_endings(tmp_path: Path) -> None:
    path = write(tmp_path, "crlf.fa", TEXT.replace("\n", "\r\n"))
    assert list(read_fasta(path)) == [("r1", "ACGTACGT", 1), ("r2", "NNNN", 5)]


def test_sequence_before_first_header(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.fa", "\nACGT\n>r1\nACGT\n")
    with pytest.raises(FastaFormatError, match=r"bad\.fa: sequence before the first '>' header at line 2"):
        list(read_fasta(path))


def test_empty_header(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.fa", ">r1\nACGT\n>  \nACGT\n")
    with pytest.raises(FastaFormatError, match=r"bad\.fa: empty header at line 3"):
        list(read_fasta(path))


def test_binary_file(tmp_path: Path) -> None:
    with pytest.raises(FastaFormatError, match=r"bin\.fa: binary data"):
        list(read_fasta(write(tmp_path, "bin.fa", b">r1\nAC\x00\x01GT\n")))


def test_binary_inside_gzip(tmp_path: Path) -> None:
    with pytest.raises(FastaFormatError, match=r"binary data after gunzip"):
        list(read_fasta(write(tmp_path, "bin.gz", gzip.compress(b"\x00\x01\x02"))))


def test_other_compression_is_named(tmp_path: Path) -> None:
    with pytest.raises(FastaFormatError, match=r"bzip2-compressed"):
        list(read_fasta(write(tmp_path, "a.fa.bz2", bz2.compress(TEXT.encode()))))


def test_truncated_gzip(tmp_path: Path) -> None:
    data = gzip.compress((">r1\n" + "ACGT" * 50_000 + "\n").encode())
    with pytest.raises(FastaFormatError, match=r"cut\.fa\.gz: unreadable after line \d+.*truncated"):
        list(read_fasta(write(tmp_path, "cut.fa.gz", data[: len(data) // 2])))


def test_missing_file() -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list(read_fasta("/nonexistent/x.fa"))


def test_empty_file_has_no_records(tmp_path: Path) -> None:
    assert list(read_fasta(write(tmp_path, "empty.fa", ""))) == []


def test_invalid_letter_names_file_record_exact_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "x.fa", ">ok\nACGT\n>chrX\nACGTACGT\nACGTACGT\nACGXACGT\n")
    with pytest.raises(BadSequenceError, match=r"x\.fa: record 'chrX' \(line 6\): invalid letter 'X' at position 4"):
        list(read_fasta(path))


def test_empty_record_raises_or_is_skipped_and_counted(tmp_path: Path) -> None:
    path = write(tmp_path, "e.fa", ">a\nACGT\n>empty\n>gaps\n---\n>b\nA\n")
    with pytest.raises(BadSequenceError, match=r"e\.fa: record 'empty' \(line 3\) is empty.*empty=skip"):
        list(read_fasta(path))
    report = NormaliseReport()
    out = list(read_fasta(path, SequencePolicy(empty="skip"), report))
    assert [r[0] for r in out] == ["a", "b"]
    assert report.empty_skipped == 2 and report.skipped_ids == ["empty", "gaps"] and report.records == 4


def test_chunks_are_bounded_and_reassemble_the_record(tmp_path: Path) -> None:
    seq = "ACGTTGCA" * 5_000
    body = "\n".join(seq[i : i + 60] for i in range(0, len(seq), 60))
    path = write(tmp_path, "big.fa", f">big\n{body}\n>small\nAC\n")
    chunks = list(read_fasta_chunks(path, chunk_bp=1000))
    big = [c for c in chunks if c.record == "big"]
    assert len(big) > 30 and max(len(c.sequence) for c in big) < 1100
    assert "".join(c.sequence for c in big) == seq
    assert [c.offset for c in big] == [sum(len(b.sequence) for b in big[:i]) for i in range(len(big))]
    assert [c.last for c in chunks].count(True) == 2 and chunks[-1] == FastaChunk("small", 2 + body.count("\n") + 1, 0, "AC", True)


def _chunks(record: str, seq: str, size: int) -> list[FastaChunk]:
    pieces = [seq[i : i + size] for i in range(0, len(seq), size)]
    return [FastaChunk(record, 1, i * size, p, i == len(pieces) - 1) for i, p in enumerate(pieces)]


@pytest.mark.parametrize("chunk", [1, 7, 100, 10_000])
def test_sliding_windows_match_slicing_whatever_the_chunking(chunk: int) -> None:
    seq = "".join("ACGT"[(i * 7 + i // 3) % 4] for i in range(2_500))
    wins = list(sliding_windows(_chunks("a", seq, chunk) + _chunks("b", seq[:40], chunk), 100, 30))
    expected = [Window("a", 1, s, seq[s : s + 100]) for s in range(0, len(seq) - 99, 30)]
    assert wins == expected  # record b (40 bp) is shorter than a window: no window, no crossing records


def test_sliding_windows_respect_blocks() -> None:
    seq = "A" * 1_000
    starts = [w.start for w in sliding_windows(_chunks("a", seq, 64), 100, 50, block_size=250)]
    assert starts == [0, 50, 100, 150, 250, 300, 350, 400, 500, 550, 600, 650, 750, 800, 850, 900]
    assert all(s // 250 == (s + 99) // 250 for s in starts)


def test_sliding_windows_reject_bad_geometry() -> None:
    with pytest.raises(ValueError, match="positive"):
        list(sliding_windows([], 0, 1))
    with pytest.raises(ValueError, match="block_size"):
        list(sliding_windows([], 100, 10, block_size=50))
