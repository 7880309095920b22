"""DNABERT-2 against its authors' code, loaded the way a user loads a download, without remote code.

Fixtures: tools/golden/dnabert2.py ran the hub's ``bert_layers.py`` (commit d064dec, PyTorch attention path,
transformers 4.29.2) on tiny random weights saved in the published layout: ``dnabert2_117m`` (the published
config.json, which names no model_type, BertForMaskedLM weights, the published BPE tokenizer) and
``dnabert2_classifier`` (what the authors' fine-tuning script saves). Plus the properties the fixtures do not
pin down: left padding = right padding (ALiBi sees only distances), inputs beyond max_position_embeddings,
SDPA = eager, gradient checkpointing, bf16 and the DNABERT-S file layout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForMaskedLM

from dnalm.errors import ModelLoadError
from dnalm.models.backbone import Backbone, load_backbone
from dnalm.models.families import (
    DnaBert2ForMaskedLM,
    DnaBert2ForSequenceClassification,
    DnaBert2Model,
    GenaBertModel,
    load_native,
    native_model_class,
    published,
)
from dnalm.models.families import dnabert2 as dnabert2_module
from dnalm.tokenizers import as_dna_tokenizer
from tests.helpers.golden import ATOL, Golden, golden
from tests.helpers.golden import load_as_user as load_fixture

MLM, CLASSIFIER = "dnabert2_117m", "dnabert2_classifier"


def expected(name: str) -> dict[str, torch.Tensor]:
    return golden(name).expected


def load_as_user(name: str | Golden, make_cfg: Any, monkeypatch: pytest.MonkeyPatch, *overrides: str,
                 zoo_name: str = "dnabert2_117m") -> Backbone:
    """``model=<zoo_name> model.name_or_path=<fixture>/model`` (the shared golden loader)."""
    fixture = golden(name) if isinstance(name, str) else name
    return load_fixture(fixture, zoo_name, make_cfg, monkeypatch, *overrides)


def folder(name: str) -> Path:
    return golden(name).folder


def encode(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state


def test_encoder_and_tokenizer_match_the_authors_code(make_cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    gold = expected(MLM)
    backbone = load_as_user(MLM, make_cfg, monkeypatch)
    assert isinstance(backbone.model, DnaBert2Model) and backbone.lora_targets == ["Wqkv"]
    assert "auto_map" in json.loads((folder(MLM) / "config.json").read_text())  # named, never run
    ids = as_dna_tokenizer(backbone.tokenizer)(golden(MLM).sequences)["input_ids"]  # dnalm's fast BPE path
    real = gold["attention_mask"].bool()
    for row, row_ids in enumerate(ids):
        assert list(map(int, row_ids)) == gold["input_ids"][row][real[row]].tolist(), f"sequence {row}"
    # Zero at padding too (the authors' pad_input), so the whole tensor matches.
    torch.testing.assert_close(encode(backbone.model, gold), gold["last_hidden_state"], atol=ATOL, rtol=0)


def test_masked_lm_logits_match_the_authors_code() -> None:
    gold = expected(MLM)
    model = load_native(folder(MLM), "mlm").eval()
    assert isinstance(model, DnaBert2ForMaskedLM)
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    with torch.no_grad():
        logits = model(input_ids=gold["input_ids"], attention_mask=gold["attention_mask"]).logits
    torch.testing.assert_close(logits[gold["attention_mask"].bool()], gold["logits_at_real_tokens"], atol=ATOL,
                               rtol=0)


def test_fine_tuned_classifier_matches_the_authors_code(make_cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    gold = expected(CLASSIFIER)
    backbone = load_as_user(CLASSIFIER, make_cfg, monkeypatch, "head=native")
    assert isinstance(backbone.model, DnaBert2ForSequenceClassification) and backbone.model.config.num_labels == 3
    with torch.no_grad():
        out = backbone.model(input_ids=gold["input_ids"], attention_mask=gold["attention_mask"],
                             labels=gold["labels"])
    torch.testing.assert_close(out.logits, gold["logits"], atol=ATOL, rtol=0)
    torch.testing.assert_close(out.loss[None], gold["loss"], atol=ATOL, rtol=0)


def test_negative_control_wrong_slopes_or_gate_order_miss_the_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fixture tells a wrong implementation apart: the plain 2^(-8i/n) slopes for 12 heads, or the GeGLU halves
    swapped, are far outside the tolerance."""
    gold = expected(MLM)
    model = load_native(folder(MLM), "base").eval()
    naive = [2 ** (-8 * (i + 1) / 12) for i in range(12)]
    assert naive != dnabert2_module.alibi_slopes(12)
    monkeypatch.setattr(dnabert2_module, "alibi_slopes", lambda heads: naive)
    assert (encode(model, gold) - gold["last_hidden_state"]).abs().max() > 100 * ATOL
    monkeypatch.undo()
    torch.testing.assert_close(encode(model, gold), gold["last_hidden_state"], atol=ATOL, rtol=0)
    with torch.no_grad():
        for layer in model.encoder.layer:
            weight = layer.mlp.gated_layers.weight
            weight.copy_(torch.cat(weight.chunk(2)[::-1]))
    assert (encode(model, gold) - gold["last_hidden_state"]).abs().max() > 100 * ATOL


