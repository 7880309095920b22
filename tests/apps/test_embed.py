"""dnalm.embed: pretrained model or checkpoint -> .npy + ids or parquet, in input order, layer and pooling chosen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from dnalm.apps.embed import embed
from dnalm.apps.inputs import write_fasta
from tests.helpers import load_tiny, random_dna, save_tiny_model
from tests.helpers.apps import app_cfg
from tests.helpers.configs import shared_path


def test_fasta_to_npy_matches_direct_forward(tmp_path: Path) -> None:
    folder = save_tiny_model(tmp_path / "bert", "bert")
    seqs = random_dna(7, [30, 5, 50, 12, 50, 8, 200], seed=1)  # 200 bp > 64 tokens: windows averaged
    fasta = tmp_path / "in.fa"
    write_fasta(fasta, [(f"s{i}", s) for i, s in enumerate(seqs)])
    out = tmp_path / "emb.npy"
    cfg = app_cfg("embed", tmp_path, f"model.name_or_path={folder}", f"input={fasta}", f"output={out}",
                  "layer=1", "pooling=mean", "batch_size=3")
    summary = embed(cfg)
    matrix = np.load(out)
    assert matrix.shape == (7, 16) and summary["layer"] == 1
    assert (tmp_path / "emb.ids.txt").read_text().split() == [f"s{i}" for i in range(7)]
    backbone = load_tiny(folder)
    with torch.no_grad():
        enc = backbone.tokenizer([seqs[2]], return_tensors="pt")
        hidden = backbone.model(**enc, output_hidden_states=True).hidden_states[1]
    np.testing.assert_allclose(matrix[2], hidden.mean(1)[0].numpy(), atol=1e-5)
    assert not np.allclose(matrix[0], matrix[1])


def test_real_model_table_to_parquet(tmp_path: Path) -> None:
    model = shared_path("models", "mistral_dna_1m_hg38_tf0")
    table = tmp_path / "in.csv"
    pd.DataFrame({"name": ["a", "b", "c"], "sequence": random_dna(3, [80, 300, 40], seed=2)}).to_csv(table, index=False)
    out = tmp_path / "emb.parquet"
    cfg = app_cfg("embed", tmp_path, f"model.name_or_path={model}", f"input={table}", f"output={out}",
                  "data.id_column=name")
    embed(cfg)
    frame = pd.read_parquet(out)
    assert frame.id.tolist() == ["a", "b", "c"] and frame.shape == (3, 65)
    assert np.isfinite(frame.drop(columns="id").to_numpy()).all()
