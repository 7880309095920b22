"""Native Nucleotide Transformer v2 (InstaDeep) that loads the published checkpoints as they are.

NT v2 is an ESM-2 style encoder: rotary position embeddings, pre-LayerNorm blocks, a SwiGLU
feed-forward without biases (``add_bias_fnn: false``) and a final LayerNorm
(``emb_layer_norm_after``). The published ``config.json`` says ``model_type: "esm"`` and points
``auto_map`` at remote code that no longer imports with current ``transformers``; this module
re-implements the maths under its own ``model_type`` and keeps the published parameter names,
so ``pytorch_model.bin`` / ``model.safetensors`` load unchanged.

Parameter layout (``L`` layers, hidden ``H``, feed-forward ``F``, vocabulary ``V``)::

    esm.embeddings.word_embeddings.weight                        (V, H)
    esm.encoder.layer.{i}.attention.LayerNorm.{weight,bias}      (H,)   pre-attention norm
    esm.encoder.layer.{i}.attention.self.{query,key,value}.*     (H, H) + (H,)
    esm.encoder.layer.{i}.attention.output.dense.*               (H, H) + (H,)
    esm.encoder.layer.{i}.LayerNorm.{weight,bias}                (H,)   pre-feed-forward norm
    esm.encoder.layer.{i}.intermediate.dense.weight              (2F, H) [gate; up], no bias
    esm.encoder.layer.{i}.output.dense.weight                    (H, F)  no bias
    esm.encoder.emb_layer_norm_after.{weight,bias}               (H,)
    lm_head.dense.*, lm_head.layer_norm.*, lm_head.decoder.weight, lm_head.bias
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import PreTrainedConfig
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutput, ModelOutput

from dnalm.models.families.attention import (
    attend,
    merge_heads,
    padding_mask,
    resolve_implementation,
    split_heads,
)
from dnalm.models.families.base import (
    AttentionFamilyModel,
    LanguageModelMixin,
    SequenceClassifierMixin,
    check_heads,
    check_inputs,
    drop_remote_fields,
    model_output,
    output_flags,
)
from dnalm.models.families.registry import Family, PublishedConfig, register_family
from dnalm.models.families.rotary import apply_rotary, rotary_cos_sin

# ESM's mask-dropout constant: 15% of tokens selected, 80% of those replaced by <mask>.
MASK_RATIO_TRAIN = 0.15 * 0.8
ROTARY_BASE = 10000.0


@strict
class NucleotideTransformerV2Config(PreTrainedConfig):
    """Configuration of a Nucleotide Transformer v2 encoder (field names as in the published config.json)."""

    model_type = "nucleotide_transformer_v2"

    vocab_size: int = 4107
    hidden_size: int = 512
    num_hidden_layers: int = 12
    num_attention_heads: int = 16
    intermediate_size: int = 2048
    hidden_dropout_prob: float | int = 0.0
    attention_probs_dropout_prob: float | int = 0.0
    max_position_embeddings: int = 2050
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    position_embedding_type: str = "rotary"
    emb_layer_norm_before: bool | None = False
    token_dropout: bool = False
    add_bias_fnn: bool = False
    mask_token_id: int | None = 2
    pad_token_id: int | None = 1
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs: Any) -> None:
        drop_remote_fields(kwargs)
        super().__post_init__(**kwargs)

    def validate_architecture(self) -> None:
        """Reject configurations this implementation would silently compute wrongly."""
        if self.position_embedding_type != "rotary":
            raise ValueError(
                f"NT v2 uses rotary position embeddings, got position_embedding_type="
                f"{self.position_embedding_type!r}; NT v1 checkpoints (absolute positions, GELU "
                "feed-forward) load with plain transformers EsmModel instead"
            )
        check_heads(self.hidden_size, self.num_attention_heads)


class NTv2SelfAttention(nn.Module):
    """Query/key/value projections with rotary embeddings; published names ``query``/``key``/``value``."""

    def __init__(self, config: NucleotideTransformerV2Config) -> None:
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None, rotary: tuple) -> torch.Tensor:
        cos, sin = rotary
        query = apply_rotary(split_heads(self.query(hidden), self.num_heads), cos, sin)
        key = apply_rotary(split_heads(self.key(hidden), self.num_heads), cos, sin)
        value = split_heads(self.value(hidden), self.num_heads)
        dropout = self.config.attention_probs_dropout_prob if self.training else 0.0
        return merge_heads(attend(query, key, value, mask, dropout, resolve_implementation(self.config)))


class NTv2SelfOutput(nn.Module):
    """Attention output projection (``attention.output.dense``) with dropout and residual."""

    def __init__(self, config: NucleotideTransformerV2Config) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.dense(hidden)) + residual


class NTv2Attention(nn.Module):
    """Pre-LayerNorm attention sub-block: ``x + out(attn(LayerNorm(x)))``."""

    def __init__(self, config: NucleotideTransformerV2Config) -> None:
        super().__init__()
        self.self = NTv2SelfAttention(config)
        self.output = NTv2SelfOutput(config)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None, rotary: tuple) -> torch.Tensor:
        return self.output(self.self(self.LayerNorm(hidden), mask, rotary), hidden)


class NTv2Intermediate(nn.Module):
    """SwiGLU input projection: one ``(2F, H)`` matrix whose first half is the SiLU gate."""

    def __init__(self, config: NucleotideTransformerV2Config) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, 2 * config.intermediate_size, bias=config.add_bias_fnn)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        gate, up = self.dense(hidden).chunk(2, dim=-1)
        return F.silu(gate) * up


class NTv2Output(nn.Module):
    """Feed-forward output projection with dropout and residual."""

    def __init__(self, config: NucleotideTransformerV2Config) -> None:
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size, bias=config.add_bias_fnn)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.dense(hidden)) + residual


class NTv2Layer(GradientCheckpointingLayer):
    """One pre-LN transformer block; checkpointed when gradient checkpointing is enabled."""

    def __init__(self, config: NucleotideTransformerV2Config) -> None:
        super().__init__()
        self.attention = NTv2Attention(config)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.intermediate = NTv2Intermediate(config)
        self.output = NTv2Output(config)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None, rotary: tuple) -> torch.Tensor:
        hidden = self.attention(hidden, mask, rotary)
        return self.output(self.intermediate(self.LayerNorm(hidden)), hidden)


class NTv2Encoder(nn.Module):
    """Stack of layers followed by the final LayerNorm ``emb_layer_norm_after``."""

    def __init__(self, config: NucleotideTransformerV2Config) -> None:
        super().__init__()
        self.layer = nn.ModuleList(NTv2Layer(config) for _ in range(config.num_hidden_layers))
        self.emb_layer_norm_after = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)


class NTv2Embeddings(nn.Module):
    """Token embeddings with ESM's token-dropout rescaling and zeroed padding positions."""

    def __init__(self, config: NucleotideTransformerV2Config) -> None:
        super().__init__()
        self.config = config
        self.word_embeddings = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id
        )
        self.layer_norm = (
            nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
            if config.emb_layer_norm_before
            else None
        )

    def forward(
        self,
        input_ids: torch.Tensor | None,
        attention_mask: torch.Tensor,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        embeddings = self.word_embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        if self.config.token_dropout and input_ids is not None:
            # Masked tokens were dropped (zeroed) in training; rescale so eval statistics match.
            is_mask = (input_ids == self.config.mask_token_id).unsqueeze(-1)
            embeddings = embeddings.masked_fill(is_mask, 0.0)
            observed = is_mask.squeeze(-1).sum(-1).float() / attention_mask.sum(-1).clamp(min=1)
            scale = (1 - MASK_RATIO_TRAIN) / (1 - observed)
            embeddings = (embeddings * scale[:, None, None]).to(embeddings.dtype)
        if self.layer_norm is not None:
            embeddings = self.layer_norm(embeddings)
        return (embeddings * attention_mask.unsqueeze(-1)).to(embeddings.dtype)


class NTv2PreTrainedModel(AttentionFamilyModel):
    """Shared loading behaviour: published prefix ``esm``, SDPA by default, checkpointable layers."""

    config_class = NucleotideTransformerV2Config
    config: NucleotideTransformerV2Config
    base_model_prefix = "esm"
    _no_split_modules = ["NTv2Layer"]
    # Present in published files but unused here: rotary tables are recomputed, the contact head
    # (ESM protein contact prediction) and absolute position table do not apply to NT v2.
    _keys_to_ignore_on_load_unexpected = [
        r"rotary_embeddings\.inv_freq",
        r"contact_head\.",
        r"embeddings\.position_embeddings\.",
        r"embeddings\.position_ids",
    ]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, NTv2LMHead):
            init.zeros_(module.bias)  # respects weights already loaded from the checkpoint


