"""Max abs differences between dnalm's native NT v2 and InstaDeep's JAX code (fixture ``nt_v2_jax``).

    PYTHONPATH=$PWD python tools/golden/nt_v2_jax_gap.py      # in the project venv (torch, dnalm)

Prints, at real tokens, fp32, for each reference output, the difference with the LayerNorm eps of the hub
config.json (1e-12) and with the authors' JAX eps (1e-5), then the difference between the transformers-ESM
fixtures (nt_v2, nt_v2_classifier) and the JAX outputs; docs/native_models.md quotes these numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from dnalm.models.families import load_native

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "golden"


def _outputs(model_dir: Path, head: str, ids: torch.Tensor, mask: torch.Tensor, eps: float | None) -> torch.Tensor:
    model = load_native(str(model_dir), head).eval()
    if eps is not None:
        for module in model.modules():
            if isinstance(module, nn.LayerNorm):
                module.eps = eps
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    return out.logits if head == "mlm" else out.last_hidden_state


def main() -> None:
    folder = FIXTURES / "nt_v2_jax"
    meta = json.loads((folder / "meta.json").read_text())
    expected = load_file(str(folder / "expected.safetensors"))
    ids, mask = expected["input_ids"], expected["attention_mask"]
    real = mask.bool()
    stride = 16
    checks = {"last_hidden_state": ("base", lambda t: t), "mlm_logits": ("mlm", lambda t: t[..., ::stride]),
              "classifier_last_hidden_state": ("base", lambda t: t)}
    print(f"reference: {meta['reference']['repository']} @ {meta['reference']['commit'][:12]}")
    for key, (head, select) in checks.items():
        model_dir = (folder / meta["models"][key]).resolve()
        gaps = []
        for eps in (None, 1e-5):
            actual = select(_outputs(model_dir, head, ids, mask, eps))
            gaps.append((actual[real] - expected[key][real]).abs().max().item())
        scale = expected[key][real].abs().max().item()
        print(f"{key:30s} published eps 1e-12: {gaps[0]:.2e}   authors' eps 1e-5: {gaps[1]:.2e}   "
              f"(max |value| {scale:.2f})")
    # the transformers-ESM reading (fixtures nt_v2, nt_v2_classifier; eps 1e-12) against the same JAX outputs
    for name, key in (("nt_v2", "last_hidden_state"), ("nt_v2_classifier", "classifier_last_hidden_state")):
        other = load_file(str(FIXTURES / name / "expected.safetensors"))["last_hidden_state"]
        gap = (other[real] - expected[key][real]).abs().max().item()
        print(f"fixture {name} (transformers ESM + gated FFN, eps 1e-12) vs JAX {key}: {gap:.2e}")


if __name__ == "__main__":
    main()
