"""Sequence files of every format dnalm reads records from: FASTA, GenBank and EMBL (plain or gzip).

FASTA goes through the streaming reader of :mod:`dnalm.data.fasta` (bounded memory, line numbers in errors).
GenBank (``.gb``, ``.gbk``, ``.gbff``, ``.genbank``) and EMBL (``.embl``) files, common for phage and bacterial
genomes, are parsed by Biopython's ``Bio.SeqIO``, one record at a time, and come out as the same
:class:`~dnalm.data.fasta.FastaChunk` pieces, normalised under the same bad-input policy, so every caller
(``dnalm build``, ``dnalm scan``, ``dnalm predict``, pre-training) treats them alike. The format is told by the
extension (``.gz`` stripped) unless given. A record is named by its accession.version (``record.id``), and with
``full_header`` by the title Biopython writes to FASTA (id and DEFINITION), so a GenBank file and the FASTA
converted from it give the same records.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from dnalm.data.fasta import (
    DEFAULT_CHUNK_BP,
    FastaChunk,
    FastaFormatError,
    normalise_lines,
    open_fasta,
    read_fasta_chunks,
)
from dnalm.data.normalise import BadSequenceError, NormaliseReport, SequencePolicy
from dnalm.errors import ConfigError

log = logging.getLogger(__name__)

Format = Literal["fasta", "genbank", "embl"]
FORMATS: tuple[Format, ...] = ("fasta", "genbank", "embl")
# Extension (after removing .gz) -> format; anything else is read as FASTA.
ANNOTATED_SUFFIXES: dict[str, Format] = {".gb": "genbank", ".gbk": "genbank", ".gbff": "genbank",
                                         ".genbank": "genbank", ".embl": "embl"}
FASTA_SUFFIXES = (".fa", ".fasta", ".fna")
# Every suffix a folder listing may pick up, gzipped or not.
SEQUENCE_SUFFIXES = tuple(s + gz for s in (*FASTA_SUFFIXES, *ANNOTATED_SUFFIXES) for gz in ("", ".gz"))
_LABEL = {"fasta": "FASTA", "genbank": "GenBank", "embl": "EMBL"}
_RECORD_START = {"genbank": "LOCUS", "embl": "ID "}  # the first line of every record
# Biopython warns, and carries on, when a record's sequence is cut short or disagrees with the LOCUS length:
# here that is an error.
_TRUNCATION_WARNINGS = ("Premature end of file", "Expected sequence length")


def sequence_format(path: str | Path, fmt: str | None = None) -> Format:
    """``fmt`` when given (``fasta``, ``genbank`` or ``embl``), else told by the extension (FASTA by default)."""
    if fmt:
        if fmt not in FORMATS:
            raise ConfigError(f"{path}: unknown sequence format {fmt!r}; choose one of {', '.join(FORMATS)} "
                              "(or leave it unset to tell it by the extension)")
        return fmt  # type: ignore[return-value]
    name = Path(path).name.lower().removesuffix(".gz")
    return next((kind for suffix, kind in ANNOTATED_SUFFIXES.items() if name.endswith(suffix)), "fasta")


def read_sequence_chunks(path: str | Path, policy: SequencePolicy | None = None,
                         report: NormaliseReport | None = None, chunk_bp: int | None = DEFAULT_CHUNK_BP,
                         full_header: bool = False, fmt: str | None = None) -> Iterator[FastaChunk]:
    """Normalised pieces of every record of a FASTA, GenBank or EMBL file (see :func:`read_fasta_chunks`)."""
    kind = sequence_format(path, fmt)
    if kind == "fasta":
        return read_fasta_chunks(path, policy, report, chunk_bp, full_header)
    return _annotated_chunks(Path(path), kind, policy or SequencePolicy(),
                             report if report is not None else NormaliseReport(), chunk_bp, full_header)


def read_sequences(path: str | Path, policy: SequencePolicy | None = None, report: NormaliseReport | None = None,
                   full_header: bool = False, fmt: str | None = None) -> Iterator[tuple[str, str, int]]:
    """Yield ``(record_id, sequence, first_line)`` per record of a FASTA, GenBank or EMBL file."""
    for chunk in read_sequence_chunks(path, policy, report, None, full_header, fmt):
        yield chunk.record, chunk.sequence, chunk.line


def _record_lines(path: Path, kind: Format) -> list[int]:
    """1-based line of each record's first line (``LOCUS`` / ``ID``), for messages: Biopython keeps none."""
    start = _RECORD_START[kind]
    with open_fasta(path, _LABEL[kind]) as handle:
        return [number for number, line in enumerate(handle, 1) if line.startswith(start)]


