"""Native DNABERT-2 (MosaicBERT with ALiBi) that loads the published checkpoints as they are.

``zhihan1996/DNABERT-2-117M`` (and DNABERT-S, the same network further trained) ship MosaicBERT's
``bert_layers.py`` as remote code: it imports Triton/flash-attn kernels when they are present, breaks with newer
``transformers``, and its published ``config.json`` has no ``model_type`` at all. This module re-implements the
network under its own ``model_type`` with the published parameter names::

    bert.embeddings.{word,token_type}_embeddings.weight, bert.embeddings.LayerNorm.*   no position table
    bert.encoder.layer.{i}.attention.self.Wqkv.*            (3H, H) fused [query; key; value], head-major
    bert.encoder.layer.{i}.attention.output.{dense,LayerNorm}.*
    bert.encoder.layer.{i}.mlp.gated_layers.weight          (2F, H) [gate; value], no bias
    bert.encoder.layer.{i}.mlp.wo.*, bert.encoder.layer.{i}.mlp.layernorm.*
    bert.pooler.dense.*                                     fine-tuned classifiers only
    cls.predictions.transform.{dense,LayerNorm}.*, cls.predictions.decoder.{weight,bias}   (weight tied)
    classifier.*                                            fine-tuned classifiers only

Block maths (post-LN, as BERT): ``h = LN(h + Wo attn(h))``; ``h = LN(h + wo(gelu(x Wg) * (x Wv)))`` with the
exact (erf) GELU. Attention adds ALiBi, ``-slope_h * |i - j|`` with the ALiBi paper's slopes (a power-of-two
head count's geometric series, topped up from the next power of two otherwise), and ``-10000`` at padded keys,
as the authors' code does. The authors remove padding between layers; here every position is computed and
padded positions are zeroed at the end, so ``last_hidden_state`` equals theirs everywhere (see the golden
fixture test). ALiBi has no position table, so sequences longer than ``max_position_embeddings`` run (as in the
authors' code, which grows its bias table).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import PreTrainedConfig
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPooling, ModelOutput

from dnalm.models.families.attention import attend, merge_heads, resolve_implementation
from dnalm.models.families.base import (
    AttentionFamilyModel,
    ClsPooler,
    LanguageModelMixin,
    OnlyMLMHead,
    PredictionHeadTransform,
    SequenceClassifierMixin,
    check_activation,
    check_heads,
    check_inputs,
    drop_remote_fields,
    model_output,
    output_flags,
)
from dnalm.models.families.registry import Family, PublishedConfig, register_family

# The authors' additive mask value for padded keys (not -inf: their softmax never sees an all-masked row).
PADDING_BIAS = -10000.0
# BertPredictionHeadTransform in bert_layers.py hard-codes this LayerNorm epsilon.
HEAD_LAYER_NORM_EPS = 1e-12


@strict
class DnaBert2Config(PreTrainedConfig):
    """Configuration of DNABERT-2 / MosaicBERT (field names as in the published config.json)."""

    model_type = "dnabert2"

    vocab_size: int = 4096
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float | int = 0.1
    attention_probs_dropout_prob: float | int = 0.0
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    # Published configs set none (DNABERT-S says 0): it only marks an embedding row without gradient.
    pad_token_id: int | None = None
    # Size the authors pre-allocate their ALiBi table at; the bias here is built per batch, so only kept.
    alibi_starting_size: int = 512
    classifier_dropout: float | int | None = None
    position_embedding_type: str = "absolute"  # in the published config, unused (ALiBi)
    tie_word_embeddings: bool = True

    def __post_init__(self, **kwargs: Any) -> None:
        # Fine-tuned configs carry model_type "" and an auto_map into bert_layers.py: a saved copy must not.
        drop_remote_fields(kwargs)
        super().__post_init__(**kwargs)

    def validate_architecture(self) -> None:
        """Reject configurations this implementation would silently compute wrongly."""
        check_heads(self.hidden_size, self.num_attention_heads)
        check_activation(self.hidden_act)


def alibi_slopes(num_heads: int) -> list[float]:
    """Per-head ALiBi slopes: ``2^(-8 i / n)`` for a power of two ``n``; otherwise the slopes of the largest
    power of two below, then every other slope of twice that (Press et al.; MosaicBERT's ``bert_layers.py``)."""

    def power_of_two(n: int) -> list[float]:
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if math.log2(num_heads).is_integer():
        return power_of_two(num_heads)
    closest = 2 ** math.floor(math.log2(num_heads))
    return power_of_two(closest) + alibi_slopes(2 * closest)[0::2][: num_heads - closest]


def alibi_bias(num_heads: int, seq_len: int, device: torch.device) -> torch.Tensor:
    """``(1, heads, seq, seq)`` float32 bias ``-slope_h * |i - j|`` (symmetric: the encoder is bidirectional)."""
    positions = torch.arange(seq_len, device=device)
    distance = (positions[None, :] - positions[:, None]).abs()
    slopes = torch.tensor(alibi_slopes(num_heads), dtype=torch.float32, device=device)
    return (slopes[:, None, None] * -distance)[None]


def attention_bias(
    attention_mask: torch.Tensor | None, num_heads: int, seq_len: int, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """ALiBi plus ``-10000`` at padded keys, in ``dtype``: ``(1 or batch, heads, seq, seq)``.

    Without padding the bias is shared by the batch, so only ``(1, heads, seq, seq)`` is materialised.
    """
    if attention_mask is not None and attention_mask.dim() != 2:
        raise ValueError(
            f"attention_mask must have shape (batch, seq_len), got {tuple(attention_mask.shape)}; "
            "pass the tokenizer's 2-D attention_mask"
        )
    bias = alibi_bias(num_heads, seq_len, device).to(dtype)
    if attention_mask is not None and not bool(attention_mask.bool().all()):
        # Cast before broadcasting: the (batch, heads, L, L) sum is only ever built in the model's dtype.
        keys = (~attention_mask.bool())[:, None, None, :].to(dtype) * PADDING_BIAS
        bias = bias + keys
    return bias


class DnaBert2Embeddings(nn.Module):
    """Word + token-type embeddings, LayerNorm, dropout (no position embeddings: ALiBi)."""

    def __init__(self, config: DnaBert2Config) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self, input_ids: torch.Tensor | None, token_type_ids: torch.Tensor | None, inputs_embeds: torch.Tensor | None
    ) -> torch.Tensor:
        embeddings = self.word_embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        if token_type_ids is None:
            embeddings = embeddings + self.token_type_embeddings.weight[0]
        else:
            embeddings = embeddings + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(embeddings))


