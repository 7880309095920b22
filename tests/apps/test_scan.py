"""dnalm.scan: a genome built from labelled windows is scanned back to its labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dnalm.apps.inputs import write_fasta
from dnalm.apps.scan import scan
from tests.helpers.apps import WINDOW, app_cfg, biased_dna


def test_scan_recovers_labels_of_concatenated_windows(gc_classifier: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    labels = {"chrA": [1, 0, 0, 1, 1, 0, 1, 0], "chrB": [0, 1, 0, 0, 1, 1]}
    records = [(chrom, "".join(biased_dna(rng, 1, WINDOW, 0.75 if y else 0.25)[0] for y in ys))
               for chrom, ys in labels.items()][::-1]  # chrB first in the file: the BED still sorts chrA first
    records.append(("chrShort", "ACGT" * 5))  # shorter than a window: reported, not scored
    genome = tmp_path / "genome.fa"
    write_fasta(genome, records, width=60)
    cfg = app_cfg("scan", tmp_path, f"ckpt_path={gc_classifier}", f"genome={genome}", f"window={WINDOW}",
                  f"stride={WINDOW}", "batch_size=4", "threshold=0.5")
    summary = scan(cfg)
    assert summary["windows"] == 14 and summary["records_too_short"] == 1 and summary["windows_per_second"] > 0
    graph = pd.read_csv(tmp_path / "run" / "scan.bedGraph", sep="\t", skiprows=1, names=["chrom", "start", "end", "p"])
    for chrom, ys in labels.items():
        rows = graph[graph.chrom == chrom]
        assert rows.start.tolist() == [i * WINDOW for i in range(len(ys))]
        assert ((rows.p.to_numpy() > 0.5).astype(int) == np.array(ys)).mean() >= 0.85
    bed = pd.read_csv(tmp_path / "run" / "scan.bed", sep="\t",
                      names=["chrom", "start", "end", "name", "score", "strand"])
    assert (bed.score >= 500).all() and (bed.score <= 1000).all() and summary["regions"] == len(bed)
    assert (bed.strand == ".").all() and bed.name.str.contains(r"\|p=0\.\d{4}$").all()
    assert list(bed.itertuples(index=False)) == sorted(bed.itertuples(index=False), key=lambda r: (r.chrom, r.start))
    assert bed.chrom.iloc[0] == "chrA" and "chrB" in set(bed.chrom)
    import pyBigWig

    bw = pyBigWig.open(summary["bigwig"])
    assert bw.chroms() == {"chrB": 6 * WINDOW, "chrA": 8 * WINDOW}
    for row in graph.itertuples(index=False):
        assert bw.stats(row.chrom, int(row.start), int(row.end))[0] == pytest.approx(row.p, abs=1e-5)
    bw.close()
    # adjacent positive windows merge: chrA has runs [0], [3, 4], [6] -> at most 3 regions if all are called
    assert len(bed[bed.chrom == "chrA"]) <= 3


def test_overlapping_windows_tile_each_record(gc_classifier: Path, tmp_path: Path) -> None:
    genome = tmp_path / "g.fa"
    write_fasta(genome, [("c1", "GC" * 75), ("c2", "AT" * 40)])
    cfg = app_cfg("scan", tmp_path, f"ckpt_path={gc_classifier}", f"genome={genome}", f"window={WINDOW}",
                  "stride=10", "threshold=0.5")
    scan(cfg)
    graph = pd.read_csv(tmp_path / "run" / "scan.bedGraph", sep="\t", skiprows=1, names=["chrom", "start", "end", "p"])
    for chrom, length in (("c1", 150), ("c2", 80)):
        rows = graph[graph.chrom == chrom]
        assert rows.start.iloc[0] == 0 and rows.end.iloc[-1] == length
        assert (rows.start.to_numpy()[1:] == rows.end.to_numpy()[:-1]).all()
    bed = pd.read_csv(tmp_path / "run" / "scan.bed", sep="\t",
                      names=["chrom", "start", "end", "name", "score", "strand"])
    assert bed.chrom.tolist() == ["c1"] and (bed.start.iloc[0], bed.end.iloc[0]) == (0, 150)


def test_scan_refuses_duplicate_record_names_and_broken_fasta(gc_classifier: Path, tmp_path: Path,
                                                              capsys) -> None:  # noqa: ANN001
    import pytest

    from dnalm.errors import DataError
    from dnalm.utils.cli import run_task

    genome = tmp_path / "dup.fa"
    write_fasta(genome, [("c1", "GC" * 40), ("c2", "AT" * 40), ("c1", "GC" * 40)])
    args = [f"ckpt_path={gc_classifier}", f"window={WINDOW}", f"stride={WINDOW}"]
    with pytest.raises(DataError, match=r"record 'c1' \(line 5\) has the same name as the record at line 1"):
        scan(app_cfg("scan", tmp_path, *args, f"genome={genome}"))
    broken = tmp_path / "broken.fa"
    broken.write_text("ACGT\n>c1\nACGT\n")
    with pytest.raises(SystemExit) as exit_info:
        run_task(scan, app_cfg("scan", tmp_path, *args, f"genome={broken}"))
    assert exit_info.value.code == 2
    assert "dnalm: error: " in capsys.readouterr().err


def test_scan_skips_empty_records_under_the_policy(gc_classifier: Path, tmp_path: Path) -> None:
    genome = tmp_path / "g.fa"
    genome.write_text(f">c1\n{'GC' * 40}\n>empty\n>c2\n{'AT' * 40}\n")
    summary = scan(app_cfg("scan", tmp_path, f"ckpt_path={gc_classifier}", f"genome={genome}", f"window={WINDOW}",
                           f"stride={WINDOW}", "data.policy.empty=skip"))
    assert summary["records"] == 2


def test_genbank_genome_scans_like_its_fasta(gc_classifier: Path, tmp_path: Path) -> None:
    from tests.helpers.seqfiles import phage_records, write_copies

    paths = write_copies(tmp_path / "in", phage_records(first_bp=600, second_bp=400))
    graphs = {}
    for suffix in (".fa", ".gb", ".embl"):
        run = tmp_path / suffix.strip(".")
        cfg = app_cfg("scan", run, f"ckpt_path={gc_classifier}", f"genome={paths[suffix]}", f"window={WINDOW}",
                      "stride=20", "chunk_bp=150")
        assert scan(cfg)["windows"] == (600 - WINDOW) // 20 + 1 + (404 - WINDOW) // 20 + 1
        graphs[suffix] = (run / "run" / "scan.bedGraph").read_text()
    assert "NC_024711.1\t0\t" in graphs[".fa"] and "XX_000002.1\t" in graphs[".fa"]
    assert graphs[".gb"] == graphs[".fa"] and graphs[".embl"] == graphs[".fa"]
    renamed = tmp_path / "genome.txt"
    renamed.write_bytes(paths[".gb"].read_bytes())
    cfg = app_cfg("scan", tmp_path / "named", f"ckpt_path={gc_classifier}", f"genome={renamed}", f"window={WINDOW}",
                  "stride=20", "genome_format=genbank")
    scan(cfg)
    assert (tmp_path / "named" / "run" / "scan.bedGraph").read_text() == graphs[".fa"]
