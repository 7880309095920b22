"""Golden fixtures for the zoo families that plain ``transformers`` implements, from the version of their time.

    /work/refenv-golden/bin/python tools/golden/transformers_families.py        # transformers 4.30: NT v1,
                                                                                # DNABERT, GENA BigBird
    /work/refenv-golden-tf447/bin/python tools/golden/transformers_families.py  # transformers 4.47.1: Mistral-DNA

Each family runs only under the transformers version it lists (the one its checkpoints were saved with or
closest to it); the script skips the others. Tiny random weights, the published file layout, and the
reference outputs of that version's modelling code.
"""

from __future__ import annotations

import itertools
import json
import random
import sys
from pathlib import Path
from typing import Any

import torch
import transformers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DNA_INPUTS, FIXTURES, randomise, save_bin, tokenize, write_fixture, write_json  # noqa: E402

SHARED_MISTRAL = Path("/work/shared/models/mistral_dna_1m_hg38_tf0")
LONG_INPUTS = [  # > 44 tokens, so BigBird with block 4 and 3 random blocks runs block-sparse, not full
    "".join(random.Random(i).choice("ACGT") for _ in range(n)) for i, n in enumerate((420, 300, 380))
]
LONG_INPUTS[1] = LONG_INPUTS[1][:150] + "NNNNNNNNNNNN" + LONG_INPUTS[1][150:]


def kmers(k: int) -> list[str]:
    return ["".join(p) for p in itertools.product("ATCG", repeat=k)]


def nt_tokenizer(folder: Path) -> None:
    """EsmTokenizer files as the NT repositories publish them: vocab.txt, tokenizer and special-token maps."""
    vocab = ["<unk>", "<pad>", "<mask>", "<cls>", "<eos>", "<bos>", *kmers(6), "A", "T", "C", "G", "N"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    write_json(folder / "tokenizer_config.json", {"tokenizer_class": "EsmTokenizer", "model_max_length": 1000,
                                                  "cls_token": "<cls>", "pad_token": "<pad>", "mask_token": "<mask>",
                                                  "unk_token": "<unk>", "eos_token": None})
    write_json(folder / "special_tokens_map.json", {"cls_token": "<cls>", "pad_token": "<pad>",
                                                    "mask_token": "<mask>", "unk_token": "<unk>"})


def nt_v1(name: str) -> tuple[Any, dict, list[str]]:
    from transformers import EsmConfig, EsmForMaskedLM

    raw = {  # field set of the NT v1 hub config.json (EsmForMaskedLM, absolute positions, token dropout)
        "architectures": ["EsmForMaskedLM"], "attention_probs_dropout_prob": 0.0, "emb_layer_norm_before": False,
        "esmfold_config": None, "hidden_dropout_prob": 0.0, "hidden_size": 16, "initializer_range": 0.02,
        "intermediate_size": 32, "is_folding_model": False, "layer_norm_eps": 1e-12, "mask_token_id": 2,
        "max_position_embeddings": 1002, "model_type": "esm", "num_attention_heads": 4, "num_hidden_layers": 2,
        "pad_token_id": 1, "position_embedding_type": "absolute", "tie_word_embeddings": False,
        "token_dropout": True, "torch_dtype": "float32", "transformers_version": "4.27.0.dev0", "use_cache": False,
        "vocab_list": None, "vocab_size": 4107,
    }
    model = EsmForMaskedLM(EsmConfig(**raw)).eval()
    nt_tokenizer(FIXTURES / name / "model")
    return model, raw, DNA_INPUTS


def dnabert(name: str) -> tuple[Any, dict, list[str]]:
    from transformers import BertConfig, BertForMaskedLM

    raw = {  # field set of zhihan1996/DNA_bert_6's config.json, tiny sizes
        "architectures": ["BertForMaskedLM"], "attention_probs_dropout_prob": 0.0, "bos_token_id": 0,
        "do_sample": False, "eos_token_ids": 0, "finetuning_task": None, "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0, "hidden_size": 16, "initializer_range": 0.02, "intermediate_size": 32,
        "is_decoder": False, "layer_norm_eps": 1e-12, "length_penalty": 1.0, "max_length": 20,
        "max_position_embeddings": 512, "model_type": "bert", "num_attention_heads": 4, "num_beams": 1,
        "num_hidden_layers": 2, "num_labels": 2, "num_return_sequences": 1, "num_rnn_layer": 1,
        "output_attentions": False, "output_hidden_states": False, "output_past": True, "pad_token_id": 0,
        "pruned_heads": {}, "repetition_penalty": 1.0, "rnn": "lstm", "rnn_dropout": 0.0, "rnn_hidden": 768,
        "split": 10, "temperature": 1.0, "top_k": 50, "top_p": 1.0, "torchscript": False, "type_vocab_size": 2,
        "use_bfloat16": False, "vocab_size": 4101,
    }
    folder = FIXTURES / name / "model"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *kmers(6)]) + "\n")
    write_json(folder / "tokenizer_config.json", {"do_lower_case": False, "model_max_length": 512,
                                                  "tokenizer_class": "BertTokenizer"})
    write_json(folder / "special_tokens_map.json", {"unk_token": "[UNK]", "sep_token": "[SEP]",
                                                    "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"})
    return BertForMaskedLM(BertConfig(**raw)).eval(), raw, DNA_INPUTS


