"""``python -m dnalm.explain ckpt_path=<classifier> input=<fasta|table>``: ISM, attributions, motifs (see
:mod:`dnalm.apps.explain.app`)."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from dnalm.apps.explain.app import explain
from dnalm.utils.cli import run_task


@hydra.main(version_base="1.3", config_path="conf", config_name="explain")
def main(cfg: DictConfig) -> None:
    """Command-line entry point."""
    run_task(explain, cfg)


if __name__ == "__main__":
    main()
