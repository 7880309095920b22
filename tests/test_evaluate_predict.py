"""``dnalm.evaluate`` and ``dnalm.predict`` on a checkpoint trained here: files, rows, probabilities, windows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from dnalm.data.datamodule import DNADataModule
from dnalm.evaluate import evaluate
from dnalm.inference import load_module
from dnalm.predict import predict
from tests.helpers.configs import train_tiny

DEMO = ["data=demo", "data.demo.train=160", "data.demo.valid=48", "data.demo.test=48", "data.demo.length=120",
        "trainer.accelerator=cpu"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Best checkpoint of a one-epoch tiny model on the demo task, trained once for this file."""
    root = tmp_path_factory.mktemp("trained")
    metrics = train_tiny(root)
    assert Path(metrics["best_checkpoint"]).is_file()
    return metrics["best_checkpoint"]


def _random_dna(n: int, rng: np.random.Generator) -> str:
    return "".join(rng.choice(list("ACGT"), n))


def test_evaluate_writes_metrics_and_one_prediction_per_record(make_cfg, checkpoint: str, tmp_path: Path) -> None:
    cfg = make_cfg(f"ckpt_path={checkpoint}", *DEMO, config_name="evaluate")
    metrics = evaluate(cfg)
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert {"test/mcc", "test/accuracy", "test/auroc", "records", "trainable_params"} <= set(written)
    assert written["records"] == 48 and written["checkpoint"] == checkpoint
    assert metrics["test/mcc"] == pytest.approx(written["test/mcc"])
    frame = pd.read_csv(tmp_path / "run" / "predictions.csv")
    assert list(frame.columns) == ["id", "label", "prob_0", "prob_1", "predicted"]
    assert len(frame) == 48 and frame["id"].is_unique
    np.testing.assert_allclose(frame[["prob_0", "prob_1"]].sum(1), 1.0, atol=1e-6)
    assert (frame["predicted"] == (frame["prob_1"] > frame["prob_0"]).astype(int)).all()
    # The accuracy in metrics.json is the accuracy of the written predictions.
    assert (frame["predicted"] == frame["label"]).mean() == pytest.approx(written["test/accuracy"], abs=1e-6)