def test_wrong_head_requests_are_refused(make_cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelLoadError, match="pre-trained model, not a fine-tuned classifier"):
        load_as_user(MLM, make_cfg, monkeypatch, "head=native")
    with pytest.raises(ValueError, match=r"missing \['cls\.predictions"):
        load_native(folder(CLASSIFIER), "mlm")
    encoder = load_native(folder(CLASSIFIER), "base")  # a classifier file still gives its encoder
    assert encoder.pooler is None


def test_zoo_name_refuses_a_checkpoint_of_another_size(make_cfg) -> None:
    cfg = make_cfg("model=dnabert2_117m", f"model.name_or_path={folder(MLM)}")
    with pytest.raises(ModelLoadError, match="hidden_size: expected 768, found 24"):
        load_backbone(cfg.model)


def test_family_is_recognised_without_model_type() -> None:
    config = json.loads((folder(MLM) / "config.json").read_text())
    assert "model_type" not in config and "architectures" not in config
    assert native_model_class(config, "base") is DnaBert2Model
    classifier = json.loads((folder(CLASSIFIER) / "config.json").read_text())
    assert native_model_class(classifier, "classifier") is DnaBert2ForSequenceClassification
    # An older hub revision said model_type "bert"; pre-training runs write "repo--bert_layers..." auto_maps.
    older = {**config, "model_type": "bert", "architectures": ["BertForMaskedLM"]}
    assert native_model_class(older, "mlm") is DnaBert2ForMaskedLM
    prefixed = {k: v for k, v in config.items() if k != "alibi_starting_size"}
    prefixed["auto_map"] = {"AutoModel": "zhihan1996/DNABERT-2-117M--bert_layers.BertModel"}
    assert native_model_class(prefixed, "base") is DnaBert2Model
    plain_bert = {k: v for k, v in older.items() if k not in ("auto_map", "alibi_starting_size")}
    assert native_model_class(plain_bert, "base") is None  # DNABERT (k-mer) and friends: transformers BertModel
    gena = {**plain_bert, "pre_layer_norm": True, "auto_map": {"AutoModel": "modeling_bert.BertModel"}}
    assert native_model_class(gena, "base") is GenaBertModel
    assert published.config_mismatches(json.loads(PUBLISHED_DNABERT2_CONFIG), "zhihan1996/DNABERT-2-117M") == []


# zhihan1996/DNABERT-2-117M config.json at hub commit d064dec, as published.
PUBLISHED_DNABERT2_CONFIG = """{"_name_or_path": "zhihan1996/DNABERT-2-117M", "alibi_starting_size": 512,
 "attention_probs_dropout_prob": 0.0, "auto_map": {"AutoConfig": "configuration_bert.BertConfig",
 "AutoModel": "bert_layers.BertModel", "AutoModelForMaskedLM": "bert_layers.BertForMaskedLM",
 "AutoModelForSequenceClassification": "bert_layers.BertForSequenceClassification"}, "classifier_dropout": null,
 "gradient_checkpointing": false, "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768,
 "initializer_range": 0.02, "intermediate_size": 3072, "layer_norm_eps": 1e-12, "max_position_embeddings": 512,
 "num_attention_heads": 12, "num_hidden_layers": 12, "position_embedding_type": "absolute",
 "torch_dtype": "float32", "transformers_version": "4.28.0", "type_vocab_size": 2, "use_cache": true,
 "vocab_size": 4096}"""


