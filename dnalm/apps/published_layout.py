"""A fine-tuned NT v2 / GENA-LM classifier written in the layout its authors published on the hub.

dnalm's native classes (:mod:`dnalm.models.families`) keep the published parameter names, but save under their
own ``model_type`` and without the tensors the authors' code registers and dnalm recomputes or never uses. This
module is the inverse of what their loaders drop: the published ``config.json`` fields (``model_type``,
``auto_map`` to the authors' remote files, their field names) and the published key set, so the folder loads
with the authors' ``*ForSequenceClassification`` as well as with dnalm (``head=native``).

Published-only tensors, all unused by the classifier's maths (values as the authors' code computes them, zeros
for tables it never reads):

* NT v2 (InstaDeep's ESM): ``esm.embeddings.position_ids``, ``esm.embeddings.position_embeddings.weight``
  (allocated but unused with rotary positions), ``esm.contact_head.regression.*`` (ESM's protein contact
  head) and ``esm.encoder.layer.{i}.attention.self.rotary_embeddings.inv_freq``.
* GENA-LM (AIRI's BERT): ``bert.embeddings.position_ids`` and, for rotary (sparse) models,
  ``bert.encoder.layer.{i}.attention.self.rotary_emb.inv_freq``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from dnalm.models.families.published import PUBLISHED_CONFIGS


def _inv_freq(dim: int, base: float) -> torch.Tensor:
    """The rotary frequencies the authors' code registers as a buffer (``1 / base^(2i/dim)``)."""
    return 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))


