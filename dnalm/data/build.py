"""FASTA/BED -> labelled windows -> leak-free train/valid/test parquet files, streaming with bounded memory.

Pass 1 streams every input (FASTA with a label each, labels from a header regex, or BED positives against a
reference with sampled negatives), cuts windows, drops windows with too many ``N`` and exact duplicates (counted),
and appends the kept windows in row groups to a temporary parquet file. Only a hash per kept window and a few
integers per window stay in memory. Splits are then assigned per group (record, header-regex group, genome
block or source), so overlapping windows of one record never straddle splits, optional class balancing picks
rows, and pass 2 copies the temporary file into ``train/valid/test.parquet`` row group by row group.

A BED build reads its reference through the samtools index (``pysam.FastaFile``: ``.fai``, and ``.gzi`` for
bgzip, built beside the file when missing), so only the windows it cuts or tries are read, never whole
chromosomes; a plain-gzip reference cannot be indexed and is streamed one chromosome at a time instead.
Progress (a bar in a terminal, log lines otherwise) counts bp of each FASTA input and intervals of the BED.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import math
import re
import shutil
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dnalm.data.fasta import FastaChunk, sliding_windows
from dnalm.data.normalise import NormaliseReport, SequencePolicy, normalise
from dnalm.data.reference import Reference, is_plain_gzip
from dnalm.data.seqfile import read_sequence_chunks, read_sequences, sequence_format
from dnalm.errors import DataError
from dnalm.utils.progress import Progress

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
SCHEMA = pa.schema([("sequence", pa.string()), ("label", pa.int64()), ("source", pa.string()),
                    ("record", pa.string()), ("start", pa.int64()), ("end", pa.int64()),
                    ("strand", pa.string()), ("group", pa.string())])
_RC = bytes.maketrans(b"ACGTN", b"TGCAN")
MAX_IDS = 20  # example ids kept per dropped-record reason


# ----------------------------------------------------------------------------------------------- config
@dataclass
class FastaInput:
    """One FASTA, GenBank or EMBL file; ``label=None`` takes labels from ``BuildConfig.label_from_header``."""

    path: str
    label: int | None = None
    source: str | None = None  # value of the ``source`` column; default: the file name without suffixes
    format: str | None = None  # fasta | genbank | embl; None: told by the extension (dnalm.data.seqfile)


@dataclass
class HeaderLabels:
    """Labels from headers: ``pattern`` is searched in the whole header; group 1 (or the match) is the key."""

    pattern: str
    map: dict[str, int] | None = None  # key -> label; None means the key itself is an integer label
    unmatched: str = "error"  # error | skip (counted, ids reported)


@dataclass
class BedInput:
    """Positives from BED intervals (a window centred on each) against ``reference``; negatives sampled."""

    positives: str
    reference: str
    negatives_per_positive: float = 1.0
    gc_matched: bool = True
    gc_bins: int = 20
    max_tries: int = 100  # candidate draws per wanted negative before giving up (shortfall is reported)
    source: str | None = None


@dataclass
class WindowConfig:
    length: int = 1024
    stride: int = 512
    max_n_fraction: float = 0.0  # drop windows whose N share is above this


@dataclass
class SplitConfig:
    mode: str = "group"  # group (leak-free) | random (windows of one record may land in several splits)
    group_by: str = "record"  # record | regex | block | source
    group_regex: str | None = None  # for group_by=regex: searched in the whole header, group 1 (or the match)
    block_size: int = 100_000  # for group_by=block: windows never cross a block, blocks are the groups
    train: float = 0.8
    valid: float = 0.1
    test: float = 0.1


@dataclass
class PolicyConfig:
    iupac: str = "to_n"
    empty: str = "error"
    gaps: str = "remove"


@dataclass
class BuildConfig:
    """Everything ``build`` needs; mirrors ``conf/build.yaml``."""

    output_dir: str
    fasta: list[FastaInput] = field(default_factory=list)
    label_from_header: HeaderLabels | None = None
    bed: BedInput | None = None
    window: WindowConfig = field(default_factory=WindowConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    dedup: bool = True
    dedup_reverse_complement: bool = False  # a window and its reverse complement count as duplicates
    balance: bool = False  # downsample each split to its rarest class
    seed: int = 42
    row_group_size: int = 32_768
    overwrite: bool = False

    def __post_init__(self) -> None:
        s, w = self.split, self.window
        fr = (s.train, s.valid, s.test)
        if min(fr) < 0 or not math.isclose(sum(fr), 1.0, abs_tol=1e-6):
            raise ValueError(f"split fractions train/valid/test = {fr} must be >= 0 and sum to 1")
        if s.mode not in ("group", "random"):
            raise ValueError(f"split.mode={s.mode!r}; choose group or random")
        if s.group_by not in ("record", "regex", "block", "source"):
            raise ValueError(f"split.group_by={s.group_by!r}; choose record, regex, block or source")
        if s.group_by == "regex" and not s.group_regex:
            raise ValueError("split.group_by=regex needs split.group_regex, e.g. '^(GCF_\\d+)'")
        if w.length <= 0 or w.stride <= 0 or not 0 <= w.max_n_fraction <= 1:
            raise ValueError(f"window {w}: length and stride must be > 0 and max_n_fraction in [0, 1]")
        if not self.fasta and self.bed is None:
            raise ValueError("no inputs: set fasta=[{path: a.fa, label: 1}, ...] or bed={positives, reference}")
        for f in self.fasta:
            sequence_format(f.path, f.format)  # an unknown format is a config error before anything is read
            if f.label is None and self.label_from_header is None:
                raise ValueError(f"{f.path}: no label; give it a label or set label_from_header.pattern")
        if self.label_from_header and self.label_from_header.unmatched not in ("error", "skip"):
            raise ValueError("label_from_header.unmatched must be error or skip")
        SequencePolicy(self.policy.iupac, self.policy.empty, self.policy.gaps, "policy")  # type: ignore[arg-type]

    @classmethod
    def from_mapping(cls, cfg: Any) -> BuildConfig:
        """Validate a plain dict or DictConfig (types and unknown keys) against this schema."""
        from omegaconf import OmegaConf

        merged = OmegaConf.merge(OmegaConf.structured(cls), OmegaConf.create(cfg))
        return OmegaConf.to_object(merged)  # type: ignore[return-value]


# ----------------------------------------------------------------------------------------------- pass 1
@dataclass
class _Row:
    sequence: str
    label: int
    source: str
    record: str
    start: int
    end: int
    strand: str
    group: str


@dataclass
class _Stats:
    """What pass 1 saw and dropped; becomes part of build_report.json."""

    normalise: NormaliseReport = field(default_factory=NormaliseReport)
    record_lengths: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    dropped_windows: Counter = field(default_factory=Counter)
    dropped_records: Counter = field(default_factory=Counter)
    dropped_record_ids: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    notes: Counter = field(default_factory=Counter)

    def drop_record(self, reason: str, rid: str) -> None:
        self.dropped_records[reason] += 1
        if len(self.dropped_record_ids[reason]) < MAX_IDS:
            self.dropped_record_ids[reason].append(rid)


def reverse_complement(seq: str) -> str:
    """Reverse complement of an upper-case ACGTN sequence."""
    return seq.encode("ascii").translate(_RC)[::-1].decode("ascii")


def _first_group(m: re.Match[str]) -> str:
    return m.group(1) if m.re.groups else m.group(0)


class _Grouper:
    def __init__(self, cfg: SplitConfig, stats: _Stats) -> None:
        self.cfg, self.stats = cfg, stats
        self.regex = re.compile(cfg.group_regex) if cfg.group_regex else None
        self._last_unmatched: tuple[str, str] | None = None

    def __call__(self, source: str, rid: str, header: str, start: int) -> str:
        by = self.cfg.group_by
        if by == "source":
            return source
        if by == "block":
            return f"{source}:{rid}:{start // self.cfg.block_size}"
        if by == "regex":
            assert self.regex is not None
            m = self.regex.search(header)
            if m:
                return f"{source}:{_first_group(m)}"
            if self._last_unmatched != (source, header):  # count records, not windows
                self._last_unmatched = (source, header)
                self.stats.notes["group_regex_unmatched_records_grouped_by_record"] += 1
        return f"{source}:{rid}"


def _header_label(cfg: HeaderLabels, header: str, path: str, line: int) -> int | None:
    m = re.search(cfg.pattern, header)
    key = _first_group(m) if m else None
    if key is not None and cfg.map is not None:
        key = cfg.map.get(key, None)  # type: ignore[assignment]
    elif key is not None:
        try:
            return int(key)
        except ValueError:
            key = None
    if key is None:
        if cfg.unmatched == "skip":
            return None
        raise ValueError(f"{path} line {line}: header {header!r} gives no label with pattern {cfg.pattern!r} "
                         f"and map {cfg.map}; fix the pattern/map or set label_from_header.unmatched=skip")
    return int(key)


def _source(path: str, name: str | None) -> str:
    return name or Path(path).name.split(".")[0]


def _fasta_rows(cfg: BuildConfig, inp: FastaInput, stats: _Stats, grouper: _Grouper,
                progress: Progress) -> Iterator[_Row]:
    source = _source(inp.path, inp.source)
    policy = SequencePolicy(cfg.policy.iupac, cfg.policy.empty, cfg.policy.gaps, "policy")  # type: ignore[arg-type]
    w = cfg.window
    lengths = stats.record_lengths[source]
    state: dict[str, Any] = {}

    def tracked(chunks: Iterator[FastaChunk]) -> Iterator[FastaChunk]:
        # Learn each record's header, label and length as its pieces stream past.
        for chunk in chunks:
            progress.advance(len(chunk.sequence))
            if chunk.offset == 0:
                header = chunk.record
                label = inp.label
                if label is None:
                    assert cfg.label_from_header is not None
                    label = _header_label(cfg.label_from_header, header, inp.path, chunk.line)
                state.update(header=header, rid=header.split(maxsplit=1)[0], label=label)
                if label is None:
                    stats.drop_record("header_label_unmatched", state["rid"])
            if chunk.last:
                n = chunk.offset + len(chunk.sequence)
                lengths.append(n)
                if n < w.length and state["label"] is not None:
                    stats.drop_record("shorter_than_window", state["rid"])
            if state["label"] is not None:
                yield chunk

    block = cfg.split.block_size if cfg.split.group_by == "block" else None
    chunks = read_sequence_chunks(inp.path, policy, stats.normalise, full_header=True, fmt=inp.format)
    for win in sliding_windows(tracked(chunks), w.length, w.stride, block):
        group = grouper(source, state["rid"], state["header"], win.start)
        yield _Row(win.sequence, state["label"], source, state["rid"], win.start, win.start + w.length, "+",
                   group)


def _read_bed(path: str) -> dict[str, list[tuple[int, int, str, str]]]:
    """BED -> {chrom: [(start, end, strand, name)]}; malformed lines raise naming file and line."""
    out: dict[str, list[tuple[int, int, str, str]]] = defaultdict(list)
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            cols = line.rstrip("\r\n").split("\t")
            try:
                chrom, start, end = cols[0], int(cols[1]), int(cols[2])
            except (IndexError, ValueError) as err:
                raise ValueError(f"{path} line {lineno}: expected tab-separated chrom, start, end; got "
                                 f"{line.strip()!r}") from err
            strand = cols[5] if len(cols) > 5 and cols[5] in "+-." else "+"
            if not 0 <= start < end:
                raise ValueError(f"{path} line {lineno}: need 0 <= start < end, got {start}, {end}")
            out[chrom].append((start, end, "+" if strand == "." else strand, cols[3] if len(cols) > 3 else ""))
    return out


def _gc(seq: str) -> float:
    acgt = len(seq) - seq.count("N")
    return (seq.count("G") + seq.count("C")) / acgt if acgt else 0.0


class _IndexedContig:
    """``len()`` and ``[start:end]`` of one indexed reference contig, read on demand and normalised."""

    def __init__(self, contig: Any, policy: SequencePolicy) -> None:
        self._contig, self._policy = contig, policy

    def __len__(self) -> int:
        return len(self._contig)

    def __getitem__(self, item: slice) -> str:
        start, stop, _ = item.indices(len(self._contig))
        raw = self._contig[start:stop]
        where = f"{self._contig.name}:{start + 1}-{stop}"
        # letters are not counted: candidate windows overlap and are read more than once
        seq = normalise(raw, where, self._policy) or ""
        if len(seq) != len(raw):  # a removed gap would shift every BED coordinate after it
            raise DataError(f"reference {where}: gap characters ('-', '.') in the reference; BED coordinates need "
                            "an ungapped FASTA (remove them from the reference).")
        return seq


def _reference_contigs(path: str, policy: SequencePolicy, stats: _Stats, source: str,
                       wanted: set[str]) -> Iterator[tuple[str, Any]]:
    """``(name, contig)`` of every reference record in file order; ``contig`` slices like a string.

    Indexed FASTA: only ``wanted`` contigs are opened, windows are read on demand. Plain gzip FASTA and
    GenBank/EMBL: streamed, one contig in memory at a time (bgzip a FASTA for random access).
    """
    annotated = sequence_format(path) != "fasta"
    if annotated or is_plain_gzip(path):
        if not annotated:
            log.warning("%s is plain gzip, so it is read whole, one chromosome at a time in memory; recompress "
                        "it with `gunzip -c %s | bgzip > ref.fa.gz` for indexed random access", path, path)
        for rid, seq, _line in read_sequences(path, policy, stats.normalise):
            stats.record_lengths[source].append(len(seq))
            yield rid, seq
        return
    reference = Reference(Path(path))
    for name, length in reference.lengths.items():
        stats.record_lengths[source].append(length)
        stats.normalise.records += 1
        stats.normalise.kept += 1
        if name in wanted:
            contig = reference.contig(name)
            assert contig is not None
            yield name, _IndexedContig(contig, policy)


def _bed_rows(cfg: BuildConfig, bed: BedInput, stats: _Stats, grouper: _Grouper, intervals: dict[str, list],
              progress: Progress) -> Iterator[_Row]:
    source = _source(bed.positives, bed.source)
    policy = SequencePolicy(cfg.policy.iupac, cfg.policy.empty, cfg.policy.gaps, "policy")  # type: ignore[arg-type]
    seen: set[str] = set()
    rng = np.random.default_rng(cfg.seed)
    L = cfg.window.length
    for rid, seq in _reference_contigs(bed.reference, policy, stats, source, set(intervals)):
        if rid not in intervals:
            continue
        seen.add(rid)
        pos_gc: list[float] = []
        for start, end, strand, _name in intervals[rid]:
            ws = (start + end) // 2 - L // 2
            if ws < 0 or ws + L > len(seq):
                stats.dropped_windows["bed_window_outside_reference"] += 1
                continue
            win = seq[ws : ws + L]
            pos_gc.append(_gc(win))
            yield _Row(win if strand == "+" else reverse_complement(win), 1, source, rid, ws, ws + L, strand,
                       grouper(source, rid, rid, ws))
        yield from _negatives(cfg, bed, rid, seq, intervals[rid], pos_gc, rng, stats, grouper, source)
        progress.advance(len(intervals[rid]))
    missing = sorted(set(intervals) - seen)
    if missing:
        raise ValueError(f"{bed.positives}: chromosomes {missing[:10]} are not in {bed.reference}; check the "
                         "naming (e.g. 'chr1' vs '1') or remove those intervals")


SWEEP_BP = 1 << 20  # bases read at a time when scoring negative candidates


def window_gc_n(seq: Any, starts: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """GC share of the non-N bases (as :func:`_gc`) and N count of ``seq[s:s + length]`` for each ``s``.

    ``seq`` (a string or an indexed contig) is read once, in order, ``SWEEP_BP`` bases (plus a window) at a
    time, and only where candidates start: random access to each of thousands of candidates would decompress a
    bgzip block apiece.
    """
    gc = np.zeros(len(starts))
    n_count = np.zeros(len(starts), dtype=np.int64)
    order = np.argsort(starts, kind="stable")
    ordered = starts[order]
    for begin in range(0, len(seq), SWEEP_BP):
        lo, hi = np.searchsorted(ordered, [begin, begin + SWEEP_BP])
        if lo == hi:
            continue
        codes = np.frombuffer(seq[begin : begin + SWEEP_BP + length].encode("ascii"), dtype=np.uint8)
        cum_gc = np.concatenate([[0], np.cumsum((codes == ord("G")) | (codes == ord("C")))])
        cum_n = np.concatenate([[0], np.cumsum(codes == ord("N"))])
        local = ordered[lo:hi] - begin
        g, n = cum_gc[local + length] - cum_gc[local], cum_n[local + length] - cum_n[local]
        acgt = length - n
        gc[order[lo:hi]] = np.where(acgt > 0, g / np.maximum(acgt, 1), 0.0)
        n_count[order[lo:hi]] = n
    return gc, n_count


def _negatives(cfg: BuildConfig, bed: BedInput, rid: str, seq: Any, ivs: list[tuple[int, int, str, str]],
               pos_gc: list[float], rng: np.random.Generator, stats: _Stats, grouper: _Grouper,
               source: str) -> Iterator[_Row]:
    """Sample windows that overlap no positive interval; with ``gc_matched`` fill the positives' GC histogram."""
    L = cfg.window.length
    wanted = round(len(pos_gc) * bed.negatives_per_positive)
    if wanted == 0 or len(seq) < L:
        stats.notes["negatives_shortfall"] += wanted
        return
    merged: list[list[int]] = []
    for s, e, *_ in sorted(ivs):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    starts = [m[0] for m in merged]
    bins = bed.gc_bins if bed.gc_matched else 1
    quota = np.bincount(np.minimum((np.asarray(pos_gc) * bins).astype(int), bins - 1), minlength=bins)
    quota = np.round(quota * bed.negatives_per_positive).astype(int) if bed.gc_matched else np.array([wanted])
    made, tries = 0, 0
    draws = rng.integers(0, len(seq) - L + 1, size=wanted * bed.max_tries)
    # GC and N of every candidate from one ordered pass: only the windows kept are read one by one
    gc_share, n_count = window_gc_n(seq, draws, L)
    for ws, gc, n in zip(draws.tolist(), gc_share.tolist(), n_count.tolist(), strict=True):
        tries += 1
        we = ws + L
        k = bisect.bisect_left(starts, we)  # intervals starting before the window end
        if k and merged[k - 1][1] > ws:
            continue  # overlaps a positive
        if n > cfg.window.max_n_fraction * L:
            continue
        b = min(int(gc * bins), bins - 1) if bed.gc_matched else 0
        if quota[b] <= 0:
            continue
        quota[b] -= 1
        made += 1
        yield _Row(seq[ws:we], 0, source, rid, ws, we, "+", grouper(source, rid, rid, ws))
        if quota.sum() <= 0:
            break
    stats.notes["negative_candidates_drawn"] += tries
    stats.notes["negatives_shortfall"] += int(quota.sum())


