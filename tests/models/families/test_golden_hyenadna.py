"""Native HyenaDNA against the authors' code (golden fixtures from tools/golden/hyenadna.py) and its causal property.

The fixtures are loaded by the zoo name ``hyenadna_tiny_1k`` with ``model.name_or_path=<fixture>/model`` (the
published-value check compares every field but the sizes), as a user loads a downloaded checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dnalm.errors import ModelLoadError
from dnalm.models.backbone import load_backbone
from dnalm.models.families import HyenaDNAForCausalLM, HyenaDNAModel, load_native
from dnalm.models.families import hyenadna as hyenadna_module
from dnalm.tokenizers import hyenadna_tokenizer
from tests.helpers import hf_model_cfg
from tests.helpers.golden import (
    ATOL,
    assert_close,
    assert_same_ids,
    assert_tokens_close,
    golden,
    load_as_user,
)
from tests.helpers.hyenadna import published_copy, random_model


def test_fixture_names_remote_code_and_loads_without_it(make_cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    fixture = golden("hyenadna")
    config = json.loads((fixture.folder / "config.json").read_text())
    assert config["model_type"] == "hyenadna" and "auto_map" in config
    assert "auto_map" in json.loads((fixture.folder / "tokenizer_config.json").read_text())
    backbone = load_as_user(fixture, "hyenadna_tiny_1k", make_cfg, monkeypatch)
    assert isinstance(backbone.model, HyenaDNAModel) and backbone.model_type == "hyenadna_native"
    assert backbone.is_causal and backbone.hidden_size == 16 and backbone.num_layers == 2
    assert load_backbone(hf_model_cfg(fixture.folder)).max_tokens == 48  # model=hf: max_seq_len bounds the input


def test_tokenizer_ids_match_the_authors_tokenizer(make_cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    fixture = golden("hyenadna")
    backbone = load_as_user(fixture, "hyenadna_tiny_1k", make_cfg, monkeypatch)
    assert_same_ids(backbone, fixture)
    encoded = backbone.tokenizer(fixture.sequences, padding=True, return_tensors="pt")
    assert torch.equal(encoded["input_ids"], fixture.expected["input_ids"])  # right padding with [PAD], as fixed
    assert torch.equal(encoded["attention_mask"], fixture.expected["attention_mask"])
    reference = json.loads((fixture.folder.parent / "inputs.json").read_text())["ids"]
    assert [row.tolist() for row in hyenadna_tokenizer()(fixture.sequences)["input_ids"]] == reference


def test_hidden_states_match_the_authors_model(make_cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    fixture = golden("hyenadna")
    model = load_as_user(fixture, "hyenadna_tiny_1k", make_cfg, monkeypatch).model
    with torch.no_grad():
        out = model(input_ids=fixture.expected["input_ids"], attention_mask=fixture.expected["attention_mask"],
                    output_hidden_states=True)
    assert_tokens_close(out.last_hidden_state, fixture, "last_hidden_state")
    assert len(out.hidden_states) == fixture.expected["hidden_states"].shape[0]
    for ours, theirs in zip(out.hidden_states, fixture.expected["hidden_states"], strict=True):
        torch.testing.assert_close(ours[fixture.real], theirs[fixture.real], atol=ATOL, rtol=0)


def test_causal_lm_logits_match_the_authors_model() -> None:
    fixture = golden("hyenadna")
    model = load_native(fixture.folder, "mlm")
    assert isinstance(model, HyenaDNAForCausalLM)
    with torch.no_grad():
        logits = model(input_ids=fixture.expected["input_ids"]).logits
    assert_tokens_close(logits, fixture, "logits")


def test_classifier_matches_the_authors_head_from_pytorch_model_bin(make_cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    fixture = golden("hyenadna_classifier")
    assert (fixture.folder / "pytorch_model.bin").is_file()  # every shared `freq` repeated in this layout
    backbone = load_as_user(fixture, "hyenadna_tiny_1k", make_cfg, monkeypatch, "head=native")
    assert_same_ids(backbone, fixture)
    labels = torch.tensor(json.loads((fixture.folder.parent / "inputs.json").read_text())["labels"])
    with torch.no_grad():
        out = backbone.model(input_ids=fixture.expected["input_ids"],
                             attention_mask=fixture.expected["attention_mask"], labels=labels)
        by_pad_rule = backbone.model(input_ids=fixture.expected["input_ids"]).logits  # the published rule, no mask
    assert_close(out.logits, fixture, "logits")
    assert_close(by_pad_rule, fixture, "logits")
    assert_close(out.loss.reshape(1), fixture, "loss")


def test_negative_control_circular_convolution_is_caught(make_cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    """A length-L FFT (circular, so not causal) is the classic Hyena bug: the comparison must fail on it."""
    fixture = golden("hyenadna")
    model = load_as_user(fixture, "hyenadna_tiny_1k", make_cfg, monkeypatch).model

    def circular(u: torch.Tensor, k: torch.Tensor, skip: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        n = u.shape[-1]
        return torch.fft.irfft(torch.fft.rfft(u, n=n) * torch.fft.rfft(k, n=n), n=n) + u * skip.unsqueeze(-1)

    monkeypatch.setattr(hyenadna_module, "fft_long_conv", circular)
    with torch.no_grad():
        out = model(input_ids=fixture.expected["input_ids"]).last_hidden_state
    with pytest.raises(AssertionError):
        assert_tokens_close(out, fixture, "last_hidden_state")


def test_zoo_name_loads_the_published_size_natively_and_refuses_another(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg("model=hyenadna_tiny_1k", f"model.name_or_path={golden('hyenadna').folder}")
    with pytest.raises(ModelLoadError, match="d_model: expected 128, found 16"):
        load_backbone(cfg.model)
    folder = published_copy(tmp_path / "tiny_1k", d_model=128, n_layer=2, max_seq_len=1026, d_inner=512,
                            emb_dim=5, filter_order=64, activation_freq=10)
    cfg = make_cfg("model=hyenadna_tiny_1k", f"model.name_or_path={folder}")
    assert cfg.model.trust_remote_code is False
    backbone = load_backbone(cfg.model)
    assert isinstance(backbone.model, HyenaDNAModel) and backbone.max_tokens == 1024


def test_causal_property_a_token_never_changes_earlier_outputs() -> None:
    model = random_model()
    ids = torch.randint(7, 12, (3, 40))
    for t in (0, 17, 39):
        changed = ids.clone()
        changed[:, t] = 7 + (changed[:, t] - 6) % 5  # another nucleotide at position t only
        with torch.no_grad():
            before, after = model(ids).last_hidden_state, model(changed).last_hidden_state
        # FFT round-off reaches every position (~1e-6); a real leak would be of the size seen at t and later
        torch.testing.assert_close(after[:, :t], before[:, :t], atol=2e-5, rtol=0)
        assert (after[:, t:] - before[:, t:]).abs().amax(dim=-1).min() > 1e-3  # position t and every later one move


def test_right_padding_leaves_real_tokens_unchanged() -> None:
    model = random_model()
    ids = torch.randint(7, 12, (1, 30))
    padded = torch.cat([ids, torch.full((1, 10), 4)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(padded).last_hidden_state[:, :30], model(ids).last_hidden_state,
                                   atol=1e-5, rtol=0)


def test_channel_chunked_fft_gives_the_same_outputs() -> None:
    whole, chunked = random_model(), random_model(fft_chunk_channels=5)
    ids = torch.randint(7, 12, (2, 50))
    with torch.no_grad():
        torch.testing.assert_close(chunked(ids).last_hidden_state, whole(ids).last_hidden_state, atol=1e-5, rtol=0)


def test_input_longer_than_the_filters_is_refused() -> None:
    with pytest.raises(ValueError, match="longer than this HyenaDNA's max_seq_len=64"):
        random_model()(torch.randint(7, 12, (1, 65)))


def test_a_saved_native_copy_reloads_without_remote_code(tmp_path: Path) -> None:
    """save_pretrained writes model_type hyenadna_native and no auto_map: the copy loads natively, same outputs."""
    fixture = golden("hyenadna")
    model = load_backbone(hf_model_cfg(fixture.folder)).model
    model.save_pretrained(tmp_path / "copy")
    hyenadna_tokenizer().to_hf().save_pretrained(tmp_path / "copy")
    saved = json.loads((tmp_path / "copy" / "config.json").read_text())
    assert saved["model_type"] == "hyenadna_native" and "auto_map" not in saved
    again = load_backbone(hf_model_cfg(tmp_path / "copy"))
    ids = fixture.expected["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(again.model(ids).last_hidden_state, model(ids).last_hidden_state)
    assert again.lora_targets == ["in_proj", "out_proj"]


def test_gradient_checkpointing_gives_the_same_gradients() -> None:
    ids = torch.randint(7, 12, (2, 40))
    grads = []
    for checkpointing in (False, True):
        model = random_model().train()
        if checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model(ids).last_hidden_state.square().mean().backward()
        grads.append(model.backbone.layers[0].mixer.in_proj.weight.grad)
    torch.testing.assert_close(grads[1], grads[0])


def test_bfloat16_stays_close_to_float32() -> None:
    model = random_model()
    ids = torch.randint(7, 12, (2, 40))
    with torch.no_grad():
        full = model(ids).last_hidden_state
        half = model.to(torch.bfloat16)(ids).last_hidden_state
    assert half.dtype == torch.bfloat16
    # bf16 everywhere but the FFT (as in the port): a few per cent on average, far from a broken model (~100 %)
    assert (half.float() - full).abs().mean() < 0.1 * full.abs().mean()