def gena_bigbird(name: str) -> tuple[Any, dict, list[str]]:
    from common import mirror_source
    from gena import GENA_REPO, VOCAB, tiny_tokenizer
    from transformers import BigBirdConfig, BigBirdForPreTraining

    published = json.loads(mirror_source(GENA_REPO, "data/configs/hf_bigbird_L12-H768-A12-V32k-L4096.json")[0])
    raw = {**published, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
           "intermediate_size": 64, "vocab_size": VOCAB, "max_position_embeddings": 256, "block_size": 4,
           "attention_probs_dropout_prob": 0.0, "hidden_dropout_prob": 0.0}
    tiny_tokenizer(FIXTURES / name / "model")
    return BigBirdForPreTraining(BigBirdConfig(**raw)).eval(), raw, LONG_INPUTS


def mistral(name: str, classifier: bool = False) -> tuple[Any, dict, list[str]]:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import MixtralConfig, MixtralForCausalLM, MixtralForSequenceClassification

    published = json.loads((SHARED_MISTRAL / "config.json").read_text())
    raw = {**published, "hidden_size": 32, "intermediate_size": 32, "num_attention_heads": 4, "head_dim": 8,
           "num_key_value_heads": 2, "num_hidden_layers": 2, "num_local_experts": 4, "vocab_size": 64,
           "_name_or_path": "tiny", "architectures": ["MixtralForSequenceClassification" if classifier
                                                     else "MixtralForCausalLM"]}
    if classifier:
        raw.update(num_labels=3, id2label={"0": "a", "1": "b", "2": "c"}, label2id={"a": 0, "b": 1, "c": 2})
    else:
        raw.pop("problem_type")
    specials = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    corpus = ["".join(random.Random(i).choice("ACGTTGCAN") for _ in range(300)) for i in range(50)]
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=64, special_tokens=specials))
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                       special_tokens=[("[CLS]", 1), ("[SEP]", 2)])
    folder = FIXTURES / name / "model"
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text((SHARED_MISTRAL / "tokenizer_config.json").read_text())
    cls = MixtralForSequenceClassification if classifier else MixtralForCausalLM
    return cls(MixtralConfig(**raw)).eval(), raw, DNA_INPUTS


FAMILIES = {  # fixture -> (transformers version, builder, weights file)
    "nt_v1": ("4.30.2", nt_v1, "bin"),
    "dnabert_6": ("4.30.2", dnabert, "bin"),
    "gena_bigbird_base_t2t": ("4.30.2", gena_bigbird, "bin"),
    "mistral_dna": ("4.47.1", mistral, "safetensors"),
    "mistral_dna_classifier": ("4.47.1", lambda n: mistral(n, classifier=True), "safetensors"),
}


def dnabert_text(seq: str) -> str:
    return " ".join(seq[i:i + 6] for i in range(len(seq) - 5))


def main() -> None:
    from transformers import AutoTokenizer

    for seed, (name, (version, builder, weights)) in enumerate(FAMILIES.items()):
        if transformers.__version__ != version:
            continue
        torch.manual_seed(seed)
        model, raw, inputs = builder(name)
        randomise(model, seed)
        folder = FIXTURES / name / "model"
        write_json(folder / "config.json", {k: raw[k] for k in sorted(raw)})
        if weights == "bin":
            save_bin(model.state_dict(), folder)
        else:
            model.save_pretrained(folder, safe_serialization=True)
            write_json(folder / "config.json", {k: raw[k] for k in sorted(raw)})  # as published, not re-saved
        tokenizer = AutoTokenizer.from_pretrained(folder)
        texts = [dnabert_text(s) for s in inputs] if name.startswith("dnabert") else inputs
        batch = tokenize(tokenizer, texts)
        with torch.no_grad():
            out = model(**batch, return_dict=True)
            hidden = model.base_model(**batch, return_dict=True).last_hidden_state
        tensors = {**batch, "last_hidden_state": hidden}
        logits = out.prediction_logits if hasattr(out, "prediction_logits") else out.logits
        if logits.shape[-1] <= 1000:  # k-mer vocabularies (4,101 / 4,107 words) would make the fixture MBs
            tensors["logits"] = logits
        meta = {"reference": {"package": "transformers", "version": version, "class": type(model).__name__},
                "tiny": {k: raw.get(k) for k in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                                 "intermediate_size", "vocab_size")},
                "weights": "pytorch_model.bin (torch.save of state_dict)" if weights == "bin"
                else "model.safetensors (save_pretrained)"}
        write_fixture(name, inputs, tensors, meta)
        print(name, {k: tuple(v.shape) for k, v in tensors.items()})


if __name__ == "__main__":
    main()
