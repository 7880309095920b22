"""Scaffolding shared by the native families: config checks, argument checks, output packing and common heads.

Every family re-implements a published network under its published parameter names; what is *not*
family-specific lives here so a family module holds only its maths:

* config checks (:func:`drop_remote_fields`, :func:`check_heads`, :func:`check_activation`);
* forward-argument checks and flags (:func:`check_inputs`, :func:`output_flags`);
* outputs as transformers returns them, a ``ModelOutput`` or its tuple (:func:`model_output`), with the
  losses (:func:`masked_lm_loss`, :func:`classification_output`);
* the BERT pieces several published checkpoints share (:class:`ClsPooler`, :class:`PredictionHeadTransform`,
  :class:`OnlyMLMHead`) and the loading behaviour of attention families (:class:`AttentionFamilyModel`);
* the task models' forward (:class:`LanguageModelMixin`, :class:`SequenceClassifierMixin`): run the encoder
  (``base_model``), apply the family's head (``lm_logits`` / ``sequence_logits``), add the loss.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel
from transformers.activations import ACT2FN
from transformers.loss.loss_utils import ForSequenceClassificationLoss
from transformers.modeling_outputs import MaskedLMOutput, SequenceClassifierOutput
from transformers.utils import ModelOutput


def drop_remote_fields(kwargs: dict[str, Any]) -> None:
    """Remove ``model_type`` / ``auto_map`` from a published config's extra fields (in place).

    A published config.json names the remote-code model_type and auto_map; keeping them would make a saved
    copy load the broken remote code (or the wrong class) again.
    """
    kwargs.pop("model_type", None)
    kwargs.pop("auto_map", None)


def check_heads(hidden_size: int, num_heads: int) -> None:
    """Refuse a width that does not split evenly into attention heads."""
    if hidden_size % num_heads:
        raise ValueError(f"hidden_size {hidden_size} is not divisible by num_attention_heads {num_heads}")


def check_activation(name: str) -> None:
    """Refuse an activation name transformers does not know."""
    if name not in ACT2FN:
        raise ValueError(f"unknown hidden_act {name!r}; expected one of {sorted(ACT2FN)}")


def check_inputs(input_ids: torch.Tensor | None, inputs_embeds: torch.Tensor | None) -> None:
    """Exactly one of ``input_ids`` and ``inputs_embeds`` must be given."""
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("pass exactly one of input_ids or inputs_embeds")


def output_flags(
    config: PreTrainedConfig, output_hidden_states: bool | None, return_dict: bool | None
) -> tuple[bool | None, bool | None]:
    """``output_hidden_states`` and ``return_dict`` with the config's defaults filled in, as transformers does."""
    return (
        output_hidden_states if output_hidden_states is not None else config.output_hidden_states,
        return_dict if return_dict is not None else config.return_dict,
    )


def model_output(output_cls: type[ModelOutput], return_dict: bool | None, **fields: Any) -> ModelOutput | tuple:
    """``output_cls(**fields)``, or without ``return_dict`` its tuple (fields that are None left out)."""
    output = output_cls(**fields)
    return output if return_dict else output.to_tuple()


def masked_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Token cross-entropy in float32; labels of -100 are ignored (transformers' convention)."""
    return F.cross_entropy(logits.float().view(-1, logits.size(-1)), labels.view(-1), ignore_index=-100)


def classification_output(
    logits: torch.Tensor,
    labels: torch.Tensor | None,
    config: PreTrainedConfig,
    hidden_states: tuple[torch.Tensor, ...] | None,
    return_dict: bool | None,
) -> SequenceClassifierOutput | tuple:
    """Wrap sequence ``logits`` (and the loss against ``labels`` when given) as transformers does.

    The loss follows ``config.problem_type`` (regression, single- or multi-label classification), as in the
    published fine-tuned ``*ForSequenceClassification`` models.
    """
    loss = None if labels is None else ForSequenceClassificationLoss(labels, logits, config)
    return_dict = return_dict if return_dict is not None else config.return_dict
    return model_output(SequenceClassifierOutput, return_dict, loss=loss, logits=logits, hidden_states=hidden_states)


class ClsPooler(nn.Module):
    """BERT pooler: tanh of a dense layer over the first ([CLS]) token (published name ``pooler.dense``)."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))


class PredictionHeadTransform(nn.Module):
    """BERT's dense, activation, LayerNorm before the vocabulary projection (``transform.{dense,LayerNorm}``)."""

    def __init__(self, hidden_size: int, activation: str, eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.act = ACT2FN[activation]
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=eps)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.act(self.dense(hidden)))