def test_dnabert_s_layout_loads_with_its_zoo_name(make_cfg, monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    """DNABERT-S is DNABERT-2's network saved by ``BertModel.save_pretrained``: keys without the ``bert.`` prefix, a
    pooler, model_type "bert" and pad_token_id 0. The golden weights in that layout give the golden outputs."""
    gold = expected(MLM)
    state = torch.load(folder(MLM) / "pytorch_model.bin", weights_only=True)
    hidden = json.loads((folder(MLM) / "config.json").read_text())["hidden_size"]
    layout = {k.removeprefix("bert."): v for k, v in state.items() if k.startswith("bert.")}
    layout["pooler.dense.weight"], layout["pooler.dense.bias"] = torch.eye(hidden), torch.zeros(hidden)
    target = tmp_path / "dnabert_s"
    target.mkdir()
    torch.save(layout, target / "pytorch_model.bin")
    config = {**json.loads((folder(MLM) / "config.json").read_text()), "model_type": "bert",
              "architectures": ["BertModel"], "pad_token_id": 0}
    (target / "config.json").write_text(json.dumps(config))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (target / name).write_bytes((folder(MLM) / name).read_bytes())
    fixture = Golden("dnabert_s", target, golden(MLM).sequences, gold, {})
    backbone = load_as_user(fixture, make_cfg, monkeypatch, zoo_name="dnabert_s")
    assert backbone.model.embeddings.word_embeddings.padding_idx == 0
    torch.testing.assert_close(encode(backbone.model, gold), gold["last_hidden_state"], atol=ATOL, rtol=0)


def test_left_padding_equals_right_padding_and_long_inputs_run() -> None:
    """ALiBi depends on distances only: a sequence gives the same outputs alone, right- or left-padded, and inputs
    longer than max_position_embeddings run (no position table)."""
    gold = expected(MLM)
    model = load_native(folder(MLM), "base", attn_implementation="eager").eval()
    ids, mask = gold["input_ids"][1:2], gold["attention_mask"][1:2]
    n = int(mask.sum())
    alone = encode(model, {"input_ids": ids[:, :n], "attention_mask": mask[:, :n]})
    left = {"input_ids": torch.cat((ids[:, n:], ids[:, :n]), 1), "attention_mask": torch.cat((mask[:, n:], mask[:, :n]), 1)}
    torch.testing.assert_close(encode(model, left)[:, -n:], alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(encode(model, gold)[1:2, :n], alone, atol=1e-5, rtol=0)
    model.config.max_position_embeddings = 8
    long = torch.randint(5, 4096, (1, 40), generator=torch.Generator().manual_seed(0))
    assert encode(model, {"input_ids": long, "attention_mask": torch.ones_like(long)}).shape == (1, 40, 24)


def test_sdpa_equals_eager_and_checkpointing_keeps_gradients() -> None:
    gold = expected(MLM)
    batch = {"input_ids": gold["input_ids"], "attention_mask": gold["attention_mask"]}
    real = gold["attention_mask"].bool()
    outputs, grads = [], []
    for implementation, checkpointing in (("sdpa", False), ("eager", False), ("sdpa", True)):
        model = load_native(folder(MLM), "mlm", attn_implementation=implementation,
                            config_overrides={"hidden_dropout_prob": 0.0}).train()
        assert model.config._attn_implementation == implementation
        if checkpointing:
            model.activation_checkpointing_enable()
            assert all(layer.gradient_checkpointing for layer in model.bert.encoder.layer)
        labels = torch.where(real, gold["input_ids"], -100)
        out = model(**batch, labels=labels)
        out.loss.backward()
        outputs.append(out.logits.detach()[real])
        grads.append({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    for other in (1, 2):
        torch.testing.assert_close(outputs[other], outputs[0], atol=1e-5, rtol=0)
        assert grads[other].keys() == grads[0].keys() and len(grads[0]) > 20
        for name in grads[0]:
            torch.testing.assert_close(grads[other][name], grads[0][name], atol=1e-4, rtol=1e-4, msg=name)


def test_bf16_and_native_save_round_trip(tmp_path: Path) -> None:
    gold = expected(MLM)
    model = load_native(folder(MLM), "mlm").eval()
    model.save_pretrained(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert saved["model_type"] == "dnabert2" and "auto_map" not in saved
    again = AutoModelForMaskedLM.from_pretrained(tmp_path / "saved").eval()
    assert isinstance(again, DnaBert2ForMaskedLM)
    low = load_native(folder(MLM), "base", dtype=torch.bfloat16).eval()
    real = gold["attention_mask"].bool()
    hidden = encode(low, gold)
    assert hidden.dtype == torch.bfloat16
    cosine = torch.nn.functional.cosine_similarity(hidden.float()[real], gold["last_hidden_state"][real], dim=-1)
    assert cosine.min() > 0.98
    with torch.no_grad():
        torch.testing.assert_close(again(**{k: gold[k] for k in ("input_ids", "attention_mask")}).logits[real],
                                   gold["logits_at_real_tokens"], atol=ATOL, rtol=0)


def test_fine_tunes_end_to_end_without_remote_code(make_cfg) -> None:
    """``python -m dnalm.train model=hf model.name_or_path=<published-layout folder> strategy=lora``: LoRA on the
    fused Wqkv (the family's default target), the published BPE tokenizer, test metrics written."""
    from dnalm.train import train

    cfg = make_cfg("model=hf", f"model.name_or_path={folder(MLM)}", "model.name=dnabert2_tiny", "strategy=lora",
                   "strategy.r=2")
    metrics = train(cfg)
    assert metrics["model"] == "dnabert2_tiny" and metrics["strategy"] == "lora"
    assert 0 < metrics["trainable_params"] < metrics["total_params"]
    assert metrics["test/accuracy"] is not None
