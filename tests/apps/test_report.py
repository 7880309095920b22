"""dnalm.report over real multiruns: groups, counts and aggregates match the runs' metrics.json; failures listed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dnalm.apps.report import build_report, collect, main, roc_pr_points
from tests.helpers.runs import run_train


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two sweeps: two tiny models x two seeds, and a probing sweep whose first job fails (the second runs)."""
    root = tmp_path_factory.mktemp("study")
    models = run_train(root, "model.from_config.num_hidden_layers=1,2",
                       "model.name=tiny_l${model.from_config.num_hidden_layers}", "seed=1,2")
    assert models.returncode == 0, models.stderr[-3000:]
    # probing caches embeddings, so data.rc_augment=0.5 is a configuration error in the first job only
    failing = run_train(root, "strategy=probing", "data.rc_augment=0.5,0.0", "study=probe")
    assert failing.returncode == 0, failing.stderr[-3000:]
    return root / "outputs" if (root / "outputs").exists() else root


def _metrics_files(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(root.rglob("metrics.json"))]


def test_groups_counts_and_aggregates_match_metrics_json(study: Path, tmp_path: Path) -> None:
    report = build_report(study, tmp_path / "report")
    written = _metrics_files(study)
    assert len(written) == len(report.runs) == 5
    summary = report.summary.set_index(["data", "model", "strategy"])
    assert set(summary.index) == {("demo", "tiny_l1", "full"), ("demo", "tiny_l2", "full"), ("demo", "tiny", "probing")}
    for (data, model, strategy), row in summary.iterrows():
        runs = [m for m in written if (m["data"], m["model"], m["strategy"]) == (data, model, strategy)]
        assert row["n"] == len(runs) == (1 if strategy == "probing" else 2)
        assert sorted(m["seed"] for m in runs) == ([42] if strategy == "probing" else [1, 2])
        for metric in ("test/mcc", "test/f1", "val/mcc", "trainable_params"):
            values = np.array([m[metric] for m in runs], dtype=float)
            assert row[f"{metric} mean"] == pytest.approx(values.mean())
            if len(values) > 1:
                assert row[f"{metric} std"] == pytest.approx(values.std(ddof=1))
            else:
                assert math.isnan(row[f"{metric} std"])
        best = max(runs, key=lambda m: m["test/mcc"])
        assert row["best test/mcc"] == pytest.approx(best["test/mcc"])
        assert row["best run"] == Path(best["run_dir"]).name
    assert summary.loc[("demo", "tiny_l2", "full"), "trainable_params mean"] > \
        summary.loc[("demo", "tiny_l1", "full"), "trainable_params mean"]


def test_failed_job_is_listed_with_its_reason(study: Path, tmp_path: Path) -> None:
    report = build_report(study, tmp_path / "report", plots=False)
    assert len(report.problems) == 1
    problem = report.problems[0]
    assert problem.status == "failed" and "rc_augment" in problem.reason
    assert (problem.run_dir / "error.txt").is_file() and not (problem.run_dir / "metrics.json").exists()
    failed = pd.read_csv(tmp_path / "report" / "failed.csv")
    assert failed["run_dir"].tolist() == [str(problem.run_dir)]
    md = (tmp_path / "report" / "report.md").read_text()
    assert "## Failed or unfinished runs" in md and "rc_augment" in md


def test_files_and_plots_are_written(study: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    report = build_report(study, out)
    names = {p.name for p in report.files}
    assert {"report.md", "summary.csv", "runs.csv", "failed.csv", "metric_bars.png", "learning_curves.png",
            "params_vs_metric.png"} <= names
    for png in (out / "plots").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 3 and summary["n"].sum() == 5
    md = (out / "report.md").read_text()
    assert "| tiny_l1 | full | 2 |" in md and " ± " in md


def test_cli_writes_into_the_folder(study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(study), "--out", str(tmp_path / "cli"), "--no-plots"]) == 0
    assert "tiny_l2" in capsys.readouterr().out
    assert (tmp_path / "cli" / "report.md").is_file()


def test_unfinished_run_without_error_is_listed(tmp_path: Path) -> None:
    run = tmp_path / "outputs" / "train" / "runs" / "x" / "2026-01-01_00-00-00"
    (run / ".hydra").mkdir(parents=True)
    (run / "config_resolved.yaml").write_text("seed: 1\n")
    runs, problems = collect(tmp_path)
    assert runs == [] and len(problems) == 1
    assert problems[0].status == "unfinished" and problems[0].run_dir == run


