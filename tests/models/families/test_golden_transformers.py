"""Zoo families that plain transformers implements, against the transformers version of their time.

Fixtures from tools/golden/transformers_families.py: NT v1 (EsmForMaskedLM), DNABERT-6 (BertForMaskedLM) and
GENA BigBird (BigBirdForPreTraining, block-sparse) under transformers 4.30.2; Mistral-DNA (MixtralForCausalLM
and a fine-tuned MixtralForSequenceClassification) under 4.47.1, the version the shared real models were saved
with. Each loads by its zoo name as a user would.
"""

from __future__ import annotations

import pytest

from tests.helpers.golden import (
    assert_close,
    assert_same_ids,
    assert_tokens_close,
    forward,
    golden,
    load_as_user,
)

ENCODERS = {  # fixture -> zoo name
    "nt_v1": "nt_500m_human_ref",
    "dnabert_6": "dnabert_6",
    "gena_bigbird_base_t2t": "gena_bigbird_base_t2t",
    "mistral_dna": "mistral_dna_1m_hg38",
}


@pytest.mark.parametrize("fixture_name", sorted(ENCODERS))
def test_encoder_matches_reference_transformers(fixture_name: str, make_cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    fixture = golden(fixture_name)
    backbone = load_as_user(fixture, ENCODERS[fixture_name], make_cfg, monkeypatch)
    assert_same_ids(backbone, fixture)
    assert_tokens_close(forward(backbone, fixture).last_hidden_state, fixture, "last_hidden_state")


def test_mistral_dna_classifier_head_matches(make_cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    fixture = golden("mistral_dna_classifier")
    backbone = load_as_user(fixture, "mistral_dna_1m_hg38", make_cfg, monkeypatch, "head=native")
    assert_same_ids(backbone, fixture)
    assert_close(forward(backbone, fixture).logits, fixture, "logits")


def test_nt_v1_token_dropout_is_part_of_the_reference(make_cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative control: NT v1 rescales embeddings (token_dropout); without it the comparison fails."""
    fixture = golden("nt_v1")
    backbone = load_as_user(fixture, "nt_500m_human_ref", make_cfg, monkeypatch)
    backbone.model.embeddings.token_dropout = False
    with pytest.raises(AssertionError):
        assert_tokens_close(forward(backbone, fixture).last_hidden_state, fixture, "last_hidden_state")
