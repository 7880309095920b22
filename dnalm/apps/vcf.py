"""A small VCF reader: records split per ALT allele, REF checked against the reference, windows around them."""

from __future__ import annotations

from collections.abc import Sequence
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


@dataclass
class Selection:
    """Which records to score: a ``region`` (``chr1`` or ``chr1:1-1000000``, 1-based inclusive), FILTER values
    to keep (``PASS`` also keeps records with no FILTER, ``.``) and a minimum QUAL (records without QUAL fail)."""

    region: str | None = None
    filters: list[str] | None = None
    min_qual: float | None = None

    def bounds(self) -> tuple[str, int, int | None] | None:
        """``(contig, start0, end)`` of the region, or None."""
        if not self.region:
            return None
        contig, _, span = str(self.region).partition(":")
        if not span:
            return contig, 0, None
        try:
            lo, _, hi = span.replace(",", "").partition("-")
            return contig, int(lo) - 1, int(hi) if hi else None
        except ValueError:
            raise DataError(f"region={self.region!r} is not chrom or chrom:start-end (1-based, inclusive).") from None

    def keeps(self, record: object) -> bool:
        """Whether a ``pysam.VariantRecord`` passes the FILTER and QUAL selection."""
        if self.filters is not None:
            names = list(record.filter.keys()) or ["PASS"]  # type: ignore[attr-defined]
            if not all(name in self.filters for name in names):
                return False
        if self.min_qual is not None:
            qual = record.qual  # type: ignore[attr-defined]
            if qual is None or qual < self.min_qual:
                return False
        return True


def _has_index(path: Path) -> bool:
    return any(Path(f"{path}{suffix}").is_file() for suffix in (".tbi", ".csi"))


def read_vcf(path: Path, selection: Selection | None = None) -> tuple[list[str], list[list[str]]]:
    """Header lines (``##`` and ``#CHROM``) and the selected data lines split on tabs (VCF or BCF, plain, gzip
    or bgzip, read by ``pysam.VariantFile``; an indexed file is read only within ``selection.region``)."""
    import pysam

    if not path.is_file():
        raise DataError(f"VCF {path} does not exist.")
    selection = selection or Selection()
    bounds = selection.bounds()
    rows: list[list[str]] = []
    try:
        with pysam.VariantFile(str(path)) as handle:
            if bounds is not None and _has_index(path):
                if bounds[0] not in handle.header.contigs:
                    raise DataError(f"region={selection.region}: contig {bounds[0]!r} is not in {path}'s header "
                                    f"(it has {', '.join(list(handle.header.contigs)[:5])}).")
                records = handle.fetch(bounds[0], bounds[1], bounds[2])
            else:
                records = iter(handle)
            for record in records:
                if bounds is not None and (record.chrom != bounds[0] or record.pos <= bounds[1]
                                           or (bounds[2] is not None and record.pos > bounds[2])):
                    continue
                if selection.keeps(record):
                    rows.append(str(record).rstrip("\n").split("\t"))
            header = str(handle.header).rstrip("\n").split("\n")
    except (OSError, ValueError) as err:
        raise DataError(f"cannot read VCF {path}: {err} (record {len(rows) + 1} after the selection).") from err
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
