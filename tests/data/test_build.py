"""dnalm.data.build: windows, filters, leak-free splits, BED negatives, reports; one real gut-phage rebuild."""

from __future__ import annotations

import gzip
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dnalm.data.build import (
    BedInput,
    BuildConfig,
    FastaInput,
    HeaderLabels,
    SplitConfig,
    WindowConfig,
    assign_group_splits,
    build,
    reverse_complement,
)
from dnalm.data.fasta import read_fasta

REPO = Path(__file__).resolve().parents[2]
GUT_RAW = REPO / ".." / "shared" / "data" / "gut_phage" / "raw"


def random_seq(n: int, seed: int, gc: float = 0.5) -> str:
    p = [(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]
    return "".join(np.random.default_rng(seed).choice(list("ACGT"), size=n, p=p))


def write_fasta(path: Path, records: dict[str, str]) -> str:
    path.write_text("".join(f">{k}\n{v}\n" for k, v in records.items()))
    return str(path)


def read_splits(out: Path) -> dict[str, pd.DataFrame]:
    return {s: pd.read_parquet(out / f"{s}.parquet") for s in ("train", "valid", "test")
            if (out / f"{s}.parquet").exists()}


def cfg(tmp_path: Path, **kw) -> BuildConfig:
    kw.setdefault("window", WindowConfig(100, 50))
    return BuildConfig(output_dir=str(tmp_path / "out"), **kw)


def test_windows_metadata_and_leak_free_record_splits(tmp_path: Path) -> None:
    recs = {f"p{i}": random_seq(1_000, i) for i in range(20)}
    neg = {f"n{i}": random_seq(1_000, 100 + i) for i in range(20)}
    report = build(cfg(tmp_path, fasta=[FastaInput(write_fasta(tmp_path / "p.fa", recs), 1),
                                        FastaInput(write_fasta(tmp_path / "n.fa", neg), 0, source="neg")]))
    df = pd.concat([d.assign(split=s) for s, d in read_splits(tmp_path / "out").items()])
    assert len(df) == 40 * 19 == sum(v["total"] for v in report["windows"].values())
    assert list(df.columns[:8]) == ["sequence", "label", "source", "record", "start", "end", "strand", "group"]
    everything = {**recs, **neg}
    for row in df.sample(50, random_state=0).itertuples():
        assert row.sequence == everything[row.record][row.start : row.end]
    assert set(df.source) == {"p", "neg"} and set(df.strand) == {"+"}
    assert (df.groupby("record").split.nunique() == 1).all()  # no record straddles splits
    assert df.groupby("split").label.nunique().to_dict() == {"test": 2, "train": 2, "valid": 2}
    assert report["windows"]["train"]["total"] == 19 * 32  # 0.8 of 40 records of each class


def test_report_files_and_markdown(tmp_path: Path) -> None:
    path = write_fasta(tmp_path / "a.fa", {"short": "ACGT", "r1": random_seq(500, 1), "r2": random_seq(500, 2)})
    build(cfg(tmp_path, fasta=[FastaInput(path, 0)], split=SplitConfig(train=0.5, valid=0.0, test=0.5)))
    out = tmp_path / "out"
    report = json.loads((out / "build_report.json").read_text())
    assert report["records_dropped"] == {"shorter_than_window": 1}
    assert report["records_dropped_examples"] == {"shorter_than_window": ["short"]}
    assert report["record_lengths"]["a"] == {"records": 3, "total_bp": 1004, "min": 4, "median": 500.0,
                                             "mean": 334.7, "max": 500}
    assert not (out / "valid.parquet").exists()  # fraction 0: no file
    md = (out / "build_report.md").read_text()
    assert "| train |" in md and "shorter_than_window | 1" in md


def test_too_many_n_windows_dropped_and_counted(tmp_path: Path) -> None:
    seq = random_seq(300, 0)
    seq = seq[:120] + "N" * 10 + seq[130:]  # hits windows starting at 50 and 100
    kw = {"fasta": [FastaInput(write_fasta(tmp_path / "a.fa", {"r": seq}), 1)]}
    report = build(cfg(tmp_path, **kw, split=SplitConfig(train=1.0, valid=0.0, test=0.0)))
    assert report["windows_dropped"] == {"too_many_n": 2} and report["windows"]["train"]["total"] == 3
    window = WindowConfig(100, 50, max_n_fraction=0.1)
    report = build(cfg(tmp_path, **kw, window=window, overwrite=True, split=SplitConfig(train=1.0, valid=0, test=0)))
    assert report["windows_dropped"] == {} and report["windows"]["train"]["total"] == 5


def test_duplicates_exact_other_label_and_reverse_complement(tmp_path: Path) -> None:
    s = random_seq(100, 3)
    a = write_fasta(tmp_path / "a.fa", {"a1": s, "a2": s, "a3": reverse_complement(s)})
    b = write_fasta(tmp_path / "b.fa", {"b1": s})
    one = SplitConfig(train=1.0, valid=0.0, test=0.0)
    report = build(cfg(tmp_path, fasta=[FastaInput(a, 1), FastaInput(b, 0)], split=one))
    assert report["windows_dropped"] == {"duplicate": 1, "duplicate_other_label": 1}
    report = build(cfg(tmp_path, fasta=[FastaInput(a, 1), FastaInput(b, 0)], split=one, overwrite=True,
                       dedup_reverse_complement=True))
    assert report["windows_dropped"] == {"duplicate": 2, "duplicate_other_label": 1}
    assert read_splits(tmp_path / "out")["train"].record.tolist() == ["a1"]
    report = build(cfg(tmp_path, fasta=[FastaInput(a, 1)], split=one, overwrite=True, dedup=False))
    assert report["windows"]["train"]["total"] == 3


def test_labels_and_groups_from_header_regex(tmp_path: Path) -> None:
    recs = {f"GCF_{g}|contig{i} class={'phage' if g % 2 else 'host'}": random_seq(400, 10 * g + i)
            for g in range(10) for i in range(3)}
    path = write_fasta(tmp_path / "mixed.fa", recs)
    labels = HeaderLabels(pattern=r"class=(\w+)", map={"phage": 1, "host": 0})
    split = SplitConfig(group_by="regex", group_regex=r"^(GCF_\d+)", train=0.6, valid=0.2, test=0.2)
    build(cfg(tmp_path, fasta=[FastaInput(path)], label_from_header=labels, split=split))
    df = pd.concat([d.assign(split=s) for s, d in read_splits(tmp_path / "out").items()])
    assert len(df) == 30 * 7
    assert (df.label == df.record.str.extract(r"GCF_(\d+)")[0].astype(int) % 2).all()
    assert df.group.str.fullmatch(r"mixed:GCF_\d").all()
    assert (df.groupby("group").split.nunique() == 1).all() and df.group.nunique() == 10


def test_header_label_unmatched_error_or_skip(tmp_path: Path) -> None:
    path = write_fasta(tmp_path / "m.fa", {"x class=phage": random_seq(200, 1), "y nolabel": random_seq(200, 2)})
    labels = HeaderLabels(pattern=r"class=(\w+)", map={"phage": 1})
    with pytest.raises(ValueError, match=r"m\.fa line 3: header 'y nolabel' gives no label.*unmatched=skip"):
        build(cfg(tmp_path, fasta=[FastaInput(path)], label_from_header=labels))
    labels.unmatched = "skip"
    report = build(cfg(tmp_path, fasta=[FastaInput(path)], label_from_header=labels, overwrite=True))
    assert report["records_dropped"] == {"header_label_unmatched": 1}
    assert report["records_dropped_examples"]["header_label_unmatched"] == ["y"]


def test_group_regex_unmatched_falls_back_to_record_and_is_counted(tmp_path: Path) -> None:
    path = write_fasta(tmp_path / "g.fa", {"GCF_1|a": random_seq(200, 1), "plasmid": random_seq(200, 2)})
    split = SplitConfig(group_by="regex", group_regex=r"^(GCF_\d+)")
    report = build(cfg(tmp_path, fasta=[FastaInput(path, 0)], split=split))
    assert report["notes"] == {"group_regex_unmatched_records_grouped_by_record": 1}
    groups = set(pd.concat(read_splits(tmp_path / "out").values()).group)
    assert groups == {"g:GCF_1", "g:plasmid"}


def test_block_groups_keep_windows_inside_blocks(tmp_path: Path) -> None:
    path = write_fasta(tmp_path / "g.fa", {"chr1": random_seq(20_000, 5)})
    build(cfg(tmp_path, fasta=[FastaInput(path, 0)], split=SplitConfig(group_by="block", block_size=1_000)))
    df = pd.concat([d.assign(split=s) for s, d in read_splits(tmp_path / "out").items()])
    assert ((df.start // 1_000) == ((df.end - 1) // 1_000)).all()
    assert len(df) == 20 * 19 and df.group.nunique() == 20 and df.split.nunique() == 3
    assert (df.groupby("group").split.nunique() == 1).all()


def test_random_split_warns_about_leakage(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_fasta(tmp_path / "a.fa", {"r": random_seq(5_000, 1)})
    with caplog.at_level(logging.WARNING):
        build(cfg(tmp_path, fasta=[FastaInput(path, 0)], split=SplitConfig(mode="random")))
    assert "leakage" in caplog.text
    df = pd.concat([d.assign(split=s) for s, d in read_splits(tmp_path / "out").items()])
    assert df.split.nunique() == 3  # the single record straddles splits: exactly what the warning is about


def test_balance_downsamples_each_split_to_rarest_class(tmp_path: Path) -> None:
    pos = write_fasta(tmp_path / "p.fa", {f"p{i}": random_seq(1_000, i) for i in range(10)})
    neg = write_fasta(tmp_path / "n.fa", {f"n{i}": random_seq(300, 50 + i) for i in range(10)})
    report = build(cfg(tmp_path, fasta=[FastaInput(pos, 1), FastaInput(neg, 0)], balance=True))
    for split in report["windows"].values():
        assert split["0"] == split["1"] > 0
    assert report["windows_dropped"]["class_balance"] == 190 - 50


def test_assign_group_splits_follows_fractions_per_class() -> None:
    rng = np.random.default_rng(0)
    codes = np.repeat(np.arange(200), rng.integers(1, 20, size=200))
    labels = (codes % 2).astype(np.int64)
    split = assign_group_splits(labels, codes, 200, (0.8, 0.1, 0.1), seed=1)[codes]
    for lab in (0, 1):
        share = np.bincount(split[labels == lab], minlength=3) / (labels == lab).sum()
        assert np.allclose(share, [0.8, 0.1, 0.1], atol=0.03)


def test_bed_positives_and_gc_matched_negatives(tmp_path: Path) -> None:
    # chr1: low-GC background with high-GC islands; positives sit on the islands
    rng = np.random.default_rng(0)
    chrom = list(random_seq(200_000, 1, gc=0.35))
    sites = rng.choice(np.arange(0, 195_000, 2_000), size=60, replace=False)
    for s in sites[:40]:  # 40 islands: 20 carry a positive, 20 are left for GC-matched negatives
        chrom[s : s + 600] = random_seq(600, int(s), gc=0.7)
    starts = sorted(np.concatenate([sites[:20], sites[40:]]))  # 20 positives on islands, 20 on background
    chrom2 = random_seq(50_000, 2, gc=0.6)
    ref = tmp_path / "ref.fa.gz"
    with gzip.open(ref, "wt") as fh:
        fh.write(">chr1 test\n" + "".join(chrom) + "\n>chr2\n" + chrom2 + "\n>chrUn\nACGT\n")
    bed = tmp_path / "peaks.bed"
    lines = ["track name=peaks"] + [f"chr1\t{s + 100}\t{s + 500}\tpk{i}\t0\t{'+-'[i % 2]}"
                                    for i, s in enumerate(starts)]
    edge = ["chr2\t1000\t1300", "chr2\t20000\t20100", "chr2\t10\t20"]  # the last one's window starts < 0
    bed.write_text("\n".join(lines + edge) + "\n")
    spec = BedInput(positives=str(bed), reference=str(ref), gc_bins=10)
    report = build(cfg(tmp_path, bed=spec, window=WindowConfig(300, 300), split=SplitConfig(train=1, valid=0, test=0)))
    df = read_splits(tmp_path / "out")["train"]
    pos, neg = df[df.label == 1], df[df.label == 0]
    assert len(pos) == 42 and len(neg) + report["notes"]["negatives_shortfall"] == 42
    assert len(neg) >= 38 and report["windows_dropped"] == {"bed_window_outside_reference": 1}
    genome = dict((r, s) for r, s, _ in read_fasta(ref))
    for row in pos.itertuples():
        fwd = genome[row.record][row.start : row.end]
        assert row.sequence == (fwd if row.strand == "+" else reverse_complement(fwd))
    intervals = [(s + 100, s + 500) for s in starts]
    for row in neg[neg.record == "chr1"].itertuples():
        assert all(row.end <= a or row.start >= b for a, b in intervals)  # negatives avoid positives
    gc = df.sequence.map(lambda s: (s.count("G") + s.count("C")) / len(s))
    assert abs(gc[df.label == 1].mean() - gc[df.label == 0].mean()) < 0.03  # GC-matched


def test_bed_errors_name_file_and_line(tmp_path: Path) -> None:
    ref = write_fasta(tmp_path / "ref.fa", {"chr1": random_seq(1_000, 0)})
    bed = tmp_path / "a.bed"
    bed.write_text("chr1\t10\t20\nchr1\tten\t20\n")
    with pytest.raises(ValueError, match=r"a\.bed line 2: expected tab-separated"):
        build(cfg(tmp_path, bed=BedInput(str(bed), ref)))
    bed.write_text("1\t100\t200\n")
    with pytest.raises(ValueError, match=r"chromosomes \['1'\] are not in .*'chr1' vs '1'"):
        build(cfg(tmp_path, bed=BedInput(str(bed), ref), overwrite=True))


@pytest.mark.parametrize(
    ("kw", "match"),
    [({}, "no inputs"),
     ({"fasta": [FastaInput("a.fa")]}, "no label"),
     ({"fasta": [FastaInput("a.fa", 1)], "split": SplitConfig(train=0.9)}, "sum to 1"),
     ({"fasta": [FastaInput("a.fa", 1)], "split": SplitConfig(group_by="regex")}, "group_regex"),
     ({"fasta": [FastaInput("a.fa", 1)], "window": WindowConfig(0, 1)}, "length and stride")],
)
def test_config_errors(tmp_path: Path, kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        BuildConfig(output_dir=str(tmp_path), **kw)


def test_from_mapping_checks_types_and_keys(tmp_path: Path) -> None:
    base = {"output_dir": str(tmp_path), "fasta": [{"path": "a.fa", "label": 1}]}
    assert BuildConfig.from_mapping(base).fasta[0] == FastaInput("a.fa", 1)
    with pytest.raises(Exception, match="windw"):
        BuildConfig.from_mapping({**base, "windw": {}})
    with pytest.raises(Exception, match="length"):
        BuildConfig.from_mapping({**base, "window": {"length": "long"}})


def test_refuses_to_overwrite_output(tmp_path: Path) -> None:
    path = write_fasta(tmp_path / "a.fa", {"r": random_seq(200, 0)})
    build(cfg(tmp_path, fasta=[FastaInput(path, 0)]))
    with pytest.raises(FileExistsError, match="overwrite=true"):
        build(cfg(tmp_path, fasta=[FastaInput(path, 0)]))


def test_hydra_entry_point(tmp_path: Path) -> None:
    path = write_fasta(tmp_path / "a.fa", {f"r{i}": random_seq(300, i) for i in range(10)})
    out = tmp_path / "ds"
    proc = subprocess.run(
        [sys.executable, "-m", "dnalm.build", f"fasta=[{{path:{path},label:1}}]", f"output_dir={out}",
         "window.length=100", "window.stride=100", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stdout
    again = subprocess.run(proc.args, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert [line for line in again.stderr.splitlines() if line.startswith("dnalm: error:")] == [
        f"dnalm: error: {out} is not empty; choose another output_dir or set overwrite=true"]
    assert sum(len(pd.read_parquet(out / f"{s}.parquet")) for s in ("train", "valid", "test")) == 30


# --------------------------------------------------------------------------------------- real data
SMALL_SOURCES = {  # file -> (label, windows of 1024/512 per shared/data/gut_phage/README.md, train + test)
    "phage_crassphage_NC_024711": (1, 188),
    "phage_cherry_test_WG01": (1, 330),
    "phage_seeker_example": (1, 1_071 + 403),
    "phage_primate_crasslike_contigs": (1, 1_198 + 360),
    "nonphage_crc_gut_metagenome_contigs": (0, 1_634 + 417),
}


@pytest.fixture(scope="module")
def gut_phage(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    if not GUT_RAW.is_dir():
        pytest.skip(f"shared gut_phage data not found at {GUT_RAW.resolve()} (clone ../shared beside main)")
    out = tmp_path_factory.mktemp("gut") / "ds"
    inputs = [FastaInput(str(GUT_RAW / f"{name}.fa.gz"), label) for name, (label, _) in SMALL_SOURCES.items()]
    return out, build(BuildConfig(output_dir=str(out), fasta=inputs))


def test_gut_phage_rebuild_counts_match_the_published_set(gut_phage: tuple[Path, dict]) -> None:
    out, report = gut_phage
    df = pd.concat([d.assign(split=s) for s, d in read_splits(out).items()])
    counts = df.groupby("source").size().to_dict()
    assert counts == {name: n for name, (_, n) in SMALL_SOURCES.items()}
    assert df.groupby("source").label.unique().map(list).to_dict() == {k: [v[0]] for k, v in SMALL_SOURCES.items()}
    assert (df.end - df.start == 1024).all() and (df.sequence.str.len() == 1024).all()
    assert (df.start % 512 == 0).all() and df.sequence.str.fullmatch("[ACGT]+").all()
    assert report["records_dropped"]["shorter_than_window"] == 585  # CRC contigs under 1024 bp
    assert report["windows"]["train"]["total"] > 4 * report["windows"]["test"]["total"] * 0.8


def test_gut_phage_no_record_crosses_splits(gut_phage: tuple[Path, dict]) -> None:
    out, _ = gut_phage
    df = pd.concat([d.assign(split=s) for s, d in read_splits(out).items()])
    assert (df.groupby(["source", "record"]).split.nunique() == 1).all()
    assert df.sequence.is_unique


def test_gut_phage_windows_equal_the_shared_dataset(gut_phage: tuple[Path, dict]) -> None:
    out, _ = gut_phage
    ours = pd.concat(read_splits(out).values())
    theirs = pd.read_csv(GUT_RAW.parent / "test.csv.gz")
    meta = pd.read_csv(GUT_RAW.parent / "test_meta.csv.gz")
    crass = set(theirs.sequence[meta.source == "crassphage_NC_024711"])
    assert len(crass) == 188
    assert crass == set(ours.sequence[ours.source == "phage_crassphage_NC_024711"])


@pytest.mark.parametrize("suffix", [".gb", ".embl"])
def test_genbank_and_embl_inputs_build_the_dataset_of_their_fasta(tmp_path: Path, suffix: str) -> None:
    from tests.helpers.seqfiles import phage_records, write_copies

    paths = write_copies(tmp_path / "in", phage_records())
    split = SplitConfig(train=0.5, valid=0.0, test=0.5)
    built = {}
    for route in (".fa", suffix):
        out = tmp_path / route.strip(".")
        report = build(cfg(out, fasta=[FastaInput(str(paths[route]), 1, source="phage")], split=split))
        built[route] = (read_splits(out / "out"), report["windows"], report["normalise"])
    fasta, annotated = built[".fa"], built[suffix]
    # 3,000 and 2,004 bp cut 100/50: 59 + 39 windows, less the 2 over the NNNN the IUPAC codes became
    assert sum(len(frame) for frame in fasta[0].values()) == 59 + 39 - 2
    assert set(pd.concat(fasta[0].values()).record) == {"NC_024711.1", "XX_000002.1"}
    for name, frame in fasta[0].items():
        pd.testing.assert_frame_equal(annotated[0][name], frame)
    assert annotated[1:] == fasta[1:]


def _soft_masked_genome(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """Three contigs with soft-masking, N runs and IUPAC codes, and BED positives on two of them."""
    contigs = {}
    for i, name in enumerate(("chr1", "chrUn_x", "chr2")):
        seq = list(random_seq(30_000, 10 + i, gc=0.45))
        seq[5_000:5_400] = "N" * 400
        seq[12_000:13_000] = [c.lower() for c in seq[12_000:13_000]]
        seq[20_000] = "R"
        contigs[name] = "".join(seq)
    bed = tmp_path / "peaks.bed"
    rng = np.random.default_rng(3)
    bed.write_text("".join(f"{chrom}\t{s}\t{s + 200}\tpk\t0\t{'+-'[int(s) % 2]}\n" for chrom in ("chr1", "chr2")
                           for s in sorted(rng.integers(0, 29_800, size=25))))
    return contigs, bed


def _frames(out: Path) -> pd.DataFrame:
    return pd.concat([d.assign(split=s) for s, d in read_splits(out).items()], ignore_index=True)


def test_bed_reference_indexed_plain_and_bgzip_give_the_streamed_windows(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import pysam

    import dnalm.data.build as build_module

    contigs, bed = _soft_masked_genome(tmp_path)
    plain = Path(write_fasta(tmp_path / "ref.fa", {k: "\n".join(v[i:i + 60] for i in range(0, len(v), 60))
                                                   for k, v in contigs.items()}))
    bgzipped = tmp_path / "ref.bgz.fa.gz"
    pysam.tabix_compress(str(plain), str(bgzipped))
    gzipped = tmp_path / "ref.gz.fa.gz"  # plain gzip: no random access, streamed as before the index
    gzipped.write_bytes(gzip.compress(plain.read_bytes()))
    split = SplitConfig(train=0.6, valid=0.2, test=0.2)

    def run(ref: Path, name: str) -> tuple[pd.DataFrame, dict]:
        spec = BedInput(positives=str(bed), reference=str(ref), negatives_per_positive=2, gc_bins=5)
        report = build(BuildConfig(output_dir=str(tmp_path / name), bed=spec, window=WindowConfig(500, 500),
                                   split=split, policy=build_module.PolicyConfig()))
        return _frames(tmp_path / name), report

    streamed, streamed_report = run(gzipped, "streamed")
    assert 40 < (streamed.label == 1).sum() < 50 < (streamed.label == 0).sum()  # N-rich positives dropped
    assert streamed.sequence.str.fullmatch("[ACGTN]+").all()

    def no_streaming(*args: object, **kwargs: object) -> None:
        raise AssertionError("an indexed reference must not be read whole")

    monkeypatch.setattr(build_module, "read_sequences", no_streaming)
    for ref, name in ((plain, "plain"), (bgzipped, "bgzip")):
        frame, report = run(ref, name)
        pd.testing.assert_frame_equal(frame, streamed)
        assert report["windows"] == streamed_report["windows"]
        assert report["record_lengths"] == streamed_report["record_lengths"]
        assert report["notes"] == streamed_report["notes"]
        assert report["windows_dropped"] == streamed_report["windows_dropped"]
    assert (tmp_path / "ref.fa.fai").is_file() and (tmp_path / "ref.bgz.fa.gz.gzi").is_file()


def test_build_progress_is_logged_and_changes_no_output(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import functools

    import dnalm.data.build as build_module

    contigs, bed = _soft_masked_genome(tmp_path)
    ref = write_fasta(tmp_path / "ref.fa", contigs)
    fasta = write_fasta(tmp_path / "extra.fa", {f"x{i}": random_seq(2_000, 50 + i) for i in range(3)})

    def run(name: str) -> pd.DataFrame:
        build(BuildConfig(output_dir=str(tmp_path / name), fasta=[FastaInput(fasta, 1)],
                          bed=BedInput(positives=str(bed), reference=ref), window=WindowConfig(500, 250)))
        return _frames(tmp_path / name)

    caplog.set_level(logging.INFO, "dnalm.progress")
    logged = run("logged")
    lines = [r.getMessage() for r in caplog.records if r.name == "dnalm.progress"]
    assert lines[0].startswith("build extra: 6000 bp in ")  # no total for a stream: one line at the end
    assert lines[-1].startswith("build peaks: 50/50 intervals (100%)")
    assert any(line.startswith("build peaks: 25/50 intervals (50%)") for line in lines)  # chr1 done, then chr2
    monkeypatch.setattr(build_module, "Progress", functools.partial(build_module.Progress, terminal=True))
    pd.testing.assert_frame_equal(run("with_bar"), logged)  # the rich bar path writes the same windows


def test_window_gc_n_equals_counting_each_window(monkeypatch: pytest.MonkeyPatch) -> None:
    import dnalm.data.build as build_module

    monkeypatch.setattr(build_module, "SWEEP_BP", 997)  # many sweeps, windows straddling their ends
    seq = list(random_seq(10_000, 4, gc=0.4))
    seq[3_000:3_300] = "N" * 300
    seq = "".join(seq)
    starts = np.random.default_rng(1).integers(0, len(seq) - 150 + 1, size=2_000)
    gc, n = build_module.window_gc_n(seq, starts, 150)
    assert n.tolist() == [seq[s:s + 150].count("N") for s in starts] and n.max() == 150
    assert gc.tolist() == [build_module._gc(seq[s:s + 150]) for s in starts]  # bit for bit: same bins
