"""GenBank / EMBL inputs (Bio.SeqIO) give the records the FASTA route gives; bad files are one clear error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dnalm.data.fasta import FastaFormatError, sliding_windows
from dnalm.data.normalise import BadSequenceError, NormaliseReport
from dnalm.data.seqfile import read_sequence_chunks, read_sequences, sequence_format
from dnalm.errors import ConfigError
from tests.helpers.seqfiles import phage_records, write_copies

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def copies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_copies(tmp_path_factory.mktemp("seqfiles"), phage_records())


def _records(path: Path, full_header: bool = False, fmt: str | None = None) -> list[tuple[str, str]]:
    return [(rid, seq) for rid, seq, _ in read_sequences(path, full_header=full_header, fmt=fmt)]


@pytest.mark.parametrize("suffix", [".gb", ".gbk.gz", ".embl"])
def test_annotated_files_give_the_records_of_the_fasta_route(copies: dict[str, Path], suffix: str) -> None:
    fasta = _records(copies[".fa"])
    assert [rid for rid, _ in fasta] == ["NC_024711.1", "XX_000002.1"]
    assert len(fasta[0][1]) == 3000 and fasta[1][1].count("N") >= 4  # RYKM became N on both routes
    assert _records(copies[suffix]) == fasta
    assert _records(copies[suffix], full_header=True) == _records(copies[".fa"], full_header=True)
    titles = [rid for rid, _ in _records(copies[suffix], full_header=True)]
    assert titles[0] == "NC_024711.1 Uncultured phage crAssphage, complete genome"


def test_records_point_at_their_first_line_and_are_counted(copies: dict[str, Path]) -> None:
    lines = copies[".gb"].read_text().splitlines()
    starts = [i + 1 for i, line in enumerate(lines) if line.startswith("LOCUS")]
    report = NormaliseReport()
    assert [line for _, _, line in read_sequences(copies[".gb"], report=report)] == starts
    assert starts[0] == 1 and starts[1] > 50
    assert (report.records, report.kept, report.iupac_to_n) == (2, 2, 4)


def test_windows_over_chunks_equal_the_fasta_route(copies: dict[str, Path]) -> None:
    fasta = list(sliding_windows(read_sequence_chunks(copies[".fa"], chunk_bp=700), 500, 300))
    genbank = list(sliding_windows(read_sequence_chunks(copies[".gb"], chunk_bp=1000), 500, 300))
    assert len(fasta) == 9 + 6  # 3,000 and 2,004 bp
    assert [(w.record, w.start, w.sequence) for w in genbank] == [(w.record, w.start, w.sequence) for w in fasta]


def test_format_is_told_by_extension_or_given(copies: dict[str, Path], tmp_path: Path) -> None:
    assert [sequence_format(n) for n in ("a.gb", "A.GBK.gz", "b.gbff", "c.genbank", "d.embl.gz", "e.fa", "f.txt")] \
        == ["genbank", "genbank", "genbank", "genbank", "embl", "fasta", "fasta"]
    renamed = tmp_path / "phage.txt"
    renamed.write_bytes(copies[".embl"].read_bytes())
    assert _records(renamed, fmt="embl") == _records(copies[".fa"])
    with pytest.raises(ConfigError, match=r"phage.txt: unknown sequence format 'gff'; choose one of fasta, genbank"):
        sequence_format(renamed, "gff")


def _broken(copies: dict[str, Path], tmp_path: Path, kind: str) -> Path:
    text = copies[".gb"].read_text()
    second = text.index("LOCUS", 1)
    broken = {
        "fasta_named_gb": copies[".fa"].read_text(),
        "truncated": text[: second // 2],
        "bad_locus": text[:second] + "LOCUS       \n" + text[second:].split("\n", 1)[1],
        "bad_letters": text.replace("        1 tagtaagagt", "        1 tagtaxzagt", 1),
        "no_sequence": text[:text.index("ORIGIN")] + "CONTIG      join(AB000001.1:1..3000)\n//\n" + text[second:],
    }[kind]
    path = tmp_path / f"{kind}.gb"
    path.write_text(broken)
    return path


@pytest.mark.parametrize(("kind", "error", "message"), [
    ("fasta_named_gb", FastaFormatError, r"fasta_named_gb.gb: no GenBank records \(no line starts with 'LOCUS'\); "
                                         r"check the file, or name its format"),
    ("truncated", FastaFormatError, r"truncated.gb: GenBank record 1 \(line 1\) is incomplete or corrupt "
                                    r"\(Premature end of file.*re-download"),
    ("bad_locus", FastaFormatError, r"bad_locus.gb: GenBank record 2 \(line \d+\) cannot be read \(Failed to "
                                    r"parse the record's name.*\); fix or re-download the file, or convert"),
    ("bad_letters", BadSequenceError, r"bad_letters.gb: record 'NC_024711.1' \(line 1\).*invalid letter"),
    ("no_sequence", FastaFormatError, r"no_sequence.gb: record 'NC_024711.1' \(line 1\) has no sequence.*GenBank "
                                      r"\(full\)"),
])
def test_bad_genbank_names_file_record_and_fix(copies: dict[str, Path], tmp_path: Path, kind: str,
                                               error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message) as caught:
        _records(_broken(copies, tmp_path, kind))
    assert "\n" not in str(caught.value)


def test_bad_genbank_is_one_error_line_from_the_command_line(copies: dict[str, Path], tmp_path: Path) -> None:
    bad = _broken(copies, tmp_path, "bad_locus")
    proc = subprocess.run(
        [sys.executable, "-m", "dnalm.build", f"fasta=[{{path:{bad},label:1}}]", f"output_dir={tmp_path / 'out'}",
         "window.length=100", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("dnalm: error:")]
    assert len(errors) == 1 and f"{bad}: GenBank record 2 (line " in errors[0], proc.stderr


def test_application_inputs_read_annotated_files_like_fasta(copies: dict[str, Path]) -> None:
    from dnalm.apps.inputs import read_sequences as app_sequences  # what embed, explain and generate read

    fasta = app_sequences(copies[".fa"])
    assert fasta["id"].tolist() == ["NC_024711.1", "XX_000002.1"]
    for suffix in (".gbk.gz", ".embl"):
        assert app_sequences(copies[suffix]).equals(fasta)
