"""Poolings only look at real tokens: padding, whatever its hidden values, never changes the result."""

from __future__ import annotations

import pytest
import torch

from dnalm.errors import ConfigError
from dnalm.models.pooling import (
    AttentionPooling,
    ClsPooling,
    LastTokenPooling,
    MaxPooling,
    MeanPooling,
    build_pooling,
)

B, T, H, PAD = 3, 6, 5, 4
LENGTHS = [6, 2, 4]


def _example(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    hidden = torch.randn(B, T, H, generator=gen)
    mask = torch.zeros(B, T, dtype=torch.long)
    for row, n in enumerate(LENGTHS):
        mask[row, :n] = 1
    return hidden, mask


def _right_pad_with_garbage(hidden: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Append PAD masked positions whose hidden values are huge (and overwrite existing padding too)."""
    garbage = torch.full((B, PAD, H), 1e4)
    hidden = torch.cat([hidden, garbage], dim=1)
    mask = torch.cat([mask, torch.zeros(B, PAD, dtype=mask.dtype)], dim=1)
    hidden = torch.where(mask.bool().unsqueeze(-1), hidden, torch.full_like(hidden, -3e3))
    return hidden, mask


def _poolings() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {"cls": ClsPooling(), "mean": MeanPooling(), "max": MaxPooling(), "last": LastTokenPooling(),
            "attention": AttentionPooling(H)}


@pytest.mark.parametrize("kind", ["cls", "mean", "max", "last", "attention"])
def test_padding_garbage_does_not_change_the_output(kind: str) -> None:
    pooling = _poolings()[kind]
    hidden, mask = _example()
    clean = pooling(hidden, mask)
    padded = pooling(*_right_pad_with_garbage(hidden, mask))
    assert clean.shape == (B, H)
    torch.testing.assert_close(padded, clean)


@pytest.mark.parametrize("kind", ["mean", "max", "last", "attention"])
def test_each_row_equals_its_unpadded_self(kind: str) -> None:
    """Pooling a padded batch gives, row by row, what pooling the row alone (no padding) gives."""
    pooling = _poolings()[kind]
    hidden, mask = _right_pad_with_garbage(*_example(1))
    batch = pooling(hidden, mask)
    for row, n in enumerate(LENGTHS):
        alone = pooling(hidden[row:row + 1, :n], mask[row:row + 1, :n])
        torch.testing.assert_close(batch[row:row + 1], alone)


def test_reference_values() -> None:
    hidden, mask = _example(2)
    row, n = 1, LENGTHS[1]
    real = hidden[row, :n]
    torch.testing.assert_close(MeanPooling()(hidden, mask)[row], real.mean(0))
    torch.testing.assert_close(MaxPooling()(hidden, mask)[row], real.max(0).values)
    torch.testing.assert_close(LastTokenPooling()(hidden, mask)[row], real[-1])
    torch.testing.assert_close(ClsPooling()(hidden, mask)[row], real[0])


def test_last_token_with_left_padding() -> None:
    hidden, mask = _example(3)
    right = LastTokenPooling()(hidden, mask)
    # The same real tokens moved to the end of each row (left padding), garbage in front.
    left_hidden = torch.full_like(hidden, 7e3)
    left_mask = torch.zeros_like(mask)
    for row, n in enumerate(LENGTHS):
        left_hidden[row, T - n:] = hidden[row, :n]
        left_mask[row, T - n:] = 1
    torch.testing.assert_close(LastTokenPooling()(left_hidden, left_mask), right)
    torch.testing.assert_close(MeanPooling()(left_hidden, left_mask), MeanPooling()(hidden, mask))


def test_attention_pooling_gradients_skip_padding() -> None:
    pooling = _poolings()["attention"]
    hidden, mask = _right_pad_with_garbage(*_example(4))
    hidden.requires_grad_(True)
    pooling(hidden, mask).sum().backward()
    assert hidden.grad is not None
    assert torch.all(hidden.grad[~mask.bool()] == 0)
    assert pooling.score.weight.grad is not None and torch.isfinite(pooling.score.weight.grad).all()


def test_half_precision_max_pooling_is_mask_aware() -> None:
    hidden, mask = _right_pad_with_garbage(*_example(5))
    out = MaxPooling()(hidden.bfloat16(), mask)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), MaxPooling()(*_example(5)).bfloat16().float())


def test_build_pooling_auto_and_unknown() -> None:
    assert isinstance(build_pooling("auto", H, is_causal=True), LastTokenPooling)
    assert isinstance(build_pooling("auto", H, is_causal=False), MeanPooling)
    attention = build_pooling("attention", H, is_causal=False)
    assert isinstance(attention, AttentionPooling) and attention.score.in_features == H
    assert isinstance(build_pooling({"_target_": "dnalm.models.pooling.ClsPooling"}, H, is_causal=True), ClsPooling)
    with pytest.raises(ConfigError, match=r"head.pooling='median' is unknown.*'attention', 'auto', 'cls'"):
        build_pooling("median", H, is_causal=False)
