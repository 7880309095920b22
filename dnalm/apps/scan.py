"""``python -m dnalm.scan ckpt_path=<classifier.ckpt> genome=<fasta[.gz]> window=... stride=... output_dir=...``.

Slides a fine-tuned classifier along every record of a genome FASTA, GenBank or EMBL file, streaming
(``read_sequence_chunks`` + ``sliding_windows``: memory holds one chunk and one batch of windows; a GenBank/EMBL
record is parsed whole first). Writes:

- ``<prefix>.bedGraph``: the probability of ``target_class`` per window step. Each window's score is assigned
  to its central ``stride`` bp (the first and last windows of a record extend to the record's ends), so the
  intervals tile each record without overlaps.
- ``<prefix>.bed``: intervals of the bedGraph with probability >= ``threshold``, merged when adjacent or closer
  than ``merge_gap`` bp; the score column is the maximum probability inside.
- ``<prefix>.json``: windows, windows/s, regions, device.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import hydra
from omegaconf import DictConfig

from dnalm.configs import CONFIG_DIR
from dnalm.data.fasta import Window, sliding_windows
from dnalm.data.seqfile import read_sequence_chunks, sequence_format
from dnalm.data.sources import policy_of
from dnalm.errors import ConfigError, DataError
from dnalm.inference import Runner, class_index
from dnalm.utils.cli import run_task
from dnalm.utils.progress import Progress

log = logging.getLogger("dnalm.scan")


def _batched(windows: Iterator[Window], size: int) -> Iterator[list[Window]]:
    batch: list[Window] = []
    for window in windows:
        batch.append(window)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class RegionWriter:
    """Accumulate bedGraph intervals of one record at a time; write merged regions above a threshold."""

    def __init__(self, bed: TextIO, threshold: float, merge_gap: int) -> None:
        self.bed, self.threshold, self.merge_gap = bed, threshold, merge_gap
        self.open: list[Any] | None = None  # [chrom, start, end, max score]
        self.regions = 0

    def add(self, chrom: str, start: int, end: int, score: float) -> None:
        """One bedGraph interval (in order along ``chrom``)."""
        if score < self.threshold:
            return
        if self.open and self.open[0] == chrom and start - self.open[2] <= self.merge_gap:
            self.open[2] = end
            self.open[3] = max(self.open[3], score)
            return
        self.flush()
        self.open = [chrom, start, end, score]

    def flush(self) -> None:
        """Write the region in progress, if any."""
        if self.open:
            chrom, start, end, score = self.open
            # BED6: the score column is 0-1000 (browsers shade by it); the probability is kept in the name
            self.bed.write(f"{chrom}\t{start}\t{end}\t{chrom}:{start}-{end}|p={score:.4f}\t"
                           f"{round(1000 * score)}\t.\n")
            self.regions += 1
        self.open = None


def sort_bed(path: Path) -> None:
    """Sort a BED file by chromosome name, then start (``sort -k1,1 -k2,2n``), as tabix and bedtools expect."""
    lines = path.read_text().splitlines(keepends=True)
    lines.sort(key=lambda line: (line.split("\t", 1)[0], int(line.split("\t", 2)[1])))
    path.write_text("".join(lines))


def write_bigwig(bedgraph: Path, lengths: dict[str, int], path: Path) -> None:
    """Convert the scan's bedGraph (intervals ascending within each record) into a bigWig with ``pyBigWig``."""
    import pyBigWig

    chroms: list[str] = []
    with bedgraph.open() as fh:
        for line in fh:
            chrom = line.split("\t", 1)[0]
            if not line.startswith("track") and (not chroms or chroms[-1] != chrom):
                chroms.append(chrom)
    bw = pyBigWig.open(str(path), "w")
    try:
        bw.addHeader([(c, int(lengths[c])) for c in chroms])
        batch: tuple[list[str], list[int], list[int], list[float]] = ([], [], [], [])
        with bedgraph.open() as fh:
            for line in fh:
                if line.startswith("track"):
                    continue
                chrom, lo, hi, value = line.split("\t")
                for column, item in zip(batch, (chrom, int(lo), int(hi), float(value))):
                    column.append(item)
                if len(batch[0]) >= 100_000:  # bounded memory on a genome
                    bw.addEntries(*batch)
                    batch = ([], [], [], [])
        if batch[0]:
            bw.addEntries(*batch)
    finally:
        bw.close()


def _intervals(starts: list[int], window: int, stride: int, record_end: int) -> list[tuple[int, int]]:
    """Non-overlapping intervals tiling a record, one per window start (the window's central stride bp)."""
    half = (window - stride) // 2
    out = []
    for i, s in enumerate(starts):
        lo = 0 if i == 0 else s + half
        hi = record_end if i == len(starts) - 1 else starts[i + 1] + half
        out.append((lo, hi))
    return out


