"""dnalm.explain: ISM, gradient attributions mapped to bases, pictures and motifs, on models trained here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import open_dict

from tests.helpers.configs import CONF_DIR

MOTIF = "AGATAA"  # a GATA site
LENGTH = 48


def planted_table(folder: Path, n: int, seed: int) -> Path:
    """Random ``LENGTH`` bp sequences; label 1 carries ``MOTIF`` at a random 6-mer token boundary, label 0 never
    holds it anywhere."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, size in (("train", n), ("valid", n // 4), ("test", n // 4)):
        seqs, labels = [], []
        while len(seqs) < size:
            seq = "".join(rng.choice(list("ACGT"), size=LENGTH))
            label = len(seqs) % 2
            if label:
                at = 6 * int(rng.integers(0, LENGTH // 6))
                seq = seq[:at] + MOTIF + seq[at + len(MOTIF):]
            elif MOTIF in seq:
                continue
            seqs.append(seq)
            labels.append(label)
        pd.DataFrame({"sequence": seqs, "label": labels}).to_csv(folder / f"{split}.csv", index=False)
    return folder


def train_planted(root: Path) -> tuple[Path, dict]:
    """A tiny 6-mer transformer trained with dnalm.train to detect ``MOTIF`` (one token when it is aligned)."""
    from dnalm.train import train

    data = planted_table(root / "data", 512, seed=3)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="train", overrides=[
            "data=table", f"data.path={data}", "logger=csv", "data.batch_size=32", "trainer.max_epochs=4", "model.from_config.tokenizer=nt_kmer",
            "trainer.accelerator=cpu", "model.from_config.hidden_size=16", "model.from_config.intermediate_size=32",
            "model.from_config.num_attention_heads=2", "model.from_config.num_hidden_layers=1", "model.max_tokens=64", "head.dropout=0.0",
            "model.from_config.hidden_dropout_prob=0.0", "optim.lr=3e-3", "monitor=val/accuracy",
            "callbacks.early_stopping=null"])
    with open_dict(cfg):
        cfg.paths.output_dir = str(root / "run")
        cfg.paths.log_dir = str(root / "outputs")
        cfg.paths.cache_dir = str(root / "cache")
    metrics = train(cfg)
    return Path(metrics["best_checkpoint"]), metrics


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The planted-motif checkpoint (about 20 s on a CPU)."""
    ckpt, metrics = train_planted(tmp_path_factory.mktemp("planted"))
    assert metrics["test/accuracy"] > 0.95, metrics
    return ckpt


def positives(folder: Path, n: int) -> pd.DataFrame:
    """The first ``n`` motif carriers of a planted test split, with the motif's start."""
    frame = pd.read_csv(folder / "test.csv")
    frame = frame[frame.label == 1].head(n).reset_index(drop=True)
    frame["motif_start"] = [s.index(MOTIF) for s in frame.sequence]
    return frame


def load(ckpt: Path, tmp_path: Path, *overrides: str):  # noqa: ANN201 - (Runner, Scorer, cfg)
    """Runner and scorer of a checkpoint through the explain config."""
    from dnalm.apps.explain.scoring import Scorer
    from dnalm.inference import Runner, class_index
    from tests.helpers.apps import app_cfg

    cfg = app_cfg("explain", tmp_path, f"ckpt_path={ckpt}", "device=cpu", *overrides)
    runner, task = Runner.from_cfg(cfg)
    return runner, Scorer(runner, task, class_index(task, None), str(cfg.score), bool(cfg.rc_average)), cfg


# ---- base mapping ---------------------------------------------------------------------------------------------


def test_kmer_tokens_map_to_their_bases() -> None:
    from dnalm.apps.explain.attributions import tokens_to_bases
    from dnalm.tokenizers import KmerTokenizer, OverlappingKmerTokenizer

    out = KmerTokenizer(k=3, add_cls=True)(["ACGTACGT"], return_offsets=True)  # [CLS] ACG TAC G T
    assert out["offsets"][0].tolist() == [[0, 0], [0, 3], [3, 6], [6, 7], [7, 8]]
    bases = tokens_to_bases(np.array([5.0, 3.0, 6.0, 1.0, 2.0]), out["offsets"][0], 8)
    np.testing.assert_allclose(bases, [1, 1, 1, 2, 2, 2, 1, 2])  # the [CLS] score is no base's
    out = OverlappingKmerTokenizer(k=3)(["ACGTA"], return_offsets=True)  # [CLS] ACG CGT GTA [SEP]
    bases = tokens_to_bases(np.array([9.0, 3.0, 6.0, 9.0, 9.0]), out["offsets"][0], 5)
    np.testing.assert_allclose(bases, [1, 1 + 2, 1 + 2 + 3, 2 + 3, 3])  # shares of every covering k-mer add up


def test_bpe_tokens_map_to_their_bases() -> None:
    from tokenizers import Tokenizer
    from tokenizers.models import BPE
    from transformers import PreTrainedTokenizerFast

    from dnalm.apps.explain.attributions import tokens_to_bases
    from dnalm.tokenizers import BPETokenizer

    vocab = {"[UNK]": 0, "[PAD]": 1, "A": 2, "C": 3, "G": 4, "T": 5, "AC": 6, "ACG": 7, "TT": 8}
    model = BPE(vocab, [("A", "C"), ("AC", "G"), ("T", "T")], unk_token="[UNK]")
    hf = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(model), unk_token="[UNK]", pad_token="[PAD]")
    out = BPETokenizer(hf)(["ACGTTANACG"], return_offsets=True)  # ACG TT A [UNK] ACG
    assert out["input_ids"][0].tolist() == [7, 8, 2, 0, 7]
    bases = tokens_to_bases(np.array([3.0, 4.0, 1.0, -1.0, 6.0]), out["offsets"][0], 10)
    np.testing.assert_allclose(bases, [1, 1, 1, 2, 2, 1, -1, 2, 2, 2])
    assert bases.sum() == pytest.approx(13.0)


