"""Every weight accounted for: read the loading report of a ``from_pretrained`` call and sort what it says.

``transformers`` initialises at random every parameter a checkpoint lacks, skips every tensor the model has
no place for, prints a MISSING/UNEXPECTED table and carries on, so a checkpoint whose weights are named for
other code (DNABERT-2's fused ``Wqkv`` read by plain ``BertModel``) becomes a random network that trains.
Every dnalm load asks for the report (``output_loading_info=True``) and sorts it with :func:`sort_report`:
backbone weights missing from the file, tensors that name backbone modules the model lacks and shapes that
differ are errors; only a newly created task head, and the pooler / contact head dnalm drops from an
encoder, may be missing. Tensors of heads the file carries for another task (masked-LM, next-sentence, a
published classification head when the encoder alone is loaded) are left out on purpose.

The same module recognises the family of a ``config.json`` without ``model_type`` (:func:`infer_model_type`)
from its architecture fields and, for a local folder, its weight names.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

log = logging.getLogger(__name__)

# Modules of a transformers encoder that dnalm removes after loading (it pools itself): their weights may be absent.
UNUSED_MODULES = ("pooler", "contact_head")
# First names of the sequence-classification heads fine-tuned files carry (BERT/ESM/BigBird, Llama/Mistral).
CLASSIFIER_HEADS = ("classifier", "score")

Role = Literal["base", "classifier", "new_head"]


@dataclass
class LoadReport:
    """A loading report sorted by what each key means for dnalm (model-side names)."""

    missing: list[str] = field(default_factory=list)  # backbone weights the file lacks: they would be random
    unexpected: list[str] = field(default_factory=list)  # tensors naming backbone modules the model does not have
    mismatched: list[str] = field(default_factory=list)  # "key: file (a, b) vs model (c, d)"
    head_missing: list[str] = field(default_factory=list)  # task-head weights the file lacks (role classifier/new_head)
    unused_missing: list[str] = field(default_factory=list)  # pooler / contact head of an encoder (dropped by dnalm)
    dropped_head: list[str] = field(default_factory=list)  # the file's own classification head, unused by an encoder

    @property
    def fits(self) -> bool:
        """True when every backbone weight came from the file and every file tensor found its place."""
        return not (self.missing or self.unexpected or self.mismatched)


def _first(key: str) -> str:
    return key.split(".", 1)[0]


def sort_report(model: torch.nn.Module, info: dict[str, Any], role: Role) -> LoadReport:
    """Sort ``from_pretrained(..., output_loading_info=True)``'s report for ``model`` loaded in ``role``.

    ``role`` is ``"base"`` (an encoder/decoder without task head), ``"classifier"`` (a model whose head must come
    from the file: a published fine-tuned ``*ForSequenceClassification``, or an MLM / causal-LM head) or
    ``"new_head"`` (a classifier whose head is created here, e.g. the base of a PEFT adapter that restores it).
    The caller decides what a missing head means (``head_missing``); the rest is in :attr:`LoadReport.fits`.
    """
    prefix = getattr(model, "base_model_prefix", "") or ""
    base = getattr(model, "base_model", model)
    has_head = base is not model  # a *ForXxx model: the backbone lives under `prefix`
    children = {name for name, _ in model.named_children()} | ({prefix} if prefix else set())
    report = LoadReport()

    def is_head(key: str) -> bool:
        # In a task model the head is everything outside the backbone, plus BERT's pooler that feeds it.
        return has_head and (not key.startswith(prefix + ".") or key.startswith(f"{prefix}.pooler."))

    for key in sorted(info.get("missing_keys") or ()):
        if is_head(key):
            report.head_missing.append(key)
        elif not has_head and _first(key) in UNUSED_MODULES:
            report.unused_missing.append(key)
        else:
            report.missing.append(key)
    for key in sorted(info.get("unexpected_keys") or ()):
        if _first(key) in children:
            report.unexpected.append(key)  # named like a module of this model, but it has no such tensor
        elif not has_head and _first(key) in CLASSIFIER_HEADS:
            report.dropped_head.append(key)
        # else: a head for another task (cls.*, lm_head.*): left out on purpose
    for entry in sorted(info.get("mismatched_keys") or (), key=lambda item: item[0]):
        key, in_file, in_model = entry[0], tuple(entry[1]), tuple(entry[2])
        if role == "new_head" and is_head(key):
            report.head_missing.append(key)  # the new head replaces it
        else:
            report.mismatched.append(f"{key}: file {in_file} vs model {in_model}")
    return report


def _listed(keys: list[str], limit: int = 6) -> str:
    shown = ", ".join(keys[:limit])
    return f"{shown}, ... ({len(keys)} in all)" if len(keys) > limit else shown


def describe_misfit(report: LoadReport, source: str, model_name: str) -> str:
    """What did not fit, one clause per kind (for an error message)."""
    parts = []
    if report.missing:
        parts.append(f"{len(report.missing)} backbone weights are not in the file and would stay random "
                     f"[{_listed(report.missing)}]")
    if report.unexpected:
        parts.append(f"{len(report.unexpected)} tensors of the file have no place in {model_name} "
                     f"[{_listed(report.unexpected)}]")
    if report.mismatched:
        parts.append(f"{len(report.mismatched)} shapes differ [{_listed(report.mismatched, 3)}]")
    return f"the weights in '{source}' do not fit {model_name}: " + "; ".join(parts)


def remote_code_hint(raw_config: dict[str, Any], trust_remote_code: bool) -> str:
    """The fix to suggest when a transformers class does not fit a checkpoint's weights."""
    classes = _auto_map_classes(raw_config)
    if classes and not trust_remote_code:
        return (f" config.json has auto_map ({', '.join(sorted(set(classes)))}): the weights are written for the "
                "checkpoint's own modelling code, which plain transformers does not reproduce. Run that code with "
                "model.trust_remote_code=true and model.revision=<a commit you have read> — only for code you trust.")
    if trust_remote_code:
        return (" The checkpoint's own code builds a different network than these weights: check that "
                "model.revision names the commit the weights were saved with.")
    return " Check that config.json belongs to these weights (model.name_or_path) and names the right model_type."


