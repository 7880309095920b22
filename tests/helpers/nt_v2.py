"""Reference builders for NT v2 (ESM) tests: a tiny published-layout checkpoint and the published equations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

TINY = {
    "model_type": "esm",
    "architectures": ["EsmForMaskedLM"],
    "auto_map": {
        "AutoConfig": "esm_config.EsmConfig",
        "AutoModelForMaskedLM": "modeling_esm.EsmForMaskedLM",
    },
    "add_bias_fnn": False,
    "attention_probs_dropout_prob": 0.0,
    "hidden_dropout_prob": 0.0,
    "emb_layer_norm_before": False,
    "esmfold_config": None,
    "is_folding_model": False,
    "vocab_list": None,
    "hidden_size": 32,
    "intermediate_size": 48,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "layer_norm_eps": 1e-12,
    "mask_token_id": 2,
    "pad_token_id": 1,
    "max_position_embeddings": 66,
    "position_embedding_type": "rotary",
    "tie_word_embeddings": False,
    "token_dropout": False,
    "vocab_size": 23,
}


def published_state_dict(cfg: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict spelled with the published NT v2 key names, including the unused extras."""
    gen = torch.Generator().manual_seed(seed)
    h, f, v, n_layers = (
        cfg["hidden_size"],
        cfg["intermediate_size"],
        cfg["vocab_size"],
        cfg["num_hidden_layers"],
    )
    head_dim = h // cfg["num_attention_heads"]

    def rand(*shape: int, scale: float = 0.2) -> torch.Tensor:
        return torch.randn(*shape, generator=gen) * scale

    def norm() -> tuple[torch.Tensor, torch.Tensor]:
        return 1 + rand(h, scale=0.1), rand(h, scale=0.1)

    sd = {"esm.embeddings.word_embeddings.weight": rand(v, h, scale=1.0)}
    # Extras that published files carry: unused absolute table, rotary buffers, ESM contact head.
    sd["esm.embeddings.position_embeddings.weight"] = rand(cfg["max_position_embeddings"], h)
    for i in range(n_layers):
        p = f"esm.encoder.layer.{i}."
        for name in ("query", "key", "value"):
            sd[p + f"attention.self.{name}.weight"] = rand(h, h)
            sd[p + f"attention.self.{name}.bias"] = rand(h)
        sd[p + "attention.self.rotary_embeddings.inv_freq"] = 1.0 / (
            10000 ** (torch.arange(0, head_dim, 2).float() / head_dim)
        )
        sd[p + "attention.output.dense.weight"] = rand(h, h)
        sd[p + "attention.output.dense.bias"] = rand(h)
        sd[p + "attention.LayerNorm.weight"], sd[p + "attention.LayerNorm.bias"] = norm()
        sd[p + "LayerNorm.weight"], sd[p + "LayerNorm.bias"] = norm()
        sd[p + "intermediate.dense.weight"] = rand(2 * f, h)
        sd[p + "output.dense.weight"] = rand(h, f)
    sd["esm.encoder.emb_layer_norm_after.weight"], sd["esm.encoder.emb_layer_norm_after.bias"] = norm()
    sd["esm.contact_head.regression.weight"] = rand(1, n_layers * cfg["num_attention_heads"])
    sd["esm.contact_head.regression.bias"] = rand(1)
    sd["lm_head.dense.weight"], sd["lm_head.dense.bias"] = rand(h, h), rand(h)
    sd["lm_head.layer_norm.weight"], sd["lm_head.layer_norm.bias"] = norm()
    sd["lm_head.decoder.weight"] = rand(v, h)
    sd["lm_head.bias"] = rand(v)
    return sd


def rotate(x: torch.Tensor) -> torch.Tensor:
    """RoPE written as a complex rotation of pairs (i, i + d/2) by angle pos * 10000^(-2i/d)."""
    seq, d = x.shape[-2], x.shape[-1]
    theta = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    angle = torch.arange(seq, dtype=torch.float64)[:, None] * theta[None]
    z = torch.complex(x[..., : d // 2].double(), x[..., d // 2 :].double()) * torch.polar(
        torch.ones_like(angle), angle
    )
    return torch.cat((z.real, z.imag), dim=-1).to(x.dtype)


def reference_logits(sd: dict, cfg: dict, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """ESM-2 / NT v2 forward from the equations, one explicit step at a time (float64)."""
    sd = {k: t.double() for k, t in sd.items()}
    eps, n_heads = cfg["layer_norm_eps"], cfg["num_attention_heads"]

    def ln(x: torch.Tensor, prefix: str) -> torch.Tensor:
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(var + eps) * sd[prefix + ".weight"] + sd[prefix + ".bias"]

    x = sd["esm.embeddings.word_embeddings.weight"][ids]
    if cfg["token_dropout"]:
        is_mask = ids == cfg["mask_token_id"]
        x = x.masked_fill(is_mask[..., None], 0.0)
        observed = is_mask.sum(-1) / mask.sum(-1)
        x = x * (1 - 0.15 * 0.8) / (1 - observed)[:, None, None]
    x = x * mask[..., None]
    b, s, h = x.shape
    d = h // n_heads
    for i in range(cfg["num_hidden_layers"]):
        p = f"esm.encoder.layer.{i}."
        hn = ln(x, p + "attention.LayerNorm")

        def proj(name: str, hn: torch.Tensor = hn, p: str = p) -> torch.Tensor:
            out = hn @ sd[p + f"attention.self.{name}.weight"].T + sd[p + f"attention.self.{name}.bias"]
            return out.view(b, s, n_heads, d).transpose(1, 2)

        q, k, v = rotate(proj("query") / math.sqrt(d)), rotate(proj("key")), proj("value")
        scores = q @ k.transpose(-1, -2) + torch.where(mask[:, None, None, :] > 0, 0.0, -1e30)
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, s, h)
        x = x + ctx @ sd[p + "attention.output.dense.weight"].T + sd[p + "attention.output.dense.bias"]
        gate_up = ln(x, p + "LayerNorm") @ sd[p + "intermediate.dense.weight"].T
        gate, up = gate_up[..., : cfg["intermediate_size"]], gate_up[..., cfg["intermediate_size"] :]
        x = x + (gate * torch.sigmoid(gate) * up) @ sd[p + "output.dense.weight"].T
    x = ln(x, "esm.encoder.emb_layer_norm_after")
    t = x @ sd["lm_head.dense.weight"].T + sd["lm_head.dense.bias"]
    t = ln(0.5 * t * (1 + torch.erf(t / math.sqrt(2))), "lm_head.layer_norm")
    return x, t @ sd["lm_head.decoder.weight"].T + sd["lm_head.bias"]


def write_published(directory: Path, cfg: dict, sd: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(cfg))
    torch.save(sd, directory / "pytorch_model.bin")
    return directory


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.tensor([[0, 5, 9, 2, 11, 17, 4, 8, 3], [0, 7, 6, 12, 22, 1, 1, 1, 1]])
    return ids, (ids != TINY["pad_token_id"]).long()
