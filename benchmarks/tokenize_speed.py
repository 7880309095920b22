"""Tokenizer throughput: dnalm's numpy tokenizers against the transformers tokenizer of the same vocabulary.

    python benchmarks/tokenize.py                 # 10,000 x 1,024 nt
    python benchmarks/tokenize.py --n 500 --length 300

Asserts identical ids, then prints Mbp/s of each and the speed-up.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its name shadows the standard
# library's ``tokenize`` (imported by numpy via inspect): put the repository root there instead.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402

import numpy as np  # noqa: E402

from dnalm.tokenizers import (  # noqa: E402
    KmerTokenizer,
    OverlappingKmerTokenizer,
    hyenadna_tokenizer,
    to_kmer_text,
)


def random_sequences(n: int, length: int, seed: int = 0, n_fraction: float = 0.001) -> list[str]:
    """``n`` random upper-case sequences of ``length`` nt with a sprinkle of N."""
    rng = np.random.default_rng(seed)
    p = [(1 - n_fraction) / 4] * 4 + [n_fraction]
    letters = np.frombuffer(b"ACGTN", dtype=np.uint8)
    codes = rng.choice(5, size=(n, length), p=p)
    return [row.tobytes().decode("ascii") for row in letters[codes]]


def timed(fn: Callable[[], list]) -> tuple[list, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def compare(name: str, ours: Callable[[], list], theirs: Callable[[], list], bases: int) -> dict[str, float]:
    """Run both, assert identical ids, return throughput in Mbp/s."""
    ours_ids, t_ours = timed(ours)
    their_ids, t_theirs = timed(theirs)
    assert len(ours_ids) == len(their_ids)
    for i, (a, b) in enumerate(zip(ours_ids, their_ids, strict=True)):
        if a.tolist() != list(b):
            raise AssertionError(f"{name}: ids differ on sequence {i}")
    return {"name": name, "dnalm": bases / t_ours / 1e6, "hf": bases / t_theirs / 1e6,
            "ratio": t_theirs / t_ours, "t_dnalm": t_ours, "t_hf": t_theirs}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="number of sequences")
    parser.add_argument("--length", type=int, default=1_024, help="sequence length (nt)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    seqs = random_sequences(args.n, args.length, args.seed)
    bases = args.n * args.length
    rows = []

    nt = KmerTokenizer(k=6)
    esm = nt.to_hf()
    rows.append(compare("NT 6-mer (EsmTokenizer)", lambda: nt(seqs)["input_ids"],
                        lambda: esm(seqs)["input_ids"], bases))

    dnabert = OverlappingKmerTokenizer(k=6)
    bert = dnabert.to_hf()

    def bert_ids() -> list:
        # DNABERT's own pipeline: space-separated k-mers, then BertTokenizer. The k-mer text is part of it.
        return bert([to_kmer_text(s, 6) for s in seqs])["input_ids"]

    rows.append(compare("DNABERT 6-mer (BertTokenizer)", lambda: dnabert(seqs)["input_ids"], bert_ids, bases))

    char = hyenadna_tokenizer()
    char_hf = char.to_hf()
    rows.append(compare("single nucleotide (PreTrainedTokenizerFast)", lambda: char(seqs)["input_ids"],
                        lambda: char_hf(seqs)["input_ids"], bases))

    print(f"{args.n:,} sequences x {args.length:,} nt = {bases / 1e6:.2f} Mbp; ids identical in every row\n")
    print("| tokenizer | dnalm Mbp/s | transformers Mbp/s | speed-up |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['name']} | {r['dnalm']:.1f} | {r['hf']:.2f} | {r['ratio']:.0f}x |")


if __name__ == "__main__":
    main()
