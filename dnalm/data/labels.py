"""Decide a split's task from its labels (binary, multiclass, multilabel, regression); stratified hold-outs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dnalm.tasks import Task, is_list_column


def infer_task(train_labels: pd.Series, kind: str = "auto", label_names: list[str] | None = None) -> Task:
    """Infer the task from training labels unless ``kind`` names it (a :class:`dnalm.tasks.Task` kind).

    Integers 0..K-1 or strings are classes (binary when two); floats that are not whole numbers are
    regression; list-valued labels are multilabel (one 0/1 per class) or multi-target regression.
    """
    if kind == "auto":
        kind = _detect_kind(train_labels, label_names)
    return Task.of_kind(kind).from_labels(train_labels, label_names)


def _detect_kind(train_labels: pd.Series, label_names: list[str] | None) -> str:
    if is_list_column(train_labels):
        values = np.unique(np.stack(train_labels.to_numpy()))
        return "multilabel" if set(values.tolist()) <= {0, 1} else "regression"
    numeric = pd.api.types.is_numeric_dtype(train_labels)
    if numeric and not np.all(np.mod(train_labels.to_numpy(dtype=float), 1) == 0):
        return "regression"
    # Listed label names define the classes, even when some are absent from this training split.
    classes = len(label_names) if label_names else train_labels.nunique()
    return "binary" if classes <= 2 else "multiclass"


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, held_out): ``fraction`` of each class held out (at least one per class of 2+ rows)."""
    rng = np.random.default_rng(seed)
    strata = labels if labels.ndim == 1 and labels.dtype.kind in "iu" else np.zeros(len(labels), dtype=np.int64)
    held: list[np.ndarray] = []
    for value in np.unique(strata):
        members = np.flatnonzero(strata == value)
        rng.shuffle(members)
        take = int(round(len(members) * fraction))
        if take == 0 and len(members) >= 2 and fraction > 0:
            take = 1
        held.append(members[:take])
    held_out = np.sort(np.concatenate(held)) if held else np.array([], dtype=np.int64)
    keep = np.setdiff1d(np.arange(len(labels)), held_out)
    return keep, held_out
