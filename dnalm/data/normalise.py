"""The bad-input policy: one place that decides what happens to every odd letter in a DNA sequence.

Canonical output is upper-case ``A C G T N``. Soft-masked (lower-case) letters are upper-cased, RNA ``U`` becomes
``T``, IUPAC ambiguity codes become ``N`` or raise, gap characters are removed or raise, whitespace (including the
``\\r`` of Windows line endings) is removed, and anything else raises :class:`BadSequenceError` naming the record,
the line, the position, the letter and the fix. Every change is counted in a :class:`NormaliseReport`.

The work is done on ASCII bytes with ``bytes.translate`` (a C loop), so clean sequences cost one pass and
10^8 bp normalise in well under a second; the slow path that locates a bad letter only runs when raising.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, NoReturn

from dnalm.errors import ConfigError, DataError

CANONICAL = b"ACGTN"
IUPAC = b"RYKMSWBDHV"  # two- and three-base ambiguity codes; N is canonical
GAPS = b"-."
WHITESPACE = b" \t\r\n\v\f"
_LOWER = bytes(range(ord("a"), ord("z") + 1))
_HANDLED = CANONICAL + CANONICAL.lower() + IUPAC + IUPAC.lower() + b"Uu" + GAPS + WHITESPACE
# Bytes that are never valid DNA: everything not handled above (digits, '*', 'X', 'E', non-ASCII, ...).
_INVALID_RE = re.compile(b"[^" + re.escape(_HANDLED) + b"]")
_IUPAC_RE = re.compile(b"[" + IUPAC + IUPAC.lower() + b"]")
_GAP_RE = re.compile(b"[" + re.escape(GAPS) + b"]")

# One translation table for every fix (IUPAC -> N is only reached when the policy allows it).
_TABLE = bytearray(range(256))
for _c in _LOWER:
    _TABLE[_c] = _c - 32
_TABLE[ord("U")] = _TABLE[ord("u")] = ord("T")
for _c in IUPAC + IUPAC.lower():
    _TABLE[_c] = ord("N")
_TABLE_IUPAC_TO_N = bytes(_TABLE)

MAX_SKIPPED_IDS = 20  # how many skipped record ids a report keeps (the count is always exact)


class PolicyError(ConfigError, ValueError):
    """An unknown value in the bad-input policy."""


class BadSequenceError(DataError, ValueError):
    """A sequence the policy cannot accept; the message names the record, line, position, letter and fix."""


@dataclass(frozen=True)
class SequencePolicy:
    """What to do with each kind of bad input (see ``docs/data_policy.md``)."""

    iupac: Literal["to_n", "error"] = "to_n"  # R Y K M S W B D H V (either case)
    empty: Literal["error", "skip"] = "error"  # a record with no bases left
    gaps: Literal["remove", "error"] = "remove"  # '-' and '.'
    key: str = "data.policy"  # where the user sets these (error messages name it: data.policy.empty=skip)

    def __post_init__(self) -> None:
        for name, allowed in (("iupac", ("to_n", "error")), ("empty", ("error", "skip")),
                              ("gaps", ("remove", "error"))):
            if getattr(self, name) not in allowed:
                raise PolicyError(f"{self.key}.{name}={getattr(self, name)!r}; choose one of {allowed}")


@dataclass
class NormaliseReport:
    """Counts per outcome. Letter counts are letters changed; ``records_*`` count records."""

    records: int = 0
    kept: int = 0
    uppercased: int = 0  # soft-masked (lower-case) letters, including lower-case u and IUPAC codes
    u_to_t: int = 0
    iupac_to_n: int = 0
    gaps_removed: int = 0
    whitespace_removed: int = 0
    empty_skipped: int = 0
    skipped_ids: list[str] = field(default_factory=list)

    def skip(self, record: str) -> None:
        """Count ``record`` as skipped because it is empty (its id is kept while there is room)."""
        self.empty_skipped += 1
        if len(self.skipped_ids) < MAX_SKIPPED_IDS:
            self.skipped_ids.append(record)

    def merge(self, other: NormaliseReport) -> NormaliseReport:
        """Add ``other``'s counts into this report (in place) and return it."""
        for name in ("records", "kept", "uppercased", "u_to_t", "iupac_to_n", "gaps_removed",
                     "whitespace_removed", "empty_skipped"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        room = MAX_SKIPPED_IDS - len(self.skipped_ids)
        self.skipped_ids.extend(other.skipped_ids[: max(room, 0)])
        return self

    def as_dict(self) -> dict[str, int | list[str]]:
        """Plain dict for JSON reports."""
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items()}

    def summary(self) -> str:
        """One line for logs: every non-zero outcome."""
        parts = [f"{self.kept}/{self.records} records kept"]
        for name in ("uppercased", "u_to_t", "iupac_to_n", "gaps_removed", "whitespace_removed"):
            if getattr(self, name):
                parts.append(f"{name}={getattr(self, name)} letters")
        if self.empty_skipped:
            shown = ", ".join(self.skipped_ids)
            more = "" if self.empty_skipped <= len(self.skipped_ids) else ", ..."
            parts.append(f"empty_skipped={self.empty_skipped} records ({shown}{more})")
        return "; ".join(parts)


