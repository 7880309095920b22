"""Decide the task (binary, multiclass, multilabel, regression) and encode labels as model targets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from dnalm.errors import DataError

TaskKind = Literal["binary", "multiclass", "multilabel", "regression"]


@dataclass
class TaskSpec:
    """The prediction task: its kind, the number of model outputs and the class names (label map)."""

    kind: TaskKind
    num_outputs: int
    label_names: list[str] = field(default_factory=list)

    @property
    def positive_class(self) -> str | None:
        """The class binary F1, precision, recall and AUPRC refer to: the second of the label map."""
        return self.label_names[1] if self.kind == "binary" and len(self.label_names) == 2 else None

    def describe_positive(self) -> str | None:
        """A log line saying which class is positive and how to choose another (binary tasks only)."""
        if self.positive_class is None:
            return None
        negative, positive = self.label_names
        return (f"binary task: positive class {positive!r} (negative {negative!r}); F1, precision, recall and AUPRC "
                f"refer to {positive!r}. To make {negative!r} positive: data.label_names=[{positive},{negative}]")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (saved with runs and in checkpoints)."""
        return {"kind": self.kind, "num_outputs": self.num_outputs, "label_names": list(self.label_names)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(kind=data["kind"], num_outputs=int(data["num_outputs"]), label_names=list(data["label_names"]))


def _is_list_column(labels: pd.Series) -> bool:
    return len(labels) > 0 and isinstance(labels.iloc[0], (list, tuple, np.ndarray))


def infer_task(train_labels: pd.Series, kind: str = "auto", label_names: list[str] | None = None) -> TaskSpec:
    """Infer the task from training labels unless ``kind`` says it.

    Integers 0..K-1 or strings are classes (binary when two); floats that are not whole numbers are
    regression; list-valued labels are multilabel (one 0/1 per class) or multi-target regression.
    """
    if _is_list_column(train_labels):
        width = len(train_labels.iloc[0])
        if kind == "auto":
            values = np.unique(np.stack(train_labels.to_numpy()))
            kind = "multilabel" if set(values.tolist()) <= {0, 1} else "regression"
        names = label_names or [f"label_{i}" for i in range(width)]
        return TaskSpec(kind, width, list(names))
    if kind == "auto":
        numeric = pd.api.types.is_numeric_dtype(train_labels)
        if numeric and not np.all(np.mod(train_labels.to_numpy(dtype=float), 1) == 0):
            kind = "regression"
        else:
            # Listed label names define the classes, even when some are absent from this training split.
            classes = len(label_names) if label_names else train_labels.nunique()
            kind = "binary" if classes <= 2 else "multiclass"
    if kind == "regression":
        return TaskSpec("regression", 1, [str(train_labels.name or "target")])
    if label_names:
        names = [str(n) for n in label_names]
    else:
        names = [str(v) for v in sorted(train_labels.unique().tolist())]
    if len(names) < 2:
        raise DataError(f"a {kind} task needs at least two classes; the training labels have only {names}. "
                        "A classifier cannot learn from one class: check data.label_column and the train file, "
                        "or list every class in data.label_names.")
    if kind == "binary" and len(names) != 2:
        raise DataError(f"a binary task needs two classes; the training labels have {len(names)}: {names[:10]}. "
                        "Set data.task=multiclass (or data.task=auto) or fix the labels.")
    return TaskSpec(kind, len(names), names)


def encode_labels(labels: pd.Series, task: TaskSpec, split: str, ids: pd.Series) -> np.ndarray:
    """Targets for the loss: class indices (int64) or float arrays; unknown classes raise naming the record."""
    if task.kind in ("multilabel", "regression") and _is_list_column(labels):
        matrix = np.stack(labels.to_numpy()).astype(np.float32)
        if matrix.shape[1] != task.num_outputs:
            raise DataError(f"{split} labels have {matrix.shape[1]} values per row; the task has {task.num_outputs}.")
        return matrix
    if task.kind == "regression":
        return labels.to_numpy(dtype=np.float32).reshape(-1, 1)
    index = {name: i for i, name in enumerate(task.label_names)}
    as_text = labels.astype(str).to_numpy()
    encoded = np.fromiter((index.get(v, -1) for v in as_text), dtype=np.int64, count=len(as_text))
    unknown = np.flatnonzero(encoded < 0)
    if len(unknown):
        first = unknown[0]
        raise DataError(
            f"{len(unknown)} {split} record(s) have labels the training split does not have, e.g. record "
            f"'{ids.iloc[first]}' with label {as_text[first]!r}; known labels: {task.label_names}. "
            "Fix the labels or list every class in data.label_names.")
    return encoded


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
