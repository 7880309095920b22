"""Caduceus PH and PS against their authors' code, loaded the way a user loads a download, without remote code.

Fixtures: tools/golden/caduceus.py ran kuleshov-group/caduceus (``modeling_caduceus.py``, ``modeling_rcps.py``,
transformers 4.38.1) with the Mamba authors' pure-PyTorch references standing in for the CUDA/Triton kernels
(see each meta.json), on tiny random weights saved in the published layout: ``caduceus_ph`` and ``caduceus_ps``
(published settings: fused_add_norm, RMSNorm, tied BiMamba projections) and ``caduceus_ps_unfused`` (the other
RCPS norm path). Each has ``model/`` (CaduceusForMaskedLM) and ``classifier/`` (CaduceusForSequenceClassification).
The authors' code has no attention mask: a padded batch without a mask must match their padded batch everywhere;
with a mask, each real token must match their output for the sequence alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from dnalm.errors import ModelLoadError
from dnalm.models.backbone import Backbone, load_backbone
from dnalm.models.families import (
    CaduceusForSequenceClassification,
    CaduceusModel,
    load_native,
    published,
)
from dnalm.tokenizers import as_dna_tokenizer, caduceus_tokenizer

GOLDEN = Path(__file__).resolve().parents[2] / "fixtures" / "golden"
ATOL = 1e-4
ZOO = {"caduceus_ph": "caduceus_ph_131k", "caduceus_ps": "caduceus_ps_131k"}
SIZE_FIELDS = ("d_model", "n_layer")
N_SEQUENCES = 3


def expected(name: str) -> dict[str, torch.Tensor]:
    return load_file(str(GOLDEN / name / "expected.safetensors"))


def load_as_user(name: str, make_cfg: Any, monkeypatch: pytest.MonkeyPatch, folder: str = "model",
                 *overrides: str) -> Backbone:
    """``model=<zoo name> model.name_or_path=<fixture>/<folder>``; the zoo's published check gets the tiny sizes."""
    path = GOLDEN / name / folder
    if name in ZOO:
        cfg = make_cfg(f"model={ZOO[name]}", f"model.name_or_path={path}", *overrides)
        hub_id = cfg.model.zoo.hub_id
        sizes = json.loads((path / "config.json").read_text())
        monkeypatch.setitem(published.PUBLISHED_CONFIGS, hub_id,
                            {**published.PUBLISHED_CONFIGS[hub_id], **{k: sizes[k] for k in SIZE_FIELDS}})
    else:  # not a published setting: the generic loader
        cfg = make_cfg("model=hf", f"model.name_or_path={path}", *overrides)
    backbone = load_backbone(cfg.model, native_head=bool(cfg.head.get("native", False)))
    backbone.model.eval()
    return backbone


def per_sequence(gold: dict[str, torch.Tensor], out: torch.Tensor, mask: torch.Tensor, key: str) -> None:
    """Each row of ``out`` at its real tokens equals the authors' output for that sequence alone."""
    for row in range(N_SEQUENCES):
        torch.testing.assert_close(out[row][mask[row].bool()], gold[f"seq{row}_{key}"], atol=ATOL, rtol=0,
                                   msg=lambda m, row=row: f"sequence {row}: {m}")


def right_padded(gold: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixture's sequences as dnalm batches them: right padding with [PAD] (id 4)."""
    rows = [gold[f"seq{i}_input_ids"] for i in range(N_SEQUENCES)]
    ids = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=4)
    mask = torch.nn.utils.rnn.pad_sequence([torch.ones_like(r) for r in rows], batch_first=True)
    return ids, mask


