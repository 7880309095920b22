"""Native Caduceus (Kuleshov group) that loads the published ``caduceus-ph`` / ``caduceus-ps`` files as they are.

Caduceus is a stack of bidirectional Mamba blocks (BiMamba: one Mamba mixer left to right, one right to left,
in/out projections shared, outputs added) over single-nucleotide tokens. Two published variants:

* **PH** (``rcps: false``): a plain BiMamba encoder, made reverse-complement (RC) invariant post hoc by
  averaging the predictions of a sequence and of its reverse complement ("conjoining").
* **PS** (``rcps: true``): RC parameter sharing. Every activation has ``2·d_model`` channels: the first half
  for the sequence, the second half for its reverse complement with positions and channels reversed. Each
  module applies the same weights to both halves (``rc(x) = flip(x, positions and channels)``), so the model
  is RC equivariant: the output for the RC input is the RC of the output.

The published ``config.json`` says ``model_type: "caduceus"`` with an ``auto_map`` to remote code that needs
the ``mamba-ssm`` CUDA kernels (and Triton for ``fused_add_norm``); this module computes the same maths in
plain PyTorch (:mod:`dnalm.models.families.mamba`) under the parameter names of the authors'
``modeling_caduceus.py`` / ``modeling_rcps.py``::

    caduceus.backbone.embeddings.word_embeddings.weight                  PH (V, d)
    caduceus.backbone.embeddings.word_embeddings.embedding.weight        PS (V, d) (+ complement_map buffer)
    caduceus.backbone.layers.{i}.mixer[.submodule].mamba_fwd.*            in_proj, conv1d, x_proj, dt_proj, A_log, D, out_proj
    caduceus.backbone.layers.{i}.mixer[.submodule].mamba_rev.*            the same without in_proj/out_proj (tied)
    caduceus.backbone.layers.{i}.norm[.submodule].weight                  RMSNorm (``.submodule`` only for PS without fused_add_norm)
    caduceus.backbone.norm_f[.submodule].weight
    lm_head.weight (PH) / lm_head.lm_head.weight (PS), tied to the embedding;  score.weight (classifier)

Two behaviours of the published code are kept because the published weights were trained with them:
with ``fused_add_norm: true`` (all published configs) a PS block adds its residual with the two halves swapped
(``modeling_rcps.RCPSMambaBlock`` hands the second half to the "forward" fused kernel), and the tokenizer
appends ``[SEP]``. One is added: with an ``attention_mask``, padding never reaches a real token (the reverse
scans reverse each row's real tokens only, and left-padded rows are computed right-padded), so a sequence gives
the same outputs whatever it is batched with; without a mask every position counts, as in the authors' code.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithNoAttention, SequenceClassifierOutput

from dnalm.models.families.base import (
    LanguageModelMixin,
    check_inputs,
    classification_output,
    drop_remote_fields,
    model_output,
    output_flags,
)
from dnalm.models.families.mamba import MambaMixer
from dnalm.models.families.registry import Family, PublishedConfig, register_family

POOLING_STRATEGIES = ("mean", "max", "first", "last")


@strict
class CaduceusConfig(PreTrainedConfig):
    """Configuration of a Caduceus model (field names as in the published config.json).

    ``pooling_strategy``, ``conjoin_train`` and ``conjoin_eval`` configure the sequence classifier; the authors
    pass them to ``CaduceusForSequenceClassification.__init__`` (``from_pretrained(..., pooling_strategy=...)``),
    here they may also be written in config.json.
    """

    model_type = "caduceus"

    d_model: int = 256
    n_layer: int = 16
    vocab_size: int = 16
    ssm_cfg: dict | None = None
    rms_norm: bool = True
    residual_in_fp32: bool = True
    fused_add_norm: bool = True
    pad_vocab_size_multiple: int = 8
    norm_epsilon: float = 1e-5
    initializer_cfg: dict | None = None
    bidirectional: bool = True
    bidirectional_strategy: str | None = "add"
    bidirectional_weight_tie: bool = True
    rcps: bool = False
    complement_map: dict | None = None
    pooling_strategy: str = "mean"
    conjoin_train: bool = False
    conjoin_eval: bool = False
    pad_token_id: int | None = None
    tie_word_embeddings: bool = True

    def __post_init__(self, **kwargs: Any) -> None:
        drop_remote_fields(kwargs)
        # The authors round the vocabulary up (Caduceus.__init__); published configs are already rounded.
        if self.vocab_size % self.pad_vocab_size_multiple:
            self.vocab_size += self.pad_vocab_size_multiple - self.vocab_size % self.pad_vocab_size_multiple
        if self.complement_map is not None:
            self.complement_map = {str(k): int(v) for k, v in self.complement_map.items()}
            for token in range(len(self.complement_map), self.vocab_size):
                self.complement_map.setdefault(str(token), token)
        if self.bidirectional and self.bidirectional_strategy is None:
            self.bidirectional_strategy = "add"
        super().__post_init__(**kwargs)

    def validate_architecture(self) -> None:
        """Reject configurations this implementation would compute wrongly."""
        if self.bidirectional and self.bidirectional_strategy not in ("add", "ew_multiply"):
            raise ValueError(f"bidirectional_strategy must be 'add' or 'ew_multiply', got {self.bidirectional_strategy!r}")
        if self.rcps and self.complement_map is None:
            raise ValueError("rcps: true needs a complement_map (token id -> id of its complement)")
        if self.pooling_strategy not in POOLING_STRATEGIES:
            raise ValueError(f"pooling_strategy must be one of {POOLING_STRATEGIES}, got {self.pooling_strategy!r}")

    @property
    def hidden_size(self) -> int:
        """Width of ``last_hidden_state``: ``2·d_model`` for PS (both strands), ``d_model`` for PH."""
        return self.d_model * (2 if self.rcps else 1)

    @property
    def num_hidden_layers(self) -> int:
        """Number of Caduceus blocks (``n_layer``)."""
        return self.n_layer

    def complement_ids(self) -> list[int]:
        """``complement_ids()[i]`` is the token id of the complement of token ``i``."""
        if self.complement_map is None:
            raise ValueError("this Caduceus config has no complement_map")
        return [int(self.complement_map[str(i)]) for i in range(self.vocab_size)]


class SequenceFlip:
    """Reverses positions (dim 1); with a mask, only each row's real tokens, padding stays where it is."""

    def __init__(self, index: torch.Tensor | None) -> None:
        self.index = index

    @classmethod
    def from_mask(cls, mask: torch.Tensor | None) -> SequenceFlip:
        """The reversal for an ``attention_mask`` (1 = token, 0 = padding; any padding side)."""
        if mask is None or bool(mask.all()):
            return cls(None)
        length = mask.shape[1]
        order = torch.argsort((mask == 0).to(torch.int8), dim=1, stable=True)  # real positions first, in order
        counts = mask.sum(1, keepdim=True).to(order.dtype)
        steps = torch.arange(length, device=mask.device).expand_as(order)
        compact = torch.where(steps < counts, counts - 1 - steps, steps)
        return cls(torch.empty_like(order).scatter_(1, order, order.gather(1, compact)))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.index is None:
            return x.flip(1)
        rows = torch.arange(x.shape[0], device=x.device).unsqueeze(1)
        return x[rows, self.index]

    def repeat(self, times: int) -> SequenceFlip:
        """The same reversal for a batch stacked ``times`` times along dim 0."""
        return SequenceFlip(None if self.index is None else self.index.repeat(times, 1))


