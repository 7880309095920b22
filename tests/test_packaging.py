"""The package as users install it: every subpackage listed, and a non-editable install that finds its configs
from any directory (no checkout beside it)."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_subpackage_and_the_config_tree_are_packaged() -> None:
    setup = PROJECT["tool"]["setuptools"]
    found = {str(p.parent.relative_to(ROOT)).replace(os.sep, ".") for p in (ROOT / "dnalm").rglob("__init__.py")}
    assert set(setup["packages"]) == found | {"dnalm.conf"}, "list new subpackages in pyproject.toml"
    assert setup["package-dir"] == {"dnalm.conf": "conf"} and (ROOT / "conf" / "train.yaml").is_file()
    assert PROJECT["project"]["scripts"] == {"dnalm": "dnalm.__main__:main"}
    assert PROJECT["project"]["license"] == "Apache-2.0"


@pytest.mark.slow
def test_non_editable_install_runs_from_an_unrelated_directory(tmp_path: Path) -> None:
    # Build from a copy (the build writes build/ and *.egg-info beside the sources).
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for name in ("dnalm", "conf"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    # A fresh venv that sees this interpreter's packages (torch, setuptools, ...) but not its dnalm: a path in a
    # .pth file is put on sys.path without running the .pth files (the editable install's hook) found there.
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False, symlinks=True)
    python = env_dir / "bin" / "python"
    purelib = sysconfig.get_path("purelib", vars={"base": str(env_dir), "platbase": str(env_dir)})
    Path(purelib, "parent_site.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"OMP_NUM_THREADS": "1"}
    # --ignore-installed: never touch the dnalm this interpreter has (pip would see it through the .pth file)
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                              "--ignore-installed", "--no-deps", "--no-build-isolation", "--no-index", str(src)],
                             env=env, capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-3000:]
    shutil.rmtree(src)  # nothing of the sources is left to find

    work = tmp_path / "elsewhere"
    (work / "conf" / "data").mkdir(parents=True)
    (work / "conf" / "data" / "mine.yaml").write_text("defaults:\n  - table\n  - _self_\nname: mine\npath: x\n")
    where = subprocess.run([str(python), "-c", "import dnalm.configs as c; print(c.config_dir())"], cwd=work,
                           env=env, capture_output=True, text=True, timeout=120)
    assert where.returncode == 0, where.stderr[-2000:]
    assert Path(where.stdout.strip()) == Path(purelib, "dnalm", "conf")
    tasks = subprocess.run([str(env_dir / "bin" / "dnalm"), "--help"], cwd=work, env=env, capture_output=True,
                           text=True, timeout=120)
    assert tasks.returncode == 0 and "\n  scan " in tasks.stdout, tasks.stderr[-2000:]
    job = subprocess.run([str(python), "-m", "dnalm.train", "--cfg", "job", "data=mine", "model=tiny"], cwd=work,
                         env=env, capture_output=True, text=True, timeout=300)
    assert job.returncode == 0, job.stderr[-2000:]
    assert "  name: mine\n" in job.stdout and "  name: tiny\n" in job.stdout
