"""GENA-LM block-sparse (BigBird) attention without DeepSpeed: layout rules, the gathered kernel equals
masked dense attention (values and gradients), masked edges carry no information, and a published-style
sparse checkpoint (rotary positions, per-layer DeepSpeed layouts) loads and matches the equations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dnalm.models.families import (
    PUBLISHED_CONFIGS,
    GenaBertConfig,
    GenaBertForMaskedLM,
    GenaBertModel,
    config_mismatches,
    load_native,
)
from dnalm.models.families.attention import attend
from dnalm.models.families.sparse import (
    BigBirdPattern,
    bigbird_layout,
    bigbird_token_mask,
    gathered_block_attention,
)
from tests.helpers.gena_bert import published_state_dict, reference, write_published
from tests.helpers.gena_sparse import PATTERN, SPARSE_TINY, deepspeed_like_layouts


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
    assert layout.shape == (3, 10, 10) and layout.dtype == torch.int64  # DeepSpeed's buffer type
    layout = layout.bool()
    assert layout[:, :2, :].all() and layout[:, :, :2].all()  # global rows and columns
    rows = torch.arange(10)
    assert layout[:, rows, rows].all()  # the window contains the block itself ...
    assert (
        layout[:, rows[1:], rows[:-1]].all() and layout[:, rows[:-1], rows[1:]].all()
    )  # ... and its neighbours
    assert torch.equal(layout[0], layout[2])  # one layout shared by all heads unless asked otherwise
    assert torch.equal(layout, bigbird_layout(pattern, 3, 10).bool())  # seeded: reproducible
    assert not layout[:, 5:, 5:].all()  # and genuinely sparse
    per_head = bigbird_layout(BigBirdPattern(**{**pattern.__dict__, "different_layout_per_head": True}), 3, 10)
    assert not torch.equal(per_head[0], per_head[1])
    assert not torch.equal(bigbird_layout(pattern, 3, 10, seed_offset=1), bigbird_layout(pattern, 3, 10))


def test_token_mask_expands_blocks_and_crops() -> None:
    layout = torch.tensor([[[1, 0], [0, 1]]])
    mask = bigbird_token_mask(layout, block=2, seq_len=3)
    assert mask.tolist() == [[[True, True, False], [True, True, False], [False, False, True]]]
    with pytest.raises(ValueError, match="needs 3 blocks"):
        bigbird_token_mask(layout, block=2, seq_len=5)


def test_bad_patterns_are_rejected_with_the_key_named() -> None:
    with pytest.raises(ValueError, match="unknown sparse_attention keys \\['window'\\]"):
        BigBirdPattern.from_dict({"window": 3})
    with pytest.raises(ValueError, match="odd"):
        BigBirdPattern.from_dict({"num_sliding_window_blocks": 2})
    with pytest.raises(ValueError, match="bidirectional"):
        BigBirdPattern.from_dict({"attention": "unidirectional"})
    with pytest.raises(Exception, match="unknown sparse_attention keys"):
        tiny(sparse={"blocks": 2})
    with pytest.raises(Exception, match="num_heads=3 differs"):
        tiny(sparse={**PATTERN, "num_heads": 3})
    with pytest.raises(Exception, match="FixedSparsityConfig"):
        tiny(sparse_config_cls="deepspeed.ops.sparse_attention:FixedSparsityConfig")
    with pytest.raises(Exception, match="sparse_attention .* is missing"):
        tiny(sparse=None, sparse_config_cls=SPARSE_TINY["sparse_config_cls"])
    with pytest.raises(Exception, match="rotary_dim must be even"):
        tiny(position_embedding_type="rotary", rotary_dim=3)


@pytest.mark.parametrize("seq_len", [16, 13, 5])
def test_gathered_kernel_equals_masked_dense_attention(seq_len: int) -> None:
    torch.manual_seed(0)
    batch, heads, dim, block = 2, 3, 4, 2
    layout = deepspeed_like_layouts(1, heads, 8)[0]
    q, k, v = (torch.randn(batch, heads, seq_len, dim, dtype=torch.float64, requires_grad=True) for _ in range(3))
    key_mask = torch.ones(batch, seq_len, dtype=torch.bool)
    key_mask[1, seq_len - 3 :] = False
    dense_mask = bigbird_token_mask(layout, block, seq_len)[None] & key_mask[:, None, None, :]

    gathered = gathered_block_attention(q, k, v, layout, block, key_mask)
    dense = attend(q, k, v, dense_mask, implementation="eager")
    # The eager reference takes its softmax in float32, hence the tolerance.
    torch.testing.assert_close(gathered, dense, rtol=1e-5, atol=1e-5)
    weights = torch.randn_like(dense)
    grads_gathered = torch.autograd.grad((gathered * weights).sum(), (q, k, v))
    grads_dense = torch.autograd.grad((dense * weights).sum(), (q, k, v))
    for a, b in zip(grads_gathered, grads_dense, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_gathered_kernel_scores_only_allowed_blocks() -> None:
    """The point of the kernel: a query block's scores span its allowed key blocks, not the sequence."""
    layout = bigbird_layout(BigBirdPattern(block=4, num_global_blocks=1, num_random_blocks=1), 2, 16)
    seen: list[tuple[int, ...]] = []

    def spy(query: torch.Tensor, key: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        seen.append(tuple(key.shape))
        return attend(query, key, *args, **kwargs)

    q = torch.randn(1, 2, 64, 8)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("dnalm.models.families.sparse.attend", spy)
        gathered_block_attention(q, q, q, layout, 4, None)
    assert seen[0][-2] == 64  # the global query block sees all 64 keys
    # every other block: at most global + window + random = 5 blocks of 4 keys
    assert seen[1][-2] <= 5 * 4


def test_masked_blocks_carry_no_information() -> None:
    torch.manual_seed(0)
    model = GenaBertModel(tiny()).eval()
    ids = torch.randint(5, 30, (1, 16))
    with torch.no_grad():
        base = model(ids).last_hidden_state
    layout = model.encoder.layer[0].attention.self.sparse_self_attention.master_layout[0].bool()
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


def test_each_layer_draws_its_own_seeded_layout() -> None:
    model = GenaBertModel(tiny(layers=2, sparse={**PATTERN, "num_random_blocks": 2}))
    first, second = (layer.attention.self.sparse_self_attention.master_layout for layer in model.encoder.layer)
    assert not torch.equal(first, second)
    again = GenaBertModel(tiny(layers=2, sparse={**PATTERN, "num_random_blocks": 2}))
    assert torch.equal(first, again.encoder.layer[0].attention.self.sparse_self_attention.master_layout)


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
    missing, unexpected = sparse.load_state_dict(dense.state_dict(), strict=False)
    assert not unexpected and all(key.endswith("master_layout") for key in missing)
    ids = torch.randint(5, 30, (2, 11))
    with torch.no_grad():
        torch.testing.assert_close(sparse(ids).last_hidden_state, dense(ids).last_hidden_state)


@pytest.fixture
def published_sparse(tmp_path: Path) -> tuple[Path, dict, dict]:
    layouts = deepspeed_like_layouts(SPARSE_TINY["num_hidden_layers"], 4, 8)
    sd = published_state_dict(SPARSE_TINY, layouts=layouts)
    return write_published(tmp_path / "gena_sparse", SPARSE_TINY, sd), sd, SPARSE_TINY


def test_published_sparse_checkpoint_loads_its_own_layouts(published_sparse: tuple[Path, dict, dict]) -> None:
    path, sd, _ = published_sparse
    model, info = load_native(path, "mlm", output_loading_info=True)
    assert isinstance(model, GenaBertForMaskedLM) and not info["missing_keys"]
    assert not hasattr(model.bert.embeddings, "position_embeddings")  # rotary: no position table
    state = model.state_dict()
    for key, value in state.items():
        torch.testing.assert_close(value, sd[key], rtol=0, atol=0, msg=key)
    # The layouts the checkpoint was trained with, not freshly drawn ones.
    layout_keys = [k for k in state if k.endswith("master_layout")]
    assert len(layout_keys) == SPARSE_TINY["num_hidden_layers"]


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_published_sparse_matches_reference_equations(
    published_sparse: tuple[Path, dict, dict], implementation: str
) -> None:
    path, sd, cfg = published_sparse
    ids = torch.tensor([[1, 9, 14, 22, 5, 31, 7, 8, 12, 19, 25, 2, 3, 3], [1, 17, 8, 6, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3]])
    mask = (ids != cfg["pad_token_id"]).long()
    hidden_ref, pooled_ref, logits_ref = reference(sd, cfg, ids, mask)
    mlm = load_native(path, "mlm", attn_implementation=implementation).eval()
    base = load_native(path, "base", attn_implementation=implementation).eval()
    with torch.no_grad():
        logits = mlm(input_ids=ids, attention_mask=mask).logits
        encoded = base(input_ids=ids, attention_mask=mask)
    real = mask.bool()
    torch.testing.assert_close(logits[real].double(), logits_ref[real], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(encoded.last_hidden_state[real].double(), hidden_ref[real], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(encoded.pooler_output.double(), pooled_ref, rtol=1e-4, atol=1e-4)


def test_published_sparse_gradient_checkpointing_and_bf16(published_sparse: tuple[Path, dict, dict]) -> None:
    path = published_sparse[0]
    ids = torch.randint(5, 40, (2, 16))
    grads = []
    for checkpointing in (False, True):
        model = load_native(path, "base")
        if checkpointing:
            model.gradient_checkpointing_enable()
        model.train()
        model(input_ids=ids).last_hidden_state.pow(2).mean().backward()
        grads.append(model.encoder.layer[0].attention.self.query.weight.grad)
    torch.testing.assert_close(grads[0], grads[1])
    fp32 = load_native(path, "base").eval()
    bf16 = load_native(path, "base", dtype=torch.bfloat16).eval()
    assert bf16.encoder.layer[0].attention.self.sparse_self_attention.master_layout.dtype == torch.int64
    with torch.no_grad():
        close = torch.nn.functional.cosine_similarity(
            bf16(input_ids=ids).last_hidden_state.float(), fp32(input_ids=ids).last_hidden_state, dim=-1
        )
    assert close.min() > 0.99


def test_saved_sparse_model_round_trips(published_sparse: tuple[Path, dict, dict], tmp_path: Path) -> None:
    model = load_native(published_sparse[0], "mlm")
    model.save_pretrained(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert saved["model_type"] == "gena_lm_bert" and "auto_map" not in saved
    again = GenaBertForMaskedLM.from_pretrained(tmp_path / "saved")
    for key, value in model.state_dict().items():
        torch.testing.assert_close(again.state_dict()[key], value, rtol=0, atol=0, msg=key)


def test_published_sparse_values_are_checked() -> None:
    for name in ("AIRI-Institute/gena-lm-bigbird-base-sparse", "AIRI-Institute/gena-lm-bigbird-base-sparse-t2t"):
        published = PUBLISHED_CONFIGS[name]
        assert config_mismatches(published, name) == []
        GenaBertConfig(**{k: v for k, v in published.items() if k != "model_type"})  # a valid native config
        edited = {**published, "sparse_attention": {**published["sparse_attention"], "num_random_blocks": 1}}
        assert config_mismatches(edited, name) == [
            f"sparse_attention: expected {published['sparse_attention']!r}, found {edited['sparse_attention']!r}"
        ]


def test_long_config_without_layout_needs_explicit_pattern(tmp_path: Path) -> None:
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
    # A dense file has no layouts: opting in draws the seeded ones instead of failing on missing keys.
    loaded = load_native(
        tmp_path, "base", config_overrides={"sparse_attention": PATTERN, "max_position_embeddings": 16}
    )
    assert loaded.config.sparse_attention == PATTERN
    drawn = loaded.encoder.layer[0].attention.self.sparse_self_attention.master_layout
    assert torch.equal(drawn, bigbird_layout(BigBirdPattern(**PATTERN), 2, 8))
