"""Architecture values of the published checkpoints the native families load (NT v2, GENA-LM, Caduceus).

Keys are Hugging Face repository ids; values are the ``config.json`` fields that decide parameter
shapes and numerics. The model zoo compares a checkpoint's config against these with
:func:`config_mismatches` and refuses a checkpoint that disagrees, so a renamed or re-uploaded
repository cannot silently load into the wrong architecture.
"""

from __future__ import annotations

from typing import Any

_NT_V2_COMMON: dict[str, Any] = {
    "model_type": "esm",
    "vocab_size": 4107,
    "max_position_embeddings": 2050,
    "layer_norm_eps": 1e-12,
    "position_embedding_type": "rotary",
    "add_bias_fnn": False,
    "emb_layer_norm_before": False,
    "token_dropout": False,
    "pad_token_id": 1,
    "mask_token_id": 2,
}

_GENA_BERT_COMMON: dict[str, Any] = {
    "model_type": "bert",
    "vocab_size": 32000,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "layer_norm_eps": 1e-12,
    "hidden_act": "gelu",
    "position_embedding_type": "absolute",
    "pre_layer_norm": True,
    "pad_token_id": 3,
}


# DNABERT-2's config.json has no model_type (DNABERT-S's says "bert"): only the shape fields are compared.
_DNABERT2: dict[str, Any] = {
    "vocab_size": 4096,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "type_vocab_size": 2,
    "layer_norm_eps": 1e-12,
}


def _nt_v2(hidden: int, layers: int, heads: int, ffn: int) -> dict[str, Any]:
    return {
        **_NT_V2_COMMON,
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": ffn,
    }


def _gena(
    hidden: int, layers: int, heads: int, ffn: int, last_ln: bool = False, eps: float = 1e-12
) -> dict[str, Any]:
    return {
        **_GENA_BERT_COMMON,
        "layer_norm_eps": eps,
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": ffn,
        "last_layer_norm": last_ln,
    }


# Both sparse checkpoints: pre-LN BERT-base, 4,096 positions, RoPE on 32 of 64 dims per head and a
# DeepSpeed BigBird layout (GENA_LM data/configs/L12-H768-A12-V32k-L4096-preln-sparse-rope.json).
_GENA_SPARSE: dict[str, Any] = {
    **_gena(768, 12, 12, 3072),
    "max_position_embeddings": 4096,
    "position_embedding_type": "rotary",
    "rotary_dim": 32,
    "rotary_base": 10000,
    "sparse_config_cls": "deepspeed.ops.sparse_attention:BigBirdSparsityConfig",
    "sparse_attention": {
        "num_heads": 12,
        "block": 64,
        "different_layout_per_head": True,
        "num_sliding_window_blocks": 3,
        "num_global_blocks": 2,
        "num_random_blocks": 3,
    },
}

# HyenaDNA -hf configs: single-nucleotide vocabulary, order-2 Hyena with 3-tap short filters, filter MLPs of
# width 64 over 5 positional features with sin(10 x) activations; max_seq_len is the context plus 2
# (HazyResearch/hyena-dna configs/evals/hg38.yaml: emb_dim 5, w 10, "l_max: 1026  # add 2 for ckpt").
_HYENADNA_COMMON: dict[str, Any] = {
    "model_type": "hyenadna",
    "vocab_size": 12,
    "pad_vocab_size_multiple": 8,
    "hyena_order": 2,
    "short_filter_order": 3,
    "emb_dim": 5,
    "filter_order": 64,
    "num_inner_mlps": 2,
    "activation_freq": 10,
}


def _hyenadna(d_model: int, layers: int, max_seq_len: int) -> dict[str, Any]:
    return {**_HYENADNA_COMMON, "d_model": d_model, "n_layer": layers, "d_inner": 4 * d_model,
            "max_seq_len": max_seq_len}


def _caduceus(rcps: bool) -> dict[str, Any]:
    """kuleshov-group/caduceus-{ph,ps}_seqlen-131k_d_model-256_n_layer-16 (dotted names are ssm_cfg fields)."""
    return {
        "model_type": "caduceus",
        "d_model": 256,
        "n_layer": 16,
        "vocab_size": 16,
        "rcps": rcps,
        "bidirectional": True,
        "bidirectional_strategy": "add",
        "bidirectional_weight_tie": True,
        "rms_norm": True,
        # PS blocks add their residual with the halves swapped on this path (see caduceus.py)
        "fused_add_norm": True,
        "norm_epsilon": 1e-5,
        "ssm_cfg.d_state": 16,
        "ssm_cfg.d_conv": 4,
        "ssm_cfg.expand": 2,
        "ssm_cfg.dt_rank": "auto",
        "ssm_cfg.bias": False,
        "ssm_cfg.conv_bias": True,
    }


