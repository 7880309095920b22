"""Benchmark ``dnalm.data.build``: generate a synthetic genome-scale FASTA and window it; print time and peak RSS.

    .venv/bin/python benchmarks/build.py            # 250 Mbp (target: < 2 min, < 2 GB peak RSS on 2 cores)
    .venv/bin/python benchmarks/build.py --mbp 20   # quicker

With ``--bed N`` it builds instead from N BED positives (plus as many sampled negatives) on one reference of
``--mbp`` Mbp: a plain or bgzip reference is read through its index (windows only); ``--gzip`` writes a plain
gzip reference, which cannot be indexed and is streamed one chromosome string at a time (the previous way)::

    .venv/bin/python benchmarks/build.py --mbp 100 --record-mbp 100 --bed 5000           # indexed
    .venv/bin/python benchmarks/build.py --mbp 100 --record-mbp 100 --bed 5000 --gzip    # streamed
"""

from __future__ import annotations

import argparse
import gzip
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from dnalm.data.build import BedInput, BuildConfig, FastaInput, SplitConfig, WindowConfig, build

LINE = 60


def write_fasta(path: Path, n_bp: int, record_bp: int, rng: np.random.Generator, gz: bool) -> None:
    """Random genome with 60-column lines, a little soft-masking and N runs, written 1 Mbp at a time."""
    alphabet = np.frombuffer(b"ACGTacgt", dtype=np.uint8)
    # fast gzip level: the benchmark times reading, not writing
    with (gzip.open(path, "wb", compresslevel=1) if gz else open(path, "wb")) as fh:
        done, rec = 0, 0
        while done < n_bp:
            size = min(record_bp, n_bp - done)
            fh.write(f">chr{rec} synthetic record {rec}\n".encode())
            left = size
            while left:
                n = min(left, LINE * 16_667)  # about 1 Mbp, whole lines
                idx = rng.integers(0, 4, size=n) + 4 * (rng.random(n) < 0.05)
                seq = alphabet[idx]
                if rng.random() < 0.1:
                    s = rng.integers(0, n)
                    seq[s : s + 5000] = ord("N")
                rows = -(-n // LINE)
                padded = np.full(rows * LINE, 0, dtype=np.uint8)
                padded[:n] = seq
                block = np.concatenate([padded.reshape(rows, LINE), np.full((rows, 1), 10, np.uint8)], axis=1)
                fh.write(block.tobytes().replace(b"\x00", b""))
                left -= n
            done += size
            rec += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mbp", type=float, default=250.0, help="genome size in Mbp (split over two labelled files)")
    ap.add_argument("--record-mbp", type=float, default=25.0, help="record (chromosome) size in Mbp")
    ap.add_argument("--length", type=int, default=1024)
    ap.add_argument("--stride", type=int, default=512)
    ap.add_argument("--gzip", action="store_true", help="write gzip FASTA instead of plain text")
    ap.add_argument("--rc", action="store_true", help="count reverse complements as duplicates")
    ap.add_argument("--bed", type=int, default=0, help="build from this many BED positives on one reference")
    ap.add_argument("--bgzip", action="store_true", help="with --bed: a bgzip reference (indexed)")
    args = ap.parse_args()
    if args.bed:
        bed_build(args)
        return
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        half = int(args.mbp * 1e6 / 2)
        suffix = ".fa.gz" if args.gzip else ".fa"
        files = [Path(tmp) / f"class{k}{suffix}" for k in (0, 1)]
        for f in files:
            write_fasta(f, half, int(args.record_mbp * 1e6), rng, args.gzip)
        gen = time.perf_counter() - t0
        rss_gen = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        cfg = BuildConfig(output_dir=str(Path(tmp) / "out"),
                          fasta=[FastaInput(str(f), label=k) for k, f in enumerate(files)],
                          window=WindowConfig(args.length, args.stride),
                          split=SplitConfig(group_by="block"),  # few huge records: blocks give every split a share
                          dedup_reverse_complement=args.rc)
        t1 = time.perf_counter()
        report = build(cfg)
        took = time.perf_counter() - t1
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        size = sum(p.stat().st_size for p in (Path(tmp) / "out").glob("*.parquet")) / 2**20
    totals = {k: v["total"] for k, v in report["windows"].items()}
    print(f"genome {args.mbp:g} Mbp ({'gzip' if args.gzip else 'plain'}), generated in {gen:.1f} s "
          f"(peak RSS {rss_gen:.0f} MiB)")
    print(f"build: {took:.1f} s = {args.mbp / took:.2f} Mbp/s; peak RSS {rss:.0f} MiB; windows {totals}; "
          f"dropped {report['windows_dropped']}; parquet {size:.0f} MiB")


def bed_build(args: argparse.Namespace) -> None:
    """BED positives (random 500 bp intervals) on one synthetic reference; time and peak RSS of the build."""
    import pysam

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        ref = Path(tmp) / ("ref.fa.gz" if args.gzip else "ref.fa")
        write_fasta(ref, int(args.mbp * 1e6), int(args.record_mbp * 1e6), rng, args.gzip)
        if args.bgzip:
            pysam.tabix_compress(str(ref), str(ref) + ".gz")
            ref = Path(str(ref) + ".gz")
        record_bp = int(args.record_mbp * 1e6)
        n_records = -(-int(args.mbp * 1e6) // record_bp)
        bed = Path(tmp) / "peaks.bed"
        with bed.open("w") as fh:
            for rec in range(n_records):
                size = min(record_bp, int(args.mbp * 1e6) - rec * record_bp)
                for start in np.sort(rng.integers(0, size - 2_000, size=args.bed // n_records)):
                    fh.write(f"chr{rec}\t{start}\t{start + 500}\n")
        rss_gen = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        cfg = BuildConfig(output_dir=str(Path(tmp) / "out"), bed=BedInput(str(bed), str(ref)),
                          window=WindowConfig(args.length, args.stride), split=SplitConfig(group_by="block"))
        t1 = time.perf_counter()
        report = build(cfg)
        took = time.perf_counter() - t1
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kind = "bgzip, indexed" if args.bgzip else "plain gzip, streamed" if args.gzip else "plain, indexed"
    totals = {k: v["total"] for k, v in report["windows"].items()}
    print(f"BED build: {args.bed} positives on {args.mbp:g} Mbp in {args.record_mbp:g} Mbp records ({kind}); "
          f"{took:.1f} s; peak RSS {rss:.0f} MiB (after generating the files: {rss_gen:.0f} MiB); windows {totals}")


if __name__ == "__main__":
    main()
