"""Properties of the native Caduceus that the golden fixtures do not pin down.

RC equivariance of PS (the RC of the input gives the RC of the output), RC invariance of PS classifiers and of
PH with post-hoc conjoining, padding invariance with an attention mask, the chunked selective scan against the
step-by-step recurrence (values and gradients), gradient checkpointing, and saving/loading without remote code.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from huggingface_hub.errors import StrictDataclassClassValidationError
from transformers import AutoModel, AutoModelForSequenceClassification

from dnalm.models.families import (
    CaduceusConfig,
    CaduceusForMaskedLM,
    CaduceusForSequenceClassification,
    CaduceusModel,
)
from dnalm.models.families.caduceus import SequenceFlip, rc_channels
from dnalm.models.families.mamba import selective_scan

# [CLS] [SEP] [BOS] [MASK] [PAD] [RESERVED] [UNK] A C G T N: A<->T, C<->G, the rest map to themselves
COMPLEMENT = {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 10, 8: 9, 9: 8, 10: 7, 11: 11}
ATOL = 1e-5


def config(rcps: bool, **overrides) -> CaduceusConfig:
    fields = {"d_model": 8, "n_layer": 2, "vocab_size": 12, "rcps": rcps, "complement_map": COMPLEMENT,
              "ssm_cfg": {"d_state": 4, "expand": 2}, "residual_in_fp32": False, **overrides}
    return CaduceusConfig(**fields)


def randomised(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Norm weights away from 1, so a channel-order slip in the RC half would show."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight") or name.endswith("norm_f.weight"):
                param.copy_(1 + 0.5 * torch.randn(param.shape, generator=gen))
    return model.eval()


def dna_ids(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    """Random A/C/G/T/N ids ending in [SEP], like the Caduceus tokenizer's output."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(7, 12, (batch, length), generator=gen)
    ids[:, -1] = 1
    return ids


def rc_ids(ids: torch.Tensor) -> torch.Tensor:
    table = torch.tensor([COMPLEMENT[i] for i in range(12)])
    return table[ids.flip(1)]


def sequential_scan(u, delta, A, B, C, D, z, delta_bias) -> torch.Tensor:
    """h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t u_t, y_t = C_t·h_t + D u_t, gated by silu(z): one step at a time."""
    delta = torch.nn.functional.softplus(delta + delta_bias)
    state = u.new_zeros(u.shape[0], A.shape[0], A.shape[1])
    ys = []
    for t in range(u.shape[1]):
        state = torch.exp(delta[:, t, :, None] * A) * state + (delta[:, t] * u[:, t])[..., None] * B[:, t, None, :]
        ys.append((state * C[:, t, None, :]).sum(-1))
    return (torch.stack(ys, 1) + u * D) * torch.nn.functional.silu(z)


@pytest.mark.parametrize("length,chunk,recompute", [(1, 4, False), (13, 4, True), (16, 16, False), (37, 8, True),
                                                     (37, 8, False)])
