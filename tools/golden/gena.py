"""Golden fixtures for GENA-LM BERT (all published variants) and the sparse BigBird, from AIRI's own code.

Run by hand in a reference venv (transformers 4.30, torch CPU; see tools/golden/README.md):

    /work/refenv-golden/bin/python tools/golden/gena.py

AIRI's ``src/gena_lm/modeling_bert.py`` is read from the fetched GitHub mirror of AIRI-Institute/GENA_LM and
imported from a temporary folder (never copied into this repository); the configs start from GENA_LM's
``data/configs/*.json`` (the architecture files the hub configs were made from) with tiny dimensions.
The sparse model runs DeepSpeed 0.6.5's own ``sparsity_config.py`` and ``sparse_self_attention.py`` (read from
the microsoft/DeepSpeed mirror at tag v0.6.5); only the Triton ``MatMul`` / ``Softmax`` kernels are replaced by
dense maths over the layout's blocks (``_DENSE_KERNELS`` below), and the fp16-only casts are lifted so the
reference runs in fp32.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    DNA_INPUTS,
    FIXTURES,
    mirror_source,
    module_from_source,
    randomise,
    save_bin,
    write_fixture,
    write_json,
)

GENA_REPO, MODELING = "AIRI-Institute/GENA_LM", "src/gena_lm/modeling_bert.py"
TOKENIZER_DIR = "data/tokenizers/t2t_1000h_multi_32k"
DS_REPO, DS_TAG = "microsoft/DeepSpeed", "v0.6.5"
VOCAB = 64  # the first 64 ids of GENA's BPE vocabulary (specials, letters, first merges)
TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
        "vocab_size": VOCAB, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
AUTO_MAP = {
    "AutoModel": "modeling_bert.BertModel",
    "AutoModelForMaskedLM": "modeling_bert.BertForMaskedLM",
    "AutoModelForSequenceClassification": "modeling_bert.BertForSequenceClassification",
}

# fixture name -> (GENA_LM data/configs file, reference class, architectures, extra config fields)
VARIANTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "gena_bert_base": ("L12-H768-A12-V32k-preln.json", "BertForPreTraining", {}),
    "gena_bert_base_t2t": ("L12-H768-A12-V32k-preln.json", "BertForMaskedLM", {}),
    "gena_bert_base_t2t_multi": ("L12-H768-A12-V32k-preln.json", "BertForMaskedLM", {}),
    "gena_bert_base_lastln_t2t": ("L12-H768-A12-V32k-preln-lastln.json", "BertForMaskedLM", {}),
    "gena_bert_large_t2t": ("L24-H1024-A16-V32k-preln-lastln.json", "BertForMaskedLM", {}),
    "gena_bert_base_t2t_classifier": ("L12-H768-A12-V32k-preln.json", "BertForSequenceClassification",
                                      {"num_labels": 3, "problem_type": "single_label_classification"}),
    "gena_bigbird_base_sparse": ("L12-H768-A12-V32k-L4096-preln-sparse-rope.json", "BertForMaskedLM",
                                 {"max_position_embeddings": 64, "rotary_dim": 4,
                                  "sparse_attention": {"num_heads": 4, "block": 4, "different_layout_per_head": True,
                                                       "num_sliding_window_blocks": 3, "num_global_blocks": 2,
                                                       "num_random_blocks": 3}}),
}

_DENSE_KERNELS = '''
"""Dense stand-ins for DeepSpeed's Triton block-sparse kernels (golden-fixture generation only).

Scores outside the layout are -inf before the softmax, so every query row normalises over exactly the key
blocks its layout row allows, as the Triton kernels do; padding masks are added ("add" mode) or multiplied.
"""
import torch


def _token_mask(layout, block):
    return layout.bool().repeat_interleave(block, 1).repeat_interleave(block, 2)


class MatMul:
    def __init__(self, layout, block, mode, trans_a=False, trans_b=False, bench=False):
        self.mask, self.mode, self.trans_a, self.trans_b = _token_mask(layout, block), mode, trans_a, trans_b

    def __call__(self, a, b):
        a = a.transpose(-1, -2) if self.trans_a else a
        b = b.transpose(-1, -2) if self.trans_b else b
        out = torch.matmul(a, b)
        if self.mode == "sdd":  # dense x dense -> block-sparse scores
            out = out.masked_fill(~self.mask.to(out.device)[None], float("-inf"))
        return out


class Softmax:
    def __init__(self, layout, block, bench=False):
        self.mask = _token_mask(layout, block)

    def __call__(self, x, scale=1.0, rpe=None, key_padding_mask=None, attn_mask=None,
                 key_padding_mask_mode="add", attn_mask_mode="add"):
        x = x * scale
        if rpe is not None:
            x = x + rpe
        if key_padding_mask is not None:
            kpm = key_padding_mask[:, None, None, :]
            x = x + kpm if key_padding_mask_mode == "add" else x.masked_fill(kpm == 0, float("-inf"))
        if attn_mask is not None:
            x = x + attn_mask if attn_mask_mode == "add" else x.masked_fill(attn_mask == 0, float("-inf"))
        x = x.masked_fill(~self.mask.to(x.device)[None], float("-inf"))
        return torch.softmax(x, dim=-1)
'''
_DS_INIT = "from .sparsity_config import *\nfrom .sparse_self_attention import SparseSelfAttention\n"
FP16_ASSERT = 'assert query.dtype == torch.half, "sparse attention only supports training in fp16 currently'
AIRI_HALF_CAST = "if query_dtype != torch.half:"


def install_deepspeed(workdir: Path) -> dict[str, Any]:
    """A ``deepspeed.ops.sparse_attention`` package of DeepSpeed's own layout and attention code, dense kernels."""
    package = workdir / "deepspeed" / "ops" / "sparse_attention"
    package.mkdir(parents=True)
    (workdir / "deepspeed" / "__init__.py").write_text("")
    (workdir / "deepspeed" / "ops" / "__init__.py").write_text("")
    base = "deepspeed/ops/sparse_attention/"
    config_text, commit = mirror_source(DS_REPO, base + "sparsity_config.py", DS_TAG)
    attention_text, _ = mirror_source(DS_REPO, base + "sparse_self_attention.py", DS_TAG)
    assert FP16_ASSERT in attention_text
    attention_text = "\n".join(
        line for line in attention_text.splitlines() if FP16_ASSERT not in line
    )
    (package / "sparsity_config.py").write_text(config_text)
    (package / "sparse_self_attention.py").write_text(attention_text)
    (package / "__init__.py").write_text(_DS_INIT)
    (package / "matmul.py").write_text(_DENSE_KERNELS)
    (package / "softmax.py").write_text(_DENSE_KERNELS)
    sys.path.insert(0, str(workdir))
    return {"repository": DS_REPO, "tag": DS_TAG, "commit": commit,
            "files": [base + "sparsity_config.py", base + "sparse_self_attention.py"],
            "changes": ["Triton MatMul/Softmax replaced by dense maths over the layout's blocks",
                        "the fp16-only assertion in SparseSelfAttention.forward removed (fp32 reference)"]}