def _nt_v2_tensors(config: Any) -> dict[str, torch.Tensor]:
    positions, hidden = config.max_position_embeddings, config.hidden_size
    layers, heads = config.num_hidden_layers, config.num_attention_heads
    out = {
        "esm.embeddings.position_ids": torch.arange(positions).unsqueeze(0),
        "esm.embeddings.position_embeddings.weight": torch.zeros(positions, hidden),
        "esm.contact_head.regression.weight": torch.zeros(1, layers * heads),
        "esm.contact_head.regression.bias": torch.zeros(1),
    }
    inv_freq = _inv_freq(hidden // heads, 10000.0)
    out |= {f"esm.encoder.layer.{i}.attention.self.rotary_embeddings.inv_freq": inv_freq.clone()
            for i in range(layers)}
    return out


def _gena_tensors(config: Any) -> dict[str, torch.Tensor]:
    out = {"bert.embeddings.position_ids": torch.arange(config.max_position_embeddings).unsqueeze(0)}
    if config.position_embedding_type == "rotary":
        head_dim = config.hidden_size // config.num_attention_heads
        inv_freq = _inv_freq(config.rotary_dim or head_dim, float(config.rotary_base))
        out |= {f"bert.encoder.layer.{i}.attention.self.rotary_emb.inv_freq": inv_freq.clone()
                for i in range(config.num_hidden_layers)}
    return out


@dataclass(frozen=True)
class PublishedLayout:
    """How one family's authors publish a checkpoint."""

    model_type: str  # published config.json model_type
    classifier: str  # the authors' sequence-classification class
    auto_map: dict[str, str]  # Auto class -> "module.Class" in the authors' remote files
    code_repo: str  # hub repository holding those files, when the run's base model is not a published one
    fields: tuple[str, ...]  # config fields copied from our config under the same (published) names
    constants: dict[str, Any]  # published fields our config does not carry
    weights_file: str  # the file name (and type) the authors publish
    extra_tensors: Callable[[Any], dict[str, torch.Tensor]]
    optional_fields: tuple[str, ...] = field(default=())  # copied only when set (not None)


LAYOUTS: dict[str, PublishedLayout] = {
    "nucleotide_transformer_v2": PublishedLayout(
        model_type="esm",
        classifier="EsmForSequenceClassification",
        auto_map={"AutoConfig": "esm_config.EsmConfig",
                  "AutoModelForMaskedLM": "modeling_esm.EsmForMaskedLM",
                  "AutoModelForSequenceClassification": "modeling_esm.EsmForSequenceClassification",
                  "AutoModelForTokenClassification": "modeling_esm.EsmForTokenClassification"},
        code_repo="InstaDeepAI/nucleotide-transformer-v2-50m-multi-species",
        fields=("add_bias_fnn", "attention_probs_dropout_prob", "emb_layer_norm_before", "hidden_dropout_prob",
                "hidden_size", "initializer_range", "intermediate_size", "layer_norm_eps", "mask_token_id",
                "max_position_embeddings", "num_attention_heads", "num_hidden_layers", "pad_token_id",
                "position_embedding_type", "tie_word_embeddings", "token_dropout", "vocab_size"),
        constants={"esmfold_config": None, "is_folding_model": False, "vocab_list": None, "use_cache": False,
                   "torch_dtype": "float32"},
        weights_file="model.safetensors",
        extra_tensors=_nt_v2_tensors,
    ),
    "gena_lm_bert": PublishedLayout(
        model_type="bert",
        classifier="BertForSequenceClassification",
        auto_map={"AutoModel": "modeling_bert.BertModel",
                  "AutoModelForMaskedLM": "modeling_bert.BertForMaskedLM",
                  "AutoModelForSequenceClassification": "modeling_bert.BertForSequenceClassification"},
        code_repo="AIRI-Institute/gena-lm-bert-base-t2t",
        fields=("attention_probs_dropout_prob", "hidden_act", "hidden_dropout_prob", "hidden_size",
                "initializer_range", "intermediate_size", "layer_norm_eps", "max_position_embeddings",
                "num_attention_heads", "num_hidden_layers", "pad_token_id", "position_embedding_type",
                "pre_layer_norm", "type_vocab_size", "vocab_size"),
        # absent last_layer_norm means "= pre_layer_norm" in AIRI's code (the lastln and large configs omit it)
        optional_fields=("last_layer_norm", "rotary_dim", "sparse_config_cls", "sparse_attention"),
        constants={"gradient_checkpointing": False, "use_cache": True},
        weights_file="pytorch_model.bin",
        extra_tensors=_gena_tensors,
    ),
}
SPARSE_CODE_REPO = "AIRI-Institute/gena-lm-bigbird-base-sparse-t2t"  # its modeling_bert.py runs DeepSpeed sparse


def layout_for(model: Any) -> PublishedLayout | None:
    """The published layout of ``model``'s family (``None`` for families dnalm does not export this way)."""
    return LAYOUTS.get(getattr(model.config, "model_type", ""))


def _code_repo(layout: PublishedLayout, config: Any, base_model: str | None) -> str:
    """Where the authors' remote code lives: the run's base model when it is a published one."""
    if base_model in PUBLISHED_CONFIGS and PUBLISHED_CONFIGS[base_model]["model_type"] == layout.model_type:
        return base_model
    return SPARSE_CODE_REPO if getattr(config, "sparse_attention", None) else layout.code_repo


def published_config(model: Any, layout: PublishedLayout, base_model: str | None) -> dict[str, Any]:
    """``config.json`` as the authors publish a fine-tuned classifier, with the run's label names."""
    import transformers

    config = model.config
    repo = _code_repo(layout, config, base_model)
    out: dict[str, Any] = {name: getattr(config, name) for name in layout.fields}
    out |= {name: getattr(config, name) for name in layout.optional_fields if getattr(config, name, None) is not None}
    if getattr(config, "position_embedding_type", None) == "rotary" and layout.model_type == "bert":
        out["rotary_base"] = config.rotary_base
    out |= layout.constants
    # "repo--module.Class": transformers fetches the code from the authors' repository, not from this folder
    out |= {"model_type": layout.model_type, "architectures": [layout.classifier],
            "auto_map": {auto: f"{repo}--{target}" for auto, target in layout.auto_map.items()},
            "num_labels": config.num_labels,
            "id2label": {str(i): name for i, name in config.id2label.items()},
            "label2id": dict(config.label2id), "problem_type": config.problem_type,
            "transformers_version": transformers.__version__}
    return dict(sorted(out.items()))


def published_state_dict(model: Any, layout: PublishedLayout) -> dict[str, torch.Tensor]:
    """The classifier's weights under the published key set (ours plus the tensors the authors register)."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    extra = layout.extra_tensors(model.config)
    clash = sorted(set(extra) & set(state))
    if clash:  # our classes never hold these; if one does, the two sources would disagree on its value
        raise RuntimeError(f"published-only tensors already in the model: {clash[:3]}")
    return {**state, **extra}


def write_published(model: Any, layout: PublishedLayout, output: Path, base_model: str | None) -> None:
    """Write ``config.json`` and the weights file of the published layout into ``output``."""
    output.mkdir(parents=True, exist_ok=True)
    config = published_config(model, layout, base_model)
    (output / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    state = published_state_dict(model, layout)
    if layout.weights_file.endswith(".safetensors"):
        save_file(state, output / layout.weights_file, metadata={"format": "pt"})
    else:  # AIRI publishes a torch.save of the state dict (read back with weights_only=True)
        torch.save(state, output / layout.weights_file)
