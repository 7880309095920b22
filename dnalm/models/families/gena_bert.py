"""Native GENA-LM BERT (AIRI) with pre-layer normalisation, loading the published checkpoints as they are.

GENA-LM BERT checkpoints (``gena-lm-bert-base``, ``-base-t2t``, ``-base-t2t-multi``, ``-large-t2t``,
``-base-lastln-t2t``) say ``model_type: "bert"`` with ``pre_layer_norm: true`` and ship remote
``modeling_bert.py`` code. Plain ``transformers`` BERT is post-LN and has no ``pre_attention_ln``,
so it cannot load them. This module re-implements the pre-LN variant under its own
``model_type`` with the published parameter names::

    bert.embeddings.{word,position,token_type}_embeddings.weight, bert.embeddings.LayerNorm.*
    bert.encoder.layer.{i}.pre_attention_ln.*                 norm before self-attention
    bert.encoder.layer.{i}.attention.self.{query,key,value}.*
    bert.encoder.layer.{i}.attention.self.sparse_self_attention.master_layout   sparse models only
    bert.encoder.layer.{i}.attention.output.dense.*
    bert.encoder.layer.{i}.post_attention_ln.*                norm before the feed-forward
    bert.encoder.layer.{i}.intermediate.dense.*, .output.dense.*
    bert.encoder.last_layer_ln.*                              with last_layer_norm (absent key: = pre_layer_norm)
    bert.pooler.dense.*                                       base model only
    cls.predictions.transform.{dense,LayerNorm}.*, cls.predictions.decoder.weight, cls.predictions.bias

Block maths: ``h = h + Wo attn(LN1(h))``; ``h = h + W2 act(W1 LN2(h))``; optionally ``LN_last(h)``.

The block-sparse checkpoints (``gena-lm-bigbird-base-sparse``, ``-sparse-t2t``) are the same
network with two differences their config.json spells out: ``position_embedding_type: "rotary"``
(no position table; the first ``rotary_dim`` dims of each query/key head rotated, base
``rotary_base``) and ``sparse_config_cls`` + ``sparse_attention`` (a DeepSpeed BigBird layout per
layer, see :mod:`dnalm.models.families.sparse`).
"""

from __future__ import annotations

from typing import Any

import torch
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import PreTrainedConfig
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPooling, ModelOutput

from dnalm.models.families.attention import (
    attend,
    merge_heads,
    padding_mask,
    resolve_implementation,
    split_heads,
)
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
from dnalm.models.families.rotary import apply_rotary, rotary_cos_sin
from dnalm.models.families.sparse import BIGBIRD_CONFIG_CLS, BigBirdPattern, BlockSparseAttention


@strict
class GenaBertConfig(PreTrainedConfig):
    """Configuration of a GENA-LM pre-LN BERT (field names as in the published config.json)."""

    model_type = "gena_lm_bert"

    vocab_size: int = 32000
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float | int = 0.1
    attention_probs_dropout_prob: float | int = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int | None = 3
    position_embedding_type: str = "absolute"
    pre_layer_norm: bool = True
    # None (the key absent, as in the published lastln and large configs) = pre_layer_norm, as AIRI's
    # modeling_bert.py does: `getattr(config, 'last_layer_norm', self.pre_layer_norm)`.
    last_layer_norm: bool | None = None
    # Rotary positions of the sparse checkpoints: rotated width per head (None = whole head) and base.
    rotary_dim: int | None = None
    rotary_base: float | int = 10000
    # BigBird block-sparse attention (see sparse.py); None = dense attention. The published files
    # name DeepSpeed's config class; a pattern without it is accepted too.
    sparse_config_cls: str | None = None
    sparse_attention: dict | None = None
    tie_word_embeddings: bool = True

    def __post_init__(self, **kwargs: Any) -> None:
        drop_remote_fields(kwargs)
        if self.last_layer_norm is None:
            self.last_layer_norm = self.pre_layer_norm
        super().__post_init__(**kwargs)

    def validate_architecture(self) -> None:
        """Reject configurations this implementation would silently compute wrongly."""
        if not self.pre_layer_norm:
            raise ValueError(
                "GenaBertConfig implements pre_layer_norm=True only; a post-LN GENA checkpoint is a "
                "standard BERT and loads with transformers BertModel"
            )
        if self.position_embedding_type not in ("absolute", "rotary"):
            raise ValueError(
                "GENA-LM BERT uses absolute or rotary positions, got "
                f"position_embedding_type={self.position_embedding_type!r}"
            )
        check_heads(self.hidden_size, self.num_attention_heads)
        head_dim = self.hidden_size // self.num_attention_heads
        if self.rotary_dim is not None and not (0 < self.rotary_dim <= head_dim and self.rotary_dim % 2 == 0):
            raise ValueError(f"rotary_dim must be even and in (0, {head_dim}], got {self.rotary_dim}")
        if self.sparse_config_cls not in (None, BIGBIRD_CONFIG_CLS):
            raise ValueError(
                f"sparse_config_cls={self.sparse_config_cls!r} is not supported; dnalm implements "
                f"{BIGBIRD_CONFIG_CLS!r} (the layout of the GENA-LM sparse checkpoints)"
            )
        if self.sparse_config_cls is not None and self.sparse_attention is None:
            raise ValueError("sparse_config_cls is set but sparse_attention (the layout parameters) is missing")
        if self.sparse_attention is not None:
            pattern = BigBirdPattern.from_dict(self.sparse_attention)
            if pattern.num_heads not in (None, self.num_attention_heads):
                raise ValueError(
                    f"sparse_attention.num_heads={pattern.num_heads} differs from "
                    f"num_attention_heads={self.num_attention_heads}"
                )
        check_activation(self.hidden_act)


