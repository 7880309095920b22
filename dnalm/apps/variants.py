"""``python -m dnalm.variants vcf=<file.vcf[.gz]> reference=<fasta> (model.name_or_path=...|ckpt_path=...)``.

For every ALT allele (multi-allelic records are split), a ``window`` bp reference window centred on the
variant and the same window with the allele applied are embedded (``DNALMModule.embed``); the TSV reports
the L2 and cosine distance of the two embeddings, and with a fine-tuned classifier (``ckpt_path``) the change
(alt - ref) in the logit and probability of ``target_class``. For a masked-LM backbone (``llr=true`` with a
model that has a trained MLM head), SNVs also get the log-likelihood ratio log P(alt) - log P(ref) of the
token covering the variant, masked, in the reference context. The annotated VCF copies the input with
``DNALM_*`` INFO fields (one value per ALT).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from dnalm.apps import vcf
from dnalm.configs import CONFIG_DIR
from dnalm.data.reference import Reference
from dnalm.errors import ConfigError, DataError, ModelLoadError
from dnalm.inference import Runner, class_index
from dnalm.models.loading import quiet_load_report, require_fit
from dnalm.utils.cli import run_task

log = logging.getLogger("dnalm.variants")

INFO_FIELDS = {
    "DNALM_L2": "L2 distance between reference and alternative window embeddings",
    "DNALM_COS": "Cosine distance between reference and alternative window embeddings",
    "DNALM_DLOGIT": "Change (alt - ref) in the classifier logit of the target class",
    "DNALM_DPROB": "Change (alt - ref) in the classifier probability of the target class",
    "DNALM_LLR": "Log-likelihood ratio log P(alt) - log P(ref): masked LM at the variant (SNVs), or causal LM over the window",
}


class MaskedLLR:
    """Log-likelihood ratio of an SNV under a masked language model, from the masked token covering it."""

    def __init__(self, reference: str, device: torch.device) -> None:
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        try:
            with quiet_load_report():  # checked below
                model, info = AutoModelForMaskedLM.from_pretrained(reference, output_loading_info=True,
                                                                   ignore_mismatched_sizes=True)
        except (OSError, ValueError, RuntimeError) as err:
            raise ModelLoadError(f"llr=true needs a masked-LM model; cannot load '{reference}': {err}") from err
        heads = require_fit(model, info, reference, "classifier").head_missing
        if heads:
            raise ModelLoadError(f"'{reference}' has no trained masked-LM head (missing {heads[:2]}); set llr=false.")
        self.model = model.to(device).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(reference)
        if self.tokenizer.mask_token_id is None or not self.tokenizer.is_fast:
            raise ModelLoadError(f"'{reference}': llr needs a fast tokenizer with a mask token.")
        self.vocab = self.tokenizer.get_vocab()
        self.device = device

    @torch.inference_mode()
    def __call__(self, window: str, rel: int, alt: str) -> float:
        """LLR of replacing ``window[rel]`` by ``alt``; NaN when the alternative token is not in the vocabulary."""
        enc = self.tokenizer(window, return_offsets_mapping=True, return_tensors="pt")
        offsets = enc.pop("offset_mapping")[0].tolist()
        slot = next((i for i, (a, b) in enumerate(offsets) if a <= rel < b and b > a), None)
        if slot is None:
            return math.nan
        a, b = offsets[slot]
        ref_tok, alt_tok = window[a:b], window[a:rel] + alt + window[rel + 1:b]
        if ref_tok not in self.vocab or alt_tok not in self.vocab:
            return math.nan
        ids = enc["input_ids"].clone()
        ids[0, slot] = self.tokenizer.mask_token_id
        logits = self.model(input_ids=ids.to(self.device), attention_mask=enc["attention_mask"].to(self.device)).logits
        logp = torch.log_softmax(logits[0, slot].float(), dim=-1)
        return float(logp[self.vocab[alt_tok]] - logp[self.vocab[ref_tok]])


class CausalLLR:
    """Log-likelihood ratio of a variant under a causal language model: log P(alt window) - log P(ref window).

    Every variant kind is scored (SNVs, MNVs, indels): both windows are whole sequences the model can score.
    """

    def __init__(self, reference: str, device: torch.device) -> None:
        from dnalm.apps.generate import load_causal_lm

        self.model, self.tokenizer = load_causal_lm(OmegaConf.create({"name_or_path": reference}))
        self.model.to(device)

    def __call__(self, refs: list[str], alts: list[str]) -> np.ndarray:
        """One LLR per (ref window, alt window) pair."""
        from dnalm.apps.likelihood import log_likelihoods

        ref_ll, _ = log_likelihoods(self.model, self.tokenizer, refs)
        alt_ll, _ = log_likelihoods(self.model, self.tokenizer, alts)
        return alt_ll - ref_ll


def is_causal_lm(reference: str) -> bool:
    """Whether a checkpoint folder is a causal (decoder-only) language model."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    model_type = AutoConfig.from_pretrained(reference).model_type
    return model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def score_variants(cfg: DictConfig) -> pd.DataFrame:
    """The per-variant table (see module docstring); also writes the TSV and the annotated VCF."""
    for key in ("vcf", "reference"):
        if not cfg.get(key):
            raise ConfigError(f"give {key}=<file> (vcf=<file.vcf[.gz]> reference=<fasta>).")
    vcf_path = Path(str(cfg.vcf))
    filters = cfg.get("filter")
    selection = vcf.Selection(cfg.get("region"), None if filters is None else [str(f) for f in (
        [filters] if isinstance(filters, str) else filters)], None if cfg.get("min_qual") is None
        else float(cfg.min_qual))
    header, rows = vcf.read_vcf(vcf_path, selection)
    if not rows and (selection.region or selection.filters is not None or selection.min_qual is not None):
        raise DataError(f"no record of {vcf_path} is selected (region={selection.region}, filter={selection.filters}, "
                        f"min_qual={selection.min_qual}).")
    variants, skipped = vcf.split_alleles(rows, vcf_path)
    if skipped:
        log.warning("%d symbolic or non-ACGTN allele(s) are not scored, e.g. %s", len(skipped), skipped[:3])
    reference = Reference(Path(str(cfg.reference)))
    reference.check_names({v.chrom for v in variants}, vcf_path)
    length = int(cfg.window)
    ref_seqs, alt_seqs, starts = [], [], []
    for v in variants:
        contig = reference.contig(v.chrom)
        vcf.check_ref(v, contig)
        assert contig is not None
        ref, alt, start = vcf.windows(v, contig, length)
        ref_seqs.append(ref)
        alt_seqs.append(alt)
        starts.append(start)
    runner, task = Runner.from_cfg(cfg, pooling=cfg.get("pooling"), layer=cfg.get("layer"))
    table = pd.DataFrame({"chrom": [v.chrom for v in variants], "pos": [v.pos + 1 for v in variants],
                          "id": [v.vid for v in variants], "ref": [v.ref for v in variants],
                          "alt": [v.alt for v in variants], "window_start": starts,
                          "kind": ["snv" if len(v.ref) == len(v.alt) == 1 else
                                   "mnv" if len(v.ref) == len(v.alt) else "indel" for v in variants]})
    if variants:
        emb = runner.run(ref_seqs + alt_seqs, "embed", progress="embedding ref and alt windows")
        e_ref, e_alt = emb[:len(variants)], emb[len(variants):]
        table["l2"] = np.linalg.norm(e_ref - e_alt, axis=1)
        norms = np.linalg.norm(e_ref, axis=1) * np.linalg.norm(e_alt, axis=1)
        table["cosine_distance"] = 1.0 - (e_ref * e_alt).sum(1) / np.maximum(norms, 1e-12)
        if task is not None and task.single_label:
            column = class_index(task, cfg.get("target_class"))
            logits = runner.run(ref_seqs + alt_seqs, "logits", progress="classifying ref and alt windows")
            probs = task.probabilities(torch.from_numpy(logits)).numpy()
            n = len(variants)
            table["delta_logit"] = logits[n:, column] - logits[:n, column]
            table["ref_prob"], table["alt_prob"] = probs[:n, column], probs[n:, column]
            table["delta_prob"] = table["alt_prob"] - table["ref_prob"]
        if cfg.get("llr"):
            if cfg.get("ckpt_path") or not cfg.model.get("name_or_path"):
                raise ConfigError("llr=true scores with a pretrained masked LM: give model.name_or_path=<folder>.")
            reference = str(cfg.model.name_or_path)
            if is_causal_lm(reference):
                table["llr"] = CausalLLR(reference, runner.device)(ref_seqs, alt_seqs)
            else:
                scorer = MaskedLLR(reference, runner.device)
                table["llr"] = [scorer(r, v.pos - s, v.alt) if len(v.ref) == len(v.alt) == 1 else math.nan
                                for v, r, s in zip(variants, ref_seqs, starts)]
    out_dir = Path(str(cfg.output_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / f"{cfg.prefix}.tsv", sep="\t", index=False, float_format="%.6g")
    write_annotated(out_dir / f"{cfg.prefix}.vcf", header, rows, variants, table)
    return table


def write_annotated(path: Path, header: list[str], rows: list[list[str]], variants: list[vcf.Variant],
                    table: pd.DataFrame) -> None:
    """The input VCF with ``DNALM_*`` INFO values per ALT allele ('.' for unscored alleles)."""
    columns = {"DNALM_L2": "l2", "DNALM_COS": "cosine_distance", "DNALM_DLOGIT": "delta_logit",
               "DNALM_DPROB": "delta_prob", "DNALM_LLR": "llr"}
    present = {key: col for key, col in columns.items() if col in table.columns}
    values: dict[tuple[int, str], dict[str, str]] = {}
    for i, v in enumerate(variants):
        values[(v.record, v.alt)] = {key: "." if pd.isna(table[col].iloc[i]) else f"{table[col].iloc[i]:.5g}"
                                     for key, col in present.items()}
    lines = [h for h in header if not h.startswith("#CHROM")]
    if not any(h.startswith("##fileformat") for h in lines):
        lines.insert(0, "##fileformat=VCFv4.2")
    lines += [f'##INFO=<ID={key},Number=A,Type=Float,Description="{INFO_FIELDS[key]}">' for key in present]
    lines.append(next((h for h in header if h.startswith("#CHROM")), "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"))
    for index, fields in enumerate(rows):
        fields = fields + ["."] * max(0, 8 - len(fields))
        alts = [a.upper() for a in fields[4].split(",")]
        extra = [f"{key}={','.join(values.get((index, a), {}).get(key, '.') for a in alts)}" for key in present]
        info = [] if fields[7] in (".", "") else [fields[7]]
        fields[7] = ";".join(info + extra) or "."
        lines.append("\t".join(fields))
    path.write_text("\n".join(lines) + "\n")


def variants(cfg: DictConfig) -> dict[str, Any]:
    """Score and print a summary."""
    table = score_variants(cfg)
    summary = {"variants": len(table), "tsv": str(Path(str(cfg.output_dir)) / f"{cfg.prefix}.tsv"),
               "vcf": str(Path(str(cfg.output_dir)) / f"{cfg.prefix}.vcf")}
    print(json.dumps(summary))
    return summary


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="variants")
def main(cfg: DictConfig) -> None:
    """Command-line entry point."""
    run_task(variants, cfg)


if __name__ == "__main__":
    main()
