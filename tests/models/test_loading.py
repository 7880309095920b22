"""Every load path accounts for every backbone weight: a file whose weights do not fit stops the run with the keys
and the fix, never trains a random network; GENA-LM files without pooler load as encoders; configs without
model_type are recognised from their architecture fields or weights."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from safetensors.torch import save_file
from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification

from dnalm.errors import ModelLoadError
from dnalm.models.backbone import load_backbone
from dnalm.models.families import GenaBertModel, NucleotideTransformerV2Model, load_native
from dnalm.models.families.published import PUBLISHED_CONFIGS
from dnalm.models.tiny import char_tokenizer
from tests.helpers import gena_bert as gena
from tests.helpers import nt_v2 as nt

SMALL_BERT = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32,
              "vocab_size": 12, "max_position_embeddings": 64, "pad_token_id": 1}


def model_cfg(path: Path, **extra) -> object:
    """A ``model=hf`` config for a local folder."""
    return OmegaConf.create({"name": "test", "name_or_path": str(path), "revision": None, "tokenizer": None,
                             "trust_remote_code": False, "dtype": None, "max_tokens": None,
                             "lora_target_modules": None, "base_model": None, **extra})


def save_bert(folder: Path, cls: type = BertForMaskedLM, **config) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    model = cls(BertConfig(**{**SMALL_BERT, **config}))
    model.save_pretrained(folder)
    char_tokenizer().save_pretrained(folder)
    return folder, model


def dnabert2_style_folder(folder: Path) -> Path:
    """DNABERT-2's layout: config model_type "bert" + auto_map, attention projections fused as ``Wqkv``."""
    folder.mkdir(parents=True)
    mlm = BertForMaskedLM(BertConfig(**SMALL_BERT))
    state = {}
    for key, value in mlm.state_dict().items():
        if ".attention.self.query." in key:
            fused = [mlm.state_dict()[key.replace("query", part)] for part in ("query", "key", "value")]
            state[key.replace("query", "Wqkv")] = torch.cat(fused).contiguous()
        elif ".attention.self.key." not in key and ".attention.self.value." not in key:
            state[key] = value.clone().contiguous()
    save_file(state, str(folder / "model.safetensors"))
    config = {**mlm.config.to_dict(), "architectures": ["BertForMaskedLM"],
              "auto_map": {"AutoConfig": "configuration_bert.BertConfig", "AutoModel": "bert_layers.BertModel",
                           "AutoModelForMaskedLM": "bert_layers.BertForMaskedLM"}}
    (folder / "config.json").write_text(json.dumps(config))
    char_tokenizer().save_pretrained(folder)
    return folder


# ---- defect: silent random initialisation ----------------------------------------------------------------------


def test_dnabert2_style_weights_stop_the_run_instead_of_loading_a_random_bert(tmp_path: Path) -> None:
    """The bert_layers auto_map sends the file to the native DNABERT-2, whose gated MLP this hybrid (fused Wqkv,
    BERT feed-forward) lacks: the run stops naming the weights that would stay random and those left over."""
    folder = dnabert2_style_folder(tmp_path / "dnabert2")
    with pytest.raises(ModelLoadError) as err:
        load_backbone(model_cfg(folder))
    message = str(err.value)
    assert "DnaBert2Model" in message and "would stay random" in message and "mlp.gated_layers.weight" in message
    assert "bert.encoder.layer.0.intermediate.dense" in message


def test_a_published_classifier_loads_as_an_encoder_and_says_its_head_is_dropped(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture) -> None:
    folder, classifier = save_bert(tmp_path / "cls", BertForSequenceClassification, num_labels=3)
    with caplog.at_level(logging.INFO):
        backbone = load_backbone(model_cfg(folder))
    torch.testing.assert_close(backbone.model.embeddings.word_embeddings.weight,
                               classifier.bert.embeddings.word_embeddings.weight)
    dropped = [r.getMessage() for r in caplog.records if "published head" in r.getMessage()]
    assert len(dropped) == 1 and "classifier.*" in dropped[0] and "head=native" in dropped[0]
    captured = capfd.readouterr()
    assert "LOAD REPORT" not in captured.err + captured.out + caplog.text  # transformers' table is silenced
    assert backbone.model.pooler is None


def test_a_pretrained_file_is_not_evaluated_with_a_random_head(tmp_path: Path) -> None:
    folder, _ = save_bert(tmp_path / "mlm")
    load_backbone(model_cfg(folder))  # as an encoder it is complete (no pooler needed)
    with pytest.raises(ModelLoadError, match="not a fine-tuned classifier.*head=linear"):
        load_backbone(model_cfg(folder), native_head=True)


