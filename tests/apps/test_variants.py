"""dnalm.variants: REF=ALT controls have zero distance, real alleles do not; bad input is named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoConfig, AutoModelForMaskedLM

from dnalm.apps.inputs import write_fasta
from dnalm.apps.variants import score_variants
from dnalm.errors import DataError
from tests.helpers import TINY_CONFIGS, char_tokenizer, random_dna
from tests.helpers.apps import WINDOW, app_cfg

VCF_HEAD = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"


def _setup(tmp_path: Path, lines: list[tuple[str, int, str, str]]) -> tuple[Path, Path, str]:
    chrom = random_dna(1, 300, seed=3)[0]
    ref = tmp_path / "ref.fa"
    write_fasta(ref, [("chr1", chrom), ("chr2", "ACGT" * 10)])
    body = "".join(f"{c}\t{p}\tv{i}\t{r}\t{a}\t.\tPASS\t.\n" for i, (c, p, r, a) in enumerate(lines))
    path = tmp_path / "in.vcf"
    path.write_text(VCF_HEAD + body)
    return ref, path, chrom


def test_controls_zero_and_alleles_nonzero(gc_classifier: Path, tmp_path: Path) -> None:
    chrom = random_dna(1, 300, seed=3)[0]
    other = {"A": "C", "C": "G", "G": "T", "T": "A"}
    lines = [
        ("chr1", 150, chrom[149], chrom[149]),                              # control REF=ALT
        ("chr1", 2, chrom[1], chrom[1]),                                    # control near the start
        ("chr1", 150, chrom[149], other[chrom[149]]),                       # SNV
        ("chr1", 1, chrom[0], other[chrom[0]]),                             # SNV at the first base
        ("chr1", 300, chrom[299], f"{other[chrom[299]]},{chrom[299]}"),     # multi-allelic at the last base
        ("chr1", 100, chrom[99:104], chrom[99]),                            # deletion
        ("chr1", 200, chrom[199], chrom[199] + "GGCC"),                     # insertion
        ("chr2", 5, "A", "<DEL>"),                                          # symbolic: not scored
    ]
    ref, path, _ = _setup(tmp_path, lines)
    cfg = app_cfg("variants", tmp_path, f"ckpt_path={gc_classifier}", f"vcf={path}", f"reference={ref}",
                  f"window={WINDOW}")
    table = score_variants(cfg)
    assert len(table) == 8  # the multi-allelic record is split; the symbolic allele is left out
    control = table.ref == table.alt
    assert control.sum() == 3
    assert np.allclose(table.loc[control, ["l2", "cosine_distance", "delta_logit", "delta_prob"]], 0, atol=1e-6)
    assert (table.loc[~control, "l2"] > 1e-4).all() and (table.loc[~control, "delta_logit"].abs() > 0).all()
    assert table.kind.tolist().count("indel") == 2
    written = pd.read_csv(tmp_path / "run" / "variants.tsv", sep="\t")
    assert len(written) == 8 and {"l2", "cosine_distance", "delta_logit", "delta_prob"} <= set(written.columns)
    vcf_lines = (tmp_path / "run" / "variants.vcf").read_text().splitlines()
    assert any(line.startswith("##INFO=<ID=DNALM_L2") for line in vcf_lines)
    multi = next(line for line in vcf_lines if line.startswith("chr1\t300\t"))
    l2 = next(f for f in multi.split("\t")[7].split(";") if f.startswith("DNALM_L2="))
    values = l2.removeprefix("DNALM_L2=").split(",")
    assert len(values) == 2 and float(values[0]) > 0 and float(values[1]) == 0
    assert "DNALM_L2=." in next(line for line in vcf_lines if line.startswith("chr2\t5\t"))


def test_ref_mismatch_names_the_variant(gc_classifier: Path, tmp_path: Path) -> None:
    chrom = random_dna(1, 300, seed=3)[0]
    wrong = {"A": "C", "C": "G", "G": "T", "T": "A"}[chrom[9]]
    ref, path, _ = _setup(tmp_path, [("chr1", 10, wrong, "A")])
    cfg = app_cfg("variants", tmp_path, f"ckpt_path={gc_classifier}", f"vcf={path}", f"reference={ref}")
    with pytest.raises(DataError, match=rf"chr1:10:{wrong}>A \(v0\).*does not match"):
        score_variants(cfg)


def test_masked_lm_llr_for_snvs(tmp_path: Path) -> None:
    tokenizer = char_tokenizer()
    torch.manual_seed(0)
    config = AutoConfig.for_model("bert", **TINY_CONFIGS["bert"], vocab_size=len(tokenizer),
                                  pad_token_id=tokenizer.pad_token_id)
    folder = tmp_path / "mlm"
    AutoModelForMaskedLM.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    chrom = random_dna(1, 300, seed=3)[0]
    alt = {"A": "C", "C": "G", "G": "T", "T": "A"}[chrom[49]]
    ref, path, _ = _setup(tmp_path, [("chr1", 50, chrom[49], chrom[49]), ("chr1", 50, chrom[49], alt),
                                     ("chr1", 60, chrom[59:61], chrom[59])])
    cfg = app_cfg("variants", tmp_path, f"model.name_or_path={folder}", f"vcf={path}", f"reference={ref}",
                  "window=40", "llr=true")
    table = score_variants(cfg)
    assert table.llr.iloc[0] == 0 and np.isfinite(table.llr.iloc[1]) and table.llr.iloc[1] != 0
    assert np.isnan(table.llr.iloc[2])  # indels have no single-token LLR
    assert "delta_logit" not in table.columns  # a pretrained model has no classifier


def test_bgzip_reference_and_chr_naming(gc_classifier: Path, tmp_path: Path) -> None:
    """A bgzip reference is indexed on first use; a VCF saying ``1`` finds the reference's ``chr1``."""
    import gzip

    import pysam

    chrom = random_dna(1, 300, seed=3)[0]
    alt = {"A": "C", "C": "G", "G": "T", "T": "A"}[chrom[149]]
    plain, path, _ = _setup(tmp_path, [("1", 150, chrom[149], alt)])
    bgz = tmp_path / "ref.fa.gz"
    pysam.tabix_compress(str(plain), str(bgz))
    cfg = app_cfg("variants", tmp_path, f"ckpt_path={gc_classifier}", f"vcf={path}", f"reference={bgz}",
                  f"window={WINDOW}")
    table = score_variants(cfg)
    assert (tmp_path / "ref.fa.gz.fai").is_file() and (tmp_path / "ref.fa.gz.gzi").is_file()
    expected = score_variants(app_cfg("variants", tmp_path / "b", f"ckpt_path={gc_classifier}", f"vcf={path}",
                                      f"reference={plain}", f"window={WINDOW}"))
    assert table.l2.iloc[0] > 0 and table.l2.iloc[0] == pytest.approx(expected.l2.iloc[0], rel=1e-6)

    gz = tmp_path / "plain.fa.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    with pytest.raises(DataError, match="gzip but not bgzip.*bgzip"):
        score_variants(app_cfg("variants", tmp_path / "c", f"ckpt_path={gc_classifier}", f"vcf={path}",
                               f"reference={gz}"))