class _Kept:
    """Pass 1's sink: drops N-rich and duplicate windows, writes the rest in row groups, remembers labels/groups."""

    def __init__(self, cfg: BuildConfig, stats: _Stats, writer: pq.ParquetWriter) -> None:
        self.cfg, self.stats, self.writer = cfg, stats, writer
        self.max_n = cfg.window.max_n_fraction * cfg.window.length
        self.seen: dict[bytes, int] = {}  # digest -> label of the first copy
        self.labels: list[int] = []
        self.codes: list[int] = []
        self.group_code: dict[str, int] = {}
        self.batch: list[_Row] = []

    def add(self, rows: Iterator[_Row]) -> int:
        """Take every row of ``rows`` that passes; returns how many were kept."""
        cfg, stats = self.cfg, self.stats
        kept = 0
        for row in rows:
            if row.sequence.count("N") > self.max_n:
                stats.dropped_windows["too_many_n"] += 1
                continue
            if cfg.dedup:
                key = row.sequence
                if cfg.dedup_reverse_complement:
                    key = min(key, reverse_complement(key))
                digest = hashlib.blake2b(key.encode("ascii"), digest_size=16).digest()
                if digest in self.seen:
                    same = self.seen[digest] == row.label
                    stats.dropped_windows["duplicate" if same else "duplicate_other_label"] += 1
                    continue
                self.seen[digest] = row.label
            self.labels.append(row.label)
            self.codes.append(self.group_code.setdefault(row.group, len(self.group_code)))
            self.batch.append(row)
            kept += 1
            if len(self.batch) >= cfg.row_group_size:
                self.flush()
        return kept

    def flush(self) -> None:
        """Write the rows held so far as one row group."""
        if self.batch:
            self.writer.write_table(_to_table(self.batch), row_group_size=self.cfg.row_group_size)
            self.batch.clear()


