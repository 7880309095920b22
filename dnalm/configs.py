"""Where the shipped Hydra config tree lives: ``conf/`` in a checkout, ``dnalm/conf`` in an installed wheel."""

from __future__ import annotations

import sys
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def config_dir() -> Path:
    """The folder holding ``train.yaml`` and the config groups.

    A wheel ships the tree inside the package (``pyproject.toml`` maps ``dnalm.conf`` to ``conf/``), so it is
    looked for there first; a checkout (editable install or ``PYTHONPATH=<checkout>``) has it beside the package.
    """
    for candidate in (_PACKAGE / "conf", _PACKAGE.parent / "conf"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"dnalm: the config tree is missing (looked in {_PACKAGE / 'conf'} and "
                            f"{_PACKAGE.parent / 'conf'}); reinstall dnalm")


# An absolute path, as ``hydra.main(config_path=...)`` takes it.
CONFIG_DIR = str(config_dir())


# Data configs grouped by benchmark (``data=gue_emp_H3`` became ``data=gue/emp_H3``): old prefix -> folder.
_RENAMED_DATA = {"gue_": "gue/", "nt_": "nt/", "genomic_benchmarks_": "gb/"}


def renamed_config_hint(overrides: list[str]) -> str | None:
    """The message for a ``data=<old flat name>`` override whose config moved into a group folder, else None."""
    data_dir = config_dir() / "data"
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        if key != "data":
            continue
        for name in value.split(","):
            if (data_dir / f"{name}.yaml").is_file():
                continue
            for old, new in _RENAMED_DATA.items():
                moved = new + name[len(old):]
                if name.startswith(old) and (data_dir / f"{moved}.yaml").is_file():
                    return (f"data={name} is now data={moved} (data configs are grouped by benchmark: "
                            "gue/, nt/, gb/; see docs/configuration.md).")
    return None


def exit_on_renamed_config(overrides: list[str]) -> None:
    """Stop with ``dnalm: error: ...`` and exit status 2 when an override names a renamed config."""
    hint = renamed_config_hint(overrides)
    if hint is not None:
        print(f"dnalm: error: {hint}", file=sys.stderr)
        raise SystemExit(2)
