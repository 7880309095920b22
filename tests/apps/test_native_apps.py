"""Applications over a published-layout classifier (``head=native``): variants, embed and scan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

from dnalm.apps.inputs import write_fasta
from dnalm.errors import DataError
from tests.helpers import random_dna
from tests.helpers.apps import app_cfg
from tests.helpers.exports import export_to

WINDOW = 40


@pytest.fixture(scope="module")
def hf_classifier(native_lora_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    """A transformers ``EsmForSequenceClassification`` folder (the exported LoRA run, merged)."""
    return export_to(tmp_path_factory.mktemp("hf_classifier"), native_lora_run)


def _hf(folder: Path, sequences: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Plain transformers: class probabilities and mean-pooled last hidden states, one sequence at a time."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    classifier = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    probs, embeddings = [], []
    with torch.no_grad():
        for seq in sequences:
            enc = tokenizer(seq, return_tensors="pt")
            out = classifier(**enc, output_hidden_states=True)
            probs.append(torch.softmax(out.logits, -1)[0].numpy())
            embeddings.append(out.hidden_states[-1][0].mean(0).numpy())
    return np.stack(probs), np.stack(embeddings)


def test_variants_with_a_native_classifier_match_plain_transformers(hf_classifier: Path, tmp_path: Path) -> None:
    from dnalm.apps.variants import score_variants

    chrom = random_dna(1, 200, seed=5)[0]
    other = {"A": "C", "C": "G", "G": "T", "T": "A"}
    ref = tmp_path / "ref.fa"
    write_fasta(ref, [("chr1", chrom)])
    positions = [30, 100, 170]
    vcf = tmp_path / "in.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n" + "".join(
        f"chr1\t{p}\tv{p}\t{chrom[p - 1]}\t{other[chrom[p - 1]]}\t.\tPASS\t.\n" for p in positions))
    cfg = app_cfg("variants", tmp_path, "model=hf", f"model.name_or_path={hf_classifier}", "head=native",
                  f"vcf={vcf}", f"reference={ref}", f"window={WINDOW}", "device=cpu")
    table = score_variants(cfg)
    ref_windows, alt_windows = [], []
    for p, start in zip(positions, table["window_start"]):
        window = chrom[start:start + WINDOW]
        ref_windows.append(window)
        offset = p - 1 - start
        alt_windows.append(window[:offset] + other[chrom[p - 1]] + window[offset + 1:])
    p_ref, e_ref = _hf(hf_classifier, ref_windows)
    p_alt, e_alt = _hf(hf_classifier, alt_windows)
    np.testing.assert_allclose(table["ref_prob"], p_ref[:, 1], atol=1e-5)
    np.testing.assert_allclose(table["delta_prob"], p_alt[:, 1] - p_ref[:, 1], atol=1e-5)
    assert (table["delta_prob"].abs() > 1e-7).all()
    np.testing.assert_allclose(table["l2"], np.linalg.norm(e_ref - e_alt, axis=1), rtol=1e-4, atol=1e-6)


def test_embed_with_a_native_classifier_pools_its_backbone(hf_classifier: Path, tmp_path: Path) -> None:
    from dnalm.apps.embed import embed

    seqs = random_dna(3, [30, 44, 37], seed=9)
    fasta = tmp_path / "in.fa"
    write_fasta(fasta, [(f"s{i}", s) for i, s in enumerate(seqs)])
    out = tmp_path / "e.npy"
    summary = embed(app_cfg("embed", tmp_path, "model=hf", f"model.name_or_path={hf_classifier}", "head=native",
                            f"input={fasta}", f"output={out}", "pooling=mean", "device=cpu"))
    assert summary["pooling"] == "MeanPooling"
    _, expected = _hf(hf_classifier, seqs)
    np.testing.assert_allclose(np.load(out), expected, rtol=1e-4, atol=1e-5)
    base = AutoModel.from_pretrained(hf_classifier)  # the classifier's backbone, not a random model
    assert base.config.hidden_size == expected.shape[1]


def test_scan_of_an_empty_fasta_is_an_error(hf_classifier: Path, tmp_path: Path) -> None:
    from dnalm.apps.scan import scan

    genome = tmp_path / "empty.fa"
    genome.write_text("")
    cfg = app_cfg("scan", tmp_path, "model=hf", f"model.name_or_path={hf_classifier}", "head=native",
                  f"genome={genome}", "window=40", "stride=40", "device=cpu")
    with pytest.raises(DataError, match="holds no FASTA records"):
        scan(cfg)
    assert not list((tmp_path / "run").glob("*.bedGraph"))
