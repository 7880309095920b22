"""Task kinds: one class each, carrying its label encoding, loss, output activation, metrics and output columns.

A run's task is an instance (``BinaryTask(2, ["neg", "pos"])``); it is saved with checkpoints as
``{"kind", "num_outputs", "label_names"}`` and rebuilt by :meth:`Task.from_dict`. A new kind is one subclass
with its own ``kind`` name: :class:`Task` registers every subclass that names one, so ``data.task=<kind>`` and
saved checkpoints find it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torchmetrics import ClasswiseWrapper, Metric
from torchmetrics import classification as C
from torchmetrics import regression as R

from dnalm.errors import ConfigError, DataError

# Metrics that need both classes among the targets: with one class they are 0/0, not a score.
NEEDS_TWO_CLASSES = ("auroc", "auprc", "mcc")
# What an explanation explains (dnalm.explain score=...): see Task.score.
SCORE_KINDS = ("log_odds", "logit", "prob")

_KINDS: dict[str, type[Task]] = {}


def is_list_column(labels: pd.Series) -> bool:
    """Whether each label is a list of values (multilabel or multi-target regression)."""
    return len(labels) > 0 and isinstance(labels.iloc[0], (list, tuple, np.ndarray))


class Task:
    """A prediction task: its kind, the number of model outputs and the output names (label map)."""

    kind: ClassVar[str] = ""
    # transformers' ``config.problem_type`` of a classifier exported for this kind
    problem_type: ClassVar[str] = ""

    def __init__(self, num_outputs: int, label_names: Sequence[str] = ()) -> None:
        self.num_outputs = int(num_outputs)
        self.label_names = [str(n) for n in label_names]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            _KINDS[cls.kind] = cls

    def __eq__(self, other: object) -> bool:
        return (type(other) is type(self) and other.num_outputs == self.num_outputs  # type: ignore[attr-defined]
                and other.label_names == self.label_names)  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.num_outputs}, {self.label_names})"

    # -- naming and saving ------------------------------------------------------------------------------------
    @staticmethod
    def kinds() -> list[str]:
        """The registered kind names."""
        return list(_KINDS)

    @staticmethod
    def of_kind(kind: str) -> type[Task]:
        """The class of a kind name (``binary``, ``multiclass``, ``multilabel``, ``regression``, ...)."""
        if kind not in _KINDS:
            raise ConfigError(f"data.task={kind!r} is unknown; choose auto or one of {list(_KINDS)}.")
        return _KINDS[kind]

    @staticmethod
    def make(kind: str, num_outputs: int, label_names: Sequence[str] = ()) -> Task:
        """A task of the named kind."""
        return Task.of_kind(kind)(num_outputs, label_names)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (saved with runs and in checkpoints)."""
        return {"kind": self.kind, "num_outputs": self.num_outputs, "label_names": list(self.label_names)}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Task:
        """Inverse of :meth:`to_dict`."""
        return Task.make(data["kind"], int(data["num_outputs"]), list(data["label_names"]))

    @property
    def positive_class(self) -> str | None:
        """The class binary F1, precision, recall and AUPRC refer to (binary tasks only)."""
        return None

    def describe_positive(self) -> str | None:
        """A log line saying which class is positive and how to choose another (binary tasks only)."""
        return None

    @property
    def num_logits(self) -> int:
        """Width of the head's output."""
        return self.num_outputs

    @property
    def single_label(self) -> bool:
        """Whether each record is exactly one of the classes (softmax probabilities, one class index target)."""
        return False

    # -- labels -----------------------------------------------------------------------------------------------
    @classmethod
    def from_labels(cls, labels: pd.Series, label_names: Sequence[str] | None = None) -> Task:
        """The task of this kind for a training split's labels (outputs and names from them or ``label_names``)."""
        if is_list_column(labels):
            width = len(labels.iloc[0])
            return cls(width, list(label_names or [f"label_{i}" for i in range(width)]))
        names = ([str(n) for n in label_names] if label_names
                 else [str(v) for v in sorted(labels.unique().tolist())])
        if len(names) < 2:
            raise DataError(f"a {cls.kind} task needs at least two classes; the training labels have only {names}. "
                            "A classifier cannot learn from one class: check data.label_column and the train file, "
                            "or list every class in data.label_names.")
        return cls(len(names), names)

    def encode(self, labels: pd.Series, split: str, ids: pd.Series) -> np.ndarray:
        """Targets for the loss: class indices (int64) or float arrays; unknown classes raise naming the record."""
        if is_list_column(labels):
            matrix = np.stack(labels.to_numpy()).astype(np.float32)
            if matrix.shape[1] != self.num_outputs:
                raise DataError(f"{split} labels have {matrix.shape[1]} values per row; the task has "
                                f"{self.num_outputs}.")
            return matrix
        return self._class_indices(labels, split, ids)

    def _class_indices(self, labels: pd.Series, split: str, ids: pd.Series) -> np.ndarray:
        index = {name: i for i, name in enumerate(self.label_names)}
        as_text = labels.astype(str).to_numpy()
        encoded = np.fromiter((index.get(v, -1) for v in as_text), dtype=np.int64, count=len(as_text))
        unknown = np.flatnonzero(encoded < 0)
        if len(unknown):
            first = unknown[0]
            raise DataError(
                f"{len(unknown)} {split} record(s) have labels the training split does not have, e.g. record "
                f"'{ids.iloc[first]}' with label {as_text[first]!r}; known labels: {self.label_names}. "
                "Fix the labels or list every class in data.label_names.")
        return encoded

    def unlabelled_targets(self, count: int) -> np.ndarray:
        """Placeholder targets for records without labels (prediction inputs)."""
        return np.zeros((count, self.num_outputs), dtype=np.int64)

    # -- model outputs ----------------------------------------------------------------------------------------
    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The training loss of a batch."""
        raise NotImplementedError

    def activation(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits to what a user reads: class probabilities, or the predicted values (float32)."""
        raise NotImplementedError

    def metric_inputs(self, logits: torch.Tensor) -> torch.Tensor:
        """What the metrics consume."""
        return self.activation(logits)

    def metric_targets(self, target: torch.Tensor) -> torch.Tensor:
        """Targets in the form the metrics expect."""
        return target.long()

    def metrics(self) -> dict[str, Metric]:
        """The torchmetrics of this kind, by name (a ``MetricCollection`` prefixes them with the split)."""
        raise NotImplementedError

    def class_counts(self, targets: torch.Tensor) -> torch.Tensor | None:
        """How often each class occurs among ``targets`` (``None`` for kinds without one class per record)."""
        return None

    def undefined_metrics(self, present: torch.Tensor, prefix: str) -> list[str]:
        """Keys of ``prefix/...`` metrics the targets cannot define (``present``: which classes occurred)."""
        return []

    def columns(self, logits: torch.Tensor) -> dict[str, Any]:
        """The prediction columns of ``[N, num_logits]`` logits (``predictions.csv`` after ``id``, ``label``)."""
        raise NotImplementedError

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Per-class probabilities; a kind without classes refuses."""
        raise ConfigError(f"a {self.kind} checkpoint has no class probabilities; use a classifier.")

    def check_score(self, kind: str) -> None:
        """Refuse an explanation score (``log_odds``, ``logit``, ``prob``) this kind has no meaning for."""
        if kind not in SCORE_KINDS:
            raise ConfigError(f"score={kind!r}; choose one of {list(SCORE_KINDS)}.")

    def score(self, logits: torch.Tensor, column: int, kind: str) -> torch.Tensor:
        """``[B]`` differentiable scores of output ``column`` from ``[B, C]`` logits (``logit``: the raw output)."""
        return logits.float()[:, column]


class _SingleLabelTask(Task):
    """Classes of which each record is exactly one: cross-entropy over softmax probabilities."""

    problem_type = "single_label_classification"

    @property
    def single_label(self) -> bool:
        return True

    def encode(self, labels: pd.Series, split: str, ids: pd.Series) -> np.ndarray:
        return self._class_indices(labels, split, ids)

    def unlabelled_targets(self, count: int) -> np.ndarray:
        return np.zeros((count,), dtype=np.int64)

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), target.long())

    def activation(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits.float(), dim=-1)

    def class_counts(self, targets: torch.Tensor) -> torch.Tensor:
        return torch.bincount(targets.long().view(-1), minlength=self.num_logits)

    def undefined_metrics(self, present: torch.Tensor, prefix: str) -> list[str]:
        return [f"{prefix}/{name}" for name in NEEDS_TWO_CLASSES] if int(present.sum()) < 2 else []

    def columns(self, logits: torch.Tensor) -> dict[str, Any]:
        probs = self.activation(logits).numpy()
        out: dict[str, Any] = {f"prob_{name}": probs[:, i] for i, name in enumerate(self.label_names)}
        out["predicted"] = [self.label_names[i] for i in probs.argmax(1)]
        return out

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return self.activation(logits)

    def score(self, logits: torch.Tensor, column: int, kind: str) -> torch.Tensor:
        """``log_odds``: log p / (1 - p) of the class, i.e. its logit minus the log-sum-exp of the others (a shift
        shared by every logit does not count; binary: z1 - z0). ``prob``: its softmax probability."""
        logits = logits.float()
        if kind == "logit":
            return logits[:, column]
        if kind == "prob":
            return torch.softmax(logits, dim=-1)[:, column]
        others = torch.cat([logits[:, :column], logits[:, column + 1:]], dim=1)
        return logits[:, column] - torch.logsumexp(others, dim=1)


class BinaryTask(_SingleLabelTask):
    """Two classes; the second of the label map is the positive one."""

    kind = "binary"

    @classmethod
    def from_labels(cls, labels: pd.Series, label_names: Sequence[str] | None = None) -> Task:
        task = super().from_labels(labels, label_names)
        if len(task.label_names) != 2:
            names = task.label_names
            raise DataError(f"a binary task needs two classes; the training labels have {len(names)}: {names[:10]}. "
                            "Set data.task=multiclass (or data.task=auto) or fix the labels.")
        return task

    @property
    def num_logits(self) -> int:
        return 2

    @property
    def positive_class(self) -> str | None:
        """The class binary F1, precision, recall and AUPRC refer to: the second of the label map."""
        return self.label_names[1] if len(self.label_names) == 2 else None

    def describe_positive(self) -> str | None:
        if self.positive_class is None:
            return None
        negative, positive = self.label_names
        return (f"binary task: positive class {positive!r} (negative {negative!r}); F1, precision, recall and AUPRC "
                f"refer to {positive!r}. To make {negative!r} positive: data.label_names=[{positive},{negative}]")

    def metric_inputs(self, logits: torch.Tensor) -> torch.Tensor:
        return self.activation(logits)[:, 1]  # the positive class's probability

    def metrics(self) -> dict[str, Metric]:
        return {"accuracy": C.BinaryAccuracy(), "f1": C.BinaryF1Score(), "mcc": C.BinaryMatthewsCorrCoef(),
                "auroc": C.BinaryAUROC(), "auprc": C.BinaryAveragePrecision(),
                "precision": C.BinaryPrecision(), "recall": C.BinaryRecall()}


class MulticlassTask(_SingleLabelTask):
    """Three or more classes, one per record; per-class F1 and AUROC besides the macro averages."""

    kind = "multiclass"

    def metrics(self) -> dict[str, Metric]:
        k, names = self.num_outputs, self.label_names
        return {"accuracy": C.MulticlassAccuracy(k, average="micro"), "f1": C.MulticlassF1Score(k, average="macro"),
                "mcc": C.MulticlassMatthewsCorrCoef(k), "auroc": C.MulticlassAUROC(k),
                "auprc": C.MulticlassAveragePrecision(k),
                "f1_class": ClasswiseWrapper(C.MulticlassF1Score(k, average=None), labels=names, prefix="f1_"),
                "auroc_class": ClasswiseWrapper(C.MulticlassAUROC(k, average=None), labels=names, prefix="auroc_")}

    def undefined_metrics(self, present: torch.Tensor, prefix: str) -> list[str]:
        """Besides the two-class metrics, per-class AUROC is undefined for each absent class."""
        absent = [f"{prefix}/auroc_{name}" for name, seen in zip(self.label_names, present.tolist()) if not seen]
        return super().undefined_metrics(present, prefix) + absent


class MultilabelTask(Task):
    """Any number of the classes per record (one 0/1 target each): sigmoid outputs, binary cross-entropy."""

    kind = "multilabel"
    problem_type = "multi_label_classification"

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits.float(), target.float())

    def activation(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits.float())

    def metrics(self) -> dict[str, Metric]:
        k = self.num_outputs
        return {"accuracy": C.MultilabelAccuracy(k), "f1": C.MultilabelF1Score(k, average="macro"),
                "mcc": C.MultilabelMatthewsCorrCoef(k), "auroc": C.MultilabelAUROC(k),
                "auprc": C.MultilabelAveragePrecision(k)}

    def columns(self, logits: torch.Tensor) -> dict[str, Any]:
        probs = self.activation(logits).numpy()
        out: dict[str, Any] = {f"prob_{name}": probs[:, i] for i, name in enumerate(self.label_names)}
        out["predicted"] = [";".join(n for n, p in zip(self.label_names, row) if p >= 0.5) for row in probs]
        return out

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return self.activation(logits)

    def score(self, logits: torch.Tensor, column: int, kind: str) -> torch.Tensor:
        """``log_odds`` and ``logit``: the sigmoid logit; ``prob``: its sigmoid."""
        column_logits = logits.float()[:, column]
        return torch.sigmoid(column_logits) if kind == "prob" else column_logits


class RegressionTask(Task):
    """One or more real-valued targets per record: mean squared error; Pearson, Spearman, R², MSE."""

    kind = "regression"
    problem_type = "regression"

    @classmethod
    def from_labels(cls, labels: pd.Series, label_names: Sequence[str] | None = None) -> Task:
        if is_list_column(labels):
            return super().from_labels(labels, label_names)
        return cls(1, [str(labels.name or "target")])

    def encode(self, labels: pd.Series, split: str, ids: pd.Series) -> np.ndarray:
        if is_list_column(labels):
            return super().encode(labels, split, ids)
        return labels.to_numpy(dtype=np.float32).reshape(-1, 1)

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        return F.mse_loss(logits, target.float().view_as(logits))

    def activation(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.float()

    def metric_inputs(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.float().squeeze(-1) if self.num_outputs == 1 else logits.float()

    def metric_targets(self, target: torch.Tensor) -> torch.Tensor:
        return target.float().squeeze(-1) if self.num_outputs == 1 else target.float()

    def metrics(self) -> dict[str, Metric]:
        k = self.num_outputs
        return {"pearson": R.PearsonCorrCoef(num_outputs=k), "spearman": R.SpearmanCorrCoef(num_outputs=k),
                "r2": R.R2Score(), "mse": R.MeanSquaredError()}

    def columns(self, logits: torch.Tensor) -> dict[str, Any]:
        values = self.activation(logits).numpy()
        return {f"predicted_{name}": values[:, i] for i, name in enumerate(self.label_names)}

    def check_score(self, kind: str) -> None:
        super().check_score(kind)
        if kind != "logit":
            raise ConfigError(f"score={kind} needs a classifier; a regression model is explained with score=logit "
                              "(the predicted value).")
