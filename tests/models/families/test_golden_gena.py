"""GENA-LM BERT (every published variant) and the fine-tuned classifier against AIRI's own code.

Fixtures: tools/golden/gena.py ran AIRI's ``modeling_bert.py`` (transformers 4.30) on tiny random weights saved
in the published layout; here each folder loads the way a user loads a download (zoo name + name_or_path).
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

# fixture -> zoo name. Only gena-lm-bert-base is a BertForPreTraining dump; the t2t, lastln and large files are
# BertForMaskedLM dumps without a pooler.
ENCODERS = {
    "gena_bert_base": "gena_bert_base",
    "gena_bert_base_t2t": "gena_bert_base_t2t",
    "gena_bert_base_t2t_multi": "gena_bert_base_t2t_multi",
    "gena_bert_base_lastln_t2t": "gena_bert_base_lastln_t2t",
    "gena_bert_large_t2t": "gena_bert_large_t2t",
}


@pytest.mark.parametrize("fixture_name", sorted(ENCODERS))
def test_encoder_matches_airi_code(fixture_name: str, make_cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    fixture = golden(fixture_name)
    backbone = load_as_user(fixture, ENCODERS[fixture_name], make_cfg, monkeypatch)
    assert_same_ids(backbone, fixture)
    out = forward(backbone, fixture)
    assert_tokens_close(out.last_hidden_state, fixture, "last_hidden_state")
    if "pooler_output" in fixture.expected and out.pooler_output is not None:
        assert_close(out.pooler_output, fixture, "pooler_output")


def test_classifier_matches_airi_code(make_cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    fixture = golden("gena_bert_base_t2t_classifier")
    backbone = load_as_user(fixture, "gena_bert_base_t2t", make_cfg, monkeypatch, "head=native")
    assert_same_ids(backbone, fixture)
    assert_close(forward(backbone, fixture).logits, fixture, "logits")


@pytest.mark.parametrize("fixture_name", sorted(ENCODERS))
def test_mlm_model_matches_airi_code(fixture_name: str) -> None:
    """The masked-LM class (which never has a pooler) on every variant: last hidden state and MLM logits."""
    from dnalm.models.families import load_native

    fixture = golden(fixture_name)
    model = load_native(fixture.folder, "mlm").eval()
    with torch.no_grad():
        out = model(input_ids=fixture.expected["input_ids"], attention_mask=fixture.expected["attention_mask"],
                    output_hidden_states=True)
    assert_tokens_close(out.hidden_states[-1], fixture, "last_hidden_state")
    assert_tokens_close(out.logits, fixture, "logits")


@pytest.mark.parametrize("fixture_name", ["gena_bert_base_lastln_t2t", "gena_bert_large_t2t"])
def test_comparison_catches_a_missing_final_layer_norm(fixture_name: str) -> None:
    """Negative control: the same weights without the final LayerNorm fail the comparison."""
    from dnalm.models.families import load_native

    fixture = golden(fixture_name)
    model = load_native(fixture.folder, "mlm").bert.eval()
    del model.encoder.last_layer_ln
    with torch.no_grad():
        hidden = model(input_ids=fixture.expected["input_ids"],
                       attention_mask=fixture.expected["attention_mask"]).last_hidden_state
    with pytest.raises(AssertionError):
        assert_tokens_close(hidden, fixture, "last_hidden_state")


def test_large_t2t_published_values() -> None:
    """The published large config: eps 1e-5 and no last_layer_norm key, so a final LayerNorm (AIRI's default)."""
    import json

    from dnalm.models.families import config_mismatches, native_config

    raw = json.loads((golden("gena_bert_large_t2t").folder / "config.json").read_text())
    assert "last_layer_norm" not in raw and raw["layer_norm_eps"] == 1e-5
    config = native_config(raw)
    assert config.last_layer_norm is True and config.layer_norm_eps == 1e-5
    mismatches = config_mismatches(raw, "AIRI-Institute/gena-lm-bert-large-t2t")
    assert all(m.split(":")[0] in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                   "intermediate_size", "vocab_size") for m in mismatches), mismatches
