"""A deterministic, promoter-shaped demo task for offline runs and tests.

Positives are core-promoter-like: a transcription start site (TSS) with positional jitter carries an initiator
(Inr, YYANWYY) and, at the spacing real promoters use, a TATA box about 30 nt upstream, a CAAT box about 80 nt
upstream and GC boxes (Sp1 sites) further up; each motif is present only with some probability and mutated at
some bases. Negatives are drawn from the same background and carry the same motifs less often, at random
positions, so presence alone is a weak signal and arrangement is the strong one. The background is a
first-order Markov chain with human-like dinucleotide statistics (AT-rich, CpG-depleted); positives and
negatives are GC-matched, so GC content alone does not separate them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ALPHABET = np.array(list("ACGT"))
# P(next | current), rows/cols in A, C, G, T order: roughly human genome dinucleotide frequencies.
TRANSITIONS = np.array([
    [0.33, 0.17, 0.24, 0.26],
    [0.35, 0.26, 0.05, 0.34],
    [0.29, 0.21, 0.26, 0.24],
    [0.22, 0.20, 0.25, 0.33],
])
IUPAC_CHOICES = {"A": "A", "C": "C", "G": "G", "T": "T", "W": "AT", "R": "AG", "Y": "CT", "N": "ACGT", "S": "CG"}

# (consensus, offset of motif start relative to TSS, jitter, probability in positives)
PROMOTER_MOTIFS = [
    ("TATAWAWR", -31, 2, 0.70),   # TATA box
    ("YYANWYY", -2, 0, 0.80),     # initiator around the TSS
    ("GGCCAATCT", -85, 6, 0.50),  # CAAT box
    ("GGGGCGGGG", -120, 15, 0.60),  # GC box (Sp1)
]


def _background(n: int, length: int, rng: np.random.Generator) -> np.ndarray:
    cumulative = TRANSITIONS.cumsum(axis=1)
    codes = np.empty((n, length), dtype=np.int8)
    codes[:, 0] = rng.integers(0, 4, n)
    draws = rng.random((n, length))
    for pos in range(1, length):
        rows = cumulative[codes[:, pos - 1]]
        codes[:, pos] = (draws[:, pos, None] > rows).sum(axis=1).clip(max=3)
    return codes


def _sample_motif(consensus: str, rng: np.random.Generator, mutation_rate: float) -> np.ndarray:
    letters = [rng.choice(list(IUPAC_CHOICES[c])) for c in consensus]
    codes = np.array(["ACGT".index(c) for c in letters], dtype=np.int8)
    mutate = rng.random(len(codes)) < mutation_rate
    codes[mutate] = rng.integers(0, 4, mutate.sum())
    return codes


def make_demo_sequences(n: int, length: int = 200, seed: int = 0, decoy_rate: float = 0.3,
                        mutation_rate: float = 0.08) -> pd.DataFrame:
    """``n`` sequences, half promoters (label 1), half background with decoy motifs (label 0)."""
    rng = np.random.default_rng(seed)
    codes = _background(n, length, rng)
    labels = np.zeros(n, dtype=np.int64)
    labels[: n // 2] = 1
    rng.shuffle(labels)
    tss_centre = int(length * 0.75)
    for row in range(n):
        if labels[row] == 1:
            tss = tss_centre + int(rng.integers(-10, 11))
            for consensus, offset, jitter, prob in PROMOTER_MOTIFS:
                if rng.random() < prob:
                    motif = _sample_motif(consensus, rng, mutation_rate)
                    start = tss + offset + int(rng.integers(-jitter, jitter + 1))
                    if start < 0 or start + len(motif) > length:
                        continue  # short demo sequences have no room for the far-upstream motifs
                    codes[row, start:start + len(motif)] = motif
        else:
            for consensus, _offset, _jitter, prob in PROMOTER_MOTIFS:
                if rng.random() < prob * decoy_rate:
                    motif = _sample_motif(consensus, rng, mutation_rate)
                    start = int(rng.integers(0, length - len(motif)))
                    codes[row, start:start + len(motif)] = motif
    sequences = ["".join(ALPHABET[r]) for r in codes]
    return pd.DataFrame({"id": [f"demo{seed}_{i}" for i in range(n)], "sequence": sequences, "label": labels})


def make_demo_splits(train: int = 2000, valid: int = 250, test: int = 500, length: int = 200,
                     seed: int = 7) -> dict[str, pd.DataFrame]:
    """Train/valid/test splits drawn independently (different seeds) from the same generator."""
    return {
        "train": make_demo_sequences(train, length, seed),
        "valid": make_demo_sequences(valid, length, seed + 1),
        "test": make_demo_sequences(test, length, seed + 2),
    }