def require_fit(model: torch.nn.Module, info: dict[str, Any], source: str, role: Role,
                raw_config: dict[str, Any] | None = None, trust_remote_code: bool = False) -> LoadReport:
    """:func:`sort_report`, raising :class:`~dnalm.errors.ModelLoadError` (keys and fix) when a backbone weight
    is missing, unexpected or of another shape. ``raw_config`` (config.json) tells whether to suggest remote code."""
    report = sort_report(model, info, role)
    if not report.fits:
        from dnalm.errors import ModelLoadError

        config = raw_config if raw_config is not None else {"auto_map": getattr(model.config, "auto_map", None)}
        raise ModelLoadError(describe_misfit(report, source, type(model).__name__) + "."
                             + remote_code_hint(config, trust_remote_code))
    return report


def note_dropped_head(report: LoadReport, source: str) -> None:
    """Say once, in dnalm's words, that a fine-tuned file's classification head is not used by an encoder load."""
    if report.dropped_head:
        heads = sorted({_first(key) for key in report.dropped_head})
        log.warning("'%s' is a fine-tuned classifier: its published head (%s, %d tensors) is not used; dnalm puts "
                    "its own head on the encoder (head=native keeps the published one).",
                    source, ", ".join(f"{h}.*" for h in heads), len(report.dropped_head))


class _DropLoadReport(logging.Filter):
    """Drops transformers' MISSING/UNEXPECTED table: dnalm checks the same report and explains it itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "LOAD REPORT" not in str(record.msg)


@contextmanager
def quiet_load_report() -> Iterator[None]:
    """Silence transformers' loading table inside the block (other warnings still show)."""
    logger = logging.getLogger("transformers.modeling_utils")
    drop = _DropLoadReport()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


# ---- a config.json without model_type ----------------------------------------------------------------------


def _auto_map_classes(raw_config: dict[str, Any]) -> list[str]:
    auto_map = raw_config.get("auto_map") or {}
    values: Iterable[Any] = auto_map.values() if isinstance(auto_map, dict) else auto_map
    names = []
    for value in values:
        for item in value if isinstance(value, list | tuple) else [value]:
            if isinstance(item, str):
                names.append(item.split("--")[-1].rsplit(".", 1)[-1])  # "repo--module.Class" -> "Class"
    return names


def _class_to_model_type() -> dict[str, str]:
    """transformers class name (configs and models) -> model_type, from the Auto mappings."""
    from transformers.models.auto import configuration_auto, modeling_auto

    table: dict[str, str] = {name: model_type for model_type, name in configuration_auto.CONFIG_MAPPING_NAMES.items()}
    for attribute in dir(modeling_auto):
        mapping = getattr(modeling_auto, attribute)
        if attribute.startswith("MODEL") and attribute.endswith("_MAPPING_NAMES") and isinstance(mapping, dict):
            for model_type, names in mapping.items():
                for name in names if isinstance(names, list | tuple) else [names]:
                    table.setdefault(name, model_type)
    return table


# Top-level weight names -> model_type, for a config that names no architecture at all.
_WEIGHT_PREFIXES = {"esm": "esm", "bert": "bert"}


def weight_names(folder: str | Path) -> list[str]:
    """Tensor names of a local checkpoint folder (safetensors or ``pytorch_model.bin``, sharded or not)."""
    folder = Path(folder)
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (folder / index).is_file():
            return sorted(json.loads((folder / index).read_text()).get("weight_map", {}))
    if (folder / "model.safetensors").is_file():
        from safetensors import safe_open

        with safe_open(str(folder / "model.safetensors"), framework="pt") as handle:
            return sorted(handle.keys())
    if (folder / "pytorch_model.bin").is_file():
        try:  # memory-mapped: names without reading the tensors
            state = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # the legacy (non-zip) format cannot be mapped
            state = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
        return sorted(state)
    return []


def infer_model_type(raw_config: dict[str, Any], weights: Iterable[str] = ()) -> str | None:
    """``model_type`` of a config.json, or when absent the one its ``architectures`` / ``auto_map`` classes or
    its weight names point at (None when nothing does)."""
    if raw_config.get("model_type"):
        return str(raw_config["model_type"])
    names = [str(n) for n in raw_config.get("architectures") or []] + _auto_map_classes(raw_config)
    if names:
        table = _class_to_model_type()
        for name in names:
            if name in table:
                return table[name]
    prefixes = {_first(key) for key in weights}
    found = sorted({_WEIGHT_PREFIXES[p] for p in prefixes if p in _WEIGHT_PREFIXES})
    if len(found) == 1 and not (found[0] == "bert" and "attention_type" in raw_config):  # BigBird shares `bert.`
        return found[0]
    return None
