"""The scalar an explanation explains: one class's log-odds, logit or probability, optionally strand-averaged.

What each score means for a task kind is the kind's :meth:`dnalm.tasks.Task.score`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from dnalm.inference import Runner
from dnalm.tasks import Task
from dnalm.tokenizers import reverse_complement


@dataclass
class Scorer:
    """Batched scores of DNA strings through a :class:`Runner` (re-tokenized, windowed, length-sorted batches)."""

    runner: Runner
    task: Task
    column: int
    kind: str = "log_odds"
    rc_average: bool = False

    def __post_init__(self) -> None:
        self.task.check_score(self.kind)

    @property
    def target(self) -> str:
        """The explained class's name."""
        return self.task.label_names[self.column]

    def logits_to_score(self, logits: torch.Tensor) -> torch.Tensor:
        """The score of a ``[B, C]`` logit batch (used by the gradient methods too)."""
        return self.task.score(logits, self.column, self.kind)

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
