"""Task metrics from torchmetrics (they synchronise across DDP ranks at compute time)."""

from __future__ import annotations

import torch
from torchmetrics import MetricCollection

from dnalm.tasks import Task


def make_metrics(task: Task, prefix: str) -> MetricCollection:
    """The task kind's metrics (:meth:`dnalm.tasks.Task.metrics`) as ``prefix/<name>``."""
    return MetricCollection(task.metrics(), prefix=f"{prefix}/")


def flatten(values: dict[str, torch.Tensor]) -> dict[str, float]:
    """Metric results as plain floats (per-output regression values averaged)."""
    return {k: float(v.float().mean()) for k, v in values.items()}