def _where(record: str, line: int | None) -> str:
    return f"record {record!r}" + (f" (line {line})" if line is not None else "")


def _raise_at(raw: bytes | str, pos: int, record: str, line: int | None, what: str, fix: str) -> NoReturn:
    letter = raw[pos : pos + 1]
    shown = letter.decode("ascii", "backslashreplace") if isinstance(letter, bytes) else letter
    raise BadSequenceError(f"{_where(record, line)}: {what} {shown!r} at position {pos + 1}; {fix}")


def with_empty(policy: SequencePolicy, empty: Literal["error", "skip"]) -> SequencePolicy:
    """``policy`` with another ``empty`` rule (same key for messages)."""
    return dataclasses.replace(policy, empty=empty)


def _count(data: bytes, chars: bytes) -> int:
    return len(data) - len(data.translate(None, chars))


def normalise(seq: str, record: str, policy: SequencePolicy, line: int | None = None,
              report: NormaliseReport | None = None) -> str | None:
    """Return ``seq`` as upper-case ``ACGTN`` under ``policy``, or ``None`` when the policy skips it (counted).

    ``record`` and ``line`` only serve error messages; positions in messages are 1-based in ``seq`` as given.
    Raises :class:`BadSequenceError` for letters that are not DNA and for whatever the policy calls an error.
    """
    report = report if report is not None else NormaliseReport()
    report.records += 1
    try:
        raw = seq.encode("ascii")
    except UnicodeEncodeError as err:
        _raise_at(seq, err.start, record, line, "non-ASCII character",
                  "the file is not plain-text FASTA/sequence data, or is in the wrong encoding")
    rest = raw.translate(None, CANONICAL)  # usually empty: the fast path is this one pass
    if rest:
        if rest.translate(None, _HANDLED):
            m = _INVALID_RE.search(raw)
            assert m is not None
            _raise_at(raw, m.start(), record, line, "invalid letter",
                      "DNA may only contain A C G T N, IUPAC codes, U, gaps '-' '.'; fix or remove the record")
        if policy.iupac == "error" and (m := _IUPAC_RE.search(raw)):
            _raise_at(raw, m.start(), record, line, "IUPAC ambiguity code",
                      f"set {policy.key}.iupac=to_n to turn ambiguity codes into N, or fix the record")
        if policy.gaps == "error" and (m := _GAP_RE.search(raw)):
            _raise_at(raw, m.start(), record, line, "gap character",
                      f"set {policy.key}.gaps=remove to drop alignment gaps, or fix the record")
        report.uppercased += _count(rest, _LOWER)
        report.u_to_t += _count(rest, b"Uu")
        report.iupac_to_n += _count(rest, IUPAC + IUPAC.lower())
        report.gaps_removed += _count(rest, GAPS)
        report.whitespace_removed += _count(rest, WHITESPACE)
        raw = raw.translate(_TABLE_IUPAC_TO_N, GAPS + WHITESPACE)
        seq = raw.decode("ascii")
    if not seq:
        if policy.empty == "error":
            raise BadSequenceError(f"{_where(record, line)} is empty (no bases after removing gaps and "
                                   f"whitespace); remove it, or set {policy.key}.empty=skip to skip and count it")
        report.skip(record)
        return None
    report.kept += 1
    return seq


def normalise_many(seqs: Sequence[str], ids: Sequence[str], policy: SequencePolicy,
                   report: NormaliseReport | None = None,
                   lines: Sequence[int] | None = None) -> tuple[list[str], list[int]]:
    """Normalise many records; return the kept sequences and their indices in ``seqs``.

    ``ids`` name the records in errors; ``lines`` (optional, e.g. table row or FASTA header line) too.
    """
    if len(seqs) != len(ids):
        raise ValueError(f"normalise_many got {len(seqs)} sequences but {len(ids)} ids; pass one id per sequence")
    report = report if report is not None else NormaliseReport()
    out: list[str] = []
    kept: list[int] = []
    for i, (seq, rid) in enumerate(zip(seqs, ids, strict=True)):
        norm = normalise(seq, str(rid), policy, None if lines is None else lines[i], report)
        if norm is not None:
            out.append(norm)
            kept.append(i)
    return out, kept
