"""Language-modelling objectives: what the model sees and what it is asked to predict.

``objective=mlm`` masks tokens as BERT, DNABERT, NT and GENA-LM were trained: a fraction ``probability`` of the
real (non-special) tokens is chosen; of those, 80 % become the mask token, 10 % a random token, 10 % stay; the
loss is taken only there. For overlapping k-mer tokenizers (DNABERT) a token shares k-1 bases with each
neighbour, so a lone masked k-mer could be read off its neighbours: choices are widened to spans of ``span``
consecutive tokens (default: k), as DNABERT's pre-training did.

``objective=clm`` predicts every next token; labels are the inputs with padding ignored (the model shifts).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

IGNORE = -100


@dataclass
class MaskedLM:
    """BERT masking (80 % mask token / 10 % random / 10 % unchanged) over spans of ``span`` tokens."""

    name: str = "mlm"
    probability: float = 0.15
    mask_ratio: float = 0.8
    random_ratio: float = 0.1
    # null: k for overlapping k-mer tokenizers, 1 otherwise
    span: int | None = None
    causal: bool = False

    def __call__(self, input_ids: torch.Tensor, maskable: torch.Tensor, mask_token_id: int, vocab_size: int,
                 generator: torch.Generator | None = None, span: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """``(inputs, labels)``: ``maskable`` marks real, non-special tokens; labels are -100 elsewhere."""
        if mask_token_id is None:
            raise ValueError("objective=mlm needs a tokenizer with a mask token")
        width = max(1, int(self.span or span))
        # Choose span starts so that about `probability` of the tokens end up covered.
        start_p = self.probability / width
        starts = (torch.rand(input_ids.shape, generator=generator) < start_p) & maskable
        # at least one span per row that has a maskable token, so no row is dropped from the loss
        empty = ~starts.any(1) & maskable.any(1)
        if empty.any():
            scores = torch.rand(input_ids.shape, generator=generator).masked_fill(~maskable, -1.0)
            starts[empty, scores[empty].argmax(1)] = True
        chosen = starts.clone()
        for shift in range(1, width):
            chosen[:, shift:] |= starts[:, :-shift]
        chosen &= maskable
        labels = input_ids.masked_fill(~chosen, IGNORE)
        inputs = input_ids.clone()
        draw = torch.rand(input_ids.shape, generator=generator)
        to_mask = chosen & (draw < self.mask_ratio)
        to_random = chosen & (draw >= self.mask_ratio) & (draw < self.mask_ratio + self.random_ratio)
        inputs[to_mask] = mask_token_id
        random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator)
        inputs[to_random] = random_ids[to_random]
        return inputs, labels


@dataclass
class CausalLM:
    """Next-token prediction over every real token."""

    name: str = "clm"
    causal: bool = True

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(inputs, labels)``: labels are the inputs with padding set to -100 (the model shifts them)."""
        return input_ids, input_ids.masked_fill(attention_mask == 0, IGNORE)
