"""The one output shape every dnalm tokenizer returns, the shared vectorised helpers, and ``pad``.

A tokenizer is called on a batch of sequences and returns ``{"input_ids": [...], "offsets": [...]}``:
one int64 array per sequence (special tokens included, no padding) and, when asked, the half-open
base-pair span ``[start, end)`` of every token in its input sequence ((0, 0) for special tokens).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn, TypedDict

import numpy as np
import torch

UnknownPolicy = Literal["error", "unk"]
CONFIG_NAME = "dnalm_tokenizer.json"

# Special-token roles, in the names transformers uses (``<role>_token`` / ``<role>_token_id``).
ROLES = ("unk", "pad", "mask", "cls", "sep", "eos", "bos")


class TokenizerOutput(TypedDict, total=False):
    """What every dnalm tokenizer returns: per-sequence int64 arrays."""

    input_ids: list[np.ndarray]
    offsets: list[np.ndarray]


class UnknownCharacterError(ValueError):
    """A sequence holds a character the tokenizer's vocabulary cannot represent."""


class DNATokenizer(ABC):
    """Base class: a batch tokenizer with HF-compatible ids and a numpy output shape.

    Subclasses set ``self.vocab`` (token -> id) and ``self.special_tokens`` (role -> token) and
    implement ``_tokenize_flat``.
    """

    vocab: dict[str, int]
    special_tokens: dict[str, str]

    # ---- ids of special tokens ------------------------------------------------------------------
    def _role_id(self, role: str) -> int | None:
        token = self.special_tokens.get(role)
        return None if token is None else self.vocab[token]

    @property
    def vocab_size(self) -> int:
        """Number of ids (max id + 1), the embedding size a model needs."""
        return max(self.vocab.values()) + 1

    @property
    def pad_token_id(self) -> int | None:
        return self._role_id("pad")

    @property
    def unk_token_id(self) -> int | None:
        return self._role_id("unk")

    @property
    def mask_token_id(self) -> int | None:
        return self._role_id("mask")

    @property
    def cls_token_id(self) -> int | None:
        return self._role_id("cls")

    @property
    def sep_token_id(self) -> int | None:
        return self._role_id("sep")

    @property
    def eos_token_id(self) -> int | None:
        return self._role_id("eos")

    @property
    def bos_token_id(self) -> int | None:
        return self._role_id("bos")

    # ---- the call -------------------------------------------------------------------------------
    def __call__(self, sequences: Sequence[str], return_offsets: bool = False) -> TokenizerOutput:
        """Tokenize a batch of sequences.

        Returns ``{"input_ids": list of int64 arrays}`` plus ``"offsets"`` (list of (n_tokens, 2) int64
        arrays of half-open base-pair spans, (0, 0) for special tokens) when ``return_offsets``.
        """
        if isinstance(sequences, str):
            raise TypeError("pass a list of sequences, not a single string: tok([seq])")
        if len(sequences) == 0:
            return {"input_ids": [], **({"offsets": []} if return_offsets else {})}
        batch = Batch.of(sequences, self._byte_codes)
        ids, counts, starts, ends = self._tokenize_flat(batch, return_offsets)
        return assemble(ids, counts, self._prefix_ids(), self._suffix_ids(), batch, starts, ends)

    @abstractmethod
    def _tokenize_flat(
        self, batch: Batch, return_offsets: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Tokenize the concatenated batch.

        Returns the content token ids in order, the number of them per sequence, and (only when
        ``return_offsets``) the global [start, end) of each token in the concatenated buffer.
        """

    @property
    @abstractmethod
    def _byte_codes(self) -> bytes:
        """A 256-byte ``bytes.translate`` table from input byte to the tokenizer's byte code."""

    @abstractmethod
    def _prefix_ids(self) -> list[int]:
        """Special token ids put before every sequence."""

    @abstractmethod
    def _suffix_ids(self) -> list[int]:
        """Special token ids put after every sequence."""

    # ---- persistence ----------------------------------------------------------------------------
    @abstractmethod
    def config(self) -> dict[str, Any]:
        """Constructor keyword arguments that rebuild this tokenizer."""

    @abstractmethod
    def to_hf(self) -> Any:
        """An equivalent ``transformers`` tokenizer."""

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write the ``transformers`` files (loadable with AutoTokenizer) and ``dnalm_tokenizer.json``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.to_hf().save_pretrained(str(directory))
        payload = {"class": type(self).__name__, "config": self.config()}
        (directory / CONFIG_NAME).write_text(json.dumps(payload, indent=2))
        return directory

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config()})"


# ---- vectorised helpers shared by the numpy tokenizers --------------------------------------------


