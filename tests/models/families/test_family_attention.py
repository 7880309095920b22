"""The two attention kernels agree, honour masks, and reject unknown names."""

from __future__ import annotations

import pytest
import torch

from dnalm.models.families.attention import attend, padding_mask


def test_sdpa_and_eager_kernels_agree_under_a_mask() -> None:
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 7, 8, generator=gen) for _ in range(3))
    mask = torch.rand(2, 3, 7, 7, generator=gen) > 0.4
    mask[..., 0] = True  # every query sees at least one key
    eager = attend(q, k, v, mask, implementation="eager")
    torch.testing.assert_close(attend(q, k, v, mask, implementation="sdpa"), eager, rtol=1e-5, atol=1e-5)
    # Eager is softmax(q k^T / sqrt(d)) v with masked keys removed: check one row by hand.
    row = (q[1, 2, 4] @ k[1, 2].T / 8**0.5).masked_fill(~mask[1, 2, 4], float("-inf")).softmax(-1) @ v[1, 2]
    torch.testing.assert_close(eager[1, 2, 4], row, rtol=1e-5, atol=1e-6)


def test_padding_mask_shape_and_errors() -> None:
    mask = padding_mask(torch.tensor([[1, 1, 0]]))
    assert (
        mask.shape == (1, 1, 1, 3) and mask.dtype == torch.bool and mask.tolist() == [[[[True, True, False]]]]
    )
    assert padding_mask(None) is None
    with pytest.raises(ValueError, match="batch, seq_len"):
        padding_mask(torch.ones(1, 1, 3))
    with pytest.raises(ValueError, match="unknown attention implementation"):
        attend(*(torch.zeros(1, 1, 2, 4) for _ in range(3)), None, implementation="flash")