def test_shape_mismatches_are_listed(tmp_path: Path) -> None:
    folder, _ = save_bert(tmp_path / "bert")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "intermediate_size": 40}))
    with pytest.raises(ModelLoadError, match=r"shapes differ \[encoder.layer.0.intermediate.dense.bias: "
                                             r"file \(32,\) vs model \(40,\)"):
        load_backbone(model_cfg(folder))


def _bert_adapter(tmp_path: Path, modules_to_save: list[str] | None) -> tuple[Path, Path, torch.nn.Module]:
    from peft import LoraConfig, get_peft_model

    base_dir, _ = save_bert(tmp_path / "base", BertForMaskedLM)
    torch.manual_seed(1)
    classifier = BertForSequenceClassification.from_pretrained(base_dir, num_labels=3)
    peft_model = get_peft_model(classifier, LoraConfig(r=2, target_modules=["query", "value"],
                                                       modules_to_save=modules_to_save))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name or "modules_to_save" in name:
                param.normal_(0, 0.5)
    peft_model.save_pretrained(tmp_path / "adapter")
    return tmp_path / "adapter", base_dir, peft_model


def test_an_adapter_must_restore_every_weight_its_base_lacks(tmp_path: Path) -> None:
    adapter, base_dir, _ = _bert_adapter(tmp_path / "no_head", modules_to_save=None)
    cfg = model_cfg(adapter, base_model=str(base_dir), tokenizer=str(base_dir))
    with pytest.raises(ModelLoadError, match=r"does not hold \d+ head weights.*bert.pooler.dense.*classifier.bias"):
        load_backbone(cfg, native_head=True)
    # The base (a BertForMaskedLM file) has no pooler: the adapter must save it with the classifier.
    adapter, base_dir, peft_model = _bert_adapter(tmp_path / "with_head", modules_to_save=["classifier", "pooler"])
    backbone = load_backbone(model_cfg(adapter, base_model=str(base_dir), tokenizer=str(base_dir)), native_head=True)
    ids = torch.tensor([[2, 4, 5, 6, 7, 3], [2, 7, 3, 1, 1, 1]])
    mask = (ids != 1).long()
    peft_model.eval()
    with torch.no_grad():
        torch.testing.assert_close(backbone.model(input_ids=ids, attention_mask=mask).logits,
                                   peft_model(input_ids=ids, attention_mask=mask).logits)


def test_remote_code_whose_weights_do_not_fit_is_refused(tmp_path: Path) -> None:
    from tests.helpers.remote_code import remote_code_folder

    folder = remote_code_folder(tmp_path)
    save_file({"embed.weight": torch.zeros(10, 8)}, str(folder / "model.safetensors"))  # no `mix` layer
    with pytest.raises(ModelLoadError, match=r"would stay random \[mix.bias, mix.weight\].*model.revision"):
        load_backbone(model_cfg(folder, trust_remote_code=True))


# ---- defect: GENA-LM BertForMaskedLM dumps (the -t2t models) have no pooler -----------------------------------


def gena_t2t_folder(folder: Path) -> tuple[Path, dict, dict]:
    """A GENA-LM -t2t file: BertForMaskedLM (MLM head with its own decoder copy), no pooler, no NSP head."""
    cfg = {**gena.TINY, "last_layer_norm": False, "architectures": ["BertForMaskedLM"]}
    sd = {k: v for k, v in gena.published_state_dict(cfg).items()
          if not k.startswith(("bert.pooler.", "cls.seq_relationship."))}
    gena.write_published(folder, cfg, sd)
    char_tokenizer().save_pretrained(folder)
    return folder, sd, cfg


def test_gena_file_without_pooler_loads_as_an_encoder(tmp_path: Path) -> None:
    path, sd, cfg = gena_t2t_folder(tmp_path / "t2t")
    model = load_native(path, "base").eval()
    assert isinstance(model, GenaBertModel) and model.pooler is None
    ids, mask = gena.batch()
    hidden, _, _ = gena.reference({**sd, "bert.pooler.dense.weight": torch.zeros(32, 32),
                                   "bert.pooler.dense.bias": torch.zeros(32)}, cfg, ids, mask)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask)
    assert out.pooler_output is None
    real = mask.bool()
    torch.testing.assert_close(out.last_hidden_state[real].double(), hidden[real], rtol=1e-4, atol=1e-4)


def test_gena_file_without_pooler_trains_with_lora_and_embeds(tmp_path: Path) -> None:
    from hydra.utils import instantiate

    from tests.helpers import make_module, random_dna, token_batch

    path, _, _ = gena_t2t_folder(tmp_path / "t2t")
    backbone = load_backbone(model_cfg(path, lora_target_modules=["query", "value"]))
    strategy = instantiate(OmegaConf.create({"_target_": "dnalm.strategies.LoRA", "r": 2}))
    module = make_module(backbone, strategy)
    batch = token_batch(backbone.tokenizer, random_dna(3, [12, 7, 10]))
    loss = module.loss(module.logits(batch, "train"), batch["target"])
    loss.backward()
    assert torch.isfinite(loss)
    assert module.embed(batch["input_ids"], batch["attention_mask"]).shape == (3, 32)