@dataclass
class Batch:
    """A batch joined into one buffer: ``codes`` (one uint8 code per character) and each sequence's span."""

    codes: np.ndarray
    seq_starts: np.ndarray
    lengths: np.ndarray
    sequences: Sequence[str]

    @classmethod
    def of(cls, sequences: Sequence[str], table: bytes) -> Batch:
        """Join ``sequences`` and map every byte through ``table`` (C-speed ``bytes.translate``).

        Non-ASCII characters become ``?`` first so character positions are kept; they are unknown to
        every DNA vocabulary, and error messages look the original character up in ``sequences``.
        """
        try:
            joined = "".join(sequences)
        except TypeError as err:
            raise TypeError(f"every sequence must be a str: {err}") from None
        lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
        codes = np.frombuffer(joined.encode("ascii", errors="replace").translate(table), dtype=np.uint8)
        seq_starts = np.zeros(len(sequences), dtype=np.int64)
        np.cumsum(lengths[:-1], out=seq_starts[1:])
        return cls(codes, seq_starts, lengths, sequences)

    @property
    def seq_ends(self) -> np.ndarray:
        return self.seq_starts + self.lengths

    def raise_unknown(self, bad_positions: np.ndarray, name: str) -> NoReturn:
        """Raise a clear error about the first unknown character: record, position, and the fix."""
        pos = int(bad_positions[0])
        record = int(np.searchsorted(self.seq_ends, pos, side="right"))
        offset = pos - int(self.seq_starts[record])
        char = self.sequences[record][offset]
        raise UnknownCharacterError(
            f"{name}: record {record} has character {char!r} at position {offset} that the vocabulary "
            f"cannot represent ({len(bad_positions)} such characters in this batch). Normalise the "
            f"sequences first (dnalm.data.normalise: upper-case, IUPAC codes -> N), or build the tokenizer "
            f"with on_unknown='unk' to map them to the unknown token as the Hugging Face tokenizer does."
        )


def byte_table(mapping: Mapping[str, int], default: int, uppercase: bool) -> bytes:
    """A ``bytes.translate`` table from byte to code (codes < 256); lower-case letters share their
    upper-case code when ``uppercase``."""
    table = bytearray([default]) * 256
    for char, code in mapping.items():
        table[ord(char)] = code
        if uppercase and char.isalpha():
            table[ord(char.lower())] = code
    return bytes(table)


def ranges(starts: np.ndarray, counts: np.ndarray, step: int = 1) -> np.ndarray:
    """Concatenate ``starts[i] + step * arange(counts[i])`` for all i, without a Python loop."""
    counts = counts.astype(np.int64, copy=False)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    nonzero = counts > 0
    starts, counts = starts[nonzero], counts[nonzero]
    out = np.full(total, step, dtype=np.int64)
    first = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=first[1:])
    # Each run starts at its own value; a cumulative sum of steps fills the rest.
    out[first[0]] = starts[0]
    out[first[1:]] = starts[1:] - (starts[:-1] + step * (counts[:-1] - 1))
    return np.cumsum(out)