def scan(cfg: DictConfig) -> dict[str, Any]:
    """Scan ``cfg.genome`` with the classifier of ``cfg.ckpt_path``; write bedGraph, BED and a JSON summary."""
    if not cfg.get("ckpt_path") and not (cfg.get("head") and cfg.head.get("native", False)):
        raise ConfigError("give ckpt_path=<fine-tuned classifier checkpoint> (or a published one with head=native).")
    if not cfg.get("genome"):
        raise ConfigError("give genome=<FASTA, GenBank or EMBL file, plain or gzip>.")
    if not Path(str(cfg.genome)).is_file():
        raise ConfigError(f"genome={cfg.genome} is not a file; give a FASTA, GenBank or EMBL file, plain or gzip.")
    genome_format = sequence_format(str(cfg.genome), cfg.get("genome_format"))
    window, stride = int(cfg.window), int(cfg.stride or cfg.window)
    if stride > window:
        raise ConfigError(f"stride={stride} is larger than window={window}: bases would be skipped.")
    runner, task = Runner.from_cfg(cfg)
    assert task is not None
    column = class_index(task, cfg.get("target_class"))
    out_dir = Path(str(cfg.output_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = out_dir / str(cfg.prefix)
    chunks = read_sequence_chunks(cfg.genome, policy_of(cfg.get("data")), chunk_bp=int(cfg.chunk_bp),
                                  fmt=genome_format)
    windows_done, started = 0, time.perf_counter()
    pending: list[tuple[str, int, float]] = []  # windows of the current record: (chrom, start, prob)
    lengths: dict[str, int] = {}

    header_lines: dict[str, int] = {}

    def record_lengths() -> Iterator[Any]:
        for chunk in chunks:
            first = header_lines.setdefault(chunk.record, chunk.line)
            if first != chunk.line:  # two records of one name would write overlapping bedGraph intervals
                raise DataError(f"{cfg.genome}: record {chunk.record!r} (line {chunk.line}) has the same name as the "
                                f"record at line {first}; a genome's record names must be unique: rename one.")
            lengths[chunk.record] = chunk.offset + len(chunk.sequence)
            yield chunk

    with open(f"{prefix}.bedGraph", "w") as graph, open(f"{prefix}.bed", "w") as bed:
        graph.write(f'track type=bedGraph name="{cfg.prefix}" description="P({task.label_names[column]}) '
                    f'window={window} stride={stride}"\n')
        regions = RegionWriter(bed, float(cfg.threshold), int(cfg.merge_gap))

        def flush_record() -> None:
            if not pending:
                return
            chrom = pending[0][0]
            spans = _intervals([s for _, s, _ in pending], window, stride, lengths[chrom])
            for (lo, hi), (_, _, prob) in zip(spans, pending):
                graph.write(f"{chrom}\t{lo}\t{hi}\t{prob:.5f}\n")
                regions.add(chrom, lo, hi, prob)
            regions.flush()
            pending.clear()

        with Progress("scanning", unit="windows") as progress:
            for batch in _batched(sliding_windows(record_lengths(), window, stride), int(cfg.batch_size)):
                probs = runner.probabilities([w.sequence for w in batch], task)[:, column]
                for w, p in zip(batch, probs):
                    if pending and pending[0][0] != w.record:
                        flush_record()
                    pending.append((w.record, w.start, float(p)))
                windows_done += len(batch)
                progress.advance(len(batch))
        flush_record()
    seconds = time.perf_counter() - started
    skipped = [rec for rec, n in lengths.items() if n < window]
    if windows_done == 0:  # an empty track would look like a scan that found nothing
        for suffix in (".bedGraph", ".bed"):
            Path(f"{prefix}{suffix}").unlink(missing_ok=True)
        reason = ("holds no FASTA records" if not lengths
                  else f"has no record as long as window={window} bp (longest: {max(lengths.values())} bp)")
        raise DataError(f"{cfg.genome} {reason}: nothing to scan; give a FASTA with '>' headers and sequence lines"
                        + (" or a smaller window." if lengths else "."))
    if skipped:
        log.warning("%d record(s) shorter than the %d bp window were not scored, e.g. %s", len(skipped), window,
                    skipped[:3])
    sort_bed(Path(f"{prefix}.bed"))
    write_bigwig(Path(f"{prefix}.bedGraph"), lengths, Path(f"{prefix}.bw"))
    summary = {"windows": windows_done, "seconds": round(seconds, 3),
               "windows_per_second": round(windows_done / seconds, 1) if seconds else None,
               "model_windows_per_second": round(windows_done / runner.seconds, 1) if runner.seconds else None,
               "records": len(lengths), "records_too_short": len(skipped), "regions": regions.regions,
               "target_class": task.label_names[column], "threshold": float(cfg.threshold),
               "device": str(runner.device), "bedgraph": f"{prefix}.bedGraph", "bigwig": f"{prefix}.bw", "bed": f"{prefix}.bed"}
    Path(f"{prefix}.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))
    return summary


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="scan")
def main(cfg: DictConfig) -> None:
    """Command-line entry point."""
    run_task(scan, cfg)


if __name__ == "__main__":
    main()
