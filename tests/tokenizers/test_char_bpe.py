"""Character and BPE tokenizers, the HF adapter, recognition of HF vocabularies, padding, reverse complement."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Regex, Tokenizer, pre_tokenizers, processors
from tokenizers.models import WordLevel
from transformers import AutoTokenizer, EsmTokenizer, PreTrainedTokenizer, PreTrainedTokenizerFast

from dnalm.tokenizers import (
    BPETokenizer,
    CharTokenizer,
    HFTokenizerAdapter,
    KmerTokenizer,
    OverlappingKmerTokenizer,
    UnknownCharacterError,
    as_dna_tokenizer,
    caduceus_tokenizer,
    fast_tokenizer_for,
    hyenadna_tokenizer,
    load_tokenizer,
    pad,
    reverse_complement,
    reverse_complement_batch,
    train_bpe,
)

SHARED = Path(__file__).resolve().parents[3] / "shared"
MISTRAL = SHARED / "models" / "mistral_dna_1m_hg38_tf0"
needs_shared = pytest.mark.skipif(not MISTRAL.exists(), reason="../shared is not beside the checkout")


class HyenaStyleReference(PreTrainedTokenizer):
    """A plain-Python reference written from HyenaDNA's published tokenizer behaviour: ids 0..6 for the
    specials, characters from 7, one token per character, unknown -> [UNK], ``[SEP]`` appended."""

    def __init__(self, **kwargs) -> None:
        specials = ["[CLS]", "[SEP]", "[BOS]", "[MASK]", "[PAD]", "[RESERVED]", "[UNK]"]
        self._vocab = {t: i for i, t in enumerate([*specials, "A", "C", "G", "T", "N"])}
        super().__init__(unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]", **kwargs)

    def get_vocab(self) -> dict[str, int]:
        return dict(self._vocab)

    @property
    def vocab_size(self) -> int:
        return len(self._vocab)

    def _tokenize(self, text: str, **kwargs) -> list[str]:
        return list(text)

    def _convert_token_to_id(self, token: str) -> int:
        return self._vocab.get(token, self._vocab["[UNK]"])

    def _convert_id_to_token(self, index: int) -> str:
        return {i: t for t, i in self._vocab.items()}[index]

    def build_inputs_with_special_tokens(self, token_ids_0, token_ids_1=None):
        return token_ids_0 + [self.sep_token_id]


def random_sequences(n: int, seed: int, alphabet: str = "ACGTN") -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list(alphabet), size=rng.integers(0, 50))) for _ in range(n)]


def test_hyenadna_ids_match_reference_and_to_hf() -> None:
    seqs = ["", "A", "ACGTN"] + random_sequences(100, 0) + ["ACGRT", "acgt"]
    reference = HyenaStyleReference()
    tok = hyenadna_tokenizer(uppercase=False, on_unknown="unk")
    fast_hf = tok.to_hf()
    out = tok(seqs, return_offsets=True)
    for seq, ids, offsets in zip(seqs, out["input_ids"], out["offsets"], strict=True):
        assert ids.tolist() == reference(seq)["input_ids"] == fast_hf(seq)["input_ids"], seq
        enc = fast_hf(seq, return_offsets_mapping=True)
        assert offsets.tolist() == [list(x) for x in enc["offset_mapping"]]
        assert offsets[:-1].tolist() == [[i, i + 1] for i in range(len(seq))]
    assert tok.vocab_size == 12 and tok.pad_token_id == 4 and tok.sep_token_id == 1


def test_char_uppercase_and_unknown_policy() -> None:
    tok = caduceus_tokenizer()
    assert tok(["acgtn"])["input_ids"][0].tolist() == [7, 8, 9, 10, 11, 1]
    with pytest.raises(UnknownCharacterError, match=r"record 1 has character 'é' at position 2"):
        tok(["ACGT", "ACéT"])
    custom = CharTokenizer({"<pad>": 0, "A": 1, "C": 2, "G": 3, "T": 4}, {"pad": "<pad>"})
    assert custom(["GATTACA"])["input_ids"][0].tolist() == [3, 1, 4, 4, 1, 2, 1]
    with pytest.raises(ValueError, match="not in the vocabulary"):
        CharTokenizer({"A": 0}, {"pad": "<pad>"})


def test_char_save_load_round_trip(tmp_path: Path) -> None:
    tok = hyenadna_tokenizer()
    folder = tok.save_pretrained(tmp_path / "hyena")
    assert load_tokenizer(folder).config() == tok.config()
    hf = AutoTokenizer.from_pretrained(str(folder))
    seqs = random_sequences(20, 3)
    for seq, ids in zip(seqs, tok(seqs)["input_ids"], strict=True):
        assert hf(seq)["input_ids"] == ids.tolist()
    (folder / "dnalm_tokenizer.json").unlink()  # a plain HF folder is recognised as well
    assert isinstance(load_tokenizer(folder), CharTokenizer)


def test_fast_tokenizer_for_recognises_vocabularies(tmp_path: Path) -> None:
    assert isinstance(fast_tokenizer_for(KmerTokenizer().to_hf()), KmerTokenizer)
    assert isinstance(fast_tokenizer_for(OverlappingKmerTokenizer(5).to_hf()), OverlappingKmerTokenizer)
    hyena = fast_tokenizer_for(HyenaStyleReference())
    assert isinstance(hyena, CharTokenizer) and hyena.suffix == ["[SEP]"] and hyena.prefix == []
    # ESM-convention character vocabulary (dnalm's tiny models): <cls> ... <eos>.
    vocab = ["<cls>", "<pad>", "<eos>", "<unk>", "A", "C", "G", "T", "N", "<mask>"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab))
    esm_char = EsmTokenizer(str(tmp_path / "vocab.txt"))
    fast = fast_tokenizer_for(esm_char)
    assert isinstance(fast, CharTokenizer)
    seqs = random_sequences(30, 4)
    for seq, ids in zip(seqs, fast(seqs)["input_ids"], strict=True):
        assert ids.tolist() == esm_char(seq)["input_ids"]
    # EsmTokenizer folds a run of unknowns into one <unk>; a per-character fast path would disagree.
    assert fast_tokenizer_for(esm_char, on_unknown="unk") is None
    assert isinstance(as_dna_tokenizer(esm_char, on_unknown="unk"), HFTokenizerAdapter)


def test_bpe_training_save_load(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    motifs = ["TATAAA", "GGGCGG", "CCAAT", "ACGT"]
    corpus = ["".join(rng.choice(motifs, size=20)) + "".join(rng.choice(list("ACGT"), size=20))
              for _ in range(300)]
    tok = train_bpe(corpus, vocab_size=120, min_frequency=2)
    assert tok.vocab_size == 120
    assert [tok.hf.convert_ids_to_tokens(i) for i in range(5)] == ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
    out = tok(corpus[:5], return_offsets=True)
    for seq, ids, offsets in zip(corpus[:5], out["input_ids"], out["offsets"], strict=True):
        assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
        assert len(ids) < len(seq) // 2  # the merges learned the motifs
        pieces = [seq[a:b] for a, b in offsets[1:-1]]
        assert "".join(pieces) == seq and pieces == tok.hf.convert_ids_to_tokens(ids[1:-1].tolist())
    folder = tok.save_pretrained(tmp_path / "bpe")
    for again in (BPETokenizer.from_pretrained(folder), BPETokenizer.from_pretrained(folder / "tokenizer.json"),
                  load_tokenizer(folder)):
        assert isinstance(again, BPETokenizer) and again.pad_token_id == tok.pad_token_id
        assert [a.tolist() for a in again(corpus[:20])["input_ids"]] == [
            a.tolist() for a in tok(corpus[:20])["input_ids"]
        ]
    with pytest.raises(ValueError, match="no merges"):
        train_bpe(["A", "C"], vocab_size=100)


@needs_shared
def test_load_mistral_dna_tokenizer() -> None:
    rows = list(csv.DictReader(gzip.open(SHARED / "data" / "gue" / "human_tf_0" / "test.csv.gz", "rt")))
    seqs = [r["sequence"] for r in rows[:50]]
    reference = AutoTokenizer.from_pretrained(str(MISTRAL))
    tok = as_dna_tokenizer(reference)
    assert isinstance(tok, BPETokenizer)
    assert tok.pad_token_id == 3 and tok.vocab_size == 4096
    out = tok(seqs, return_offsets=True)
    assert [a.tolist() for a in out["input_ids"]] == reference(seqs)["input_ids"]
    assert all("".join(s[a:b] for a, b in off) == s for s, off in zip(seqs, out["offsets"], strict=True))
    from_file = BPETokenizer.from_pretrained(MISTRAL / "tokenizer.json")
    assert from_file.pad_token_id == 3 and from_file(seqs[:3])["input_ids"][0].tolist() == out["input_ids"][0].tolist()


def test_adapter_on_slow_tokenizer_refuses_offsets() -> None:
    adapter = HFTokenizerAdapter(HyenaStyleReference())
    assert adapter(["ACG"])["input_ids"][0].tolist() == [7, 8, 9, 1]
    with pytest.raises(NotImplementedError, match="offsets"):
        adapter(["ACG"], return_offsets=True)


def test_pad_right_left_and_multiple() -> None:
    ids = [np.array([5, 6, 7]), np.array([8]), np.array([], dtype=np.int64)]
    input_ids, mask = pad(ids, pad_id=0, pad_to_multiple_of=4)
    assert input_ids.dtype == torch.long and mask.dtype == torch.long
    assert input_ids.tolist() == [[5, 6, 7, 0], [8, 0, 0, 0], [0, 0, 0, 0]]
    assert mask.tolist() == [[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    left_ids, left_mask = pad([[1, 2], [3]], pad_id=9, side="left")
    assert left_ids.tolist() == [[1, 2], [9, 3]] and left_mask.tolist() == [[1, 1], [0, 1]]
    with pytest.raises(ValueError, match="pad token"):
        pad([[1]], pad_id=None)


def test_pad_works_with_tokenizer_output() -> None:
    tok = KmerTokenizer()
    ids = tok(["ACGTACGTACGTA", "AC"])["input_ids"]
    batch, mask = pad(ids, tok.pad_token_id)
    assert batch.shape == (2, 4) and batch[1, 3].item() == tok.pad_token_id and mask.sum().item() == 4 + 3


def test_reverse_complement() -> None:
    assert reverse_complement("AACGTN") == "NACGTT"
    assert reverse_complement("acgRYKMBVDHSWn-") == "-nWSDHBVKMRYcgt"
    assert reverse_complement("") == ""
    seqs = random_sequences(50, 7, alphabet="ACGTNRYacgt")
    rc = reverse_complement_batch(seqs)
    assert rc == [reverse_complement(s) for s in seqs]
    assert [reverse_complement(s) for s in rc] == seqs
    assert reverse_complement_batch(["AC\nGT", "A"]) == ["AC\nGT", "T"]
    assert reverse_complement_batch([]) == []


def test_character_vocabulary_without_n_falls_back_to_the_hf_tokenizer() -> None:
    # The probes hold N; a vocabulary without it cannot run them through a strict fast tokenizer, and the
    # HF tokenizer (N -> [UNK]) is used as it is instead of crashing.
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "A", "C", "G", "T"])}
    backend = Tokenizer(WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    hf = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]",
                                 cls_token="[CLS]", sep_token="[SEP]")
    assert fast_tokenizer_for(hf) is None
    tok = as_dna_tokenizer(hf)
    assert isinstance(tok, HFTokenizerAdapter)
    assert tok(["ACNT"])["input_ids"][0].tolist() == [2, 4, 5, 1, 7, 3]
