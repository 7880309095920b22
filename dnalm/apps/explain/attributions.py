"""Gradient attributions on the token embeddings (captum), mapped back to one score per base.

- ``ig``: Integrated Gradients (``captum.attr.LayerIntegratedGradients``) from a baseline to the sequence, on
  the output of the input-embedding layer. Completeness: the per-base scores sum to
  score(sequence) - score(baseline) up to the integration error, which is reported as ``delta``.
- ``gxi``: gradient x input (``captum.attr.LayerGradientXActivation``): the gradient of the score times the
  token embedding, summed over the hidden dimension (a baseline-free first-order view).

Baselines replace every sequence token by one token, keeping special tokens and the token count (so the
model sees the same positions): ``pad`` (the pad token), ``n`` (the ``N`` token, or unknown where the
vocabulary has no ``N``), ``mask`` (the mask token), ``shuffled`` (the sequence's own tokens in a random
order, seeded). The path end point uses the sequence's own ids for everything but the embeddings (a head that
finds the last real token from the ids keeps finding it).

A token's score is spread evenly over the bases of its span (tokenizer offsets), so per-base scores keep the
total; a base covered by several tokens (overlapping k-mers) gets the sum of their shares.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from dnalm.errors import ConfigError
from dnalm.tokenizers import DNATokenizer, as_dna_tokenizer, pad

METHODS = ("ig", "gxi")
BASELINES = ("pad", "n", "mask", "shuffled")


def tokens_to_bases(token_scores: np.ndarray, offsets: np.ndarray, length: int) -> np.ndarray:
    """``[length]`` per-base scores: each token's score shared evenly over its ``[start, end)`` span.

    Special tokens (empty spans) carry no bases; their score (0 for a baseline that keeps them) is dropped.
    """
    spans = offsets[:, 1] - offsets[:, 0]
    real = spans > 0
    share = np.asarray(token_scores, dtype=np.float64)[real] / spans[real]
    edges = np.zeros(length + 1, dtype=np.float64)
    np.add.at(edges, offsets[real, 0], share)
    np.add.at(edges, offsets[real, 1], -share)
    return np.cumsum(edges)[:length]


@dataclass(frozen=True)
class Encoded:
    """Token ids, offsets and which tokens are sequence tokens, for one sequence."""

    ids: np.ndarray
    offsets: np.ndarray

    @property
    def content(self) -> np.ndarray:
        """Mask of tokens that cover bases (not special tokens)."""
        return (self.offsets[:, 1] - self.offsets[:, 0]) > 0


def baseline_ids(encoded: Encoded, kind: str, tokenizer: DNATokenizer, rng: np.random.Generator) -> np.ndarray:
    """The baseline token ids of one sequence (see the module docstring)."""
    ids = encoded.ids.copy()
    content = encoded.content
    if kind == "shuffled":
        ids[content] = rng.permutation(ids[content])
        return ids
    if kind == "pad":
        token = tokenizer.pad_token_id
    elif kind == "mask":
        token = tokenizer.mask_token_id
    elif kind == "n":
        token = tokenizer.vocab.get("N", tokenizer.unk_token_id)
    else:
        raise ConfigError(f"baseline={kind!r}; choose one of {list(BASELINES)}.")
    if token is None:
        raise ConfigError(f"baseline={kind}: this tokenizer has no such token; choose another of {list(BASELINES)}.")
    ids[content] = token
    return ids


@contextlib.contextmanager
def replaced_embeddings(layer: nn.Module, values: torch.Tensor) -> Iterator[None]:
    """Run the model with ``layer``'s output replaced by ``values`` (the path end point of a baseline)."""
    handle = layer.register_forward_hook(lambda module, args, output: values.to(output.dtype))
    try:
        yield
    finally:
        handle.remove()


@dataclass
class Attributor:
    """Per-base gradient attributions of a scalar score for whole sequences that fit the model's context."""

    model: nn.Module  # called as model(input_ids, attention_mask) -> [B, C] logits
    embedding: nn.Module  # the input-embedding layer
    tokenizer: object
    score: Callable[[torch.Tensor], torch.Tensor]  # [B, C] logits -> [B] scores
    device: torch.device
    max_tokens: int | None = None
    steps: int = 32
    baseline: str = "pad"
    internal_batch_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        self.dna_tokenizer = as_dna_tokenizer(self.tokenizer)
        if self.baseline not in BASELINES:
            raise ConfigError(f"ig.baseline={self.baseline!r}; choose one of {list(BASELINES)}.")
        self.rng = np.random.default_rng(self.seed)
        pad_id = self.dna_tokenizer.pad_token_id
        self.pad_id = 0 if pad_id is None else pad_id

    def _forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.score(self.model(input_ids, attention_mask))

    def encode(self, sequences: Sequence[str]) -> list[Encoded]:
        """Ids and base-pair offsets; refuses sequences longer than the model's context."""
        out = self.dna_tokenizer(list(sequences), return_offsets=True)
        encoded = [Encoded(ids, offsets) for ids, offsets in zip(out["input_ids"], out["offsets"], strict=True)]
        for seq, enc in zip(sequences, encoded, strict=True):
            if self.max_tokens and len(enc.ids) > self.max_tokens:
                raise ConfigError(f"a {len(seq)} bp sequence is {len(enc.ids)} tokens, over the model's "
                                  f"{self.max_tokens}: gradient attributions need the whole sequence in one window; "
                                  "cut the input into windows (or use methods=[ism] with positions=start:end).")
        return encoded

    def attribute(self, sequences: Sequence[str], method: str) -> tuple[list[np.ndarray], np.ndarray]:
        """Per-base scores of each sequence and, for ``ig``, the completeness error per sequence (else NaN)."""
        from captum.attr import LayerGradientXActivation, LayerIntegratedGradients

        if method not in METHODS:
            raise ConfigError(f"method {method!r}; gradient methods are {list(METHODS)}.")
        encoded = self.encode(sequences)
        ids, mask = pad([e.ids for e in encoded], self.pad_id)
        ids, mask = ids.to(self.device), mask.to(self.device)
        self.model.eval()
        if method == "ig":
            base, _ = pad([baseline_ids(e, self.baseline, self.dna_tokenizer, self.rng) for e in encoded], self.pad_id)
            base = base.to(self.device)
            explainer = LayerIntegratedGradients(self._forward, self.embedding)
            attr = explainer.attribute(ids, baselines=base, additional_forward_args=(mask,), n_steps=self.steps,
                                       internal_batch_size=self.internal_batch_size)
        else:
            explainer = LayerGradientXActivation(self._forward, self.embedding)
            attr = explainer.attribute(ids, additional_forward_args=(mask,))
        token_scores = (attr.float().sum(-1) * mask).detach().cpu().numpy()
        per_base = [tokens_to_bases(token_scores[i, :len(e.ids)], e.offsets, len(seq))
                    for i, (e, seq) in enumerate(zip(encoded, sequences, strict=True))]
        delta = np.full(len(sequences), np.nan)
        if method == "ig":
            with torch.no_grad():
                full = self._forward(ids, mask).double().cpu().numpy()
                with replaced_embeddings(self.embedding, self.embedding(base)):
                    start = self._forward(ids, mask).double().cpu().numpy()
            delta = np.array([p.sum() for p in per_base]) - (full - start)
        return per_base, delta
