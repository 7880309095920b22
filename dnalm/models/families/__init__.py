"""Native, weight-compatible implementations of DNA LM families whose remote code no longer runs (or needs CUDA).

Importing this package registers the native configs and models with ``AutoConfig`` /
``AutoModel`` / ``AutoModelForMaskedLM`` under their own ``model_type`` (idempotent), so
checkpoints saved by these classes load without ``trust_remote_code``. Published checkpoints
(whose ``config.json`` still says ``esm`` / ``bert`` / ``caduceus`` with an ``auto_map``) load through
:func:`load_native`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    PreTrainedModel,
)
from transformers.utils import cached_file

from dnalm.models.families.caduceus import (
    CaduceusConfig,
    CaduceusForMaskedLM,
    CaduceusForSequenceClassification,
    CaduceusModel,
)
from dnalm.models.families.gena_bert import (
    GenaBertConfig,
    GenaBertForMaskedLM,
    GenaBertForSequenceClassification,
    GenaBertModel,
)
from dnalm.models.families.nt_v2 import (
    NucleotideTransformerV2Config,
    NucleotideTransformerV2ForMaskedLM,
    NucleotideTransformerV2ForSequenceClassification,
    NucleotideTransformerV2Model,
)
from dnalm.models.families.published import PUBLISHED_CONFIGS, config_mismatches

__all__ = [
    "PUBLISHED_CONFIGS",
    "CaduceusConfig",
    "CaduceusForMaskedLM",
    "CaduceusForSequenceClassification",
    "CaduceusModel",
    "GenaBertConfig",
    "GenaBertForMaskedLM",
    "GenaBertForSequenceClassification",
    "GenaBertModel",
    "NucleotideTransformerV2Config",
    "NucleotideTransformerV2ForMaskedLM",
    "NucleotideTransformerV2ForSequenceClassification",
    "NucleotideTransformerV2Model",
    "config_mismatches",
    "load_native",
    "native_config",
    "native_model_class",
    "register_auto_classes",
]

Head = Literal["base", "mlm", "classifier"]
HEADS = ("base", "mlm", "classifier")

# model_type -> (config, encoder, masked LM, sequence classifier)
_FAMILIES: dict[str, tuple[type, type, type, type]] = {
    NucleotideTransformerV2Config.model_type: (
        NucleotideTransformerV2Config,
        NucleotideTransformerV2Model,
        NucleotideTransformerV2ForMaskedLM,
        NucleotideTransformerV2ForSequenceClassification,
    ),
    GenaBertConfig.model_type: (
        GenaBertConfig,
        GenaBertModel,
        GenaBertForMaskedLM,
        GenaBertForSequenceClassification,
    ),
    CaduceusConfig.model_type: (
        CaduceusConfig,
        CaduceusModel,
        CaduceusForMaskedLM,
        CaduceusForSequenceClassification,
    ),
}
# Fields of a published config.json that point at remote code or the old model_type; dropped when
# the dict becomes a native config so a saved copy never asks for trust_remote_code again.
_REMOTE_FIELDS = ("model_type", "auto_map", "architectures")


def register_auto_classes() -> None:
    """Register every native family with the transformers Auto classes (safe to call repeatedly)."""
    for config_cls, base_cls, mlm_cls, classifier_cls in _FAMILIES.values():
        AutoConfig.register(config_cls.model_type, config_cls, exist_ok=True)
        AutoModel.register(config_cls, base_cls, exist_ok=True)
        AutoModelForMaskedLM.register(config_cls, mlm_cls, exist_ok=True)
        AutoModelForSequenceClassification.register(config_cls, classifier_cls, exist_ok=True)


def _auto_map_text(config_dict: dict[str, Any]) -> str:
    auto_map = config_dict.get("auto_map") or {}
    values = auto_map.values() if isinstance(auto_map, dict) else auto_map
    return " ".join(str(v) for v in values)


def _family(config_dict: dict[str, Any]) -> str | None:
    """The native model_type that should load ``config_dict``, or None for plain transformers."""
    model_type = config_dict.get("model_type")
    if model_type in _FAMILIES:
        return model_type
    remote = _auto_map_text(config_dict)
    if model_type is None and "modeling_caduceus" in remote:
        return CaduceusConfig.model_type
    if model_type == "esm" or (model_type is None and "modeling_esm" in remote):
        # NT v2 = InstaDeep's remote ESM with a SwiGLU feed-forward, flagged by `add_bias_fnn`.
        # Protein ESM-2 and NT v1 (absolute positions, GELU) have neither and load natively.
        is_nt_v2 = "add_bias_fnn" in config_dict or "modeling_esm" in remote
        if is_nt_v2 and config_dict.get("position_embedding_type", "absolute") == "rotary":
            return NucleotideTransformerV2Config.model_type
        return None
    if model_type == "bert" and config_dict.get("pre_layer_norm"):
        # The dense GENA-LM BERTs have 512 positions; the 4,096-position pre-LN ones
        # (gena-lm-bigbird-base-sparse*) name their DeepSpeed block-sparse layout in the config. A
        # long config without one would be computed as dense attention, which it was not trained with.
        if (
            config_dict.get("sparse_attention") is None
            and config_dict.get("max_position_embeddings", 512) > 512
        ):
            raise ValueError(
                "this pre-LN GENA-LM config has max_position_embeddings="
                f"{config_dict.get('max_position_embeddings')} but no sparse_attention layout, so it "
                "cannot be told apart from a DeepSpeed block-sparse checkpoint whose config lost its layout; "
                "pass config_overrides={'sparse_attention': {...}} (see docs/native_models.md) or use a "
                "dense GENA-LM BERT"
            )
        return GenaBertConfig.model_type
    return None


def native_model_class(config_dict: dict[str, Any], head: Head) -> type[PreTrainedModel] | None:
    """The native class that should load a raw published ``config.json`` dict, or None.

    None means plain ``transformers`` loads the checkpoint correctly (e.g. NT v1, protein ESM-2,
    DNABERT, post-LN BERT). ``head`` is ``"base"`` (encoder), ``"mlm"`` (encoder + masked-LM head) or
    ``"classifier"`` (encoder + the sequence head of a fine-tuned ``*ForSequenceClassification``).
    """
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {head!r}")
    family = _family(config_dict)
    if family is None:
        return None
    return _FAMILIES[family][1 + HEADS.index(head)]


def native_config(config_dict: dict[str, Any]) -> GenaBertConfig | NucleotideTransformerV2Config | CaduceusConfig:
    """Build the native config object from a published ``config.json`` dict (remote-code fields dropped)."""
    family = _family(config_dict)
    if family is None:
        raise ValueError(
            f"config with model_type={config_dict.get('model_type')!r} is not a native dnalm family; "
            "load it with transformers AutoModel"
        )
    config_cls = _FAMILIES[family][0]
    fields = {k: v for k, v in config_dict.items() if k not in _REMOTE_FIELDS}
    return config_cls(**fields)


def load_native(
    path_or_dir: str | Path,
    head: Head,
    dtype: torch.dtype | None = None,
    config_overrides: dict[str, Any] | None = None,
    new_head: bool = False,
    **from_pretrained_kwargs: Any,
) -> PreTrainedModel:
    """Load a published NT v2 / GENA-LM BERT / Caduceus checkpoint (local folder or hub id) natively.

    Reads ``config.json`` (updated with ``config_overrides``), picks the class with
    :func:`native_model_class`, converts the config and calls ``from_pretrained``
    (``pytorch_model.bin`` is read with ``weights_only=True``; safetensors preferred when present).
    Raises ``ValueError`` when the checkpoint is not a native family, when weights are missing or
    unexpected, or when shapes disagree with the config. ``new_head=True`` lets the classifier head be
    missing from the file and freshly initialised (a PEFT adapter restores it). Extra keyword arguments
    (``revision``, ``attn_implementation``, ``device_map``, ...) go to ``from_pretrained``.
    """
    config_path = cached_file(
        str(path_or_dir), "config.json", revision=from_pretrained_kwargs.get("revision")
    )
    with open(config_path, encoding="utf-8") as handle:
        config_dict = {**json.load(handle), **(config_overrides or {})}
    model_cls = native_model_class(config_dict, head)
    if model_cls is None:
        raise ValueError(
            f"{path_or_dir}: model_type={config_dict.get('model_type')!r} loads with plain transformers "
            "(AutoModel / AutoModelForMaskedLM); load_native only handles NT v2, GENA-LM BERT and Caduceus"
        )
    config = native_config(config_dict)
    want_info = from_pretrained_kwargs.pop("output_loading_info", False)
    try:
        model, info = model_cls.from_pretrained(
            str(path_or_dir), config=config, dtype=dtype, output_loading_info=True, **from_pretrained_kwargs
        )
    except RuntimeError as error:  # transformers raises on shape mismatches after logging a per-key report
        raise ValueError(
            f"{path_or_dir}: checkpoint tensors do not fit {model_cls.__name__} built from its config.json "
            f"(see the load report above for the keys): {error}"
        ) from error
    _check_loading_info(path_or_dir, model_cls, head, info, new_head)
    return (model, info) if want_info else model


def _check_loading_info(path: str | Path, model_cls: type, head: Head, info: dict[str, Any], new_head: bool) -> None:
    """Fail instead of leaving randomly initialised weights or ignoring unknown tensors."""
    missing = sorted(info.get("missing_keys") or [])
    if head == "classifier":
        head_missing = [k for k in missing if k.startswith(("classifier.", "score."))]
        if new_head:
            missing = [k for k in missing if k not in head_missing]
        elif head_missing:
            raise ValueError(
                f"{path}: no sequence-classification head in this checkpoint (missing {head_missing}): it is a "
                "pre-trained model, not a fine-tuned classifier; put a dnalm head on it (head=linear or head=mlp)"
            )
    # A base encoder legitimately skips the published MLM / pre-training / classification heads.
    head_prefixes = ("lm_head.", "cls.", "classifier.", "score.") if head == "base" else ()
    unexpected = sorted(k for k in info.get("unexpected_keys") or [] if not k.startswith(head_prefixes))
    if missing or unexpected:
        raise ValueError(
            f"{path}: checkpoint does not match {model_cls.__name__}: missing {missing[:10]} "
            f"({len(missing)} in all), unexpected {unexpected[:10]} ({len(unexpected)} in all); "
            "check that config.json belongs to these weights and that the right head was requested"
        )


register_auto_classes()
