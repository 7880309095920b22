"""The command line as users meet it: a clear failure without network, Hydra's errors, and --help."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# beyond what starting the same command costs: a 3 s hub probe instead of ~30 s of hub retries per file
NO_NETWORK_EXTRA_S = 20


def _run(tmp_path: Path, *args: str, offline_flag: bool = True) -> tuple[subprocess.CompletedProcess, float]:
    env = dict(os.environ, OMP_NUM_THREADS="1", DNALM_CACHE=str(tmp_path / "cache"), WANDB_MODE="offline",
               HF_HOME=str(tmp_path / "hf"))  # an empty HF cache: nothing to fall back on
    if not offline_flag:
        env.pop("HF_HUB_OFFLINE", None)
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "dnalm.train", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    return done, time.monotonic() - start


def test_missing_model_without_network_fails_fast_and_clearly(tmp_path: Path) -> None:
    # No HF_HUB_OFFLINE: the hub is simply unreachable, as on a cluster node without internet.
    done, seconds = _run(tmp_path, "model=nt_v2_250m", "data=gut_phage", f"paths.log_dir={tmp_path / 'out'}",
                         offline_flag=False)
    assert done.returncode == 2, done.stderr[-2000:]
    # the same interpreter start, imports and config composition, without loading anything: a machine under
    # load slows both alike, so the difference is the time spent on the unreachable hub
    _, baseline = _run(tmp_path, "model=nt_v2_250m", "data=gut_phage", "--cfg", "job", offline_flag=False)
    assert seconds - baseline < NO_NETWORK_EXTRA_S, f"took {seconds:.1f} s against {baseline:.1f} s to start"
    assert "model.name_or_path" in done.stderr
    assert "InstaDeepAI/nucleotide-transformer-v2-250m-multi-species" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_unknown_config_name_gives_hydras_error(tmp_path: Path) -> None:
    done, _ = _run(tmp_path, "model=nope", f"paths.log_dir={tmp_path / 'out'}")
    assert done.returncode != 0
    assert "Could not find 'model/nope'" in done.stderr
    assert "tiny" in done.stderr  # Hydra lists the available options
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()  # nothing ran


def test_help_lists_config_groups(tmp_path: Path) -> None:
    done, _ = _run(tmp_path, "--help")
    assert done.returncode == 0, done.stderr[-2000:]
    for group in ("model", "data", "strategy", "head", "trainer"):
        assert f"{group}:" in done.stdout
    assert "nt_v2_250m" in done.stdout and "lora" in done.stdout


def test_dnalm_help_lists_every_task(capsys) -> None:
    from dnalm.__main__ import TASKS, main

    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert {"train", "evaluate", "predict", "embed", "scan", "variants", "generate", "design", "build",
            "report"} <= set(TASKS)
    for name, (module, _) in TASKS.items():
        assert f"\n  {name} " in out, name
        assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), module


def test_dnalm_refuses_an_unknown_task_and_names_renamed_data_configs(capsys) -> None:
    import pytest

    from dnalm.__main__ import main

    assert main(["trian"]) == 2
    assert "dnalm: error: unknown task 'trian'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["train", "data=gue_emp_H3"])
    assert stop.value.code == 2
    assert "data=gue_emp_H3 is now data=gue/emp_H3" in capsys.readouterr().err


def test_dnalm_runs_the_named_task_with_its_arguments(capsys, monkeypatch) -> None:
    from dnalm.__main__ import main

    monkeypatch.setattr(sys, "argv", ["dnalm"])
    assert main(["zoo", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| name") and "nt_v2_250m" in out


def test_root_application_modules_are_shims() -> None:
    for app in ("build", "design", "embed", "generate", "report", "scan", "variants"):
        text = (ROOT / "dnalm" / f"{app}.py").read_text()
        assert f"from dnalm.apps.{app} import main" in text and len(text.splitlines()) <= 12, app


def test_own_configs_extend_the_shipped_tree(tmp_path: Path) -> None:
    # a conf/ folder in the working directory, and another folder given with --config-dir
    (tmp_path / "conf" / "data").mkdir(parents=True)
    (tmp_path / "conf" / "data" / "mine.yaml").write_text("defaults:\n  - table\n  - _self_\nname: mine\npath: x\n")
    (tmp_path / "extra" / "model").mkdir(parents=True)
    (tmp_path / "extra" / "model" / "wide.yaml").write_text("defaults:\n  - tiny\n  - _self_\nname: wide\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "dnalm", "train", "--config-dir", "extra", "--cfg", "job",
                           "data=mine", "model=wide"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "  name: mine\n  path: x\n" in done.stdout  # the user's data config over the shipped table.yaml
    assert "  name: wide\n" in done.stdout and "hidden_size: 64" in done.stdout  # over the shipped tiny.yaml
    assert "  name: full\n" in done.stdout  # the rest from the shipped tree
