"""Shared helpers of the golden-fixture generators (run in a reference venv, never imported by dnalm or CI).

Each generator builds a tiny model with its authors' code, randomises every parameter (LayerNorm included),
saves it in the published hub layout, runs the reference forward on a few DNA strings (padding and N included)
and writes ``inputs.json``, ``expected.safetensors`` and ``meta.json`` beside ``model/``.
"""

from __future__ import annotations

import importlib.util
import json
import platform
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "golden"
MIRRORS = Path("/work/.mirror")

# Mixed lengths (so the batch pads), N inside, a run of N, lower case avoided (tokenizers differ there).
DNA_INPUTS = [
    "ACGTTGCANNACGTAGCTAGGCTTACGATCGATCGGATCCA",
    "TTGACNAGTCCA",
    "GGGGCCCCAAAATTTTACGTNNNNNNNNNNNNACGTACGTAGCATGCA",
    "ATGCGTACGTTAGC",
]


def mirror_source(repo: str, path: str, ref: str = "HEAD") -> tuple[str, str]:
    """(text, commit) of ``path`` in the fetched mirror of GitHub ``repo`` (owner/name) at ``ref``."""
    git_dir = MIRRORS / repo.replace("/", "+") / "repo"
    commit = subprocess.run(["git", "--git-dir", str(git_dir), "rev-parse", f"{ref}^{{commit}}"],
                            check=True, capture_output=True, text=True).stdout.strip()
    text = subprocess.run(["git", "--git-dir", str(git_dir), "show", f"{commit}:{path}"],
                          check=True, capture_output=True, text=True).stdout
    return text, commit


def module_from_source(name: str, text: str, workdir: Path) -> types.ModuleType:
    """Import ``text`` as module ``name`` (written to ``workdir``, outside the repository)."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"{name.replace('.', '_')}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def randomise(model: torch.nn.Module, seed: int, std: float = 0.3) -> None:
    """Random weights everywhere: N(0, std) for matrices and biases, 1 + N(0, std) for LayerNorm/RMSNorm scales."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator) * std
            is_scale = param.ndim == 1 and name.endswith("weight")  # LayerNorm / RMSNorm scales
            param.copy_(1.0 + noise if is_scale else noise)


def tokenize(tokenizer: Any, texts: list[str]) -> dict[str, torch.Tensor]:
    """Right-padded batch of ``texts`` with the reference tokenizer."""
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


def write_fixture(name: str, inputs: list[str], tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write inputs.json, expected.safetensors (contiguous fp32/int64) and meta.json for fixture ``name``."""
    folder = FIXTURES / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "inputs.json").write_text(json.dumps({"sequences": inputs}, indent=1) + "\n")
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(folder / "expected.safetensors"))
    import transformers

    meta = {
        **meta,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "generator": f"{Path(sys.executable).parent.parent}/bin/python tools/golden/{Path(sys.argv[0]).name}",
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    return folder


def save_bin(state: dict[str, torch.Tensor], folder: Path) -> None:
    """``pytorch_model.bin`` as the old ``save_pretrained`` wrote it: every tensor of the state dict."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().clone().contiguous() for k, v in state.items()}, folder / "pytorch_model.bin")


def write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2) + "\n")
