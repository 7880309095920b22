"""Language models to pre-train: a published checkpoint with its LM head, or a new one built from a config.

Continued pre-training loads ``AutoModelForMaskedLM`` / ``AutoModelForCausalLM`` (dnalm's native classes for NT
v2 and GENA-LM) and checks the loading report: every backbone weight must come from the file. The LM head may
be missing only when ``model.new_lm_head=true`` says so (e.g. a fine-tuned classifier such as Mistral-DNA tf0,
whose published classifier head is dropped), and then it trains whatever the strategy.

From scratch (``model.from_config``): a ``model_type`` with its config fields (Mixtral / Mistral / Llama
decoders, ESM / BERT encoders) and a tokenizer — trained on the training split of the genome for ``bpe``
(``model.from_config.tokenizer=bpe``, ``tokenizer_vocab_size``), or fixed for ``char`` and ``nt_kmer``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from dnalm.errors import ConfigError, ModelLoadError
from dnalm.models.backbone import read_raw_config, resolve_reference
from dnalm.models.tiny import TOKENIZERS
from dnalm.tokenizers import train_bpe

log = logging.getLogger(__name__)

# Heads of sequence classifiers: dropped when a fine-tuned classifier is continued as a language model.
_CLASSIFIER_WEIGHTS = ("score.", "classifier.", "pooler.")


def auto_class(causal: bool) -> type:
    """The Auto class of the objective."""
    return AutoModelForCausalLM if causal else AutoModelForMaskedLM


def from_scratch(spec: DictConfig, causal: bool, corpus: Iterable[str] | None) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A randomly initialised LM from ``model.from_config`` and its tokenizer (BPE trained on ``corpus``)."""
    fields: dict[str, Any] = OmegaConf.to_container(spec, resolve=True)  # type: ignore[assignment]
    model_type = fields.pop("model_type", None)
    if not model_type:
        raise ConfigError("model.from_config needs a model_type (e.g. mixtral, mistral, llama, esm, bert).")
    kind = fields.pop("tokenizer", "char")
    vocab_size = int(fields.pop("tokenizer_vocab_size", 4096))
    if kind == "bpe":
        if corpus is None:
            raise ConfigError("model.from_config.tokenizer=bpe trains on the genome: give data.paths.")
        hf = train_bpe(corpus, vocab_size=vocab_size, special_tokens=("[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"),
                       prefix=("[CLS]",), suffix=() if causal else ("[SEP]",)).hf
    elif kind in TOKENIZERS:
        hf = TOKENIZERS[kind]()
    else:
        raise ConfigError(f"model.from_config.tokenizer={kind!r}; choose bpe, {', '.join(sorted(TOKENIZERS))}.")
    fields["vocab_size"] = len(hf)
    fields.setdefault("pad_token_id", hf.pad_token_id)
    # the tokenizer's leading token starts every sequence, as a BOS token would (generation starts from it)
    start = hf.bos_token_id if hf.bos_token_id is not None else hf.cls_token_id
    if start is not None:
        fields.setdefault("bos_token_id", start)
    config = AutoConfig.for_model(model_type, **fields)
    try:
        model = auto_class(causal).from_config(config)
    except ValueError as err:
        raise ConfigError(f"model_type={model_type} has no {'causal' if causal else 'masked'} LM class: {err}") from err
    return model, hf


