"""Every shipped config composes, and the zoo table agrees with the model configs and published architectures."""

from __future__ import annotations

from pathlib import Path

import pytest

from dnalm.models.families.published import PUBLISHED_CONFIGS
from dnalm.zoo import main as zoo_main
from dnalm.zoo import zoo_entries

CONF = Path(__file__).resolve().parents[1] / "dnalm" / "conf"
MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))


@pytest.mark.parametrize("model", MODELS)
def test_every_model_config_composes(make_cfg, model: str) -> None:
    overrides = [f"model={model}"] + (["model.name_or_path=x"] if model == "hf" else [])
    cfg = make_cfg(*overrides)
    assert cfg.optim.lr == cfg.model.lr
    assert cfg.model.trust_remote_code is False  # never on by default
    assert cfg.run_name.startswith(str(cfg.model.name))


def test_zoo_lists_every_published_model(capsys: pytest.CaptureFixture[str]) -> None:
    rows = zoo_entries()
    names = {r["name"] for r in rows}
    assert {"nt_v2_50m", "nt_2500m_multi_species", "gena_bert_large_t2t", "gena_bigbird_base_sparse_t2t",
            "dnabert_6", "dnabert2_117m", "hyenadna_large_1m", "caduceus_ps_131k", "mistral_dna_138m_hg38"} <= names
    assert len(rows) == len(MODELS) - 2  # all but tiny and hf
    zoo_main(["--markdown"])
    out = capsys.readouterr().out
    assert out.count("\n") == len(rows) + 2  # header and separator and "| nt_v2_250m |" in out


def test_zoo_matches_published_architectures() -> None:
    for row in zoo_entries():
        published = PUBLISHED_CONFIGS.get(row["hub id"])
        if published:
            layers = published.get("num_hidden_layers", published.get("n_layer"))  # Mamba configs: n_layer, d_model
            hidden = published.get("hidden_size", published.get("d_model"))
            assert (row["layers"], row["hidden"]) == (layers, hidden), row


def test_low_memory_preset(make_cfg) -> None:
    cfg = make_cfg("model=nt_2500m_1000g", "preset=low_memory", small=False)
    assert cfg.strategy.name == "lora" and cfg.model.gradient_checkpointing is True
    assert cfg.model.dtype == "float16" and cfg.trainer.precision == "16-mixed"
    assert cfg.data.batch_size * cfg.trainer.accumulate_grad_batches == 8


def test_head_pooling_follows_the_model_suggestion_unless_set(make_cfg) -> None:
    assert make_cfg(small=False).head.pooling == "max"  # the tiny demo model suggests max
    assert make_cfg("model=hf", "model.name_or_path=x", small=False).head.pooling == "auto"
    assert make_cfg("model=nt_v2_50m", small=False).head.pooling == "auto"
    assert make_cfg("head.pooling=mean", small=False).head.pooling == "mean"
    assert make_cfg("head=mlp", small=False).head.pooling == "max"
