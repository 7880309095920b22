"""``python -m dnalm.embed input=<fasta|table> output=<file.npy|file.parquet> [model=...|ckpt_path=...]``.

One pooled embedding per sequence from a chosen hidden layer (``layer``) and pooling (``pooling``), batched
and length-sorted, 16-bit autocast on GPU. ``.npy`` output writes the ``[N, hidden]`` float32 matrix plus
``<stem>.ids.txt`` (one id per line, same order); ``.parquet`` writes an ``id`` column and ``e0..e{H-1}``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import pandas as pd
from omegaconf import DictConfig

from dnalm.apps.inputs import check_output, read_sequences
from dnalm.configs import CONFIG_DIR
from dnalm.data.sources import policy_of
from dnalm.errors import ConfigError
from dnalm.inference import Runner
from dnalm.utils.cli import run_task

log = logging.getLogger("dnalm.embed")


def write_embeddings(output: Path, ids: list[str], matrix: np.ndarray) -> list[Path]:
    """Write ``matrix`` (rows in ``ids`` order) as ``.npy`` + ``.ids.txt`` or as ``.parquet``; return the files."""
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix == ".npy":
        np.save(output, matrix)
        id_file = output.with_suffix(".ids.txt")
        id_file.write_text("".join(f"{i}\n" for i in ids))
        return [output, id_file]
    if output.suffix == ".parquet":
        frame = pd.DataFrame(matrix, columns=[f"e{i}" for i in range(matrix.shape[1])])
        frame.insert(0, "id", ids)
        frame.to_parquet(output, index=False)
        return [output]
    raise ConfigError(f"output={output} must end in .npy or .parquet.")


def embed(cfg: DictConfig) -> dict[str, Any]:
    """Embed every record of ``cfg.input``; write ``cfg.output``; return a summary (also printed as JSON)."""
    if not cfg.get("input"):
        raise ConfigError("give input=<FASTA or table file> (and output=<file.npy or file.parquet>).")
    output = Path(str(cfg.output))
    if output.suffix not in (".npy", ".parquet"):
        raise ConfigError(f"output={output} must end in .npy or .parquet.")
    check_output(output, [cfg.input, cfg.get("ckpt_path")], bool(cfg.get("overwrite", False)),
                 extra=[output.with_suffix(".ids.txt")] if output.suffix == ".npy" else [])
    records = read_sequences(cfg.input, cfg.data.get("sequence_column", "sequence"),
                             cfg.data.get("id_column") or "id", policy_of(cfg.data))
    layer = cfg.get("layer")
    runner, _ = Runner.from_cfg(cfg, pooling=cfg.get("pooling"), layer=None if layer is None else int(layer))
    matrix = runner.run(records["sequence"].tolist(), "embed", progress="embedding")
    files = write_embeddings(output, records["id"].tolist(), matrix)
    summary = {"records": len(records), "dim": int(matrix.shape[1]), "layer": runner.module.strategy.layer,
               "pooling": type(runner.module.pooling).__name__, "device": str(runner.device),
               "autocast": str(runner.dtype).replace("torch.", "") if runner.dtype else "float32",
               "sequences_per_second": round(len(records) / runner.seconds, 1) if runner.seconds else None,
               "files": [str(f) for f in files]}
    print(json.dumps(summary))
    return summary


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="embed")
def main(cfg: DictConfig) -> None:
    """Command-line entry point."""
    run_task(embed, cfg)


if __name__ == "__main__":
    main()