def test_tokenizer_ids_match_the_authors_tokenizer(make_cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    gold = expected("caduceus_ph")
    backbone = load_as_user("caduceus_ph", make_cfg, monkeypatch)
    tok_config = json.loads((GOLDEN / "caduceus_ph" / "model" / "tokenizer_config.json").read_text())
    assert tok_config["tokenizer_class"] == "CaduceusTokenizer" and "auto_map" in tok_config  # named, never run
    sequences = json.loads((GOLDEN / "caduceus_ph" / "inputs.json").read_text())["sequences"]
    fast = as_dna_tokenizer(backbone.tokenizer)
    for row, seq in enumerate(sequences):
        want = gold[f"seq{row}_input_ids"].tolist()
        assert backbone.tokenizer(seq)["input_ids"] == want, f"sequence {row}"
        assert fast([seq])["input_ids"][0].tolist() == want
        assert caduceus_tokenizer(on_unknown="unk")([seq])["input_ids"][0].tolist() == want
        real = gold["attention_mask"][row].bool()  # the authors' batch: left padding
        assert gold["input_ids"][row][real].tolist() == want
    assert backbone.tokenizer.model_max_length == 131072


@pytest.mark.parametrize("name", ["caduceus_ph", "caduceus_ps", "caduceus_ps_unfused"])
def test_encoder_matches_the_authors_code(name: str, make_cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    gold = expected(name)
    backbone = load_as_user(name, make_cfg, monkeypatch)
    model = backbone.model
    assert isinstance(model, CaduceusModel) and backbone.lora_targets == ["in_proj", "out_proj"]
    assert backbone.hidden_size == gold["batch_last_hidden_state"].shape[-1]
    with torch.no_grad():
        # Without a mask every position counts, padding included, exactly as in the authors' code.
        out = model(input_ids=gold["input_ids"], output_hidden_states=True)
        masked = model(input_ids=gold["input_ids"], attention_mask=gold["attention_mask"]).last_hidden_state
        ids, mask = right_padded(gold)
        right = model(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(out.last_hidden_state, gold["batch_last_hidden_state"], atol=ATOL, rtol=0)
    if "batch_hidden_states_0" in gold:
        assert len(out.hidden_states) == 3
        for i, hidden in enumerate(out.hidden_states):
            torch.testing.assert_close(hidden, gold[f"batch_hidden_states_{i}"], atol=ATOL, rtol=0)
    # With a mask, padding (left as the authors' tokenizer puts it, or right as dnalm does) reaches no token.
    per_sequence(gold, masked, gold["attention_mask"], "last_hidden_state")
    per_sequence(gold, right, mask, "last_hidden_state")


@pytest.mark.parametrize("name", ["caduceus_ph", "caduceus_ps", "caduceus_ps_unfused"])
def test_masked_lm_head_matches_the_authors_code(name: str) -> None:
    gold = expected(name)
    model = load_native(GOLDEN / name / "model", "mlm").eval()
    with torch.no_grad():
        logits = model(input_ids=gold["input_ids"]).logits
        masked = model(input_ids=gold["input_ids"], attention_mask=gold["attention_mask"]).logits
    torch.testing.assert_close(logits, gold["batch_logits"], atol=ATOL, rtol=0)
    per_sequence(gold, masked, gold["attention_mask"], "logits")


@pytest.mark.parametrize("name", ["caduceus_ph", "caduceus_ps", "caduceus_ps_unfused"])
def test_fine_tuned_classifier_matches_the_authors_head(name: str, make_cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    gold = expected(name)
    backbone = load_as_user(name, make_cfg, monkeypatch, "classifier", "head=native")
    model = backbone.model
    assert isinstance(model, CaduceusForSequenceClassification) and model.config.num_labels == 3
    with torch.no_grad():
        logits = model(input_ids=gold["input_ids"]).logits
        ids, mask = right_padded(gold)
        masked = model(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(logits, gold["classifier_batch_logits"], atol=ATOL, rtol=0)
    want = torch.stack([gold[f"classifier_seq{i}_logits"] for i in range(N_SEQUENCES)])
    torch.testing.assert_close(masked, want, atol=ATOL, rtol=0)


def test_post_hoc_conjoining_matches_the_authors_code() -> None:
    """PH with ``conjoin_eval`` on (batch, length, 2) ids, as the authors' genomic-benchmark loaders build them."""
    gold = expected("caduceus_ph")
    model = load_native(GOLDEN / "caduceus_ph" / "classifier", "classifier",
                        config_overrides={"conjoin_eval": True}).eval()
    with torch.no_grad():
        logits = model(input_ids=gold["conjoin_input_ids"]).logits
    torch.testing.assert_close(logits, gold["conjoin_logits"], atol=ATOL, rtol=0)


def test_negative_control_norm_weights_in_forward_channel_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison can fail: normalising the RC half without reversing its channels (a plausible slip, the
    norm weight then meets the wrong channels) moves the outputs far beyond the tolerance."""
    from dnalm.models.families import caduceus as module

    gold = expected("caduceus_ps")
    model = load_native(GOLDEN / "caduceus_ps" / "model", "base").eval()

    def unreversed(norm: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        return torch.cat([norm(x[..., :half]), norm(x[..., half:])], dim=-1)

    monkeypatch.setattr(module, "rc_norm", unreversed)
    with torch.no_grad():
        wrong = model(input_ids=gold["input_ids"]).last_hidden_state
    assert (wrong - gold["batch_last_hidden_state"]).abs().max() > 100 * ATOL


def test_zoo_name_refuses_a_checkpoint_of_another_size(make_cfg) -> None:
    cfg = make_cfg("model=caduceus_ps_131k", f"model.name_or_path={GOLDEN / 'caduceus_ps' / 'model'}")
    with pytest.raises(ModelLoadError, match="d_model: expected 256, found 16"):
        load_backbone(cfg.model)
    cfg = make_cfg("model=caduceus_ph_131k", f"model.name_or_path={GOLDEN / 'caduceus_ps' / 'model'}")
    with pytest.raises(ModelLoadError, match="rcps: expected False, found True"):
        load_backbone(cfg.model)
