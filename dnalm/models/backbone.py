"""The one place that loads a backbone and its tokenizer (hub id or local folder, revision, dtype)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from dnalm.errors import ConfigError, ModelLoadError
from dnalm.models import hub
from dnalm.models.loading import (
    LoadReport,
    Role,
    infer_model_type,
    note_dropped_head,
    quiet_load_report,
    require_fit,
    weight_names,
)

log = logging.getLogger(__name__)

# Used when PEFT's own table has no entry for an architecture (names of the attention projections).
_EXTRA_LORA_TARGETS: dict[str, list[str]] = {
    "esm": ["query", "value"],
    "bert": ["query", "value"],
    "big_bird": ["query", "value"],
    "modernbert": ["Wqkv"],
    "mixtral": ["q_proj", "v_proj"],
    "nucleotide_transformer_v2": ["query", "value"],
    "gena_lm_bert": ["query", "value"],
    "dnabert2": ["Wqkv"],
    "hyenadna_native": ["in_proj", "out_proj"],
    "caduceus": ["in_proj", "out_proj"],
}

_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
           "float16": torch.float16, "fp16": torch.float16}


@dataclass
class Backbone:
    """A loaded pretrained model with the facts the rest of dnalm needs about it."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    name: str
    model_type: str
    hidden_size: int
    num_layers: int
    is_causal: bool
    max_tokens: int | None
    lora_targets: list[str] = field(default_factory=list)
    native_head: bool = False
    # Causal attention alone keeps right padding away from every real token (see _MASK_FREE_CAUSAL_TYPES)
    right_padding_needs_no_mask: bool = False

    @property
    def total_params(self) -> int:
        """Number of parameters of the backbone."""
        return sum(p.numel() for p in self.model.parameters())


def _offline_message(reference: str, what: str) -> str:
    return (
        f"cannot load {what} '{reference}': the Hugging Face hub is unreachable and it is not in the local cache.\n"
        f"  Download it on a machine with network (e.g. `hf download {reference} --local-dir <folder>`), then\n"
        f"  point dnalm at the folder: model.name_or_path=<folder> (and model.tokenizer=<folder> if separate)."
    )


def resolve_reference(reference: str, revision: str | None, what: str) -> tuple[str, bool]:
    """Return (reference, local_files_only) for loading, failing fast when the hub cannot be reached."""
    if hub.is_local(reference):
        return str(Path(reference).expanduser()), True
    if hub.looks_like_path(reference):
        key = {"model": "model.name_or_path", "tokenizer": "model.tokenizer"}.get(what, what)
        raise ModelLoadError(f"{key}={reference}: the folder does not exist (a path, not a hub id). "
                             f"Check the path (relative paths start where dnalm runs: {Path.cwd()}).")
    if hub.hub_reachable():
        return reference, False
    if hub.cached_on_disk(reference, revision=revision):
        return reference, True
    raise ModelLoadError(_offline_message(reference, what))


def _default_lora_targets(model_type: str) -> list[str]:
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as peft_targets

    targets = peft_targets.get(model_type) or _EXTRA_LORA_TARGETS.get(model_type)
    return list(targets) if targets else []


def read_raw_config(reference: str, revision: str | None, local_only: bool) -> dict[str, Any]:
    """The config.json of a checkpoint as published (to recognise families transformers cannot load)."""
    if hub.is_local(reference):
        path = Path(reference) / "config.json"
    else:
        from huggingface_hub import hf_hub_download

        path = Path(hf_hub_download(reference, "config.json", revision=revision, local_files_only=local_only))
    if not path.is_file():
        raise ModelLoadError(f"'{reference}' has no config.json: is it a Hugging Face model folder?")
    return json.loads(path.read_text())


