"""NT v2: published key names load, maths match a from-the-paper reference, SDPA = eager, padding,
gradient checkpointing, bf16 and family detection."""

from __future__ import annotations

import json
import math
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

TINY = {
    "model_type": "esm",
    "architectures": ["EsmForMaskedLM"],
    "auto_map": {
        "AutoConfig": "esm_config.EsmConfig",
        "AutoModelForMaskedLM": "modeling_esm.EsmForMaskedLM",
    },
    "add_bias_fnn": False,
    "attention_probs_dropout_prob": 0.0,
    "hidden_dropout_prob": 0.0,
    "emb_layer_norm_before": False,
    "esmfold_config": None,
    "is_folding_model": False,
    "vocab_list": None,
    "hidden_size": 32,
    "intermediate_size": 48,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "layer_norm_eps": 1e-12,
    "mask_token_id": 2,
    "pad_token_id": 1,
    "max_position_embeddings": 66,
    "position_embedding_type": "rotary",
    "tie_word_embeddings": False,
    "token_dropout": False,
    "vocab_size": 23,
}


def published_state_dict(cfg: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict spelled with the published NT v2 key names, including the unused extras."""
    gen = torch.Generator().manual_seed(seed)
    h, f, v, n_layers = (
        cfg["hidden_size"],
        cfg["intermediate_size"],
        cfg["vocab_size"],
        cfg["num_hidden_layers"],
    )
    head_dim = h // cfg["num_attention_heads"]

    def rand(*shape: int, scale: float = 0.2) -> torch.Tensor:
        return torch.randn(*shape, generator=gen) * scale

    def norm() -> tuple[torch.Tensor, torch.Tensor]:
        return 1 + rand(h, scale=0.1), rand(h, scale=0.1)

    sd = {"esm.embeddings.word_embeddings.weight": rand(v, h, scale=1.0)}
    # Extras that published files carry: unused absolute table, rotary buffers, ESM contact head.
    sd["esm.embeddings.position_embeddings.weight"] = rand(cfg["max_position_embeddings"], h)
    for i in range(n_layers):
        p = f"esm.encoder.layer.{i}."
        for name in ("query", "key", "value"):
            sd[p + f"attention.self.{name}.weight"] = rand(h, h)
            sd[p + f"attention.self.{name}.bias"] = rand(h)
        sd[p + "attention.self.rotary_embeddings.inv_freq"] = 1.0 / (
            10000 ** (torch.arange(0, head_dim, 2).float() / head_dim)
        )
        sd[p + "attention.output.dense.weight"] = rand(h, h)
        sd[p + "attention.output.dense.bias"] = rand(h)
        sd[p + "attention.LayerNorm.weight"], sd[p + "attention.LayerNorm.bias"] = norm()
        sd[p + "LayerNorm.weight"], sd[p + "LayerNorm.bias"] = norm()
        sd[p + "intermediate.dense.weight"] = rand(2 * f, h)
        sd[p + "output.dense.weight"] = rand(h, f)
    sd["esm.encoder.emb_layer_norm_after.weight"], sd["esm.encoder.emb_layer_norm_after.bias"] = norm()
    sd["esm.contact_head.regression.weight"] = rand(1, n_layers * cfg["num_attention_heads"])
    sd["esm.contact_head.regression.bias"] = rand(1)
    sd["lm_head.dense.weight"], sd["lm_head.dense.bias"] = rand(h, h), rand(h)
    sd["lm_head.layer_norm.weight"], sd["lm_head.layer_norm.bias"] = norm()
    sd["lm_head.decoder.weight"] = rand(v, h)
    sd["lm_head.bias"] = rand(v)
    return sd


def rotate(x: torch.Tensor) -> torch.Tensor:
    """RoPE written as a complex rotation of pairs (i, i + d/2) by angle pos * 10000^(-2i/d)."""
    seq, d = x.shape[-2], x.shape[-1]
    theta = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    angle = torch.arange(seq, dtype=torch.float64)[:, None] * theta[None]
    z = torch.complex(x[..., : d // 2].double(), x[..., d // 2 :].double()) * torch.polar(
        torch.ones_like(angle), angle
    )
    return torch.cat((z.real, z.imag), dim=-1).to(x.dtype)


def reference_logits(sd: dict, cfg: dict, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """ESM-2 / NT v2 forward from the equations, one explicit step at a time (float64)."""
    sd = {k: t.double() for k, t in sd.items()}
    eps, n_heads = cfg["layer_norm_eps"], cfg["num_attention_heads"]

    def ln(x: torch.Tensor, prefix: str) -> torch.Tensor:
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(var + eps) * sd[prefix + ".weight"] + sd[prefix + ".bias"]

    x = sd["esm.embeddings.word_embeddings.weight"][ids]
    if cfg["token_dropout"]:
        is_mask = ids == cfg["mask_token_id"]
        x = x.masked_fill(is_mask[..., None], 0.0)
        observed = is_mask.sum(-1) / mask.sum(-1)
        x = x * (1 - 0.15 * 0.8) / (1 - observed)[:, None, None]
    x = x * mask[..., None]
    b, s, h = x.shape
    d = h // n_heads
    for i in range(cfg["num_hidden_layers"]):
        p = f"esm.encoder.layer.{i}."
        hn = ln(x, p + "attention.LayerNorm")

        def proj(name: str, hn: torch.Tensor = hn, p: str = p) -> torch.Tensor:
            out = hn @ sd[p + f"attention.self.{name}.weight"].T + sd[p + f"attention.self.{name}.bias"]
            return out.view(b, s, n_heads, d).transpose(1, 2)

        q, k, v = rotate(proj("query") / math.sqrt(d)), rotate(proj("key")), proj("value")
        scores = q @ k.transpose(-1, -2) + torch.where(mask[:, None, None, :] > 0, 0.0, -1e30)
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, s, h)
        x = x + ctx @ sd[p + "attention.output.dense.weight"].T + sd[p + "attention.output.dense.bias"]
        gate_up = ln(x, p + "LayerNorm") @ sd[p + "intermediate.dense.weight"].T
        gate, up = gate_up[..., : cfg["intermediate_size"]], gate_up[..., cfg["intermediate_size"] :]
        x = x + (gate * torch.sigmoid(gate) * up) @ sd[p + "output.dense.weight"].T
    x = ln(x, "esm.encoder.emb_layer_norm_after")
    t = x @ sd["lm_head.dense.weight"].T + sd["lm_head.dense.bias"]
    t = ln(0.5 * t * (1 + torch.erf(t / math.sqrt(2))), "lm_head.layer_norm")
    return x, t @ sd["lm_head.decoder.weight"].T + sd["lm_head.bias"]


def write_published(directory: Path, cfg: dict, sd: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(cfg))
    torch.save(sd, directory / "pytorch_model.bin")
    return directory


@pytest.fixture()
def published(tmp_path: Path) -> tuple[Path, dict]:
    sd = published_state_dict(TINY)
    return write_published(tmp_path / "nt_v2", TINY, sd), sd


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.tensor([[0, 5, 9, 2, 11, 17, 4, 8, 3], [0, 7, 6, 12, 22, 1, 1, 1, 1]])
    return ids, (ids != TINY["pad_token_id"]).long()


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
