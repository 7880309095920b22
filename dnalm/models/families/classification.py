"""Sequence-classification outputs shared by the native families' ``*ForSequenceClassification`` classes.

Published fine-tuned NT v2 and GENA-LM classifiers were saved by the remote code's
``EsmForSequenceClassification`` / ``BertForSequenceClassification``; the native classes reproduce their heads
under the same parameter names so the files load as they are, and compute the loss the way transformers does
(``config.problem_type``: regression, single- or multi-label classification).
"""

from __future__ import annotations

import torch
from transformers import PreTrainedConfig
from transformers.loss.loss_utils import ForSequenceClassificationLoss
from transformers.modeling_outputs import SequenceClassifierOutput


def classification_output(
    logits: torch.Tensor,
    labels: torch.Tensor | None,
    config: PreTrainedConfig,
    hidden_states: tuple[torch.Tensor, ...] | None,
    return_dict: bool | None,
) -> SequenceClassifierOutput | tuple:
    """Wrap ``logits`` (and the loss against ``labels`` when given) as transformers does."""
    loss = None if labels is None else ForSequenceClassificationLoss(labels, logits, config)
    if not (return_dict if return_dict is not None else config.return_dict):
        rest = (logits, hidden_states) if hidden_states is not None else (logits,)
        return ((loss,) + rest) if loss is not None else rest
    return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=hidden_states)
