"""Fine-tuned NT v2 / GENA-LM classifiers (the remote code's ``*ForSequenceClassification`` files) load natively
with their own heads; a pre-trained file is refused as a classifier; a PEFT adapter on a native base restores its
head; ``head=native`` evaluates such a classifier through dnalm."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from dnalm.errors import ModelLoadError
from dnalm.models.backbone import load_backbone
from dnalm.models.families import (
    GenaBertForSequenceClassification,
    NucleotideTransformerV2ForSequenceClassification,
    load_native,
)
from dnalm.tokenizers import KmerTokenizer
from tests.helpers import gena_bert as gena
from tests.helpers import nt_v2 as nt

LABELS = {"id2label": {"0": "a", "1": "b", "2": "c"}, "label2id": {"a": 0, "b": 1, "c": 2}}


def nt_classifier_file(folder: Path) -> tuple[Path, dict, dict]:
    """An NT v2 EsmForSequenceClassification file as the remote code saves it (3 labels)."""
    cfg = {**nt.TINY, **LABELS, "architectures": ["EsmForSequenceClassification"]}
    sd = {k: v for k, v in nt.published_state_dict(nt.TINY).items() if not k.startswith("lm_head.")}
    gen, h = torch.Generator().manual_seed(7), cfg["hidden_size"]
    sd["classifier.dense.weight"], sd["classifier.dense.bias"] = torch.randn(h, h, generator=gen) * 0.3, torch.randn(h, generator=gen)
    sd["classifier.out_proj.weight"], sd["classifier.out_proj.bias"] = torch.randn(3, h, generator=gen), torch.randn(3, generator=gen)
    return nt.write_published(folder, cfg, sd), sd, cfg


def gena_classifier_file(folder: Path) -> tuple[Path, dict, dict]:
    """A GENA-LM BertForSequenceClassification file (pooler + classifier, no MLM head; 3 labels)."""
    cfg = {**gena.TINY, **LABELS, "architectures": ["BertForSequenceClassification"]}
    sd = {k: v for k, v in gena.published_state_dict(gena.TINY).items() if not k.startswith("cls.")}
    gen, h = torch.Generator().manual_seed(8), cfg["hidden_size"]
    sd["classifier.weight"], sd["classifier.bias"] = torch.randn(3, h, generator=gen), torch.randn(3, generator=gen)
    return gena.write_published(folder, cfg, sd), sd, cfg


def test_nt_v2_classifier_matches_the_esm_head(tmp_path: Path) -> None:
    path, sd, cfg = nt_classifier_file(tmp_path / "nt_cls")
    model = load_native(path, "classifier").eval()
    assert isinstance(model, NucleotideTransformerV2ForSequenceClassification) and model.config.num_labels == 3
    ids, mask = nt.batch()
    hidden, _ = nt.reference_logits({**nt.published_state_dict(nt.TINY), **sd}, cfg, ids, mask)
    sd64 = {k: v.double() for k, v in sd.items()}
    pooled = torch.tanh(hidden[:, 0] @ sd64["classifier.dense.weight"].T + sd64["classifier.dense.bias"])
    expected = pooled @ sd64["classifier.out_proj.weight"].T + sd64["classifier.out_proj.bias"]
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, labels=torch.tensor([0, 2]))
    torch.testing.assert_close(out.logits.double(), expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(out.logits, torch.tensor([0, 2])))


def test_gena_classifier_matches_the_bert_head(tmp_path: Path) -> None:
    path, sd, cfg = gena_classifier_file(tmp_path / "gena_cls")
    model = load_native(path, "classifier").eval()
    assert isinstance(model, GenaBertForSequenceClassification)
    ids, mask = gena.batch()
    full = gena.published_state_dict(gena.TINY)  # the reference also computes the MLM head it does not need
    _, pooled, _ = gena.reference(full, cfg, ids, mask)
    expected = pooled @ sd["classifier.weight"].double().T + sd["classifier.bias"].double()
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(logits.double(), expected, rtol=1e-4, atol=1e-4)


def test_pretrained_file_is_not_a_classifier(tmp_path: Path) -> None:
    path = nt.write_published(tmp_path / "pretrained", nt.TINY, nt.published_state_dict(nt.TINY))
    with pytest.raises(ValueError, match="no sequence-classification head.*head=linear"):
        load_native(path, "classifier")
    cfg = OmegaConf.create({"name_or_path": str(path), "tokenizer": None})
    with pytest.raises(ModelLoadError, match="pre-trained model, not a fine-tuned classifier"):
        load_backbone(cfg, native_head=True)


def test_classifier_file_still_loads_as_a_plain_encoder(tmp_path: Path) -> None:
    path, sd, _ = gena_classifier_file(tmp_path / "gena_cls")
    encoder = load_native(path, "base")
    torch.testing.assert_close(encoder.pooler.dense.weight, sd["bert.pooler.dense.weight"])


def test_peft_adapter_on_a_native_base_restores_its_head(tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model

    config = {**nt.TINY, "vocab_size": 4107, "max_position_embeddings": 2050}  # the 6-mer tokenizer's vocabulary
    base_dir = nt.write_published(tmp_path / "base", config, nt.published_state_dict(config))
    KmerTokenizer().to_hf().save_pretrained(base_dir)
    classifier = load_native(base_dir, "classifier", new_head=True, config_overrides={"num_labels": 3})
    peft_model = get_peft_model(classifier, LoraConfig(r=2, target_modules=["query", "value"],
                                                       modules_to_save=["classifier"]))
    with torch.no_grad():  # stand-ins for fine-tuned values, so a fresh head could not match by chance
        for name, param in peft_model.named_parameters():
            if "lora_B" in name or "modules_to_save" in name:
                param.normal_(0, 0.5)
    adapter_dir = tmp_path / "adapter"
    peft_model.save_pretrained(adapter_dir)
    assert json.loads((adapter_dir / "adapter_config.json").read_text())["base_model_name_or_path"]

    cfg = OmegaConf.create({"name_or_path": str(adapter_dir), "base_model": str(base_dir), "tokenizer": str(base_dir)})
    backbone = load_backbone(cfg, native_head=True)
    ids, mask = nt.batch()
    peft_model.eval()
    backbone.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(backbone.model(input_ids=ids, attention_mask=mask).logits,
                                   peft_model(input_ids=ids, attention_mask=mask).logits)
    assert backbone.model.config.num_labels == 3  # read from the adapter's head shape
