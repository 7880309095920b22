"""Non-overlapping (NT) and overlapping (DNABERT) k-mer tokenizers give the transformers tokenizers' ids."""

from __future__ import annotations

import numpy as np
import pytest
from transformers import AutoTokenizer, BertTokenizer, EsmTokenizer

from dnalm.tokenizers import (
    KmerTokenizer,
    OverlappingKmerTokenizer,
    UnknownCharacterError,
    load_tokenizer,
    to_kmer_text,
)
from dnalm.tokenizers.kmer import all_kmers, dnabert_vocab, nt_vocab

EDGE_CASES = [
    "", "A", "N", "AAAAAA", "ACGTAC", "AAAAAAT", "TAAAAAA", "ACGTA", "ACGTACGTACGT",
    "AANAAAAAAA", "NNNNNNNN", "ACGTANNACGTACGTAC", "NACGTAC", "ACGTACN", "GGGGGGGGGGGGG",
]


def random_sequences(n: int, seed: int, alphabet: str = "ACGT", max_len: int = 60) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list(alphabet), size=rng.integers(0, max_len))) for _ in range(n)]


@pytest.fixture(scope="module")
def nt_hf(tmp_path_factory: pytest.TempPathFactory) -> EsmTokenizer:
    """NT's published tokenizer: EsmTokenizer on vocab.txt, <cls> prepended, no <eos>."""
    folder = tmp_path_factory.mktemp("nt")
    (folder / "vocab.txt").write_text("\n".join(nt_vocab(6)))
    return EsmTokenizer(str(folder / "vocab.txt"), eos_token=None)


def test_nt_vocab_layout() -> None:
    vocab = nt_vocab(6)
    assert len(vocab) == 4107
    assert vocab[:6] == ["<unk>", "<pad>", "<mask>", "<cls>", "<eos>", "<bos>"]
    assert vocab[6:9] == ["AAAAAA", "AAAAAT", "AAAAAC"] and vocab[4101] == "GGGGGG"
    assert vocab[-5:] == ["A", "T", "C", "G", "N"]
    assert dnabert_vocab(3)[:8] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "AAA", "AAT", "AAC"]
    assert len(set(all_kmers(4))) == 256


def test_nt_ids_identical_to_esm(nt_hf: EsmTokenizer) -> None:
    tok = KmerTokenizer()
    seqs = EDGE_CASES + random_sequences(200, 0) + random_sequences(100, 1, alphabet="ACGTN")
    ours = tok(seqs)["input_ids"]
    for seq, ids in zip(seqs, ours, strict=True):
        assert ids.dtype == np.int64
        assert ids.tolist() == nt_hf(seq)["input_ids"], seq
    assert tok.vocab_size == len(nt_hf) == 4107
    assert (tok.pad_token_id, tok.cls_token_id, tok.mask_token_id) == (1, 3, 2)


def test_nt_known_ids() -> None:
    ids = KmerTokenizer()(["", "AAAAAAT", "TAAAAAA", "AANAAAAAAA"])["input_ids"]
    assert ids[0].tolist() == [3]
    assert ids[1].tolist() == [3, 6, 4103]
    assert ids[2].tolist() == [3, 1030, 4102]
    assert ids[3].tolist() == [3, 4102, 4102, 4106, 6, 4102]


def test_nt_unknown_characters(nt_hf: EsmTokenizer) -> None:
    seqs = ["AARRAAAAAAA", "ACGTACR", "RRR", "acgtAAAAAA", "AAAAAA AAAAAA"[:6] + "Y"]
    strict = KmerTokenizer()
    with pytest.raises(UnknownCharacterError, match=r"record 0 has character 'R' at position 2"):
        strict(seqs)
    # on_unknown="unk" without upper-casing reproduces EsmTokenizer (a run of unknowns -> one <unk>).
    lenient = KmerTokenizer(uppercase=False, on_unknown="unk")
    for seq, ids in zip(seqs, lenient(seqs)["input_ids"], strict=True):
        assert ids.tolist() == nt_hf(seq)["input_ids"], seq


def test_nt_lowercase_is_uppercased(nt_hf: EsmTokenizer) -> None:
    seqs = random_sequences(20, 2, alphabet="ACGTN")
    lower = KmerTokenizer()([s.lower() for s in seqs])["input_ids"]
    for seq, ids in zip(seqs, lower, strict=True):
        assert ids.tolist() == nt_hf(seq)["input_ids"]


