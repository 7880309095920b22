"""dnalm.export of NT v2 / GENA-LM classifiers in the layout their authors publish (the golden fixtures' layout)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.helpers.configs import train_tiny
from tests.helpers.exports import export_to, predict_probs
from tests.helpers.golden import FIXTURES

# fixture name -> the weights file its authors publish
PUBLISHED = {"nt_v2_classifier": "model.safetensors", "gena_bert_base_t2t_classifier": "pytorch_model.bin"}


def _weights(folder: Path, name: str) -> dict[str, torch.Tensor]:
    path = folder / name
    return load_file(str(path)) if name.endswith(".safetensors") else torch.load(path, weights_only=True)


def _binary_copy(fixture: str, folder: Path) -> Path:
    """The fixture's classifier folder with a two-class head (the demo task is binary)."""
    source = FIXTURES / fixture / "model"
    shutil.copytree(source, folder)
    config = json.loads((source / "config.json").read_text())
    if config.get("num_labels", 2) != 2:
        state = _weights(source, PUBLISHED[fixture])
        state["classifier.weight"], state["classifier.bias"] = state["classifier.weight"][:2], state["classifier.bias"][:2]
        torch.save(state, folder / PUBLISHED[fixture])
        config["num_labels"] = 2
        (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder


@pytest.fixture(scope="module", params=sorted(PUBLISHED))
def published_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A LoRA fine-tuning of the authors'-layout classifier fixture with its own head: (fixture, best checkpoint)."""
    root = tmp_path_factory.mktemp(request.param)
    base = _binary_copy(request.param, root / "base")
    metrics = train_tiny(root, "model=hf", f"model.name_or_path={base}", "head=native", "strategy=lora",
                         "model.max_tokens=128", "optim.lr=5e-3", "model.lora_target_modules=[query,value]")
    return request.param, Path(metrics["best_checkpoint"])


def test_export_writes_the_published_key_set_and_config(published_run: tuple[str, Path], tmp_path: Path) -> None:
    fixture, ckpt = published_run
    out = export_to(tmp_path, ckpt)
    reference = FIXTURES / fixture / "model"
    weights = PUBLISHED[fixture]
    assert sorted(p.name for p in out.glob("*.safetensors")) == (["model.safetensors"] if weights.endswith(
        "safetensors") else []) and not (out / "dnalm_head.json").exists()
    got, expected = _weights(out, weights), _weights(reference, weights)
    assert set(got) == set(expected)
    for key, value in expected.items():
        if not key.startswith("classifier."):  # the fixture's GENA head has three classes, ours two
            assert got[key].shape == value.shape and got[key].dtype == value.dtype, key
    assert any(not torch.equal(got[k], expected[k]) for k in expected if ".query." in k), "LoRA merged in"

    config, published = (json.loads((f / "config.json").read_text()) for f in (out, reference))
    assert set(published) <= set(config)
    for key in ("model_type", "architectures", "pre_layer_norm", "position_embedding_type", "add_bias_fnn",
                "hidden_size", "num_hidden_layers", "vocab_size", "pad_token_id"):
        assert config.get(key) == published.get(key), key
    repo, _ = config["auto_map"]["AutoModelForSequenceClassification"].split("--")
    assert {k: v.split("--")[1] for k, v in config["auto_map"].items()} == published["auto_map"]
    assert repo.startswith(("InstaDeepAI/", "AIRI-Institute/"))
    assert config["id2label"] == {"0": "0", "1": "1"} and config["num_labels"] == 2
    assert "trust_remote_code=True" in (out / "README.md").read_text()


def test_published_folder_predicts_like_the_checkpoint(published_run: tuple[str, Path], tmp_path: Path) -> None:
    _, ckpt = published_run
    out = export_to(tmp_path, ckpt)
    expected = predict_probs(tmp_path / "p1", f"ckpt_path={ckpt}")
    got = predict_probs(tmp_path / "p2", "model=hf", f"model.name_or_path={out}", "head=native")
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.abs(expected[:, 1] - 0.5).max() > 1e-3  # a trained head, not a coin


def test_published_layout_false_keeps_dnalms_model_type(published_run: tuple[str, Path], tmp_path: Path) -> None:
    _, ckpt = published_run
    out = export_to(tmp_path, ckpt, "published_layout=false")
    assert json.loads((out / "config.json").read_text())["model_type"] in ("nucleotide_transformer_v2", "gena_lm_bert")


def test_published_layout_true_for_a_pooled_run_is_a_clear_error(pooled_run: Path, tmp_path: Path) -> None:  # noqa: F811
    from dnalm.errors import ConfigError

    with pytest.raises(ConfigError, match="published_layout=true is for NT v2 and GENA-LM runs"):
        export_to(tmp_path, pooled_run, "published_layout=true")
