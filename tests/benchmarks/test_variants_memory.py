"""benchmarks/variants_memory.py runs end to end at a toy size (its full size is for a person to run)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_variants_memory_runs_at_a_toy_size(tmp_path: Path) -> None:
    rows_file = tmp_path / "rows.json"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "variants_memory.py"), "--mbp", "1",
                           "--snvs", "40", "--json", str(rows_file)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(rows_file.read_text())
    assert rows[1]["route"].startswith("dnalm.variants, indexed (40 SNVs scored)")
    assert all(row["peak_rss_mb"] > 50 for row in rows)
