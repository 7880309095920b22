"""Nucleotide Transformer v2 (encoder and fine-tuned classifier) against InstaDeep's ESM variant.

Fixtures from tools/golden/nt_v2.py: transformers 4.30.2's ESM modelling code with NT v2's gated, bias-free
feed-forward (see its meta.json), loaded by the zoo name as a user loads a download.
"""

from __future__ import annotations

import pytest
import torch

from tests.helpers.golden import (
    assert_close,
    assert_same_ids,
    assert_tokens_close,
    forward,
    golden,
    load_as_user,
)


def test_nt_v2_encoder_matches(make_cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    fixture = golden("nt_v2")
    backbone = load_as_user(fixture, "nt_v2_50m", make_cfg, monkeypatch)
    assert_same_ids(backbone, fixture)
    for implementation in ("sdpa", "eager"):
        backbone.model.set_attn_implementation(implementation)
        assert_tokens_close(forward(backbone, fixture).last_hidden_state, fixture, "last_hidden_state")


def test_nt_v2_classifier_matches(make_cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    fixture = golden("nt_v2_classifier")
    backbone = load_as_user(fixture, "nt_v2_50m", make_cfg, monkeypatch, "head=native")
    assert_same_ids(backbone, fixture)
    assert_close(forward(backbone, fixture).logits, fixture, "logits")


def _interleaved_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """GPT-J layout: pairs (2i, 2i + 1) instead of NT's (i, i + d/2)."""
    width = cos.shape[-1]
    rot = x[..., :width]
    even, odd = rot[..., 0::2], rot[..., 1::2]
    c, s = cos[..., : width // 2], sin[..., : width // 2]
    out = torch.stack((even * c - odd * s, odd * c + even * s), dim=-1).flatten(-2)
    return torch.cat((out, x[..., width:]), dim=-1)


def test_comparison_catches_a_swapped_rotary_layout(make_cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative control: rotating interleaved pairs (same angles, other layout) fails the comparison."""
    import dnalm.models.families.nt_v2 as nt_v2

    fixture = golden("nt_v2")
    backbone = load_as_user(fixture, "nt_v2_50m", make_cfg, monkeypatch)
    monkeypatch.setattr(nt_v2, "apply_rotary", _interleaved_rotary)
    with pytest.raises(AssertionError):
        assert_tokens_close(forward(backbone, fixture).last_hidden_state, fixture, "last_hidden_state")
