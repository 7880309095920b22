"""dnalm.generate: exact lengths, ACGTN only, reproducible under a seed, statistics; untrained heads refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from dnalm.apps.generate import generate
from dnalm.apps.inputs import write_fasta
from dnalm.data.fasta import read_fasta
from dnalm.errors import ModelLoadError
from tests.helpers import TINY_CONFIGS, char_tokenizer, random_dna
from tests.helpers.apps import app_cfg
from tests.helpers.configs import shared_path


def tiny_causal_lm(folder: Path) -> Path:
    """A tiny Mistral causal LM (random but saved, so its lm_head is 'trained') with a char tokenizer."""
    tokenizer = char_tokenizer(causal=True)
    config = AutoConfig.for_model("mistral", **TINY_CONFIGS["mistral"], vocab_size=len(tokenizer),
                                  pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                                  eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_sampling_lengths_alphabet_seed_and_stats(tmp_path: Path) -> None:
    model = tiny_causal_lm(tmp_path / "lm")
    ref = tmp_path / "ref.fa"
    write_fasta(ref, [(f"r{i}", s) for i, s in enumerate(random_dna(5, 100, seed=4))])
    runs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.fa"
        cfg = app_cfg("generate", tmp_path, f"model.name_or_path={model}", "num=5", "length=90", "prompt=acgt",
                      "temperature=0.9", "top_k=4", "top_p=0.95", "seed=3", f"output={out}", f"reference={ref}",
                      "batch_size=2")
        stats = generate(cfg)
        runs.append([s for _, s, _ in read_fasta(out)])
    assert runs[0] == runs[1]  # same seed, same sequences
    assert all(len(s) == 90 and set(s) <= set("ACGTN") for s in runs[0])
    written = json.loads((tmp_path / "b.stats.json").read_text())
    assert written == stats and 0 <= stats["gc_mean"] <= 1 and 0 <= stats["kmer4_js_distance"] <= 1
    assert stats["num"] == 5 and stats["duplicates"] == 0 and stats["stripped_chars"] == 0


def test_classifier_checkpoint_without_lm_head_is_refused(tmp_path: Path) -> None:
    model = shared_path("models", "mistral_dna_1m_hg38_tf0")
    cfg = app_cfg("generate", tmp_path, f"model.name_or_path={model}", "num=1", "length=20",
                  f"output={tmp_path / 'g.fa'}")
    with pytest.raises(ModelLoadError, match="no trained language-model head"):
        generate(cfg)
    cfg.allow_untrained_head = True
    stats = generate(cfg)  # BPE tokens: still exactly 20 bp
    assert stats["length_bp"] == 20
