"""Golden fixtures for Caduceus (PH and PS) from the authors' code, run on CPU.

Run by hand, never in CI, in a separate environment with the transformers the authors wrote for::

    python3 -m venv /work/refenv-caduceus
    /work/refenv-caduceus/bin/pip install torch==2.13.0 transformers==4.38.1 einops "numpy<2" safetensors
    /work/refenv-caduceus/bin/python tools/golden/caduceus.py            # writes tests/fixtures/golden/caduceus*/

The authors' model code (``caduceus/*.py`` of kuleshov-group/caduceus) imports ``mamba_ssm`` and
``causal_conv1d``, whose CUDA/Triton kernels cannot be built or run without a GPU. This script writes a stand-in
``mamba_ssm`` / ``causal_conv1d`` package into a temporary folder, made of the Mamba authors' own code read
from the git mirrors at the versions Caduceus pins (``caduceus_env.yml``: mamba-ssm 1.2.0.post1,
causal-conv1d 1.2.0.post2): ``mamba_simple.py`` as it is, and in place of each kernel its pure-PyTorch
reference from the same release (``selective_scan_ref``, ``mamba_inner_ref``, ``causal_conv1d_ref``,
``rms_norm_ref``/``layer_norm_ref`` with ``RMSNorm``). The only code written here is the glue that gives the
reference norms the fused kernels' calling convention (``residual_in_fp32``). Nothing of theirs is committed:
only config.json, weights, tokenizer files, inputs and outputs.
"""

from __future__ import annotations

import argparse
import ast
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

CADUCEUS_COMMIT = "0060a6d8079b6a040fc55d505e15972a327b70a6"
MAMBA_TAG, CONV_TAG = "v1.2.0.post1", "v1.2.0.post2"
CADUCEUS_FILES = ("configuration_caduceus.py", "modeling_caduceus.py", "modeling_rcps.py", "tokenization_caduceus.py")
AUTO_MAP = {
    "AutoConfig": "configuration_caduceus.CaduceusConfig",
    "AutoModel": "modeling_caduceus.Caduceus",
    "AutoModelForMaskedLM": "modeling_caduceus.CaduceusForMaskedLM",
    "AutoModelForSequenceClassification": "modeling_caduceus.CaduceusForSequenceClassification",
}
TOKENIZER_AUTO_MAP = {"AutoTokenizer": ["tokenization_caduceus.CaduceusTokenizer", None]}
# The published ssm_cfg of every caduceus-ph/ps checkpoint.
SSM_CFG = {"bias": False, "conv_bias": True, "d_conv": 4, "d_state": 16, "dt_init": "random", "dt_init_floor": 0.0001,
           "dt_max": 0.1, "dt_min": 0.001, "dt_rank": "auto", "dt_scale": 1.0, "expand": 2, "use_fast_path": True}
# Three records of different lengths (padding), with N and lower case.
INPUTS = [
    "ACGTTGCANNGTACCGTAAGCTTAGCcgatATGCGTACGTTAGCAA",
    "TTGACNAGGCATTACGGATCAGTA",
    "GGGCCCATATNNACGTACGTAAACCCGGGTTTATG",
]


def git_show(git_dir: Path, rev: str, path: str) -> str:
    """One file of a bare mirror at a revision."""
    return subprocess.run(["git", "--git-dir", str(git_dir), "show", f"{rev}:{path}"], check=True,
                          capture_output=True, text=True).stdout


def git_commit(git_dir: Path, rev: str) -> str:
    return subprocess.run(["git", "--git-dir", str(git_dir), "rev-parse", f"{rev}^{{commit}}"], check=True,
                          capture_output=True, text=True).stdout.strip()


def definitions(source: str, names: tuple[str, ...]) -> str:
    """The source text of the named top-level functions/classes, in file order."""
    tree = ast.parse(source)
    lines = source.splitlines()
    found = {node.name: "\n".join(lines[node.lineno - 1 - len(node.decorator_list):node.end_lineno])
             for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in names}
    missing = set(names) - set(found)
    if missing:
        raise SystemExit(f"not found in the reference source: {sorted(missing)}")
    return "\n\n\n".join(found[name] for name in names)


