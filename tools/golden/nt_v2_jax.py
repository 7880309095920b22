"""Golden fixture for Nucleotide Transformer v2 from InstaDeep's own JAX/Haiku implementation.

    /work/refenv-ntjax/bin/python tools/golden/nt_v2_jax.py

The NT v2 checkpoints were trained with InstaDeep's Haiku model (GitHub ``instadeepai/nucleotide-transformer``,
``nucleotide_transformer/{model,layers}.py``); the hub's PyTorch files are their port of it. This generator
runs the authors' Haiku code on the tiny checkpoints already in ``tests/fixtures/golden/nt_v2/model`` (MLM) and
``nt_v2_classifier/model`` (published PyTorch layout, HF ESM key names), so the native PyTorch implementation
is checked against the code the models were trained with, not against transformers' ESM.

* Source: the fetched mirror ``/work/.mirror/instadeepai+nucleotide-transformer/repo`` is exported at
  ``--ref`` (default HEAD) into a temporary folder outside this repository and imported from there; nothing of
  it is copied here. Environment (no torch needed)::

      python3 -m venv /work/refenv-ntjax
      /work/refenv-ntjax/bin/pip install "jax[cpu]>=0.6" "dm-haiku>=0.0.14" jmp "numpy<2" safetensors regex

* Model: ``NucleotideTransformerConfig`` with the fields ``pretrained.get_pretrained_model`` fills from an NT v2
  ``hyperparams.json`` (rotary, no learned positions, GLU with swish, no FFN bias, no key/value bias, no token
  dropout, embed_scale 1); the fields it does not fill keep the authors' defaults (pre-LayerNorm, LayerNorm
  eps 1e-5, while the hub config.json says 1e-12: see meta.json).
* Weights: PyTorch ``(out, in)`` matrices are transposed to Haiku's ``(in, out)``; every Haiku parameter is
  filled from the file and every file key is either mapped or listed as unused by the NT v2 forward.
* Inputs: the fixture's DNA strings through the authors' ``NucleotidesKmersTokenizer`` (6-mers, ``<cls>``
  first, ``N`` alone) with the v2 token ids; the generator checks that the fixture's vocab.txt is that
  vocabulary in that order. Attention: the authors' default, i.e. the mask built from ``tokens != <pad>``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "golden"
REPO = "instadeepai/nucleotide-transformer"
MIRROR = Path("/work/.mirror") / REPO.replace("/", "+") / "repo"
FILES = ["nucleotide_transformer/model.py", "nucleotide_transformer/layers.py",
         "nucleotide_transformer/tokenizers.py", "nucleotide_transformer/pretrained.py"]
LOGIT_STRIDE = 16  # MLM logits are kept for every 16th vocabulary entry (keeps the fixture small)
# Keys of the published PyTorch files that the NT v2 forward does not read (ESM leftovers, recomputed rotary
# tables, the fine-tuned head that the JAX package does not define).
UNUSED = ("esm.contact_head.", "esm.embeddings.position_embeddings.", "esm.embeddings.position_ids",
          "rotary_embeddings.inv_freq", "classifier.")


def export_mirror(ref: str, into: Path) -> str:
    """Export the mirror's tree at ``ref`` into ``into``; return the commit."""
    commit = subprocess.run(["git", "--git-dir", str(MIRROR), "rev-parse", f"{ref}^{{commit}}"],
                            check=True, capture_output=True, text=True).stdout.strip()
    archive = into / "src.tar"
    subprocess.run(["git", "--git-dir", str(MIRROR), "archive", "-o", str(archive), commit, "nucleotide_transformer"],
                   check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return commit


def hyperparams(config: dict[str, Any]) -> dict[str, Any]:
    """The NucleotideTransformerConfig arguments get_pretrained_model passes for an NT v2 model of these sizes."""
    return {
        "alphabet_size": config["vocab_size"], "pad_token_id": config["pad_token_id"],
        "mask_token_id": config["mask_token_id"], "max_positions": config["max_position_embeddings"] - 2,
        "embed_scale": 1.0, "emb_layer_norm_before": bool(config["emb_layer_norm_before"]),
        "attention_heads": config["num_attention_heads"], "embed_dim": config["hidden_size"],
        "ffn_embed_dim": config["intermediate_size"], "num_layers": config["num_hidden_layers"],
        "positional_embedding": None, "add_bias_kv": False, "add_bias_ffn": bool(config["add_bias_fnn"]),
        "use_glu_in_ffn": True, "ffn_activation_name": "swish", "use_rotary_embedding": True,
        "token_dropout": bool(config["token_dropout"]),
        "embeddings_layers_to_save": (config["num_hidden_layers"],),  # as the authors' notebook asks for them
    }


def haiku_params(state: dict[str, np.ndarray], prefix: str, layers: int, has_lm_head: bool,
                 hidden: int, vocab: int) -> tuple[dict[str, dict[str, np.ndarray]], set[str]]:
    """Haiku parameter tree from published PyTorch names; also the set of file keys used."""
    used: set[str] = set()

    def take(key: str, transpose: bool = False) -> np.ndarray:
        used.add(key)
        value = state[key].astype(np.float32)
        return value.T.copy() if transpose else value

    def linear(key: str, bias: bool = True) -> dict[str, np.ndarray]:
        out = {"w": take(f"{key}.weight", transpose=True)}
        if bias:
            out["b"] = take(f"{key}.bias")
        return out

    def norm(key: str) -> dict[str, np.ndarray]:
        return {"scale": take(f"{key}.weight"), "offset": take(f"{key}.bias")}

    ffn_bias = "esm.encoder.layer.0.intermediate.dense.bias" in state
    params = {f"{prefix}/~/embed": {"embeddings": take("esm.embeddings.word_embeddings.weight")}}
    for i in range(layers):
        src, dst = f"esm.encoder.layer.{i}", f"{prefix}/attention_layer_{i}/~"
        params[f"{dst}/self_attention_layer_norm"] = norm(f"{src}.attention.LayerNorm")
        for name in ("query", "key", "value"):
            params[f"{dst}/self_attention/{name}"] = linear(f"{src}.attention.self.{name}")
        params[f"{dst}/self_attention/mha_output"] = linear(f"{src}.attention.output.dense")
        params[f"{dst}/final_layer_norm"] = norm(f"{src}.LayerNorm")
        params[f"{dst}/fc1"] = linear(f"{src}.intermediate.dense", bias=ffn_bias)  # [gate | up] halves as stored
        params[f"{dst}/fc2"] = linear(f"{src}.output.dense", bias=ffn_bias)
    head = f"{prefix}/~/roberta_lm_head/~"
    params[f"{head}/emb_layer_norm_after"] = norm("esm.encoder.emb_layer_norm_after")
    if has_lm_head:
        params[f"{head}/lm_head_fc_1"] = linear("lm_head.dense")
        params[f"{head}/lm_head_layer_norm"] = norm("lm_head.layer_norm")
        params[f"{head}/lm_final_fc"] = {"w": take("lm_head.decoder.weight", transpose=True), "b": take("lm_head.bias")}
    else:  # a fine-tuned classifier file has no MLM head; its logits are not used
        params[f"{head}/lm_head_fc_1"] = {"w": np.zeros((hidden, hidden), np.float32), "b": np.zeros(hidden, np.float32)}
        params[f"{head}/lm_head_layer_norm"] = {"scale": np.ones(hidden, np.float32),
                                                "offset": np.zeros(hidden, np.float32)}
        params[f"{head}/lm_final_fc"] = {"w": np.zeros((hidden, vocab), np.float32), "b": np.zeros(vocab, np.float32)}
    return params, used


def check_complete(params: dict, reference: dict, state: dict[str, np.ndarray], used: set[str]) -> None:
    """Every Haiku parameter filled with the right shape; every file key mapped or known to be unused."""
    want = {(m, n): tuple(v.shape) for m, d in reference.items() for n, v in d.items()}
    have = {(m, n): tuple(v.shape) for m, d in params.items() for n, v in d.items()}
    if want != have:
        raise SystemExit(f"parameter tree mismatch: missing {sorted(set(want) - set(have))}, "
                         f"extra {sorted(set(have) - set(want))}, shapes {[(k, want[k], have[k]) for k in want if k in have and want[k] != have[k]]}")
    left = [k for k in state if k not in used and not any(u in k for u in UNUSED)]
    if left:
        raise SystemExit(f"file keys neither mapped nor known unused: {left}")


def run(model_dir: Path, sequences: list[str], prefix: str) -> dict[str, np.ndarray]:
    """The authors' tokenizer and forward on one fixture model folder."""
    import haiku as hk
    import jax
    import jax.numpy as jnp
    from nucleotide_transformer.model import NucleotideTransformerConfig, build_nucleotide_transformer_fn
    from nucleotide_transformer.tokenizers import NucleotidesKmersTokenizer, compute_tokens_to_ids_v2

    config = json.loads((model_dir / "config.json").read_text())
    tokens_to_ids, _ = compute_tokens_to_ids_v2(k_mers=6)
    vocab = (model_dir / "vocab.txt").read_text().split()
    if vocab != sorted(tokens_to_ids, key=tokens_to_ids.get):
        raise SystemExit(f"{model_dir}/vocab.txt is not the authors' v2 6-mer vocabulary in their order")
    tokenizer = NucleotidesKmersTokenizer(k_mers=6, prepend_cls_token=True, tokens_to_ids=tokens_to_ids)
    ids = np.array([t[1] for t in tokenizer.batch_tokenize(sequences)], dtype=np.int32)

    nt_config = NucleotideTransformerConfig(**hyperparams(config))
    forward = hk.transform(build_nucleotide_transformer_fn(nt_config, model_name=prefix))
    reference = forward.init(jax.random.PRNGKey(0), jnp.asarray(ids))
    state = load_file(str(model_dir / "model.safetensors"))
    params, used = haiku_params(state, prefix, config["num_hidden_layers"], "lm_head.dense.weight" in state,
                                config["hidden_size"], config["vocab_size"])
    check_complete(params, reference, state, used)
    outs = forward.apply(jax.tree_util.tree_map(jnp.asarray, params), None, jnp.asarray(ids))  # mask: ids != <pad>
    return {"input_ids": ids.astype(np.int64), "attention_mask": (ids != tokenizer.pad_token_id).astype(np.int64),
            "last_hidden_state": np.asarray(outs[f"embeddings_{config['num_hidden_layers']}"], np.float32),
            "logits": np.asarray(outs["logits"], np.float32), "config": config, "nt_config": nt_config}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", default="HEAD", help="commit of instadeepai/nucleotide-transformer to run")
    args = parser.parse_args()
    sequences = json.loads((FIXTURES / "nt_v2" / "inputs.json").read_text())["sequences"]
    with tempfile.TemporaryDirectory() as tmp:
        commit = export_mirror(args.ref, Path(tmp))
        sys.path.insert(0, tmp)
        import nucleotide_transformer

        assert Path(nucleotide_transformer.__file__).resolve().is_relative_to(Path(tmp).resolve())
        mlm = run(FIXTURES / "nt_v2" / "model", sequences, "nucleotide_transformer50M_multi_species_v2")
        clf = run(FIXTURES / "nt_v2_classifier" / "model", sequences, "nucleotide_transformer50M_multi_species_v2")
    assert (mlm["input_ids"] == clf["input_ids"]).all()
    tensors = {"input_ids": mlm["input_ids"], "attention_mask": mlm["attention_mask"],
               "last_hidden_state": mlm["last_hidden_state"],
               "mlm_logits": np.ascontiguousarray(mlm["logits"][..., ::LOGIT_STRIDE]),
               "classifier_last_hidden_state": clf["last_hidden_state"]}
    out = FIXTURES / "nt_v2_jax"
    out.mkdir(parents=True, exist_ok=True)
    (out / "inputs.json").write_text(json.dumps({"sequences": sequences}, indent=1) + "\n")
    save_file(tensors, str(out / "expected.safetensors"))
    nt_config = mlm["nt_config"]
    meta = {
        "reference": {
            "repository": f"https://github.com/{REPO}", "commit": commit, "files": FILES,
            "entry": "nucleotide_transformer.model.build_nucleotide_transformer_fn (hk.transform, fp32 policy)",
            "tokenizer": "nucleotide_transformer.tokenizers.NucleotidesKmersTokenizer(k_mers=6, "
                         "prepend_cls_token=True, tokens_to_ids=compute_tokens_to_ids_v2(6))",
            "config": {k: getattr(nt_config, k) for k in (
                "alphabet_size", "pad_token_id", "embed_dim", "num_layers", "attention_heads", "key_size",
                "ffn_embed_dim", "positional_embedding", "use_rotary_embedding", "use_glu_in_ffn",
                "ffn_activation_name", "add_bias_ffn", "add_bias_kv", "pre_layer_norm", "layer_norm_eps",
                "emb_layer_norm_before", "token_dropout", "embed_scale")},
            "notes": [
                "The authors' LayerNorms use eps 1e-5 (NucleotideTransformerConfig default, which "
                "get_pretrained_model does not override; emb_layer_norm_after and lm_head_layer_norm use "
                "Haiku's default 1e-5); the hub config.json says layer_norm_eps 1e-12, which the PyTorch port "
                "(and dnalm) use.",
                "Attention mask: the authors' default, built from tokens != <pad> for queries and keys; a "
                "padded query attends uniformly and its outputs are meaningless (logits zeroed); compare at "
                "real tokens only.",
                "The JAX package has no sequence-classification head: classifier_last_hidden_state checks the "
                "fine-tuned classifier's encoder (tests/fixtures/golden/nt_v2_classifier/model); its "
                "EsmClassificationHead is checked by the nt_v2_classifier fixture.",
            ],
        },
        "model": "../nt_v2/model",
        "models": {"last_hidden_state": "../nt_v2/model", "mlm_logits": "../nt_v2/model",
                   "classifier_last_hidden_state": "../nt_v2_classifier/model"},
        "mlm_logits": f"logits[..., ::{LOGIT_STRIDE}] (every {LOGIT_STRIDE}th vocabulary entry)",
        "weights": "PyTorch (out, in) -> Haiku (in, out) transpose; every Haiku parameter from the file; unused "
                   "file keys: " + ", ".join(UNUSED),
        "python": platform.python_version(),
        **{name: importlib.metadata.version(name) for name in ("jax", "jaxlib", "dm-haiku", "jmp", "numpy")},
        "generator": "/work/refenv-ntjax/bin/python tools/golden/nt_v2_jax.py",
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(out, {k: v.shape for k, v in tensors.items()})


if __name__ == "__main__":
    main()