def tiny_tokenizer(folder: Path) -> None:
    """GENA's published BPE tokenizer files, cut to the first VOCAB ids (merges that stay inside kept)."""
    data = json.loads(mirror_source(GENA_REPO, f"{TOKENIZER_DIR}/tokenizer.json")[0])
    vocab = {t: i for t, i in data["model"]["vocab"].items() if i < VOCAB}
    data["model"]["vocab"] = vocab
    data["model"]["merges"] = [m for m in data["model"]["merges"] if "".join(m.split(" ")) in vocab
                               and all(part in vocab for part in m.split(" "))]
    data["added_tokens"] = [t for t in data["added_tokens"] if t["id"] < VOCAB]
    write_json(folder / "tokenizer.json", data)
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).write_text(mirror_source(GENA_REPO, f"{TOKENIZER_DIR}/{name}")[0])


def build(name: str, modeling: Any, seed: int) -> tuple[Any, dict[str, Any]]:
    config_file, cls_name, extra = VARIANTS[name]
    published = json.loads(mirror_source(GENA_REPO, f"data/configs/{config_file}")[0])
    raw = {**published, **TINY, **extra, "architectures": [cls_name], "auto_map": AUTO_MAP}
    config = modeling.BertConfig(**raw)
    random.seed(seed)  # DeepSpeed draws its random blocks with python's random
    torch.manual_seed(seed)
    model = getattr(modeling, cls_name)(config).eval()
    randomise(model, seed)
    return model, raw


def run(name: str, model: Any, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True, return_dict=True)
        hidden = model.bert(**batch, return_dict=True)
    result = {**batch, "last_hidden_state": hidden.last_hidden_state}
    if hidden.pooler_output is not None:
        result["pooler_output"] = hidden.pooler_output
    result["logits"] = out.prediction_logits if hasattr(out, "prediction_logits") else out.logits
    return result


def main() -> None:
    from transformers import AutoTokenizer

    workdir = Path(tempfile.mkdtemp(prefix="golden-gena-"))
    deepspeed = install_deepspeed(workdir)
    source, commit = mirror_source(GENA_REPO, MODELING)
    assert AIRI_HALF_CAST in source
    source = source.replace(AIRI_HALF_CAST, "if False:  # golden fixture: fp32 reference", 1)
    modeling = module_from_source("airi_modeling_bert", source, workdir)
    for seed, name in enumerate(VARIANTS):
        model, raw = build(name, modeling, seed)
        folder = FIXTURES / name / "model"
        tiny_tokenizer(folder)
        write_json(folder / "config.json", {k: raw[k] for k in sorted(raw)})
        save_bin(model.state_dict(), folder)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        sparse = raw.get("sparse_attention")
        batch = tokenizer(DNA_INPUTS, padding=True, return_tensors="pt",
                          pad_to_multiple_of=sparse["block"] if sparse else None)
        batch = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        if sparse:
            # DeepSpeed caches its kernels per sequence length in a class-level dict: clear it per model.
            sys.modules["deepspeed.ops.sparse_attention.sparse_self_attention"].SparseSelfAttention.ops.clear()
        tensors = run(name, model, batch)
        meta = {"reference": {"repository": GENA_REPO, "commit": commit, "file": MODELING,
                              "class": raw["architectures"][0],
                              "config_from": f"data/configs/{VARIANTS[name][0]}",
                              "tokenizer_from": TOKENIZER_DIR,
                              "changes": ["fp16 cast before DeepSpeed sparse attention disabled (fp32 reference)"]
                              if sparse else []},
                "tiny": {k: raw[k] for k in TINY}, "weights": "pytorch_model.bin (torch.save of state_dict)"}
        if sparse:
            meta["deepspeed"] = deepspeed
        write_fixture(name, DNA_INPUTS, tensors, meta)
        print(name, {k: tuple(v.shape) for k, v in tensors.items()})


if __name__ == "__main__":
    main()