def _title(record: object, full_header: bool) -> str:
    """``record.id``, or the FASTA title Biopython writes for it (id, then the description unless it repeats it)."""
    rid, description = str(record.id), str(record.description or "")  # type: ignore[attr-defined]
    if not full_header or not description or description == "<unknown description>":
        return rid
    return description if description.split(maxsplit=1)[0] == rid else f"{rid} {description}"


def _annotated_chunks(path: Path, kind: Format, policy: SequencePolicy, report: NormaliseReport,
                      chunk_bp: int | None, full_header: bool) -> Iterator[FastaChunk]:
    from Bio import BiopythonParserWarning, SeqIO

    label, starts = _LABEL[kind], _record_lines(path, kind)
    number = 0
    with open_fasta(path, label) as handle:
        records = SeqIO.parse(handle, kind)
        while True:
            number += 1
            line = starts[number - 1] if number <= len(starts) else 0
            where = f"record {number} (line {line})" if line else f"record {number}"
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", BiopythonParserWarning)
                try:
                    record = next(records, None)
                except (ValueError, EOFError, OSError) as err:
                    raise FastaFormatError(f"{path}: {label} {where} cannot be read ({_one_line(err)}); fix or "
                                           f"re-download the file, or convert it to FASTA") from err
            cut = [w for w in caught if str(w.message).startswith(_TRUNCATION_WARNINGS)]
            if cut:
                raise FastaFormatError(f"{path}: {label} {where} is incomplete or corrupt "
                                       f"({_one_line(cut[0].message)}); re-download the file")
            for other in caught:  # Biopython's notes on odd but readable annotation, once each, with the place
                if other not in cut:
                    log.warning("%s: %s %s: %s", path, label, where, _one_line(other.message))
            if record is None:
                break
            yield from _record_chunks(path, record, line, policy, report, chunk_bp, full_header)
    if number == 1:
        start = _RECORD_START[kind].strip()
        raise FastaFormatError(f"{path}: no {label} records (no line starts with {start!r}); check the file, or "
                               f"name its format (a FASTA file needs a .fa/.fasta/.fna name)")


def _record_chunks(path: Path, record: object, line: int, policy: SequencePolicy, report: NormaliseReport,
                   chunk_bp: int | None, full_header: bool) -> Iterator[FastaChunk]:
    """One parsed record as normalised pieces of ``chunk_bp`` letters (the record is in memory already)."""
    rid = _title(record, full_header)
    try:
        text = str(record.seq)  # type: ignore[attr-defined]
    except ValueError as err:  # Bio.Seq.UndefinedSequenceError: a CONTIG / WGS master record
        raise FastaFormatError(f"{path}: record {rid!r} (line {line}) has no sequence, only annotation (a CONTIG "
                               "or master record); download the file with its sequence (NCBI: GenBank (full)) "
                               "or give a FASTA") from err
    report.records += 1
    try:
        seq = normalise_lines([text], rid, line, policy, report)
    except BadSequenceError as err:
        raise BadSequenceError(f"{path}: {err}") from err
    if not seq:
        if policy.empty == "error":
            raise BadSequenceError(f"{path}: record {rid!r} (line {line}) is empty; remove it, or set "
                                   f"{policy.key}.empty=skip to skip and count it")
        report.skip(rid)
        return
    report.kept += 1
    step = chunk_bp or len(seq)
    for offset in range(0, len(seq), step):
        yield FastaChunk(rid, line, offset, seq[offset:offset + step], offset + step >= len(seq))


def _one_line(message: object) -> str:
    return " ".join(str(message).split())
