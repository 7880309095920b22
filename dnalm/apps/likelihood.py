"""Sequence log-likelihoods under a causal DNA language model (perplexity of a set, variant log-likelihood ratios)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase


@torch.inference_mode()
def log_likelihoods(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, sequences: Sequence[str],
                    batch_size: int = 32, max_tokens: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per sequence: summed ``log P(token | earlier tokens)`` (natural log) and the number of predicted tokens.

    The first token (the tokenizer's start token, or the first base) is conditioned on, not predicted. Sequences
    longer than ``max_tokens`` (default: the model's position limit) are truncated.
    """
    device = next(model.parameters()).device
    limit = max_tokens or getattr(model.config, "max_position_embeddings", None)
    totals = np.zeros(len(sequences), dtype=np.float64)
    counts = np.zeros(len(sequences), dtype=np.int64)
    model.eval()
    for first in range(0, len(sequences), batch_size):
        chunk = list(sequences[first:first + batch_size])
        enc = tokenizer(chunk, return_tensors="pt", padding=True, truncation=limit is not None,
                        max_length=limit)
        ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        logp = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
        real = mask[:, 1:].bool() & mask[:, :-1].bool()
        totals[first:first + len(chunk)] = (logp * real).sum(1).cpu().numpy()
        counts[first:first + len(chunk)] = real.sum(1).cpu().numpy()
    return totals, counts


def perplexity(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, sequences: Sequence[str],
               batch_size: int = 32) -> float:
    """Token-weighted perplexity of a set of sequences."""
    totals, counts = log_likelihoods(model, tokenizer, sequences, batch_size)
    return float(np.exp(-totals.sum() / max(1, counts.sum())))