def _completed(raw: dict[str, Any], reference: str) -> dict[str, Any]:
    """``raw`` with its model_type, inferred from the architecture fields or weights when the file lacks it."""
    if raw.get("model_type"):
        return raw
    # Copies of hub configs circulate without model_type: the architecture fields or weights still tell it.
    model_type = infer_model_type(raw, weight_names(reference) if hub.is_local(reference) else ())
    if model_type is None:
        raise ModelLoadError(
            f"the config.json of '{reference}' has no model_type, and neither its architectures/auto_map fields nor "
            "its weight names tell which architecture it is: add \"model_type\": \"<type>\" (e.g. \"esm\", "
            "\"bert\") to it.")
    log.info("'%s' has no model_type in config.json; loading it as %r (from its architecture fields or weights)",
             reference, model_type)
    return {**raw, "model_type": model_type}


def _native_class(raw_config: dict[str, Any], head: str) -> type | None:
    """dnalm's own implementation for families whose published remote code no longer imports, if any."""
    from dnalm.models.families import native_model_class  # imported on use: it registers the Auto classes

    try:
        return native_model_class(raw_config, head)
    except ValueError as err:
        raise ModelLoadError(str(err)) from err


def _tiny(model_cfg: DictConfig) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    from dnalm.models.tiny import build_tiny

    return build_tiny(OmegaConf.to_container(model_cfg.from_config, resolve=True))