def _pass1(cfg: BuildConfig, tmp: Path, stats: _Stats) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Write kept windows to ``tmp``; return per-row labels, per-row group codes and the group names."""
    grouper = _Grouper(cfg.split, stats)
    # (progress, rows): each input counts in its own unit (bp of a FASTA, intervals of the BED)
    sources: list[tuple[Progress, Callable[[Progress], Iterator[_Row]]]] = [
        (Progress(f"build {_source(f.path, f.source)}", unit="bp"),
         lambda bar, f=f: _fasta_rows(cfg, f, stats, grouper, bar)) for f in cfg.fasta]
    if cfg.bed is not None:
        bed = cfg.bed
        intervals = _read_bed(bed.positives)
        sources.append((Progress(f"build {_source(bed.positives, bed.source)}", unit="intervals",
                                 total=sum(map(len, intervals.values()))),
                        lambda bar: _bed_rows(cfg, bed, stats, grouper, intervals, bar)))
    with pq.ParquetWriter(tmp, SCHEMA, compression="zstd") as writer:
        sink = _Kept(cfg, stats, writer)
        for bar, rows in sources:
            with bar:
                kept = sink.add(rows(bar))
            log.info("%s: %d windows kept", bar.description, kept)
        sink.flush()
    return (np.asarray(sink.labels, dtype=np.int64), np.asarray(sink.codes, dtype=np.int64),
            list(sink.group_code))


def _to_table(rows: list[_Row]) -> pa.Table:
    return pa.table({name: [getattr(r, name) for r in rows] for name in SCHEMA.names}, schema=SCHEMA)


# ----------------------------------------------------------------------------------------------- splits
def assign_group_splits(labels: np.ndarray, codes: np.ndarray, n_groups: int, fractions: tuple[float, ...],
                        seed: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Give every group one split (0 train, 1 valid, 2 test), per class, filling each split's window quota.

    Groups are stratified by their majority label and visited in a seeded random order; each goes to the split
    furthest below its target share, so sizes follow ``fractions`` without biasing any split to big or small
    groups. A row counts once, or ``weights[row]`` (e.g. its length in bp) when given. Returns the split of
    each group.
    """
    rng = np.random.default_rng(seed)
    sizes = np.bincount(codes, weights=weights, minlength=n_groups)
    n_labels = int(labels.max()) + 1 if labels.size else 1
    per_label = np.zeros((n_groups, max(n_labels, 1)), dtype=np.int64)
    np.add.at(per_label, (codes, labels), 1)
    majority = per_label.argmax(axis=1)
    out = np.zeros(n_groups, dtype=np.int8)
    target = np.asarray(fractions, dtype=float)
    for lab in np.unique(majority):
        groups = rng.permutation(np.flatnonzero(majority == lab))
        filled = np.zeros(len(fractions))
        total = sizes[groups].sum()
        for g in groups:
            # deficit relative to target; splits with fraction 0 never receive groups
            deficit = np.where(target > 0, (target * total - filled) / np.maximum(target * total, 1), -np.inf)
            k = int(np.argmax(deficit))
            out[g] = k
            filled[k] += sizes[g]
    return out


