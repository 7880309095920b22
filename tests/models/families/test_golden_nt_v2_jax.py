"""Nucleotide Transformer v2 against InstaDeep's own JAX/Haiku code, the implementation the models were trained with.

Fixture ``nt_v2_jax`` from tools/golden/nt_v2_jax.py: the authors' ``nucleotide_transformer`` package
(github.com/instadeepai/nucleotide-transformer, commit in meta.json) run on the published-layout checkpoints of
the ``nt_v2`` (MLM) and ``nt_v2_classifier`` fixtures, with the authors' tokenizer. The two implementations
differ in one number only: the authors' Haiku LayerNorms use eps 1e-5, the hub config.json (and so InstaDeep's
PyTorch port and dnalm) says ``layer_norm_eps: 1e-12``. The comparisons below set the loaded model's LayerNorm
eps to the authors' 1e-5 and then check everything else (rotary layout, gated feed-forward halves, pre-LN
blocks, final LayerNorm, MLM head, tokenizer) at fp32, 1e-4; the last test pins the size of the eps gap.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from tests.helpers.golden import (
    Golden,
    assert_same_ids,
    assert_tokens_close,
    forward,
    golden,
    load_as_user,
)

JAX_LAYER_NORM_EPS = 1e-5  # NucleotideTransformerConfig.layer_norm_eps and Haiku's LayerNorm default
LOGIT_STRIDE = 16  # the fixture keeps logits[..., ::16]


def _authors_eps(model: nn.Module) -> nn.Module:
    for module in model.modules():
        if isinstance(module, nn.LayerNorm):
            module.eps = JAX_LAYER_NORM_EPS
    return model


def _hidden(model: nn.Module, fixture: Golden) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=fixture.expected["input_ids"],
                     attention_mask=fixture.expected["attention_mask"]).last_hidden_state


def _mlm(fixture: Golden, make_cfg: Any) -> nn.Module:
    """The checkpoint as a masked LM, loaded as ``dnalm.pretrain model=nt_v2_50m model.name_or_path=...`` does."""
    from dnalm.pretraining.models import continued

    cfg = make_cfg("model=nt_v2_50m", f"model.name_or_path={fixture.folder}", "objective=mlm",
                   config_name="pretrain")
    model, _, new = continued(cfg.model, causal=False)
    assert new == []
    return model.eval()


def test_encoder_matches_authors_jax(make_cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    fixture = golden("nt_v2_jax")
    backbone = load_as_user(fixture, "nt_v2_50m", make_cfg, monkeypatch)
    assert_same_ids(backbone, fixture)  # dnalm's tokenizer gives the authors' NucleotidesKmersTokenizer ids
    _authors_eps(backbone.model)
    for implementation in ("sdpa", "eager"):
        backbone.model.set_attn_implementation(implementation)
        assert_tokens_close(forward(backbone, fixture).last_hidden_state, fixture, "last_hidden_state")


def test_mlm_logits_match_authors_jax(make_cfg) -> None:
    fixture = golden("nt_v2_jax")
    model = _authors_eps(_mlm(fixture, make_cfg))
    with torch.no_grad():
        logits = model(input_ids=fixture.expected["input_ids"],
                       attention_mask=fixture.expected["attention_mask"]).logits
    assert_tokens_close(logits[..., ::LOGIT_STRIDE], fixture, "mlm_logits")


def test_classifier_encoder_matches_authors_jax(make_cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fine-tuned classifier's encoder (its head is transformers' ESM head, checked by nt_v2_classifier)."""
    fixture = golden("nt_v2_jax")
    classifier = golden("nt_v2_classifier")
    backbone = load_as_user(classifier, "nt_v2_50m", make_cfg, monkeypatch)
    hidden = _hidden(_authors_eps(backbone.model), fixture)
    assert_tokens_close(hidden, fixture, "classifier_last_hidden_state")


def _up_as_gate(self: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    gate, up = self.dense(hidden).chunk(2, dim=-1)
    return torch.nn.functional.silu(up) * gate


def test_comparison_catches_swapped_gate_halves(make_cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative control: gating with the second half of ``intermediate.dense`` fails the comparison."""
    from dnalm.models.families.nt_v2 import NTv2Intermediate

    fixture = golden("nt_v2_jax")
    backbone = load_as_user(fixture, "nt_v2_50m", make_cfg, monkeypatch)
    _authors_eps(backbone.model)
    monkeypatch.setattr(NTv2Intermediate, "forward", _up_as_gate)
    with pytest.raises(AssertionError):
        assert_tokens_close(forward(backbone, fixture).last_hidden_state, fixture, "last_hidden_state")


def test_published_eps_is_the_only_gap(make_cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    """At the hub config's eps 1e-12 the tiny random model departs from the authors' JAX by ~1.5e-3 (eps 1e-5
    vs 1e-12 in every LayerNorm); that gap is the whole difference: it equals dnalm(1e-12) - dnalm(1e-5)."""
    fixture = golden("nt_v2_jax")
    backbone = load_as_user(fixture, "nt_v2_50m", make_cfg, monkeypatch)
    real = fixture.real
    published = forward(backbone, fixture).last_hidden_state[real]
    aligned = _hidden(_authors_eps(backbone.model), fixture)[real]
    expected = fixture.expected["last_hidden_state"][real]
    gap = (published - expected).abs().max().item()
    assert 1e-4 < gap < 5e-3  # pins the size of the eps effect on this fixture
    torch.testing.assert_close(published - expected, published - aligned, atol=1e-5, rtol=0)
