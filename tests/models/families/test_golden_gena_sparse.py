"""GENA-LM sparse BigBird against AIRI's code on DeepSpeed 0.6.5's SparseSelfAttention.

DeepSpeed caches its block-sparse kernels in the class-level dict ``SparseSelfAttention.ops`` keyed by sequence
length and built from the layout of the first instance that runs, so every layer computed with layer 0's
``master_layout`` although each layer stores its own. The fixture (tools/golden/gena.py) ran DeepSpeed's own
``sparse_self_attention.py`` with dense kernels over the layout's blocks.
"""

from __future__ import annotations

import json
import logging

import pytest
import torch

from tests.helpers.golden import assert_same_ids, assert_tokens_close, forward, golden, load_as_user

LAYOUT = "bert.encoder.layer.{}.attention.self.sparse_self_attention.master_layout"


def test_sparse_model_loads_as_user_and_matches(make_cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    fixture = golden("gena_bigbird_base_sparse")
    backbone = load_as_user(fixture, "gena_bigbird_base_sparse", make_cfg, monkeypatch)
    assert_same_ids(backbone, fixture)
    assert_tokens_close(forward(backbone, fixture).last_hidden_state, fixture, "last_hidden_state")


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_sparse_model_matches_deepspeed_runtime(implementation: str) -> None:
    from dnalm.models.families import load_native

    fixture = golden("gena_bigbird_base_sparse")
    model = load_native(fixture.folder, "mlm", attn_implementation=implementation).eval()
    with torch.no_grad():
        out = model(input_ids=fixture.expected["input_ids"], attention_mask=fixture.expected["attention_mask"],
                    output_hidden_states=True)
    assert_tokens_close(out.hidden_states[-1], fixture, "last_hidden_state")
    assert_tokens_close(out.logits, fixture, "logits")


def test_every_layer_keeps_its_own_layout_buffer_bit_exactly() -> None:
    from dnalm.models.families import load_native

    fixture = golden("gena_bigbird_base_sparse")
    published = torch.load(fixture.folder / "pytorch_model.bin", weights_only=True)
    model = load_native(fixture.folder, "mlm")
    state = model.state_dict()
    layers = model.config.num_hidden_layers
    for i in range(layers):
        assert torch.equal(state[LAYOUT.format(i)], published[LAYOUT.format(i)])
    assert not torch.equal(published[LAYOUT.format(0)], published[LAYOUT.format(1)])  # the layers differ


def test_comparison_catches_per_layer_layouts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative control: applying each layer's own layout (not what DeepSpeed ran) fails the comparison."""
    from dnalm.models.families import load_native
    from dnalm.models.families import sparse as sparse_module

    fixture = golden("gena_bigbird_base_sparse")
    model = load_native(fixture.folder, "mlm").bert.eval()
    monkeypatch.setattr(sparse_module.BlockSparseAttention, "runtime_layout",
                        lambda self, shared: self.master_layout)
    with torch.no_grad(), pytest.raises(AssertionError):
        hidden = model(input_ids=fixture.expected["input_ids"],
                       attention_mask=fixture.expected["attention_mask"]).last_hidden_state
        assert_tokens_close(hidden, fixture, "last_hidden_state")


def test_sparse_file_without_layouts_is_refused(tmp_path) -> None:
    from dnalm.models.families import load_native

    fixture = golden("gena_bigbird_base_sparse")
    folder = tmp_path / "no_layouts"
    folder.mkdir()
    (folder / "config.json").write_text((fixture.folder / "config.json").read_text())
    state = torch.load(fixture.folder / "pytorch_model.bin", weights_only=True)
    torch.save({k: v for k, v in state.items() if "master_layout" not in k}, folder / "pytorch_model.bin")
    with pytest.raises(ValueError, match="master_layout"):
        load_native(folder, "mlm")


def test_dense_checkpoint_run_sparse_on_purpose_warns(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    """A dense file with an explicit sparse pattern (config_overrides) draws seeded layouts, and says so."""
    from dnalm.models.families import load_native

    fixture = golden("gena_bigbird_base_sparse")
    folder = tmp_path / "dense"
    folder.mkdir()
    raw = json.loads((fixture.folder / "config.json").read_text())
    pattern = raw.pop("sparse_attention")
    raw.pop("sparse_config_cls")
    raw["max_position_embeddings"] = 512
    (folder / "config.json").write_text(json.dumps(raw))
    state = torch.load(fixture.folder / "pytorch_model.bin", weights_only=True)
    torch.save({k: v for k, v in state.items() if "master_layout" not in k}, folder / "pytorch_model.bin")
    with caplog.at_level(logging.WARNING):
        model = load_native(folder, "mlm", config_overrides={"sparse_attention": pattern,
                                                              "max_position_embeddings": 64})
    assert "drawn" in caplog.text and "master_layout" in caplog.text
    assert model.bert.encoder.layer[0].attention.self.sparse_self_attention.master_layout.sum() > 0
