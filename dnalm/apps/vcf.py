"""A small VCF reader: records split per ALT allele, REF checked against the reference, windows around them."""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from dnalm.errors import DataError


@dataclass
class Variant:
    """One ALT allele of a VCF record; ``pos`` is 0-based; ``record`` is the data line's index."""

    chrom: str
    pos: int
    vid: str
    ref: str
    alt: str
    record: int

    @property
    def name(self) -> str:
        """``chrom:POS:REF>ALT`` with the 1-based VCF position (and the id when set)."""
        label = f"{self.chrom}:{self.pos + 1}:{self.ref}>{self.alt}"
        return label if self.vid in (".", "") else f"{label} ({self.vid})"


def open_text(path: Path) -> Iterator[str]:
    """Lines of a plain or gzip/bgzip text file."""
    with path.open("rb") as fh:
        magic = fh.read(2)
    opener = gzip.open if magic == b"\x1f\x8b" else open
    with opener(path, "rt") as fh:  # type: ignore[operator]
        yield from fh


def read_vcf(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header lines (``##`` and ``#CHROM``) and data lines split on tabs."""
    if not path.is_file():
        raise DataError(f"VCF {path} does not exist.")
    header: list[str] = []
    rows: list[list[str]] = []
    for lineno, line in enumerate(open_text(path), 1):
        line = line.rstrip("\n")
        if line.startswith("#"):
            header.append(line)
        elif line.strip():
            fields = line.split("\t")
            if len(fields) < 5:
                raise DataError(f"{path}: line {lineno} has {len(fields)} tab-separated fields; a VCF data line "
                                "needs at least CHROM POS ID REF ALT.")
            rows.append(fields)
    return header, rows


def split_alleles(rows: list[list[str]], path: Path) -> tuple[list[Variant], list[str]]:
    """One :class:`Variant` per ALT (multi-allelic records split); symbolic / breakend ALTs are listed apart."""
    out: list[Variant] = []
    skipped: list[str] = []
    for index, fields in enumerate(rows):
        chrom, pos, vid, ref = fields[0], fields[1], fields[2], fields[3].upper()
        if not pos.isdigit() or int(pos) < 1:
            raise DataError(f"{path}: record {index + 1} ({chrom}:{pos}) has POS {pos!r}; POS is a 1-based integer.")
        for alt in fields[4].split(","):
            alt_u = alt.upper()
            if not alt_u or any(c not in "ACGTN" for c in alt_u) or any(c not in "ACGTN" for c in ref):
                skipped.append(f"{chrom}:{pos}:{ref}>{alt}")
                continue
            out.append(Variant(chrom, int(pos) - 1, vid, ref, alt_u, index))
    return out, skipped


def check_ref(variant: Variant, contig: Sequence[str] | None) -> None:
    """Raise :class:`DataError` naming the variant when its contig is absent or its REF does not match."""
    if contig is None:
        raise DataError(f"variant {variant.name}: contig {variant.chrom!r} is not in the reference FASTA.")
    found = contig[variant.pos:variant.pos + len(variant.ref)]
    if found != variant.ref:
        raise DataError(f"variant {variant.name}: REF {variant.ref!r} does not match the reference, which has "
                        f"{found!r} at {variant.chrom}:{variant.pos + 1}; is the VCF on another genome build?")


def windows(variant: Variant, contig: Sequence[str], length: int) -> tuple[str, str, int]:
    """Reference and alternative windows of about ``length`` bp centred on the variant, and the window start.

    Near a contig end the window is shifted to stay inside the contig (or is the whole contig when shorter).
    Both windows span the same reference interval, so an indel changes the alternative's length.
    """
    centre = variant.pos + len(variant.ref) // 2
    start = max(0, min(centre - length // 2, len(contig) - length))
    end = min(len(contig), start + length)
    ref = contig[start:end]
    rel = variant.pos - start
    alt = ref[:rel] + variant.alt + ref[rel + len(variant.ref):]
    return ref, alt, start
