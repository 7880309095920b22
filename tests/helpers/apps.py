"""A GC-rich vs AT-rich task for the applications, and their configs composed with run dirs in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import open_dict

from tests.helpers.configs import CONF_DIR

WINDOW = 40


def biased_dna(rng: np.random.Generator, n: int, length: int, gc: float) -> list[str]:
    """``n`` sequences whose letters are G/C with probability ``gc``."""
    p = [(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]
    return ["".join(rng.choice(list("ACGT"), size=length, p=p)) for _ in range(n)]


def gc_table(folder: Path, n: int, seed: int) -> Path:
    """``train``/``valid``/``test`` csv files: label 1 = 75% GC, label 0 = 25% GC, ``WINDOW`` bp each."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, size in (("train", n), ("valid", n // 4), ("test", n // 4)):
        seqs = biased_dna(rng, size // 2, WINDOW, 0.75) + biased_dna(rng, size // 2, WINDOW, 0.25)
        labels = [1] * (size // 2) + [0] * (size // 2)
        pd.DataFrame({"sequence": seqs, "label": labels}).to_csv(folder / f"{split}.csv", index=False)
    return folder


def app_cfg(config_name: str, tmp_path: Path, *overrides: str):  # noqa: ANN201 - a DictConfig
    """Compose an application's config with its run dir in ``tmp_path``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=list(overrides), return_hydra_config=False)
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "run")
        cfg.paths.log_dir = str(tmp_path / "outputs")
        cfg.paths.cache_dir = str(tmp_path / "cache")
        if "output_dir" in cfg:
            cfg.output_dir = str(tmp_path / "run")
    return cfg
