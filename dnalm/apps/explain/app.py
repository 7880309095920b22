"""``python -m dnalm.explain``: ISM, gradient attributions, pictures and motifs for a classifier's inputs.

Writes into ``output_dir``:

- ``summary.tsv``: one row per sequence (id, length, window, reference score and probability, per method the
  position of the largest effect, IG completeness error).
- ``scores/<n>.npz``: per sequence ``sequence``, ``window`` (start, end), ``ism`` (``[W, 4]`` score changes,
  columns A, C, G, T), ``ism_contrib`` (``[W]`` contribution of the base that is there), and one ``[L]``
  per-base array per gradient method.
- ``<method>.bedGraph`` when the ids are genome regions (``chrom:start-end`` as written by ``dnalm.scan`` and
  ``bedtools getfasta``) of the sequence's length: per-base scores at genome coordinates.
- ``plots/<n>.png``: attribution logos and the ISM heat map of the first ``plots.sequences`` sequences.
- ``motifs/`` (``motifs.run=true``): TF-MoDISco patterns, their database matches, logos (see :mod:`.motifs`).
- ``explain.json``: what was run and how fast.
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
import pandas as pd
from omegaconf import DictConfig

from dnalm.apps.explain.attributions import METHODS as GRADIENT_METHODS
from dnalm.apps.explain.attributions import Attributor
from dnalm.apps.explain.ism import ism, parse_positions, reference_contributions, reference_index
from dnalm.apps.explain.scoring import Scorer
from dnalm.apps.inputs import read_sequences
from dnalm.configs import CONFIG_DIR
from dnalm.data.sources import policy_of
from dnalm.errors import ConfigError, DataError
from dnalm.inference import Runner, class_index
from dnalm.tokenizers import reverse_complement
from dnalm.utils.cli import run_task
from dnalm.utils.progress import Progress

log = logging.getLogger("dnalm.explain")

ALL_METHODS = ("ism", *GRADIENT_METHODS)
_REGION = re.compile(r"^(?P<chrom>.+):(?P<start>\d+)-(?P<end>\d+)(\([+-]\))?$")


def select_records(cfg: DictConfig) -> pd.DataFrame:
    """The input records: read through the bad-input policy, filtered by ``only_label``, first ``max_sequences``."""
    data = cfg.data
    label_column = data.get("label_column", "label")
    records = read_sequences(cfg.input, data.get("sequence_column", "sequence"), data.get("id_column") or "id",
                             policy_of(data), label_column=label_column)
    if cfg.get("only_label") is not None:
        if "label" not in records.columns:
            raise ConfigError(f"only_label={cfg.only_label} needs a table input with a {label_column!r} column "
                              f"({cfg.input} has none); set data.label_column.")
        records = records[records["label"].astype(str) == str(cfg.only_label)]
        if records.empty:
            raise DataError(f"{cfg.input}: no record has label {cfg.only_label!r}.")
    limit = cfg.get("max_sequences")
    return records.head(int(limit)) if limit else records


def require_packages(methods: list[str], plots: bool, motifs: bool) -> None:
    """Fail early, with the install command, when an optional package of this run is missing."""
    import importlib.util

    needed = ["captum"] if any(m in GRADIENT_METHODS for m in methods) else []
    needed += ["logomaker", "matplotlib"] if plots or motifs else []
    needed += ["modiscolite", "memelite", "pyjaspar"] if motifs else []
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"this run needs {missing}: pip install 'dnalm[explain]' (or make install).")


def check_methods(methods: list[str]) -> list[str]:
    """The requested methods, validated."""
    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown or not methods:
        raise ConfigError(f"methods={methods}: choose from {list(ALL_METHODS)}, e.g. methods=[ism,ig].")
    return methods


def make_attributor(runner: Runner, scorer: Scorer, cfg: DictConfig) -> Attributor:
    """Gradient attributions on the input-embedding layer of the runner's model."""
    module = runner.module
    return Attributor(model=module, embedding=module.backbone.get_input_embeddings(), tokenizer=runner.tokenizer,
                      score=scorer.logits_to_score, device=runner.device, max_tokens=runner.max_tokens,
                      steps=int(cfg.ig.steps), baseline=str(cfg.ig.baseline),
                      internal_batch_size=int(cfg.ig.internal_batch_size), seed=int(cfg.seed))


