"""Native HyenaDNA against the authors' code (golden fixtures from tools/golden/hyenadna.py) and its causal property."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dnalm.errors import ModelLoadError
from dnalm.models.backbone import load_backbone
from dnalm.models.families import HyenaDNAConfig, HyenaDNAForCausalLM, HyenaDNAModel, load_native
from dnalm.models.families import hyenadna as hyenadna_module
from dnalm.tokenizers import as_dna_tokenizer, hyenadna_tokenizer
from tests.helpers import hf_model_cfg

GOLDEN = Path(__file__).resolve().parents[2] / "fixtures" / "golden"
BASE, CLASSIFIER = GOLDEN / "hyenadna", GOLDEN / "hyenadna_classifier"
ATOL = 1e-4


def _expected(fixture: Path) -> dict[str, torch.Tensor]:
    return load_file(str(fixture / "expected.safetensors"))


def _sequences(fixture: Path) -> list[str]:
    return json.loads((fixture / "inputs.json").read_text())["sequences"]


def _real(tensor: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return tensor[mask.bool()]


def test_fixture_names_remote_code_and_loads_without_it() -> None:
    config = json.loads((BASE / "model" / "config.json").read_text())
    assert config["model_type"] == "hyenadna" and "auto_map" in config
    backbone = load_backbone(hf_model_cfg(BASE / "model"))
    assert isinstance(backbone.model, HyenaDNAModel)
    assert backbone.is_causal and backbone.hidden_size == 16 and backbone.num_layers == 2
    assert backbone.max_tokens == 48  # max_seq_len: longer inputs are cut to it (model=hf, max_tokens unset)


def test_tokenizer_ids_match_the_authors_tokenizer() -> None:
    expected = _expected(BASE)
    backbone = load_backbone(hf_model_cfg(BASE / "model"))
    encoded = backbone.tokenizer(_sequences(BASE), padding=True, return_tensors="pt")
    assert torch.equal(encoded["input_ids"], expected["input_ids"])
    assert torch.equal(encoded["attention_mask"], expected["attention_mask"])
    fast = as_dna_tokenizer(backbone.tokenizer)(_sequences(BASE))["input_ids"]
    reference = json.loads((BASE / "inputs.json").read_text())["ids"]
    assert [row.tolist() for row in fast] == reference
    assert [row.tolist() for row in hyenadna_tokenizer()(_sequences(BASE))["input_ids"]] == reference


def test_hidden_states_match_the_authors_model() -> None:
    expected = _expected(BASE)
    model = load_backbone(hf_model_cfg(BASE / "model")).model
    mask = expected["attention_mask"]
    with torch.no_grad():
        out = model(input_ids=expected["input_ids"], attention_mask=mask, output_hidden_states=True)
    torch.testing.assert_close(_real(out.last_hidden_state, mask), _real(expected["last_hidden_state"], mask),
                               atol=ATOL, rtol=0)
    assert len(out.hidden_states) == expected["hidden_states"].shape[0]
    for ours, theirs in zip(out.hidden_states, expected["hidden_states"], strict=True):
        torch.testing.assert_close(_real(ours, mask), _real(theirs, mask), atol=ATOL, rtol=0)


def test_causal_lm_logits_match_the_authors_model() -> None:
    expected = _expected(BASE)
    model = load_native(BASE / "model", "mlm")
    assert isinstance(model, HyenaDNAForCausalLM)
    mask = expected["attention_mask"]
    with torch.no_grad():
        logits = model(input_ids=expected["input_ids"]).logits
    torch.testing.assert_close(_real(logits, mask), _real(expected["logits"], mask), atol=ATOL, rtol=0)


def test_classifier_matches_the_authors_head_from_pytorch_model_bin() -> None:
    expected = _expected(CLASSIFIER)
    assert (CLASSIFIER / "model" / "pytorch_model.bin").is_file()  # every shared `freq` repeated in this layout
    backbone = load_backbone(hf_model_cfg(CLASSIFIER / "model"), native_head=True)
    labels = torch.tensor(json.loads((CLASSIFIER / "inputs.json").read_text())["labels"])
    with torch.no_grad():
        out = backbone.model(input_ids=expected["input_ids"], attention_mask=expected["attention_mask"],
                             labels=labels)
        by_pad_rule = backbone.model(input_ids=expected["input_ids"]).logits  # the published rule, no mask
    torch.testing.assert_close(out.logits, expected["logits"], atol=ATOL, rtol=0)
    torch.testing.assert_close(by_pad_rule, expected["logits"], atol=ATOL, rtol=0)
    torch.testing.assert_close(out.loss.reshape(1), expected["loss"], atol=ATOL, rtol=0)


def test_negative_control_circular_convolution_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """A length-L FFT (circular, so not causal) is the classic Hyena bug: the comparison must fail on it."""
    expected = _expected(BASE)
    model = load_backbone(hf_model_cfg(BASE / "model")).model

    def circular(u: torch.Tensor, k: torch.Tensor, skip: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        n = u.shape[-1]
        return torch.fft.irfft(torch.fft.rfft(u, n=n) * torch.fft.rfft(k, n=n), n=n) + u * skip.unsqueeze(-1)

    monkeypatch.setattr(hyenadna_module, "fft_long_conv", circular)
    mask = expected["attention_mask"]
    with torch.no_grad():
        out = model(input_ids=expected["input_ids"]).last_hidden_state
    gap = (_real(out, mask) - _real(expected["last_hidden_state"], mask)).abs().max().item()
    assert gap > 100 * ATOL


def test_zoo_name_loads_the_published_layout_natively_and_refuses_another_size(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg("model=hyenadna_tiny_1k", f"model.name_or_path={BASE / 'model'}")
    with pytest.raises(ModelLoadError, match="d_model: expected 128, found 16"):
        load_backbone(cfg.model)
    folder = _published_copy(tmp_path / "tiny_1k", d_model=128, n_layer=2, max_seq_len=1026, d_inner=512,
                             emb_dim=5, filter_order=64, activation_freq=10)
    cfg = make_cfg("model=hyenadna_tiny_1k", f"model.name_or_path={folder}")
    assert cfg.model.trust_remote_code is False
    backbone = load_backbone(cfg.model)
    assert isinstance(backbone.model, HyenaDNAModel) and backbone.max_tokens == 1024


def _published_copy(folder: Path, **fields: int) -> Path:
    """A random native model saved in the published layout: config.json with auto_map, tokenizer files naming
    remote code (copied from the golden fixture)."""
    torch.manual_seed(0)
    HyenaDNAForCausalLM(HyenaDNAConfig(**fields)).save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    published = json.loads((BASE / "model" / "config.json").read_text())
    config = {**{k: v for k, v in config.items() if k in published}, **fields, "model_type": "hyenadna",
              "auto_map": published["auto_map"]}
    (folder / "config.json").write_text(json.dumps(config))
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(BASE / "model" / name, folder / name)
    return folder


def _random_model(**overrides: int) -> HyenaDNAModel:
    torch.manual_seed(0)
    fields = {"d_model": 16, "n_layer": 2, "max_seq_len": 64, "emb_dim": 5, "filter_order": 8,
              "activation_freq": 10, **overrides}
    model = HyenaDNAModel(HyenaDNAConfig(**fields)).eval()
    with torch.no_grad():  # off the initial values, so the long filters carry information far (as trained ones do)
        for param in model.parameters():
            param.add_(0.2 * torch.randn(param.shape))
    return model


def test_causal_property_a_token_never_changes_earlier_outputs() -> None:
    model = _random_model()
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
    model = _random_model()
    ids = torch.randint(7, 12, (1, 30))
    padded = torch.cat([ids, torch.full((1, 10), 4)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(padded).last_hidden_state[:, :30], model(ids).last_hidden_state,
                                   atol=1e-5, rtol=0)


def test_channel_chunked_fft_gives_the_same_outputs() -> None:
    whole, chunked = _random_model(), _random_model(fft_chunk_channels=5)
    ids = torch.randint(7, 12, (2, 50))
    with torch.no_grad():
        torch.testing.assert_close(chunked(ids).last_hidden_state, whole(ids).last_hidden_state, atol=1e-5, rtol=0)


def test_input_longer_than_the_filters_is_refused() -> None:
    with pytest.raises(ValueError, match="longer than this HyenaDNA's max_seq_len=64"):
        _random_model()(torch.randint(7, 12, (1, 65)))


def test_trust_remote_code_runs_the_checkpoints_own_code(tmp_path: Path) -> None:
    """`model.trust_remote_code=true` on a config.json with model_type hyenadna and an auto_map runs that code
    (here a toy stand-in for modeling_hyena.py), not the native class; without it the native class loads."""
    from tests.models.test_remote_code import _model_cfg, _remote_folder

    folder = _remote_folder(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "hyenadna"}))
    source = (folder / "configuration_toy.py").read_text().replace('"toy_remote_dna"', '"hyenadna"')
    (folder / "configuration_toy.py").write_text(source)
    assert type(load_backbone(_model_cfg(folder, trust=True)).model).__name__ == "ToyDnaModel"
    with pytest.raises(ModelLoadError, match="native HyenaDNAModel"):  # its weights are not HyenaDNA's
        load_backbone(_model_cfg(folder, trust=False))


def test_a_saved_native_copy_reloads_without_remote_code(tmp_path: Path) -> None:
    """save_pretrained writes model_type hyenadna_native and no auto_map: the copy loads natively, same outputs."""
    model = load_backbone(hf_model_cfg(BASE / "model")).model
    model.save_pretrained(tmp_path / "copy")
    hyenadna_tokenizer().to_hf().save_pretrained(tmp_path / "copy")
    saved = json.loads((tmp_path / "copy" / "config.json").read_text())
    assert saved["model_type"] == "hyenadna_native" and "auto_map" not in saved
    again = load_backbone(hf_model_cfg(tmp_path / "copy"))
    ids = _expected(BASE)["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(again.model(ids).last_hidden_state, model(ids).last_hidden_state)
    assert again.lora_targets == ["in_proj", "out_proj"]


def test_gradient_checkpointing_gives_the_same_gradients() -> None:
    ids = torch.randint(7, 12, (2, 40))
    grads = []
    for checkpointing in (False, True):
        model = _random_model().train()
        if checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model(ids).last_hidden_state.square().mean().backward()
        grads.append(model.backbone.layers[0].mixer.in_proj.weight.grad)
    torch.testing.assert_close(grads[1], grads[0])


def test_bfloat16_stays_close_to_float32() -> None:
    model = _random_model()
    ids = torch.randint(7, 12, (2, 40))
    with torch.no_grad():
        full = model(ids).last_hidden_state
        half = model.to(torch.bfloat16)(ids).last_hidden_state
    assert half.dtype == torch.bfloat16
    # bf16 everywhere but the FFT (as in the port): a few per cent on average, far from a broken model (~100 %)
    assert (half.float() - full).abs().mean() < 0.1 * full.abs().mean()