def test_roc_pr_points_of_a_perfect_and_a_tied_ranking() -> None:
    fpr, tpr, recall, precision = roc_pr_points(np.array([1, 1, 0, 0]), np.array([0.9, 0.8, 0.3, 0.1]))
    assert np.trapezoid(tpr, fpr) == pytest.approx(1.0)
    assert precision[recall == 1.0].max() == pytest.approx(1.0)
    fpr, tpr, _, _ = roc_pr_points(np.array([1, 0]), np.array([0.5, 0.5]))
    assert np.trapezoid(tpr, fpr) == pytest.approx(0.5)


def _fake_run(folder: Path, metrics: dict, config: dict | None = None) -> Path:
    import yaml

    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(metrics))
    if config is not None:
        (folder / "config_resolved.yaml").write_text(yaml.safe_dump(config))
    return folder


def test_groups_by_every_differing_setting_and_sets_other_runs_apart(tmp_path: Path) -> None:
    base = {"data": "demo", "model": "tiny", "strategy": "full"}
    for i, (steps, seed, mcc) in enumerate([(10, 1, 0.1), (10, 2, 0.2), (100, 1, 0.5), (100, 2, 0.7)]):
        config = {"seed": seed, "run_name": f"r{seed}", "paths": {"output_dir": f"/x/{i}"},
                  "trainer": {"max_steps": steps, "accelerator": "cpu"}, "task_name": "train"}
        _fake_run(tmp_path / "runs" / f"r{i}", {**base, "seed": seed, "test/mcc": mcc}, config)
    _fake_run(tmp_path / "eval", {**base, "task": "evaluate", "test/mcc": 0.99})
    resumed = tmp_path / "relaunch"
    (resumed / ".hydra").mkdir(parents=True)
    (resumed / "resumed_into.txt").write_text(str(tmp_path / "runs" / "r0"))
    report = build_report(tmp_path, tmp_path / "report", plots=False)
    assert len(report.runs) == 4 and report.problems == []
    assert sorted(p.run_dir.name for p in report.ignored) == ["eval", "relaunch"]
    summary = report.summary.set_index("settings")
    assert list(summary["n"]) == [2, 2]
    assert summary.loc["trainer.max_steps=100", "test/mcc mean"] == pytest.approx(0.6)
    assert summary.loc["trainer.max_steps=10", "test/mcc mean"] == pytest.approx(0.15)
    text = (tmp_path / "report" / "report.md").read_text()
    assert "grouped by data, model, strategy, trainer.max_steps" in text and "## Not compared" in text
    assert "an evaluate run, not a training run" in text


def _kept_figure(monkeypatch: pytest.MonkeyPatch) -> list:
    """Figures the report would close after saving, kept for inspection."""
    import matplotlib.pyplot as plt

    kept: list = []
    monkeypatch.setattr(plt, "close", lambda fig=None: kept.append(fig))
    return kept


def test_learning_curves_have_one_point_per_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd

    from dnalm.apps.report import plot_learning_curves

    run = tmp_path / "run"
    (run / "csv").mkdir(parents=True)
    # the final re-validation of the best checkpoint logs val/mcc again at the last step
    pd.DataFrame({"step": [10, 20, 20, 20], "train/loss": [0.7, 0.6, None, None],
                  "val/mcc": [0.1, 0.3, None, 0.3]}).to_csv(run / "csv" / "metrics.csv", index=False)
    runs = pd.DataFrame([{"run_dir": str(run), "data": "demo", "model": "tiny", "strategy": "full", "seed": 1}])
    kept = _kept_figure(monkeypatch)
    assert plot_learning_curves(runs, tmp_path / "curves.png", "test/mcc") is not None
    val_axis = kept[0].axes[1]
    steps = list(val_axis.lines[0].get_xdata())
    assert steps == [10, 20]  # not [10, 20, 20]
    assert val_axis.get_legend() is not None


def test_metric_plot_fits_the_values_and_shows_the_spread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd

    from dnalm.apps.report import plot_metric_bars

    summary = pd.DataFrame([{"data": "demo", "model": m, "strategy": "lora", "test/mcc mean": v, "test/mcc std": 0.01}
                            for m, v in (("a", 0.81), ("b", 0.84))])
    kept = _kept_figure(monkeypatch)
    assert plot_metric_bars(summary, tmp_path / "bars.png", "test/mcc") is not None
    axis = kept[0].axes[0]
    assert axis.get_ylim()[0] > 0.5  # the axis starts near the values, not at zero, so 0.03 apart is visible
    assert axis.containers  # error bars: the spread over seeds is drawn