def load_backbone(model_cfg: DictConfig, native_head: bool = False, dtype: str | None = None) -> Backbone:
    """Load the backbone described by a ``model`` config group.

    ``native_head=True`` loads the checkpoint's own ``*ForSequenceClassification`` head (or a PEFT adapter on its
    base model) so published fine-tuned classifiers can be evaluated as they are.
    """
    if model_cfg.get("from_config"):
        model, tokenizer = _tiny(model_cfg)
    else:
        model, tokenizer = _load_pretrained(model_cfg, native_head, dtype or model_cfg.get("dtype"))
    config: PretrainedConfig = model.config
    _check_tokenizer_fits(model, tokenizer, model_cfg)
    if not native_head:
        _drop_unused_modules(model)
    targets = list(model_cfg.get("lora_target_modules") or []) or _default_lora_targets(config.model_type)
    max_tokens = model_cfg.get("max_tokens") or getattr(config, "max_position_embeddings", None)
    return Backbone(
        model=model,
        tokenizer=tokenizer,
        name=str(model_cfg.get("name") or model_cfg.get("name_or_path")),
        model_type=config.model_type,
        hidden_size=int(getattr(config, "hidden_size", None) or config.d_model),
        num_layers=int(getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", 0)),
        is_causal=bool(getattr(config, "is_decoder", False)) or _is_causal_type(config),
        max_tokens=int(max_tokens) if max_tokens else None,
        lora_targets=targets,
        native_head=native_head,
        right_padding_needs_no_mask=config.model_type in _MASK_FREE_CAUSAL_TYPES,
    )


# Decoders whose transformers forward uses the attention mask for attention only (positions come from the
# cache position, not from the mask). With right padding, a real token's causal window holds no padding, so
# its outputs are the same without the mask, and attention runs as SDPA's is_causal kernel (FlashAttention on
# GPU) instead of over a materialised [B, 1, T, T] mask. Padded positions differ, and nothing reads them.
_MASK_FREE_CAUSAL_TYPES = frozenset({"llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe"})


def _drop_unused_modules(model: PreTrainedModel) -> None:
    """Remove the pooler / contact head of transformers' and dnalm's native encoders: dnalm pools itself, and
    parameters that never get a gradient break DDP (unused parameters) and inflate the trainable count. (Files
    without a pooler, like GENA-LM's -t2t dumps, may therefore lack it: the loading check allows that.)"""
    if not type(model).__module__.startswith(("transformers.", "dnalm.models.families.")):
        return  # remote code: its forward may not allow a missing module
    for name in ("pooler", "contact_head"):
        if isinstance(getattr(model, name, None), torch.nn.Module):
            setattr(model, name, None)


def _is_causal_type(config: PretrainedConfig) -> bool:
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    from dnalm.models.families import is_causal

    if is_causal(config.model_type):  # native families transformers does not list (HyenaDNA)
        return True
    return config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and config.model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def _load_pretrained(model_cfg: DictConfig, native_head: bool,
                     dtype: str | None) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    reference = model_cfg.get("name_or_path")
    if not reference:
        raise ConfigError("model.name_or_path is empty: give a Hugging Face hub id or a local model folder.")
    revision = model_cfg.get("revision")
    trust = bool(model_cfg.get("trust_remote_code", False))
    source, local_only = resolve_reference(str(reference), revision, "model")
    kwargs: dict[str, Any] = {"revision": revision, "local_files_only": local_only, "trust_remote_code": trust}
    if dtype and dtype != "auto":
        if dtype not in _DTYPES:
            raise ConfigError(f"model.dtype={dtype!r} is not one of {sorted(_DTYPES)} or 'auto'.")
        kwargs["dtype"] = _DTYPES[dtype]

    adapter_file = Path(source) / "adapter_config.json"
    if adapter_file.is_file():
        model = _load_peft_classifier(adapter_file, model_cfg, kwargs)
    else:
        raw_file = read_raw_config(source, revision, local_only)
        raw = _completed(raw_file, source)
        _check_published(raw, model_cfg, source)
        model, _ = _load_model(source, raw, "classifier" if native_head else "base", trust, kwargs,
                               inferred_type=not raw_file.get("model_type"))
    tok_ref = model_cfg.get("tokenizer") or (source if not adapter_file.is_file() else model.peft_config["default"].base_model_name_or_path)
    tok_source, tok_local = resolve_reference(str(tok_ref), revision, "tokenizer")
    try:
        tokenizer = None if trust else _native_tokenizer(tok_source, revision, tok_local)
        if tokenizer is None:
            tokenizer = AutoTokenizer.from_pretrained(tok_source, revision=revision, local_files_only=tok_local,
                                                      trust_remote_code=trust)
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"cannot load the tokenizer from '{tok_ref}': {err}\n"
                             "  Set model.tokenizer=<folder or hub id> to a tokenizer that matches the model.") from err
    if tokenizer.pad_token is None:
        # Decoder-only tokenizers often have no pad token; padding is masked out, so EOS serves.
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def _native_tokenizer(source: str, revision: str | None, local_only: bool) -> PreTrainedTokenizerBase | None:
    """dnalm's tokenizer for a native family whose published tokenizer class is remote code (HyenaDNA's
    CharacterTokenizer, CaduceusTokenizer), or None."""
    from dnalm.models.families import native_tokenizer
    from dnalm.tokenizers import published_tokenizer

    try:
        raw = read_raw_config(source, revision, local_only)
        if hub.is_local(source):
            path = Path(source) / "tokenizer_config.json"
        else:
            from huggingface_hub import hf_hub_download

            path = Path(hf_hub_download(source, "tokenizer_config.json", revision=revision, local_files_only=local_only))
    except (ModelLoadError, OSError):
        return None  # no model config or tokenizer config here: AutoTokenizer reports what is missing
    if not path.is_file():
        return None
    tokenizer_config = json.loads(path.read_text())
    tokenizer = native_tokenizer(raw, tokenizer_config)
    if tokenizer is not None:
        log.info("using dnalm's character tokenizer for %s (its tokenizer files name remote code)", source)
        return tokenizer
    return published_tokenizer(tokenizer_config)


def _check_published(raw: dict[str, Any], model_cfg: DictConfig, source: str) -> None:
    """A zoo name must load the architecture it names: compare config.json with the published values."""
    from dnalm.models.families.published import PUBLISHED_CONFIGS, config_mismatches

    hub_id = (model_cfg.get("zoo") or {}).get("hub_id")
    if hub_id not in PUBLISHED_CONFIGS:
        return
    problems = config_mismatches(raw, hub_id)
    if problems:
        raise ModelLoadError(
            f"'{source}' does not match the published {hub_id} that model={model_cfg.get('name')} names: "
            + "; ".join(problems[:5]) + ". Point model.name_or_path at a copy of that checkpoint, or load a "
            "different checkpoint with model=hf model.name_or_path=<folder>.")