def rc_channels(x: torch.Tensor, flip: SequenceFlip) -> torch.Tensor:
    """RCPS reverse complement of activations: reverse the positions and the channels."""
    return flip(x).flip(-1)


def _right_padding_order(mask: torch.Tensor | None) -> torch.Tensor | None:
    """A per-row permutation moving real tokens first, or None when the batch is already right padded."""
    if mask is None or bool((mask[:, 1:] <= mask[:, :-1]).all()):
        return None
    return torch.argsort((mask == 0).to(torch.int8), dim=1, stable=True)


def _gather_rows(x: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    rows = torch.arange(x.shape[0], device=x.device).unsqueeze(1)
    return x[rows, order]


def _scatter_rows(x: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`_gather_rows`."""
    return _gather_rows(x, torch.argsort(order, dim=1))


class CaduceusRMSNorm(nn.Module):
    """RMSNorm without bias, computed in float32 (as the authors' Triton kernel), output in the input dtype."""

    def __init__(self, hidden_size: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.bias = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        out = x32 * torch.rsqrt(x32.square().mean(-1, keepdim=True) + self.eps) * self.weight.float()
        return out.to(x.dtype)


def _norm(config: CaduceusConfig) -> nn.Module:
    if config.rms_norm:
        return CaduceusRMSNorm(config.d_model, eps=config.norm_epsilon)
    return nn.LayerNorm(config.d_model, eps=config.norm_epsilon)


def rc_norm(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A norm applied to both RCPS halves; the second half is normalised in RC channel order."""
    half = x.shape[-1] // 2
    return torch.cat([norm(x[..., :half]), norm(x[..., half:].flip(-1)).flip(-1)], dim=-1)


class RCPSAddNorm(nn.Module):
    """Holds the norm as ``submodule`` (published name when ``fused_add_norm`` is false); see :func:`rc_norm`."""

    def __init__(self, submodule: nn.Module) -> None:
        super().__init__()
        self.submodule = submodule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rc_norm(self.submodule, x)


class BiMamba(nn.Module):
    """Bidirectional Mamba (published ``BiMambaWrapper``): ``fwd(x) + flip(rev(flip(x)))``.

    With ``bidirectional_weight_tie`` the reverse mixer has no projections of its own: both directions use
    ``mamba_fwd.in_proj`` / ``mamba_fwd.out_proj`` (one module each, so LoRA on them adapts both directions).
    """

    def __init__(self, config: CaduceusConfig) -> None:
        super().__init__()
        ssm_cfg = dict(config.ssm_cfg or {})
        self.strategy = config.bidirectional_strategy
        self.tied = config.bidirectional_weight_tie
        self.mamba_fwd = MambaMixer(config.d_model, **ssm_cfg)
        self.mamba_rev = (
            MambaMixer(config.d_model, projections=not self.tied, **ssm_cfg) if config.bidirectional else None
        )

    def forward(self, hidden: torch.Tensor, flip: SequenceFlip) -> torch.Tensor:
        fwd, rev = self.mamba_fwd, self.mamba_rev
        xz = fwd.in_proj(hidden)
        y = fwd.ssm(*xz.chunk(2, dim=-1))
        if rev is None:
            return fwd.out_proj(y)
        rev_xz = flip(xz) if self.tied else rev.in_proj(flip(hidden))
        y_rev = flip(rev.ssm(*rev_xz.chunk(2, dim=-1)))
        if self.tied and self.strategy == "add":  # one output projection for both directions
            out = fwd.out_proj(y + y_rev)
            return out if fwd.out_proj.bias is None else out + fwd.out_proj.bias
        out_rev = (fwd if self.tied else rev).out_proj(y_rev)
        return fwd.out_proj(y) + out_rev if self.strategy == "add" else fwd.out_proj(y) * out_rev


class RCPSMixer(nn.Module):
    """Runs ``submodule`` on the sequence half and on the RC of the RC half (published ``RCPSWrapper``)."""

    def __init__(self, submodule: nn.Module) -> None:
        super().__init__()
        self.submodule = submodule

    def forward(self, hidden: torch.Tensor, flip: SequenceFlip) -> torch.Tensor:
        half = hidden.shape[-1] // 2
        # Both strands in one batch: the weights are shared, so one pass computes both.
        both = torch.cat([hidden[..., :half], rc_channels(hidden[..., half:], flip)], dim=0)
        fwd, rc = self.submodule(both, flip.repeat(2)).chunk(2, dim=0)
        return torch.cat([fwd, rc_channels(rc, flip)], dim=-1)


class CaduceusBlock(GradientCheckpointingLayer):
    """Add -> norm -> BiMamba, returning the mixer output and the residual stream (Mamba's block order)."""

    def __init__(self, config: CaduceusConfig) -> None:
        super().__init__()
        self.rcps, self.fused = config.rcps, config.fused_add_norm
        self.residual_in_fp32 = config.residual_in_fp32
        mixer = BiMamba(config)
        self.mixer = RCPSMixer(mixer) if config.rcps else mixer
        norm = _norm(config)
        self.norm = RCPSAddNorm(norm) if config.rcps and not config.fused_add_norm else norm

    def forward(
        self, hidden: torch.Tensor, residual: torch.Tensor | None, flip: SequenceFlip
    ) -> tuple[torch.Tensor, torch.Tensor]:
        residual = hidden if residual is None else hidden + residual
        if self.residual_in_fp32:
            residual = residual.float()
        if self.rcps and self.fused:
            # modeling_rcps.RCPSMambaBlock (fused path) feeds the second half to its "forward" kernel call and
            # the first half to the RC one, so the residual stream swaps halves in every block.
            half = residual.shape[-1] // 2
            residual = torch.cat([residual[..., half:], residual[..., :half]], dim=-1)
        normed = rc_norm(self.norm, residual.to(hidden.dtype)) if self.rcps and self.fused else self.norm(
            residual.to(hidden.dtype))
        return self.mixer(normed, flip), residual


class CaduceusEmbeddings(nn.Module):
    """Token embeddings; for PS the RC embedding of the RC'd ids is appended as the second half."""

    def __init__(self, config: CaduceusConfig) -> None:
        super().__init__()
        self.word_embeddings = RCPSEmbedding(config) if config.rcps else nn.Embedding(config.vocab_size, config.d_model)

    def forward(self, input_ids: torch.Tensor, flip: SequenceFlip) -> torch.Tensor:
        if isinstance(self.word_embeddings, RCPSEmbedding):
            return self.word_embeddings(input_ids, flip)
        return self.word_embeddings(input_ids)


class RCPSEmbedding(nn.Module):
    """``[E(ids), rc(E(complement(reverse(ids))))]``; published names ``embedding.weight``, ``complement_map``."""

    def __init__(self, config: CaduceusConfig) -> None:
        super().__init__()
        self.register_buffer("complement_map", torch.tensor(config.complement_ids(), dtype=torch.long))
        self.embedding = nn.Embedding(config.vocab_size, config.d_model)

    @property
    def weight(self) -> nn.Parameter:
        return self.embedding.weight

    def rc_ids(self, input_ids: torch.Tensor, flip: SequenceFlip) -> torch.Tensor:
        """Reverse complement of token ids (each row's real tokens reversed, ids complemented)."""
        return self.complement_map[flip(input_ids)]

    def forward(self, input_ids: torch.Tensor, flip: SequenceFlip) -> torch.Tensor:
        rc = self.embedding(self.rc_ids(input_ids, flip))
        return torch.cat([self.embedding(input_ids), rc_channels(rc, flip)], dim=-1)


class CaduceusMixerModel(nn.Module):
    """Embeddings, blocks and the final norm ``norm_f`` (published ``CaduceusMixerModel``)."""

    def __init__(self, config: CaduceusConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = CaduceusEmbeddings(config)
        self.layers = nn.ModuleList(CaduceusBlock(config) for _ in range(config.n_layer))
        norm_f = _norm(config)
        self.norm_f = RCPSAddNorm(norm_f) if config.rcps and not config.fused_add_norm else norm_f

    def forward(
        self, input_ids: torch.Tensor | None, inputs_embeds: torch.Tensor | None, flip: SequenceFlip,
        output_hidden_states: bool,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        hidden = self.embeddings(input_ids, flip) if inputs_embeds is None else inputs_embeds
        residual = None
        all_hidden: list[torch.Tensor] = []
        for layer in self.layers:
            if output_hidden_states:
                all_hidden.append(hidden)  # as the authors: the embeddings, then each block's mixer output
            hidden, residual = layer(hidden, residual, flip)
        residual = hidden if residual is None else hidden + residual
        if self.config.rcps:
            norm = self.norm_f.submodule if isinstance(self.norm_f, RCPSAddNorm) else self.norm_f
            hidden = rc_norm(norm, residual.to(hidden.dtype))
        else:
            hidden = self.norm_f(residual.to(hidden.dtype))
        if output_hidden_states:
            all_hidden.append(hidden)
        return hidden, all_hidden


class CaduceusPreTrainedModel(PreTrainedModel):
    """Shared loading behaviour: published prefix ``caduceus``, checkpointable blocks, Mamba initialisation."""

    config_class = CaduceusConfig
    config: CaduceusConfig
    base_model_prefix = "caduceus"
    supports_gradient_checkpointing = True
    _no_split_modules = ["CaduceusBlock"]
    # The published files may repeat the reverse mixers' tied projections; they are mamba_fwd's here.
    _keys_to_ignore_on_load_unexpected = [r"mamba_rev\.(in|out)_proj\."]
    # Rebuilt from config.complement_map when a file leaves the buffers out.
    _keys_to_ignore_on_load_missing = [r"complement_map"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """The authors' initialisation (Mamba's): respects weights already loaded from a checkpoint."""
        cfg = self.config.initializer_cfg or {}
        std = cfg.get("initializer_range", 0.02)
        if isinstance(module, MambaMixer):
            dt_std = module.dt_rank**-0.5 * module.dt_scale
            if module.dt_init == "constant":
                init.constant_(module.dt_proj.weight, dt_std)
            else:
                init.uniform_(module.dt_proj.weight, -dt_std, dt_std)
            init.copy_(module.dt_proj.bias, module.initial_dt_bias())
            init.copy_(module.A_log, module.initial_A_log())
            init.ones_(module.D)
            init.kaiming_uniform_(module.conv1d.weight, a=math.sqrt(5))
            if module.conv1d.bias is not None:
                bound = 1 / math.sqrt(module.conv1d.weight[0].numel())
                init.uniform_(module.conv1d.bias, -bound, bound)
            init.kaiming_uniform_(module.x_proj.weight, a=math.sqrt(5))
            if hasattr(module, "in_proj"):
                init.kaiming_uniform_(module.in_proj.weight, a=math.sqrt(5))
                # GPT-2 style: residual output projections scaled by 1/sqrt(n_layer)
                rescale = cfg.get("rescale_prenorm_residual", True)
                layers = cfg.get("n_residuals_per_layer", 1) * self.config.n_layer
                bound = 1 / math.sqrt(module.d_inner) / (math.sqrt(layers) if rescale else 1.0)
                init.uniform_(module.out_proj.weight, -bound, bound)
                for linear in (module.in_proj, module.out_proj):
                    if linear.bias is not None:
                        init.zeros_(linear.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, std=std)
        elif isinstance(module, (CaduceusRMSNorm, nn.LayerNorm)):
            init.ones_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, RCPSEmbedding):
            init.copy_(module.complement_map, torch.tensor(self.config.complement_ids()))
        elif isinstance(module, RCPSLMHead):
            init.copy_(module.complement_map, torch.tensor(self.config.complement_ids()))
        elif isinstance(module, CaduceusForSequenceClassification):
            init.normal_(module.score.weight, std=std)


class CaduceusModel(CaduceusPreTrainedModel):
    """Caduceus encoder (published ``Caduceus``) returning :class:`BaseModelOutputWithNoAttention`.

    ``last_hidden_state`` has ``config.hidden_size`` channels: ``d_model`` (PH) or ``2·d_model`` (PS).
    """

    # An encoder may be loaded from a masked-LM or a classifier file.
    _keys_to_ignore_on_load_unexpected = CaduceusPreTrainedModel._keys_to_ignore_on_load_unexpected + [
        r"^lm_head\.", r"^score\."]

    def __init__(self, config: CaduceusConfig) -> None:
        super().__init__(config)
        self.backbone = CaduceusMixerModel(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        embeddings = self.backbone.embeddings.word_embeddings
        return embeddings.embedding if isinstance(embeddings, RCPSEmbedding) else embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        embeddings = self.backbone.embeddings.word_embeddings
        if isinstance(embeddings, RCPSEmbedding):
            embeddings.embedding = value
        else:
            self.backbone.embeddings.word_embeddings = value

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs: Any,
    ) -> BaseModelOutputWithNoAttention | tuple:
        """Encode ``input_ids`` (or ``inputs_embeds``); with ``attention_mask`` padding does not reach real tokens."""
        check_inputs(input_ids, inputs_embeds)
        output_hidden_states, return_dict = output_flags(self.config, output_hidden_states, return_dict)
        order = _right_padding_order(attention_mask)
        if order is not None:  # compute left-padded rows as right-padded ones, then put the positions back
            input_ids = None if input_ids is None else _gather_rows(input_ids, order)
            inputs_embeds = None if inputs_embeds is None else _gather_rows(inputs_embeds, order)
            attention_mask = _gather_rows(attention_mask, order)
        flip = SequenceFlip.from_mask(attention_mask)
        hidden, all_hidden = self.backbone(input_ids, inputs_embeds, flip, bool(output_hidden_states))
        if order is not None:
            hidden = _scatter_rows(hidden, order)
            all_hidden = [_scatter_rows(h, order) for h in all_hidden]
        hidden_states = tuple(all_hidden) if output_hidden_states else None
        return model_output(BaseModelOutputWithNoAttention, return_dict, last_hidden_state=hidden,
                            hidden_states=hidden_states)


class RCPSLMHead(nn.Module):
    """RC-equivariant LM head: forward half against the embedding, RC half against the complement's rows."""

    def __init__(self, config: CaduceusConfig) -> None:
        super().__init__()
        self.register_buffer("complement_map", torch.tensor(config.complement_ids(), dtype=torch.long))
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        half = hidden.shape[-1] // 2
        weight = self.lm_head.weight
        return F.linear(hidden[..., :half], weight) + F.linear(hidden[..., half:].flip(-1), weight[self.complement_map])


class CaduceusForMaskedLM(LanguageModelMixin, CaduceusPreTrainedModel):
    """Caduceus with its published masked-LM head (tied to the embedding); returns :class:`MaskedLMOutput`.

    Logits are float32, as the authors'. The loss ignores ``config.pad_token_id`` targets, as the authors'
    ``cross_entropy`` does (and -100).
    """

    def __init__(self, config: CaduceusConfig) -> None:
        super().__init__(config)
        self.caduceus = CaduceusModel(config)
        if config.rcps:
            self.lm_head = RCPSLMHead(config)
            target, source = "lm_head.lm_head.weight", "caduceus.backbone.embeddings.word_embeddings.embedding.weight"
        else:
            self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
            target, source = "lm_head.weight", "caduceus.backbone.embeddings.word_embeddings.weight"
        self._tied_weights_keys = {target: source}
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head.lm_head if isinstance(self.lm_head, RCPSLMHead) else self.lm_head

    def lm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.lm_head(hidden).float()

    def lm_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        ignore = self.config.pad_token_id if self.config.pad_token_id is not None else -100
        labels = labels.masked_fill(labels == -100, ignore)
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1), ignore_index=ignore)


def _pool(hidden: torch.Tensor, mask: torch.Tensor | None, strategy: str) -> torch.Tensor:
    """Pool (batch, length, ...) over real positions (all positions without a mask)."""
    if mask is None:
        mask = torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)
    weights = mask.to(hidden.dtype).view(*mask.shape, *([1] * (hidden.dim() - 2)))
    if strategy == "mean":
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
    if strategy == "max":
        return hidden.masked_fill(weights == 0, torch.finfo(hidden.dtype).min).max(dim=1).values
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    if strategy == "first":
        index = torch.where(mask.bool(), positions, mask.shape[1]).min(dim=1).values
    else:
        index = torch.where(mask.bool(), positions, -1).max(dim=1).values
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), index.clamp(0, mask.shape[1] - 1)]


class CaduceusForSequenceClassification(CaduceusPreTrainedModel):
    """Caduceus with the head of the authors' ``CaduceusForSequenceClassification`` (``score``, no bias).

    PS: the two strands' halves are pooled and scored separately and the logits averaged (RC invariant).
    PH with ``conjoin_train`` (or ``conjoin_eval`` at evaluation): the same over the sequence and its reverse
    complement; ``input_ids`` may be (batch, length, 2) with the RC strand's ids as the authors' data loaders
    build them, or (batch, length), whose RC is then computed here (each row's real tokens reversed and
    complemented). Pooling (``config.pooling_strategy``) covers real tokens only when ``attention_mask`` is given.
    """

    # A classifier with a fresh head (a PEFT adapter restores it) may start from a masked-LM file.
    _keys_to_ignore_on_load_unexpected = CaduceusPreTrainedModel._keys_to_ignore_on_load_unexpected + [r"^lm_head\."]

    def __init__(self, config: CaduceusConfig) -> None:
        super().__init__(config)
        self.caduceus = CaduceusModel(config)
        self.score = nn.Linear(config.d_model, config.num_labels, bias=False)
        self.post_init()

    def _conjoined(self) -> bool:
        return not self.config.rcps and (self.config.conjoin_train or (self.config.conjoin_eval and not self.training))

    def _strands(self, input_ids: torch.Tensor | None, attention_mask: torch.Tensor | None,
                 inputs_embeds: torch.Tensor | None, output_hidden_states: bool | None) -> tuple[torch.Tensor, Any]:
        """Hidden states stacked as (batch, length, d_model, strands) (strands = 1 when not conjoined)."""
        if self.config.rcps:
            out = self.caduceus(input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds,
                                output_hidden_states=output_hidden_states, return_dict=True)
            half = self.config.d_model
            rc = rc_channels(out.last_hidden_state[..., half:], SequenceFlip.from_mask(attention_mask))
            return torch.stack([out.last_hidden_state[..., :half], rc], dim=-1), out
        if self._conjoined():
            if input_ids is None:
                raise ValueError("conjoining needs input_ids (the reverse complement is taken of the ids)")
            if input_ids.dim() == 3:
                forward_ids, rc_ids = input_ids[..., 0], input_ids[..., 1]
            else:
                complement = torch.tensor(self.config.complement_ids(), device=input_ids.device)
                forward_ids, rc_ids = input_ids, complement[SequenceFlip.from_mask(attention_mask)(input_ids)]
            both = torch.cat([forward_ids, rc_ids], dim=0)
            mask = None if attention_mask is None else attention_mask.repeat(2, 1)
            out = self.caduceus(both, attention_mask=mask, output_hidden_states=output_hidden_states, return_dict=True)
            fwd, rc = out.last_hidden_state.chunk(2, dim=0)
            return torch.stack([fwd, rc], dim=-1), out
        out = self.caduceus(input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds,
                            output_hidden_states=output_hidden_states, return_dict=True)
        return out.last_hidden_state.unsqueeze(-1), out

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
        """Sequence logits (mean of the strands' scores); with ``labels`` also the loss for ``config.problem_type``."""
        hidden, outputs = self._strands(input_ids, attention_mask, inputs_embeds, output_hidden_states)
        pooled = _pool(hidden, attention_mask, self.config.pooling_strategy)  # (batch, d_model, strands)
        logits = self.score(pooled.transpose(1, 2)).mean(dim=1)
        return classification_output(logits, labels, self.config, outputs.hidden_states, return_dict)


def is_published_caduceus(config: PublishedConfig) -> bool:
    """Published configs say ``model_type: "caduceus"`` (the native one too); a copy without it names the remote
    ``modeling_caduceus`` in its auto_map."""
    return config.model_type is None and "modeling_caduceus" in config.remote


register_family(Family(
    label="Caduceus",
    config=CaduceusConfig,
    base=CaduceusModel,
    lm=CaduceusForMaskedLM,
    classifier=CaduceusForSequenceClassification,
    recognise=is_published_caduceus,
))
