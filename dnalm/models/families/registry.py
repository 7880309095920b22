"""The native families, each registered by its own module: classes, and how its published config.json is told.

A family module ends with ``register_family(Family(...))``: its config and model classes and a recogniser that
says whether a published ``config.json`` (with the remote-code ``model_type`` it was published under, or none)
belongs to it. Registering also registers the classes with the transformers Auto classes under the family's
own ``model_type``, so checkpoints saved by them load without ``trust_remote_code``. :func:`family_of` asks
every recogniser; a config its own native ``model_type`` names needs none. Two recognisers claiming one config
is a bug in a recogniser, reported instead of settled by import order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    PreTrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from dnalm.models.loading import infer_model_type

Head = Literal["base", "mlm", "classifier"]
HEADS: tuple[Head, ...] = ("base", "mlm", "classifier")


@dataclass(frozen=True)
class PublishedConfig:
    """What a recogniser reads of a ``config.json``: its fields, its (inferred) ``model_type``, its ``auto_map``."""

    fields: dict[str, Any]
    model_type: str | None  # as written, else inferred from architectures / auto_map (None when nothing says)
    remote: str  # the auto_map's class paths joined by spaces ("" without one)

    @classmethod
    def read(cls, config_dict: dict[str, Any]) -> PublishedConfig:
        """Wrap a raw ``config.json`` dict."""
        auto_map = config_dict.get("auto_map") or {}
        values = auto_map.values() if isinstance(auto_map, dict) else auto_map
        return cls(config_dict, infer_model_type(config_dict), " ".join(str(v) for v in values))


@dataclass(frozen=True)
class Family:
    """One native family: its classes and the rule that recognises its published configs."""

    label: str  # for messages: "NT v2", "GENA-LM BERT", ...
    config: type[PreTrainedConfig]
    base: type[PreTrainedModel]  # the encoder
    lm: type[PreTrainedModel]  # the language-model head model (masked, or causal when `causal`)
    classifier: type[PreTrainedModel]  # the published sequence classifier
    recognise: Callable[[PublishedConfig], bool]  # True for a published config this family loads (may raise)
    causal: bool = False  # the LM head predicts the next token (registered with AutoModelForCausalLM)
    # dnalm's tokenizer for a published tokenizer_config.json that names remote code, else None
    tokenizer: Callable[[dict[str, Any]], PreTrainedTokenizerBase | None] | None = None

    @property
    def model_type(self) -> str:
        """The native ``model_type`` the family registers with the Auto classes."""
        return str(self.config.model_type)

    def model_class(self, head: Head) -> type[PreTrainedModel]:
        """The class for ``head``: ``"base"``, ``"mlm"`` (language-model head) or ``"classifier"``."""
        return {"base": self.base, "mlm": self.lm, "classifier": self.classifier}[head]


_FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    """Add ``family`` (keyed by its native ``model_type``; registering the same one again replaces it) and
    register its classes with the transformers Auto classes."""
    _FAMILIES[family.model_type] = family
    AutoConfig.register(family.model_type, family.config, exist_ok=True)
    AutoModel.register(family.config, family.base, exist_ok=True)
    lm_auto = AutoModelForCausalLM if family.causal else AutoModelForMaskedLM
    lm_auto.register(family.config, family.lm, exist_ok=True)
    AutoModelForSequenceClassification.register(family.config, family.classifier, exist_ok=True)
    return family


def families() -> tuple[Family, ...]:
    """Every registered family, in registration order."""
    return tuple(_FAMILIES.values())


def is_causal(model_type: str | None) -> bool:
    """True for a native family whose language-model head predicts the next token (transformers does not list
    these as causal LMs)."""
    family = _FAMILIES.get(str(model_type))
    return family is not None and family.causal


def family_of(config_dict: dict[str, Any]) -> Family | None:
    """The family that loads ``config_dict`` (a raw ``config.json``), or None for plain transformers."""
    published = PublishedConfig.read(config_dict)
    if published.model_type in _FAMILIES:  # a config saved by the native classes
        return _FAMILIES[published.model_type]
    matches = [family for family in _FAMILIES.values() if family.recognise(published)]
    if len(matches) > 1:
        raise ValueError(f"config with model_type={published.model_type!r} is claimed by several native families "
                         f"({', '.join(f.label for f in matches)}); pass the native model_type in config.json")
    return matches[0] if matches else None
