"""The run directory contract: metrics.json (flat keys), the label map and the resolved config."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf


def clean(value: Any) -> Any:
    """JSON-safe scalars (tensors to floats, NaN to None)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


def write_metrics(run_dir: Path, metrics: dict[str, Any]) -> Path:
    """Write ``metrics.json`` with sorted flat keys."""
    path = Path(run_dir) / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({k: clean(v) for k, v in sorted(metrics.items())}, indent=2) + "\n")
    return path


def save_run_files(run_dir: Path, cfg: DictConfig, task: dict[str, Any]) -> None:
    """The resolved config and the label map beside the metrics."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config_resolved.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    (run_dir / "label_map.json").write_text(json.dumps(task, indent=2) + "\n")


def print_metrics(title: str, metrics: dict[str, Any], prefixes: tuple[str, ...] = ("test/",)) -> None:
    """A short aligned table of the metrics that start with one of ``prefixes``."""
    rows = {k: v for k, v in sorted(metrics.items()) if k.startswith(prefixes) and not k.startswith(("test/f1_", "test/auroc_"))}
    width = max((len(k) for k in rows), default=10)
    lines = [f"\n{title}"]
    for key, value in rows.items():
        value = clean(value)
        lines.append(f"  {key:<{width}}  {value:.4f}" if isinstance(value, float) else f"  {key:<{width}}  {value}")
    text = "\n".join(lines)
    print(text)
    # the run's log file (Hydra's train.log) keeps the final metrics too; the console already has them
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.stream.write(text + "\n")
            handler.flush()