def test_adapter_on_a_gena_file_without_pooler_needs_the_pooler_saved(tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model

    path, _, _ = gena_t2t_folder(tmp_path / "t2t")
    for modules, fits in ((["classifier"], False), (["classifier", "pooler"], True)):
        classifier = load_native(path, "classifier", new_head=True, config_overrides={"num_labels": 2})
        peft_model = get_peft_model(classifier, LoraConfig(r=2, target_modules=["query", "value"],
                                                           modules_to_save=modules))
        adapter = tmp_path / f"adapter_{len(modules)}"
        peft_model.save_pretrained(adapter)
        cfg = model_cfg(adapter, base_model=str(path), tokenizer=str(path))
        if fits:
            assert load_backbone(cfg, native_head=True).model.config.num_labels == 2
        else:
            with pytest.raises(ModelLoadError, match=r"bert.pooler.dense.bias, bert.pooler.dense.weight"):
                load_backbone(cfg, native_head=True)


# ---- defect: configs without model_type ------------------------------------------------------------------------


def test_model_type_is_inferred_from_architecture_fields() -> None:
    from dnalm.models.loading import infer_model_type

    assert infer_model_type({"architectures": ["EsmForMaskedLM"]}) == "esm"
    assert infer_model_type({"auto_map": {"AutoConfig": "esm_config.EsmConfig"}}) == "esm"
    assert infer_model_type({"architectures": ["MixtralForCausalLM"]}) == "mixtral"
    assert infer_model_type({"auto_map": {"AutoModel": "bert_layers.BertModel"}}) == "bert"
    assert infer_model_type({}, ["esm.embeddings.word_embeddings.weight", "lm_head.bias"]) == "esm"
    assert infer_model_type({"attention_type": "block_sparse"}, ["bert.embeddings.word_embeddings.weight"]) is None
    assert infer_model_type({"model_type": "llama", "architectures": ["BertModel"]}) == "llama"
    assert infer_model_type({}) is None


@pytest.mark.parametrize("drop", [("model_type",), ("model_type", "architectures", "auto_map")],
                         ids=["hub-fields-kept", "weights-only"])
def test_nt_v2_config_without_model_type_passes_the_zoo_check_and_loads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, drop: tuple[str, ...]) -> None:
    # A zoo entry with the tiny fixture's sizes stands in for a published NT v2 (same fields, same check).
    published = {key: nt.TINY[key] for key in PUBLISHED_CONFIGS[
        "InstaDeepAI/nucleotide-transformer-v2-50m-multi-species"]}
    monkeypatch.setitem(PUBLISHED_CONFIGS, "test/nt-v2-tiny", published)
    sd = nt.published_state_dict(nt.TINY)
    complete = nt.write_published(tmp_path / "complete", nt.TINY, sd)
    folder = nt.write_published(tmp_path / "copy", {k: v for k, v in nt.TINY.items() if k not in drop}, sd)
    char_tokenizer().save_pretrained(folder)
    backbone = load_backbone(model_cfg(folder, zoo={"hub_id": "test/nt-v2-tiny"}))
    assert isinstance(backbone.model, NucleotideTransformerV2Model)
    reference = load_native(complete, "base").eval()
    ids, mask = nt.batch()
    with torch.no_grad():
        torch.testing.assert_close(backbone.model.eval()(input_ids=ids, attention_mask=mask).last_hidden_state,
                                   reference(input_ids=ids, attention_mask=mask).last_hidden_state)


def test_transformers_config_without_model_type_loads(tmp_path: Path) -> None:
    folder, mlm = save_bert(tmp_path / "bert")
    config = json.loads((folder / "config.json").read_text())
    del config["model_type"]
    (folder / "config.json").write_text(json.dumps(config))
    backbone = load_backbone(model_cfg(folder))
    assert backbone.model_type == "bert"
    torch.testing.assert_close(backbone.model.embeddings.word_embeddings.weight,
                               mlm.bert.embeddings.word_embeddings.weight)
    # Nothing names the architecture: no fields, and a bare encoder's weights carry no family prefix.
    mlm.bert.save_pretrained(folder)
    (folder / "config.json").write_text(json.dumps({k: v for k, v in config.items() if k != "architectures"}))
    with pytest.raises(ModelLoadError, match='no model_type.*add "model_type"'):
        load_backbone(model_cfg(folder))