class DnaBert2SelfAttention(nn.Module):
    """Fused ``Wqkv`` projection and attention with the ALiBi/padding bias."""

    def __init__(self, config: DnaBert2Config) -> None:
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.Wqkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)

    def forward(self, hidden: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        batch, seq, _ = hidden.shape
        # (b, s, 3 * h * d) -> 3 x (b, h, s, d): the authors' 'b s (t h d)' layout.
        qkv = self.Wqkv(hidden).view(batch, seq, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        dropout = self.config.attention_probs_dropout_prob if self.training else 0.0
        return merge_heads(attend(qkv[0], qkv[1], qkv[2], bias, dropout, resolve_implementation(self.config)))


class DnaBert2SelfOutput(nn.Module):
    """Output projection, dropout, residual, LayerNorm (post-LN)."""

    def __init__(self, config: DnaBert2Config) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden)) + residual)


class DnaBert2Attention(nn.Module):
    """``attention.self`` + ``attention.output`` as in the published names."""

    def __init__(self, config: DnaBert2Config) -> None:
        super().__init__()
        self.self = DnaBert2SelfAttention(config)
        self.output = DnaBert2SelfOutput(config)

    def forward(self, hidden: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(hidden, bias), hidden)


class DnaBert2GatedMLP(nn.Module):
    """GeGLU feed-forward: ``LN(x + wo(dropout(gelu(x Wg) * (x Wv))))`` with ``gated_layers = [Wg; Wv]``."""

    def __init__(self, config: DnaBert2Config) -> None:
        super().__init__()
        self.intermediate_size = config.intermediate_size
        self.gated_layers = nn.Linear(config.hidden_size, 2 * config.intermediate_size, bias=False)
        self.wo = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        gated, values = self.gated_layers(hidden).split(self.intermediate_size, dim=-1)
        # Exact GELU whatever hidden_act says: bert_layers.py hard-codes nn.GELU(approximate="none") here.
        return self.layernorm(hidden + self.wo(self.dropout(F.gelu(gated) * values)))


class DnaBert2Layer(GradientCheckpointingLayer):
    """Attention block then gated MLP block; checkpointed when gradient checkpointing is enabled."""

    def __init__(self, config: DnaBert2Config) -> None:
        super().__init__()
        self.attention = DnaBert2Attention(config)
        self.mlp = DnaBert2GatedMLP(config)

    def forward(self, hidden: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.attention(hidden, bias))


class DnaBert2Encoder(nn.Module):
    """The layer stack (``bert.encoder.layer``)."""

    def __init__(self, config: DnaBert2Config) -> None:
        super().__init__()
        self.layer = nn.ModuleList(DnaBert2Layer(config) for _ in range(config.num_hidden_layers))


class DnaBert2PreTrainedModel(AttentionFamilyModel):
    """Shared loading behaviour: published prefix ``bert``, SDPA by default, checkpointable layers."""

    config_class = DnaBert2Config
    config: DnaBert2Config
    base_model_prefix = "bert"
    _no_split_modules = ["DnaBert2Layer"]


