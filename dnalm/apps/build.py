"""``python -m dnalm.build``: build a windowed, leak-free training set from FASTA/BED (see docs/build.md)."""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig, OmegaConf

from dnalm.configs import CONFIG_DIR
from dnalm.data.build import BuildConfig, build
from dnalm.errors import ConfigError, DNALMError
from dnalm.utils.cli import run_task

log = logging.getLogger(__name__)


def build_from_cfg(cfg: DictConfig) -> dict:
    """Validate the config, build the data set and print where it went.

    The builder reports bad configs and inputs as ``ValueError`` / ``FileExistsError`` naming the key, file and
    line: here they become the one-line ``dnalm: error:`` answer.
    """
    try:
        report = build(BuildConfig.from_mapping(OmegaConf.to_container(cfg, resolve=True)))
    except DNALMError:
        raise
    except (ValueError, FileExistsError, FileNotFoundError) as err:
        raise ConfigError(str(err)) from err
    totals = {name: split["total"] for name, split in report["windows"].items()}
    print(f"wrote {cfg.output_dir}: {totals}; dropped {report['windows_dropped']}")
    return report


@hydra.main(config_path=CONFIG_DIR, config_name="build", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Command-line entry point."""
    run_task(build_from_cfg, cfg)


if __name__ == "__main__":
    main()
