"""Golden fixtures for DNABERT-2 (MosaicBERT with ALiBi) from its authors' own hub code.

Run by hand, never in CI, in a reference venv with the transformers DNABERT-2's fine-tuning scripts pin
(MAGICS-LAB/DNABERT_2 requirements.txt: transformers 4.29.2, einops 0.6.1) and no Triton:

    python3 -m venv /work/refenv-dnabert2
    /work/refenv-dnabert2/bin/pip install torch==2.13.0 transformers==4.29.2 einops==0.6.1 "numpy<2" safetensors
    /work/refenv-dnabert2/bin/python tools/golden/dnabert2.py [--check-size]

``bert_layers.py``, ``bert_padding.py`` and ``configuration_bert.py`` are read from the fetched GitHub mirror of
the hub repository zhihan1996/DNABERT-2-117M (ashal-ali/CS224N_DNABERT2 at hub commit d064dec) and imported as a
package from a temporary folder (never copied into this repository). ``flash_attn_triton.py`` is left out, so
the code takes its own PyTorch attention path, as it does on any machine without Triton.

Fixtures written under tests/fixtures/golden/:

- ``dnabert2_117m``: the published config.json (no model_type, auto_map to bert_layers) with tiny dimensions
  and the published head count (12, not a power of two: the second ALiBi slope branch), random weights of the
  authors' ``BertForMaskedLM`` saved as ``pytorch_model.bin`` (torch.save of its state_dict), the published
  tokenizer files; expected ids from the authors' tokenizer, ``last_hidden_state`` of ``BertModel`` and MLM
  ``logits``.
- ``dnabert2_classifier``: what DNABERT_2's ``finetune/train.py`` saves: ``BertForSequenceClassification``
  (pooler + classifier, 3 labels) through ``save_pretrained`` of transformers 4.29 plus the tokenizer it saved;
  expected ``logits`` and the loss against fixed labels.

``--check-size`` builds the full-size ``BertForMaskedLM`` from the published config and prints the byte size of
``torch.save(state_dict)``: equal to the published pytorch_model.bin (468,354,983 bytes, LFS pointer in the
mirror) only if the key set is the one the tiny fixtures use.
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
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "golden"
MIRROR = Path("/work/.mirror/ashal-ali+CS224N_DNABERT2/repo")
HUB_REPO, HUB_COMMIT = "zhihan1996/DNABERT-2-117M", "d064dece8a8b41d9fb8729fbe3435278786931f1"
GITHUB_MIRROR = "ashal-ali/CS224N_DNABERT2"
SOURCES = ("bert_layers.py", "bert_padding.py", "configuration_bert.py")
TINY = {"hidden_size": 24, "num_hidden_layers": 2, "num_attention_heads": 12, "intermediate_size": 32}
PUBLISHED_BIN_BYTES = 468_354_983
# Mixed lengths (so the batch pads), a single N, a run of N.
DNA_INPUTS = [
    "ACGTTGCANNACGTAGCTAGG",
    "TTGACNAGTCCA",
    "GGGGCCCCAAAATTTTACGTNNNNNNNNACGTACGTAGCA",
    "ATGCGTACGTTAGC",
]
CLASS_LABELS = [2, 0, 1, 1]


def hub_file(path: str) -> str:
    """Text of ``path`` in the hub repository at HUB_COMMIT (read from the GitHub mirror)."""
    return subprocess.run(["git", "--git-dir", str(MIRROR), "show", f"{HUB_COMMIT}:{path}"],
                          check=True, capture_output=True, text=True).stdout


def authors_package(workdir: Path) -> Any:
    """Import the hub's modelling files as package ``dnabert2_hub`` (their relative imports need one)."""
    package = workdir / "dnabert2_hub"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for name in SOURCES:
        (package / name).write_text(hub_file(name))
    sys.path.insert(0, str(workdir))
    layers = importlib.import_module("dnabert2_hub.bert_layers")
    assert layers.flash_attn_qkvpacked_func is None, "Triton kernel imported: the reference must be the PyTorch path"
    return layers, importlib.import_module("dnabert2_hub.configuration_bert")


