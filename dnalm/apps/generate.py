"""``python -m dnalm.generate model.name_or_path=<causal DNA LM> num=... length=... output=<fasta>``.

Samples DNA from a causal language model (``AutoModelForCausalLM``) with temperature / top-k / top-p and an
optional prompt, reproducibly under ``seed``. Special tokens are never sampled; letters outside ACGTN in what
the sampled tokens decode to are stripped and counted, so every record is exactly ``length`` bp of ACGTN.
Statistics go to ``<output stem>.stats.json``: GC content, duplicates, and (with ``reference=``) the
Jensen-Shannon distance between the k-mer spectra of the generated and the reference sequences.

A checkpoint that has no trained language-model head (e.g. a fine-tuned *classifier* such as
``shared/models/mistral_dna_1m_hg38_tf0``, which only holds ``score.weight``) is refused: its ``lm_head``
would be random. ``allow_untrained_head=true`` samples anyway (only useful for smoke tests).
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from dnalm.apps.inputs import (
    gc_content,
    jensen_shannon,
    kmer_spectrum,
    read_sequences,
    write_fasta,
)
from dnalm.configs import CONFIG_DIR
from dnalm.data.encode import SpecialLayout
from dnalm.data.normalise import SequencePolicy, normalise
from dnalm.data.sources import policy_of
from dnalm.errors import ConfigError, ModelLoadError
from dnalm.inference import pick_device
from dnalm.models.backbone import resolve_reference
from dnalm.models.loading import quiet_load_report, require_fit
from dnalm.utils.cli import run_task

log = logging.getLogger("dnalm.generate")
_NOT_DNA = re.compile(r"[^ACGTN]")


def load_causal_lm(model_cfg: DictConfig, allow_untrained_head: bool = False
                   ) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The causal LM and tokenizer of ``model_cfg``; refuses a checkpoint whose LM head was not saved."""
    reference = model_cfg.get("name_or_path")
    if not reference:
        raise ConfigError("give model.name_or_path=<causal DNA LM folder or hub id>.")
    revision = model_cfg.get("revision")
    source, local_only = resolve_reference(str(reference), revision, "model")
    trust = bool(model_cfg.get("trust_remote_code", False))
    try:
        with quiet_load_report():  # checked below
            model, info = AutoModelForCausalLM.from_pretrained(
                source, revision=revision, local_files_only=local_only, output_loading_info=True,
                ignore_mismatched_sizes=True, trust_remote_code=trust)
    except (OSError, ValueError, RuntimeError) as err:
        raise ModelLoadError(f"cannot load '{reference}' as a causal language model: {err}") from err
    require_fit(model, info, str(reference), "classifier", trust_remote_code=trust)  # the LM head is checked below
    untrained = [k for k in info.get("missing_keys", []) if "lm_head" in k or "output" in k.split(".")[0]]
    if untrained and not getattr(model.config, "tie_word_embeddings", False):
        message = (f"'{reference}' has no trained language-model head (missing {untrained[:2]}): it was saved "
                   "as another kind of model (e.g. a classifier), so sampling would use random output weights. "
                   "Use a pretrained causal DNA LM, or allow_untrained_head=true for a smoke test.")
        if not allow_untrained_head:
            raise ModelLoadError(message)
        log.warning(message)
    tok_ref = model_cfg.get("tokenizer") or source
    tok_source, tok_local = resolve_reference(str(tok_ref), revision, "tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(tok_source, revision=revision, local_files_only=tok_local)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return model, tokenizer


def prompt_ids(tokenizer: PreTrainedTokenizerBase, prompt: str) -> list[int]:
    """Token ids that start generation: the tokenizer's leading special tokens and the prompt (no trailing ones)."""
    layout = SpecialLayout.of(tokenizer)
    ids = list(tokenizer(prompt or "", add_special_tokens=True)["input_ids"])
    if layout.suffix:
        ids = ids[:len(ids) - layout.suffix]
    if not ids:
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.cls_token_id
        if start is None:
            raise ConfigError("this tokenizer has no start token: give a prompt=<DNA>.")
        ids = [start]
    return ids


def token_strings(tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """What every token id decodes to on its own (upper-cased)."""
    return [s.upper() for s in tokenizer.batch_decode([[i] for i in range(len(tokenizer))],
                                                       skip_special_tokens=False, clean_up_tokenization_spaces=False)]


@torch.inference_mode()
def sample(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, num: int, length: int, prompt: str = "",
           temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None, seed: int = 0,
           batch_size: int = 32, device: torch.device | None = None) -> tuple[list[str], dict[str, int]]:
    """``num`` sequences of exactly ``length`` bp (ACGTN) continuing ``prompt``; and counts of stripped letters."""
    if length <= 0 or num <= 0:
        raise ConfigError(f"num and length must be positive (got num={num}, length={length}).")
    if temperature <= 0:
        raise ConfigError(f"temperature must be > 0 (got {temperature}).")
    device = device or torch.device("cpu")
    model.to(device).eval()
    start = prompt_ids(tokenizer, prompt)
    pieces = token_strings(tokenizer)
    special = sorted(set(tokenizer.all_special_ids))
    context = getattr(model.config, "max_position_embeddings", None)
    generator_seed = int(seed)
    out: list[str] = []
    counts = {"stripped_chars": 0, "tokens": 0}
    for first in range(0, num, batch_size):
        rows = min(batch_size, num - first)
        torch.manual_seed(generator_seed + first)
        ids = torch.tensor([start] * rows, device=device)
        texts = [""] * rows
        while min(len(t) for t in texts) < length:
            need = length - min(len(t) for t in texts)
            if context and ids.shape[1] >= context:
                ids = ids[:, -(context // 2):]  # keep the recent half of the context and go on
            new = model.generate(
                ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=float(temperature),
                top_k=int(top_k) if top_k else 0, top_p=float(top_p) if top_p else 1.0,
                max_new_tokens=max(1, min(need, (context or need + ids.shape[1]) - ids.shape[1])),
                suppress_tokens=special, pad_token_id=tokenizer.pad_token_id, eos_token_id=None)
            fresh = new[:, ids.shape[1]:].tolist()
            ids = new
            for r, row in enumerate(fresh):
                raw = "".join(pieces[i] for i in row)
                clean = _NOT_DNA.sub("", raw)
                counts["stripped_chars"] += len(raw) - len(clean)
                counts["tokens"] += len(row)
                texts[r] += clean
        out.extend(t[:length] for t in texts)
    return out, counts


def sequence_stats(sequences: list[str], reference: list[str] | None, k: int) -> dict[str, Any]:
    """GC content, duplicates and N letters of ``sequences``; k-mer spectrum distance to ``reference`` if given."""
    gc = np.array([gc_content(s) for s in sequences])
    stats: dict[str, Any] = {
        "num": len(sequences), "length_bp": int(np.mean([len(s) for s in sequences])) if sequences else 0,
        "gc_mean": float(gc.mean()), "gc_std": float(gc.std()),
        "duplicates": len(sequences) - len(set(sequences)),
        "n_letters": int(sum(s.count("N") for s in sequences)),
    }
    if reference:
        ref_gc = np.array([gc_content(s) for s in reference])
        stats.update({"reference_num": len(reference), "reference_gc_mean": float(ref_gc.mean()),
                      f"kmer{k}_js_distance": jensen_shannon(kmer_spectrum(sequences, k), kmer_spectrum(reference, k))})
    return stats


def pieces(sequences: list[str], length: int, num: int, seed: int) -> list[str]:
    """Up to ``num`` non-overlapping ``length``-bp windows drawn evenly from (possibly whole-genome) sequences."""
    starts = [(i, s) for i, seq in enumerate(sequences) for s in range(0, len(seq) - length + 1, length)]
    if not starts:
        return [seq for seq in sequences if seq]
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(starts), size=min(num, len(starts)), replace=False)
    return [sequences[starts[c][0]][starts[c][1]:starts[c][1] + length] for c in sorted(chosen)]


def comparison_report(cfg: DictConfig, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                      generated: list[str], real: list[str], output: Path) -> dict[str, Any]:
    """Generated vs real vs a Markov baseline: ``<stem>.report.md`` / ``.png`` beside the output."""
    from dnalm.apps import generation_report as report
    from dnalm.apps.likelihood import perplexity

    sets = {"generated": generated}
    order = cfg.get("markov_order")
    if order:
        source = real
        if cfg.get("markov_source"):
            whole = read_sequences(cfg.markov_source, policy=policy_of(cfg.get("data")))["sequence"].tolist()
            source = pieces(whole, 10_000, 2_000, int(cfg.seed))
        sets[f"Markov order {order}"] = report.markov_sample(source, int(order), len(generated), int(cfg.length),
                                                             int(cfg.seed))
    perplexities = None
    if cfg.get("perplexity", True):
        perplexities = {name: perplexity(model, tokenizer, seqs) for name, seqs in
                        {"real (held out)": real, **sets}.items()}
    table = report.compare(sets, real, perplexities=perplexities)
    stem = output.with_suffix("")
    Path(f"{stem}.report.md").write_text(report.markdown(table) + "\n")
    report.plot(table, sets, real, Path(f"{stem}.report.png"))
    return table


def generate(cfg: DictConfig) -> dict[str, Any]:
    """Sample, write ``cfg.output`` (FASTA) and ``<stem>.stats.json``; return the statistics."""
    model, tokenizer = load_causal_lm(cfg.model, bool(cfg.get("allow_untrained_head", False)))
    prompt = normalise(str(cfg.get("prompt") or ""), "prompt", SequencePolicy(empty="skip")) or ""
    began = time.perf_counter()
    sequences, counts = sample(model, tokenizer, int(cfg.num), int(cfg.length), prompt, float(cfg.temperature),
                               cfg.get("top_k"), cfg.get("top_p"), int(cfg.seed), int(cfg.get("batch_size", 32)),
                               pick_device(cfg.get("device", "auto")))
    seconds = time.perf_counter() - began
    reference = None
    if cfg.get("reference"):
        whole = read_sequences(cfg.reference, policy=policy_of(cfg.get("data")))["sequence"].tolist()
        reference = pieces(whole, int(cfg.length), int(cfg.num), int(cfg.seed))
    stats = sequence_stats(sequences, reference, int(cfg.get("k", 4)))
    stats.update(counts, seconds=round(seconds, 3), bp_per_second=round(len(sequences) * int(cfg.length) / seconds, 1),
                 seed=int(cfg.seed), temperature=float(cfg.temperature), top_k=cfg.get("top_k"),
                 top_p=cfg.get("top_p"), prompt=prompt)
    output = Path(str(cfg.output))
    write_fasta(output, [(f"gen_{i} seed={cfg.seed}", s) for i, s in enumerate(sequences)])
    if reference:
        stats["comparison"] = comparison_report(cfg, model, tokenizer, sequences, reference, output)
    stats_path = output.with_suffix(".stats.json")
    stats_path.write_text(json.dumps(stats, indent=2))
    print(json.dumps(stats))
    return stats


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="generate")
def main(cfg: DictConfig) -> None:
    """Command-line entry point."""
    run_task(generate, cfg)


if __name__ == "__main__":
    main()