def write_stub(root: Path, mamba_git: Path, conv_git: Path) -> None:
    """``mamba_ssm`` and ``causal_conv1d`` whose kernels are the authors' pure-PyTorch references."""
    scan_src = git_show(mamba_git, MAMBA_TAG, "mamba_ssm/ops/selective_scan_interface.py")
    norm_src = git_show(mamba_git, MAMBA_TAG, "mamba_ssm/ops/triton/layernorm.py")
    conv_src = git_show(conv_git, CONV_TAG, "causal_conv1d/causal_conv1d_interface.py")
    files = {
        "causal_conv1d/__init__.py": "import torch\nimport torch.nn.functional as F\n\n\n"
        + definitions(conv_src, ("causal_conv1d_ref",))
        + "\n\n\ncausal_conv1d_fn = causal_conv1d_ref\ncausal_conv1d_update = None\n",
        "mamba_ssm/__init__.py": "",
        "mamba_ssm/modules/__init__.py": "",
        "mamba_ssm/modules/mamba_simple.py": git_show(mamba_git, MAMBA_TAG, "mamba_ssm/modules/mamba_simple.py"),
        "mamba_ssm/ops/__init__.py": "",
        "mamba_ssm/ops/selective_scan_interface.py": "import torch\nimport torch.nn.functional as F\n"
        "from einops import rearrange, repeat\nfrom causal_conv1d import causal_conv1d_fn\n\n\n"
        + definitions(scan_src, ("selective_scan_ref", "mamba_inner_ref"))
        + "\n\n\nselective_scan_fn = selective_scan_ref\nmamba_inner_fn = mamba_inner_ref\n",
        "mamba_ssm/ops/triton/__init__.py": "",
        "mamba_ssm/ops/triton/layernorm.py": "import torch\nimport torch.nn.functional as F\n\n\n"
        + definitions(norm_src, ("layer_norm_ref", "rms_norm_ref", "RMSNorm"))
        + "\n\n\n" + NORM_GLUE,
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


# The fused Triton kernels compute in float32 and return the residual in float32 when residual_in_fp32.
NORM_GLUE = '''
def _fused(ref, x, weight, bias, residual, eps, prenorm, residual_in_fp32):
    out, summed = ref(x, weight, bias, residual=residual, eps=eps, prenorm=True, upcast=True)
    summed = summed.float() if residual_in_fp32 else summed.to(x.dtype)
    return (out.to(x.dtype), summed) if prenorm else out.to(x.dtype)


def layer_norm_fn(x, weight, bias, residual=None, eps=1e-6, prenorm=False, residual_in_fp32=False, is_rms_norm=False):
    ref = rms_norm_ref if is_rms_norm else layer_norm_ref
    return _fused(ref, x, weight, bias, residual, eps, prenorm, residual_in_fp32)


def rms_norm_fn(x, weight, bias, residual=None, prenorm=False, residual_in_fp32=False, eps=1e-6):
    return _fused(rms_norm_ref, x, weight, bias, residual, eps, prenorm, residual_in_fp32)
'''


def write_caduceus_package(root: Path, caduceus_git: Path) -> None:
    package = root / "caduceus_ref"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    for name in CADUCEUS_FILES:
        (package / name).write_text(git_show(caduceus_git, CADUCEUS_COMMIT, f"caduceus/{name}"))


def randomise(model, seed: int) -> None:
    """Random values everywhere (norm weights around 1, A_log and dt bias in their trained ranges)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=gen)
            if name.endswith("norm.weight") or "norm_f" in name or name.endswith("norm.submodule.weight"):
                param.copy_(1.0 + 0.3 * noise)
            elif name.endswith("A_log"):
                param.copy_(torch.log(torch.rand(param.shape, generator=gen) * 15 + 0.5))
            elif name.endswith("dt_proj.bias"):
                param.copy_(-3.0 + noise)
            elif name.endswith(".D"):
                param.copy_(1.0 + 0.5 * noise)
            elif param.dim() >= 2 and "embedding" not in name and "word_embeddings" not in name:
                param.copy_(noise / param[0].numel() ** 0.5)  # unit-scale activations, as trained weights give
            else:
                param.copy_(noise * 0.5)


def save_published(model, tokenizer, folder: Path, architecture: str) -> None:
    """save_pretrained, then the remote-code fields the hub files carry."""
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"], config["architectures"] = AUTO_MAP, [architecture]
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    tok_config = json.loads((folder / "tokenizer_config.json").read_text())
    tok_config["auto_map"] = TOKENIZER_AUTO_MAP
    (folder / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2, sort_keys=True) + "\n")
    for stray in folder.glob("*.py"):
        stray.unlink()


def run_variant(name: str, rcps: bool, fused: bool, out_root: Path, meta: dict, seed: int) -> None:
    import torch
    from caduceus_ref.configuration_caduceus import CaduceusConfig
    from caduceus_ref.modeling_caduceus import CaduceusForMaskedLM, CaduceusForSequenceClassification
    from caduceus_ref.tokenization_caduceus import CaduceusTokenizer
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    tokenizer = CaduceusTokenizer(model_max_length=131072)
    config = CaduceusConfig(d_model=16, n_layer=2, vocab_size=tokenizer.vocab_size, ssm_cfg=dict(SSM_CFG),
                            rms_norm=True, residual_in_fp32=False, fused_add_norm=fused, bidirectional=True,
                            bidirectional_strategy="add", bidirectional_weight_tie=True, rcps=rcps,
                            complement_map=dict(tokenizer.complement_map),
                            initializer_cfg={"initializer_range": 0.02, "n_residuals_per_layer": 1,
                                             "rescale_prenorm_residual": True})
    model = CaduceusForMaskedLM(config).eval()
    randomise(model, seed)
    model.tie_weights()
    folder = out_root / name
    save_published(model, tokenizer, folder / "model", "CaduceusForMaskedLM")

    batch = tokenizer(INPUTS, padding=True, return_attention_mask=True, return_tensors="pt")
    expected = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    with torch.no_grad():
        out = model(batch["input_ids"], output_hidden_states=True)
        expected["batch_logits"] = out.logits
        expected["batch_last_hidden_state"] = model.caduceus(batch["input_ids"]).last_hidden_state
        if fused:  # the authors' unfused path leaves the final output out of hidden_states
            for i, hidden in enumerate(out.hidden_states):
                expected[f"batch_hidden_states_{i}"] = hidden
        for i, seq in enumerate(INPUTS):
            ids = tokenizer(seq, return_tensors="pt")["input_ids"]
            single = model(ids)
            expected[f"seq{i}_input_ids"] = ids[0]
            expected[f"seq{i}_logits"] = single.logits[0]
            expected[f"seq{i}_last_hidden_state"] = model.caduceus(ids).last_hidden_state[0]

    # The head of a fine-tuned classifier: the same backbone, CaduceusForSequenceClassification's `score`.
    classifier = CaduceusForSequenceClassification.from_pretrained(folder / "model", num_labels=3).eval()
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        classifier.score.weight.copy_(torch.randn(classifier.score.weight.shape, generator=gen))
        expected["classifier_batch_logits"] = classifier(batch["input_ids"]).logits
        for i, seq in enumerate(INPUTS):
            ids = tokenizer(seq, return_tensors="pt")["input_ids"]
            expected[f"classifier_seq{i}_logits"] = classifier(ids).logits[0]
    classifier.config.id2label = {0: "a", 1: "b", 2: "c"}
    classifier.config.label2id = {"a": 0, "b": 1, "c": 2}
    save_published(classifier, tokenizer, folder / "classifier", "CaduceusForSequenceClassification")
    if not rcps:
        # Post-hoc conjoining as the authors' data loaders feed it: (batch, length, 2) ids, the second channel the
        # tokenized reverse complement (their genomic-benchmark loaders: no special tokens, left padding).
        from src_rc import string_reverse_complement

        conjoined = CaduceusForSequenceClassification.from_pretrained(folder / "classifier", conjoin_eval=True).eval()
        fwd = tokenizer(INPUTS, padding=True, add_special_tokens=False, return_attention_mask=True,
                        return_tensors="pt")
        rc = tokenizer([string_reverse_complement(s) for s in INPUTS], padding=True, add_special_tokens=False,
                       return_tensors="pt")
        ids = torch.stack([fwd["input_ids"], rc["input_ids"]], dim=-1)
        with torch.no_grad():
            expected["conjoin_input_ids"] = ids
            expected["conjoin_attention_mask"] = fwd["attention_mask"]
            expected["conjoin_logits"] = conjoined(ids).logits
    save_file({k: v.contiguous() for k, v in expected.items()}, folder / "expected.safetensors")
    (folder / "inputs.json").write_text(json.dumps({"sequences": INPUTS, "padding_side": tokenizer.padding_side},
                                                   indent=2) + "\n")
    (folder / "meta.json").write_text(json.dumps({**meta, "variant": name, "rcps": rcps, "fused_add_norm": fused,
                                                  "seed": seed}, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mirrors = Path("/work/.mirror")
    parser.add_argument("--caduceus-git", type=Path, default=mirrors / "kuleshov-group+caduceus/repo")
    parser.add_argument("--mamba-git", type=Path, default=mirrors / "state-spaces+mamba/repo")
    parser.add_argument("--causal-conv1d-git", type=Path, default=mirrors / "Dao-AILab+causal-conv1d/repo")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "tests/fixtures/golden")
    args = parser.parse_args()

    import torch
    import transformers

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_stub(root, args.mamba_git, args.causal_conv1d_git)
        write_caduceus_package(root, args.caduceus_git)
        # string_reverse_complement, as the authors' data loaders build the RC strand for conjoining
        (root / "src_rc.py").write_text(git_show(args.caduceus_git, CADUCEUS_COMMIT, "src/dataloaders/utils/rc.py"))
        sys.path.insert(0, str(root))
        torch.set_num_threads(1)
        meta = {
            "reference": {
                "repository": "https://github.com/kuleshov-group/caduceus",
                "commit": git_commit(args.caduceus_git, CADUCEUS_COMMIT),
                "files": [f"caduceus/{name}" for name in CADUCEUS_FILES] + ["src/dataloaders/utils/rc.py"],
            },
            "kernels_replaced_by_references": {
                "note": "mamba_ssm / causal_conv1d need CUDA; a stand-in package was built from the Mamba authors' "
                        "own code at the versions Caduceus pins: mamba_simple.py unchanged, selective_scan_fn = "
                        "selective_scan_ref, mamba_inner_fn = mamba_inner_ref, causal_conv1d_fn = causal_conv1d_ref, "
                        "Triton rms_norm_fn/layer_norm_fn = rms_norm_ref/layer_norm_ref (upcast, float32 residual "
                        "when residual_in_fp32), RMSNorm class unchanged",
                "mamba_ssm": {"repository": "https://github.com/state-spaces/mamba", "tag": MAMBA_TAG,
                              "commit": git_commit(args.mamba_git, MAMBA_TAG),
                              "files": ["mamba_ssm/modules/mamba_simple.py",
                                        "mamba_ssm/ops/selective_scan_interface.py (selective_scan_ref, mamba_inner_ref)",
                                        "mamba_ssm/ops/triton/layernorm.py (layer_norm_ref, rms_norm_ref, RMSNorm)"]},
                "causal_conv1d": {"repository": "https://github.com/Dao-AILab/causal-conv1d", "tag": CONV_TAG,
                                  "commit": git_commit(args.causal_conv1d_git, CONV_TAG),
                                  "files": ["causal_conv1d/causal_conv1d_interface.py (causal_conv1d_ref)"]},
            },
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "generator": "/work/refenv-caduceus/bin/python tools/golden/caduceus.py",
            "dtype": "float32",
        }
        run_variant("caduceus_ph", rcps=False, fused=True, out_root=args.out, meta=meta, seed=11)
        run_variant("caduceus_ps", rcps=True, fused=True, out_root=args.out, meta=meta, seed=12)
        run_variant("caduceus_ps_unfused", rcps=True, fused=False, out_root=args.out, meta=meta, seed=13)


if __name__ == "__main__":
    main()
