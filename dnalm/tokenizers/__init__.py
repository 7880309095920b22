"""Fast DNA tokenizers with Hugging Face-identical ids, and one interface over any HF tokenizer.

    tok = as_dna_tokenizer(hf_tokenizer)          # numpy fast path when the vocabulary is recognised
    out = tok(["ACGTAC...", ...], return_offsets=True)
    input_ids, attention_mask = pad(out["input_ids"], tok.pad_token_id, pad_to_multiple_of=8)
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from .base import (
    CONFIG_NAME,
    DNATokenizer,
    HFTokenizerAdapter,
    TokenizerOutput,
    UnknownCharacterError,
    UnknownPolicy,
    pad,
)
from .bpe import BPETokenizer, train_bpe
from .char import CharTokenizer, caduceus_tokenizer, hyenadna_tokenizer
from .kmer import KmerTokenizer, OverlappingKmerTokenizer, dnabert_vocab, nt_vocab, to_kmer_text
from .strand import complement, reverse_complement, reverse_complement_batch

__all__ = [
    "BPETokenizer",
    "CharTokenizer",
    "DNATokenizer",
    "HFTokenizerAdapter",
    "KmerTokenizer",
    "OverlappingKmerTokenizer",
    "TokenizerOutput",
    "UnknownCharacterError",
    "as_dna_tokenizer",
    "caduceus_tokenizer",
    "complement",
    "fast_tokenizer_for",
    "hyenadna_tokenizer",
    "load_tokenizer",
    "pad",
    "reverse_complement",
    "reverse_complement_batch",
    "train_bpe",
]

log = logging.getLogger(__name__)

_SAVED_CLASSES: dict[str, type[DNATokenizer]] = {
    cls.__name__: cls for cls in (KmerTokenizer, OverlappingKmerTokenizer, CharTokenizer)
}
_NUCLEOTIDES = set("ACGTN")


def _probe_sequences(with_unknown: bool) -> list[str]:
    """Fixed sequences that exercise k-mer tails, N inside and between k-mers, and (optionally) others."""
    rng = np.random.default_rng(0)
    seqs = ["", "A", "ACGTAC", "ACGTACG", "NNNN", "AANAAAAAAAT", "ACGTNACGTACGTAC"]
    for length in (3, 5, 6, 7, 11, 12, 13, 37, 64):
        seqs.append("".join(rng.choice(list("ACGTN"), size=length, p=[0.24, 0.24, 0.24, 0.24, 0.04])))
    if with_unknown:
        seqs += ["ACGRRACGTACGT", "R", "ACGTACY"]
    return seqs


def _special_frame(hf: Any, text: str, content_id: int) -> tuple[list[int], list[int]] | None:
    """The special ids HF puts before and after ``text`` whose only content token is ``content_id``."""
    ids = list(hf(text, add_special_tokens=True)["input_ids"])
    if ids.count(content_id) != 1:
        return None
    i = ids.index(content_id)
    return ids[:i], ids[i + 1 :]


def _roles_in_vocab(hf: Any, vocab: dict[str, int]) -> dict[str, str]:
    roles = {}
    for role in ("unk", "pad", "mask", "cls", "sep", "eos", "bos"):
        token = getattr(hf, f"{role}_token", None)
        if token is not None and str(token) in vocab:
            roles[role] = str(token)
    return roles


def _candidate(hf: Any, on_unknown: UnknownPolicy) -> tuple[DNATokenizer, int] | None:
    """The dnalm tokenizer whose vocabulary matches ``hf``'s, with DNABERT's k (0 when not DNABERT)."""
    vocab = dict(hf.get_vocab())
    size = len(vocab)
    for k in range(1, 13):
        if size == 6 + 4**k + 5 and vocab == {t: i for i, t in enumerate(nt_vocab(k))}:
            frame = _special_frame(hf, "A", vocab["A"])
            if frame is None or frame[0] not in ([], [vocab["<cls>"]]) or frame[1] not in ([], [vocab["<eos>"]]):
                return None
            tok = KmerTokenizer(k, add_cls=bool(frame[0]), add_eos=bool(frame[1]), on_unknown=on_unknown)
            return tok, 0
        if size == 5 + 4**k and vocab == {t: i for i, t in enumerate(dnabert_vocab(k))}:
            frame = _special_frame(hf, "A" * k, vocab["A" * k])
            if frame != ([vocab["[CLS]"]], [vocab["[SEP]"]]):
                return None
            return OverlappingKmerTokenizer(k, on_unknown=on_unknown), k
    singles = {t for t in vocab if len(t) == 1}
    nucleotide_words = [t for t in vocab if len(t) > 1 and set(t) <= _NUCLEOTIDES]
    if {"A", "C", "G", "T"} <= singles <= _NUCLEOTIDES and not nucleotide_words:
        frame = _special_frame(hf, "A", vocab["A"])
        if frame is None:
            return None
        inverse = {i: t for t, i in vocab.items()}
        roles = _roles_in_vocab(hf, vocab)
        if on_unknown == "unk" and "unk" not in roles:
            return None
        tok = CharTokenizer(vocab, roles, prefix=[inverse[i] for i in frame[0]],
                            suffix=[inverse[i] for i in frame[1]], on_unknown=on_unknown)
        return tok, 0
    return None


def fast_tokenizer_for(hf_tokenizer: Any, on_unknown: UnknownPolicy = "error") -> DNATokenizer | None:
    """The fast dnalm tokenizer equivalent to ``hf_tokenizer``, or None when its vocabulary is not recognised.

    Recognised: NT-style non-overlapping k-mer (``EsmTokenizer`` on NT's vocab), DNABERT overlapping
    k-mer (``BertTokenizer`` on DNABERT's vocab; it takes space-separated k-mers, dnalm takes raw DNA),
    and character vocabularies over A/C/G/T(/N). A candidate is only returned after it gives the same
    ids as ``hf_tokenizer`` on a fixed set of probe sequences.
    """
    if isinstance(hf_tokenizer, DNATokenizer):
        return hf_tokenizer
    try:
        found = _candidate(hf_tokenizer, on_unknown)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        log.debug("no fast tokenizer for %s: %s", type(hf_tokenizer).__name__, err)
        return None
    if found is None:
        return None
    tok, dnabert_k = found
    probes = _probe_sequences(with_unknown=on_unknown == "unk")
    try:
        ours = tok(probes)["input_ids"]
    except UnknownCharacterError as err:  # e.g. a vocabulary without N: the HF tokenizer maps it to its unk
        log.info("%s looked like %s but cannot encode the probe sequences (%s); using the HF tokenizer",
                 type(hf_tokenizer).__name__, type(tok).__name__, err)
        return None
    for seq, ids in zip(probes, ours, strict=True):
        text = to_kmer_text(seq, dnabert_k) if dnabert_k else seq
        if list(hf_tokenizer(text, add_special_tokens=True)["input_ids"]) != ids.tolist():
            log.info("%s looked like %s but disagrees on %r; using the HF tokenizer",
                     type(hf_tokenizer).__name__, type(tok).__name__, seq)
            return None
    return tok


def as_dna_tokenizer(hf_tokenizer: Any, on_unknown: UnknownPolicy = "error") -> DNATokenizer:
    """One interface for any tokenizer: the fast dnalm tokenizer when recognised, else an adapter.

    ``on_unknown`` applies to the fast tokenizers (the adapter keeps the HF tokenizer's own behaviour).
    """
    fast = fast_tokenizer_for(hf_tokenizer, on_unknown=on_unknown)
    if fast is not None:
        return fast
    if getattr(hf_tokenizer, "is_fast", False) and "BPE" in type(hf_tokenizer.backend_tokenizer.model).__name__:
        return BPETokenizer(hf_tokenizer)
    return HFTokenizerAdapter(hf_tokenizer)


def load_tokenizer(path: str | Path, on_unknown: UnknownPolicy | None = None) -> DNATokenizer:
    """Load a tokenizer folder: a dnalm one (``dnalm_tokenizer.json``) or any ``AutoTokenizer`` folder."""
    path = Path(path)
    saved = path / CONFIG_NAME
    if saved.exists():
        payload = json.loads(saved.read_text())
        cls = _SAVED_CLASSES.get(payload.get("class"))
        if cls is None:
            raise ValueError(f"{saved}: unknown tokenizer class {payload.get('class')!r}; "
                             f"expected one of {sorted(_SAVED_CLASSES)}")
        config = dict(payload["config"])
        if on_unknown is not None:
            config["on_unknown"] = on_unknown
        return cls(**config)
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(path))
    return as_dna_tokenizer(hf, on_unknown=on_unknown or "error")
