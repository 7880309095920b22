"""Decoders skip the attention mask on right-padded batches; real tokens get exactly the same outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from dnalm.strategies import FullFineTuning
from tests.helpers import DECODERS, load_tiny, make_module, random_dna, save_tiny_model, token_batch


class _MaskSpy:
    """Records the ``attention_mask`` each backbone call receives."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.masks: list[Any] = []
        model.register_forward_pre_hook(self._record, with_kwargs=True)

    def _record(self, module: torch.nn.Module, args: Any, kwargs: dict[str, Any]) -> None:
        self.masks.append(kwargs.get("attention_mask"))


@pytest.mark.parametrize("kind", DECODERS)
def test_right_padded_decoder_batch_runs_without_mask_and_real_tokens_match(tmp_path: Path, kind: str) -> None:
    backbone = load_tiny(save_tiny_model(tmp_path / kind, kind))
    assert backbone.right_padding_needs_no_mask
    module = make_module(backbone, FullFineTuning()).eval()
    spy = _MaskSpy(module.backbone)
    batch = token_batch(backbone.tokenizer, random_dna(4, [20, 7, 13, 1]))
    mask = batch["attention_mask"]
    assert not mask.all()  # the batch really has padding
    with torch.no_grad():
        ours = module.hidden_states(batch["input_ids"], mask)
        reference = module.backbone(input_ids=batch["input_ids"], attention_mask=mask).last_hidden_state
    assert spy.masks[0] is None
    real = mask.bool()
    torch.testing.assert_close(ours[real], reference[real], rtol=1e-5, atol=1e-6)
    # pooled embeddings and logits only read real tokens, so they match as well
    with torch.no_grad():
        expected = module.head(module.pooling(reference, mask))
        torch.testing.assert_close(module(batch["input_ids"], mask), expected, rtol=1e-5, atol=1e-6)


def test_left_padded_batch_keeps_its_mask(tmp_path: Path) -> None:
    backbone = load_tiny(save_tiny_model(tmp_path / "mistral", "mistral"))
    module = make_module(backbone, FullFineTuning()).eval()
    spy = _MaskSpy(module.backbone)
    batch = token_batch(backbone.tokenizer, random_dna(2, [9, 4]))
    left = torch.stack([row.roll(int((row == 0).sum())) for row in batch["attention_mask"]])
    assert left[1, 0] == 0 and left[1, -1] == 1
    with torch.no_grad():
        module.hidden_states(batch["input_ids"], left)
    assert spy.masks[0] is left


def test_encoders_always_get_the_mask(tmp_path: Path) -> None:
    backbone = load_tiny(save_tiny_model(tmp_path / "bert", "bert"))
    assert not backbone.right_padding_needs_no_mask
    module = make_module(backbone, FullFineTuning()).eval()
    spy = _MaskSpy(module.backbone)
    batch = token_batch(backbone.tokenizer, random_dna(2, [9, 4]))
    with torch.no_grad():
        module.hidden_states(batch["input_ids"], batch["attention_mask"])
    assert spy.masks[0] is batch["attention_mask"]


def test_a_mask_on_an_accelerator_is_not_read_back_unless_the_batch_says_how_it_was_padded(tmp_path: Path) -> None:
    """Reading the mask of a CUDA batch would stall the host every step: only the collator's flag decides."""
    backbone = load_tiny(save_tiny_model(tmp_path / "mistral", "mistral"))
    module = make_module(backbone, FullFineTuning()).eval()
    batch = token_batch(backbone.tokenizer, random_dna(2, [9, 4]))
    mask = batch["attention_mask"]
    meta = mask.to("meta")  # a tensor whose values cannot be read, like one on a GPU before a sync
    assert module._mask_for_backbone(meta, None) is meta
    assert module._mask_for_backbone(meta, True) is None
    assert module._mask_for_backbone(mask, None) is None  # on the CPU the check is free
    assert module._mask_for_backbone(mask, False) is mask


def test_the_collator_marks_its_batches_right_padded() -> None:
    from dnalm.data.datamodule import Collator

    items = [{"input_ids": [5, 6, 7], "target": 0, "group": 0, "index": 0},
             {"input_ids": [5], "target": 1, "group": 1, "index": 1}]
    batch = Collator(pad_id=0)(items)
    assert batch["right_padded"] is True
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
