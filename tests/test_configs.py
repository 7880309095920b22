"""Every shipped config composes, and the zoo table agrees with the model configs and published architectures."""

from __future__ import annotations

import pytest

from dnalm.configs import config_dir
from dnalm.models.families.published import PUBLISHED_CONFIGS
from dnalm.models.pooling import ClsPooling, MaxPooling, MeanPooling, build_pooling
from dnalm.zoo import main as zoo_main
from dnalm.zoo import zoo_entries

CONF = config_dir()
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
    # all but tiny, hf and the from-scratch presets of dnalm.pretrain (no published checkpoint behind them)
    assert len(rows) == len([m for m in MODELS if m not in ("tiny", "hf") and not m.startswith("scratch_")])
    zoo_main(["--markdown"])
    out = capsys.readouterr().out
    assert out.count("\n") == len(rows) + 2  # header and separator and "| nt_v2_250m |" in out


def test_zoo_matches_published_architectures() -> None:
    for row in zoo_entries():
        published = PUBLISHED_CONFIGS.get(row["hub id"])
        if published:
            # HyenaDNA's config.json names them n_layer / d_model
            layers = published.get("num_hidden_layers", published.get("n_layer"))
            hidden = published.get("hidden_size", published.get("d_model"))
            assert (row["layers"], row["hidden"]) == (layers, hidden), row


def test_low_memory_preset(make_cfg) -> None:
    cfg = make_cfg("model=nt_2500m_1000g", "preset=low_memory", small=False)
    assert cfg.strategy.name == "lora" and cfg.model.gradient_checkpointing is True
    assert cfg.model.dtype == "float16" and cfg.trainer.precision == "16-mixed"
    assert cfg.data.batch_size * cfg.trainer.accumulate_grad_batches == 8


def _pooling(cfg) -> type:
    return type(build_pooling(cfg.head.pooling, hidden_size=8, is_causal=False))


def test_head_pooling_follows_the_model_suggestion_unless_set(make_cfg) -> None:
    assert make_cfg(small=False).head.pooling.name == "max"  # the tiny demo model suggests max
    assert _pooling(make_cfg(small=False)) is MaxPooling
    assert _pooling(make_cfg("model=hf", "model.name_or_path=x", small=False)) is MeanPooling  # auto, an encoder
    assert make_cfg("model=nt_v2_50m", small=False).head.pooling.name == "auto"
    # the group option and its short spelling
    assert _pooling(make_cfg("head/pooling=mean", small=False)) is MeanPooling
    assert _pooling(make_cfg("head.pooling=mean", small=False)) is MeanPooling
    assert _pooling(make_cfg("head=mlp", small=False)) is MaxPooling
    assert _pooling(make_cfg("head=mlp", "head/pooling=cls", small=False)) is ClsPooling


# debug option -> trainer settings it must make (on top of debug/default: one CPU epoch, anomaly detection)
DEBUG = {
    "default": {"max_epochs": 1, "detect_anomaly": True},
    "fdr": {"fast_dev_run": True},
    "overfit": {"overfit_batches": 3, "max_epochs": 20},
    "limit": {"limit_train_batches": 0.05, "limit_val_batches": 0.1, "max_epochs": 3},
    "profiler": {"profiler": "simple", "max_epochs": 1},
}


def test_every_debug_config_is_checked() -> None:
    assert sorted(p.stem for p in (CONF / "debug").glob("*.yaml")) == sorted(DEBUG)


@pytest.mark.parametrize("name", sorted(DEBUG))
def test_debug_configs_compose(make_cfg, name: str) -> None:
    cfg = make_cfg(f"debug={name}", small=False)
    for key, value in DEBUG[name].items():
        assert cfg.trainer[key] == value, key
    assert cfg.task_name == "debug" and cfg.trainer.accelerator == "cpu" and cfg.data.num_workers == 0
    assert cfg.callbacks.early_stopping is None and "wandb" not in cfg.logger
    assert make_cfg(small=False).task_name == "train"  # nothing of it without debug=


def test_debug_fdr_runs_one_batch_per_split(make_cfg, tmp_path) -> None:
    from dnalm.train import train

    metrics = train(make_cfg("debug=fdr"))
    assert metrics["global_step"] == 1 and metrics["best_checkpoint"] is None
    assert "test/mcc" in metrics and "val/mcc" in metrics
    assert not (tmp_path / "run" / "checkpoints").exists()  # fast_dev_run saves nothing


def test_grouped_data_configs_and_the_old_names(make_cfg) -> None:
    from dnalm.configs import renamed_config_hint

    assert make_cfg("data=gue/emp_H3", small=False).data.config == "emp_H3"
    assert make_cfg("data=nt/promoter_all", small=False).data.name == "nt_promoter_all"
    assert make_cfg("data=gb/human_nontata_promoters", small=False).data.name == "gb_human_nontata_promoters"
    hint = renamed_config_hint(["model=tiny", "data=demo,genomic_benchmarks_human_nontata_promoters"])
    assert hint is not None and "data=gb/human_nontata_promoters" in hint
    assert renamed_config_hint(["data=gue_prom_core_tata"]).startswith("data=gue_prom_core_tata is now data=gue/")
    assert renamed_config_hint(["data=gue/emp_H3", "data=demo", "data=gue_nope", "model=nt_v2_50m"]) is None