class OnlyMLMHead(nn.Module):
    """Container (named ``cls`` by its owner) holding ``predictions`` so BERT's published names line up."""

    def __init__(self, predictions: nn.Module) -> None:
        super().__init__()
        self.predictions = predictions

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.predictions(hidden)


class AttentionFamilyModel(PreTrainedModel):
    """Loading behaviour of the attention families: SDPA by default, checkpointable layers, kernels chosen per call."""

    supports_gradient_checkpointing = True
    _supports_sdpa = True

    @classmethod
    def _can_set_attn_implementation(cls) -> bool:
        # transformers guesses this from the source text; our kernels read the config on every call.
        return True


def _encode(encoder: nn.Module, input_ids: torch.Tensor | None, attention_mask: torch.Tensor | None,
            inputs_embeds: torch.Tensor | None, output_hidden_states: bool | None, **kwargs: Any) -> ModelOutput:
    """The family encoder's outputs as a ``ModelOutput`` (the task heads read ``last_hidden_state``)."""
    return encoder(input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds,
                   output_hidden_states=output_hidden_states, return_dict=True, **kwargs)


class LanguageModelMixin:
    """Forward of a native ``*ForMaskedLM`` / ``*ForCausalLM``: encoder, the family's ``lm_logits``, loss.

    A family sets ``output_class`` (``MaskedLMOutput`` by default) and implements ``lm_logits``; it overrides
    ``lm_loss`` when its loss is not :func:`masked_lm_loss` (a causal shift, another ignored id).
    """

    # No `config` annotation here: transformers derives config_class from the model's own annotation.
    output_class: type[ModelOutput] = MaskedLMOutput

    def lm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Token logits from the encoder's ``last_hidden_state``."""
        raise NotImplementedError

    def lm_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The training loss of ``logits`` against ``labels`` (-100 = ignore)."""
        return masked_lm_loss(logits, labels)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs: Any,
    ) -> ModelOutput | tuple:
        """Token logits; with ``labels`` also the loss. Other keywords (``token_type_ids``) go to the encoder."""
        outputs = _encode(self.base_model, input_ids, attention_mask, inputs_embeds, output_hidden_states, **kwargs)
        logits = self.lm_logits(outputs.last_hidden_state)
        loss = None if labels is None else self.lm_loss(logits, labels)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return model_output(self.output_class, return_dict, loss=loss, logits=logits,
                            hidden_states=outputs.hidden_states)


class SequenceClassifierMixin:
    """Forward of a native ``*ForSequenceClassification``: encoder, the family's ``sequence_logits``, loss."""

    def sequence_logits(
        self, outputs: ModelOutput, input_ids: torch.Tensor | None, attention_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """(batch, num_labels) logits from the encoder's outputs (the published head)."""
        raise NotImplementedError

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs: Any,
    ) -> SequenceClassifierOutput | tuple:
        """Sequence logits; with ``labels`` also the loss for ``config.problem_type``."""
        outputs = _encode(self.base_model, input_ids, attention_mask, inputs_embeds, output_hidden_states, **kwargs)
        logits = self.sequence_logits(outputs, input_ids, attention_mask)
        return classification_output(logits, labels, self.config, outputs.hidden_states, return_dict)
