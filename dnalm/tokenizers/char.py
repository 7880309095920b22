"""Single-nucleotide (character) tokenizer with a configurable vocabulary, vectorised with a byte table.

Presets match the published Hugging Face tokenizers of HyenaDNA (``LongSafari/hyenadna-*-hf``) and
Caduceus (``kuleshov-group/caduceus-*``): ``[CLS]=0 [SEP]=1 [BOS]=2 [MASK]=3 [PAD]=4 [RESERVED]=5
[UNK]=6`` then ``A=7 C=8 G=9 T=10 N=11``; both append ``[SEP]`` and add no ``[CLS]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .base import ROLES, Batch, DNATokenizer, UnknownPolicy, byte_table

_UNKNOWN = 255
HYENA_SPECIAL_TOKENS = ("[CLS]", "[SEP]", "[BOS]", "[MASK]", "[PAD]", "[RESERVED]", "[UNK]")
HYENA_ROLES = {
    "cls": "[CLS]", "sep": "[SEP]", "eos": "[SEP]", "bos": "[BOS]", "mask": "[MASK]", "pad": "[PAD]", "unk": "[UNK]"
}


class CharTokenizer(DNATokenizer):
    """One token per character, ids from a lookup table.

    Args:
        vocab: token -> id. Entries of one character are sequence characters; longer ones are specials.
        special_tokens: role (``unk``, ``pad``, ``mask``, ``cls``, ``sep``, ``eos``, ``bos``) -> token.
        prefix: special tokens put before every sequence.
        suffix: special tokens put after every sequence.
        uppercase: treat lower-case letters as their upper-case character.
        on_unknown: ``"error"`` raises on characters outside the vocabulary naming the record; ``"unk"``
            maps each such character to the ``unk`` token (what the HF tokenizers do).
    """

    def __init__(
        self,
        vocab: Mapping[str, int],
        special_tokens: Mapping[str, str],
        prefix: Sequence[str] = (),
        suffix: Sequence[str] = (),
        uppercase: bool = True,
        on_unknown: UnknownPolicy = "error",
    ) -> None:
        if on_unknown not in ("error", "unk"):
            raise ValueError(f"on_unknown must be 'error' or 'unk', got {on_unknown!r}")
        unknown_roles = set(special_tokens) - set(ROLES)
        if unknown_roles:
            raise ValueError(f"unknown special-token roles {sorted(unknown_roles)}; use {ROLES}")
        missing = [t for t in [*special_tokens.values(), *prefix, *suffix] if t not in vocab]
        if missing:
            raise ValueError(f"special tokens {missing} are not in the vocabulary")
        if on_unknown == "unk" and "unk" not in special_tokens:
            raise ValueError("on_unknown='unk' needs an 'unk' entry in special_tokens")
        self.vocab = dict(sorted(vocab.items(), key=lambda item: item[1]))
        self.special_tokens = dict(special_tokens)
        self.prefix, self.suffix = list(prefix), list(suffix)
        self.uppercase, self.on_unknown = uppercase, on_unknown
        self.characters = {tok: i for tok, i in self.vocab.items() if len(tok) == 1}
        # Bytes map to an index into ``_ids``; 255 marks "not in the vocabulary" (the unknown policy decides).
        self._ids = np.array(list(self.characters.values()), dtype=np.int64)
        if len(self._ids) > 255:
            raise ValueError(f"a character vocabulary holds at most 255 characters, got {len(self._ids)}")
        self._table = byte_table({c: i for i, c in enumerate(self.characters)}, _UNKNOWN, uppercase)

    @property
    def _byte_codes(self) -> bytes:
        return self._table

    def _prefix_ids(self) -> list[int]:
        return [self.vocab[t] for t in self.prefix]

    def _suffix_ids(self) -> list[int]:
        return [self.vocab[t] for t in self.suffix]

    def _tokenize_flat(self, batch: Batch, return_offsets: bool):
        codes = batch.codes
        unknown = np.flatnonzero(codes == _UNKNOWN) if codes.max(initial=0) == _UNKNOWN else None
        if unknown is not None and self.on_unknown == "error":
            batch.raise_unknown(unknown, type(self).__name__)
        ids = np.take(self._ids, codes, mode="clip")
        if unknown is not None:
            ids[unknown] = self.vocab[self.special_tokens["unk"]]
        starts = np.arange(len(codes), dtype=np.int64) if return_offsets else None
        return ids, batch.lengths, starts, None if starts is None else starts + 1

    def config(self) -> dict[str, Any]:
        return {
            "vocab": self.vocab, "special_tokens": self.special_tokens, "prefix": self.prefix,
            "suffix": self.suffix, "uppercase": self.uppercase, "on_unknown": self.on_unknown,
        }

    def to_hf(self) -> Any:
        """An equivalent ``PreTrainedTokenizerFast`` (character split, word-level lookup, same template).

        Built with the ``tokenizers`` library, so it needs no remote code.
        """
        from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, processors
        from tokenizers.models import WordLevel
        from transformers import PreTrainedTokenizerFast

        unk = self.special_tokens.get("unk")
        model = WordLevel(vocab=self.vocab, unk_token=unk) if unk else WordLevel(vocab=self.vocab)
        tok = Tokenizer(model)
        if self.uppercase:
            lowers = [c for c in self.characters if c.isalpha() and c.isupper()]
            tok.normalizer = normalizers.Sequence([normalizers.Replace(c.lower(), c) for c in lowers])
        tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
        template = " ".join([*self.prefix, "$A", *self.suffix])
        specials = sorted({(t, self.vocab[t]) for t in [*self.prefix, *self.suffix]})
        tok.post_processor = processors.TemplateProcessing(single=template, special_tokens=specials)
        specials_all = sorted({t for t in self.vocab if len(t) > 1}, key=self.vocab.__getitem__)
        return PreTrainedTokenizerFast(
            tokenizer_object=tok,
            additional_special_tokens=specials_all,
            model_max_length=1_000_000_000,
            **{f"{role}_token": token for role, token in self.special_tokens.items()},
        )


def hyena_vocab(characters: Sequence[str] = ("A", "C", "G", "T", "N")) -> dict[str, int]:
    """HyenaDNA/Caduceus vocabulary: the 7 specials at 0..6, then the characters from 7."""
    return {**{t: i for i, t in enumerate(HYENA_SPECIAL_TOKENS)}, **{c: i + 7 for i, c in enumerate(characters)}}


def hyenadna_tokenizer(uppercase: bool = True, on_unknown: UnknownPolicy = "error") -> CharTokenizer:
    """HyenaDNA's character tokenizer (``tokenization_hyena.py``): ids 7..11 for A C G T N, ``[SEP]`` appended.

    HyenaDNA's own tokenizer does not upper-case (lower-case letters become ``[UNK]``); dnalm does by
    default, pass ``uppercase=False`` for the original behaviour.
    """
    return CharTokenizer(hyena_vocab(), HYENA_ROLES, prefix=(), suffix=("[SEP]",), uppercase=uppercase,
                         on_unknown=on_unknown)


def caduceus_tokenizer(on_unknown: UnknownPolicy = "error") -> CharTokenizer:
    """Caduceus's character tokenizer (``tokenization_caduceus.py``): HyenaDNA's ids, upper-cases its input."""
    return CharTokenizer(hyena_vocab(), HYENA_ROLES, prefix=(), suffix=("[SEP]",), uppercase=True,
                         on_unknown=on_unknown)
