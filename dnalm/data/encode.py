"""Tokenize sequences once, cache the ids on disk, and fit them to the model's context."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from transformers import PreTrainedTokenizerBase

from dnalm import compat
from dnalm.errors import DataError
from dnalm.tokenizers import as_dna_tokenizer

log = logging.getLogger(__name__)

_ENCODE_CHUNK = 1024  # at most this many sequences per tokenizer call
_ENCODE_CHUNK_BASES = 1 << 18  # and about this many letters (256 x 1 kb windows, 1024 x 256 nt)
_TOKENIZERS_CACHE_CAPACITY = 10_000  # the ``tokenizers`` library's default word-cache size, restored after encoding


def default_cache_dir() -> Path:
    """``$DNALM_CACHE`` or ``~/.cache/dnalm``."""
    return Path(os.environ.get("DNALM_CACHE", Path.home() / ".cache" / "dnalm"))


def tokenizer_fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    """A hash of what determines token ids: class, vocabulary and special tokens."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(type(tokenizer).__name__.encode())
    digest.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    digest.update(json.dumps(tokenizer(["ACGTN"])["input_ids"]).encode())
    return digest.hexdigest()


def sequences_fingerprint(sequences: Sequence[str]) -> str:
    """A hash of the sequences in order."""
    digest = hashlib.blake2b(digest_size=16)
    for seq in sequences:
        digest.update(seq.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _encode_flat(tokenizer: PreTrainedTokenizerBase, sequences: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of every sequence as one flat array (see :func:`_id_dtype`) and ``len + 1`` row offsets."""
    sequences = list(sequences)
    # dnalm's vectorised tokenizers give the same ids much faster; any other tokenizer runs behind an adapter
    encoder = as_dna_tokenizer(tokenizer)
    chunks: list[np.ndarray] = []
    lengths: list[int] = []
    # In chunks: a Rust tokenizer's per-sequence encodings of a whole split at once raise the peak (and, as
    # the allocator keeps the freed pages, the resident) memory by hundreds of MB; chunks cost no speed.
    resize = compat.word_cache_resizer(tokenizer)
    if resize is not None:  # a Rust BPE/Unigram word cache: every DNA sequence is one unique "word", so it never
        resize(0)         # hits, yet keeps up to 10,000 whole sequences (~60 MB for 101 nt) alive
    try:
        for start, stop in _chunks(sequences):
            rows = encoder(sequences[start:stop])["input_ids"]
            lengths.extend(len(row) for row in rows)
            flat = np.concatenate([np.asarray(row, dtype=np.int64).reshape(-1) for row in rows])
            # one compact block per chunk instead of an int64 array per sequence: a quarter of the bytes for
            # the usual DNA vocabularies (< 65,536 tokens), and no small allocations interleaved with the
            # sequence strings that would pin their freed heap pages
            chunks.append(flat.astype(_id_dtype(int(flat.min()), int(flat.max())) if flat.size else np.uint16))
    finally:
        if resize is not None:
            resize(_TOKENIZERS_CACHE_CAPACITY)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.uint16)  # the widest chunk's dtype
    return flat, offsets


def _id_dtype(low: int, high: int) -> type[np.integer]:
    """The smallest integer type that holds token ids from ``low`` to ``high`` (batches are widened to int64)."""
    if 0 <= low and high < 2**16:
        return np.uint16
    return np.int32 if -(2**31) <= low and high < 2**31 else np.int64


def _chunks(sequences: list[str]) -> list[tuple[int, int]]:
    """(start, stop) of consecutive tokenizer calls: at most ``_ENCODE_CHUNK`` sequences or, past the first
    sequence, ``_ENCODE_CHUNK_BASES`` letters each. The Rust tokenizer's temporary encodings scale with the
    letters in a call, and what the allocator keeps of them afterwards too."""
    bounds: list[tuple[int, int]] = []
    start, letters = 0, 0
    for i, seq in enumerate(sequences):
        if i > start and (i - start >= _ENCODE_CHUNK or letters + len(seq) > _ENCODE_CHUNK_BASES):
            bounds.append((start, i))
            start, letters = i, 0
        letters += len(seq)
    if start < len(sequences):
        bounds.append((start, len(sequences)))
    return bounds


def _rows(flat: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    """One view per sequence into the flat ids (no copies)."""
    return [flat[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]


def _encode(tokenizer: PreTrainedTokenizerBase, sequences: Sequence[str]) -> list[np.ndarray]:
    return _rows(*_encode_flat(tokenizer, sequences))


def encode_cached(tokenizer: PreTrainedTokenizerBase, sequences: Sequence[str],
                  cache_dir: Path | None) -> list[np.ndarray]:
    """Token ids of every sequence, read from ``cache_dir`` when the same data and tokenizer were seen before.

    The rows are views into one integer array of the smallest type that holds the ids (uint16 for vocabularies
    of up to 65,536 tokens).
    """
    if cache_dir is None:
        return _encode(tokenizer, sequences)
    key = f"{tokenizer_fingerprint(tokenizer)}-{sequences_fingerprint(sequences)}"
    path = Path(cache_dir) / "tokenized" / f"{key}.npz"
    if path.is_file():
        with np.load(path) as stored:
            flat, offsets = stored["ids"], stored["offsets"]
        return _rows(flat, offsets)
    flat, offsets = _encode_flat(tokenizer, sequences)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, ids=flat, offsets=offsets)
    tmp.replace(path)  # atomic: concurrent jobs never read a half-written cache file
    return _rows(flat, offsets)


@dataclass(frozen=True)
class SpecialLayout:
    """How many special tokens a tokenizer puts before and after the sequence's own tokens."""

    prefix: int
    suffix: int

    @classmethod
    def of(cls, tokenizer: PreTrainedTokenizerBase) -> SpecialLayout:
        """Measure it on a probe sequence."""
        ids = tokenizer(["ACGTACGTACGT"], add_special_tokens=True)["input_ids"][0]
        plain = tokenizer(["ACGTACGTACGT"], add_special_tokens=False)["input_ids"][0]
        if not plain:
            return cls(0, 0)
        for start in range(len(ids) - len(plain) + 1):
            if ids[start:start + len(plain)] == plain:
                return cls(start, len(ids) - start - len(plain))
        return cls(0, 0)


def windows(ids: np.ndarray, max_tokens: int, layout: SpecialLayout, overlap: int = 0) -> list[np.ndarray]:
    """Split one over-long tokenized sequence into windows that fit, each with the special tokens kept."""
    head, body = ids[:layout.prefix], ids[layout.prefix:len(ids) - layout.suffix]
    tail = ids[len(ids) - layout.suffix:] if layout.suffix else ids[:0]
    room = max_tokens - layout.prefix - layout.suffix
    if room <= 0:
        raise DataError(f"max_tokens={max_tokens} leaves no room for sequence tokens.")
    step = max(1, room - overlap)
    starts = list(range(0, max(1, len(body) - room + step), step))
    return [np.concatenate([head, body[s:s + room], tail]) for s in starts]


def expand_windows(ids: Sequence[np.ndarray], max_tokens: int | None, layout: SpecialLayout,
                   overlap: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """Every sequence that fits as it is, every longer one as its :func:`windows`; with the row of ``ids`` each
    window came from (the group whose window outputs are averaged). The one windowing of every inference path."""
    out: list[np.ndarray] = []
    rows: list[int] = []
    for row, seq_ids in enumerate(ids):
        pieces = windows(seq_ids, max_tokens, layout, overlap) if max_tokens and len(seq_ids) > max_tokens else [seq_ids]
        out.extend(pieces)
        rows.extend([row] * len(pieces))
    return out, np.asarray(rows, dtype=np.int64)


def crop(ids: np.ndarray, max_tokens: int, layout: SpecialLayout, start: int) -> np.ndarray:
    """A window of ``max_tokens`` starting ``start`` tokens into the sequence body (special tokens kept)."""
    head, body = ids[:layout.prefix], ids[layout.prefix:len(ids) - layout.suffix]
    tail = ids[len(ids) - layout.suffix:] if layout.suffix else ids[:0]
    room = max_tokens - layout.prefix - layout.suffix
    return np.concatenate([head, body[start:start + room], tail])
