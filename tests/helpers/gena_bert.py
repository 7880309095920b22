"""Reference builders for GENA-LM BERT tests: a tiny published-layout checkpoint and the published equations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from tests.helpers.nt_v2 import rotate

# The published gena-lm-bert-base config.json, shrunk.
TINY = {
    "architectures": ["BertForPretraining"],
    "auto_map": {"AutoModel": "modeling_bert.BertForPreTraining"},
    "attention_probs_dropout_prob": 0.0,
    "gradient_checkpointing": False,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.0,
    "hidden_size": 32,
    "initializer_range": 0.02,
    "intermediate_size": 48,
    "layer_norm_eps": 1e-12,
    "last_layer_norm": False,
    "max_position_embeddings": 16,
    "model_type": "bert",
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "pad_token_id": 3,
    "position_embedding_type": "absolute",
    "pre_layer_norm": True,
    "transformers_version": "4.6.0.dev0",
    "type_vocab_size": 2,
    "use_cache": True,
    "vocab_size": 40,
}


def published_state_dict(
    cfg: dict, seed: int = 0, layouts: list[torch.Tensor] | None = None
) -> dict[str, torch.Tensor]:
    """A BertForPreTraining state dict with the published GENA-LM key names.

    Rotary configs get no position table but the ``rotary_emb.inv_freq`` buffers the remote code
    saved; ``layouts`` become each layer's DeepSpeed ``sparse_self_attention.master_layout``.
    """
    gen = torch.Generator().manual_seed(seed)
    h, f, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]

    def rand(*shape: int, scale: float = 0.2) -> torch.Tensor:
        return torch.randn(*shape, generator=gen) * scale

    def norm() -> tuple[torch.Tensor, torch.Tensor]:
        return 1 + rand(h, scale=0.1), rand(h, scale=0.1)

    e = "bert.embeddings."
    sd = {
        e + "word_embeddings.weight": rand(v, h, scale=1.0),
        e + "token_type_embeddings.weight": rand(cfg["type_vocab_size"], h),
        e + "position_ids": torch.arange(cfg["max_position_embeddings"])[None],  # old persistent buffer
    }
    if cfg["position_embedding_type"] == "absolute":
        sd[e + "position_embeddings.weight"] = rand(cfg["max_position_embeddings"], h)
    sd[e + "LayerNorm.weight"], sd[e + "LayerNorm.bias"] = norm()
    for i in range(cfg["num_hidden_layers"]):
        p = f"bert.encoder.layer.{i}."
        if cfg["position_embedding_type"] == "rotary":
            width = cfg["rotary_dim"]
            sd[p + "attention.self.rotary_emb.inv_freq"] = 1.0 / (
                cfg["rotary_base"] ** (torch.arange(0, width, 2).float() / width)
            )
        if layouts is not None:
            sd[p + "attention.self.sparse_self_attention.master_layout"] = layouts[i]
        sd[p + "pre_attention_ln.weight"], sd[p + "pre_attention_ln.bias"] = norm()
        for name in ("query", "key", "value"):
            sd[p + f"attention.self.{name}.weight"], sd[p + f"attention.self.{name}.bias"] = (
                rand(h, h),
                rand(h),
            )
        sd[p + "attention.output.dense.weight"], sd[p + "attention.output.dense.bias"] = rand(h, h), rand(h)
        sd[p + "post_attention_ln.weight"], sd[p + "post_attention_ln.bias"] = norm()
        sd[p + "intermediate.dense.weight"], sd[p + "intermediate.dense.bias"] = rand(f, h), rand(f)
        sd[p + "output.dense.weight"], sd[p + "output.dense.bias"] = rand(h, f), rand(h)
    if cfg["last_layer_norm"]:
        sd["bert.encoder.last_layer_ln.weight"], sd["bert.encoder.last_layer_ln.bias"] = norm()
    sd["bert.pooler.dense.weight"], sd["bert.pooler.dense.bias"] = rand(h, h), rand(h)
    c = "cls.predictions."
    sd[c + "transform.dense.weight"], sd[c + "transform.dense.bias"] = rand(h, h), rand(h)
    sd[c + "transform.LayerNorm.weight"], sd[c + "transform.LayerNorm.bias"] = norm()
    sd[c + "bias"] = rand(v)
    sd[c + "decoder.weight"] = sd[e + "word_embeddings.weight"].clone()  # tied in the published model
    sd[c + "decoder.bias"] = sd[c + "bias"].clone()
    sd["cls.seq_relationship.weight"], sd["cls.seq_relationship.bias"] = rand(2, h), rand(2)
    return sd


def reference(sd: dict, cfg: dict, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Pre-LN BERT from the equations in float64: returns (last hidden, pooled, MLM logits).

    Rotary configs rotate the first ``rotary_dim`` dims of q and k; with ``master_layout`` buffers in ``sd``
    token i sees token j in head h only where layer 0's ``layout[h, i // block, j // block]`` is 1: DeepSpeed's
    class-level kernel cache ran every layer with the first layer's layout.
    """
    sd = {k: t.double() for k, t in sd.items()}
    eps, n_heads = cfg["layer_norm_eps"], cfg["num_attention_heads"]

    def ln(x: torch.Tensor, prefix: str) -> torch.Tensor:
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(var + eps) * sd[prefix + ".weight"] + sd[prefix + ".bias"]

    def lin(x: torch.Tensor, prefix: str) -> torch.Tensor:
        return x @ sd[prefix + ".weight"].T + sd[prefix + ".bias"]

    def gelu(x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))

    b, s = ids.shape
    e = "bert.embeddings."
    x = sd[e + "word_embeddings.weight"][ids] + sd[e + "token_type_embeddings.weight"][0]
    if cfg["position_embedding_type"] == "absolute":
        x = x + sd[e + "position_embeddings.weight"][:s]
    x = ln(x, e + "LayerNorm")
    width = cfg.get("rotary_dim")
    positions = torch.arange(s)
    h = x.shape[-1]
    d = h // n_heads
    for i in range(cfg["num_hidden_layers"]):
        p = f"bert.encoder.layer.{i}."
        a = ln(x, p + "pre_attention_ln")
        q, k, v = (
            lin(a, p + f"attention.self.{name}").view(b, s, n_heads, d).transpose(1, 2)
            for name in ("query", "key", "value")
        )
        if cfg["position_embedding_type"] == "rotary":
            q = torch.cat((rotate(q[..., :width]), q[..., width:]), dim=-1)
            k = torch.cat((rotate(k[..., :width]), k[..., width:]), dim=-1)
        allowed = mask[:, None, None, :] > 0
        layout = sd.get("bert.encoder.layer.0.attention.self.sparse_self_attention.master_layout")
        if layout is not None:
            block = cfg["sparse_attention"]["block"]
            blocks = positions // block
            allowed = allowed & (layout[:, blocks[:, None], blocks[None, :]] > 0)[None]
        scores = q @ k.transpose(-1, -2) / math.sqrt(d) + torch.where(allowed, 0.0, -1e30)
        x = x + lin((scores.softmax(-1) @ v).transpose(1, 2).reshape(b, s, h), p + "attention.output.dense")
        x = x + lin(gelu(lin(ln(x, p + "post_attention_ln"), p + "intermediate.dense")), p + "output.dense")
    if cfg["last_layer_norm"]:
        x = ln(x, "bert.encoder.last_layer_ln")
    pooled = torch.tanh(lin(x[:, 0], "bert.pooler.dense"))
    t = ln(gelu(lin(x, "cls.predictions.transform.dense")), "cls.predictions.transform.LayerNorm")
    logits = t @ sd[e + "word_embeddings.weight"].T + sd["cls.predictions.bias"]
    return x, pooled, logits


def write_published(directory: Path, cfg: dict, sd: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(cfg))
    torch.save(sd, directory / "pytorch_model.bin")
    return directory


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.tensor([[1, 9, 14, 22, 5, 31, 2], [1, 17, 8, 2, 3, 3, 3]])
    return ids, (ids != TINY["pad_token_id"]).long()