PUBLISHED_CONFIGS: dict[str, dict[str, Any]] = {
    "InstaDeepAI/nucleotide-transformer-v2-50m-multi-species": _nt_v2(512, 12, 16, 2048),
    "InstaDeepAI/nucleotide-transformer-v2-100m-multi-species": _nt_v2(512, 22, 16, 2048),
    "InstaDeepAI/nucleotide-transformer-v2-250m-multi-species": _nt_v2(768, 24, 16, 3072),
    "InstaDeepAI/nucleotide-transformer-v2-500m-multi-species": _nt_v2(1024, 29, 16, 4096),
    "AIRI-Institute/gena-lm-bert-base": _gena(768, 12, 12, 3072),
    "AIRI-Institute/gena-lm-bert-base-t2t": _gena(768, 12, 12, 3072),
    "AIRI-Institute/gena-lm-bert-base-t2t-multi": _gena(768, 12, 12, 3072),
    "AIRI-Institute/gena-lm-bert-base-lastln-t2t": _gena(768, 12, 12, 3072, last_ln=True),
    # GENA_LM data/configs/L24-H1024-A16-V32k-preln-lastln.json: eps 1e-5 and no last_layer_norm key, so
    # AIRI's code builds the final LayerNorm (the key defaults to pre_layer_norm).
    "AIRI-Institute/gena-lm-bert-large-t2t": _gena(1024, 24, 16, 4096, last_ln=True, eps=1e-5),
    "AIRI-Institute/gena-lm-bigbird-base-sparse": _GENA_SPARSE,
    "AIRI-Institute/gena-lm-bigbird-base-sparse-t2t": _GENA_SPARSE,
    "zhihan1996/DNABERT-2-117M": _DNABERT2,
    "zhihan1996/DNABERT-S": _DNABERT2,
    "LongSafari/hyenadna-tiny-1k-seqlen-hf": _hyenadna(128, 2, 1026),
    "LongSafari/hyenadna-small-32k-seqlen-hf": _hyenadna(256, 4, 32770),
    "LongSafari/hyenadna-medium-160k-seqlen-hf": _hyenadna(256, 8, 160002),
    "LongSafari/hyenadna-medium-450k-seqlen-hf": _hyenadna(256, 8, 450002),
    "LongSafari/hyenadna-large-1m-seqlen-hf": _hyenadna(256, 8, 1000002),
    "kuleshov-group/caduceus-ph_seqlen-131k_d_model-256_n_layer-16": _caduceus(rcps=False),
    "kuleshov-group/caduceus-ps_seqlen-131k_d_model-256_n_layer-16": _caduceus(rcps=True),
}


def config_mismatches(config_dict: dict[str, Any], name: str) -> list[str]:
    """Fields where ``config_dict`` disagrees with the published values of ``name`` (empty when it matches).

    A field missing from ``config_dict`` counts as a mismatch, except ``last_layer_norm``, which the lastln
    and large GENA configs omit: AIRI's code then uses ``pre_layer_norm`` (a final LayerNorm for pre-LN models).
    A dotted name (``ssm_cfg.d_state``) looks inside a nested dict.
    """
    if name not in PUBLISHED_CONFIGS:
        raise KeyError(f"{name!r} is not a known published checkpoint; known: {sorted(PUBLISHED_CONFIGS)}")
    defaults = {"last_layer_norm": config_dict.get("pre_layer_norm", False)}
    problems = []
    for field, expected in PUBLISHED_CONFIGS[name].items():
        actual = _lookup(config_dict, field, defaults.get(field, "<missing>"))
        if actual != expected:
            problems.append(f"{field}: expected {expected!r}, found {actual!r}")
    return problems


def _lookup(config_dict: dict[str, Any], field: str, default: Any) -> Any:
    value: Any = config_dict
    for part in field.split("."):
        if not isinstance(value, dict) or part not in value:
            return default
        value = value[part]
    return value
