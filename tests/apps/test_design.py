"""dnalm.design: the genetic algorithm beats random mutation at equal scorer calls, within its constraints."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from dnalm.apps.design import design
from tests.helpers.apps import WINDOW, app_cfg

START = ("ATTATAATATTTAATAAATTATATTAAT" * 2)[:WINDOW]  # AT-rich: the GC classifier gives class 1 a low probability


def test_ga_beats_random_mutation_within_constraints(gc_classifier: Path, tmp_path: Path) -> None:
    cfg = app_cfg("design", tmp_path, f"ckpt_path={gc_classifier}", f"start={START}", "goal=max",
                  "target_class=1", "budget=240", "population=24", "mutation_rate=0.05", "max_edits=24",
                  "gc_max=0.7", "forbidden=[GGGG]", "top=10", "seed=1")
    summary = design(cfg)
    assert summary["scorer_calls"] <= 240
    assert summary["best_score"] > summary["baseline_best_score"] + 0.1, summary
    assert summary["best_score"] > summary["start_score"]
    best = pd.read_csv(tmp_path / "run" / "design.tsv", sep="\t")
    assert len(best) == 10 and best.prob_1.is_monotonic_decreasing
    assert (best.edits <= 24).all() and (best.gc <= 0.7).all()
    assert not best.sequence.str.contains("GGGG|CCCC").any()  # forbidden on both strands
    assert (tmp_path / "run" / "design.png").stat().st_size > 0
    trajectory = json.loads((tmp_path / "run" / "design.json").read_text())["trajectory"]
    assert [t["best"] for t in trajectory] == sorted(t["best"] for t in trajectory)  # elitism: never worse


def test_minimise(gc_classifier: Path, tmp_path: Path) -> None:
    start = ("GCCGCGGCAGCCGTCGGCAGCGCC" * 2)[:WINDOW]
    cfg = app_cfg("design", tmp_path, f"ckpt_path={gc_classifier}", f"start={start}", "goal=min",
                  "target_class=1", "budget=96", "population=16", "mutation_rate=0.1", "baseline=false")
    summary = design(cfg)
    assert summary["best_score"] < summary["start_score"] and summary["baseline_best_score"] is None
