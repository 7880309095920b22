"""Random access to a reference genome through ``pysam.FastaFile`` (samtools faidx): a window costs a read.

Plain and bgzip-compressed FASTA are indexed on first use (``.fai``, and ``.gzi`` for bgzip) beside the file;
a plain gzip FASTA cannot be indexed and is named with the command that converts it. Contig names are
matched between the VCF and the reference with or without a ``chr`` prefix (``chr1`` / ``1``, ``chrM`` / ``MT``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from dnalm.errors import ConfigError, DataError

log = logging.getLogger(__name__)


class Contig:
    """One reference sequence: ``len()`` and ``[start:end]`` slices (upper case) read from the index on demand."""

    def __init__(self, fasta: object, name: str, length: int) -> None:
        self._fasta, self.name, self._length = fasta, name, length

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, item: slice) -> str:
        start, stop, _ = item.indices(self._length)
        if stop <= start:
            return ""
        return self._fasta.fetch(self.name, start, stop).upper()  # type: ignore[attr-defined]


def _alias(name: str) -> list[str]:
    """Other spellings of a contig name: with/without ``chr``, and the mitochondrion's ``chrM``/``MT``."""
    bare = name[3:] if name.lower().startswith("chr") else name
    names = [bare, f"chr{bare}"]
    if bare.upper() in ("M", "MT"):
        names += ["chrM", "MT", "M"]
    return [n for n in names if n != name]


def is_plain_gzip(path: str | Path) -> bool:
    """gzip without the BGZF block marker (``BC`` extra field): cannot be indexed for random access."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    return head[:2] == b"\x1f\x8b" and not (head[3] & 4 and head[12:14] == b"BC")


class Reference:
    """An indexed FASTA file; :meth:`contig` maps a VCF contig name onto the reference's."""

    def __init__(self, path: Path) -> None:
        import pysam

        if not path.is_file():
            raise ConfigError(f"reference={path} does not exist.")
        try:
            self._fasta = pysam.FastaFile(str(path))  # builds .fai (and .gzi) when missing
        except (OSError, ValueError) as err:
            if is_plain_gzip(path):
                raise DataError(f"reference={path} is gzip but not bgzip, so it cannot be indexed for random "
                                f"access: recompress it with `gunzip -c {path} | bgzip > {path.with_suffix('')}.bgz`"
                                f" (or give the plain FASTA).") from err
            raise DataError(f"reference={path} could not be indexed as FASTA: {err}") from err
        self.path = path
        self.lengths = dict(zip(self._fasta.references, self._fasta.lengths))

    def resolve(self, name: str) -> str | None:
        """The reference's name for the VCF contig ``name`` (``None`` when no spelling matches)."""
        if name in self.lengths:
            return name
        return next((alias for alias in _alias(name) if alias in self.lengths), None)

    def contig(self, name: str) -> Contig | None:
        """The contig called ``name`` in the VCF, or ``None`` when the reference has no such contig."""
        found = self.resolve(name)
        return None if found is None else Contig(self._fasta, found, self.lengths[found])

    def check_names(self, names: set[str], vcf_path: Path) -> None:
        """Stop when none of the VCF's contigs is in the reference (a build or naming mismatch)."""
        if names and not any(self.resolve(n) for n in names):
            raise DataError(f"none of the contigs of {vcf_path} ({', '.join(sorted(names)[:5])}) is in "
                            f"reference={self.path} ({', '.join(list(self.lengths)[:5])}); are they the same "
                            "genome build and naming?")