def _balance_mask(labels: np.ndarray, split: np.ndarray, seed: int) -> np.ndarray:
    """Keep, in each split, as many rows of every class as the rarest class has (seeded choice)."""
    rng = np.random.default_rng(seed + 1)
    keep = np.ones(labels.size, dtype=bool)
    for k in range(len(SPLITS)):
        in_split = split == k
        classes = np.unique(labels[in_split])
        if classes.size < 2:
            continue
        n_min = min(int((labels[in_split] == c).sum()) for c in classes)
        for c in classes:
            idx = np.flatnonzero(in_split & (labels == c))
            if idx.size > n_min:
                keep[rng.choice(idx, size=idx.size - n_min, replace=False)] = False
    return keep


# ----------------------------------------------------------------------------------------------- pass 2
def _pass2(tmp: Path, out: Path, split: np.ndarray, keep: np.ndarray, fractions: tuple[float, ...],
           row_group_size: int) -> None:
    writers = {k: pq.ParquetWriter(out / f"{name}.parquet", SCHEMA, compression="zstd")
               for k, name in enumerate(SPLITS) if fractions[k] > 0 or (split == k).any()}
    try:
        row = 0
        for batch in pq.ParquetFile(tmp).iter_batches(batch_size=row_group_size):
            sl = slice(row, row + batch.num_rows)
            row += batch.num_rows
            table = pa.Table.from_batches([batch])
            for k, writer in writers.items():
                mask = (split[sl] == k) & keep[sl]
                if mask.any():
                    writer.write_table(table.filter(pa.array(mask)))
    finally:
        for writer in writers.values():
            writer.close()