def continued(model_cfg: DictConfig, causal: bool) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, list[str]]:
    """A published checkpoint as a language model, its tokenizer, and the names of newly created weights."""
    reference = model_cfg.get("name_or_path")
    if not reference:
        raise ConfigError("give model.name_or_path=<checkpoint> (continued pre-training) or model.from_config.")
    revision = model_cfg.get("revision")
    source, local = resolve_reference(str(reference), revision, "model")
    raw = read_raw_config(source, revision, local)
    native = _native(raw, causal)
    try:
        if native is not None:
            from dnalm.models.families import load_native

            model = load_native(source, "mlm", revision=revision, local_files_only=local)
            info: dict[str, list[str]] = {"missing_keys": [], "unexpected_keys": []}
        else:
            model, info = auto_class(causal).from_pretrained(
                source, revision=revision, local_files_only=local, output_loading_info=True,
                trust_remote_code=bool(model_cfg.get("trust_remote_code", False)))
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"cannot load '{reference}' as a {'causal' if causal else 'masked'} language model: "
                             f"{err}") from err
    new = check_lm_loading(str(reference), model, info, bool(model_cfg.get("new_lm_head", False)))
    tok_ref = model_cfg.get("tokenizer") or source
    tok_source, tok_local = resolve_reference(str(tok_ref), revision, "tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(tok_source, revision=revision, local_files_only=tok_local)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return model, tokenizer, new


def _native(raw: dict[str, Any], causal: bool) -> type | None:
    if causal:
        return None
    from dnalm.models.families import native_model_class

    return native_model_class(raw, "mlm")


def check_lm_loading(reference: str, model: PreTrainedModel, info: dict[str, list[str]], new_lm_head: bool
                     ) -> list[str]:
    """Stop unless every weight but (with ``new_lm_head``) the LM head came from the file; return new weights."""
    head = model.get_output_embeddings()
    head_names = {name for name, p in model.named_parameters() if head is not None and any(p is q for q in head.parameters())}
    missing = list(info.get("missing_keys", []))
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    missing_head = [k for k in missing if k in head_names or k.endswith(tuple(n.split(".", 1)[-1] for n in head_names))]
    other_missing = [k for k in missing if k not in missing_head]
    if other_missing:
        raise ModelLoadError(f"'{reference}' lacks backbone weights {other_missing[:5]}: they would start random. "
                             "Is it the architecture the config says?")
    if missing_head and not tied and not new_lm_head:
        raise ModelLoadError(f"'{reference}' has no language-model head (missing {missing_head[:2]}): it was saved as "
                             "another kind of model (e.g. a classifier). Set model.new_lm_head=true to train a new "
                             "head from scratch.")
    unexpected = list(info.get("unexpected_keys", []))
    dropped = [k for k in unexpected if k.startswith(_CLASSIFIER_WEIGHTS)]
    if [k for k in unexpected if k not in dropped]:
        raise ModelLoadError(f"'{reference}' holds weights this model does not use: "
                             f"{[k for k in unexpected if k not in dropped][:5]}")
    if dropped:
        log.info("'%s': its classifier head (%s) is dropped for language modelling", reference, ", ".join(dropped))
    if missing_head:
        log.info("'%s': a new language-model head is trained (%s)", reference, ", ".join(missing_head))
    return missing_head


def save_folder(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, folder: Path, card: dict[str, Any]) -> Path:
    """``save_pretrained`` of the (merged) model and tokenizer, plus a short model card, in ``folder``."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        model = model.merge_and_unload()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "dnalm_pretrain.json").write_text(json.dumps(card, indent=2, default=str))
    (folder / "README.md").write_text(model_card(card))
    return folder


def model_card(card: dict[str, Any]) -> str:
    """A short Markdown model card: what was trained on what, how well, and how to load it."""
    metrics = "\n".join(f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |"
                        for k, v in card.get("metrics", {}).items())
    return f"""---
library_name: transformers
tags: [dna, genomics, dnalm]
---
# {card.get('name', 'DNA language model')}

Pre-trained with dnalm (`python -m dnalm.pretrain`), objective **{card.get('objective')}**, strategy
**{card.get('strategy')}**, starting from **{card.get('start')}**.

Data: {', '.join(map(str, card.get('data', [])))}; validation held out by {card.get('holdout')}.

| metric (validation, held-out sequence) | value |
|---|---|
{metrics}

Load it with `transformers` (`{card.get('auto_class')}.from_pretrained(<this folder>)`) or with dnalm:
`python -m dnalm.train model=hf model.name_or_path=<this folder> ...`, `python -m dnalm.embed ...`,
`python -m dnalm.generate model.name_or_path=<this folder>` (causal models).
"""
