"""Reading sequences for the applications (FASTA or table, through the bad-input policy) and sequence stats."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd

from dnalm.data.normalise import BadSequenceError, NormaliseReport, SequencePolicy, normalise_many
from dnalm.data.sources import LINE, as_str_objects, read_table
from dnalm.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def warn_duplicate_ids(ids: Sequence[str], path: str | Path) -> int:
    """Log how many records share a name with an earlier one (their outputs stay separate rows); return it."""
    duplicated = pd.Series(list(ids)).duplicated()
    count = int(duplicated.sum())
    if count:
        examples = sorted(set(pd.Series(list(ids))[duplicated].head(3)))
        log.warning("%s: %d record(s) share a name with an earlier record, e.g. %s; each keeps its own output row "
                    "(in input order), so tell them apart by position or rename them", path, count, examples)
    return count


def read_sequences(path: str | Path, sequence_column: str = "sequence", id_column: str | None = "id",
                   policy: SequencePolicy | None = None, label_column: str | None = None) -> pd.DataFrame:
    """``id`` and normalised ``sequence`` columns of a FASTA (.fa/.fasta/.fna), GenBank (.gb/.gbk/.gbff/.genbank),
    EMBL (.embl) or table (.csv/.tsv/.parquet) file.

    Tables without an id column are numbered by row. Records dropped by the policy are logged (counted).
    With ``label_column`` present in a table, its values come along as a ``label`` column.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"input={path} does not exist." if not path.exists() else
                          f"input={path} is a folder; give a FASTA or table file.")
    policy = policy or SequencePolicy()
    frame = read_table(path, sequence_column, policy)
    if sequence_column not in frame.columns:
        raise DataError(f"{path} has no {sequence_column!r} column (it has {[c for c in frame.columns if c != LINE]}); set "
                        "data.sequence_column.")
    ids = (frame[id_column].astype(str) if id_column and id_column in frame.columns
           else pd.Series([str(i) for i in range(len(frame))]))
    report = NormaliseReport()
    lines = frame[LINE].tolist() if LINE in frame.columns else None
    try:
        seqs, kept = normalise_many(as_str_objects(frame[sequence_column]).tolist(), ids.tolist(), policy, report,
                                    lines)
    except BadSequenceError as err:
        raise BadSequenceError(f"{path}: {err}") from err
    warn_duplicate_ids(ids.iloc[kept].tolist(), path)
    if len(kept) != len(frame):
        log.warning("%s: %s", path, report.summary())
    if not kept:
        raise DataError(f"{path} has no usable sequence ({report.summary()}).")
    out = pd.DataFrame({"id": ids.iloc[kept].to_numpy(), "sequence": seqs})
    if label_column and label_column in frame.columns:
        out["label"] = frame[label_column].iloc[kept].to_numpy()
    return out


def check_output(output: str | Path, inputs: Sequence[str | Path], overwrite: bool = False,
                 extra: Sequence[Path] = ()) -> Path:
    """Refuse to write over an input (always) or an existing output (unless ``overwrite``); return the path.

    ``extra`` lists companion files written beside ``output`` (e.g. ``.ids.txt``), checked the same way.
    """
    output = Path(str(output))
    sources = {Path(str(p)).resolve() for p in inputs if p}
    for target in (output, *extra):
        if target.resolve() in sources:
            raise ConfigError(f"output={output} would overwrite the input {target}; choose another output file.")
        if target.exists() and not overwrite:
            raise ConfigError(f"{target} exists; choose another output=..., or set overwrite=true to replace it.")
    return output


def gc_content(seq: str) -> float:
    """Fraction of G and C among the A/C/G/T letters (N not counted); 0 for a sequence without any."""
    acgt = sum(seq.count(b) for b in "ACGT")
    return (seq.count("G") + seq.count("C")) / acgt if acgt else 0.0


def kmer_spectrum(sequences: Iterable[str], k: int) -> np.ndarray:
    """Normalised counts of every ACGT ``k``-mer (lexicographic order) over all sequences; N-containing skipped."""
    index = {"".join(p): i for i, p in enumerate(product("ACGT", repeat=k))}
    counts = np.zeros(len(index), dtype=np.float64)
    for seq in sequences:
        tally = Counter(seq[i:i + k] for i in range(len(seq) - k + 1))
        for kmer, n in tally.items():
            slot = index.get(kmer)
            if slot is not None:
                counts[slot] += n
    total = counts.sum()
    return counts / total if total else counts


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits (0 = identical, 1 = disjoint)."""
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return 0.5 * kl(p) + 0.5 * kl(q)


def write_fasta(path: Path, records: Sequence[tuple[str, str]], width: int = 80) -> None:
    """Write ``(id, sequence)`` records, ``width`` letters per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        for rid, seq in records:
            fh.write(f">{rid}\n")
            for i in range(0, len(seq), width):
                fh.write(seq[i:i + width] + "\n")