# ---- ISM ------------------------------------------------------------------------------------------------------


def test_positions_parse_like_python_slices() -> None:
    from dnalm.apps.explain.ism import parse_positions
    from dnalm.errors import ConfigError

    assert parse_positions(None, 50) == (0, 50)
    assert parse_positions("10:20", 50) == (10, 20)
    assert parse_positions("-10:", 50) == (40, 50)
    assert parse_positions(":5", 50) == (0, 5)
    for bad in ("20:10", "abc", "7", "60:70"):
        with pytest.raises(ConfigError):
            parse_positions(bad, 50)


def test_ism_is_zero_at_the_reference_and_equals_one_forward_per_mutant(planted: Path, tmp_path: Path) -> None:
    from dnalm.apps.explain.ism import ism, mutants

    runner, scorer, _ = load(planted, tmp_path)
    seq = positives(planted.parents[2] / "data", 1).sequence[0][:40] + "NACGTAAC"
    start, end = 5, 45  # an N inside: all four bases are mutants there
    (result,) = ism(scorer, [seq], [(start, end)], mutants_per_call=50)  # mutants spread over several calls
    ref = np.array(["ACGT".find(b) for b in seq[start:end]])
    known = ref >= 0
    assert (result.delta[np.flatnonzero(known), ref[known]] == 0).all()
    strings, positions, columns = mutants(seq, start, end)
    assert len(strings) == 3 * known.sum() + 4 * (~known).sum()
    alone = np.array([scorer([s])[0] for s in strings[::7]])  # one forward per mutant, batch of one
    np.testing.assert_allclose(result.delta[positions[::7] - start, columns[::7]], alone - scorer([seq])[0], atol=1e-5)
    assert np.abs(result.delta[np.flatnonzero(known)]).max() > 1e-3  # a real model: mutations do something


def test_ism_finds_the_planted_motif_end_to_end(planted: Path, tmp_path: Path) -> None:
    from dnalm.apps.explain.app import explain
    from tests.helpers.apps import app_cfg

    frame = positives(planted.parents[2] / "data", 12)
    frame["id"] = [f"chr7:{1000 + 100 * i}-{1000 + 100 * i + LENGTH}" for i in range(len(frame))]
    table = tmp_path / "pos.csv"
    frame[["id", "sequence", "label"]].to_csv(table, index=False)
    cfg = app_cfg("explain", tmp_path, f"ckpt_path={planted}", f"input={table}", "data.id_column=id",
                  "methods=[ism,ig,gxi]", "plots.sequences=2", "device=cpu", "only_label=1", "ig.steps=16")
    summary = explain(cfg)
    out = tmp_path / "run"
    result = pd.read_csv(out / "summary.tsv", sep="\t")
    inside = (result.ism_top_position >= frame.motif_start) & (result.ism_top_position < frame.motif_start + 6)
    assert inside.all(), result
    for n, motif_start in enumerate(frame.motif_start, start=1):
        scores = np.load(out / "scores" / f"{n}.npz")
        strength = np.abs(scores["ism"]).max(1)
        motif = np.zeros(LENGTH, dtype=bool)
        motif[motif_start:motif_start + 6] = True
        assert strength[motif].min() > 2 * strength[~motif].max()  # every motif base matters more than any other
        assert scores["ig"].shape == (LENGTH,) and scores["ism"].shape == (LENGTH, 4)
    assert summary["sequences"] == 12 and summary["plots"] == 2 and (out / "plots" / "1.png").stat().st_size > 10_000
    graph = pd.read_csv(out / "ism.bedGraph", sep="\t", skiprows=1, names=["chrom", "start", "end", "v"])
    assert len(graph) == 12 * LENGTH and graph.start.iloc[0] == 1000 and graph.end.iloc[-1] == 1000 + 1100 + LENGTH