def test_nt_offsets_cover_the_tokens() -> None:
    seqs = ["ACGTACGTANNACGTACGTAC", "", "ACG"]
    tok = KmerTokenizer(add_eos=True)
    out = tok(seqs, return_offsets=True)
    inverse = {i: t for t, i in tok.vocab.items()}
    for seq, ids, offsets in zip(seqs, out["input_ids"], out["offsets"], strict=True):
        assert offsets.shape == (len(ids), 2)
        assert ids[0] == tok.cls_token_id and ids[-1] == tok.eos_token_id
        assert offsets[0].tolist() == [0, 0] and offsets[-1].tolist() == [0, 0]
        # Each content token is exactly the text of its span, and the spans tile the sequence.
        assert [seq[a:b] for a, b in offsets[1:-1]] == [inverse[i] for i in ids[1:-1]]
        assert offsets[1:-1].ravel().tolist()[1:-1:2] == offsets[1:-1].ravel().tolist()[2:-1:2]


@pytest.mark.parametrize("k", [3, 4, 5, 6])
def test_dnabert_ids_identical_to_bert(k: int, tmp_path) -> None:
    (tmp_path / "vocab.txt").write_text("\n".join(dnabert_vocab(k)))
    hf = BertTokenizer(vocab=str(tmp_path / "vocab.txt"), do_lower_case=False)
    tok = OverlappingKmerTokenizer(k)
    seqs = EDGE_CASES + random_sequences(100, k) + random_sequences(50, k + 10, alphabet="ACGTN")
    for seq, ids in zip(seqs, tok(seqs)["input_ids"], strict=True):
        assert ids.tolist() == hf(to_kmer_text(seq, k))["input_ids"], seq
    assert tok.vocab_size == len(hf) == 5 + 4**k


def test_dnabert_offsets_and_unknowns() -> None:
    tok = OverlappingKmerTokenizer(3)
    out = tok(["ACGNT", "AC"], return_offsets=True)
    ids, offsets = out["input_ids"][0], out["offsets"][0]
    assert ids.tolist() == [2, tok.vocab["ACG"], 1, 1, 3]  # k-mers holding N are [UNK]
    assert offsets.tolist() == [[0, 0], [0, 3], [1, 4], [2, 5], [0, 0]]
    assert out["input_ids"][1].tolist() == [2, 3]  # shorter than k: no k-mer
    with pytest.raises(UnknownCharacterError, match="record 1"):
        tok(["ACGT", "ACXT"])
    assert tok.__class__(3, on_unknown="unk")(["ACXTT"])["input_ids"][0].tolist() == [2, 1, 1, 1, 3]


def test_save_and_load_round_trip(tmp_path, nt_hf: EsmTokenizer) -> None:
    seqs = random_sequences(30, 5, alphabet="ACGTN")
    for tok in (KmerTokenizer(), OverlappingKmerTokenizer(4)):
        folder = tok.save_pretrained(tmp_path / type(tok).__name__)
        again = load_tokenizer(folder)
        assert type(again) is type(tok) and again.config() == tok.config()
        hf = AutoTokenizer.from_pretrained(str(folder))
        for seq, ids in zip(seqs, again(seqs)["input_ids"], strict=True):
            text = to_kmer_text(seq, 4) if isinstance(tok, OverlappingKmerTokenizer) else seq
            assert ids.tolist() == hf(text)["input_ids"]
    assert KmerTokenizer().to_hf()("ACGTACN")["input_ids"] == nt_hf("ACGTACN")["input_ids"]


def test_empty_batch_and_bad_input() -> None:
    tok = KmerTokenizer()
    assert tok([]) == {"input_ids": []}
    with pytest.raises(TypeError, match="list of sequences"):
        tok("ACGT")
    with pytest.raises(TypeError, match="must be a str"):
        tok(["ACGT", b"ACGT"])
    with pytest.raises(ValueError, match="on_unknown"):
        KmerTokenizer(on_unknown="drop")


@pytest.mark.parametrize("batch", [["ACGT"], ["A"], [""], ["AC", "GTA"], ["ACGTA", "N"], ["ACN"]])
def test_batch_shorter_than_k_gives_single_nucleotides_like_esm(nt_hf: EsmTokenizer, batch: list[str]) -> None:
    # No sequence in the batch holds a whole 6-mer: the leftover bases are single-nucleotide tokens.
    out = KmerTokenizer()(batch, return_offsets=True)
    assert [ids.tolist() for ids in out["input_ids"]] == [nt_hf(seq)["input_ids"] for seq in batch]
    assert out["offsets"][0][1:].tolist() == [[i, i + 1] for i in range(len(batch[0]))]


@pytest.mark.parametrize("batch", [["ACGTACGT", ""], ["ACGTAC", "", ""], ["", "ACGTACG", ""], ["ACN", ""], ["", ""]])
@pytest.mark.parametrize("tok", [KmerTokenizer(), OverlappingKmerTokenizer(3)], ids=["nt", "dnabert"])
def test_empty_sequences_keep_one_row_each(batch: list[str], tok) -> None:
    out = tok(batch, return_offsets=True)
    assert len(out["input_ids"]) == len(out["offsets"]) == len(batch)
    alone = [tok([seq])["input_ids"][0].tolist() for seq in batch]
    assert [ids.tolist() for ids in out["input_ids"]] == alone
