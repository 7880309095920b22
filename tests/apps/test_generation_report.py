"""Generated vs held-out vs Markov baseline: the comparison's parts, and dnalm.generate writing it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import open_dict
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

from dnalm.apps.generation_report import compare, markov_sample
from dnalm.apps.inputs import write_fasta
from dnalm.apps.likelihood import log_likelihoods
from dnalm.configs import CONFIG_DIR as CONF  # noqa: E402
from dnalm.apps.generate import generate


def _char_lm(folder: Path) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {"<pad>": 0, "<s>": 1, "A": 2, "C": 3, "G": 4, "T": 5, "N": 6}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="N"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>")
    config = AutoConfig.for_model("mistral", hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                  num_attention_heads=2, num_key_value_heads=2, vocab_size=len(vocab),
                                  pad_token_id=0, bos_token_id=1, max_position_embeddings=256)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    hf.save_pretrained(folder)
    return folder


def test_markov_chain_reproduces_the_transitions_it_was_fitted_on() -> None:
    training = ["ACGT" * 200, "ACGT" * 150]
    generated = markov_sample(training, order=2, num=5, length=200, seed=0)
    assert all(len(s) == 200 for s in generated)
    followers = {"AC": "G", "CG": "T", "GT": "A", "TA": "C"}
    pairs = [(s[i:i + 2], s[i + 2]) for s in generated for i in range(len(s) - 2) if s[i:i + 2] in followers]
    hits = sum(followers[context] == nxt for context, nxt in pairs)
    assert hits / len(pairs) > 0.95  # add-one smoothing leaves a little room for the other letters


def test_compare_puts_a_copy_at_zero_and_a_shuffle_above_it() -> None:
    rng = np.random.default_rng(0)
    real = ["".join(rng.choice(list("AACGTT"), size=300)) for _ in range(20)]
    shuffled = ["".join(rng.permutation(list("ACGT" * 75))) for _ in range(20)]
    table = compare({"copy": list(real), "uniform": shuffled}, real, ks=(1, 3))
    assert table["copy"]["js_k1"] == 0 and table["copy"]["js_k3"] == 0
    assert table["uniform"]["js_k1"] > 0.01 and table["uniform"]["js_k3"] > table["uniform"]["js_k1"]
    assert abs(table["uniform"]["gc_mean"] - 0.5) < 0.01


def test_log_likelihood_of_each_sequence_sums_its_next_token_log_probs(tmp_path: Path) -> None:
    folder = _char_lm(tmp_path / "lm")
    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(folder)
    totals, counts = log_likelihoods(model, tokenizer, ["ACGTA", "GG"])
    assert counts.tolist() == [5, 2]  # every base predicted from the start token onwards, padding ignored
    ids = tokenizer(["GG"], return_tensors="pt")["input_ids"]
    logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
    expected = logp[0, ids[0, 1]] + logp[1, ids[0, 2]]
    assert abs(totals[1] - expected.item()) < 1e-4


def test_generate_writes_the_comparison_report(tmp_path: Path) -> None:
    folder = _char_lm(tmp_path / "lm")
    rng = np.random.default_rng(1)
    reference = tmp_path / "held_out.fa"
    write_fasta(reference, [("genome", "".join(rng.choice(list("ACGT"), size=3000)))])
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(config_name="generate", overrides=[
            f"model.name_or_path={folder}", "num=6", "length=60", f"output={tmp_path / 'gen.fa'}",
            f"reference={reference}", "markov_order=2"])
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path)
    stats = generate(cfg)
    table = stats["comparison"]
    assert set(table) == {"real (held out)", "generated", "Markov order 2"}
    assert table["real (held out)"]["num"] == 6  # six 60-bp windows cut from the held-out genome
    assert all(row["perplexity"] > 1 for row in table.values())
    report = (tmp_path / "gen.report.md").read_text()
    assert "| generated |" in report and "JS k=6" in report
    assert (tmp_path / "gen.report.png").stat().st_size > 1000
    assert json.loads((tmp_path / "gen.stats.json").read_text())["comparison"] == table
