"""Loading and comparing the golden fixtures (outputs of the authors' own code, see tools/golden/).

A fixture is loaded the way a user loads a downloaded checkpoint: the zoo name plus
``model.name_or_path=<fixture>/model`` through :func:`dnalm.models.backbone.load_backbone`. The fixtures
have tiny dimensions, so the zoo's published-value check compares every field except the sizes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from dnalm.models.backbone import Backbone, load_backbone
from dnalm.models.families import published

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "golden"
ATOL = 1e-4
# Fields that only set sizes: the fixtures shrink them; every other published field is checked as published.
SIZE_FIELDS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size",
               "max_position_embeddings", "rotary_dim", "sparse_attention",
               "d_model", "n_layer", "d_inner", "max_seq_len", "filter_order")  # the last five: HyenaDNA's names


@dataclass
class Golden:
    """One fixture: its model folder, input strings, the reference outputs and metadata."""

    name: str
    folder: Path
    sequences: list[str]
    expected: dict[str, torch.Tensor]
    meta: dict[str, Any]

    @property
    def real(self) -> torch.Tensor:
        """Boolean ``(batch, length)`` mask of the real (non-padding) tokens."""
        return self.expected["attention_mask"].bool()


def golden(name: str) -> Golden:
    """Read fixture ``name`` from tests/fixtures/golden.

    Its checkpoint is ``model/`` beside it, or the folder its meta.json names under ``"model"`` (relative to
    the fixture: a second reference run over another fixture's checkpoint shares that checkpoint).
    """
    folder = FIXTURES / name
    meta = json.loads((folder / "meta.json").read_text())
    return Golden(
        name=name,
        folder=(folder / meta.get("model", "model")).resolve(),
        sequences=json.loads((folder / "inputs.json").read_text())["sequences"],
        expected=load_file(str(folder / "expected.safetensors")),
        meta=meta,
    )


def load_as_user(fixture: Golden, zoo_name: str, make_cfg: Any, monkeypatch: pytest.MonkeyPatch,
                 *overrides: str) -> Backbone:
    """``model=<zoo_name> model.name_or_path=<fixture>/model [overrides]``, loaded as train.py does."""
    cfg = make_cfg(f"model={zoo_name}", f"model.name_or_path={fixture.folder}", *overrides)
    hub_id = cfg.model.zoo.hub_id if cfg.model.get("zoo") else None
    if hub_id in published.PUBLISHED_CONFIGS:
        sizes = json.loads((fixture.folder / "config.json").read_text())
        tiny = {k: sizes[k] for k in SIZE_FIELDS if k in sizes and k in published.PUBLISHED_CONFIGS[hub_id]}
        monkeypatch.setitem(published.PUBLISHED_CONFIGS, hub_id, {**published.PUBLISHED_CONFIGS[hub_id], **tiny})
    backbone = load_backbone(cfg.model, native_head=bool(cfg.head.get("native", False)))
    backbone.model.eval()
    return backbone


def forward(backbone: Backbone, fixture: Golden) -> Any:
    """The backbone on the fixture's reference ids and mask, without gradients."""
    with torch.no_grad():
        return backbone.model(input_ids=fixture.expected["input_ids"],
                              attention_mask=fixture.expected["attention_mask"])


def assert_same_ids(backbone: Backbone, fixture: Golden) -> None:
    """The tokenizer dnalm builds for this backbone gives the reference ids at every real token."""
    from dnalm.tokenizers import as_dna_tokenizer

    ids = as_dna_tokenizer(backbone.tokenizer)(fixture.sequences)["input_ids"]
    for row, seq_ids in enumerate(ids):
        expected = fixture.expected["input_ids"][row][fixture.real[row]].tolist()
        assert list(map(int, seq_ids)) == expected, f"{fixture.name}: ids of sequence {row} differ"


def assert_tokens_close(actual: torch.Tensor, fixture: Golden, key: str) -> None:
    """``actual`` equals the reference ``key`` at real tokens within ATOL (fp32)."""
    expected = fixture.expected[key]
    assert actual.shape == expected.shape, f"{key}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    torch.testing.assert_close(actual.float()[fixture.real], expected[fixture.real], atol=ATOL, rtol=0)


def assert_close(actual: torch.Tensor, fixture: Golden, key: str) -> None:
    """``actual`` equals the reference ``key`` (a per-sequence output) within ATOL (fp32)."""
    torch.testing.assert_close(actual.float(), fixture.expected[key], atol=ATOL, rtol=0)
