"""User errors end as one ``dnalm: error: ...`` line naming the file, record, line and fix, exit status 2."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dnalm.data.datamodule import DNADataModule
from dnalm.data.fasta import FastaFormatError
from dnalm.data.normalise import BadSequenceError
from dnalm.errors import ConfigError, DataError, DNALMError, ModelLoadError
from dnalm.utils.cli import check_types, run_task
from tests.helpers import labelled_frame, write_table

ROOT = Path(__file__).resolve().parents[1]


def _setup(make_cfg, folder: Path, *overrides: str) -> DNADataModule:
    from tests.helpers import char_tokenizer

    cfg = make_cfg("data=table", f"data.path={folder}", *overrides, small=False)
    dm = DNADataModule(cfg.data, char_tokenizer(), 512, cache_dir=cfg.paths.cache_dir)
    dm.setup("fit")
    return dm


def test_input_errors_are_dnalm_errors() -> None:
    assert issubclass(BadSequenceError, DNALMError) and issubclass(FastaFormatError, DNALMError)


def test_bad_letter_in_a_table_names_file_record_and_editor_line(make_cfg, tmp_path: Path) -> None:
    frame = labelled_frame(10).assign(id=[f"r{i}" for i in range(10)])
    frame.loc[3, "sequence"] = "ACGXACGT"
    path = write_table(tmp_path / "t", "train", frame)
    with pytest.raises(BadSequenceError) as err:
        _setup(make_cfg, tmp_path / "t")
    # row 3 is line 5 in an editor: the header is line 1
    assert str(err.value).startswith(f"{path}: record 'r3' (line 5): invalid letter 'X' at position 4")


def test_empty_sequence_error_names_the_real_config_key(make_cfg, tmp_path: Path) -> None:
    frame = labelled_frame(10)
    frame.loc[2, "sequence"] = "--"
    write_table(tmp_path / "t", "train", frame)
    with pytest.raises(BadSequenceError, match=r"line 4.*data\.policy\.empty=skip"):
        _setup(make_cfg, tmp_path / "t")
    dm = _setup(make_cfg, tmp_path / "t", "data.policy.empty=skip", "data.val_fraction=0")
    assert len(dm.splits["train"].records) == 9


def test_truncated_gzip_table(make_cfg, tmp_path: Path) -> None:
    path = write_table(tmp_path / "t", "train", labelled_frame(400), ".csv.gz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"train\.csv\.gz: the file is truncated or corrupt"):
        _setup(make_cfg, tmp_path / "t")
    assert gzip  # the file really is gzip: the reader told it by its magic bytes


def test_data_path_that_is_a_file(make_cfg, tmp_path: Path) -> None:
    path = write_table(tmp_path / "t", "train", labelled_frame(10))
    with pytest.raises(ConfigError, match=rf"data.path={path} is a file.*data.path={tmp_path / 't'}"):
        _setup(make_cfg, path)


def test_missing_local_model_folder_says_so(make_cfg, tmp_path: Path) -> None:
    from dnalm.models.backbone import load_backbone

    cfg = make_cfg("model=hf", f"model.name_or_path={tmp_path}/models/nope")
    with pytest.raises(ModelLoadError, match="the folder does not exist") as err:
        load_backbone(cfg.model)
    assert "hf download" not in str(err.value)


@pytest.mark.parametrize(("override", "message"), [
    ("data.batch_size=abc", "data.batch_size='abc' must be an integer, e.g. data.batch_size=32"),
    ("optim.lr=fast", "optim.lr='fast' must be a number"),
    ("data.batch_size=true", "data.batch_size=True must be an integer"),
])
def test_config_types_are_checked_before_any_work(make_cfg, capsys: pytest.CaptureFixture, override: str,
                                                  message: str) -> None:
    cfg = make_cfg(override)
    with pytest.raises(SystemExit) as exit_info:
        run_task(lambda _cfg: pytest.fail("the task ran"), cfg)
    assert exit_info.value.code == 2
    assert f"dnalm: error: {message}" in capsys.readouterr().err
    check_types(make_cfg())  # the shipped defaults pass


def test_command_line_bad_letter_is_one_line_exit_2(tmp_path: Path) -> None:
    frame = labelled_frame(20)
    frame.loc[6, "sequence"] = "ACGTÄ"
    write_table(tmp_path / "t", "train", frame)
    env = dict(os.environ, OMP_NUM_THREADS="1", DNALM_CACHE=str(tmp_path / "cache"), HF_HUB_OFFLINE="1",
               PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "dnalm.train", "data=table", f"data.path={tmp_path / 't'}",
                           f"paths.log_dir={tmp_path / 'out'}", "logger=csv"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("dnalm: error:")]
    assert len(errors) == 1 and "train.csv: record 'train:6' (line 8): non-ASCII character" in errors[0]
