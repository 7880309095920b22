"""The family registry: each published config (golden fixtures, as the authors' code wrote them) is claimed by exactly
the family meant for it, plain transformers configs by none, and a family registers from its own module."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoConfig, AutoModelForMaskedLM

from dnalm.models.families import (
    NucleotideTransformerV2Config,
    NucleotideTransformerV2ForMaskedLM,
    NucleotideTransformerV2ForSequenceClassification,
    NucleotideTransformerV2Model,
    families,
    family_of,
    registry,
)
from dnalm.models.families.registry import Family, PublishedConfig, register_family

GOLDEN = Path(__file__).parents[2] / "fixtures" / "golden"
# Fixture name prefix -> the family label that must claim it (None: plain transformers loads it); first match wins.
EXPECTED = {"caduceus": "Caduceus", "dnabert2": "DNABERT-2", "dnabert_6": None,
            "gena_bigbird_base_t2t": None,  # transformers' BigBird
            "gena": "GENA-LM BERT",
            "hyenadna": "HyenaDNA", "mistral_dna": None, "nt_v1": None, "nt_v2": "NT v2"}


def _expected(fixture: str) -> str | None:
    return next(label for prefix, label in EXPECTED.items() if fixture.startswith(prefix))


@pytest.mark.parametrize("config_path", sorted(GOLDEN.glob("*/*/config.json")), ids=lambda p: p.parent.parent.name)
def test_every_golden_config_is_claimed_by_its_family_only(config_path: Path) -> None:
    family = family_of(json.loads(config_path.read_text()))
    assert (family.label if family else None) == _expected(config_path.parent.parent.name)


def test_every_family_module_registered_itself() -> None:
    assert {f.label for f in families()} == {label for label in EXPECTED.values() if label}
    assert [f.model_type for f in families() if f.causal] == ["hyenadna_native"]


def test_two_families_claiming_one_config_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))
    nt_v2 = family_of({"model_type": "esm", "add_bias_fnn": False, "position_embedding_type": "rotary"})
    assert nt_v2 is not None and nt_v2.label == "NT v2"
    greedy = Family("Greedy", type("GreedyConfig", (), {"model_type": "greedy"}), nt_v2.base, nt_v2.lm,
                    nt_v2.classifier, recognise=lambda config: config.model_type == "esm")
    monkeypatch.setitem(registry._FAMILIES, "greedy", greedy)
    with pytest.raises(ValueError, match=r"claimed by several native families \(NT v2, Greedy\)"):
        family_of({"model_type": "esm", "add_bias_fnn": False, "position_embedding_type": "rotary"})
    assert family_of({"model_type": "bert"}) is None


def test_a_registered_family_is_recognised_and_known_to_the_auto_classes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))

    def recognise(config: PublishedConfig) -> bool:
        return config.model_type == "esm" and "my_lab_flag" in config.fields

    family = register_family(Family("NT v2 (my lab)", NucleotideTransformerV2Config, NucleotideTransformerV2Model,
                                    NucleotideTransformerV2ForMaskedLM,
                                    NucleotideTransformerV2ForSequenceClassification, recognise=recognise))
    assert family_of({"model_type": "esm", "my_lab_flag": 1}) is family
    assert family_of({"model_type": "nucleotide_transformer_v2"}) is family  # its own model_type needs no recogniser
    config = AutoConfig.for_model("nucleotide_transformer_v2", num_hidden_layers=1, hidden_size=16,
                                  num_attention_heads=2, intermediate_size=32, vocab_size=12)
    assert type(AutoModelForMaskedLM.from_config(config)) is NucleotideTransformerV2ForMaskedLM