def test_progress_is_logged_per_method_and_changes_no_output(planted: Path, tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import functools
    import logging

    import dnalm.apps.explain.app as app
    from tests.helpers.apps import app_cfg

    table = tmp_path / "pos.csv"
    positives(planted.parents[2] / "data", 4)[["sequence", "label"]].to_csv(table, index=False)

    def run(name: str) -> pd.DataFrame:
        cfg = app_cfg("explain", tmp_path / name, f"ckpt_path={planted}", f"input={table}", "methods=[ism,gxi]",
                      "plots.sequences=0", "device=cpu", "ig.batch_size=2")
        app.explain(cfg)
        return pd.read_csv(tmp_path / name / "run" / "summary.tsv", sep="\t")

    caplog.set_level(logging.INFO, "dnalm.progress")
    logged = run("logged")
    lines = [r.getMessage() for r in caplog.records if r.name == "dnalm.progress"]
    assert [line.split(" (")[0] for line in lines if line.startswith("explain ism")] == [
        f"explain ism: {k}/4 sequences" for k in (1, 2, 3, 4)]  # each sequence is 25%: one line each
    assert [line.split(" (")[0] for line in lines if line.startswith("explain gxi")] == [
        "explain gxi: 2/4 sequences", "explain gxi: 4/4 sequences"]  # one line per batch of two
    monkeypatch.setattr(app, "Progress", functools.partial(app.Progress, terminal=True))
    pd.testing.assert_frame_equal(run("with_bar"), logged)


def test_rc_average_is_strand_symmetric(planted: Path, tmp_path: Path) -> None:
    from dnalm.apps.explain.app import gradient_scores, make_attributor
    from dnalm.apps.explain.ism import ism
    from dnalm.tokenizers import reverse_complement

    runner, scorer, cfg = load(planted, tmp_path, "rc_average=true")
    seq = positives(planted.parents[2] / "data", 1).sequence[0]
    rc = reverse_complement(seq)
    forward, reverse = ism(scorer, [seq, rc], [(0, LENGTH), (0, LENGTH)])
    # base b at i on one strand is complement(b) at L-1-i on the other: columns A,C,G,T -> T,G,C,A
    np.testing.assert_allclose(forward.delta, reverse.delta[::-1, ::-1], atol=1e-5)
    attributor = make_attributor(runner, scorer, cfg)
    (ig_fwd, ig_rev), _ = gradient_scores(attributor, [seq, rc], "ig", 2, rc_average=True)
    np.testing.assert_allclose(ig_fwd, ig_rev[::-1], atol=1e-5)


# ---- gradient attributions ------------------------------------------------------------------------------------


@pytest.mark.parametrize("baseline", ["pad", pytest.param("n", marks=pytest.mark.slow)])
def test_integrated_gradients_are_complete(planted: Path, tmp_path: Path, baseline: str) -> None:
    import torch

    from dnalm.apps.explain.app import make_attributor
    from dnalm.apps.explain.attributions import baseline_ids
    from dnalm.tokenizers import pad

    # max pooling has kinks along the path: completeness needs fine steps here (the error is reported per sequence)
    runner, scorer, cfg = load(planted, tmp_path, "ig.steps=256", f"ig.baseline={baseline}")
    attributor = make_attributor(runner, scorer, cfg)
    seqs = positives(planted.parents[2] / "data", 3).sequence.tolist() + ["ACGT" * 9]  # unequal lengths: padding
    per_base, delta = attributor.attribute(seqs, "ig")
    # f(x) - f(baseline) computed apart from captum, with the model called on the baseline ids themselves
    encoded = attributor.encode(seqs)
    attributor.rng = np.random.default_rng(int(cfg.seed))  # the same shuffles as inside attribute()
    ids, mask = pad([e.ids for e in encoded], attributor.pad_id)
    base, _ = pad([baseline_ids(e, baseline, attributor.dna_tokenizer, attributor.rng) for e in encoded],
                  attributor.pad_id)
    with torch.no_grad():
        gap = (scorer.logits_to_score(runner.module(ids, mask)) - scorer.logits_to_score(runner.module(base, mask)))
    totals = np.array([p.sum() for p in per_base])
    assert np.abs(gap.numpy()).max() > 0.5  # the test has something to explain
    np.testing.assert_allclose(totals, gap.numpy(), atol=0.02 * np.abs(gap.numpy()).max())
    assert np.abs(delta).max() < 0.02 * np.abs(gap.numpy()).max()
    assert [len(p) for p in per_base] == [len(s) for s in seqs]


# ---- errors ---------------------------------------------------------------------------------------------------


def test_bad_requests_are_config_errors(planted: Path, tmp_path: Path) -> None:
    from dnalm.apps.explain.app import explain
    from dnalm.apps.inputs import write_fasta
    from dnalm.errors import ConfigError
    from tests.helpers.apps import app_cfg

    fasta = tmp_path / "x.fa"
    write_fasta(fasta, [("a", "ACGT" * 12)])
    for overrides, message in ((["methods=[ism,saliency]"], "methods"), (["only_label=1"], "only_label"),
                               (["positions=60:70"], "positions"), (["motifs.run=true", "methods=[ig]"], "motifs"),
                               (["ig.baseline=zeros", "methods=[ig]"], "baseline")):
        cfg = app_cfg("explain", tmp_path, f"ckpt_path={planted}", f"input={fasta}", "device=cpu",
                      "plots.sequences=0", *overrides)
        with pytest.raises(ConfigError, match=message):
            explain(cfg)
    cfg = app_cfg("explain", tmp_path, "model=tiny", f"input={fasta}")
    with pytest.raises(ConfigError, match="classifier"):
        explain(cfg)


# ---- motifs (numba compiles tomtom and TF-MoDISco kernels on first use: slow) ---------------------------------


@pytest.mark.slow
def test_a_database_motif_is_matched_to_itself_from_jaspar_and_from_a_meme_file(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    from dnalm.apps.explain.motifs import load_database, match, write_meme

    jaspar = load_database(OmegaConf.create({"database": "jaspar", "jaspar_release": "JASPAR2024",
                                             "jaspar_collection": "CORE", "jaspar_tax_group": "vertebrates"}))
    assert len(jaspar) > 500
    name = next(n for n in jaspar if n.endswith(" GATA1"))
    rng = np.random.default_rng(0)
    query = jaspar[name].T + rng.uniform(0, 0.05, size=jaspar[name].T.shape)  # [W, 4], slightly blurred
    query = query / query.sum(1, keepdims=True)
    (hits,) = match([query], jaspar, 3)
    assert hits[0]["target"] == name and hits[0]["q"] < 1e-3
    (hits_rc,) = match([query[::-1, ::-1]], jaspar, 1)  # the reverse complement matches on the - strand
    assert hits_rc[0]["target"] == name and hits_rc[0]["strand"] == "-"
    write_meme(tmp_path / "db.meme", {n: jaspar[n].T for n in list(jaspar)[:300] + [name]})
    from_file = load_database(OmegaConf.create({"database": str(tmp_path / "db.meme")}))
    np.testing.assert_allclose(from_file[name], jaspar[name], atol=1e-5)


@pytest.mark.slow
def test_modisco_finds_the_planted_motif_and_jaspar_names_it(planted: Path, tmp_path: Path) -> None:
    from dnalm.apps.explain.app import explain
    from tests.helpers.apps import app_cfg

    data = planted_table(tmp_path / "more", 400, seed=11)  # new carriers of the motif, 200 in train.csv
    cfg = app_cfg("explain", tmp_path, f"ckpt_path={planted}", f"input={data / 'train.csv'}", "only_label=1",
                  "max_sequences=200", "methods=[ism]", "plots.sequences=0", "motifs.run=true", "device=cpu",
                  "motifs.min_metacluster_size=30", "motifs.final_min_cluster_size=10")
    summary = explain(cfg)
    table = pd.read_csv(tmp_path / "run" / "motifs" / "motifs.tsv", sep="\t")
    top = table[table.sign == "pos"].sort_values("seqlets", ascending=False).iloc[0]
    assert "GATA" in top.consensus or "TATC" in top.consensus, table
    assert "GATA" in top.match1.upper() or "GATA" in str(top.match2).upper(), table
    assert summary["motifs"]["patterns"] >= 1 and (tmp_path / "run" / "motifs" / "modisco.h5").is_file()
