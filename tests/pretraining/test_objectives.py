"""Masked and causal LM objectives: who is masked, how, and where the loss is taken."""

from __future__ import annotations

import torch

from dnalm.pretraining.module import lm_token_losses
from dnalm.pretraining.objectives import IGNORE, CausalLM, MaskedLM

MASK, VOCAB = 4, 50


def _batch(rows: int = 64, width: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(10, VOCAB, (rows, width), generator=torch.Generator().manual_seed(0))
    maskable = torch.ones_like(ids, dtype=torch.bool)
    ids[:, 0] = 1  # a special token in front
    maskable[:, 0] = False
    maskable[: rows // 2, width // 2:] = False  # padding of half the rows
    return ids, maskable


def test_bert_masking_rates_and_labels_only_at_chosen_tokens() -> None:
    ids, maskable = _batch()
    inputs, labels = MaskedLM(probability=0.15)(ids, maskable, MASK, VOCAB, torch.Generator().manual_seed(1))
    chosen = labels != IGNORE
    assert not (chosen & ~maskable).any()  # never a special token or padding
    assert torch.equal(labels[chosen], ids[chosen])  # the original token is the target
    assert torch.equal(inputs[~chosen], ids[~chosen])  # everything else is left alone
    rate = chosen.sum().item() / maskable.sum().item()
    assert 0.13 < rate < 0.17
    as_mask = (inputs[chosen] == MASK).float().mean().item()
    unchanged = (inputs[chosen] == ids[chosen]).float().mean().item()
    assert 0.76 < as_mask < 0.84
    assert 0.07 < unchanged < 0.14  # 10 % kept, plus random draws that hit the same token


def test_overlapping_kmer_masking_covers_whole_spans() -> None:
    ids, maskable = _batch()
    _, labels = MaskedLM(probability=0.15)(ids, maskable, MASK, VOCAB, torch.Generator().manual_seed(2), span=6)
    chosen = (labels != IGNORE).int()
    rate = chosen.sum().item() / maskable.sum().item()
    assert 0.10 < rate < 0.17  # span starts at p/k: overlaps make it slightly lower
    for row, allowed in zip(chosen, maskable):
        runs = torch.diff(torch.cat([torch.tensor([0]), row, torch.tensor([0])])).nonzero().flatten()
        for start, end in zip(runs[::2].tolist(), runs[1::2].tolist()):
            touches_edge = start == 1 or end == int(allowed.sum()) + 1 or not bool(allowed[min(end, len(row) - 1)])
            # a masked 6-mer cannot be read off its neighbours: runs are at least 6 long unless cut by an edge
            assert end - start >= 6 or touches_edge


def test_every_row_with_real_tokens_gets_a_target() -> None:
    ids = torch.randint(10, VOCAB, (200, 3))
    maskable = torch.ones_like(ids, dtype=torch.bool)
    _, labels = MaskedLM(probability=0.01)(ids, maskable, MASK, VOCAB, torch.Generator().manual_seed(3))
    assert ((labels != IGNORE).sum(1) >= 1).all()


def test_causal_labels_ignore_padding_and_the_loss_is_shifted() -> None:
    ids = torch.tensor([[5, 6, 7, 0], [5, 6, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    inputs, labels = CausalLM()(ids, mask)
    assert torch.equal(inputs, ids)
    assert labels.tolist() == [[5, 6, 7, IGNORE], [5, 6, IGNORE, IGNORE]]
    # logits that predict the next token perfectly give zero loss only when shifted
    logits = torch.full((2, 4, 10), -30.0)
    for b in range(2):
        for t in range(3):
            logits[b, t, ids[b, t + 1]] = 30.0
    total, count, correct = lm_token_losses(logits, labels, causal=True)
    assert count.item() == 3 and correct.item() == 3 and total.item() < 1e-6
    total_unshifted, _, _ = lm_token_losses(logits, labels, causal=False)
    assert total_unshifted.item() > 10


def test_causal_loss_equals_the_loss_transformers_computes() -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=12, hidden_size=16, intermediate_size=16, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2)).eval()
    ids = torch.randint(3, 12, (3, 7))
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    _, labels = CausalLM()(ids, mask)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
    total, count, _ = lm_token_losses(out.logits, labels, causal=True)
    assert count.item() == 3 * 6 - 2  # every real token but each row's first, padding skipped
    assert torch.allclose(total / count, out.loss, atol=1e-6)