def randomise(model: torch.nn.Module, seed: int, std: float = 0.3) -> None:
    """N(0, std) for matrices and biases, 1 + N(0, std) for LayerNorm scales (tied tensors drawn once)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator) * std
            is_scale = param.ndim == 1 and name.endswith("weight")
            param.copy_(1.0 + noise if is_scale else noise)


def write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2) + "\n")


def write_expected(name: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    import transformers
    from safetensors.torch import save_file

    folder = FIXTURES / name
    (folder / "inputs.json").write_text(json.dumps({"sequences": DNA_INPUTS}, indent=1) + "\n")
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(folder / "expected.safetensors"))
    meta = {**meta, "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__,
            "generator": f"{Path(sys.executable).parent.parent}/bin/python tools/golden/dnabert2.py"}
    write_json(folder / "meta.json", meta)
    print(name, {k: tuple(v.shape) for k, v in tensors.items()})


def reference_meta(cls_name: str) -> dict[str, Any]:
    return {"hub_repository": HUB_REPO, "hub_commit": HUB_COMMIT, "github_mirror": GITHUB_MIRROR,
            "files": list(SOURCES), "class": cls_name,
            "attention": "PyTorch path of BertUnpadSelfAttention (flash_attn_triton.py not installed)",
            "changes": []}


def tokenizer_batch(folder: Path) -> dict[str, torch.Tensor]:
    """The authors' tokenizer as their fine-tuning script loads it (fast, right padding)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, use_fast=True, padding_side="right", model_max_length=512)
    batch = tokenizer(DNA_INPUTS, padding="longest", return_tensors="pt")
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


def masked_lm(layers: Any, config_module: Any, workdir: Path) -> None:
    published = json.loads(hub_file("config.json"))
    raw = {**published, **TINY}
    folder = FIXTURES / "dnabert2_117m" / "model"
    write_json(folder / "config.json", raw)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_text(hub_file(name))
    config = config_module.BertConfig(**raw)
    torch.manual_seed(0)
    model = layers.BertForMaskedLM(config).eval()
    randomise(model, seed=0)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    batch = tokenizer_batch(folder)
    with torch.no_grad():
        hidden, pooled = model.bert(batch["input_ids"], attention_mask=batch["attention_mask"])
        logits = model(**batch).logits
    assert pooled is None  # BertForMaskedLM's encoder has no pooler
    real = batch["attention_mask"].bool()
    write_expected("dnabert2_117m", {**batch, "last_hidden_state": hidden, "logits_at_real_tokens": logits[real]},
                   {"reference": reference_meta("BertForMaskedLM"), "tiny": TINY,
                    "weights": "pytorch_model.bin (torch.save of BertForMaskedLM.state_dict())",
                    "notes": ["logits_at_real_tokens = logits[attention_mask.bool()] (row-major over the batch)",
                              "last_hidden_state is zero at padding (the authors' pad_input)"]})


def classifier(layers: Any, config_module: Any, workdir: Path) -> None:
    """What finetune/train.py leaves in output_dir: Trainer._save -> save_pretrained of transformers 4.29."""
    from transformers import AutoTokenizer

    base = FIXTURES / "dnabert2_117m" / "model"
    config = config_module.BertConfig.from_pretrained(base, num_labels=3)
    torch.manual_seed(1)
    model = layers.BertForSequenceClassification(config).eval()
    randomise(model, seed=1)
    folder = FIXTURES / "dnabert2_classifier" / "model"
    model.save_pretrained(folder, state_dict={k: v.cpu() for k, v in model.state_dict().items()})
    AutoTokenizer.from_pretrained(base, use_fast=True, padding_side="right", model_max_length=512).save_pretrained(folder)
    batch = tokenizer_batch(folder)
    labels = torch.tensor(CLASS_LABELS)
    with torch.no_grad():
        out = model(**batch, labels=labels)
    write_expected("dnabert2_classifier", {**batch, "labels": labels, "logits": out.logits, "loss": out.loss[None]},
                   {"reference": {**reference_meta("BertForSequenceClassification"),
                                  "saved_as": "MAGICS-LAB/DNABERT_2 finetune/train.py: Trainer._save -> "
                                              "save_pretrained(state_dict=...)"},
                    "tiny": TINY, "num_labels": 3, "weights": "pytorch_model.bin written by save_pretrained"})


def check_size(layers: Any, config_module: Any) -> None:
    config = config_module.BertConfig(**json.loads(hub_file("config.json")))
    model = layers.BertForMaskedLM(config)
    with tempfile.TemporaryDirectory() as tmp:  # the zip's inner folder is named after the file: same name
        path = Path(tmp) / "pytorch_model.bin"
        torch.save(model.state_dict(), path)
        size = path.stat().st_size
    print(f"full-size BertForMaskedLM state_dict: {len(model.state_dict())} keys, {size:,} bytes "
          f"(published pytorch_model.bin: {PUBLISHED_BIN_BYTES:,}; difference {size - PUBLISHED_BIN_BYTES:+,})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check-size", action="store_true", help="compare the full-size file size and stop")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="golden-dnabert2-"))
    layers, config_module = authors_package(workdir)
    if args.check_size:
        check_size(layers, config_module)
        return
    masked_lm(layers, config_module, workdir)
    classifier(layers, config_module, workdir)


if __name__ == "__main__":
    main()
