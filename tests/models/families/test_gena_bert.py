"""GENA-LM pre-LN BERT: published key names load, maths match a reference, SDPA = eager, padding,
gradient checkpointing, bf16, the lastln variant and family detection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModel, AutoModelForMaskedLM

from dnalm.models.families import (
    PUBLISHED_CONFIGS,
    GenaBertForMaskedLM,
    GenaBertModel,
    config_mismatches,
    load_native,
    native_config,
    native_model_class,
)
from tests.helpers.gena_bert import TINY, batch, published_state_dict, reference, write_published


@pytest.fixture(params=[False, True], ids=["base", "lastln"])
def published(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, dict, dict]:
    cfg = {**TINY, "last_layer_norm": request.param}
    sd = published_state_dict(cfg)
    return write_published(tmp_path / "gena", cfg, sd), sd, cfg




def test_published_keys_load(published: tuple[Path, dict, dict]) -> None:
    path, sd, cfg = published
    model, info = load_native(path, "mlm", output_loading_info=True)
    assert isinstance(model, GenaBertForMaskedLM) and not info["missing_keys"]
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, sd[key], rtol=0, atol=0, msg=key)
    assert hasattr(model.bert.encoder, "last_layer_ln") == cfg["last_layer_norm"]
    base = load_native(path, "base")
    assert isinstance(base, GenaBertModel)
    torch.testing.assert_close(base.pooler.dense.weight, sd["bert.pooler.dense.weight"])


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_matches_reference_equations(published: tuple[Path, dict, dict], implementation: str) -> None:
    path, sd, cfg = published
    ids, mask = batch()
    hidden_ref, pooled_ref, logits_ref = reference(sd, cfg, ids, mask)
    mlm = load_native(path, "mlm", attn_implementation=implementation).eval()
    base = load_native(path, "base", attn_implementation=implementation).eval()
    assert mlm.config._attn_implementation == base.config._attn_implementation == implementation
    with torch.no_grad():
        out = mlm(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        enc = base(input_ids=ids, attention_mask=mask)
    real = mask.bool()
    torch.testing.assert_close(out.logits[real].double(), logits_ref[real], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(enc.last_hidden_state[real].double(), hidden_ref[real], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(enc.pooler_output.double(), pooled_ref, rtol=1e-4, atol=1e-4)
    assert len(out.hidden_states) == cfg["num_hidden_layers"] + 1
    torch.testing.assert_close(out.hidden_states[-1], enc.last_hidden_state)


def test_sdpa_equals_eager_and_padding_invariance(published: tuple[Path, dict, dict]) -> None:
    path = published[0]
    ids, mask = batch()
    outs = {}
    for implementation in ("sdpa", "eager"):
        model = load_native(path, "base", attn_implementation=implementation).eval()
        assert model.config._attn_implementation == implementation
        with torch.no_grad():
            outs[implementation] = model(input_ids=ids, attention_mask=mask).last_hidden_state
            alone = model(input_ids=ids[1:, :4], attention_mask=mask[1:, :4]).last_hidden_state
        torch.testing.assert_close(outs[implementation][1, :4], alone[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(outs["sdpa"][mask.bool()], outs["eager"][mask.bool()], rtol=1e-5, atol=1e-5)


def test_gradient_checkpointing_gives_same_gradients(published: tuple[Path, dict, dict]) -> None:
    ids, mask = batch()
    labels = torch.where(mask.bool(), ids, -100)
    grads = []
    for checkpointing in (False, True):
        model = load_native(published[0], "mlm").train()
        if checkpointing:
            model.activation_checkpointing_enable()
            assert all(layer.gradient_checkpointing for layer in model.bert.encoder.layer)
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 10
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-5, atol=1e-6, msg=name)


def test_bf16_and_auto_class_round_trip(published: tuple[Path, dict, dict], tmp_path: Path) -> None:
    ids, mask = batch()
    model = load_native(published[0], "mlm").eval()
    model.save_pretrained(tmp_path / "saved")
    assert json.loads((tmp_path / "saved" / "config.json").read_text())["model_type"] == "gena_lm_bert"
    again = AutoModelForMaskedLM.from_pretrained(tmp_path / "saved").eval()
    bf16 = AutoModel.from_pretrained(tmp_path / "saved", dtype=torch.bfloat16).eval()
    assert isinstance(again, GenaBertForMaskedLM) and isinstance(bf16, GenaBertModel)
    with torch.no_grad():
        torch.testing.assert_close(again(ids, mask).logits, model(ids, mask).logits)
        low = bf16(ids, mask).last_hidden_state
        high = model.bert(ids, mask).last_hidden_state
    assert low.dtype == torch.bfloat16
    assert F.cosine_similarity(low.float()[mask.bool()], high[mask.bool()], dim=-1).min() > 0.98


def test_too_long_input_is_a_clear_error(published: tuple[Path, dict, dict]) -> None:
    model = load_native(published[0], "base")
    with pytest.raises(ValueError, match="max_position_embeddings=16"):
        model(input_ids=torch.ones(1, 17, dtype=torch.long))


def test_family_detection_and_published_values() -> None:
    assert native_model_class(TINY, "mlm") is GenaBertForMaskedLM
    assert native_model_class(TINY, "base") is GenaBertModel
    dnabert = {k: v for k, v in TINY.items() if k not in ("pre_layer_norm", "last_layer_norm", "auto_map")}
    assert native_model_class(dnabert, "base") is None
    assert native_model_class({**TINY, "pre_layer_norm": False}, "base") is None
    with pytest.raises(ValueError, match="block-sparse"):
        native_model_class({**TINY, "max_position_embeddings": 4096}, "base")
    sparse = {**TINY, "max_position_embeddings": 4096, "sparse_attention": {"block": 64}}
    assert native_model_class(sparse, "mlm") is GenaBertForMaskedLM
    name = "AIRI-Institute/gena-lm-bert-base-lastln-t2t"
    values = {**TINY, **PUBLISHED_CONFIGS[name]}
    assert config_mismatches(values, name) == []
    assert config_mismatches({**values, "last_layer_norm": False}, name) == [
        "last_layer_norm: expected True, found False"
    ]
    assert native_config(values).last_layer_norm is True