class NucleotideTransformerV2Model(NTv2PreTrainedModel):
    """NT v2 encoder returning :class:`BaseModelOutput` (``last_hidden_state`` is after the final LayerNorm)."""

    def __init__(self, config: NucleotideTransformerV2Config) -> None:
        super().__init__(config)
        self.embeddings = NTv2Embeddings(config)
        self.encoder = NTv2Encoder(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.word_embeddings = value

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs: Any,
    ) -> BaseModelOutput | tuple:
        """Encode ``input_ids`` (or ``inputs_embeds``); ``attention_mask`` is 1 for real tokens, 0 for padding."""
        check_inputs(input_ids, inputs_embeds)
        reference = input_ids if input_ids is not None else inputs_embeds[..., 0]
        if attention_mask is None:
            attention_mask = torch.ones(reference.shape, dtype=torch.long, device=reference.device)
        output_hidden_states, return_dict = output_flags(self.config, output_hidden_states, return_dict)

        hidden = self.embeddings(input_ids, attention_mask, inputs_embeds)
        mask = padding_mask(attention_mask)
        head_dim = self.config.hidden_size // self.config.num_attention_heads
        rotary = rotary_cos_sin(hidden.shape[1], head_dim, ROTARY_BASE, hidden.device, hidden.dtype)
        all_hidden: list[torch.Tensor] = []
        for layer in self.encoder.layer:
            all_hidden.append(hidden)
            hidden = layer(hidden, mask, rotary)
        hidden = self.encoder.emb_layer_norm_after(hidden)
        all_hidden.append(hidden)  # as in ESM: the last entry is the normalised output
        hidden_states = tuple(all_hidden) if output_hidden_states else None
        return model_output(BaseModelOutput, return_dict, last_hidden_state=hidden, hidden_states=hidden_states)