def _load_model(source: str, raw: dict[str, Any], role: Role, trust: bool, kwargs: dict[str, Any],
                inferred_type: bool = False, num_labels: int | None = None) -> tuple[PreTrainedModel, LoadReport]:
    """Load ``source`` as an encoder (``role="base"``) or a classifier, natively or with transformers, and check
    that every backbone weight came from the file. ``raw`` is its config.json with ``model_type``
    (``inferred_type``: that key is not in the file); ``num_labels`` sizes a new head."""
    head = "base" if role == "base" else "classifier"
    native = _native_class(raw, head)
    if native is not None and trust and raw.get("auto_map") and not _builtin_type(raw.get("model_type")):
        # A model_type of its own (HyenaDNA's hyenadna): trust_remote_code=true asks for the checkpoint's code.
        log.info("model.trust_remote_code=true: running %s's own code instead of dnalm's native %s",
                 source, native.__name__)
        native = None
    if native is not None:
        model, info = _load_native(source, raw, role, kwargs, inferred_type, num_labels, native.__name__)
    else:
        model, info = _load_transformers(source, raw, role, trust, kwargs, inferred_type, num_labels)
    # load_native has refused misfits already; this checks transformers' loads (and remote code).
    report = require_fit(model, info, source, role, raw, trust)
    if report.head_missing and role == "classifier":
        raise ModelLoadError(
            f"'{source}' has no sequence-classification head (missing {report.head_missing[:6]}): it is a "
            "pre-trained model, not a fine-tuned classifier; put a dnalm head on it (head=linear or head=mlp).")
    if native is None:
        note_dropped_head(report, source)  # load_native says it for the native families
    return model, report


