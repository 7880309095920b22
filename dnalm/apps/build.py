"""``python -m dnalm.build``: build a windowed, leak-free training set from FASTA/BED (see docs/build.md)."""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig, OmegaConf

from dnalm.configs import CONFIG_DIR
from dnalm.data.build import BuildConfig, build

log = logging.getLogger(__name__)


@hydra.main(config_path=CONFIG_DIR, config_name="build", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Validate the config, build the data set and print where it went."""
    report = build(BuildConfig.from_mapping(OmegaConf.to_container(cfg, resolve=True)))
    totals = {name: split["total"] for name, split in report["windows"].items()}
    print(f"wrote {cfg.output_dir}: {totals}; dropped {report['windows_dropped']}")


if __name__ == "__main__":
    main()
