"""Shared test utilities: tiny Hugging Face models + tokenizers saved to a folder, small table datasets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from omegaconf import OmegaConf
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import AutoConfig, AutoModel, PreTrainedTokenizerFast

from dnalm.models.backbone import Backbone, load_backbone
from dnalm.models.module import DNALMModule
from dnalm.strategies.base import Strategy
from dnalm.tasks import BinaryTask, Task

BASES = ["A", "C", "G", "T", "N"]
ENCODER_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
DECODER_SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]

# Small sizes per architecture (hidden 16-32, 2 layers): each forward+backward takes milliseconds.
_COMMON = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32,
           "max_position_embeddings": 64}
TINY_CONFIGS: dict[str, dict[str, Any]] = {
    "esm": {**_COMMON, "position_embedding_type": "rotary", "emb_layer_norm_before": False, "token_dropout": False},
    "bert": {**_COMMON},
    "big_bird": {**_COMMON, "attention_type": "original_full", "max_position_embeddings": 128},
    "modernbert": {**_COMMON, "global_attn_every_n_layers": 1, "local_attention": 16},
    "mistral": {**_COMMON, "num_key_value_heads": 1, "head_dim": 8},
    "mixtral": {**_COMMON, "num_key_value_heads": 1, "head_dim": 8, "num_local_experts": 2,
                "num_experts_per_tok": 1},
    "llama": {**_COMMON, "num_key_value_heads": 1, "head_dim": 8},
}
ENCODERS = ("esm", "bert", "big_bird", "modernbert")
DECODERS = ("mistral", "mixtral", "llama")


def char_tokenizer(causal: bool = False, extra_tokens: int = 0) -> PreTrainedTokenizerFast:
    """A single-nucleotide ``PreTrainedTokenizerFast`` (word-level over single letters).

    Encoders wrap sequences as ``[CLS] ... [SEP]``; decoders prepend ``<s>`` like Llama-family tokenizers.
    ``extra_tokens`` pads the vocabulary with dummy words (to make it larger than a model's embeddings).
    """
    specials = DECODER_SPECIALS if causal else ENCODER_SPECIALS
    words = specials + BASES + [f"<extra_{i}>" for i in range(extra_tokens)]
    vocab = {word: i for i, word in enumerate(words)}
    unk = specials[1]
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=unk))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    backend.decoder = decoders.Fuse()
    if causal:
        backend.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", vocab["<s>"])])
        return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>",
                                       bos_token="<s>", eos_token="</s>", model_max_length=10**6)
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                   model_max_length=10**6)


def save_tiny_model(folder: Path, model_type: str, vocab_size: int | None = None, extra_tokens: int = 0,
                    **overrides: Any) -> Path:
    """Build a randomly initialised tiny ``model_type`` with a matching char tokenizer and save both to ``folder``.

    ``vocab_size`` defaults to the tokenizer's size; give a smaller one to build a mismatched pair.
    """
    causal = model_type in DECODERS
    tokenizer = char_tokenizer(causal=causal, extra_tokens=extra_tokens)
    fields = {**TINY_CONFIGS[model_type], **overrides}
    fields.setdefault("vocab_size", vocab_size or len(tokenizer))
    fields["pad_token_id"] = tokenizer.pad_token_id
    if causal:
        fields["bos_token_id"], fields["eos_token_id"] = tokenizer.bos_token_id, tokenizer.eos_token_id
    elif model_type == "modernbert":
        fields["cls_token_id"], fields["sep_token_id"] = tokenizer.cls_token_id, tokenizer.sep_token_id
        fields["bos_token_id"], fields["eos_token_id"] = tokenizer.cls_token_id, tokenizer.sep_token_id
    torch.manual_seed(0)
    model = AutoModel.from_config(AutoConfig.for_model(model_type, **fields))
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def hf_model_cfg(path: Path | str, **extra: Any) -> Any:
    """A ``model=hf``-shaped config pointing at a local folder."""
    base = {"name": "tinyhf", "name_or_path": str(path), "revision": None, "tokenizer": None,
            "trust_remote_code": False, "dtype": None, "max_tokens": None, "gradient_checkpointing": False,
            "lora_target_modules": None, "base_model": None}
    return OmegaConf.create({**base, **extra})


def head_cfg(pooling: str = "auto", kind: str = "linear", dropout: float = 0.0) -> Any:
    """A head config as in ``conf/head/linear.yaml`` (``kind=mlp``: ``mlp.yaml``); pooling by its short name."""
    extra = {"mlp_hidden": 8} if kind == "mlp" else {}
    return OmegaConf.create({"_target_": f"dnalm.models.heads.{'MLPHead' if kind == 'mlp' else 'LinearHead'}",
                             "_partial_": True, "pooling": pooling, "dropout": dropout, **extra, "lr": None,
                             "native": False})


def optim_cfg() -> Any:
    """An AdamW config as in ``conf/optim/adamw.yaml``, with the constant schedule by its short name."""
    return OmegaConf.create({"_target_": "torch.optim.AdamW", "_partial_": True, "lr": 1e-3, "weight_decay": 0.01,
                             "scheduler": "constant", "warmup_ratio": 0.0})


def make_module(backbone: Backbone, strategy: Strategy, task: Task | None = None,
                pooling: str = "auto") -> DNALMModule:
    """A ``DNALMModule`` over ``backbone`` with a linear head (binary task unless given)."""
    return DNALMModule(backbone, task or BinaryTask(2, ["0", "1"]), strategy, head_cfg(pooling), optim_cfg())


def load_tiny(folder: Path, **extra: Any) -> Backbone:
    """``load_backbone`` of a saved tiny model folder."""
    return load_backbone(hf_model_cfg(folder, **extra))


def token_batch(tokenizer: Any, sequences: Sequence[str], targets: Sequence[Any] | None = None) -> dict[str, torch.Tensor]:
    """A right-padded batch in the collator's format (``index`` and ``group`` are row numbers)."""
    enc = tokenizer(list(sequences), padding=True, return_tensors="pt")
    n = len(sequences)
    target = torch.tensor(list(targets) if targets is not None else [i % 2 for i in range(n)])
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "target": target,
            "group": torch.arange(n), "index": torch.arange(n)}


def random_dna(n: int, length: int | Sequence[int], seed: int = 0) -> list[str]:
    """``n`` random ACGT sequences (one length for all, or one per sequence)."""
    rng = np.random.default_rng(seed)
    lengths = [length] * n if isinstance(length, int) else list(length)
    return ["".join(rng.choice(list("ACGT"), size=k)) for k in lengths]


def write_table(folder: Path, split: str, frame: pd.DataFrame, suffix: str = ".csv") -> Path:
    """Write ``frame`` as ``folder/<split><suffix>`` (csv, tsv, parquet; ``.gz`` compresses csv/tsv)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{split}{suffix}"
    name = suffix.removesuffix(".gz")
    if name == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, sep="\t" if name == ".tsv" else ",", index=False)
    return path


def labelled_frame(n: int, length: int = 24, seed: int = 0, labels: Sequence[Any] | None = None) -> pd.DataFrame:
    """``n`` random sequences with alternating 0/1 labels (or the labels given)."""
    return pd.DataFrame({"sequence": random_dna(n, length, seed),
                         "label": list(labels) if labels is not None else [i % 2 for i in range(n)]})