def gradient_scores(attributor: Attributor, sequences: list[str], method: str, batch: int,
                    rc_average: bool, progress: Progress | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """Per-base attributions (and IG completeness errors), strand-averaged when asked; ``progress`` counts
    sequences."""
    scores: list[np.ndarray] = []
    deltas: list[np.ndarray] = []
    for at in range(0, len(sequences), batch):
        chunk = sequences[at:at + batch]
        forward, delta = attributor.attribute(chunk, method)
        if rc_average:  # the reverse strand's base i is the forward strand's base L - 1 - i
            reverse, delta_rc = attributor.attribute([reverse_complement(s) for s in chunk], method)
            forward = [0.5 * (f + r[::-1]) for f, r in zip(forward, reverse, strict=True)]
            delta = 0.5 * (delta + delta_rc)
        scores.extend(forward)
        deltas.append(delta)
        if progress is not None:
            progress.advance(len(chunk))
    return scores, np.concatenate(deltas) if deltas else np.zeros(0)


def write_bedgraphs(out_dir: Path, records: pd.DataFrame, per_base: dict[str, list[np.ndarray]]) -> list[str]:
    """One bedGraph per method when every id is a ``chrom:start-end`` region of its sequence's length."""
    regions = [_REGION.match(str(i)) for i in records["id"]]
    lengths = records["sequence"].str.len().tolist()
    if not all(m and int(m["end"]) - int(m["start"]) == n for m, n in zip(regions, lengths, strict=True)):
        return []
    files = []
    for method, arrays in per_base.items():
        path = out_dir / f"{method}.bedGraph"
        with path.open("w") as fh:
            fh.write(f'track type=bedGraph name="{method}" description="dnalm.explain {method} per base"\n')
            for match, scores in zip(regions, arrays, strict=True):
                assert match is not None
                chrom, start = match["chrom"], int(match["start"])
                for i, value in enumerate(scores):
                    if np.isfinite(value):
                        fh.write(f"{chrom}\t{start + i}\t{start + i + 1}\t{value:.6g}\n")
        files.append(str(path))
    return files


def explain(cfg: DictConfig) -> dict[str, Any]:
    """Explain the classifier of ``cfg`` on ``cfg.input``; write the files listed in the module docstring."""
    if not cfg.get("input"):
        raise ConfigError("give input=<FASTA or table file> (and ckpt_path=<classifier> or head=native "
                          "model.name_or_path=<published classifier>).")
    methods = check_methods([str(m) for m in cfg.methods])
    require_packages(methods, int(cfg.plots.sequences) > 0, bool(cfg.motifs.run))
    records = select_records(cfg)
    runner, task = Runner.from_cfg(cfg)
    if task is None:
        raise ConfigError("explanations need a classifier: give ckpt_path=<fine-tuned checkpoint> or a published "
                          "one with head=native model.name_or_path=<folder or id>.")
    scorer = Scorer(runner, task, class_index(task, cfg.get("target_class")), str(cfg.score), bool(cfg.rc_average))
    sequences = records["sequence"].tolist()
    windows = [parse_positions(cfg.get("positions"), len(s)) for s in sequences]
    out_dir = Path(str(cfg.output_dir))
    (out_dir / "scores").mkdir(parents=True, exist_ok=True)
    timing: dict[str, float] = {}

    reference = scorer(sequences)
    per_base: dict[str, list[np.ndarray]] = {}
    ism_delta: list[np.ndarray] = []
    if "ism" in methods:
        started = time.perf_counter()
        with Progress("explain ism", total=len(sequences), unit="sequences") as progress:
            for result in ism(scorer, sequences, windows, int(cfg.ism.mutants_per_call)):
                ism_delta.append(result.delta)
                progress.advance(1)
        timing["ism_seconds"] = time.perf_counter() - started
        mutants = sum(4 * (b - a) - int((reference_index(s[a:b]) >= 0).sum()) for s, (a, b) in zip(sequences, windows))
        timing["ism_mutants"] = mutants
        timing["ism_mutants_per_second"] = mutants / max(timing["ism_seconds"], 1e-9)
        per_base["ism"] = []
        for seq, (start, end), delta in zip(sequences, windows, ism_delta, strict=True):
            full = np.full(len(seq), np.nan)
            full[start:end] = reference_contributions(delta, seq[start:end])
            per_base["ism"].append(full)
    deltas: dict[str, np.ndarray] = {}
    gradient = [m for m in methods if m in GRADIENT_METHODS]
    if gradient:
        attributor = make_attributor(runner, scorer, cfg)
        for method in gradient:
            started = time.perf_counter()
            with Progress(f"explain {method}", total=len(sequences), unit="sequences") as progress:
                per_base[method], deltas[method] = gradient_scores(attributor, sequences, method,
                                                                   int(cfg.ig.batch_size), bool(cfg.rc_average),
                                                                   progress)
            timing[f"{method}_seconds"] = time.perf_counter() - started

    rows = []
    for n, (rid, seq, (start, end)) in enumerate(zip(records["id"], sequences, windows, strict=True)):
        arrays: dict[str, Any] = {"id": str(rid), "sequence": seq, "window": np.array([start, end]),
                                  "reference_score": reference[n]}
        row: dict[str, Any] = {"n": n + 1, "id": rid, "length": len(seq), "window_start": start, "window_end": end,
                               f"score_{scorer.kind}": reference[n]}
        if "label" in records.columns:
            row["label"] = records["label"].iloc[n]
        if ism_delta:
            arrays["ism"], arrays["ism_contrib"] = ism_delta[n], per_base["ism"][n][start:end]
            flat = np.abs(ism_delta[n]).max(1)
            row["ism_top_position"], row["ism_max_abs_delta"] = start + int(flat.argmax()), float(flat.max())
        for method in gradient:
            arrays[method] = per_base[method][n]
            window = np.abs(per_base[method][n][start:end])
            row[f"{method}_top_position"] = start + int(window.argmax())
            if method == "ig":
                row["ig_completeness_error"] = float(deltas[method][n])
        np.savez_compressed(out_dir / "scores" / f"{n + 1}.npz", **arrays)
        rows.append(row)
    summary_table = pd.DataFrame(rows)
    summary_table.to_csv(out_dir / "summary.tsv", sep="\t", index=False, float_format="%.6g")
    files = write_bedgraphs(out_dir, records, per_base)

    plotted = 0
    if int(cfg.plots.sequences) > 0:
        from dnalm.apps.explain import plots

        for n in range(min(int(cfg.plots.sequences), len(sequences))):
            start, end = windows[n]
            tracks = {m: per_base[m][n][start:end] for m in per_base}
            plots.sequence_figure(out_dir / "plots" / f"{n + 1}.png", sequences[n][start:end], start, tracks,
                                  ism_delta[n] if ism_delta else None,
                                  title=f"{records['id'].iloc[n]}  {scorer.kind}({scorer.target}) = {reference[n]:.3f}")
            plotted += 1

    motif_summary: dict[str, Any] | None = None
    if cfg.motifs.run:
        from dnalm.apps.explain import motifs

        source = str(cfg.motifs.scores)
        if source not in per_base:
            raise ConfigError(f"motifs.scores={source} needs that method in methods (methods={methods}).")
        started = time.perf_counter()
        hypothetical = motifs.hypothetical_scores(sequences, windows, source, ism_delta, per_base.get(source))
        motif_summary = motifs.run(cfg.motifs, [s[a:b] for s, (a, b) in zip(sequences, windows, strict=True)],
                                   hypothetical, out_dir / "motifs")
        timing["motifs_seconds"] = time.perf_counter() - started

    summary = {"sequences": len(sequences), "methods": methods, "target_class": scorer.target, "score": scorer.kind,
               "rc_average": scorer.rc_average, "device": str(runner.device), "plots": plotted,
               "bedgraphs": files, "output_dir": str(out_dir),
               **{k: round(v, 3) for k, v in timing.items()}}
    if "ig" in deltas and len(deltas["ig"]):
        summary["ig_max_abs_completeness_error"] = round(float(np.abs(deltas["ig"]).max()), 6)
    if motif_summary is not None:
        summary["motifs"] = motif_summary
    (out_dir / "explain.json").write_text(json.dumps(summary, indent=2, default=str))
    print(json.dumps(summary, default=str))
    return summary


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="explain")
def main(cfg: DictConfig) -> None:
    """Command-line entry point."""
    run_task(explain, cfg)