def assemble(
    ids: np.ndarray,
    counts: np.ndarray,
    prefix: list[int],
    suffix: list[int],
    batch: Batch,
    starts: np.ndarray | None = None,
    ends: np.ndarray | None = None,
) -> TokenizerOutput:
    """Split flat, ordered content tokens into per-sequence arrays with the special tokens around each."""
    n_pre, n_suf = len(prefix), len(suffix)
    out_len = counts + (n_pre + n_suf)
    bounds = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(out_len, out=bounds[1:])
    total = int(bounds[-1])
    if n_pre or n_suf:
        # A boolean mask of content slots: assigning through it keeps order and costs 1 byte per slot.
        content = np.ones(total, dtype=bool)
        out_ids = np.empty(total, dtype=np.int64)
        for j, tok in enumerate(prefix):
            content[bounds[:-1] + j] = False
            out_ids[bounds[:-1] + j] = tok
        for j, tok in enumerate(suffix):
            content[bounds[1:] - n_suf + j] = False
            out_ids[bounds[1:] - n_suf + j] = tok
        out_ids[content] = ids
    else:
        content, out_ids = None, ids.astype(np.int64, copy=False)
    edges = bounds.tolist()
    result: TokenizerOutput = {"input_ids": [out_ids[a:b] for a, b in zip(edges[:-1], edges[1:], strict=True)]}
    if starts is not None and ends is not None:
        offsets = np.zeros((total, 2), dtype=np.int64)
        seq_start_of_token = np.repeat(batch.seq_starts, counts)
        where = slice(None) if content is None else content
        offsets[where, 0] = starts - seq_start_of_token
        offsets[where, 1] = ends - seq_start_of_token
        result["offsets"] = [offsets[a:b] for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return result


# ---- padding --------------------------------------------------------------------------------------


def pad(
    list_of_ids: Sequence[np.ndarray | Sequence[int] | torch.Tensor],
    pad_id: int,
    pad_to_multiple_of: int | None = None,
    side: Literal["right", "left"] = "right",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad variable-length id arrays into ``(input_ids, attention_mask)`` LongTensors of shape (B, L).

    ``L`` is the longest length, rounded up to ``pad_to_multiple_of`` when given; ``side`` says where
    the padding goes. Usable directly in a collate function.
    """
    if pad_id is None:
        raise ValueError("pad_id is None: the tokenizer has no pad token; pass an explicit pad_id")
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    if len(list_of_ids) == 0:
        raise ValueError("pad() needs at least one sequence of ids")
    arrays = [np.asarray(x, dtype=np.int64).reshape(-1) for x in list_of_ids]
    lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
    width = int(lengths.max())
    if pad_to_multiple_of:
        width = -(-width // pad_to_multiple_of) * pad_to_multiple_of
    columns = np.arange(width)
    if side == "right":
        mask = columns[None, :] < lengths[:, None]
    else:
        mask = columns[None, :] >= (width - lengths)[:, None]
    ids = np.full((len(arrays), width), pad_id, dtype=np.int64)
    # Boolean-mask assignment fills row by row, left to right: the concatenation order.
    ids[mask] = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
    return torch.from_numpy(ids), torch.from_numpy(mask.astype(np.int64))


# ---- any Hugging Face tokenizer behind the same interface -----------------------------------------


class HFTokenizerAdapter(DNATokenizer):
    """Wrap any ``transformers`` tokenizer so it returns the dnalm output shape.

    Offsets come from ``return_offsets_mapping`` and need a fast (Rust) tokenizer.
    """

    def __init__(self, hf_tokenizer: Any) -> None:
        self.hf = hf_tokenizer
        self.vocab = dict(hf_tokenizer.get_vocab())
        self.special_tokens = {
            role: str(getattr(hf_tokenizer, f"{role}_token"))
            for role in ROLES
            if getattr(hf_tokenizer, f"{role}_token", None) is not None
            and str(getattr(hf_tokenizer, f"{role}_token")) in self.vocab
        }
        self._backend_ok: bool | None = None  # the Rust backend gives hf's ids (checked once, on first use)

    @property
    def vocab_size(self) -> int:
        return len(self.hf)

    def __call__(self, sequences: Sequence[str], return_offsets: bool = False) -> TokenizerOutput:
        if isinstance(sequences, str):
            raise TypeError("pass a list of sequences, not a single string: tok([seq])")
        if return_offsets and not getattr(self.hf, "is_fast", False):
            raise NotImplementedError(
                f"{type(self.hf).__name__} is a slow (Python) tokenizer and cannot return offsets; "
                "use a fast tokenizer or a dnalm tokenizer (fast_tokenizer_for)"
            )
        if len(sequences) == 0:
            return {"input_ids": [], **({"offsets": []} if return_offsets else {})}
        backend = self._backend() if not return_offsets else None
        if backend is not None:  # same ids, ~30 % faster: no per-token Python lists from transformers
            return {"input_ids": [np.asarray(e.ids, dtype=np.int64)
                                  for e in backend.encode_batch_fast(list(sequences), add_special_tokens=True)]}
        enc = self.hf(list(sequences), add_special_tokens=True, return_offsets_mapping=return_offsets)
        result: TokenizerOutput = {"input_ids": [np.asarray(x, dtype=np.int64) for x in enc["input_ids"]]}
        if return_offsets:
            result["offsets"] = [
                np.asarray(x, dtype=np.int64).reshape(-1, 2) for x in enc["offset_mapping"]
            ]
        return result

    def _backend(self) -> Any:
        """The wrapped Rust ``tokenizers.Tokenizer`` when calling it directly gives ``self.hf``'s ids, else None.

        Needs no truncation or padding set on the backend (transformers switches those off per call) and the
        same ids on probe sequences (checked once).
        """
        backend = getattr(self.hf, "backend_tokenizer", None)
        if (backend is None or not hasattr(backend, "encode_batch_fast") or backend.truncation is not None
                or backend.padding is not None):
            return None
        if self._backend_ok is None:
            probes = ["ACGTACGTAC" * 13, "NACGTTTGCANNGT", "acgtRYacgt", "A", "TTTTTTTTTTTTTTTTTTTTTTTTTTTT"]
            ours = [e.ids for e in backend.encode_batch_fast(probes, add_special_tokens=True)]
            self._backend_ok = ours == [list(x) for x in self.hf(probes, add_special_tokens=True)["input_ids"]]
        return backend if self._backend_ok else None

    def _tokenize_flat(self, batch, return_offsets):  # pragma: no cover - not used
        raise NotImplementedError

    @property
    def _byte_codes(self) -> bytes:  # pragma: no cover - not used
        raise NotImplementedError

    def _prefix_ids(self) -> list[int]:  # pragma: no cover - not used
        raise NotImplementedError

    def _suffix_ids(self) -> list[int]:  # pragma: no cover - not used
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        return {"hf_class": type(self.hf).__name__}

    def to_hf(self) -> Any:
        return self.hf

    def save_pretrained(self, directory: str | Path) -> Path:
        """Save the wrapped tokenizer's own files (AutoTokenizer reloads them)."""
        directory = Path(directory)
        self.hf.save_pretrained(str(directory))
        return directory
