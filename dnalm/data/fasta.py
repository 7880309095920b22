"""Streaming FASTA reading: plain or gzip (told by magic bytes), line numbers kept for error messages.

Biopython's ``SimpleFastaParser`` does not fit here: it silently skips text before the first header, keeps no
line numbers, and joins each record whole (a 250 Mbp chromosome at once). This reader is a small line loop
that keeps all three properties, and passes each piece through the bad-input policy in ``normalise.py``.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple, TextIO

from dnalm.data.normalise import BadSequenceError, NormaliseReport, SequencePolicy, normalise, with_empty
from dnalm.errors import DataError

_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\x28\xb5\x2f\xfd": "zstd", b"\xfd7zXZ": "xz", b"PK\x03\x04": "zip"}
_SNIFF_BYTES = 8192
DEFAULT_CHUNK_BP = 1 << 20  # normalise about 1 Mbp at a time: fast, and memory stays bounded


class FastaFormatError(DataError, ValueError):
    """The file is not FASTA; the message names the file, the line and what to fix."""


class FastaChunk(NamedTuple):
    """A normalised piece of one record; ``offset`` is the 0-based position of ``sequence`` in the record."""

    record: str
    line: int  # header line (1-based)
    offset: int
    sequence: str
    last: bool  # no more pieces of this record follow


class Window(NamedTuple):
    """A window ``sequence == record[start:start + len(sequence)]`` of a normalised record."""

    record: str
    line: int
    start: int
    sequence: str


def open_fasta(path: str | Path, what: str = "FASTA") -> TextIO:
    """Open ``path`` as text, gunzipping when its first bytes say gzip; refuse binary and other compressions.

    ``what`` names the expected format in messages (the GenBank/EMBL reader opens its files here too).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {str(path)!r} does not exist")
    with path.open("rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    kind = next((name for magic, name in _MAGIC.items() if head.startswith(magic)), None)
    if kind == "gzip":
        with gzip.open(path, "rb") as gz:
            try:
                head = gz.read(_SNIFF_BYTES)
            except (OSError, EOFError) as err:
                raise FastaFormatError(f"{path}: broken gzip file ({err}); re-download or re-compress it") from err
        _refuse_binary(path, head, " after gunzip", what)
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
    if kind is not None:
        raise FastaFormatError(f"{path}: file is {kind}-compressed; decompress it or re-compress with gzip")
    _refuse_binary(path, head, "", what)
    return path.open("r", encoding="utf-8", errors="replace")


def _refuse_binary(path: Path, head: bytes, when: str, what: str) -> None:
    nul = head.find(b"\x00")
    if nul >= 0:
        line = head[:nul].count(b"\n") + 1
        raise FastaFormatError(f"{path}: binary data{when} (NUL byte at line {line}); this is not a {what} text "
                               "file: check the path, or decompress it first")


def _numbered_lines(fh: TextIO, path: Path) -> Iterator[tuple[int, str]]:
    lineno = 0
    try:
        for lineno, line in enumerate(fh, 1):  # noqa: B007 - lineno is read in the except clause
            yield lineno, line
    except (EOFError, OSError) as err:  # truncated or corrupt gzip stream
        raise FastaFormatError(f"{path}: unreadable after line {lineno} ({err}); the gzip file is truncated "
                               "or corrupt: re-download or re-compress it") from err


def _pieces(path: Path, chunk_bp: int | None) -> Iterator[tuple[str, int, int, list[str], bool]]:
    """Yield raw ``(title, header_line, first_line, lines, last)`` pieces of about ``chunk_bp`` letters."""
    title: str | None = None
    header_line = first = size = 0
    lines: list[str] = []
    with open_fasta(path) as fh:
        for lineno, line in _numbered_lines(fh, path):
            if line.startswith(">"):
                if title is not None:
                    yield title, header_line, first, lines, True
                title, header_line, first, lines, size = line[1:].strip(), lineno, lineno + 1, [], 0
                if not title:
                    raise FastaFormatError(f"{path}: empty header at line {lineno}; give every record an id "
                                           "after '>'")
                continue
            if title is None:
                if line.strip():
                    raise FastaFormatError(f"{path}: sequence before the first '>' header at line {lineno}; "
                                           "add a header line or remove the stray text")
                continue
            lines.append(line.rstrip("\n"))
            size += len(line)
            if chunk_bp is not None and size >= chunk_bp:
                yield title, header_line, first, lines, False
                first, lines, size = lineno + 1, [], 0
    if title is not None:
        yield title, header_line, first, lines, True


def _record_id(title: str, full_header: bool) -> str:
    return title if full_header else title.split(maxsplit=1)[0]


def normalise_lines(lines: list[str], rid: str, first: int, policy: SequencePolicy,
                     report: NormaliseReport) -> str:
    """Normalise joined lines (``first`` is the first one's 1-based line), counting letters but not records into
    ``report``; on error, redo line by line so the message names the exact line and column."""
    scratch = NormaliseReport()
    try:
        seq = normalise("".join(lines), rid, with_empty(policy, "skip"), None, scratch)
    except BadSequenceError:
        for k, text in enumerate(lines):
            normalise(text, rid, with_empty(policy, "skip"), first + k)
        raise  # unreachable in practice: some line must have raised
    scratch.records = scratch.kept = scratch.empty_skipped = 0  # record counts are kept by the caller
    scratch.skipped_ids.clear()
    report.merge(scratch)
    return seq or ""


def read_fasta_chunks(path: str | Path, policy: SequencePolicy | None = None,
                      report: NormaliseReport | None = None, chunk_bp: int | None = DEFAULT_CHUNK_BP,
                      full_header: bool = False) -> Iterator[FastaChunk]:
    """Stream normalised pieces of every record (``chunk_bp=None``: one piece per record).

    Empty records follow ``policy.empty`` (raise, or skip and count in ``report``). ``full_header=True`` names
    records by their whole header line instead of its first word.
    """
    policy = policy or SequencePolicy()
    report = report if report is not None else NormaliseReport()
    path = Path(path)
    offset = 0
    for title, header_line, first, lines, last in _pieces(path, chunk_bp):
        rid = _record_id(title, full_header)
        try:
            seq = normalise_lines(lines, rid, first, policy, report)
        except BadSequenceError as err:
            raise BadSequenceError(f"{path}: {err}") from err
        if not last:
            if seq:
                yield FastaChunk(rid, header_line, offset, seq, False)
                offset += len(seq)
            continue
        total, offset = offset + len(seq), 0
        report.records += 1
        if total == 0:
            if policy.empty == "error":
                raise BadSequenceError(f"{path}: record {rid!r} (line {header_line}) is empty; remove it, or "
                                       f"set {policy.key}.empty=skip to skip and count it")
            report.skip(rid)
            continue
        report.kept += 1
        yield FastaChunk(rid, header_line, total - len(seq), seq, True)


def read_fasta(path: str | Path, policy: SequencePolicy | None = None, report: NormaliseReport | None = None,
               full_header: bool = False) -> Iterator[tuple[str, str, int]]:
    """Yield ``(record_id, sequence, header_line)`` per record, normalised under ``policy``."""
    for chunk in read_fasta_chunks(path, policy, report, chunk_bp=None, full_header=full_header):
        yield chunk.record, chunk.sequence, chunk.line


def sliding_windows(chunks: Iterable[FastaChunk], length: int, stride: int,
                    block_size: int | None = None) -> Iterator[Window]:
    """Windows ``record[s:s+length]`` for ``s = 0, stride, 2*stride, ...`` (full windows only), streaming.

    With ``block_size`` the starts restart at every block boundary and no window crosses one, so windows of
    different blocks share no bases. Memory holds at most one chunk plus one window.
    """
    if length <= 0 or stride <= 0:
        raise ValueError(f"window length and stride must be positive (got {length}, {stride})")
    if block_size is not None and block_size < length:
        raise ValueError(f"block_size {block_size} is smaller than the window length {length}")
    buf, buf_start, nxt = "", 0, 0  # buf holds record[buf_start:...]; nxt is the next window start
    for chunk in chunks:
        if chunk.offset == 0:
            buf, buf_start, nxt = "", 0, 0
        buf += chunk.sequence
        end = buf_start + len(buf)
        while nxt + length <= end:
            if block_size is not None and nxt % block_size + length > block_size:
                nxt = (nxt // block_size + 1) * block_size  # the window would cross into the next block
                continue
            yield Window(chunk.record, chunk.line, nxt, buf[nxt - buf_start : nxt - buf_start + length])
            nxt += stride
        keep_from = min(nxt, end) - buf_start
        buf, buf_start = buf[keep_from:], buf_start + keep_from