class NTv2LMHead(nn.Module):
    """ESM masked-LM head: dense, exact (erf) GELU, LayerNorm, decoder without bias plus a separate bias."""

    def __init__(self, config: NucleotideTransformerV2Config) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        hidden = self.layer_norm(F.gelu(self.dense(hidden)))
        return self.decoder(hidden) + self.bias


class NucleotideTransformerV2ForMaskedLM(LanguageModelMixin, NTv2PreTrainedModel):
    """NT v2 encoder with its published masked-LM head; returns :class:`MaskedLMOutput`."""

    _tied_weights_keys = {"lm_head.decoder.weight": "esm.embeddings.word_embeddings.weight"}

    def __init__(self, config: NucleotideTransformerV2Config) -> None:
        super().__init__(config)
        self.esm = NucleotideTransformerV2Model(config)
        self.lm_head = NTv2LMHead(config)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head.decoder

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head.decoder = value

    def lm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.lm_head(hidden)


class NTv2ClassificationHead(nn.Module):
    """ESM's sequence head on the first (``<cls>``) token: dropout, dense, tanh, dropout, ``out_proj``."""

    def __init__(self, config: NucleotideTransformerV2Config) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.out_proj = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        pooled = torch.tanh(self.dense(self.dropout(hidden[:, 0])))
        return self.out_proj(self.dropout(pooled))


class NucleotideTransformerV2ForSequenceClassification(SequenceClassifierMixin, NTv2PreTrainedModel):
    """NT v2 with the head of a fine-tuned ``EsmForSequenceClassification`` (published names ``classifier.*``)."""

    _keys_to_ignore_on_load_unexpected = NTv2PreTrainedModel._keys_to_ignore_on_load_unexpected + [r"lm_head\."]

    def __init__(self, config: NucleotideTransformerV2Config) -> None:
        super().__init__(config)
        self.esm = NucleotideTransformerV2Model(config)
        self.classifier = NTv2ClassificationHead(config)
        self.post_init()

    def sequence_logits(
        self, outputs: ModelOutput, input_ids: torch.Tensor | None, attention_mask: torch.Tensor | None
    ) -> torch.Tensor:
        return self.classifier(outputs.last_hidden_state)


def is_published_nt_v2(config: PublishedConfig) -> bool:
    """NT v2 = InstaDeep's remote ESM with a SwiGLU feed-forward (flagged by ``add_bias_fnn``) and rotary positions.

    Protein ESM-2 and NT v1 (absolute positions, GELU) have neither and load with plain transformers.
    """
    if config.model_type != "esm":
        return False
    is_nt_v2 = "add_bias_fnn" in config.fields or "modeling_esm" in config.remote
    return is_nt_v2 and config.fields.get("position_embedding_type", "absolute") == "rotary"


register_family(Family(
    label="NT v2",
    config=NucleotideTransformerV2Config,
    base=NucleotideTransformerV2Model,
    lm=NucleotideTransformerV2ForMaskedLM,
    classifier=NucleotideTransformerV2ForSequenceClassification,
    recognise=is_published_nt_v2,
))
