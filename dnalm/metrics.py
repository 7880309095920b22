"""Task metrics from torchmetrics (they synchronise across DDP ranks at compute time)."""

from __future__ import annotations

import torch
from torchmetrics import ClasswiseWrapper, MetricCollection
from torchmetrics import classification as C
from torchmetrics import regression as R

from dnalm.data.labels import TaskSpec


def make_metrics(task: TaskSpec, prefix: str) -> MetricCollection:
    """Accuracy, F1, MCC, AUROC, AUPRC (per class too for multiclass); Pearson, Spearman, R² for regression."""
    if task.kind == "binary":
        metrics = {
            "accuracy": C.BinaryAccuracy(), "f1": C.BinaryF1Score(), "mcc": C.BinaryMatthewsCorrCoef(),
            "auroc": C.BinaryAUROC(), "auprc": C.BinaryAveragePrecision(),
            "precision": C.BinaryPrecision(), "recall": C.BinaryRecall(),
        }
    elif task.kind == "multiclass":
        k, names = task.num_outputs, task.label_names
        metrics = {
            "accuracy": C.MulticlassAccuracy(k, average="micro"), "f1": C.MulticlassF1Score(k, average="macro"),
            "mcc": C.MulticlassMatthewsCorrCoef(k), "auroc": C.MulticlassAUROC(k),
            "auprc": C.MulticlassAveragePrecision(k),
            "f1_class": ClasswiseWrapper(C.MulticlassF1Score(k, average=None), labels=names, prefix="f1_"),
            "auroc_class": ClasswiseWrapper(C.MulticlassAUROC(k, average=None), labels=names, prefix="auroc_"),
        }
    elif task.kind == "multilabel":
        k = task.num_outputs
        metrics = {
            "accuracy": C.MultilabelAccuracy(k), "f1": C.MultilabelF1Score(k, average="macro"),
            "mcc": C.MultilabelMatthewsCorrCoef(k), "auroc": C.MultilabelAUROC(k),
            "auprc": C.MultilabelAveragePrecision(k),
        }
    else:
        k = task.num_outputs
        metrics = {"pearson": R.PearsonCorrCoef(num_outputs=k), "spearman": R.SpearmanCorrCoef(num_outputs=k),
                   "r2": R.R2Score(), "mse": R.MeanSquaredError()}
    return MetricCollection(metrics, prefix=f"{prefix}/")


def predictions(task: TaskSpec, logits: torch.Tensor) -> torch.Tensor:
    """What metrics consume: positive-class probability (binary), class probabilities, or raw values."""
    if task.kind == "binary":
        return torch.softmax(logits.float(), dim=-1)[:, 1]
    if task.kind == "multiclass":
        return torch.softmax(logits.float(), dim=-1)
    if task.kind == "multilabel":
        return torch.sigmoid(logits.float())
    return logits.float().squeeze(-1) if task.num_outputs == 1 else logits.float()


def metric_targets(task: TaskSpec, target: torch.Tensor) -> torch.Tensor:
    """Targets in the form metrics expect."""
    if task.kind == "multilabel":
        return target.long()
    if task.kind == "regression":
        return target.float().squeeze(-1) if task.num_outputs == 1 else target.float()
    return target.long()


# Metrics that need both classes among the targets: with one class they are 0/0, not a score.
NEEDS_TWO_CLASSES = ("auroc", "auprc", "mcc")


def undefined_metrics(task: TaskSpec, present: torch.Tensor, prefix: str) -> list[str]:
    """Keys of ``prefix/...`` metrics that are undefined because the targets hold one class.

    ``present`` marks which classes occurred among the targets (binary and multiclass tasks); per-class AUROC is
    undefined for each absent class.
    """
    if task.kind not in ("binary", "multiclass"):
        return []
    keys = []
    if int(present.sum()) < 2:
        keys += [f"{prefix}/{name}" for name in NEEDS_TWO_CLASSES]
    if task.kind == "multiclass":
        keys += [f"{prefix}/auroc_{name}" for name, seen in zip(task.label_names, present.tolist()) if not seen]
    return keys


def flatten(values: dict[str, torch.Tensor]) -> dict[str, float]:
    """Metric results as plain floats (per-output regression values averaged)."""
    return {k: float(v.float().mean()) for k, v in values.items()}