# ----------------------------------------------------------------------------------------------- report
def _length_stats(lengths: list[int]) -> dict[str, float | int]:
    if not lengths:
        return {"records": 0}
    a = np.asarray(lengths)
    return {"records": int(a.size), "total_bp": int(a.sum()), "min": int(a.min()),
            "median": float(np.median(a)), "mean": round(float(a.mean()), 1), "max": int(a.max())}


def _report(cfg: BuildConfig, stats: _Stats, labels: np.ndarray, split: np.ndarray, keep: np.ndarray,
            group_split: np.ndarray, seconds: float) -> dict[str, Any]:
    counts: dict[str, dict[str, int]] = {}
    for k, name in enumerate(SPLITS):
        sel = (split == k) & keep
        counts[name] = {str(int(c)): int((labels[sel] == c).sum()) for c in np.unique(labels)}
        counts[name]["total"] = int(sel.sum())
    dropped = dict(stats.dropped_windows)
    if cfg.balance:
        dropped["class_balance"] = int((~keep).sum())
    return {
        "windows": counts,
        "groups_per_split": {name: int((group_split == k).sum()) for k, name in enumerate(SPLITS)},
        "windows_dropped": dropped,
        "records_dropped": dict(stats.dropped_records),
        "records_dropped_examples": {k: list(v) for k, v in stats.dropped_record_ids.items()},
        "normalise": stats.normalise.as_dict(),
        "record_lengths": {src: _length_stats(v) for src, v in stats.record_lengths.items()},
        "window": {"length": cfg.window.length, "stride": cfg.window.stride,
                   "max_n_fraction": cfg.window.max_n_fraction},
        "split": {"mode": cfg.split.mode, "group_by": cfg.split.group_by,
                  "fractions": [cfg.split.train, cfg.split.valid, cfg.split.test], "seed": cfg.seed},
        "notes": dict(stats.notes),
        "seconds": round(seconds, 2),
    }