class GenaBertEmbeddings(nn.Module):
    """Word + absolute position + token type embeddings, then LayerNorm and dropout (as in BERT)."""

    def __init__(self, config: GenaBertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id
        )
        # Rotary checkpoints have no position table: positions enter through the attention.
        if config.position_embedding_type == "absolute":
            self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.max_positions = config.max_position_embeddings

    def forward(
        self,
        input_ids: torch.Tensor | None,
        token_type_ids: torch.Tensor | None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        embeddings = self.word_embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        seq_len = embeddings.shape[1]
        if seq_len > self.max_positions:
            raise ValueError(
                f"sequence of {seq_len} tokens exceeds max_position_embeddings={self.max_positions}; "
                "truncate or window the input (tokenizer max_length)"
            )
        if token_type_ids is None:
            token_type_ids = torch.zeros(embeddings.shape[:2], dtype=torch.long, device=embeddings.device)
        embeddings = embeddings + self.token_type_embeddings(token_type_ids)
        if hasattr(self, "position_embeddings"):
            positions = torch.arange(seq_len, device=embeddings.device)
            embeddings = embeddings + self.position_embeddings(positions)[None]
        return self.dropout(self.LayerNorm(embeddings))


class GenaBertSelfAttention(nn.Module):
    """Query/key/value projections (published names), optional rotary positions and the attention kernel."""

    def __init__(self, config: GenaBertConfig, layer_index: int = 0) -> None:
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        if config.sparse_attention is not None:
            self.sparse_self_attention = BlockSparseAttention(
                BigBirdPattern.from_dict(config.sparse_attention),
                config.num_attention_heads,
                config.max_position_embeddings,
                layer_index,
            )

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return split_heads(x, self.num_heads)

    def forward(
        self, hidden: torch.Tensor, mask: torch.Tensor | None, rotary: tuple | None, layout: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``mask`` is the boolean ``(batch, 1, 1, L)`` key-padding mask; ``rotary`` the (cos, sin) tables;
        ``layout`` the block layout sparse layers run with (layer 0's)."""
        query, key = self._heads(self.query(hidden)), self._heads(self.key(hidden))
        if rotary is not None:
            query, key = apply_rotary(query, *rotary), apply_rotary(key, *rotary)
        value = self._heads(self.value(hidden))
        dropout = self.config.attention_probs_dropout_prob if self.training else 0.0
        implementation = resolve_implementation(self.config)
        if hasattr(self, "sparse_self_attention"):
            key_mask = None if mask is None else mask[:, 0, 0, :]
            context = self.sparse_self_attention(query, key, value, key_mask, dropout, implementation, layout)
        else:
            context = attend(query, key, value, mask, dropout, implementation)
        return merge_heads(context)


class GenaBertSelfOutput(nn.Module):
    """Attention output projection with dropout (no LayerNorm in the pre-LN layout)."""

    def __init__(self, config: GenaBertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.dense(hidden))


class GenaBertAttention(nn.Module):
    """``attention.self`` + ``attention.output`` as in the published names."""

    def __init__(self, config: GenaBertConfig, layer_index: int = 0) -> None:
        super().__init__()
        self.self = GenaBertSelfAttention(config, layer_index)
        self.output = GenaBertSelfOutput(config)

    def forward(
        self, hidden: torch.Tensor, mask: torch.Tensor | None, rotary: tuple | None, layout: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.output(self.self(hidden, mask, rotary, layout))


class GenaBertIntermediate(nn.Module):
    """Feed-forward expansion with the configured activation (``gelu`` is the exact erf form)."""

    def __init__(self, config: GenaBertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = ACT2FN[config.hidden_act]

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(hidden))


class GenaBertOutput(nn.Module):
    """Feed-forward contraction with dropout."""

    def __init__(self, config: GenaBertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.dense(hidden))


class GenaBertLayer(GradientCheckpointingLayer):
    """One pre-LN block; checkpointed when gradient checkpointing is enabled."""

    def __init__(self, config: GenaBertConfig, layer_index: int = 0) -> None:
        super().__init__()
        self.pre_attention_ln = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = GenaBertAttention(config, layer_index)
        self.post_attention_ln = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.intermediate = GenaBertIntermediate(config)
        self.output = GenaBertOutput(config)

    def forward(
        self, hidden: torch.Tensor, mask: torch.Tensor | None, rotary: tuple | None, layout: torch.Tensor | None = None
    ) -> torch.Tensor:
        hidden = hidden + self.attention(self.pre_attention_ln(hidden), mask, rotary, layout)
        return hidden + self.output(self.intermediate(self.post_attention_ln(hidden)))


class GenaBertEncoder(nn.Module):
    """Layer stack plus the optional final LayerNorm of the ``lastln`` checkpoints."""

    def __init__(self, config: GenaBertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(GenaBertLayer(config, index) for index in range(config.num_hidden_layers))
        if config.last_layer_norm:
            self.last_layer_ln = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)


class GenaBertPreTrainedModel(AttentionFamilyModel):
    """Shared loading behaviour: published prefix ``bert``, SDPA by default, checkpointable layers."""

    config_class = GenaBertConfig
    config: GenaBertConfig
    base_model_prefix = "bert"
    _no_split_modules = ["GenaBertLayer"]
    # Published files are BertForPreTraining: next-sentence head and a copy of the MLM bias are unused here.
    _keys_to_ignore_on_load_unexpected = [
        r"cls\.seq_relationship\.",
        r"cls\.predictions\.decoder\.bias",
        r"embeddings\.position_ids",
        r"rotary_emb\.inv_freq",  # recomputed from rotary_dim / rotary_base
    ]
    # A missing master_layout is reported by from_pretrained; load_native refuses it unless the sparse pattern
    # was asked for explicitly (a dense checkpoint run sparse: layouts drawn, with a warning).

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, GenaBertLMPredictionHead):
            init.zeros_(module.bias)  # respects weights already loaded from the checkpoint
        if isinstance(module, BlockSparseAttention):
            init.copy_(module.master_layout, module.initial_layout(*module.master_layout.shape[:2]))


class GenaBertModel(GenaBertPreTrainedModel):
    """GENA-LM pre-LN BERT encoder returning :class:`BaseModelOutputWithPooling`."""

    def __init__(self, config: GenaBertConfig, add_pooling_layer: bool = True) -> None:
        super().__init__(config)
        self.embeddings = GenaBertEmbeddings(config)
        self.encoder = GenaBertEncoder(config)
        self.pooler = ClsPooler(config.hidden_size) if add_pooling_layer else None
        self.post_init()

    def rotary_tables(self, seq_len: int, reference: torch.Tensor) -> tuple | None:
        """(cos, sin) for rotary checkpoints, None for absolute positions."""
        if self.config.position_embedding_type != "rotary":
            return None
        width = self.config.rotary_dim or self.config.hidden_size // self.config.num_attention_heads
        return rotary_cos_sin(seq_len, width, self.config.rotary_base, reference.device, reference.dtype)

    def sparse_runtime_layout(self) -> torch.Tensor | None:
        """Layer 0's block layout, which every sparse layer runs with (DeepSpeed 0.6.x's kernel cache, see
        :mod:`dnalm.models.families.sparse`); None for dense models."""
        first = self.encoder.layer[0].attention.self
        return first.sparse_self_attention.master_layout if hasattr(first, "sparse_self_attention") else None

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
        """Encode tokens; ``hidden_states`` holds the embeddings then each layer (last one normalised if lastln)."""
        check_inputs(input_ids, inputs_embeds)
        output_hidden_states, return_dict = output_flags(self.config, output_hidden_states, return_dict)

        hidden = self.embeddings(input_ids, token_type_ids, inputs_embeds)
        mask = padding_mask(attention_mask)
        rotary = self.rotary_tables(hidden.shape[1], hidden)
        layout = self.sparse_runtime_layout()
        all_hidden: list[torch.Tensor] = [hidden]
        for layer in self.encoder.layer:
            hidden = layer(hidden, mask, rotary, layout)
            all_hidden.append(hidden)
        if hasattr(self.encoder, "last_layer_ln"):
            hidden = self.encoder.last_layer_ln(hidden)
            all_hidden[-1] = hidden
        pooled = self.pooler(hidden) if self.pooler is not None else None
        hidden_states = tuple(all_hidden) if output_hidden_states else None
        return model_output(BaseModelOutputWithPooling, return_dict, last_hidden_state=hidden, pooler_output=pooled,
                            hidden_states=hidden_states)


class GenaBertLMPredictionHead(nn.Module):
    """Vocabulary projection (weight tied to the word embeddings by default) plus bias."""

    def __init__(self, config: GenaBertConfig) -> None:
        super().__init__()
        self.transform = PredictionHeadTransform(config.hidden_size, config.hidden_act, config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.transform(hidden)) + self.bias


class GenaBertForMaskedLM(LanguageModelMixin, GenaBertPreTrainedModel):
    """GENA-LM BERT with its masked-LM head; returns :class:`MaskedLMOutput`."""

    _tied_weights_keys = {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight"}
    _keys_to_ignore_on_load_unexpected = GenaBertPreTrainedModel._keys_to_ignore_on_load_unexpected + [
        r"bert\.pooler\."
    ]

    def __init__(self, config: GenaBertConfig) -> None:
        super().__init__(config)
        self.bert = GenaBertModel(config, add_pooling_layer=False)
        self.cls = OnlyMLMHead(GenaBertLMPredictionHead(config))
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.cls.predictions.decoder

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.cls.predictions.decoder = value

    def lm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.cls(hidden)


class GenaBertForSequenceClassification(SequenceClassifierMixin, GenaBertPreTrainedModel):
    """GENA-LM BERT with the head of a fine-tuned ``BertForSequenceClassification``: the tanh pooler over
    ``[CLS]``, dropout, then ``classifier`` (published names)."""

    _keys_to_ignore_on_load_unexpected = GenaBertPreTrainedModel._keys_to_ignore_on_load_unexpected + [r"cls\."]

    def __init__(self, config: GenaBertConfig) -> None:
        super().__init__(config)
        self.bert = GenaBertModel(config, add_pooling_layer=True)
        dropout = getattr(config, "classifier_dropout", None)
        self.dropout = nn.Dropout(config.hidden_dropout_prob if dropout is None else dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def sequence_logits(
        self, outputs: ModelOutput, input_ids: torch.Tensor | None, attention_mask: torch.Tensor | None
    ) -> torch.Tensor:
        return self.classifier(self.dropout(outputs.pooler_output))


def is_published_gena_bert(config: PublishedConfig) -> bool:
    """GENA-LM's BERTs are pre-LN (``pre_layer_norm``), which transformers' ``BertModel`` cannot compute.

    The dense ones have 512 positions; the 4,096-position pre-LN ones (gena-lm-bigbird-base-sparse*) name their
    DeepSpeed block-sparse layout in the config. A long config without one would be computed as dense attention,
    which it was not trained with, so it is refused.
    """
    fields = config.fields
    if config.model_type != "bert" or not fields.get("pre_layer_norm"):
        return False
    if fields.get("sparse_attention") is None and fields.get("max_position_embeddings", 512) > 512:
        raise ValueError(
            "this pre-LN GENA-LM config has max_position_embeddings="
            f"{fields.get('max_position_embeddings')} but no sparse_attention layout, so it "
            "cannot be told apart from a DeepSpeed block-sparse checkpoint whose config lost its layout; "
            "pass config_overrides={'sparse_attention': {...}} (see docs/native_models.md) or use a "
            "dense GENA-LM BERT"
        )
    return True


register_family(Family(
    label="GENA-LM BERT",
    config=GenaBertConfig,
    base=GenaBertModel,
    lm=GenaBertForMaskedLM,
    classifier=GenaBertForSequenceClassification,
    recognise=is_published_gena_bert,
))