def test_no_matching_contig_is_one_clear_error(gc_classifier: Path, tmp_path: Path) -> None:
    ref, path, _ = _setup(tmp_path, [("scaffold_9", 10, "A", "C")])
    cfg = app_cfg("variants", tmp_path, f"ckpt_path={gc_classifier}", f"vcf={path}", f"reference={ref}")
    with pytest.raises(DataError, match=r"none of the contigs of .*in.vcf \(scaffold_9\) is in reference=.*chr1"):
        score_variants(cfg)


@pytest.mark.parametrize("indexed", [True, False])
def test_region_filter_and_qual_selection(gc_classifier: Path, tmp_path: Path, indexed: bool) -> None:
    """bgzip + tabix VCFs are read within the region; plain ones are filtered while streaming; same result."""
    import pysam

    chrom = random_dna(1, 300, seed=3)[0]
    other = {"A": "C", "C": "G", "G": "T", "T": "A"}
    ref = tmp_path / "ref.fa"
    write_fasta(ref, [("chr1", chrom), ("chr2", "ACGT" * 10)])
    lines = [("chr1", 50, "PASS", "40"), ("chr1", 120, "LowQual", "50"), ("chr1", 150, ".", "35"),
             ("chr1", 200, "PASS", "10"), ("chr1", 260, "PASS", "."), ("chr2", 5, "PASS", "60")]
    body = "".join(f"{c}\t{p}\tv{p}\t{chrom[p - 1] if c == 'chr1' else 'A'}\t"
                   f"{other[chrom[p - 1]] if c == 'chr1' else 'C'}\t{q}\t{f}\t.\n" for c, p, f, q in lines)
    head = ("##fileformat=VCFv4.2\n##contig=<ID=chr1,length=300>\n##contig=<ID=chr2,length=40>\n"
            '##FILTER=<ID=LowQual,Description="low">\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n')
    path = tmp_path / "in.vcf"
    path.write_text(head + body)
    if indexed:
        path = Path(pysam.tabix_index(str(path), preset="vcf", force=True))
        assert path.name == "in.vcf.gz" and Path(f"{path}.tbi").is_file()
    cfg = app_cfg("variants", tmp_path, f"ckpt_path={gc_classifier}", f"vcf={path}", f"reference={ref}",
                  f"window={WINDOW}", "region=chr1:40-255", "filter=[PASS]", "min_qual=20")
    table = score_variants(cfg)
    assert table["pos"].tolist() == [50, 150]  # 120 LowQual, 200 QUAL 10, 260 and chr2 outside the region
    out = pysam.VariantFile(str(tmp_path / "run" / "variants.vcf"))
    assert out.header.info["DNALM_L2"].number == "A" and out.header.info["DNALM_L2"].type == "Float"
    scored = {r.pos: r.info["DNALM_L2"][0] for r in out}
    assert set(scored) == {50, 150} and all(v > 0 for v in scored.values())
    with pytest.raises(DataError, match="no record of .* is selected"):
        score_variants(app_cfg("variants", tmp_path / "e", f"ckpt_path={gc_classifier}", f"vcf={path}",
                               f"reference={ref}", "region=chr2:10-20"))