def report_markdown(report: dict[str, Any]) -> str:
    """Render ``build_report.json`` as a short Markdown page."""
    labels = sorted({c for s in report["windows"].values() for c in s if c != "total"})
    lines = ["# Build report", "", f"Windows {report['window']['length']} bp, stride {report['window']['stride']}, "
             f"max N fraction {report['window']['max_n_fraction']}; split {report['split']['mode']} by "
             f"{report['split']['group_by']} {report['split']['fractions']}, seed {report['split']['seed']}.", "",
             "| split | " + " | ".join(f"label {c}" for c in labels) + " | total | groups |",
             "|---" * (len(labels) + 3) + "|"]
    for name, c in report["windows"].items():
        lines.append(f"| {name} | " + " | ".join(str(c.get(x, 0)) for x in labels)
                     + f" | {c['total']} | {report['groups_per_split'][name]} |")
    lines += ["", "## Dropped", "", "| what | reason | count |", "|---|---|---|"]
    lines += [f"| windows | {k} | {v} |" for k, v in report["windows_dropped"].items()]
    lines += [f"| records | {k} | {v} |" for k, v in report["records_dropped"].items()]
    n = report["normalise"]
    lines += ["", f"Normalisation: {n['kept']}/{n['records']} records kept, {n['empty_skipped']} empty skipped, "
              f"{n['uppercased']} soft-masked letters upper-cased, {n['iupac_to_n']} IUPAC codes -> N, "
              f"{n['u_to_t']} U -> T, {n['gaps_removed']} gap characters removed.", "",
              "## Record lengths (bp)", "", "| source | records | total | min | median | max |",
              "|---|---|---|---|---|---|"]
    for src, s in report["record_lengths"].items():
        lines.append(f"| {src} | {s['records']} | {s.get('total_bp', 0)} | {s.get('min', '')} | "
                     f"{s.get('median', '')} | {s.get('max', '')} |")
    if report["notes"]:
        lines += ["", "Notes: " + ", ".join(f"{k}={v}" for k, v in report["notes"].items())]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------- entry
