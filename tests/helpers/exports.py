"""Tiny fine-tuned runs and the export/predict round trips that the export tests share."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tests.helpers import random_dna, save_tiny_model
from tests.helpers.apps import app_cfg
from tests.helpers.configs import train_tiny

SEQS = random_dna(6, [30, 45, 60, 38, 52, 41], seed=3)


def train_native_lora_run(root: Path) -> Path:
    """A tiny ESM classifier trained with its own head (``head=native``) and LoRA: the best checkpoint."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    plain = save_tiny_model(root / "plain", "esm")
    # head=native trains a classifier's own head: start from a classifier folder (its head freshly drawn)
    base = root / "base"
    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_pretrained(plain, num_labels=2).save_pretrained(base)
    AutoTokenizer.from_pretrained(plain).save_pretrained(base)
    metrics = train_tiny(root, "model=hf", f"model.name_or_path={base}", "head=native", "strategy=lora",
                         "model.max_tokens=128", "optim.lr=5e-3")
    return Path(metrics["best_checkpoint"])


def train_pooled_run(root: Path) -> Path:
    """The tiny default model with dnalm's max pooling + linear head, trained in full."""
    return Path(train_tiny(root, "model.max_tokens=128")["best_checkpoint"])


def predict_probs(tmp_path: Path, *overrides: str) -> np.ndarray:
    """``dnalm.predict`` probabilities of SEQS (rows in input order)."""
    from dnalm.predict import predict

    tmp_path.mkdir(parents=True, exist_ok=True)
    fasta = tmp_path / "seqs.fa"
    fasta.write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(SEQS)))
    cfg = app_cfg("predict", tmp_path, f"input={fasta}", f"output={tmp_path / 'p.csv'}", "trainer.accelerator=cpu",
                  "logger=none", *overrides)
    frame = predict(cfg)
    return frame[["prob_0", "prob_1"]].to_numpy()


def export_to(tmp_path: Path, ckpt: Path, *overrides: str) -> Path:
    """``dnalm.export`` of ``ckpt`` into ``tmp_path / "exported"``."""
    from dnalm.apps.export import export

    out = tmp_path / "exported"
    export(app_cfg("export", tmp_path, f"ckpt_path={ckpt}", f"output={out}", *overrides))
    return out


def transformers_probs(folder: Path) -> np.ndarray:
    """Probabilities plain transformers gives for SEQS from an exported folder."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    rows = []
    with torch.no_grad():
        for seq in SEQS:  # one at a time: no padding question
            rows.append(torch.softmax(model(**tokenizer(seq, return_tensors="pt")).logits, -1)[0].numpy())
    return np.stack(rows)
