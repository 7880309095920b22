"""dnalm.pretrain end to end on tiny models: from scratch, continued, resumed; the saved folder reloads."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig, open_dict
from transformers import AutoModelForCausalLM, AutoTokenizer

from dnalm.errors import ModelLoadError
from dnalm.pretrain import pretrain

TINY_MIXTRAL = [
    "model.from_config.hidden_size=16", "model.from_config.intermediate_size=16",
    "model.from_config.num_hidden_layers=1", "model.from_config.num_attention_heads=2",
    "model.from_config.num_key_value_heads=2", "model.from_config.head_dim=8",
    "model.from_config.num_local_experts=2", "model.from_config.tokenizer_vocab_size=80",
    "model.from_config.max_position_embeddings=64", "model.max_tokens=64",
]
COMMON = ["logger=csv", "trainer.accelerator=cpu", "data.batch_size=4", "trainer.log_every_n_steps=1",
          "data.holdout.group_regex='^([^|]+)[|]'"]


def _genome(folder: Path, genomes: int = 4, contigs: int = 2, length: int = 1500) -> Path:
    rng = random.Random(0)
    path = folder / "genomes.fa"
    with path.open("w") as handle:
        for g in range(genomes):
            motif = "".join(rng.choice("ACGT") for _ in range(12))
            for c in range(contigs):
                seq = "".join(motif if rng.random() < 0.4 else rng.choice("ACGT") for _ in range(length // 4))
                handle.write(f">G{g}|contig{c}\n{seq}\n")
    return path


@pytest.fixture
def genome_cfg(make_cfg: Callable[..., DictConfig], tmp_path: Path) -> Callable[..., DictConfig]:
    fasta = _genome(tmp_path)

    def _make(*overrides: str) -> DictConfig:
        return make_cfg(*COMMON, f"data.paths=[{fasta}]", *overrides, config_name="pretrain")

    return _make


def test_from_scratch_clm_learns_and_the_folder_reloads_elsewhere(genome_cfg: Callable[..., DictConfig]) -> None:
    cfg = genome_cfg(*TINY_MIXTRAL, "trainer.max_epochs=3", "optim.lr=5e-3")
    metrics = pretrain(cfg)
    assert metrics["val/loss"] < metrics["start/loss"]  # held-out perplexity falls from the start
    assert metrics["val/perplexity"] == pytest.approx(torch.tensor(metrics["val/loss"]).exp().item(), rel=1e-4)
    assert Path(metrics["curve"]).stat().st_size > 1000  # the validation perplexity plot
    assert Path(metrics["samples"]["valid"]).read_text().startswith(">G")  # held-out windows for comparisons
    windows = metrics["windows"]
    assert windows["train"]["bp"] > windows["valid"]["bp"] > 0
    folder = Path(metrics["model_folder"])
    card = json.loads((folder / "dnalm_pretrain.json").read_text())
    assert card["objective"] == "clm" and "val/loss" in card["metrics"]
    assert "AutoModelForCausalLM" in (folder / "README.md").read_text()
    # plain transformers loads it, with the tokenizer trained in the run
    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert model.config.vocab_size == len(tokenizer)
    # dnalm's other entry points load it as it is
    from dnalm.apps.generate import load_causal_lm, sample
    from dnalm.models.backbone import load_backbone

    lm, tok = load_causal_lm(DictConfig({"name_or_path": str(folder)}))
    sequences, _ = sample(lm, tok, num=2, length=40, seed=1)
    assert all(len(s) == 40 and set(s) <= set("ACGTN") for s in sequences)
    backbone = load_backbone(DictConfig({"name": "mine", "name_or_path": str(folder)}))
    assert backbone.is_causal and backbone.hidden_size == 16


def test_mlm_from_scratch_with_kmer_tokens(genome_cfg: Callable[..., DictConfig]) -> None:
    cfg = genome_cfg("model=scratch_esm_8m", "objective=mlm", "model.from_config.hidden_size=16",
                     "model.from_config.num_hidden_layers=1", "model.from_config.num_attention_heads=2",
                     "model.from_config.intermediate_size=32", "model.max_tokens=32", "trainer.max_epochs=1")
    metrics = pretrain(cfg)
    assert metrics["objective"] == "mlm" and metrics["train/tokens_per_second"] > 0
    # about 15 % of the ~30 content tokens of each validation window are masked and scored
    per_window = metrics["val/tokens"] / metrics["windows"]["valid"]["windows"]
    assert 2 <= per_window <= 8


def test_resume_continues_in_the_same_run_folder(genome_cfg: Callable[..., DictConfig], tmp_path: Path) -> None:
    first = pretrain(genome_cfg(*TINY_MIXTRAL, "trainer.max_epochs=1"))
    run_dir = Path(first["run_dir"])
    last = run_dir / "checkpoints" / "last.ckpt"
    assert last.is_file()
    cfg = genome_cfg(*TINY_MIXTRAL, "trainer.max_epochs=2", f"ckpt_path={last}")
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "elsewhere")
    second = pretrain(cfg)
    assert second["run_dir"] == str(run_dir)  # the interrupted run's folder, not a new one
    # epoch 2 continues from epoch 1's steps (its windows have new random offsets, so their count may differ)
    second_epoch_steps = -(-second["windows"]["train"]["windows"] // 4)  # data.batch_size=4
    assert second["global_step"] == first["global_step"] + second_epoch_steps
    assert not (tmp_path / "elsewhere" / "metrics.json").exists()


def _shared_model(*parts: str) -> Path:
    path = Path(__file__).resolve().parents[3] / "shared" / "models" / Path(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return path


def test_a_classifier_needs_new_lm_head_then_continues_as_a_language_model(
        genome_cfg: Callable[..., DictConfig]) -> None:
    tf0 = _shared_model("mistral_dna_1m_hg38_tf0")
    overrides = ["model=mistral_dna_1m_hg38", f"model.name_or_path={tf0}", "trainer.max_steps=2",
                 "trainer.max_epochs=1", "model.max_tokens=64"]
    with pytest.raises(ModelLoadError, match="model.new_lm_head=true"):
        pretrain(genome_cfg(*overrides))
    metrics = pretrain(genome_cfg(*overrides, "model.new_lm_head=true", "strategy=lora"))
    assert metrics["trainable_params"] < metrics["total_params"]
    folder = Path(metrics["model_folder"])
    reloaded = AutoModelForCausalLM.from_pretrained(folder)
    assert not any("lora" in name for name, _ in reloaded.named_parameters())  # adapters merged on export
