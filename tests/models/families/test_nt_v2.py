"""NT v2: published key names load, maths match a from-the-paper reference, SDPA = eager, padding,
gradient checkpointing, bf16 and family detection."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModel, AutoModelForMaskedLM

from dnalm.models.families import (
    PUBLISHED_CONFIGS,
    NucleotideTransformerV2ForMaskedLM,
    NucleotideTransformerV2ForSequenceClassification,
    NucleotideTransformerV2Model,
    config_mismatches,
    load_native,
    native_config,
    native_model_class,
)
from tests.helpers.nt_v2 import TINY, batch, published_state_dict, reference_logits, write_published


@pytest.fixture()
def published(tmp_path: Path) -> tuple[Path, dict]:
    sd = published_state_dict(TINY)
    return write_published(tmp_path / "nt_v2", TINY, sd), sd




def test_published_keys_load_without_missing_weights(published: tuple[Path, dict]) -> None:
    path, sd = published
    model, info = load_native(path, "mlm", output_loading_info=True)
    assert isinstance(model, NucleotideTransformerV2ForMaskedLM)
    assert not info["missing_keys"] and not info.get("mismatched_keys")
    # Only the published extras this implementation does not use are left over.
    assert all(
        any(tag in key for tag in ("contact_head", "inv_freq", "position_embeddings"))
        for key in info["unexpected_keys"]
    )
    state = model.state_dict()
    for key, value in state.items():
        torch.testing.assert_close(value, sd[key], rtol=0, atol=0, msg=key)
    base = load_native(path, "base")
    assert isinstance(base, NucleotideTransformerV2Model)
    torch.testing.assert_close(
        base.embeddings.word_embeddings.weight, sd["esm.embeddings.word_embeddings.weight"]
    )


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_matches_reference_equations(published: tuple[Path, dict], implementation: str) -> None:
    path, sd = published
    model = load_native(path, "mlm", attn_implementation=implementation).eval()
    assert model.config._attn_implementation == implementation
    ids, mask = batch()
    hidden_ref, logits_ref = reference_logits(sd, TINY, ids, mask)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    real = mask.bool()
    torch.testing.assert_close(out.logits[real].double(), logits_ref[real], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out.hidden_states[-1][real].double(), hidden_ref[real], rtol=1e-4, atol=1e-4)
    assert len(out.hidden_states) == TINY["num_hidden_layers"] + 1


def test_token_dropout_rescaling_matches_reference(tmp_path: Path) -> None:
    cfg = {**TINY, "token_dropout": True}
    sd = published_state_dict(cfg, seed=3)
    model = load_native(write_published(tmp_path / "td", cfg, sd), "mlm").eval()
    ids, mask = batch()
    ids[0, 3] = ids[1, 2] = cfg["mask_token_id"]
    _, logits_ref = reference_logits(sd, cfg, ids, mask)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(logits[mask.bool()].double(), logits_ref[mask.bool()], rtol=1e-4, atol=1e-4)


def test_sdpa_equals_eager_with_padding(published: tuple[Path, dict]) -> None:
    path, _ = published
    ids, mask = batch()
    outs = {}
    for implementation in ("sdpa", "eager"):
        model = load_native(path, "base", attn_implementation=implementation).eval()
        assert model.config._attn_implementation == implementation
        with torch.no_grad():
            outs[implementation] = model(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(outs["sdpa"][mask.bool()], outs["eager"][mask.bool()], rtol=1e-5, atol=1e-5)


def test_padding_does_not_change_real_tokens(published: tuple[Path, dict]) -> None:
    model = load_native(published[0], "mlm").eval()
    ids, mask = batch()
    with torch.no_grad():
        padded = model(input_ids=ids, attention_mask=mask).logits[1, :5]
        alone = model(input_ids=ids[1:, :5], attention_mask=mask[1:, :5]).logits[0]
    torch.testing.assert_close(padded, alone, rtol=1e-5, atol=1e-5)


def test_gradient_checkpointing_gives_same_gradients(published: tuple[Path, dict]) -> None:
    ids, mask = batch()
    labels = torch.where(mask.bool(), ids, -100)
    grads = []
    for checkpointing in (False, True):
        model = load_native(published[0], "mlm").train()
        if checkpointing:
            with warnings.catch_warnings():  # transformers 5 renamed it; the old name must keep working
                warnings.simplefilter("ignore", FutureWarning)
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            assert all(layer.gradient_checkpointing for layer in model.esm.encoder.layer)
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 10
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-5, atol=1e-6, msg=name)


def test_bf16_forward_close_to_fp32(published: tuple[Path, dict]) -> None:
    ids, mask = batch()
    fp32 = load_native(published[0], "base").eval()
    bf16 = load_native(published[0], "base", dtype=torch.bfloat16).eval()
    assert bf16.embeddings.word_embeddings.weight.dtype == torch.bfloat16
    with torch.no_grad():
        a = fp32(input_ids=ids, attention_mask=mask).last_hidden_state
        b = bf16(input_ids=ids, attention_mask=mask).last_hidden_state
    assert b.dtype == torch.bfloat16
    assert F.cosine_similarity(a[mask.bool()], b.float()[mask.bool()], dim=-1).min() > 0.98


def test_native_save_loads_through_auto_classes(published: tuple[Path, dict], tmp_path: Path) -> None:
    model = load_native(published[0], "mlm").eval()
    model.save_pretrained(tmp_path / "saved")
    saved_cfg = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert saved_cfg["model_type"] == "nucleotide_transformer_v2" and "auto_map" not in saved_cfg
    again = AutoModelForMaskedLM.from_pretrained(tmp_path / "saved").eval()
    base = AutoModel.from_pretrained(tmp_path / "saved").eval()
    assert isinstance(again, NucleotideTransformerV2ForMaskedLM)
    assert isinstance(base, NucleotideTransformerV2Model)
    ids, mask = batch()
    with torch.no_grad():
        torch.testing.assert_close(again(ids, mask).logits, model(ids, mask).logits)
        torch.testing.assert_close(base(ids, mask).last_hidden_state, model.esm(ids, mask).last_hidden_state)


def test_auto_model_with_native_config_reads_published_dir(published: tuple[Path, dict]) -> None:
    path, sd = published
    model = AutoModel.from_pretrained(path, config=native_config(TINY))
    assert isinstance(model, NucleotideTransformerV2Model)
    torch.testing.assert_close(
        model.encoder.layer[1].output.dense.weight, sd["esm.encoder.layer.1.output.dense.weight"]
    )


def test_family_detection() -> None:
    assert native_model_class(TINY, "mlm") is NucleotideTransformerV2ForMaskedLM
    assert native_model_class(TINY, "base") is NucleotideTransformerV2Model
    protein_esm2 = {k: v for k, v in TINY.items() if k not in ("add_bias_fnn", "auto_map")}
    assert native_model_class(protein_esm2, "base") is None
    nt_v1 = {**protein_esm2, "position_embedding_type": "absolute"}
    assert native_model_class(nt_v1, "mlm") is None
    no_model_type = {k: v for k, v in TINY.items() if k != "model_type"}
    assert native_model_class(no_model_type, "mlm") is NucleotideTransformerV2ForMaskedLM
    with pytest.raises(ValueError, match="head must be"):
        native_model_class(TINY, "regression")  # type: ignore[arg-type]


def test_load_native_refuses_plain_transformers_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(
        json.dumps({"model_type": "esm", "position_embedding_type": "absolute"})
    )
    with pytest.raises(ValueError, match="plain transformers"):
        load_native(tmp_path, "base")


def test_wrong_shape_checkpoint_fails_loudly(tmp_path: Path) -> None:
    sd = published_state_dict(TINY)
    # A GELU-style (non-gated) feed-forward has F rows, not 2F: that is NT v1/ESM-2, not NT v2.
    sd["esm.encoder.layer.0.intermediate.dense.weight"] = sd["esm.encoder.layer.0.intermediate.dense.weight"][
        :48
    ]
    path = write_published(tmp_path / "bad", TINY, sd)
    with pytest.raises(ValueError, match="do not fit NucleotideTransformerV2ForMaskedLM"):
        load_native(path, "mlm")


def test_missing_head_weights_fail_loudly(tmp_path: Path) -> None:
    sd = {k: v for k, v in published_state_dict(TINY).items() if not k.startswith("lm_head.")}
    path = write_published(tmp_path / "encoder_only", TINY, sd)
    assert isinstance(load_native(path, "base"), NucleotideTransformerV2Model)
    with pytest.raises(ValueError, match=r"missing \['lm_head.bias'"):
        load_native(path, "mlm")


def test_published_configs_cross_check() -> None:
    name = "InstaDeepAI/nucleotide-transformer-v2-50m-multi-species"
    published = {**TINY, **PUBLISHED_CONFIGS[name]}
    assert config_mismatches(published, name) == []
    assert config_mismatches({**published, "num_hidden_layers": 22}, name) == [
        "num_hidden_layers: expected 12, found 22"
    ]
    for repo, values in PUBLISHED_CONFIGS.items():
        if "nucleotide-transformer" in repo:
            config = native_config({**TINY, **values})
            assert config.hidden_size % config.num_attention_heads == 0


@pytest.mark.filterwarnings("ignore:.*is deprecated.*:FutureWarning")  # peft calls renamed transformers APIs
def test_lora_targets_published_projection_names(published: tuple[Path, dict]) -> None:
    peft = pytest.importorskip("peft")
    model = load_native(published[0], "mlm")
    lora = peft.get_peft_model(model, peft.LoraConfig(r=2, target_modules=["query", "value"]))
    lora.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
    ids, mask = batch()
    lora.train()
    lora(input_ids=ids, attention_mask=mask, labels=torch.where(mask.bool(), ids, -100)).loss.backward()
    trained = [n for n, p in lora.named_parameters() if p.requires_grad]
    assert trained and all("lora_" in n for n in trained)
    assert all(
        p.grad is not None and p.grad.abs().sum() > 0 for n, p in lora.named_parameters() if "lora_B" in n
    )


def test_direct_from_pretrained_on_published_dir_drops_remote_fields(
    published: tuple[Path, dict], tmp_path: Path
) -> None:
    model = NucleotideTransformerV2Model.from_pretrained(published[0])
    assert model.config.model_type == "nucleotide_transformer_v2"
    assert getattr(model.config, "auto_map", None) is None
    model.save_pretrained(tmp_path / "copy")
    assert isinstance(AutoModel.from_pretrained(tmp_path / "copy"), NucleotideTransformerV2Model)


def test_classifier_probe_is_none_for_foreign_and_the_native_classifier_for_nt_v2() -> None:
    assert native_model_class({"model_type": "mixtral"}, "classifier") is None
    assert native_model_class(TINY, "classifier") is NucleotideTransformerV2ForSequenceClassification
    with pytest.raises(ValueError, match="head must be one of"):
        native_model_class(TINY, "token")  # type: ignore[arg-type]
