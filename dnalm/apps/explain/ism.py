"""Saturation in-silico mutagenesis: every position x {A, C, G, T}, scored in shared batches from DNA.

Each mutant is a DNA string re-tokenized by the model's own tokenizer (for k-mer and BPE vocabularies one base
change can change the whole tokenization, which is what the model sees), so the scores are those of
``python -m dnalm.predict`` on the mutated sequence. Mutants of several sequences fill the same batches; the
reference sequence is scored in the same call as its mutants.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from dnalm.errors import ConfigError

BASES = "ACGT"
_CODES = np.frombuffer(BASES.encode(), dtype=np.uint8)
_INDEX = np.full(256, -1, dtype=np.int64)
_INDEX[_CODES] = np.arange(4)


@dataclass(frozen=True)
class IsmResult:
    """``delta[i, b]``: score(sequence with base ``b`` at ``start + i``) - score(sequence); 0 at the reference."""

    start: int
    delta: np.ndarray  # [end - start, 4] float64, columns A, C, G, T
    reference_score: float

    @property
    def end(self) -> int:
        """One past the last mutated position."""
        return self.start + len(self.delta)


def parse_positions(spec: str | None, length: int) -> tuple[int, int]:
    """``"start:end"`` (0-based, end exclusive; either side may be empty or negative, as in Python) -> bounds."""
    if spec is None or str(spec).strip() in ("", ":"):
        return 0, length
    text = str(spec).strip()
    if ":" not in text:
        raise ConfigError(f"positions={text!r}: give start:end (0-based, end exclusive), e.g. positions=100:200.")
    left, right = (part.strip() for part in text.split(":", 1))
    try:
        start = int(left) if left else 0
        end = int(right) if right else length
    except ValueError:
        raise ConfigError(f"positions={text!r}: start and end must be integers, e.g. positions=100:200.") from None
    start, end = (start + length if start < 0 else start), (end + length if end < 0 else end)
    start, end = max(0, start), min(length, end)
    if start >= end:
        raise ConfigError(f"positions={text!r} selects no base of a {length} bp sequence.")
    return start, end


def reference_index(sequence: str) -> np.ndarray:
    """Column (0-3) of each base of ``sequence`` in A, C, G, T; -1 for anything else (N)."""
    return _INDEX[np.frombuffer(sequence.encode("ascii"), dtype=np.uint8)]


def one_hot(sequence: str) -> np.ndarray:
    """``[L, 4]`` float32 one-hot (A, C, G, T); N rows are all zero."""
    index = reference_index(sequence)
    out = np.zeros((len(sequence), 4), dtype=np.float32)
    known = index >= 0
    out[np.flatnonzero(known), index[known]] = 1.0
    return out


def mutants(sequence: str, start: int, end: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Every single-base substitution in ``[start, end)``: (strings, positions, base columns).

    The reference base itself is left out (its delta is 0 by definition); at an N every base is a mutant.
    """
    codes = np.frombuffer(sequence.encode("ascii"), dtype=np.uint8)
    positions = np.repeat(np.arange(start, end), 4)
    columns = np.tile(np.arange(4), end - start)
    keep = columns != reference_index(sequence)[positions]
    positions, columns = positions[keep], columns[keep]
    rows = np.tile(codes, (len(positions), 1))
    rows[np.arange(len(positions)), positions] = _CODES[columns]
    return [row.tobytes().decode("ascii") for row in rows], positions, columns


def ism(score: Callable[[Sequence[str]], np.ndarray], sequences: Sequence[str], windows: Sequence[tuple[int, int]],
        mutants_per_call: int = 4096) -> Iterator[IsmResult]:
    """ISM of each sequence over its ``(start, end)`` window, in input order.

    ``score`` maps DNA strings to scores (a :class:`~dnalm.apps.explain.scoring.Scorer`). Sequences are
    gathered until about ``mutants_per_call`` mutants are pending, then all of them (and their references)
    are scored in one call, which the runner cuts into full batches.
    """
    pending: list[tuple[int, int, np.ndarray, np.ndarray]] = []  # (start, end, positions, columns)
    strings: list[str] = []

    def flush() -> Iterator[IsmResult]:
        scores = score(strings)
        at = 0
        for start, end, positions, columns in pending:
            reference, n = float(scores[at]), len(positions)
            delta = np.zeros((end - start, 4), dtype=np.float64)
            delta[positions - start, columns] = scores[at + 1:at + 1 + n] - reference
            at += 1 + n
            yield IsmResult(start, delta, reference)
        pending.clear()
        strings.clear()

    for seq, (start, end) in zip(sequences, windows, strict=True):
        muts, positions, columns = mutants(seq, start, end)
        pending.append((start, end, positions, columns))
        strings.append(seq)
        strings.extend(muts)
        if len(strings) >= mutants_per_call:
            yield from flush()
    if pending:
        yield from flush()


def base_contributions(delta: np.ndarray) -> np.ndarray:
    """``[W, 4]`` mean-centred ISM, the hypothetical contribution of each base at each position.

    Centred over the four bases (the reference's 0 included), so the contribution of the base that is there
    is minus the mean effect of replacing it: positive where the reference base helps the score.
    """
    return delta - delta.mean(axis=1, keepdims=True)


def reference_contributions(delta: np.ndarray, sequence_window: str) -> np.ndarray:
    """``[W]`` contribution of the base that is there (0 at N) from :func:`base_contributions`."""
    hyp = base_contributions(delta)
    index = reference_index(sequence_window)
    out = np.zeros(len(delta), dtype=np.float64)
    known = index >= 0
    out[known] = hyp[np.flatnonzero(known), index[known]]
    return out
