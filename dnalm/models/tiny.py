"""Small randomly initialised DNA LMs built from a config the package ships (demo runs and tests)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from transformers import AutoConfig, AutoModel, EsmTokenizer, PreTrainedModel, PreTrainedTokenizerBase

# Single-nucleotide vocabulary in ESM's special-token convention.
CHAR_VOCAB = ["<cls>", "<pad>", "<eos>", "<unk>", "A", "C", "G", "T", "N", "<mask>"]


def char_tokenizer() -> EsmTokenizer:
    """A single-nucleotide tokenizer (``<cls>`` + one token per base + ``<eos>``)."""
    folder = Path(tempfile.mkdtemp(prefix="dnalm-vocab-"))
    (folder / "vocab.txt").write_text("\n".join(CHAR_VOCAB) + "\n")
    return EsmTokenizer(vocab_file=str(folder / "vocab.txt"), model_max_length=10**6)


def nt_kmer_tokenizer() -> PreTrainedTokenizerBase:
    """Nucleotide Transformer's non-overlapping 6-mer tokenizer (4,107 tokens)."""
    from dnalm.tokenizers import KmerTokenizer

    return KmerTokenizer().to_hf()


TOKENIZERS = {"char": char_tokenizer, "nt_kmer": nt_kmer_tokenizer}


def build_tiny(spec: dict[str, Any]) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Build ``AutoModel`` from ``spec`` (a ``model_type`` plus its config fields).

    ``spec["tokenizer"]`` picks the vocabulary: ``char`` (single nucleotide, default) or ``nt_kmer`` (6-mers).
    """
    spec = dict(spec)
    model_type = spec.pop("model_type")
    kind = spec.pop("tokenizer", "char")
    if kind not in TOKENIZERS:
        from dnalm.errors import ConfigError

        raise ConfigError(f"model.from_config.tokenizer={kind!r}; choose one of {sorted(TOKENIZERS)}.")
    tokenizer = TOKENIZERS[kind]()
    spec.setdefault("vocab_size", len(tokenizer))
    spec.setdefault("pad_token_id", tokenizer.pad_token_id)
    config = AutoConfig.for_model(model_type, **spec)
    return AutoModel.from_config(config), tokenizer