def test_predict_fasta_and_unlabelled_table(make_cfg, checkpoint: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    seqs = [_random_dna(n, rng) for n in (90, 120, 150)]
    fasta = tmp_path / "in.fa"
    fasta.write_text("".join(f">seq{i} some description\n{s[:60]}\n{s[60:]}\n" for i, s in enumerate(seqs)))
    table = tmp_path / "in.csv"
    pd.DataFrame({"sequence": seqs}).to_csv(table, index=False)

    out_fa = predict(make_cfg(f"ckpt_path={checkpoint}", f"input={fasta}", f"output={tmp_path / 'fa.csv'}",
                              "trainer.accelerator=cpu", config_name="predict"))
    out_tab = predict(make_cfg(f"ckpt_path={checkpoint}", f"input={table}", f"output={tmp_path / 'tab.csv'}",
                               "trainer.accelerator=cpu", config_name="predict"))
    for frame, path in ((out_fa, tmp_path / "fa.csv"), (out_tab, tmp_path / "tab.csv")):
        written = pd.read_csv(path)
        assert list(written.columns) == ["id", "prob_0", "prob_1", "predicted"]
        assert len(written) == 3
        np.testing.assert_allclose(written[["prob_0", "prob_1"]].sum(1), 1.0, atol=1e-6)
        np.testing.assert_allclose(written["prob_1"], frame["prob_1"], atol=1e-6)
    assert pd.read_csv(tmp_path / "fa.csv")["id"].str.startswith("seq").all()
    # Same sequences, same model: the same probabilities whichever format they came in.
    np.testing.assert_allclose(out_fa["prob_1"], out_tab["prob_1"], atol=1e-5)


def test_long_sequence_is_scored_as_mean_of_window_logits(make_cfg, checkpoint: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    long_seq, short_seq = _random_dna(1300, rng), _random_dna(100, rng)  # tiny model context: 512 tokens
    fasta = tmp_path / "long.fa"
    fasta.write_text(f">long\n{long_seq}\n>short\n{short_seq}\n")
    cfg = make_cfg(f"ckpt_path={checkpoint}", f"input={fasta}", f"output={tmp_path / 'out.csv'}",
                   "trainer.accelerator=cpu", config_name="predict")
    frame = predict(cfg)
    assert list(frame["id"]) == ["long", "short"]

    # Recompute by hand: each window of the long record on its own, then the mean of their logits.
    module, backbone, task = load_module(cfg)
    module.eval()
    data_cfg = OmegaConf.merge(OmegaConf.to_container(cfg.data, resolve=True),
                               {"path": str(fasta), "allow_unlabelled": True})
    datamodule = DNADataModule(data_cfg, backbone.tokenizer, backbone.max_tokens, task=task, only_splits=("test",),
                               cache_dir=tmp_path / "cache2")
    datamodule.setup("predict")
    split = datamodule.splits["test"]
    windows = [ids for ids, group in zip(split.ids, split.groups) if group == 0]
    assert len(windows) >= 3 and all(len(w) <= backbone.max_tokens for w in windows)
    with torch.no_grad():
        logits = torch.cat([module(torch.as_tensor(w, dtype=torch.long)[None],
                                   torch.ones(1, len(w), dtype=torch.long)) for w in windows])
    expected = torch.softmax(logits.mean(0), -1)
    np.testing.assert_allclose(frame.loc[0, ["prob_0", "prob_1"]].to_numpy(float), expected.numpy(), atol=1e-5)
    # ...which differs from scoring the first window alone (the aggregation matters).
    assert not np.allclose(torch.softmax(logits[0], -1).numpy(), expected.numpy(), atol=1e-4)


def test_evaluate_says_a_model_override_is_ignored(make_cfg, checkpoint: str, tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    import logging

    cfg = make_cfg(f"ckpt_path={checkpoint}", *DEMO, f"model.name_or_path={tmp_path / 'other_model'}",
                   config_name="evaluate")
    with caplog.at_level(logging.WARNING):
        written = evaluate(cfg)
    assert f"model.name_or_path={tmp_path / 'other_model'} is ignored" in caplog.text
    assert written["positive_class"] == "1"


def test_predict_never_overwrites_its_input_and_asks_before_replacing_output(make_cfg, checkpoint: str,
                                                                              tmp_path: Path) -> None:
    from dnalm.errors import ConfigError

    fasta = tmp_path / "in.fa"
    fasta.write_text(">a\nACGTACGTAC\n")
    before = fasta.read_text()
    with pytest.raises(ConfigError, match="would overwrite the input"):
        predict(make_cfg(f"ckpt_path={checkpoint}", f"input={fasta}", f"output={fasta}", "overwrite=true",
                         config_name="predict"))
    out = tmp_path / "out.csv"
    out.write_text("precious\n")
    with pytest.raises(ConfigError, match="exists.*overwrite=true"):
        predict(make_cfg(f"ckpt_path={checkpoint}", f"input={fasta}", f"output={out}", config_name="predict"))
    assert fasta.read_text() == before and out.read_text() == "precious\n"
    predict(make_cfg(f"ckpt_path={checkpoint}", f"input={fasta}", f"output={out}", "overwrite=true",
                     "trainer.accelerator=cpu", config_name="predict"))
    assert pd.read_csv(out)["id"].tolist() == ["a"]


def test_predict_keeps_duplicate_names_apart_and_skips_empty_fasta_records(make_cfg, checkpoint: str, tmp_path: Path,
                                                                           caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from dnalm.errors import DataError

    fasta = tmp_path / "dup.fa"
    fasta.write_text(">x\nACGTACGTACGGA\n>empty\n\n>x\nTTTTGGGGCCCCA\n")
    args = [f"ckpt_path={checkpoint}", f"input={fasta}", "trainer.accelerator=cpu"]
    with pytest.raises(DataError, match=r"record 'empty' \(line 3\).*data\.policy\.empty=skip"):
        predict(make_cfg(*args, f"output={tmp_path / 'a.csv'}", config_name="predict"))
    with caplog.at_level(logging.WARNING):
        frame = predict(make_cfg(*args, f"output={tmp_path / 'b.csv'}", "data.policy.empty=skip",
                                 config_name="predict"))
    assert frame["id"].tolist() == ["x", "x"] and frame["prob_1"].iloc[0] != frame["prob_1"].iloc[1]
    assert "1 record(s) share a name" in caplog.text and "empty_skipped=1" in caplog.text


def test_predict_genbank_and_embl_inputs_like_their_fasta(make_cfg, checkpoint: str, tmp_path: Path) -> None:
    from tests.helpers.seqfiles import phage_records, write_copies

    paths = write_copies(tmp_path / "in", phage_records(first_bp=300, second_bp=200))
    renamed = tmp_path / "in" / "phage.txt"
    renamed.write_bytes(paths[".embl"].read_bytes())
    frames = {}
    for name, path, extra in (("fa", paths[".fa"], ()), ("gb", paths[".gbk.gz"], ()),
                              ("embl", renamed, ("data.format=embl",))):
        frames[name] = predict(make_cfg(f"ckpt_path={checkpoint}", f"input={path}",
                                        f"output={tmp_path / f'{name}.csv'}", "trainer.accelerator=cpu", *extra,
                                        config_name="predict"))
    assert frames["fa"]["id"].tolist() == ["NC_024711.1", "XX_000002.1"]
    for name in ("gb", "embl"):
        pd.testing.assert_frame_equal(frames[name], frames["fa"])
