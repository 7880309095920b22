"""Golden fixtures for dnalm's native HyenaDNA, computed by the authors' own code (run by hand, never in CI).

The reference is the Hugging Face port the ``LongSafari/hyenadna-*-seqlen-hf`` repositories ship
(``modeling_hyena.py`` + ``configuration_hyena.py``), read at generation time from a git mirror of a public
copy, and the character tokenizer of ``HazyResearch/hyena-dna`` (``standalone_hyenadna.py``). Nothing of
theirs is written into the fixtures except data: tiny random weights saved by their ``save_pretrained`` in
the published layout, the inputs, and their outputs.

Run in a separate environment with the transformers the port was written for::

    python3 -m venv /work/refenv-hyena
    /work/refenv-hyena/bin/pip install torch==2.13.0 transformers==4.36.2 "numpy<2.3" safetensors
    /work/refenv-hyena/bin/python tools/golden/hyenadna.py \\
        --modeling-repo /work/.mirror/shubhamtkr+checkpoint-62500/repo --modeling-commit 22f96459d32d1b300fc75b225c53495e7a96ec2b \\
        --tokenizer-repo /work/.mirror/HazyResearch+hyena-dna/repo --tokenizer-commit d553021b483b82980aa4b868b37ec2d4332e198a \\
        --tokenizer-python /work/refenv-hyena-tok/bin/python   # python3 -m venv; pip install transformers==4.33.3
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import transformers
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "golden"
SEQUENCES = ["ACGTACGGTNACGTTAGCCAT", "GGGCCCAAATTTN", "TTAGACCATGACNNACGTAGGCTAAGCTTAGC", "CATG"]
LABELS = [2, 0, 1, 2]
CHARACTERS = ["A", "C", "G", "T", "N"]
AUTO_MAP = {
    "AutoConfig": "configuration_hyena.HyenaConfig",
    "AutoModel": "modeling_hyena.HyenaDNAModel",
    "AutoModelForCausalLM": "modeling_hyena.HyenaDNAForCausalLM",
    "AutoModelForSequenceClassification": "modeling_hyena.HyenaDNAForSequenceClassification",
}


def git_show(repo: str, commit: str, path: str) -> str:
    """A file of the reference repository at ``commit``."""
    return subprocess.run(["git", f"--git-dir={repo}", "show", f"{commit}:{path}"], check=True,
                          capture_output=True, text=True).stdout


def import_reference(repo: str, commit: str) -> tuple:
    """Import the hub port as a package from a temporary folder (its modeling file imports ``.configuration_hyena``)."""
    package = Path(tempfile.mkdtemp()) / "hyena_ref"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in ("configuration_hyena.py", "modeling_hyena.py"):
        (package / name).write_text(git_show(repo, commit, name))
    sys.path.insert(0, str(package.parent))
    return importlib.import_module("hyena_ref.configuration_hyena"), importlib.import_module("hyena_ref.modeling_hyena")


TOKENIZER_SCRIPT = """
import json, os, sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union
from transformers.tokenization_utils import AddedToken, PreTrainedTokenizer
source = sys.stdin.read()
exec(compile(source[source.index("class CharacterTokenizer"):], "standalone_hyenadna.py", "exec"))
tok = CharacterTokenizer(characters=json.loads(sys.argv[1]), model_max_length=64)
print(json.dumps({"ids": [tok(s, add_special_tokens=False)["input_ids"] for s in json.loads(sys.argv[2])],
                  "sep": tok.sep_token_id, "pad": tok.pad_token_id, "transformers": __import__("transformers").__version__}))
"""


def reference_token_ids(repo: str, commit: str, python: str) -> dict:
    """Character ids from the authors' CharacterTokenizer, cut out of standalone_hyenadna.py (its model part needs
    torchvision) and run by ``python``: an environment with the transformers it was written for (<= 4.33; later
    versions call get_vocab before the tokenizer has its vocabulary)."""
    source = git_show(repo, commit, "standalone_hyenadna.py")
    result = subprocess.run([python, "-c", TOKENIZER_SCRIPT, json.dumps(CHARACTERS), json.dumps(SEQUENCES)],
                            input=source, check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def token_ids(reference: dict) -> tuple[torch.Tensor, torch.Tensor, list[list[int]]]:
    """Right-padded ids: the authors' character ids, then ``[SEP]`` as the hub tokenizer appends (no ``[CLS]``)."""
    rows = [ids + [reference["sep"]] for ids in reference["ids"]]
    width = max(map(len, rows))
    pad = reference["pad"]
    ids = torch.tensor([row + [pad] * (width - len(row)) for row in rows])
    mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in rows])
    return ids, mask, rows


