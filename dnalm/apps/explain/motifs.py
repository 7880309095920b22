"""Motifs from per-base scores: TF-MoDISco (``modisco-lite``) seqlets and patterns, matched with tomtom
(``memelite``) against JASPAR (``pyjaspar``'s bundled SQLite, offline) or a MEME-format file.

Writes into the motif folder: ``modisco.h5`` (modisco-lite's own format, readable by ``modisco report``),
``motifs.meme`` (trimmed position probability matrices of the patterns), ``motifs.tsv`` (one row per pattern:
sign, seqlets, trimmed span, consensus, mean information content per position in bits (a pattern near 0 bits
is a cluster of unlike seqlets, and its database matches mean little), best matches with tomtom p- and
q-values) and ``<pattern>.png`` logos.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from dnalm.apps.explain.ism import BASES, base_contributions, one_hot
from dnalm.errors import ConfigError

log = logging.getLogger("dnalm.explain")


def hypothetical_scores(sequences: Sequence[str], windows: Sequence[tuple[int, int]], source: str,
                        ism_delta: Sequence[np.ndarray], per_base: Sequence[np.ndarray] | None) -> list[np.ndarray]:
    """``[W, 4]`` hypothetical contributions per sequence window.

    ISM gives every base's effect at every position (mean-centred changes, :func:`base_contributions`); a
    gradient method scores only the base that is there, so its hypothetical matrix is that score on the one-hot
    (TF-MoDISco then clusters on the observed bases alone).
    """
    if source == "ism":
        return [base_contributions(d) for d in ism_delta]
    assert per_base is not None
    return [one_hot(s[a:b]) * np.nan_to_num(p[a:b])[:, None]
            for s, (a, b), p in zip(sequences, windows, per_base, strict=True)]


def _stack(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """``[N, max W, 4]`` float32, shorter windows zero-padded (zero scores make no seqlets)."""
    width = max(len(a) for a in arrays)
    out = np.zeros((len(arrays), width, 4), dtype=np.float32)
    for i, a in enumerate(arrays):
        out[i, :len(a)] = a
    return out


def trim(cwm: np.ndarray, fraction: float = 0.3) -> slice:
    """The span of a pattern whose per-position |contribution| reaches ``fraction`` of its maximum."""
    strength = np.abs(cwm).sum(1)
    above = np.flatnonzero(strength >= fraction * strength.max())
    return slice(int(above[0]), int(above[-1]) + 1) if len(above) else slice(0, len(cwm))


def load_database(cfg: DictConfig) -> dict[str, np.ndarray]:
    """Motif name -> ``[4, W]`` position probability matrix (A, C, G, T), from JASPAR or a MEME file."""
    source = str(cfg.database)
    if source == "jaspar":
        from pyjaspar import jaspardb

        try:
            db = jaspardb(release=str(cfg.jaspar_release))
        except Exception as err:  # pyjaspar raises a bare exception for an unknown release
            raise ConfigError(f"motifs.jaspar_release={cfg.jaspar_release}: {err}") from err
        tax = cfg.get("jaspar_tax_group")
        motifs = db.fetch_motifs(collection=str(cfg.jaspar_collection), tax_group=[str(tax)] if tax else None)
        out = {}
        for motif in motifs:
            counts = np.array([motif.counts[b] for b in BASES], dtype=np.float64)
            counts += 0.01 * counts.sum(0, keepdims=True).clip(min=1) / 4  # a small pseudocount: no log(0)
            out[f"{motif.matrix_id} {motif.name}"] = counts / counts.sum(0, keepdims=True)
        if not out:
            raise ConfigError(f"JASPAR {cfg.jaspar_release} has no {cfg.jaspar_collection} motifs for tax group {tax}.")
        return out
    path = Path(source)
    if not path.is_file():
        raise ConfigError(f"motifs.database={source}: give jaspar or a MEME-format motif file.")
    from memelite.io import read_meme

    motifs = read_meme(str(path))
    if not motifs:
        raise ConfigError(f"motifs.database={path} holds no MEME motif (expected 'MOTIF' and 'letter-probability' "
                          "blocks).")
    return motifs


def match(queries: list[np.ndarray], database: dict[str, np.ndarray], top: int) -> list[list[dict[str, Any]]]:
    """The ``top`` database motifs per query (``[W, 4]`` PPMs) by tomtom p-value, with Benjamini-Hochberg q-values
    over the whole database (as MEME's tomtom reports them)."""
    from memelite import tomtom

    names = list(database)
    targets = [database[n] for n in names]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        p, _, offsets, overlaps, strands = tomtom([q.T for q in queries], targets)[:5]
    out = []
    for row in range(len(queries)):
        order = np.argsort(p[row], kind="stable")
        ranked = p[row][order]
        q = np.minimum.accumulate((ranked * len(ranked) / np.arange(1, len(ranked) + 1))[::-1])[::-1]
        out.append([{"target": names[j], "p": float(p[row, j]), "q": float(min(1.0, q[k])),
                     "strand": "+-"[int(strands[row, j])], "offset": int(offsets[row, j])}
                    for k, j in enumerate(order[:top])])
    return out


def run(cfg: DictConfig, sequences: Sequence[str], hypothetical: Sequence[np.ndarray], out_dir: Path) -> dict[str, Any]:
    """TF-MoDISco on the windows' hypothetical scores; patterns matched against the database; files written."""
    from modiscolite import io as modisco_io
    from modiscolite.tfmodisco import TFMoDISco

    from dnalm.apps.explain import plots

    out_dir.mkdir(parents=True, exist_ok=True)
    hot = _stack([one_hot(s) for s in sequences])
    hyp = _stack(hypothetical)
    pos, neg = TFMoDISco(one_hot=hot, hypothetical_contribs=hyp, sliding_window_size=int(cfg.sliding_window_size),
                         flank_size=int(cfg.flank_size), min_metacluster_size=int(cfg.min_metacluster_size),
                         final_min_cluster_size=int(cfg.final_min_cluster_size),
                         max_seqlets_per_metacluster=int(cfg.max_seqlets_per_metacluster),
                         n_leiden_runs=int(cfg.n_leiden_runs), target_seqlet_fdr=float(cfg.target_seqlet_fdr))
    modisco_io.save_hdf5(str(out_dir / "modisco.h5"), pos, neg, int(cfg.sliding_window_size))
    patterns = [("pos", i, p) for i, p in enumerate(pos or [])] + [("neg", i, p) for i, p in enumerate(neg or [])]
    if not patterns:
        log.warning("TF-MoDISco found no pattern in %d sequences (too few seqlets or too weak scores).", len(sequences))
        pd.DataFrame(columns=["pattern", "sign", "seqlets"]).to_csv(out_dir / "motifs.tsv", sep="\t", index=False)
        return {"patterns": 0, "table": str(out_dir / "motifs.tsv")}
    database = load_database(cfg)
    trimmed = []
    for _, _, pattern in patterns:
        span = trim(np.asarray(pattern.contrib_scores))
        trimmed.append((np.asarray(pattern.sequence)[span], np.asarray(pattern.contrib_scores)[span]))
    matches = match([ppm for ppm, _ in trimmed], database, int(cfg.top_matches))
    rows = []
    meme = {}
    for (sign, index, pattern), (ppm, cwm), hits in zip(patterns, trimmed, matches, strict=True):
        name = f"{sign}_pattern_{index}"
        consensus = "".join(BASES[i] for i in ppm.argmax(1))
        row: dict[str, Any] = {"pattern": name, "sign": sign, "seqlets": len(pattern.seqlets), "length": len(ppm),
                               "consensus": consensus, "mean_bits": float(plots.information_content(ppm).sum(1).mean())}
        for rank, hit in enumerate(hits, start=1):
            row.update({f"match{rank}": hit["target"], f"match{rank}_p": hit["p"], f"match{rank}_q": hit["q"],
                        f"match{rank}_strand": hit["strand"]})
        rows.append(row)
        meme[f"{name} {consensus}"] = ppm
        best = (hits[0]["target"], database[hits[0]["target"]].T) if hits else None
        if best is not None and hits[0]["strand"] == "-":  # draw the match as it aligns: reverse complement
            best = (best[0] + " (reverse complement)", best[1][::-1, ::-1])
        plots.motif_figure(out_dir / f"{name}.png", f"{name} ({len(pattern.seqlets)} seqlets)", cwm, ppm, best)
    write_meme(out_dir / "motifs.meme", meme)
    table = pd.DataFrame(rows)
    table.to_csv(out_dir / "motifs.tsv", sep="\t", index=False, float_format="%.3g")
    return {"patterns": len(rows), "table": str(out_dir / "motifs.tsv"),
            "top": [{k: r.get(k) for k in ("pattern", "seqlets", "consensus", "match1", "match1_q")} for r in rows]}


def write_meme(path: Path, motifs: dict[str, np.ndarray]) -> None:
    """A minimal MEME-format file of ``[W, 4]`` probability matrices (readable by MEME tools and memelite)."""
    lines = ["MEME version 4", "", "ALPHABET= ACGT", "", "strands: + -", "",
             "Background letter frequencies", "A 0.25 C 0.25 G 0.25 T 0.25", ""]
    for name, ppm in motifs.items():
        probs = np.clip(ppm, 0, None)
        probs = probs / np.where(probs.sum(1, keepdims=True) > 0, probs.sum(1, keepdims=True), 1)
        lines += [f"MOTIF {name}", f"letter-probability matrix: alength= 4 w= {len(probs)} nsites= 20 E= 0"]
        lines += [" ".join(f"{v:.6f}" for v in row) for row in probs] + [""]
    path.write_text("\n".join(lines))