def _builtin_type(model_type: str | None) -> bool:
    """Whether transformers itself implements ``model_type`` (esm, bert, ...; not HyenaDNA's hyenadna)."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    return model_type in CONFIG_MAPPING_NAMES


def _load_native(source: str, raw: dict[str, Any], role: Role, kwargs: dict[str, Any], inferred_type: bool,
                 num_labels: int | None, name: str) -> tuple[PreTrainedModel, dict[str, Any]]:
    from dnalm.models.families import load_native

    overrides = {**({"model_type": raw["model_type"]} if inferred_type else {}),
                 **({"num_labels": num_labels} if num_labels else {})}
    log.info("loading %s with dnalm's native %s (no remote code)", source, name)
    try:
        return load_native(source, "base" if role == "base" else "classifier", dtype=kwargs.get("dtype"),
                           config_overrides=overrides or None, new_head=role == "new_head",
                           output_loading_info=True, revision=kwargs.get("revision"),
                           local_files_only=kwargs.get("local_files_only", False))
    except ValueError as err:
        raise ModelLoadError(f"cannot load '{source}' with dnalm's native {name}: {err}") from err


def _load_transformers(source: str, raw: dict[str, Any], role: Role, trust: bool, kwargs: dict[str, Any],
                       inferred_type: bool, num_labels: int | None) -> tuple[PreTrainedModel, dict[str, Any]]:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    model_type = raw.get("model_type")
    if model_type not in CONFIG_MAPPING_NAMES and not trust:
        raise ModelLoadError(
            f"'{source}' has model_type={model_type!r}, which transformers does not implement and dnalm has no "
            "native version of. Its own code can run with model.trust_remote_code=true — only for code you "
            "trust, and with model.revision pinned to a commit you have read."
        )
    auto = AutoModel if role == "base" else AutoModelForSequenceClassification
    labels = {"num_labels": num_labels} if num_labels else {}
    if inferred_type and not (trust and "AutoConfig" in (raw.get("auto_map") or {})):
        # AutoConfig cannot read a config.json without model_type: build the config from the completed dict.
        fields = {k: v for k, v in raw.items() if k != "model_type"}
        kwargs = {**kwargs, "config": AutoConfig.for_model(model_type, **{**fields, **labels})}
    else:
        kwargs = {**kwargs, **labels}
    try:
        with quiet_load_report():  # dnalm checks the same report and explains it
            return auto.from_pretrained(source, output_loading_info=True, ignore_mismatched_sizes=True, **kwargs)
    except (OSError, ValueError, RuntimeError) as err:
        raise ModelLoadError(f"cannot load '{source}' as {auto.__name__}: {err}") from err


def _load_peft_classifier(adapter_file: Path, model_cfg: DictConfig, kwargs: dict[str, Any]) -> PreTrainedModel:
    """A PEFT adapter folder: load its base model with a new classification head, then the adapter."""
    from peft import PeftModel

    adapter = json.loads(adapter_file.read_text())
    base_ref = model_cfg.get("base_model") or adapter.get("base_model_name_or_path")
    if not base_ref:
        raise ModelLoadError(f"{adapter_file} names no base model: set model.base_model=<folder or hub id>.")
    base_source, base_local = resolve_reference(str(base_ref), model_cfg.get("revision"), "base model")
    raw_file = read_raw_config(base_source, model_cfg.get("revision"), base_local)
    shapes = _adapter_shapes(adapter_file.parent)
    base, report = _load_model(base_source, _completed(raw_file, base_source), "new_head",
                               bool(kwargs.get("trust_remote_code")), {**kwargs, "local_files_only": base_local},
                               inferred_type=not raw_file.get("model_type"), num_labels=_adapter_num_labels(shapes))
    # What the base file lacks was created at random: the adapter must bring every such weight back.
    unrestored = [key for key in report.head_missing if not any(a == key or a.endswith("." + key) for a in shapes)]
    if unrestored:
        raise ModelLoadError(
            f"the adapter in {adapter_file.parent} does not hold {len(unrestored)} head weights that its base model "
            f"'{base_ref}' lacks [{', '.join(unrestored[:6])}], so they would be random. Save the adapter with "
            "those modules in modules_to_save, or use a base model that has them.")
    return PeftModel.from_pretrained(base, str(adapter_file.parent))


# Output layers of the classification heads PEFT saves in modules_to_save (ESM/NT, BERT/GENA, Mistral/Llama).
_HEAD_WEIGHTS = ("classifier.out_proj.weight", "classifier.weight", "score.weight")


def _adapter_shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes saved in a PEFT adapter folder (empty when it holds no weights file)."""
    if (folder / "adapter_model.safetensors").is_file():
        from safetensors import safe_open

        with safe_open(str(folder / "adapter_model.safetensors"), framework="pt") as handle:
            return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    if (folder / "adapter_model.bin").is_file():
        state = torch.load(folder / "adapter_model.bin", map_location="cpu", weights_only=True)
        return {key: tuple(value.shape) for key, value in state.items()}
    return {}


def _adapter_num_labels(shapes: dict[str, tuple[int, ...]]) -> int | None:
    """The number of labels of the head saved in a PEFT adapter, read from its weight shapes (None if absent)."""
    for key, shape in shapes.items():
        if key.endswith(_HEAD_WEIGHTS) and len(shape) == 2:
            return int(shape[0])
    return None


def _check_tokenizer_fits(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, model_cfg: DictConfig) -> None:
    embeddings = model.get_input_embeddings()
    rows = getattr(embeddings, "num_embeddings", None)
    if rows is not None and len(tokenizer) > rows:
        raise ModelLoadError(
            f"tokenizer/model mismatch: the tokenizer has {len(tokenizer)} tokens but the model "
            f"'{model_cfg.get('name_or_path') or model_cfg.get('name')}' embeds only {rows}. Use the model's own "
            "tokenizer (leave model.tokenizer empty) or one with the same vocabulary."
        )
