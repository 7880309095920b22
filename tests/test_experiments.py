"""Every experiment recipe composes with its recipe values and runs with a tiny model; sweeps and Optuna run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from dnalm.configs import config_dir
from dnalm.train import train
from tests.helpers.runs import run_train

CONF = config_dir()
# dnalm.pretrain's experiments compose with pretrain.yaml (their own test below); the rest with train.yaml
PRETRAIN_EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("pretrain_*.yaml"))
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml") if p.stem not in PRETRAIN_EXPERIMENTS)
TINY_RUN = ["model=tiny", "data=demo", "trainer.max_steps=4", "trainer.max_epochs=1", "trainer.val_check_interval=2"]

LORA_RECIPE = {"strategy.name": "lora", "strategy.r": 1, "strategy.alpha": 32, "strategy.dropout": 0.1,
               "strategy.target_modules": ["query", "value"], "strategy.modules_to_save": ["intermediate"],
               "optim.lr": 5e-4, "data.batch_size": 8, "trainer.max_steps": 1000, "monitor": "val/f1"}
RECIPES = {
    "thesis_mus_promoter": {**LORA_RECIPE, "model.name": "nt_v2_50m", "data.name": "mus_promoter"},
    "thesis_gut_phage": {**LORA_RECIPE, "model.name": "nt_v2_50m", "data.name": "gut_phage"},
    "thesis_gena_bigbird_full": {"strategy.name": "full", "model.name": "gena_bigbird_base_t2t", "optim.lr": 2e-5,
                                 "optim.scheduler._target_": "transformers.get_constant_schedule_with_warmup", "optim.warmup_ratio": 0.1, "trainer.max_epochs": 10,
                                 "monitor": "val/f1", "data.name": "gut_phage"},
    "gue_mistral_cpu": {"model.name": "mistral_dna_1m_hg38", "data.name": "gue_prom_core_tata", "optim.lr": 1e-3,
                        "trainer.max_epochs": 4, "trainer.accelerator": "cpu", "strategy.name": "full"},
}


def _select(cfg: object, dotted: str) -> object:
    from omegaconf import OmegaConf

    value = OmegaConf.select(cfg, dotted)
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def test_every_experiment_has_a_recipe_check() -> None:
    assert set(EXPERIMENTS) == set(RECIPES)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_recipe_values_are_composed(make_cfg, experiment: str) -> None:
    cfg = make_cfg(f"experiment={experiment}", small=False)
    for key, expected in RECIPES[experiment].items():
        assert _select(cfg, key) == expected, key
    assert cfg.callbacks.early_stopping is None
    if experiment.startswith("thesis_"):
        assert cfg.callbacks.checkpoint.monitor == "val/f1"


PRETRAIN_RECIPES = {
    "pretrain_gut_bacteria_clm": {"model.name": "scratch_mixtral_1m", "objective.name": "clm", "strategy.name": "full",
                                  "data.holdout.by": "group", "trainer.max_time": "00:00:30:00"},
    "pretrain_gut_bacteria_continued": {"model.name": "mistral_dna_1m_hg38", "model.new_lm_head": True,
                                        "objective.name": "clm", "data.holdout.by": "group"},
}


@pytest.mark.parametrize("experiment", PRETRAIN_EXPERIMENTS)
def test_pretrain_recipes_are_composed(make_cfg, experiment: str) -> None:
    cfg = make_cfg(f"experiment={experiment}", config_name="pretrain")
    for key, expected in PRETRAIN_RECIPES[experiment].items():
        assert _select(cfg, key) == expected, key
    assert str(cfg.data.paths[0]).endswith("nonphage_gut_bacteria_19_genomes.fa.gz")


def test_thesis_sweeps_cover_the_model_configs() -> None:
    for experiment in ("thesis_mus_promoter", "thesis_gut_phage"):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose("train", overrides=[f"experiment={experiment}"], return_hydra_config=True)
        models = str(cfg.hydra.sweeper.params.model).split(",")
        assert "nt_v2_50m" in models and "gena_bert_base_t2t" in models
        assert all((CONF / "model" / f"{m}.yaml").is_file() for m in models)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_runs_with_a_tiny_model(make_cfg, experiment: str) -> None:
    cfg = make_cfg(f"experiment={experiment}", *TINY_RUN)
    assert cfg.model.name == "tiny" and cfg.data.name == "demo"
    metrics = train(cfg)
    assert metrics["strategy"] == RECIPES[experiment]["strategy.name"]
    assert metrics["global_step"] == 4
    assert "val/f1" in metrics and -1 <= metrics["test/mcc"] <= 1
    if metrics["strategy"] == "lora":
        assert 0 < metrics["trainable_params"] < metrics["total_params"]


@pytest.mark.parametrize("option", ["hydra/launcher=local", "hydra/launcher=slurm", "hydra/launcher=joblib",
                                    "hparams_search=lora_optuna"])
def test_sweep_presets_compose(option: str) -> None:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[option], return_hydra_config=True)
    if option == "hydra/launcher=slurm":
        launcher = cfg.hydra.launcher
        assert launcher._target_.endswith("SlurmLauncher")
        assert {"gpus_per_node", "timeout_min", "partition", "array_parallelism"} <= set(launcher)
    elif option.startswith("hydra/launcher"):
        assert cfg.hydra.launcher._target_.endswith("JoblibLauncher")
    else:
        assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper")
        assert cfg.optimized_metric == "val/mcc" and cfg.strategy.name == "lora"


def test_optuna_search_gets_the_validation_mcc(tmp_path: Path) -> None:
    """Two trials: the study's best value is the best val/mcc among the trials' metrics.json."""
    done = run_train(tmp_path, "hparams_search=lora_optuna", "hydra.sweeper.n_trials=2",
                     "hydra.sweeper.sampler.n_startup_trials=2", "trainer.max_steps=4")
    assert done.returncode == 0, done.stderr[-3000:]
    runs = [json.loads(p.read_text()) for p in tmp_path.rglob("metrics.json")]
    assert len(runs) == 2 and {r["strategy"] for r in runs} == {"lora"}
    results = yaml.safe_load(next(tmp_path.rglob("optimization_results.yaml")).read_text())
    assert results["best_value"] == pytest.approx(max(r["val/mcc"] for r in runs))


BENCHMARK_DATA = sorted(f"{p.parent.name}/{p.stem}" for group in ("gue", "nt", "gb")
                        for p in (CONF / "data" / group).glob("*.yaml"))


@pytest.mark.parametrize("data", BENCHMARK_DATA)
def test_benchmark_data_configs_name_a_hub_dataset(make_cfg, data: str) -> None:
    cfg = make_cfg(f"data={data}", small=False)
    assert cfg.data.id.split("/")[0] in {"leannmlindsey", "InstaDeepAI", "katarinagresova"}
    assert cfg.data.path is None and cfg.data.name == data.replace("/", "_")
    if cfg.data.id == "leannmlindsey/GUE" or cfg.data.id.startswith("InstaDeepAI/"):
        assert cfg.data.config


def test_gue_task_runs_from_the_shared_copy(make_cfg) -> None:
    from tests.helpers.configs import shared_path

    folder = shared_path("data", "gue", "prom_core_tata")
    cfg = make_cfg("data=gue/prom_core_tata", f"data.path={folder}", "logger=csv", "trainer.accelerator=cpu",
                   "trainer.max_steps=2", "trainer.max_epochs=1", "data.batch_size=16",
                   "trainer.limit_val_batches=2", "trainer.limit_test_batches=2", small=False)
    metrics = train(cfg)
    assert metrics["data"] == "gue_prom_core_tata" and metrics["global_step"] == 2
