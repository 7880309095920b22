"""benchmarks/gpu_check.sh runs end to end at toy sizes on a CPU, so it is known to work before a GPU is lent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_gpu_check_runs_on_cpu_at_tiny_sizes_and_prints_one_table(tmp_path: Path) -> None:
    rows_file = tmp_path / "rows.json"
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--device", "cpu", "--tiny",
                           "--threads", "1", "--json", str(rows_file)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| check | route |")
    rows = json.loads(rows_file.read_text())
    routes = [(row["check"].split(",")[0], row["route"]) for row in rows]
    assert ("LoRA", "dnalm") in routes and ("LoRA", "Trainer + PEFT") in routes
    assert ("full", "dnalm") in routes and ("full", "Trainer") in routes
    for row in rows:
        if row["route"] in ("dnalm", "Trainer + PEFT", "Trainer"):
            assert row["samples/s"] > 0 and row["tokens/s"] > row["samples/s"]  # 8 tokens per sample
    low_memory = next(row for row in rows if row["route"] == "dnalm preset")
    assert low_memory["peak MB"] > 0
    eager = next(row for row in rows if row["route"] == "eager")
    assert eager["ms"] > 0
    assert len(table) == 1 + len(rows)  # the header, then one line per row


def test_gpu_check_refuses_cuda_without_a_gpu_in_one_line() -> None:
    import torch

    if torch.cuda.is_available():
        return
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--device", "cuda"],
                          capture_output=True, text=True, cwd=REPO, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].startswith("dnalm: error: --device cuda but torch sees no CUDA")
