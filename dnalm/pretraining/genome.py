"""Genomes for pre-training: FASTA files packed once into one byte per base on disk, split, cut into windows.

A 3 Gbp genome must not live in memory as Python strings. :class:`Genome` streams every record through the
project's FASTA reader (bad letters handled by the usual policy) into a flat ``uint8`` file (A C G T N = 0..4),
showing progress in bp (a bar in a terminal, log lines otherwise), that is memory-mapped afterwards, so RAM
holds only the pages a batch touches. Records are kept in file order with their names and the group they
belong to (e.g. the genome a contig comes from), which is what hold-out is decided on.

Hold-out (``holdout.by``):

* ``group``: whole groups (genomes, assemblies: the part of the record name that ``holdout.group_regex``
  captures, or the file) go to validation, so validation perplexity is measured on genomes never seen;
* ``record``: whole records;
* ``block``: blocks of ``holdout.block_bp`` inside every record, assigned at random.

Every window lies inside one segment of one split, so no base is shared between train and validation.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dnalm.data.build import assign_group_splits
from dnalm.data.normalise import NormaliseReport, SequencePolicy
from dnalm.data.seqfile import SEQUENCE_SUFFIXES, read_sequence_chunks
from dnalm.errors import ConfigError, DataError
from dnalm.utils.progress import Progress

log = logging.getLogger(__name__)

ALPHABET = "ACGTN"
_ENCODE = np.full(256, 4, dtype=np.uint8)
for _code, _letter in enumerate(ALPHABET):
    _ENCODE[ord(_letter)] = _code
_DECODE = np.frombuffer(ALPHABET.encode(), dtype=np.uint8)
_COMPLEMENT = np.array([3, 2, 1, 0, 4], dtype=np.uint8)  # A<->T, C<->G, N


def fasta_files(paths: str | Sequence[str]) -> list[Path]:
    """FASTA (or GenBank/EMBL) files named directly or found in folders (sorted), refusing paths that do not exist."""
    items = [paths] if isinstance(paths, str) else list(paths)
    if not items:
        raise ConfigError("data.paths is empty: give FASTA files or folders of them (data.paths=[genome.fa.gz]).")
    files: list[Path] = []
    for item in items:
        path = Path(str(item)).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.name.lower().endswith(SEQUENCE_SUFFIXES))
            if not found:
                raise DataError(f"{path}: no FASTA, GenBank or EMBL files ({', '.join(SEQUENCE_SUFFIXES)}) in "
                                "this folder.")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise DataError(f"{path} does not exist: data.paths takes FASTA files or folders.")
    return files


@dataclass(frozen=True)
class Record:
    """One FASTA record inside the packed file: ``codes[start:start + length]``."""

    name: str
    group: str
    start: int
    length: int


class Genome:
    """Every record of some FASTA files as one memory-mapped array of base codes."""

    def __init__(self, codes: np.ndarray, records: list[Record]) -> None:
        self.codes, self.records = codes, records
        # The same mapped pages as a plain array: slicing a np.memmap builds a memmap object per slice, which
        # made counting N over every window of a bacterial genome take seconds instead of milliseconds.
        self._flat = codes.view(np.ndarray)

    @property
    def total_bp(self) -> int:
        """Bases in all records."""
        return int(sum(r.length for r in self.records))

    @classmethod
    def pack(cls, paths: str | Sequence[str], cache_dir: str | Path, group_regex: str | None = None,
             policy: SequencePolicy | None = None) -> Genome:
        """Pack ``paths`` into ``cache_dir`` once (reused while the files are unchanged) and map it."""
        files = fasta_files(paths)
        key = hashlib.sha256(json.dumps([[str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns] for f in files]
                                        + [group_regex]).encode()).hexdigest()[:16]
        folder = Path(cache_dir) / f"genome-{key}"
        index = folder / "records.json"
        if not index.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            records = _write_codes(files, folder / "codes.u8", group_regex, policy or SequencePolicy())
            index.write_text(json.dumps([r.__dict__ for r in records]))
        records = [Record(**r) for r in json.loads(index.read_text())]
        total = sum(r.length for r in records)
        codes = np.memmap(folder / "codes.u8", dtype=np.uint8, mode="r", shape=(total,)) if total else np.zeros(0, np.uint8)
        return cls(codes, records)

    def sequence(self, record: Record, start: int, length: int, reverse: bool = False) -> str:
        """Letters of ``record[start:start + length]`` (reverse complement when ``reverse``)."""
        codes = self._flat[record.start + start: record.start + start + length]
        if reverse:
            codes = _COMPLEMENT[codes[::-1]]
        return _DECODE[codes].tobytes().decode()

    def n_fraction(self, record: Record, start: int, length: int) -> float:
        """Fraction of N in a window."""
        codes = self._flat[record.start + start: record.start + start + length]
        return float(np.count_nonzero(codes == 4)) / max(1, length)


def _write_codes(files: list[Path], out: Path, group_regex: str | None, policy: SequencePolicy) -> list[Record]:
    pattern = re.compile(group_regex) if group_regex else None
    records: list[Record] = []
    position = 0
    report = NormaliseReport()
    with out.open("wb") as handle, Progress("packing genome", unit="bp") as progress:
        for path in files:
            name, length, begin = None, 0, position
            for chunk in read_sequence_chunks(path, policy, report):
                progress.advance(len(chunk.sequence))
                if chunk.offset == 0 and name is None:
                    name, begin, length = chunk.record, position, 0
                codes = _ENCODE[np.frombuffer(chunk.sequence.encode(), dtype=np.uint8)]
                handle.write(codes.tobytes())
                length += len(codes)
                position += len(codes)
                if chunk.last:
                    records.append(Record(name, _group(name, path, pattern), begin, length))
                    name = None
    if not records:
        raise DataError(f"no sequence in {', '.join(map(str, files))}: the pre-training genome is empty.")
    return records


def _group(name: str, path: Path, pattern: re.Pattern[str] | None) -> str:
    """The group a record belongs to: what the regex captures in its name, else its file."""
    if pattern is not None:
        match = pattern.search(name)
        if match:
            return match.group(1) if match.groups() else match.group(0)
    return path.name


@dataclass(frozen=True)
class Segment:
    """A stretch ``record[start:end]`` that belongs to one split."""

    record: Record
    start: int
    end: int


@dataclass(frozen=True)
class Holdout:
    """How validation sequence is set apart (see the module docstring)."""

    by: str = "group"
    fraction: float = 0.1
    block_bp: int = 100_000
    seed: int = 0

    def split(self, genome: Genome) -> dict[str, list[Segment]]:
        """``{"train": [...], "valid": [...]}``: disjoint segments covering every record once.

        Groups, records or blocks are the units; ``dnalm.build``'s group splitter hands each unit to train or
        validation so that validation gets ``fraction`` of the bases.
        """
        if self.by not in ("group", "record", "block"):
            raise ConfigError(f"data.holdout.by={self.by!r}; choose group, record or block.")
        if not 0 < self.fraction < 1:
            raise ConfigError(f"data.holdout.fraction={self.fraction} must be between 0 and 1.")
        segments = self._units(genome)
        keys = [key for key, _ in segments]
        unique = list(dict.fromkeys(keys))
        if len(unique) < 2:
            raise ConfigError(f"data.holdout.by={self.by} needs at least two {self.by}s, found {len(unique)}: "
                              "use data.holdout.by=block.")
        position = {k: i for i, k in enumerate(unique)}
        codes = np.array([position[k] for k in keys], dtype=np.int64)
        lengths = np.array([s.end - s.start for _, s in segments], dtype=np.float64)
        split_of = assign_group_splits(np.zeros(len(segments), dtype=np.int64), codes, len(unique),
                                       (1 - self.fraction, self.fraction), self.seed, weights=lengths)
        if len(set(split_of.tolist())) < 2:  # e.g. one group holds nearly every base: still validate on one
            split_of[int(np.argmin(np.bincount(codes, weights=lengths)))] = 1
        splits: dict[str, list[Segment]] = {"train": [], "valid": []}
        for code, (_, segment) in zip(codes, segments):
            part = splits["valid" if split_of[code] == 1 else "train"]
            previous = part[-1] if part else None
            if previous is not None and previous.record is segment.record and previous.end == segment.start:
                part[-1] = Segment(segment.record, previous.start, segment.end)  # merge neighbouring blocks
            else:
                part.append(segment)
        return splits

    def _units(self, genome: Genome) -> list[tuple[str, Segment]]:
        """``(unit key, segment)`` in genome order: whole records keyed by group or name, or blocks."""
        if self.by != "block":
            return [(r.group if self.by == "group" else r.name, Segment(r, 0, r.length)) for r in genome.records]
        return [(f"{i}:{start}", Segment(r, start, min(r.length, start + self.block_bp)))
                for i, r in enumerate(genome.records) for start in range(0, r.length, self.block_bp)]


@dataclass
class WindowCounts:
    """What happened to the windows of one pass over a split."""

    kept: int = 0
    skipped_n: int = 0


def windows(segments: Sequence[Segment], window_bp: int, rng: np.random.Generator | None,
            ) -> Iterator[tuple[Segment, int]]:
    """``(segment, start)`` of consecutive full windows; a random first offset per segment when ``rng`` is given.

    Segments shorter than a window give one shorter window (short contigs still train).
    """
    for segment in segments:
        length = segment.end - segment.start
        if length <= window_bp:
            yield segment, segment.start
            continue
        offset = int(rng.integers(0, window_bp)) if rng is not None else 0
        offset = min(offset, length - window_bp)
        for start in range(segment.start + offset, segment.end - window_bp + 1, window_bp):
            yield segment, start
