"""Native, weight-compatible implementations of DNA LM families whose remote code no longer runs (or needs CUDA).

Each family module registers itself (:func:`~dnalm.models.families.registry.register_family`), which also
registers its classes with ``AutoConfig`` / ``AutoModel`` / ``AutoModelForMaskedLM`` (or ``AutoModelForCausalLM``)
/ ``AutoModelForSequenceClassification`` under its own ``model_type`` (idempotent), so checkpoints saved by these
classes load without ``trust_remote_code``; importing this package imports every family module. Published checkpoints (whose
``config.json`` still says ``esm`` / ``bert`` / ``caduceus`` with an ``auto_map``, or, for DNABERT-2, names no
``model_type``) load through :func:`load_native`, which asks each family's recogniser.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedConfig, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import cached_file

from dnalm.models.families.caduceus import (
    CaduceusConfig,
    CaduceusForMaskedLM,
    CaduceusForSequenceClassification,
    CaduceusModel,
)
from dnalm.models.families.dnabert2 import (
    DnaBert2Config,
    DnaBert2ForMaskedLM,
    DnaBert2ForSequenceClassification,
    DnaBert2Model,
)
from dnalm.models.families.gena_bert import (
    GenaBertConfig,
    GenaBertForMaskedLM,
    GenaBertForSequenceClassification,
    GenaBertModel,
)
from dnalm.models.families.hyenadna import (
    HyenaDNAConfig,
    HyenaDNAForCausalLM,
    HyenaDNAForSequenceClassification,
    HyenaDNAModel,
)
from dnalm.models.families.nt_v2 import (
    NucleotideTransformerV2Config,
    NucleotideTransformerV2ForMaskedLM,
    NucleotideTransformerV2ForSequenceClassification,
    NucleotideTransformerV2Model,
)
from dnalm.models.families.published import PUBLISHED_CONFIGS, config_mismatches
from dnalm.models.families.registry import (
    HEADS,
    Family,
    Head,
    families,
    family_of,
    is_causal,
    register_family,
)
from dnalm.models.loading import (
    describe_misfit,
    note_dropped_head,
    quiet_load_report,
    sort_report,
)

__all__ = [
    "PUBLISHED_CONFIGS",
    "DnaBert2Config",
    "DnaBert2ForMaskedLM",
    "DnaBert2ForSequenceClassification",
    "DnaBert2Model",
    "CaduceusConfig",
    "CaduceusForMaskedLM",
    "CaduceusForSequenceClassification",
    "CaduceusModel",
    "GenaBertConfig",
    "GenaBertForMaskedLM",
    "GenaBertForSequenceClassification",
    "GenaBertModel",
    "HyenaDNAConfig",
    "HyenaDNAForCausalLM",
    "HyenaDNAForSequenceClassification",
    "HyenaDNAModel",
    "NucleotideTransformerV2Config",
    "NucleotideTransformerV2ForMaskedLM",
    "NucleotideTransformerV2ForSequenceClassification",
    "NucleotideTransformerV2Model",
    "Family",
    "config_mismatches",
    "families",
    "family_of",
    "is_causal",
    "load_native",
    "native_config",
    "native_model_class",
    "native_tokenizer",
    "register_family",
]

log = logging.getLogger(__name__)

# Fields of a published config.json that point at remote code or the old model_type; dropped when
# the dict becomes a native config so a saved copy never asks for trust_remote_code again.
_REMOTE_FIELDS = ("model_type", "auto_map", "architectures")


def native_model_class(config_dict: dict[str, Any], head: Head) -> type[PreTrainedModel] | None:
    """The native class that should load a raw published ``config.json`` dict, or None.

    None means plain ``transformers`` loads the checkpoint correctly (e.g. NT v1, protein ESM-2,
    DNABERT, post-LN BERT). ``head`` is ``"base"`` (encoder), ``"mlm"`` (encoder + language-model head) or
    ``"classifier"`` (encoder + the sequence head of a fine-tuned ``*ForSequenceClassification``).
    """
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {head!r}")
    family = family_of(config_dict)
    return None if family is None else family.model_class(head)


def native_config(config_dict: dict[str, Any]) -> PreTrainedConfig:
    """Build the native config object from a published ``config.json`` dict (remote-code fields dropped)."""
    family = family_of(config_dict)
    if family is None:
        raise ValueError(
            f"config with model_type={config_dict.get('model_type')!r} is not a native dnalm family; "
            "load it with transformers AutoModel"
        )
    fields = {k: v for k, v in config_dict.items() if k not in _REMOTE_FIELDS}
    return family.config(**fields)


def native_tokenizer(config_dict: dict[str, Any], tokenizer_config: dict[str, Any]) -> PreTrainedTokenizerBase | None:
    """dnalm's own tokenizer for a native family whose published tokenizer is remote code, else None.

    Only families that register a ``tokenizer`` hook have one (HyenaDNA's ``tokenization_hyena.py``).
    """
    family = family_of(config_dict)
    if family is None or family.tokenizer is None:
        return None
    return family.tokenizer(tokenizer_config)


def load_native(
    path_or_dir: str | Path,
    head: Head,
    dtype: torch.dtype | None = None,
    config_overrides: dict[str, Any] | None = None,
    new_head: bool = False,
    **from_pretrained_kwargs: Any,
) -> PreTrainedModel:
    """Load a published checkpoint of a native family (NT v2, GENA-LM BERT dense or block-sparse, DNABERT-2, ...).

    Reads ``config.json`` (updated with ``config_overrides``), picks the class with
    :func:`native_model_class`, converts the config and calls ``from_pretrained``
    (``pytorch_model.bin`` is read with ``weights_only=True``; safetensors preferred when present).
    Raises ``ValueError`` when the checkpoint is not a native family, when a backbone weight is missing,
    unexpected or of another shape (see :mod:`dnalm.models.loading`). A file without pooler (GENA-LM's
    BertForMaskedLM dumps, the ``-t2t`` models) loads as ``"base"`` with ``pooler = None``: dnalm pools itself.
    ``new_head=True`` lets the classifier head be missing from the file and freshly initialised (a PEFT
    adapter restores it). Extra keyword arguments (``revision``, ``attn_implementation``, ``device_map``, ...)
    go to ``from_pretrained``.
    """
    config_path = cached_file(
        str(path_or_dir), "config.json", revision=from_pretrained_kwargs.get("revision")
    )
    with open(config_path, encoding="utf-8") as handle:
        config_dict = {**json.load(handle), **(config_overrides or {})}
    model_cls = native_model_class(config_dict, head)
    if model_cls is None:
        labels = [family.label for family in families()]
        raise ValueError(
            f"{path_or_dir}: model_type={config_dict.get('model_type')!r} loads with plain transformers "
            f"(AutoModel / AutoModelForMaskedLM); load_native only handles {', '.join(labels[:-1])} and {labels[-1]}"
        )
    config = native_config(config_dict)
    want_info = from_pretrained_kwargs.pop("output_loading_info", False)
    try:
        with quiet_load_report():  # the report is checked (and explained) below
            model, info = model_cls.from_pretrained(
                str(path_or_dir), config=config, dtype=dtype, output_loading_info=True,
                ignore_mismatched_sizes=True,  # listed in the report, then refused below
                **from_pretrained_kwargs,
            )
    except RuntimeError as error:  # transformers' own load errors (e.g. a tensor it cannot copy)
        raise ValueError(f"{path_or_dir}: checkpoint tensors do not load into {model_cls.__name__}: {error}") from error
    _check_sparse_layouts(path_or_dir, info, drawn_ok="sparse_attention" in (config_overrides or {}))
    _check_loading_info(path_or_dir, model, head, info, new_head)
    return (model, info) if want_info else model


def _check_sparse_layouts(path: str | Path, info: dict[str, Any], drawn_ok: bool) -> None:
    """A block-sparse file must carry its DeepSpeed ``master_layout`` buffers: without them the random blocks
    would be drawn here and differ from training. Only an explicitly requested pattern may draw them."""
    missing = info.get("missing_keys") or []
    layouts = sorted(k for k in missing if k.endswith("sparse_self_attention.master_layout"))
    if not layouts:
        return
    if not drawn_ok:
        raise ValueError(
            f"{path}: the config asks for block-sparse attention but the weights have no "
            f"sparse_self_attention.master_layout ({len(layouts)} layers), so the random blocks the model was "
            "trained with are unknown; use the original checkpoint file (DeepSpeed saves the layouts), or pass "
            "config_overrides={'sparse_attention': {...}} to run a dense checkpoint sparse with drawn layouts"
        )
    log.warning("%s: no master_layout in the checkpoint; %d sparse layouts were drawn from a seeded generator "
                "(config_overrides asked for sparse attention)", path, len(layouts))
    info["missing_keys"] = [k for k in missing if k not in layouts]


def _check_loading_info(path: str | Path, model: PreTrainedModel, head: Head, info: dict[str, Any],
                        new_head: bool) -> None:
    """Fail instead of leaving randomly initialised weights or ignoring tensors that belong to the network."""
    report = sort_report(model, info, "new_head" if new_head else "base" if head == "base" else "classifier")
    if not report.fits:
        raise ValueError(describe_misfit(report, str(path), type(model).__name__)
                         + "; check that config.json belongs to these weights and that the right head was requested")
    if report.head_missing and not new_head:
        if head == "classifier":
            raise ValueError(
                f"{path}: no sequence-classification head in this checkpoint (missing {report.head_missing[:6]}): "
                "it is a pre-trained model, not a fine-tuned classifier; put a dnalm head on it (head=linear or "
                "head=mlp)"
            )
        raise ValueError(f"{path}: no masked-LM head in this checkpoint (missing {report.head_missing[:6]})")
    if report.unused_missing:
        # A BertForMaskedLM dump has no pooler: drop the module rather than keep a random one.
        for name in {key.split(".", 1)[0] for key in report.unused_missing}:
            setattr(model, name, None)
    note_dropped_head(report, str(path))

