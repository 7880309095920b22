"""The scalar an explanation explains: one class's log-odds, logit or probability, optionally strand-averaged."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from dnalm.apps.runner import Runner
from dnalm.data.labels import TaskSpec
from dnalm.errors import ConfigError
from dnalm.tokenizers import reverse_complement

ScoreKind = Literal["log_odds", "logit", "prob"]
SCORE_KINDS = ("log_odds", "logit", "prob")


def check_score_kind(kind: str, task: TaskSpec) -> None:
    """Refuse a score that the task has no meaning for (a probability of a regression output)."""
    if kind not in SCORE_KINDS:
        raise ConfigError(f"score={kind!r}; choose one of {list(SCORE_KINDS)}.")
    if task.kind == "regression" and kind != "logit":
        raise ConfigError(f"score={kind} needs a classifier; a regression model is explained with score=logit "
                          "(the predicted value).")


def score_from_logits(logits: torch.Tensor, column: int, kind: str, task_kind: str) -> torch.Tensor:
    """``[B]`` scores of class ``column`` from ``[B, C]`` logits (differentiable).

    ``log_odds``: log p / (1 - p) of the class (softmax classes: its logit minus the log-sum-exp of the others,
    so a shift shared by every logit does not count; binary: z1 - z0; multilabel: the sigmoid logit).
    ``logit``: the raw head output. ``prob``: the probability.
    """
    logits = logits.float()
    if task_kind == "regression" or kind == "logit":
        return logits[:, column]
    if task_kind == "multilabel":
        return logits[:, column] if kind == "log_odds" else torch.sigmoid(logits[:, column])
    if kind == "prob":
        return torch.softmax(logits, dim=-1)[:, column]
    others = torch.cat([logits[:, :column], logits[:, column + 1:]], dim=1)
    return logits[:, column] - torch.logsumexp(others, dim=1)


@dataclass
class Scorer:
    """Batched scores of DNA strings through a :class:`Runner` (re-tokenized, windowed, length-sorted batches)."""

    runner: Runner
    task: TaskSpec
    column: int
    kind: str = "log_odds"
    rc_average: bool = False

    def __post_init__(self) -> None:
        check_score_kind(self.kind, self.task)

    @property
    def target(self) -> str:
        """The explained class's name."""
        return self.task.label_names[self.column]

    def logits_to_score(self, logits: torch.Tensor) -> torch.Tensor:
        """The score of a ``[B, C]`` logit batch (used by the gradient methods too)."""
        return score_from_logits(logits, self.column, self.kind, self.task.kind)

    def __call__(self, sequences: Sequence[str]) -> np.ndarray:
        """``[N]`` float64 scores; with ``rc_average`` the mean of a sequence's and its reverse complement's."""
        sequences = list(sequences)
        if self.rc_average:
            sequences = sequences + [reverse_complement(s) for s in sequences]
        logits = torch.from_numpy(self.runner.run(sequences, "logits"))
        scores = self.logits_to_score(logits).double().numpy()
        if self.rc_average:
            half = len(scores) // 2
            scores = 0.5 * (scores[:half] + scores[half:])
        return scores
