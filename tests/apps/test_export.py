"""dnalm.export: a fine-tuned run as a folder that transformers (or dnalm) loads with the same probabilities."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers.exports import export_to, predict_probs, transformers_probs


def test_merged_native_head_loads_in_plain_transformers_with_dnalm_probabilities(native_lora_run: Path,
                                                                                   tmp_path: Path) -> None:
    state = torch.load(native_lora_run, map_location="cpu", weights_only=True)["state_dict"]
    assert any("classifier" in k and "out_proj" in k for k in state), "LoRA must train and save the native head"
    out = export_to(tmp_path, native_lora_run)
    assert (out / "model.safetensors").is_file() and not (out / "adapter_config.json").exists()
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "0", "1": "1"} and config["architectures"] == ["EsmForSequenceClassification"]
    expected = predict_probs(tmp_path / "p1", f"ckpt_path={native_lora_run}")
    got = transformers_probs(out)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.abs(expected[:, 1] - 0.5).max() > 1e-3  # a trained head, not a coin: the comparison can fail
    card = (out / "README.md").read_text()
    assert "AutoModelForSequenceClassification" in card and "| test | accuracy |" in card
    assert "Base model: `" in card and "/base`" in card


def test_adapter_export_reloads_with_dnalm(native_lora_run: Path, tmp_path: Path) -> None:
    out = export_to(tmp_path, native_lora_run, "merge=false")
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert Path(adapter["base_model_name_or_path"]).name == "base"
    assert not (out / "model.safetensors").exists()
    expected = predict_probs(tmp_path / "p1", f"ckpt_path={native_lora_run}")
    got = predict_probs(tmp_path / "p2", "model=hf", f"model.name_or_path={out}", "head=native")
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_pooled_head_exports_in_dnalm_layout_and_reloads(pooled_run: Path, tmp_path: Path) -> None:
    out = export_to(tmp_path, pooled_run)
    assert (out / "dnalm_head.safetensors").is_file()
    assert "cannot reproduce the classifier" in (out / "README.md").read_text()
    expected = predict_probs(tmp_path / "p1", f"ckpt_path={pooled_run}")
    got = predict_probs(tmp_path / "p2", "model=hf", f"model.name_or_path={out}", "head=native")
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.abs(expected[:, 1] - 0.5).max() > 1e-3


def test_merge_false_without_adapter_is_a_clear_error(pooled_run: Path, tmp_path: Path) -> None:
    from dnalm.errors import ConfigError

    with pytest.raises(ConfigError, match="merge=false writes a LoRA adapter"):
        export_to(tmp_path, pooled_run, "merge=false")


def test_push_to_hub_uploads_the_folder(pooled_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import HfApi

    calls = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: calls.append(("create", repo_id)))
    monkeypatch.setattr(HfApi, "upload_folder", lambda self, **kw: calls.append(("upload", kw["repo_id"],
                                                                                   sorted(Path(kw["folder_path"]).iterdir()))))
    export_to(tmp_path, pooled_run, "push_to_hub=true", "repo_id=lab/gc-model")
    assert calls[0] == ("create", "lab/gc-model")
    assert calls[1][1] == "lab/gc-model" and tmp_path / "exported" / "README.md" in calls[1][2]


def test_push_without_network_is_one_line(pooled_run: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).parents[2]), "PATH": "/usr/bin:/bin",
           "HF_HOME": str(tmp_path / "hf")}
    proc = subprocess.run([sys.executable, "-m", "dnalm.export", f"ckpt_path={pooled_run}",
                           f"output={tmp_path / 'out'}", "push_to_hub=true", "repo_id=lab/x",
                           f"hydra.run.dir={tmp_path / 'run'}"], capture_output=True, text=True, env=env)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert errors[-1].startswith("dnalm: error: could not push") and "Traceback" not in proc.stderr
    assert (tmp_path / "out" / "README.md").is_file()


def test_card_lists_metrics_by_split() -> None:
    from dnalm.apps.export import model_card
    from dnalm.tasks import BinaryTask

    card = model_card("transformers", {"model": {"name_or_path": "org/base", "revision": "abc"},
                                       "strategy": {"_target_": "dnalm.strategies.LoRA"}, "data": {"path": "d"}},
                      BinaryTask(2, ["neg", "pos"]), {"test/mcc": 0.5, "val/mcc": 0.25, "model": "x"}, None)
    assert "| test | mcc | 0.5000 |" in card and "| val | mcc | 0.2500 |" in card
    assert "`org/base` (revision: abc)" in card and "0: neg, 1: pos" in card and "LoRA" in card
