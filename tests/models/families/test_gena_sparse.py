"""BigBird block-sparse attention as PyTorch masks: layout rules, masked edges carry no information,
SDPA = eager, and a sparse pattern that covers everything equals dense attention."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dnalm.models.families import GenaBertConfig, GenaBertModel, load_native
from dnalm.models.families.sparse import BigBirdPattern, bigbird_layout, bigbird_token_mask

PATTERN = {"block": 2, "num_global_blocks": 1, "num_sliding_window_blocks": 3, "num_random_blocks": 1}


def tiny(layers: int = 1, sparse: dict | None = PATTERN, **extra: object) -> GenaBertConfig:
    return GenaBertConfig(
        vocab_size=30,
        hidden_size=16,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=24,
        max_position_embeddings=16,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        sparse_attention=sparse,
        **extra,
    )


def test_layout_follows_bigbird_rules() -> None:
    pattern = BigBirdPattern(block=4, num_global_blocks=2, num_sliding_window_blocks=3, num_random_blocks=2)
    layout = bigbird_layout(pattern, num_heads=3, num_blocks=10)
    assert layout.shape == (3, 10, 10)
    assert layout[:, :2, :].all() and layout[:, :, :2].all()  # global rows and columns
    rows = torch.arange(10)
    assert layout[:, rows, rows].all()  # the window contains the block itself ...
    assert (
        layout[:, rows[1:], rows[:-1]].all() and layout[:, rows[:-1], rows[1:]].all()
    )  # ... and its neighbours
    assert torch.equal(layout[0], layout[2])  # one layout shared by all heads unless asked otherwise
    assert torch.equal(layout, bigbird_layout(pattern, 3, 10))  # seeded: reproducible
    assert not layout[:, 5:, 5:].all()  # and genuinely sparse
    per_head = bigbird_layout(
        BigBirdPattern(**{**pattern.__dict__, "different_layout_per_head": True}), 3, 10
    )
    assert not torch.equal(per_head[0], per_head[1])


def test_token_mask_expands_blocks_and_crops() -> None:
    layout = torch.tensor([[[1, 0], [0, 1]]], dtype=torch.bool)
    mask = bigbird_token_mask(layout, block=2, seq_len=3)
    assert mask.tolist() == [[[True, True, False], [True, True, False], [False, False, True]]]
    with pytest.raises(ValueError, match="needs 3 blocks"):
        bigbird_token_mask(layout, block=2, seq_len=5)


def test_bad_patterns_are_rejected_with_the_key_named() -> None:
    with pytest.raises(ValueError, match="unknown sparse_attention keys \\['window'\\]"):
        BigBirdPattern.from_dict({"window": 3})
    with pytest.raises(ValueError, match="odd"):
        BigBirdPattern.from_dict({"num_sliding_window_blocks": 2})
    with pytest.raises(Exception, match="unknown sparse_attention keys"):
        tiny(sparse={"blocks": 2})


def test_masked_blocks_carry_no_information() -> None:
    torch.manual_seed(0)
    model = GenaBertModel(tiny()).eval()
    ids = torch.randint(5, 30, (1, 16))
    with torch.no_grad():
        base = model(ids).last_hidden_state
    layout = model._sparse_layout[0]
    query_block = next(r for r in range(layout.shape[0]) if not layout[r].all())
    hidden_block = int((~layout[query_block]).nonzero()[0])
    visible_block = (query_block + 1) % layout.shape[0]
    assert layout[query_block, visible_block]
    queries = slice(2 * query_block, 2 * query_block + 2)
    for block, should_change in ((hidden_block, False), (visible_block, True)):
        changed = ids.clone()
        changed[0, 2 * block] = 4 if changed[0, 2 * block] != 4 else 5
        with torch.no_grad():
            out = model(changed).last_hidden_state
        assert torch.allclose(out[0, queries], base[0, queries], atol=1e-6) != should_change, block


def test_sdpa_equals_eager_with_sparse_and_padding() -> None:
    torch.manual_seed(0)
    ids = torch.randint(5, 30, (2, 13))
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    outs = []
    for implementation in ("sdpa", "eager"):
        torch.manual_seed(1)
        model = GenaBertModel(tiny(layers=2))
        model.set_attn_implementation(implementation)
        assert model.config._attn_implementation == implementation
        model.eval()
        with torch.no_grad():
            outs.append(model(ids, attention_mask=mask).last_hidden_state)
    torch.testing.assert_close(outs[0][mask.bool()], outs[1][mask.bool()], rtol=1e-5, atol=1e-5)


def test_pattern_covering_everything_equals_dense() -> None:
    covering = {**PATTERN, "num_global_blocks": 8}  # every block global: attention is dense
    torch.manual_seed(2)
    dense = GenaBertModel(tiny(layers=2, sparse=None)).eval()
    sparse = GenaBertModel(tiny(layers=2, sparse=covering)).eval()
    sparse.load_state_dict(dense.state_dict())
    ids = torch.randint(5, 30, (2, 11))
    with torch.no_grad():
        torch.testing.assert_close(sparse(ids).last_hidden_state, dense(ids).last_hidden_state)


def test_long_published_config_needs_explicit_pattern(tmp_path: Path) -> None:
    model = GenaBertModel(tiny(sparse=None))
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config.update(model_type="bert", max_position_embeddings=4096)
    config.pop("sparse_attention", None)
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="block-sparse"):
        load_native(tmp_path, "base")
    # The position table in the file is 16 long, so opting in with the real length must fail on shapes.
    with pytest.raises(ValueError, match="do not fit"):
        load_native(tmp_path, "base", config_overrides={"sparse_attention": PATTERN})
    loaded = load_native(
        tmp_path, "base", config_overrides={"sparse_attention": PATTERN, "max_position_embeddings": 16}
    )
    assert loaded.config.sparse_attention == PATTERN
