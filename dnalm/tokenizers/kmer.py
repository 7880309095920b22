"""k-mer tokenizers, vectorised with numpy.

* ``KmerTokenizer``: non-overlapping k-mers as in the Nucleotide Transformer (NT v1/v2): each run of
  A/C/G/T is cut into k-mers from its left end, the tail shorter than k (and every ``N``) falls back to
  single-nucleotide tokens. Ids equal ``transformers.EsmTokenizer`` on NT's published ``vocab.txt``.
* ``OverlappingKmerTokenizer``: DNABERT's overlapping k-mers (stride 1, k = 3..6) with ``[CLS] ... [SEP]``.
  Ids equal DNABERT's ``BertTokenizer`` applied to the space-separated k-mers.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .base import Batch, DNATokenizer, UnknownPolicy, byte_table, ranges

# Both NT and DNABERT order k-mers lexicographically with A < T < C < G.
NUCLEOTIDE_ORDER = "ATCG"
NT_SPECIAL_TOKENS = ("<unk>", "<pad>", "<mask>", "<cls>", "<eos>", "<bos>")
DNABERT_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

_BASE, _N, _OTHER = 4, 4, 5  # codes: 0..3 = A,T,C,G; 4 = N; 5 = anything else


def all_kmers(k: int) -> list[str]:
    """All 4**k k-mers in the A<T<C<G lexicographic order NT and DNABERT use."""
    return ["".join(p) for p in itertools.product(NUCLEOTIDE_ORDER, repeat=k)]


def nt_vocab(k: int = 6) -> list[str]:
    """NT's vocabulary in id order: 6 specials, the 4**k k-mers, then A, T, C, G, N (4,107 tokens for k=6)."""
    return [*NT_SPECIAL_TOKENS, *all_kmers(k), *NUCLEOTIDE_ORDER, "N"]


def dnabert_vocab(k: int) -> list[str]:
    """DNABERT's vocabulary in id order: 5 specials then the 4**k k-mers (69 tokens for k=3)."""
    return [*DNABERT_SPECIAL_TOKENS, *all_kmers(k)]


def _code_table(uppercase: bool) -> bytes:
    mapping = {c: i for i, c in enumerate(NUCLEOTIDE_ORDER)} | {"N": _N}
    return byte_table(mapping, _OTHER, uppercase)


def _kmer_codes(codes: np.ndarray, positions: np.ndarray, k: int) -> np.ndarray:
    """Base-4 code of the k-mer starting at each position (codes must be 0..3 there)."""
    if len(positions) == 0:  # e.g. a whole batch shorter than k: there is no window to view
        return np.zeros(0, dtype=np.int64)
    rows = np.lib.stride_tricks.sliding_window_view(codes, k)[positions]  # one gather of k-byte rows
    value = rows[:, 0].astype(np.int64)
    for j in range(1, k):
        value <<= 2
        value |= rows[:, j]
    return value


def _rolling_codes(codes: np.ndarray, k: int) -> np.ndarray:
    """Base-4 code of the k-mer at every position 0..n-k (codes clipped to 0..3), with shifted slices."""
    m = len(codes) - k + 1
    dtype = np.uint16 if k <= 8 else np.uint32
    wide = np.minimum(codes, 3).astype(dtype)
    value = wide[:m] << (2 * (k - 1))
    for j in range(1, k):
        value |= wide[j : j + m] << (2 * (k - 1 - j))
    return value


