"""GenBank / EMBL / FASTA copies of the same records, written in a test with Biopython from a real phage genome."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

from Bio import SeqIO
from Bio.Seq import Seq
from Bio.SeqRecord import SeqRecord

from dnalm.data.fasta import read_fasta
from tests.helpers.configs import shared_path

# Extension -> Biopython format name of the copies `write_copies` makes.
FORMATS = {".gb": "genbank", ".embl": "embl", ".fa": "fasta"}


def phage_records(*, first_bp: int = 3000, second_bp: int = 2000) -> list[SeqRecord]:
    """Two records cut from the crAssphage genome (NC_024711.1) in ../shared, the second with IUPAC codes."""
    path = shared_path("data", "gut_phage", "raw", "phage_crassphage_NC_024711.fa.gz")
    _, genome, _ = next(read_fasta(path))
    middle = len(genome) // 2
    second = genome[middle:middle + second_bp // 2] + "RYKM" + genome[middle + second_bp // 2:middle + second_bp]
    return [
        SeqRecord(Seq(genome[:first_bp]), id="NC_024711.1", name="NC_024711",
                  description="Uncultured phage crAssphage, complete genome", annotations={"molecule_type": "DNA"}),
        SeqRecord(Seq(second), id="XX_000002.1", name="XX_000002",
                  description="crAssphage middle segment", annotations={"molecule_type": "DNA"}),
    ]


def write_copies(folder: Path, records: list[SeqRecord], stem: str = "phage") -> dict[str, Path]:
    """``records`` as ``<stem>.gb``, ``.embl`` and ``.fa`` (Biopython's writers), plus a gzipped ``.gbk.gz``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {suffix: folder / f"{stem}{suffix}" for suffix in FORMATS}
    for suffix, fmt in FORMATS.items():
        SeqIO.write(records, paths[suffix], fmt)
    paths[".gbk.gz"] = folder / f"{stem}.gbk.gz"
    with paths[".gb"].open("rb") as plain, gzip.open(paths[".gbk.gz"], "wb") as packed:
        shutil.copyfileobj(plain, packed)
    return paths