def test_chunked_scan_equals_the_recurrence_in_values_and_gradients(length: int, chunk: int, recompute: bool,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunk boundaries, the hand-written backward and (``recompute``) the per-chunk checkpointing."""
    from dnalm.models.families import mamba

    monkeypatch.setattr(mamba, "RECOMPUTE_ABOVE", 0 if recompute else 2**40)
    gen = torch.Generator().manual_seed(length)
    batch, inner, state = 2, 6, 4
    tensors = {
        "u": torch.randn(batch, length, inner, generator=gen), "delta": torch.randn(batch, length, inner, generator=gen),
        "A": -torch.rand(inner, state, generator=gen) * 8, "B": torch.randn(batch, length, state, generator=gen),
        "C": torch.randn(batch, length, state, generator=gen), "D": torch.randn(inner, generator=gen),
        "z": torch.randn(batch, length, inner, generator=gen), "delta_bias": torch.randn(inner, generator=gen),
    }
    ours = {k: v.clone().double().requires_grad_() for k, v in tensors.items()}
    ref = {k: v.clone().double().requires_grad_() for k, v in tensors.items()}
    out = selective_scan(**{k: v for k, v in ours.items()}, chunk_size=chunk)
    expected = sequential_scan(**ref)
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-5)
    weights = torch.randn(expected.shape, generator=gen, dtype=torch.float64)
    (out.double() * weights).sum().backward()
    (expected * weights).sum().backward()
    for name in tensors:
        torch.testing.assert_close(ours[name].grad, ref[name].grad, atol=1e-4, rtol=1e-4, msg=name)


def test_scan_survives_strong_decay_over_long_chunks() -> None:
    """Products of decays only (no division by a running product): no overflow, no NaN."""
    u = torch.randn(1, 512, 4)
    out = selective_scan(u, torch.full_like(u, 8.0), -torch.full((4, 2), 50.0), torch.randn(1, 512, 2),
                         torch.randn(1, 512, 2), chunk_size=256)
    assert torch.isfinite(out).all()


def test_ps_is_reverse_complement_equivariant() -> None:
    model = randomised(CaduceusForMaskedLM(config(rcps=True)))
    ids = dna_ids(2, 21)
    with torch.no_grad():
        out, out_rc = model(ids, output_hidden_states=True), model(rc_ids(ids), output_hidden_states=True)
    flip = SequenceFlip(None)
    for hidden, hidden_rc in zip(out.hidden_states, out_rc.hidden_states, strict=True):
        torch.testing.assert_close(hidden_rc, rc_channels(hidden, flip), atol=ATOL, rtol=0)
    # Token logits: position t of the RC input predicts the complement of what position L-1-t predicts.
    complement = torch.tensor([COMPLEMENT.get(i, i) for i in range(model.config.vocab_size)])
    torch.testing.assert_close(out_rc.logits, out.logits.flip(1)[..., complement], atol=ATOL, rtol=0)
    # PH has no such symmetry: the test above is not vacuous.
    ph = randomised(CaduceusModel(config(rcps=False)))
    with torch.no_grad():
        ph_out, ph_rc = ph(ids).last_hidden_state, ph(rc_ids(ids)).last_hidden_state
    assert (ph_rc - ph_out.flip(1).flip(-1)).abs().max() > 1e-2


def test_ps_equivariance_holds_for_padded_rows_with_a_mask() -> None:
    """RC within each row's real tokens, left or right padding: the RC'd output at the real tokens."""
    model = randomised(CaduceusModel(config(rcps=True)))
    ids = dna_ids(2, 15, seed=3)
    lengths = [15, 9]
    rc_rows = [rc_ids(ids[i : i + 1, : lengths[i]])[0] for i in range(2)]
    for side in ("right", "left"):
        batch = torch.full((2, 15), 4)
        rc_batch = torch.full((2, 15), 4)
        mask = torch.zeros(2, 15, dtype=torch.long)
        for i, n in enumerate(lengths):
            span = slice(0, n) if side == "right" else slice(15 - n, 15)
            batch[i, span], rc_batch[i, span], mask[i, span] = ids[i, :n], rc_rows[i], 1
        with torch.no_grad():
            out = model(batch, attention_mask=mask).last_hidden_state
            out_rc = model(rc_batch, attention_mask=mask).last_hidden_state
        for i in range(2):
            real = mask[i].bool()
            torch.testing.assert_close(out_rc[i][real], out[i][real].flip(0).flip(-1), atol=ATOL, rtol=0)


@pytest.mark.parametrize("rcps", [False, True])
def test_padding_does_not_reach_real_tokens_with_a_mask(rcps: bool) -> None:
    model = randomised(CaduceusModel(config(rcps=rcps)))
    ids = dna_ids(1, 11, seed=5)
    with torch.no_grad():
        alone = model(ids).last_hidden_state[0]
        for padded, mask in (
            (torch.cat([ids, torch.full((1, 6), 4)], 1), torch.cat([torch.ones(1, 11), torch.zeros(1, 6)], 1)),
            (torch.cat([torch.full((1, 6), 4), ids], 1), torch.cat([torch.zeros(1, 6), torch.ones(1, 11)], 1)),
        ):
            out = model(padded, attention_mask=mask.long()).last_hidden_state[0]
            torch.testing.assert_close(out[mask[0].bool()], alone, atol=ATOL, rtol=0)
            unmasked = model(padded).last_hidden_state[0]
            assert (unmasked[mask[0].bool()] - alone).abs().max() > 1e-3  # the mask is what keeps padding out


def test_classifiers_are_rc_invariant_ps_always_ph_when_conjoined() -> None:
    ids = dna_ids(3, 17, seed=7)
    ps = randomised(CaduceusForSequenceClassification(config(rcps=True, num_labels=2)))
    ph = randomised(CaduceusForSequenceClassification(config(rcps=False, num_labels=2)))
    conjoined = randomised(CaduceusForSequenceClassification(config(rcps=False, num_labels=2, conjoin_eval=True)))
    conjoined.load_state_dict(ph.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(ps(ids).logits, ps(rc_ids(ids)).logits, atol=ATOL, rtol=0)
        torch.testing.assert_close(conjoined(ids).logits, conjoined(rc_ids(ids)).logits, atol=ATOL, rtol=0)
        assert (ph(ids).logits - ph(rc_ids(ids)).logits).abs().max() > 1e-3
        # conjoined = mean of the plain model's logits on both strands; (B, L, 2) input = the authors' layout
        both = (ph(ids).logits + ph(rc_ids(ids)).logits) / 2
        torch.testing.assert_close(conjoined(ids).logits, both, atol=ATOL, rtol=0)
        stacked = torch.stack([ids, rc_ids(ids)], dim=-1)
        torch.testing.assert_close(conjoined(stacked).logits, both, atol=ATOL, rtol=0)
    conjoined.train()  # conjoin_eval only: training sees one strand
    with torch.no_grad():
        torch.testing.assert_close(conjoined(ids).logits, ph(ids).logits, atol=ATOL, rtol=0)


@pytest.mark.parametrize("rcps", [False, True])
def test_gradient_checkpointing_gives_the_same_gradients(rcps: bool) -> None:
    torch.manual_seed(0)
    model = randomised(CaduceusForSequenceClassification(config(rcps=rcps, num_labels=2))).train()
    ids, labels = dna_ids(2, 19, seed=9), torch.tensor([0, 1])
    model(ids, labels=labels).loss.backward()
    plain = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    assert all(layer.gradient_checkpointing for layer in model.caduceus.backbone.layers)
    model(ids, labels=labels).loss.backward()
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.grad, plain[name], atol=1e-5, rtol=1e-4, msg=name)


def test_tied_projections_are_one_module_shared_by_both_directions() -> None:
    model = CaduceusModel(config(rcps=True))
    mixer = model.backbone.layers[0].mixer.submodule
    assert not hasattr(mixer.mamba_rev, "in_proj") and not hasattr(mixer.mamba_rev, "out_proj")
    untied = CaduceusModel(config(rcps=False, bidirectional_weight_tie=False)).backbone.layers[0].mixer
    assert untied.mamba_rev.in_proj is not untied.mamba_fwd.in_proj
    assert model.config.hidden_size == 16 and CaduceusModel(config(rcps=False)).config.hidden_size == 8


def test_saved_copy_loads_natively_with_the_auto_classes(tmp_path: Path) -> None:
    model = randomised(CaduceusForSequenceClassification(config(rcps=True, num_labels=2, pooling_strategy="max")))
    model.save_pretrained(tmp_path)
    saved = (tmp_path / "config.json").read_text()
    assert '"model_type": "caduceus"' in saved and "auto_map" not in saved
    again = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert isinstance(again, CaduceusForSequenceClassification) and again.config.pooling_strategy == "max"
    encoder = AutoModel.from_pretrained(tmp_path)
    assert isinstance(encoder, CaduceusModel)
    ids = dna_ids(2, 9)
    with torch.no_grad():
        torch.testing.assert_close(again(ids).logits, model(ids).logits)


def test_bfloat16_runs_close_to_float32() -> None:
    model = randomised(CaduceusModel(config(rcps=True)))
    ids = dna_ids(2, 12)
    with torch.no_grad():
        full = model(ids).last_hidden_state
        half = model.to(torch.bfloat16)(ids).last_hidden_state
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), full, atol=0.1, rtol=0.05)


def test_rcps_config_needs_a_complement_map() -> None:
    with pytest.raises(StrictDataclassClassValidationError, match="complement_map"):
        CaduceusConfig(d_model=8, n_layer=1, rcps=True, complement_map=None)
    with pytest.raises(StrictDataclassClassValidationError, match="pooling_strategy"):
        CaduceusConfig(d_model=8, n_layer=1, pooling_strategy="median")


@pytest.mark.gpu
def test_mamba_ssm_cuda_kernels_match_the_pure_pytorch_scan() -> None:
    """With ``mamba-ssm`` installed on a GPU the mixers use its kernels; they must give the pure scan's results."""
    pytest.importorskip("mamba_ssm")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    from dnalm.models.families.mamba import MambaMixer, kernels_available

    assert kernels_available(torch.device("cuda"))
    model = randomised(CaduceusForMaskedLM(config(rcps=True, d_model=64))).cuda()
    ids = dna_ids(2, 300).cuda()
    with torch.no_grad():
        fast = model(ids).logits
        for module in model.modules():
            if isinstance(module, MambaMixer):
                module.use_fast_path = False
        pure = model(ids).logits
    torch.testing.assert_close(fast, pure, atol=1e-3, rtol=1e-3)
