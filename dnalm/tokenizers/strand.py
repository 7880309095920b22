"""Reverse complement of DNA sequences (IUPAC-aware, case-preserving), via ``str.translate``."""

from __future__ import annotations

from collections.abc import Iterable

# IUPAC complements: R=A/G <-> Y=C/T, K=G/T <-> M=A/C, B=not A <-> V=not T, D=not C <-> H=not G;
# S (C/G), W (A/T), N and gaps are their own complements. U (RNA) complements to A.
_PAIRS = {
    "A": "T", "T": "A", "U": "A", "C": "G", "G": "C",
    "R": "Y", "Y": "R", "K": "M", "M": "K", "B": "V", "V": "B", "D": "H", "H": "D",
    "S": "S", "W": "W", "N": "N", "-": "-", ".": ".",
}
_COMPLEMENT = str.maketrans(
    "".join(_PAIRS) + "".join(_PAIRS).lower(),
    "".join(_PAIRS.values()) + "".join(_PAIRS.values()).lower(),
)


def complement(seq: str) -> str:
    """Complement each base (IUPAC codes included, case kept); other characters are left unchanged."""
    return seq.translate(_COMPLEMENT)


def reverse_complement(seq: str) -> str:
    """Reverse complement of one sequence, e.g. ``"AACGN" -> "NCGTT"``; IUPAC codes and case are handled."""
    return seq.translate(_COMPLEMENT)[::-1]


def reverse_complement_batch(sequences: Iterable[str]) -> list[str]:
    """Reverse complement of each sequence of a batch, in the input order."""
    sequences = list(sequences)
    if not sequences:
        return []
    joined = "\n".join(sequences)
    if joined.count("\n") != len(sequences) - 1:  # a sequence holds the separator: go one by one
        return [reverse_complement(s) for s in sequences]
    # One translate and one reversal for the whole batch; reversing also reverses the order.
    return joined.translate(_COMPLEMENT)[::-1].split("\n")[::-1]
