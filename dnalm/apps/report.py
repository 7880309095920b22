"""``python -m dnalm.report <outputs or multirun dir>``: compare runs (tables, CSV, plots), list failed runs.

Every ``metrics.json`` under the folder is one run. Runs are grouped by data × model × strategy; each group gets
mean ± sample standard deviation over its runs (seeds), the number of runs and its best run. A run dir without a
``metrics.json`` (it has ``.hydra/`` or ``config_resolved.yaml``) is listed as failed or unfinished with its reason
(``error.txt`` written by a failed multirun job, else the last error line of its log), never dropped silently.

Writes into ``<dir>/report`` (or ``--out``): ``report.md``, ``summary.csv`` (one row per group), ``runs.csv`` (one
row per run), ``failed.csv`` and PNG plots: metric bars with error bars per model, learning curves from each run's
``csv/metrics.csv``, parameters vs the metric, and ROC / PR curves of runs that saved a ``predictions.csv``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger("dnalm.report")

GROUP_KEYS = ("data", "model", "strategy")
DEFAULT_METRICS = ("test/mcc", "test/f1", "test/accuracy", "test/auroc", "val/mcc", "train/samples_per_second",
                   "peak_memory_mb", "trainable_params", "total_params")
MISSING = "-"


@dataclass
class Problem:
    """A run dir that has no ``metrics.json``, with the reason found for it."""

    run_dir: Path
    status: str  # failed | unfinished
    reason: str


@dataclass
class Report:
    """What :func:`build_report` found and wrote."""

    runs: pd.DataFrame
    summary: pd.DataFrame
    problems: list[Problem]
    files: list[Path] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------------------
# Collect
# ---------------------------------------------------------------------------------------------------------------

def _is_run_dir(path: Path) -> bool:
    return (path / ".hydra").is_dir() or (path / "config_resolved.yaml").is_file() or (path / "error.txt").is_file()


def _last_error_line(log_file: Path) -> str | None:
    """The last line of a log that names an error, if any."""
    try:
        lines = log_file.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if "Error" in line or "error:" in line or "Exception" in line:
            return line.strip()
    return None


def failure_reason(run_dir: Path) -> Problem:
    """Why ``run_dir`` has no metrics: its ``error.txt``, an error in its logs, or unfinished."""
    error_file = run_dir / "error.txt"
    if error_file.is_file():
        lines = [line.strip() for line in error_file.read_text(errors="replace").splitlines() if line.strip()]
        return Problem(run_dir, "failed", lines[0] if lines else "error.txt is empty")
    for log_file in sorted(run_dir.glob("*.log")):
        line = _last_error_line(log_file)
        if line:
            return Problem(run_dir, "failed", line)
    checkpoints = sorted((run_dir / "checkpoints").glob("*.ckpt")) if (run_dir / "checkpoints").is_dir() else []
    detail = f"{len(checkpoints)} checkpoint(s) written" if checkpoints else "no checkpoint written"
    return Problem(run_dir, "unfinished", f"no metrics.json and no error recorded ({detail}): still running or killed")


def collect(root: Path) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Every run under ``root``: the metrics of finished runs and the problems of the others."""
    root = Path(root)
    runs: list[dict[str, Any]] = []
    problems: list[Problem] = []
    candidates = {p.parent for p in root.rglob("metrics.json") if p.parent.name != "csv"}
    for marker in ("config_resolved.yaml", "error.txt", ".hydra"):
        candidates |= {p.parent for p in root.rglob(marker)}
    for run_dir in sorted(candidates):
        metrics_file = run_dir / "metrics.json"
        if metrics_file.is_file():
            try:
                metrics = json.loads(metrics_file.read_text())
            except (OSError, json.JSONDecodeError) as err:
                problems.append(Problem(run_dir, "failed", f"unreadable metrics.json: {err}"))
                continue
            if not isinstance(metrics, dict):
                problems.append(Problem(run_dir, "failed", "metrics.json is not a JSON object"))
                continue
            metrics["run_dir"] = str(run_dir)
            runs.append(metrics)
        elif _is_run_dir(run_dir):
            problems.append(failure_reason(run_dir))
    return runs, problems


# ---------------------------------------------------------------------------------------------------------------
# Aggregate
# ---------------------------------------------------------------------------------------------------------------