class DnaBert2Model(DnaBert2PreTrainedModel):
    """DNABERT-2 encoder returning :class:`BaseModelOutputWithPooling` (zeros at padded positions).

    The pre-trained files have no pooler (the authors' ``BertModel`` initialises one at random on load), so the
    encoder has none unless ``add_pooling_layer=True`` (the classifier's); a file's pooler is then ignored, as are
    the masked-LM and classification heads of the files the encoder is taken from.
    """

    _keys_to_ignore_on_load_unexpected = [r"pooler\.", r"^cls\.", r"^classifier\."]

    def __init__(self, config: DnaBert2Config, add_pooling_layer: bool = False) -> None:
        super().__init__(config)
        self.embeddings = DnaBert2Embeddings(config)
        self.encoder = DnaBert2Encoder(config)
        self.pooler = ClsPooler(config.hidden_size) if add_pooling_layer else None
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.word_embeddings = value

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs: Any,
    ) -> BaseModelOutputWithPooling | tuple:
        """Encode tokens; ``hidden_states`` holds the embeddings then each layer (the last one zeroed at padding)."""
        check_inputs(input_ids, inputs_embeds)
        output_hidden_states, return_dict = output_flags(self.config, output_hidden_states, return_dict)

        hidden = self.embeddings(input_ids, token_type_ids, inputs_embeds)
        bias = attention_bias(attention_mask, self.config.num_attention_heads, hidden.shape[1], hidden.device,
                              hidden.dtype)
        all_hidden: list[torch.Tensor] = [hidden]
        for layer in self.encoder.layer:
            hidden = layer(hidden, bias)
            all_hidden.append(hidden)
        if attention_mask is not None:
            # The authors' pad_input puts zeros at padding; nothing else is defined there.
            hidden = hidden * attention_mask[..., None].to(hidden.dtype)
            all_hidden[-1] = hidden
        pooled = self.pooler(hidden) if self.pooler is not None else None
        hidden_states = tuple(all_hidden) if output_hidden_states else None
        return model_output(BaseModelOutputWithPooling, return_dict, last_hidden_state=hidden, pooler_output=pooled,
                            hidden_states=hidden_states)


class DnaBert2LMPredictionHead(nn.Module):
    """Transform then ``decoder`` (weight tied to the word embeddings, own bias: ``cls.predictions.decoder.bias``)."""

    def __init__(self, config: DnaBert2Config) -> None:
        super().__init__()
        self.transform = PredictionHeadTransform(config.hidden_size, config.hidden_act, HEAD_LAYER_NORM_EPS)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.transform(hidden))


class DnaBert2ForMaskedLM(LanguageModelMixin, DnaBert2PreTrainedModel):
    """DNABERT-2 with its masked-LM head; returns :class:`MaskedLMOutput` with logits at every position.

    The loss ignores labels of -100 (transformers' convention); the authors' code also skips label 0 ([UNK]).
    """

    _tied_weights_keys = {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight"}
    _keys_to_ignore_on_load_unexpected = [r"bert\.pooler\."]

    def __init__(self, config: DnaBert2Config) -> None:
        super().__init__(config)
        self.bert = DnaBert2Model(config, add_pooling_layer=False)
        self.cls = OnlyMLMHead(DnaBert2LMPredictionHead(config))
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.cls.predictions.decoder

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.cls.predictions.decoder = value

    def lm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.cls(hidden)


class DnaBert2ForSequenceClassification(SequenceClassifierMixin, DnaBert2PreTrainedModel):
    """The head of the authors' ``BertForSequenceClassification`` (what DNABERT-2's fine-tuning script saves): tanh
    pooler over ``[CLS]``, dropout (``classifier_dropout`` or ``hidden_dropout_prob``), ``classifier``."""

    _keys_to_ignore_on_load_unexpected = [r"cls\."]

    def __init__(self, config: DnaBert2Config) -> None:
        super().__init__(config)
        self.bert = DnaBert2Model(config, add_pooling_layer=True)
        dropout = config.classifier_dropout
        self.dropout = nn.Dropout(config.hidden_dropout_prob if dropout is None else dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def sequence_logits(
        self, outputs: ModelOutput, input_ids: torch.Tensor | None, attention_mask: torch.Tensor | None
    ) -> torch.Tensor:
        return self.classifier(self.dropout(outputs.pooler_output))


def is_published_dnabert2(config: PublishedConfig) -> bool:
    """DNABERT-2 / DNABERT-S / MosaicBERT: remote code in ``bert_layers.py`` and an ALiBi table size.

    The published DNABERT-2 config.json has no model_type (older revisions and DNABERT-S say "bert", fine-tuned
    copies ""), so the family is told by its auto_map (``bert_layers.Bert*``, with or without a
    ``repo--`` prefix) or by ``alibi_starting_size``, a field only MosaicBERT's configuration class writes.
    """
    return "bert_layers." in config.remote or "alibi_starting_size" in config.fields


register_family(Family(
    label="DNABERT-2",
    config=DnaBert2Config,
    base=DnaBert2Model,
    lm=DnaBert2ForMaskedLM,
    classifier=DnaBert2ForSequenceClassification,
    recognise=is_published_dnabert2,
))
