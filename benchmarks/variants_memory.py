"""Peak memory of ``dnalm.variants`` scoring SNVs spread over a whole-genome-sized reference.

Generates a random reference (``--mbp`` Mbp in ``--contigs`` contigs, written in 60 bp lines) and a VCF of
``--snvs`` SNVs spread evenly over it in a temporary folder, saves a tiny random ESM, then measures in child
processes (peak RSS from ``getrusage``):

* ``indexed``: ``python -m dnalm.variants`` as it is (windows read through the ``.fai`` index);
* ``whole contigs``: the previous way of reading the reference — every wanted contig kept as a Python
  string (only the reading, with the same imports; the scoring comes on top of it).

    python benchmarks/variants_memory.py                  # 250 Mbp, 10,000 SNVs
    python benchmarks/variants_memory.py --mbp 5 --snvs 200
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BASES = np.frombuffer(b"ACGT", dtype=np.uint8)


def write_reference(folder: Path, mbp: float, contigs: int, snvs: int, seed: int) -> tuple[Path, Path]:
    """A random FASTA and a VCF with SNVs spread evenly over its contigs (REF read from the sequence)."""
    rng = np.random.default_rng(seed)
    length = int(mbp * 1e6 / contigs) // 60 * 60
    per_contig = max(1, snvs // contigs)
    fasta, vcf = folder / "ref.fa", folder / "snvs.vcf"
    rows = []
    with fasta.open("wb") as fh:
        for c in range(contigs):
            name = f"chr{c + 1}"
            seq = BASES[rng.integers(0, 4, size=length)]
            lines = np.concatenate([seq.reshape(-1, 60), np.full((length // 60, 1), ord("\n"), np.uint8)], axis=1)
            fh.write(f">{name}\n".encode())
            fh.write(lines.tobytes())
            for pos in np.linspace(1000, length - 1000, per_contig, dtype=np.int64):
                ref = chr(seq[pos])
                alt = "ACGT"[("ACGT".index(ref) + 1) % 4]
                rows.append(f"{name}\t{pos + 1}\t.\t{ref}\t{alt}\t.\tPASS\t.\n")
    header = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    vcf.write_text(header + "".join(rows))
    return fasta, vcf


def save_tiny_model(folder: Path) -> Path:
    from dnalm.models.tiny import build_tiny

    model, tokenizer = build_tiny({"model_type": "esm", "hidden_size": 16, "num_hidden_layers": 1,
                                   "num_attention_heads": 2, "intermediate_size": 32,
                                   "max_position_embeddings": 256, "position_embedding_type": "rotary"})
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def child_peak(args: list[str], cwd: Path) -> tuple[float, float]:
    """Run a child Python; its own peak RSS in MB (``wait4``) and wall seconds."""
    start = time.perf_counter()
    with (cwd / "child.log").open("w") as log:
        proc = subprocess.Popen([sys.executable, *args], cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                env={"PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit((cwd / "child.log").read_text()[-3000:])
    return usage.ru_maxrss / 1024, time.perf_counter() - start


WHOLE_CONTIGS = """
import sys
import dnalm.variants  # the same imports as a scoring run
from dnalm.data.fasta import read_fasta
contigs = {rid: seq for rid, seq, _ in read_fasta(sys.argv[1])}
print(sum(map(len, contigs.values())))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mbp", type=float, default=250.0)
    parser.add_argument("--contigs", type=int, default=10)
    parser.add_argument("--snvs", type=int, default=10_000)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        fasta, vcf = write_reference(folder, args.mbp, args.contigs, args.snvs, seed=0)
        model = save_tiny_model(folder / "model")
        peak, seconds = child_peak(["-c", WHOLE_CONTIGS, str(fasta)], folder)
        rows.append({"route": "whole contigs as strings (reading only)", "peak_rss_mb": round(peak),
                     "seconds": round(seconds, 1)})
        peak, seconds = child_peak(["-m", "dnalm.variants", "model=hf", f"model.name_or_path={model}",
                                    f"vcf={vcf}", f"reference={fasta}", f"window={args.window}", "device=cpu",
                                    f"hydra.run.dir={folder / 'run'}"], folder)
        scored = sum(1 for _ in (folder / "run" / "variants.tsv").open()) - 1
        rows.append({"route": f"dnalm.variants, indexed ({scored} SNVs scored)", "peak_rss_mb": round(peak),
                     "seconds": round(seconds, 1)})
    print(f"reference {args.mbp:g} Mbp in {args.contigs} contigs, {args.snvs} SNVs, window {args.window} bp")
    print("| route | peak RSS (MB) | seconds |\n|---|---|---|")
    for row in rows:
        print(f"| {row['route']} | {row['peak_rss_mb']} | {row['seconds']} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