def runs_frame(runs: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per run; the group keys are always present (``-`` where a run lacks one)."""
    frame = pd.DataFrame(runs)
    for key in (*GROUP_KEYS, "seed", "run_dir"):
        if key not in frame.columns:
            frame[key] = MISSING
    for key in GROUP_KEYS:
        frame[key] = frame[key].fillna(MISSING).astype(str)
    return frame.sort_values([*GROUP_KEYS, "run_dir"]).reset_index(drop=True)


def summarise(frame: pd.DataFrame, metrics: Sequence[str], primary: str, higher_is_better: bool = True) -> pd.DataFrame:
    """Per data × model × strategy: n, mean and sample std of each metric, and the best run by ``primary``."""
    metrics = [m for m in metrics if m in frame.columns]
    rows = []
    for keys, group in frame.groupby(list(GROUP_KEYS), sort=True):
        row: dict[str, Any] = dict(zip(GROUP_KEYS, keys))
        row["n"] = len(group)
        for metric in metrics:
            values = pd.to_numeric(group[metric], errors="coerce").dropna()
            row[f"{metric} mean"] = float(values.mean()) if len(values) else math.nan
            row[f"{metric} std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
            row[f"{metric} n"] = len(values)
        scores = pd.to_numeric(group[primary], errors="coerce") if primary in group else pd.Series(dtype=float)
        if scores.notna().any():
            best = group.loc[scores.idxmax() if higher_is_better else scores.idxmin()]
            row["best run"] = Path(str(best["run_dir"])).name
            row["best seed"] = best.get("seed", MISSING)
            row[f"best {primary}"] = float(best[primary])
            row["best run_dir"] = best["run_dir"]
        else:
            row["best run"], row["best seed"], row[f"best {primary}"], row["best run_dir"] = MISSING, MISSING, math.nan, ""
        rows.append(row)
    summary = pd.DataFrame(rows)
    if not summary.empty and f"{primary} mean" in summary:
        summary = summary.sort_values(["data", f"{primary} mean"], ascending=[True, not higher_is_better],
                                      na_position="last").reset_index(drop=True)
    return summary


# ---------------------------------------------------------------------------------------------------------------
# Plots (matplotlib, Agg backend: no display needed)
# ---------------------------------------------------------------------------------------------------------------

def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_metric_bars(summary: pd.DataFrame, path: Path, metric: str) -> Path | None:
    """Bars of the mean metric per model (one bar per strategy), error bars = std over seeds; one panel per data."""
    if f"{metric} mean" not in summary or summary[f"{metric} mean"].isna().all():
        return None
    plt = _pyplot()
    datasets = sorted(summary["data"].unique())
    fig, axes = plt.subplots(1, len(datasets), figsize=(max(5.0, 4.5 * len(datasets)), 4.2), squeeze=False)
    for ax, data in zip(axes[0], datasets):
        block = summary[summary["data"] == data]
        models, strategies = sorted(block["model"].unique()), sorted(block["strategy"].unique())
        width = 0.8 / len(strategies)
        for i, strategy in enumerate(strategies):
            part = block[block["strategy"] == strategy].set_index("model").reindex(models)
            x = np.arange(len(models)) + (i - (len(strategies) - 1) / 2) * width
            ax.bar(x, part[f"{metric} mean"], width, yerr=part[f"{metric} std"].fillna(0.0), capsize=3, label=strategy)
        ax.set_xticks(np.arange(len(models)), models, rotation=30, ha="right")
        ax.set_title(str(data))
        ax.set_ylabel(metric)
        ax.legend(title="strategy", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def read_curves(run_dir: Path) -> pd.DataFrame | None:
    """A run's ``csv/metrics.csv`` (Lightning CSVLogger), or None when it has none."""
    csv_file = Path(run_dir) / "csv" / "metrics.csv"
    if not csv_file.is_file():
        return None
    try:
        frame = pd.read_csv(csv_file)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    return frame if "step" in frame.columns else None


def plot_learning_curves(runs: pd.DataFrame, path: Path, metric: str) -> Path | None:
    """Training loss and the validation metric against the step, one line per run, one row per data."""
    val_metric = "val/" + metric.split("/", 1)[-1]
    curves = [(row, read_curves(Path(str(row["run_dir"])))) for _, row in runs.iterrows()]
    curves = [(row, c) for row, c in curves if c is not None]
    if not curves:
        return None
    plt = _pyplot()
    datasets = sorted({str(row["data"]) for row, _ in curves})
    fig, axes = plt.subplots(len(datasets), 2, figsize=(11, 3.6 * len(datasets)), squeeze=False)
    for (ax_loss, ax_val), data in zip(axes, datasets):
        for row, frame in curves:
            if str(row["data"]) != data:
                continue
            label = f"{row['model']}/{row['strategy']}/s{row.get('seed', MISSING)}"
            for ax, column in ((ax_loss, "train/loss"), (ax_val, val_metric)):
                if column in frame:
                    points = frame[["step", column]].dropna()
                    ax.plot(points["step"], points[column], marker="." if len(points) < 30 else None, label=label)
        ax_loss.set(title=f"{data}: training loss", xlabel="step", ylabel="train/loss")
        ax_val.set(title=f"{data}: {val_metric}", xlabel="step", ylabel=val_metric)
        ax_val.legend(fontsize="x-small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_params(runs: pd.DataFrame, path: Path, metric: str) -> Path | None:
    """The metric of each run against its total and trainable parameter counts (log scale)."""
    needed = {"total_params", "trainable_params", metric}
    if not needed <= set(runs.columns):
        return None
    frame = runs.copy()
    for column in needed:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    frame = frame.dropna(subset=list(needed))
    frame = frame[(frame["total_params"] > 0) & (frame["trainable_params"] > 0)]
    if frame.empty:
        return None
    plt = _pyplot()
    markers = dict(zip(sorted(frame["strategy"].unique()), "osD^v<>P*X"))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, column in zip(axes, ("total_params", "trainable_params")):
        for (model, strategy), part in frame.groupby(["model", "strategy"]):
            ax.scatter(part[column], part[metric], marker=markers.get(strategy, "o"), label=f"{model}/{strategy}")
        ax.set(xscale="log", xlabel=column, ylabel=metric, title=f"{metric} vs {column}")
    axes[1].legend(fontsize="x-small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def binary_scores(run_dir: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """Labels (1 = positive) and positive-class probabilities from a run's ``predictions.csv``, if binary."""
    pred_file = Path(run_dir) / "predictions.csv"
    if not pred_file.is_file():
        return None
    frame = pd.read_csv(pred_file, dtype={"label": str})
    prob_columns = [c for c in frame.columns if c.startswith("prob_")]
    if "label" not in frame or len(prob_columns) != 2:
        return None
    names = [c.removeprefix("prob_") for c in prob_columns]
    label_map = Path(run_dir) / "label_map.json"
    if label_map.is_file():
        names = [str(n) for n in json.loads(label_map.read_text()).get("label_names", names)]
    positive = names[-1]
    if f"prob_{positive}" not in frame or frame["label"].isna().any():
        return None
    return (frame["label"].astype(str) == positive).to_numpy(int), frame[f"prob_{positive}"].to_numpy(float)


def roc_pr_points(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, ...]:
    """False/true positive rates and recall/precision over every score threshold (ties kept together)."""
    order = np.argsort(-scores, kind="stable")
    labels, scores = labels[order], scores[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    tp = np.cumsum(labels)[last_of_tie]
    fp = (last_of_tie + 1) - tp
    positives, negatives = max(int(labels.sum()), 1), max(int(len(labels) - labels.sum()), 1)
    fpr, tpr = np.r_[0.0, fp / negatives], np.r_[0.0, tp / positives]
    recall, precision = np.r_[0.0, tp / positives], np.r_[1.0, tp / (tp + fp)]
    return fpr, tpr, recall, precision


def plot_roc_pr(runs: pd.DataFrame, path: Path) -> Path | None:
    """ROC and precision-recall curves of the runs with a binary ``predictions.csv``."""
    found = [(row, binary_scores(Path(str(row["run_dir"])))) for _, row in runs.iterrows()]
    found = [(row, s) for row, s in found if s is not None and 0 < s[0].sum() < len(s[0])]
    if not found:
        return None
    plt = _pyplot()
    fig, (ax_roc, ax_pr) = plt.subplots(1, 2, figsize=(11, 4.5))
    for row, (labels, scores) in found:
        fpr, tpr, recall, precision = roc_pr_points(labels, scores)
        label = f"{row['data']}/{row['model']}/{row['strategy']}/s{row.get('seed', MISSING)}"
        ax_roc.plot(fpr, tpr, label=f"{label} (AUC {np.trapezoid(tpr, fpr):.3f})")
        ax_pr.step(recall, precision, where="post", label=label)
    ax_roc.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax_roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax_pr.set(xlabel="recall", ylabel="precision", title="precision-recall")
    ax_roc.legend(fontsize="x-small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_plots(runs: pd.DataFrame, summary: pd.DataFrame, folder: Path, metric: str) -> list[Path]:
    """Every plot the runs allow; a plot without data is skipped."""
    folder.mkdir(parents=True, exist_ok=True)
    written = [plot_metric_bars(summary, folder / "metric_bars.png", metric),
               plot_learning_curves(runs, folder / "learning_curves.png", metric),
               plot_params(runs, folder / "params_vs_metric.png", metric),
               plot_roc_pr(runs, folder / "roc_pr.png")]
    return [p for p in written if p is not None]


# ---------------------------------------------------------------------------------------------------------------
# Write
# ---------------------------------------------------------------------------------------------------------------

def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4f}"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    return str(value)


def _mean_std(row: pd.Series, metric: str) -> str:
    mean, std = row.get(f"{metric} mean", math.nan), row.get(f"{metric} std", math.nan)
    if isinstance(mean, float) and math.isnan(mean):
        return MISSING
    spec = ",.0f" if abs(mean) >= 1000 else ".4f"
    return f"{mean:{spec}}" if math.isnan(std) else f"{mean:{spec}} ± {std:{spec}}"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(summary: pd.DataFrame, problems: list[Problem], metrics: Sequence[str], primary: str, root: Path,
             n_runs: int, plots: list[Path]) -> str:
    """The report as Markdown: one table per data set, then failed and unfinished runs, then the plots."""
    shown = [m for m in metrics if f"{m} mean" in summary.columns]
    parts = [f"# dnalm report: {root}", "",
             f"{n_runs} finished run(s) in {len(summary)} group(s); {len(problems)} failed or unfinished. "
             f"Cells are mean ± sample std over the group's runs (seeds); best run by {primary}.", ""]
    for data, block in summary.groupby("data", sort=True):
        parts += [f"## {data}", ""]
        header = ["model", "strategy", "n", *shown, "best run", f"best {primary}"]
        rows = [[str(r["model"]), str(r["strategy"]), str(r["n"]), *(_mean_std(r, m) for m in shown),
                 str(r["best run"]), _fmt(r[f"best {primary}"])] for _, r in block.iterrows()]
        parts += [_md_table(header, rows), ""]
    parts += ["## Failed or unfinished runs", ""]
    if problems:
        parts += [_md_table(["run dir", "status", "reason"],
                            [[str(p.run_dir), p.status, p.reason] for p in problems]), ""]
    else:
        parts += ["None.", ""]
    if plots:
        parts += ["## Plots", ""] + [f"![{p.stem}](plots/{p.name})" for p in plots] + [""]
    return "\n".join(parts)


def build_report(root: Path, out: Path | None = None, metrics: Sequence[str] = DEFAULT_METRICS,
                 primary: str = "test/mcc", plots: bool = True) -> Report:
    """Collect the runs under ``root``, write tables (and plots) into ``out`` and return what was found."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    out = Path(out) if out is not None else root / "report"
    runs, problems = collect(root)
    frame = runs_frame(runs) if runs else pd.DataFrame(columns=[*GROUP_KEYS, "seed", "run_dir"])
    summary = summarise(frame, metrics, primary) if runs else pd.DataFrame(columns=[*GROUP_KEYS, "n"])
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "runs.csv", out / "summary.csv", out / "failed.csv"]
    frame.to_csv(files[0], index=False)
    summary.to_csv(files[1], index=False)
    pd.DataFrame([{"run_dir": str(p.run_dir), "status": p.status, "reason": p.reason} for p in problems],
                 columns=["run_dir", "status", "reason"]).to_csv(files[2], index=False)
    images: list[Path] = []
    if plots and runs:
        images = write_plots(frame, summary, out / "plots", primary)
    md = out / "report.md"
    md.write_text(markdown(summary, problems, metrics, primary, root, len(frame), images))
    return Report(frame, summary, problems, [md, *files, *images])


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; exit status 1 when nothing was found."""
    parser = argparse.ArgumentParser(prog="python -m dnalm.report", description=__doc__.split("\n")[0])
    parser.add_argument("root", type=Path, help="an outputs/ folder, a multirun folder or a single run dir")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: <root>/report)")
    parser.add_argument("--metric", default="test/mcc", help="metric that picks the best run and is plotted")
    parser.add_argument("--metrics", nargs="+", default=list(DEFAULT_METRICS), help="columns of the table")
    parser.add_argument("--no-plots", action="store_true", help="tables only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    metrics = list(dict.fromkeys([args.metric, *args.metrics]))
    try:
        report = build_report(args.root, args.out, metrics, args.metric, plots=not args.no_plots)
    except FileNotFoundError as err:
        print(f"dnalm: error: {err}", file=sys.stderr)
        return 2
    print(report.files[0].read_text())
    for problem in report.problems:
        print(f"dnalm.report: {problem.status}: {problem.run_dir}: {problem.reason}", file=sys.stderr)
    print(f"written: {', '.join(str(f) for f in report.files)}")
    return 0 if len(report.runs) or report.problems else 1


if __name__ == "__main__":
    sys.exit(main())
