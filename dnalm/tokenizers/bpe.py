"""BPE tokenizers for DNA (GENA-LM / DNABERT-2 / Mistral-DNA style), trained and run by ``tokenizers``.

A BPE ``PreTrainedTokenizerFast`` is already Rust-fast, so ``BPETokenizer`` only wraps it in dnalm's
output shape (``HFTokenizerAdapter``); training, saving and loading use the Hugging Face libraries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .base import ROLES, HFTokenizerAdapter

# Mistral-DNA's layout (``shared/models/mistral_dna_*``): these five first, then the learned tokens.
DEFAULT_SPECIAL_TOKENS = ("[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]")
_ROLE_NAMES = {
    "unk": ("[UNK]", "<unk>"), "pad": ("[PAD]", "<pad>"), "mask": ("[MASK]", "<mask>"),
    "cls": ("[CLS]", "<cls>"), "sep": ("[SEP]", "<sep>"), "eos": ("[EOS]", "</s>", "<eos>"),
    "bos": ("[BOS]", "<s>", "<bos>"),
}


class BPETokenizer(HFTokenizerAdapter):
    """A BPE ``PreTrainedTokenizerFast`` with dnalm's output shape (offsets included)."""

    def __init__(self, hf_tokenizer: Any) -> None:
        if not getattr(hf_tokenizer, "is_fast", False):
            raise TypeError(f"BPETokenizer needs a fast tokenizer, got {type(hf_tokenizer).__name__}")
        super().__init__(hf_tokenizer)

    @classmethod
    def from_pretrained(cls, path: str | Path, **special_tokens: str) -> BPETokenizer:
        """Load a ``tokenizer.json`` file, or a folder holding one (with its ``tokenizer_config.json``).

        For a bare ``tokenizer.json`` the special-token roles are guessed from the usual names
        (``[PAD]``/``<pad>`` ...); pass e.g. ``pad_token="[PAD]"`` to set them explicitly.
        """
        from transformers import PreTrainedTokenizerFast

        path = Path(path)
        if path.is_dir():
            if not (path / "tokenizer.json").exists():
                raise FileNotFoundError(f"{path} has no tokenizer.json; train one with train_bpe()")
            return cls(PreTrainedTokenizerFast.from_pretrained(str(path), **special_tokens))
        if not path.exists():
            raise FileNotFoundError(f"no tokenizer file at {path}")
        hf = PreTrainedTokenizerFast(tokenizer_file=str(path))
        roles = _guess_roles(hf.get_vocab())
        roles.update(special_tokens)
        hf.add_special_tokens({k: v for k, v in roles.items() if k.endswith("_token")})
        return cls(hf)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``tokenizer.json`` + ``tokenizer_config.json`` (loadable with ``AutoTokenizer``)."""
        directory = Path(directory)
        self.hf.save_pretrained(str(directory))
        return directory


def _guess_roles(vocab: dict[str, int]) -> dict[str, str]:
    roles = {}
    for role in ROLES:
        for name in _ROLE_NAMES[role]:
            if name in vocab:
                roles[f"{role}_token"] = name
                break
    return roles


def train_bpe(
    sequences: Iterable[str],
    vocab_size: int = 4096,
    min_frequency: int = 2,
    special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS,
    prefix: Sequence[str] = ("[CLS]",),
    suffix: Sequence[str] = ("[SEP]",),
    alphabet: str = "ACGTN",
    max_token_length: int | None = None,
    length: int | None = None,
) -> BPETokenizer:
    """Train a BPE tokenizer on DNA sequences (any iterable: a list, a FASTA reader, a table column).

    Sequences are split only on whitespace (Mistral-DNA's setup), so each sequence is one "word" for the
    merges. The result adds ``prefix`` / ``suffix`` special tokens to every sequence (``[CLS] ... [SEP]``).

    Args:
        sequences: DNA sequences, normalised to upper case (``dnalm.data.normalise``).
        vocab_size: final vocabulary size, special tokens and alphabet included.
        min_frequency: minimum pair count for a merge.
        special_tokens: special tokens, given the first ids in this order.
        prefix / suffix: special tokens put around every sequence.
        alphabet: characters always in the vocabulary, even if rare in the corpus.
        max_token_length: longest token the merges may build (None: unbounded).
        length: number of sequences, only for the progress display.
    """
    from tokenizers import Tokenizer, pre_tokenizers, processors, trainers
    from tokenizers.models import BPE
    from transformers import PreTrainedTokenizerFast

    missing = [t for t in [*prefix, *suffix] if t not in special_tokens]
    if missing:
        raise ValueError(f"prefix/suffix tokens {missing} must be listed in special_tokens")
    unk = next((t for t in special_tokens if t in _ROLE_NAMES["unk"]), None)
    tok = Tokenizer(BPE(unk_token=unk))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(special_tokens),
        initial_alphabet=list(alphabet),
        max_token_length=max_token_length,
        show_progress=False,
    )
    tok.train_from_iterator(sequences, trainer=trainer, length=length)
    if tok.get_vocab_size() <= len(special_tokens) + len(alphabet):
        raise ValueError("the corpus produced no merges: give more (or longer) sequences or lower min_frequency")
    template = " ".join([*prefix, "$A", *suffix])
    pair = " ".join([*prefix, "$A", *suffix, "$B:1", *[f"{t}:1" for t in suffix]])
    tok.post_processor = processors.TemplateProcessing(
        single=template,
        pair=pair,
        special_tokens=[(t, tok.token_to_id(t)) for t in dict.fromkeys([*prefix, *suffix])],
    )
    roles = _guess_roles({t: i for i, t in enumerate(special_tokens)})
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=1_000_000_000, **roles)
    return BPETokenizer(hf)