def build(cfg: BuildConfig) -> dict[str, Any]:
    """Build ``cfg.output_dir/{train,valid,test}.parquet`` and ``build_report.{json,md}``; return the report."""
    import time

    t0 = time.perf_counter()
    out = Path(cfg.output_dir)
    if out.exists() and any(out.iterdir()):
        if not cfg.overwrite:
            raise FileExistsError(f"{out} is not empty; choose another output_dir or set overwrite=true")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".windows.tmp.parquet"
    stats = _Stats()
    try:
        labels, codes, groups = _pass1(cfg, tmp, stats)
        fractions = (cfg.split.train, cfg.split.valid, cfg.split.test)
        if cfg.split.mode == "group":
            group_split = assign_group_splits(labels, codes, len(groups), fractions, cfg.seed)
            split = group_split[codes]
        else:
            log.warning("split.mode=random: overlapping windows of one record (and near-identical records) land "
                        "in different splits, so test scores are optimistic (leakage); use split.mode=group")
            rng = np.random.default_rng(cfg.seed)
            split = rng.choice(len(SPLITS), size=labels.size, p=fractions).astype(np.int8)
            group_split = np.full(len(groups), -1, dtype=np.int8)
        keep = _balance_mask(labels, split, cfg.seed) if cfg.balance else np.ones(labels.size, dtype=bool)
        _pass2(tmp, out, split, keep, fractions, cfg.row_group_size)
    finally:
        tmp.unlink(missing_ok=True)
    report = _report(cfg, stats, labels, split, keep, group_split, time.perf_counter() - t0)
    (out / "build_report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "build_report.md").write_text(report_markdown(report))
    log.info("built %s: %s", out, {k: v["total"] for k, v in report["windows"].items()})
    return report