def perturb(model: torch.nn.Module, seed: int) -> None:
    """Move every parameter (norms, filter features and frequencies included) off its initial value."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.2 * torch.randn(param.shape, generator=generator))


def write_tokenizer_files(folder: Path, max_length: int) -> None:
    """tokenizer_config.json / special_tokens_map.json in the layout of the published -hf repositories."""
    specials = {"bos_token": "[BOS]", "cls_token": "[CLS]", "eos_token": "[SEP]", "mask_token": "[MASK]",
                "pad_token": "[PAD]", "sep_token": "[SEP]", "unk_token": "[UNK]"}
    config = {**specials, "auto_map": {"AutoTokenizer": ["tokenization_hyena.CharacterTokenizer", None]},
              "characters": CHARACTERS, "model_max_length": max_length, "padding_side": "left",
              "tokenizer_class": "CharacterTokenizer"}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    (folder / "special_tokens_map.json").write_text(json.dumps(specials, indent=2) + "\n")


def finish_config(folder: Path) -> None:
    """Name the remote code the way the published config.json does."""
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config["auto_map"] = AUTO_MAP
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def generate(name: str, classifier: bool, args: argparse.Namespace, conf, modeling, tokenizer) -> None:
    folder = OUT / name
    (folder / "model").mkdir(parents=True, exist_ok=True)
    config = conf.HyenaConfig(vocab_size=12, d_model=16, d_inner=40, n_layer=2, max_seq_len=48, emb_dim=5,
                              filter_order=12, activation_freq=10, num_inner_mlps=2, pad_vocab_size_multiple=8,
                              tie_word_embeddings=False)  # as in the published config.json
    torch.manual_seed(0)
    if classifier:
        config.num_labels = 3
        config.pad_token_id = tokenizer["pad"]
        config.problem_type = "single_label_classification"
        model = modeling.HyenaDNAForSequenceClassification(config)
    else:
        model = modeling.HyenaDNAForCausalLM(config)
    perturb(model, seed=1 if classifier else 2)
    model.eval()
    # The published base checkpoints are safetensors; fine-tuned classifiers are often pytorch_model.bin.
    model.save_pretrained(folder / "model", safe_serialization=not classifier)
    finish_config(folder / "model")
    write_tokenizer_files(folder / "model", config.max_seq_len - 2)

    ids, mask, rows = token_ids(tokenizer)
    with torch.no_grad():
        if classifier:
            out = model(ids, labels=torch.tensor(LABELS), output_hidden_states=True, return_dict=True)
            expected = {"logits": out.logits, "loss": out.loss.reshape(1),
                        "last_hidden_state": out.hidden_states[-1]}
        else:
            out = model(ids, output_hidden_states=True, return_dict=True)
            expected = {"logits": out.logits, "last_hidden_state": out.hidden_states[-1],
                        "hidden_states": torch.stack(out.hidden_states)}
    expected.update({"input_ids": ids, "attention_mask": mask})
    save_file({k: v.contiguous() for k, v in expected.items()}, str(folder / "expected.safetensors"))
    inputs = {"sequences": SEQUENCES, "padding": "right, [PAD]=4; [SEP] appended", "ids": rows}
    if classifier:
        inputs["labels"] = LABELS
    (folder / "inputs.json").write_text(json.dumps(inputs) + "\n")
    meta = {
        "family": "hyenadna",
        "model_class": type(model).__name__,
        "reference": {
            "modeling": {"repository": "github.com/shubhamtkr/checkpoint-62500", "commit": args.modeling_commit,
                         "files": ["modeling_hyena.py", "configuration_hyena.py"],
                         "note": "a public copy of the LongSafari/hyenadna-*-seqlen-hf remote code"},
            "tokenizer": {"repository": "github.com/HazyResearch/hyena-dna", "commit": args.tokenizer_commit,
                          "files": ["standalone_hyenadna.py (CharacterTokenizer)"],
                          "note": "character ids from this tokenizer (add_special_tokens=False), then [SEP] "
                                  "appended as the hub tokenizer does; tokenizer_config.json is written in the "
                                  "hub layout by the generator"},
        },
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "transformers_tokenizer": tokenizer["transformers"]},
        "generator": "tools/golden/hyenadna.py (see its docstring for the command)",
        "weights": "torch.manual_seed(0) init by the reference, every parameter + 0.2 N(0,1)",
        "compare": "fp32 at real tokens (attention_mask == 1), atol 1e-4",
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {folder}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modeling-repo", required=True)
    parser.add_argument("--modeling-commit", required=True)
    parser.add_argument("--tokenizer-repo", required=True)
    parser.add_argument("--tokenizer-commit", required=True)
    parser.add_argument("--tokenizer-python", required=True, help="python of an environment with transformers<=4.33")
    args = parser.parse_args()
    conf, modeling = import_reference(args.modeling_repo, args.modeling_commit)
    tokenizer = reference_token_ids(args.tokenizer_repo, args.tokenizer_commit, args.tokenizer_python)
    generate("hyenadna", False, args, conf, modeling, tokenizer)
    generate("hyenadna_classifier", True, args, conf, modeling, tokenizer)


if __name__ == "__main__":
    main()