def _runs(mask: np.ndarray, seq_starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end of each maximal run of True in ``mask``, breaking runs at sequence boundaries."""
    n = len(mask)
    boundary = np.zeros(n + 1, dtype=bool)
    boundary[seq_starts[lengths > 0]] = True
    boundary[n] = True
    prev = np.concatenate(([False], mask[:-1]))
    nxt = np.concatenate((mask[1:], [False]))
    starts = np.flatnonzero(mask & (boundary[:n] | ~prev))
    ends = np.flatnonzero(mask & (boundary[1:] | ~nxt)) + 1
    return starts, ends


class KmerTokenizer(DNATokenizer):
    """Non-overlapping k-mer tokenizer, Nucleotide Transformer style (NT's published tokenizer for k=6).

    Args:
        k: k-mer length (NT uses 6).
        add_cls: prepend ``<cls>`` (NT does).
        add_eos: append ``<eos>`` (NT's published tokenizer does not).
        uppercase: treat lower-case a/c/g/t/n as upper-case (HF's tokenizer maps them to ``<unk>``).
        on_unknown: ``"error"`` raises on characters outside A/C/G/T/N naming the record; ``"unk"``
            maps each run of them to one ``<unk>`` exactly as ``EsmTokenizer`` does.
    """

    def __init__(
        self,
        k: int = 6,
        add_cls: bool = True,
        add_eos: bool = False,
        uppercase: bool = True,
        on_unknown: UnknownPolicy = "error",
    ) -> None:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if on_unknown not in ("error", "unk"):
            raise ValueError(f"on_unknown must be 'error' or 'unk', got {on_unknown!r}")
        self.k, self.add_cls, self.add_eos = k, add_cls, add_eos
        self.uppercase, self.on_unknown = uppercase, on_unknown
        self.tokens = nt_vocab(k)
        self.vocab = {tok: i for i, tok in enumerate(self.tokens)}
        self.special_tokens = {
            "unk": "<unk>", "pad": "<pad>", "mask": "<mask>", "cls": "<cls>", "eos": "<eos>", "bos": "<bos>"
        }
        self._kmer_offset = len(NT_SPECIAL_TOKENS)
        self._single_offset = self._kmer_offset + 4**k  # ids of A, T, C, G, N follow the k-mers
        self._table = _code_table(uppercase)

    def _prefix_ids(self) -> list[int]:
        return [self.vocab["<cls>"]] if self.add_cls else []

    def _suffix_ids(self) -> list[int]:
        return [self.vocab["<eos>"]] if self.add_eos else []

    @property
    def _byte_codes(self) -> bytes:
        return self._table

    def _tokenize_flat(self, batch: Batch, return_offsets: bool):
        k, codes = self.k, batch.codes
        if codes.max(initial=0) < _BASE:
            # Only A/C/G/T: each non-empty sequence is one run (an empty one has no segment to count).
            nonempty = batch.lengths > 0
            run_start, run_end = batch.seq_starts[nonempty], batch.seq_ends[nonempty]
            n_pos = unk_start = unk_end = np.zeros(0, dtype=np.int64)
        else:
            run_start, run_end = _runs(codes < _BASE, batch.seq_starts, batch.lengths)
            n_pos = np.flatnonzero(codes == _N)
            other = codes == _OTHER
            if other.any():
                if self.on_unknown == "error":
                    batch.raise_unknown(np.flatnonzero(other), type(self).__name__)
                unk_start, unk_end = _runs(other, batch.seq_starts, batch.lengths)
            else:
                unk_start = unk_end = np.zeros(0, dtype=np.int64)
        n_full = (run_end - run_start) // k
        full_end = run_start + n_full * k
        n_tail = run_end - full_end

        # Segments (runs, Ns, unknown runs) never overlap: order them by start, then lay their tokens out.
        seg_start = np.concatenate((run_start, n_pos, unk_start))
        seg_tokens = np.concatenate((n_full + n_tail, np.ones(len(n_pos) + len(unk_start), dtype=np.int64)))
        order = np.argsort(seg_start, kind="stable")
        seg_offset = np.empty(len(seg_start), dtype=np.int64)
        seg_offset[order] = np.cumsum(seg_tokens[order]) - seg_tokens[order]
        n_runs, n_ns = len(run_start), len(n_pos)
        run_off, n_off, unk_off = np.split(seg_offset, [n_runs, n_runs + n_ns])
        total = int(seg_tokens.sum())

        kmer_pos = ranges(run_start, n_full, step=k)
        kmer_dest = ranges(run_off, n_full)
        tail_pos = ranges(full_end, n_tail)
        tail_dest = ranges(run_off + n_full, n_tail)
        ids = np.empty(total, dtype=np.int64)
        ids[kmer_dest] = self._kmer_offset + _kmer_codes(codes, kmer_pos, k)
        ids[tail_dest] = self._single_offset + codes[tail_pos].astype(np.int64)
        ids[n_off] = self._single_offset + _N
        ids[unk_off] = self.vocab["<unk>"]

        seq_of_seg = np.searchsorted(batch.seq_ends, seg_start, side="right")
        counts = np.bincount(seq_of_seg, weights=seg_tokens, minlength=len(batch.lengths)).astype(np.int64)
        if not return_offsets:
            return ids, counts, None, None
        starts = np.empty(total, dtype=np.int64)
        ends = np.empty(total, dtype=np.int64)
        for dest, pos, end in ((kmer_dest, kmer_pos, kmer_pos + k), (tail_dest, tail_pos, tail_pos + 1),
                               (n_off, n_pos, n_pos + 1), (unk_off, unk_start, unk_end)):
            starts[dest], ends[dest] = pos, end
        return ids, counts, starts, ends

    def config(self) -> dict[str, Any]:
        return {
            "k": self.k, "add_cls": self.add_cls, "add_eos": self.add_eos,
            "uppercase": self.uppercase, "on_unknown": self.on_unknown,
        }

    def to_hf(self) -> Any:
        """The equivalent ``transformers.EsmTokenizer`` (NT's published tokenizer class)."""
        from transformers import EsmTokenizer

        with tempfile.TemporaryDirectory() as tmp:
            vocab_file = Path(tmp) / "vocab.txt"
            vocab_file.write_text("\n".join(self.tokens))
            return EsmTokenizer(
                str(vocab_file),
                eos_token="<eos>" if self.add_eos else None,
                bos_token="<bos>",
                model_max_length=1_000_000_000,
            )


class OverlappingKmerTokenizer(DNATokenizer):
    """Overlapping k-mer tokenizer (stride 1), DNABERT style, with ``[CLS] ... [SEP]``.

    A sequence of length L gives max(L - k + 1, 0) k-mers; a k-mer holding anything other than
    A/C/G/T (e.g. ``N``) is ``[UNK]``, as DNABERT's tokenizer gives.

    Args:
        k: 3, 4, 5 or 6 (DNABERT's published models).
        uppercase: treat lower-case letters as upper-case.
        on_unknown: ``"error"`` raises on characters outside A/C/G/T/N naming the record; ``"unk"``
            turns k-mers holding them into ``[UNK]`` like ``N``.
    """

    def __init__(self, k: int = 6, uppercase: bool = True, on_unknown: UnknownPolicy = "error") -> None:
        if not 1 <= k <= 12:
            raise ValueError(f"k must be in 1..12 (DNABERT publishes 3..6), got {k}")
        if on_unknown not in ("error", "unk"):
            raise ValueError(f"on_unknown must be 'error' or 'unk', got {on_unknown!r}")
        self.k, self.uppercase, self.on_unknown = k, uppercase, on_unknown
        self.tokens = dnabert_vocab(k)
        self.vocab = {tok: i for i, tok in enumerate(self.tokens)}
        self.special_tokens = {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}
        self._table = _code_table(uppercase)

    def _prefix_ids(self) -> list[int]:
        return [self.vocab["[CLS]"]]

    def _suffix_ids(self) -> list[int]:
        return [self.vocab["[SEP]"]]

    @property
    def _byte_codes(self) -> bytes:
        return self._table

    def _tokenize_flat(self, batch: Batch, return_offsets: bool):
        k, codes = self.k, batch.codes
        n = len(codes)
        counts = np.maximum(batch.lengths - k + 1, 0)
        has_non_acgt = codes.max(initial=0) >= _BASE
        if has_non_acgt and self.on_unknown == "error":
            other = np.flatnonzero(codes == _OTHER)
            if len(other):
                batch.raise_unknown(other, type(self).__name__)
        if n < k:
            empty = np.zeros(0, dtype=np.int64)
            return empty, counts, (empty if return_offsets else None), (empty if return_offsets else None)
        # Every position starts a k-mer except the last k-1 of each sequence (and all of a short one).
        keep = np.ones(n - k + 1, dtype=bool)
        tail = ranges(np.maximum(batch.seq_ends - (k - 1), batch.seq_starts), np.minimum(batch.lengths, k - 1))
        keep[tail[tail < n - k + 1]] = False
        ids = _rolling_codes(codes, k)[keep].astype(np.int64)
        ids += len(DNABERT_SPECIAL_TOKENS)
        if has_non_acgt:
            # A k-mer holding anything but A/C/G/T is [UNK]: OR the "bad" flag over the window.
            bad = codes >= _BASE
            window_bad = bad[: n - k + 1].copy()
            for j in range(1, k):
                window_bad |= bad[j : j + n - k + 1]
            ids[window_bad[keep]] = self.vocab["[UNK]"]
        if not return_offsets:
            return ids, counts, None, None
        starts = np.flatnonzero(keep)
        return ids, counts, starts, starts + k

    def config(self) -> dict[str, Any]:
        return {"k": self.k, "uppercase": self.uppercase, "on_unknown": self.on_unknown}

    def to_hf(self) -> Any:
        """DNABERT's ``transformers.BertTokenizer`` (no lower-casing).

        Like DNABERT's, it expects space-separated k-mers as input (see ``to_kmer_text``).
        """
        from transformers import BertTokenizer

        return BertTokenizer(
            vocab={tok: i for i, tok in enumerate(self.tokens)},
            do_lower_case=False,
            model_max_length=1_000_000_000,
        )


def to_kmer_text(sequence: str, k: int) -> str:
    """DNABERT's input format: the overlapping k-mers of ``sequence`` joined by spaces."""
    return " ".join(sequence[i : i + k] for i in range(len(sequence) - k + 1))

