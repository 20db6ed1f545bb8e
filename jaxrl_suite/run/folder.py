"""The run folder on disk: its record (``config.json``), the per-update ``metrics.csv``, the
learning curve, and reading a run back (``load_run``). Layout:
``runs/<algo>-<env>-<timestamp>/`` with ``config.json``, ``metrics.csv``, ``progress.csv``,
``checkpoints/``, ``tensorboard/``, ``learning_curve.png``, ``eval.json``."""

from __future__ import annotations

import csv
import dataclasses
import datetime
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from jaxrl_suite.run.algorithms import AlgorithmSpec, algorithm_spec
from jaxrl_suite.run.checkpoints import tree_digest
from jaxrl_suite.run.options import RunOptions

__all__ = ["append_csv", "load_run", "metric_components", "metrics_rows", "new_run_dir",
           "plot_learning_curve", "record_differences", "run_record", "truncate_csv"]


def run_record(algo: str, config: Any, options: RunOptions, hparams: Any = None
                ) -> dict[str, Any]:
    """What defines a run's trajectory; a checkpoint is only resumed under the same record.

    Given ``hparams`` (a sweep or a population) are part of it, by a digest of their values, so
    a resume with another population is refused like one with another config."""
    as_dict = (dataclasses.asdict(config) if dataclasses.is_dataclass(config)
               else {"repr": repr(config)})
    record = {
        "algo": algo,
        "env": options.env,
        "seeds": options.seeds,
        "seed": options.seed,
        "checkpoint_every": options.checkpoint_every,
        "config": json.loads(json.dumps(as_dict, default=list)),
    }
    if hparams is not None:
        record["hparams"] = tree_digest(hparams)
    return record


def new_run_dir(algo: str, options: RunOptions) -> Path:
    if options.run_dir is not None:
        return Path(options.run_dir)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    env_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", options.env)
    base = Path(options.runs_root) / f"{algo}-{env_name}-{stamp}"
    path, counter = base, 1
    while path.exists():
        counter += 1
        path = base.with_name(f"{base.name}-{counter}")
    return path


def record_differences(saved: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    out = []
    for key in sorted(set(saved) | set(wanted)):
        if key == "config":
            continue
        if saved.get(key) != wanted.get(key):
            out.append(f"{key}: {saved.get(key)!r} in the run, {wanted.get(key)!r} now")
    saved_config, wanted_config = saved.get("config", {}), wanted.get("config", {})
    for key in sorted(set(saved_config) | set(wanted_config)):
        if saved_config.get(key) != wanted_config.get(key):
            out.append(f"{key}: {saved_config.get(key)!r} in the run, "
                       f"{wanted_config.get(key)!r} now")
    return out


def metric_components(metrics: dict[str, Any], leading: int) -> dict[str, np.ndarray]:
    """Each metric with axes beyond its first ``leading`` (a multi-objective ``episode_return``,
    one per objective) split into one entry per component, named ``name[i]`` (``name[i,j]``
    for more axes); the others as they are. Order: the metrics', then the components'."""
    out = {}
    for name, values in metrics.items():
        values = np.asarray(values)
        if values.ndim <= leading:
            out[name] = values
            continue
        for index in np.ndindex(values.shape[leading:]):
            out[f"{name}[{','.join(map(str, index))}]"] = values[(slice(None),) * leading + index]
    return out


def metrics_rows(metrics: dict[str, np.ndarray], first_update: int) -> list[dict[str, Any]]:
    """Rows ``update, seed, <metrics>`` from arrays ``(num_updates, num_seeds)``; a vector
    metric ``(num_updates, num_seeds, k)`` gives the columns ``name[0]`` ... ``name[k-1]``."""
    metrics = metric_components(metrics, 2)
    names = sorted(metrics)
    num_updates, num_seeds = np.shape(metrics[names[0]])[:2]
    rows = []
    for i in range(num_updates):
        for seed in range(num_seeds):
            row = {"update": first_update + i + 1, "seed": seed}
            row.update({name: np.asarray(metrics[name][i, seed]).item() for name in names})
            rows.append(row)
    return rows


def append_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    new_file = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="") as file:
        writer = csv.DictWriter(file, list(rows[0]))
        if new_file:
            writer.writeheader()
        writer.writerows(rows)


def truncate_csv(path: Path, last_update: int) -> None:
    """Drop rows past ``last_update`` (written after the checkpoint a resume starts from)."""
    if not path.exists():
        return
    with path.open(newline="") as file:
        rows = list(csv.DictReader(file))
    kept = [row for row in rows if int(row["update"]) <= last_update]
    if len(kept) != len(rows):
        # Written beside it and renamed over it: a kill mid-write leaves the old file whole.
        partial = path.with_name(path.name + ".partial")
        partial.unlink(missing_ok=True)
        if kept:
            append_csv(partial, kept)
        else:
            partial.write_text("")
        os.replace(partial, path)


def load_run(run_dir: str | Path) -> tuple[AlgorithmSpec, Any, RunOptions, dict[str, Any]]:
    """The algorithm's spec, config, options and record of a run folder (its ``config.json``)."""
    from jaxrl_suite.run.algorithms import load_algorithm

    run_dir = Path(run_dir)
    path = run_dir / "config.json"
    if not path.exists():
        raise ValueError(f"{run_dir} is not a run folder: it has no config.json.")
    saved = json.loads(path.read_text())
    record = saved["run"]
    algorithm = algorithm_spec(load_algorithm(record["algo"]))
    fields = {f.name: f for f in dataclasses.fields(algorithm.config)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in record["config"].items()
              if k in fields}
    config = algorithm.config(**values)
    options = RunOptions(**{**saved.get("options", {}), "resume": str(run_dir)})
    return algorithm, config, options, record


def plot_learning_curve(run_dir: str | Path, metric: str = "episode_return") -> Path | None:
    """``learning_curve.png``: mean ± std over seeds of ``metric`` against env steps, from the
    run's ``metrics.csv`` (updates where no seed finished an episode are skipped)."""
    # A standalone Figure (no pyplot): drawing here must not switch the caller's backend, e.g.
    # a notebook's inline plots.
    from matplotlib.figure import Figure

    run_dir = Path(run_dir)
    path = run_dir / "metrics.csv"
    if not path.exists():
        return None
    with path.open(newline="") as file:
        rows = list(csv.DictReader(file))
    if not rows:
        return None
    # A multi-objective metric is in the columns metric[0], metric[1], ...: one curve each.
    columns = ([metric] if metric in rows[0] else
               [name for name in rows[0] if re.fullmatch(re.escape(metric) + r"\[\d+\]", name)])
    if not columns:
        return None
    # Offline runs take no env step: their x axis is gradient steps.
    x_name = "gradient_steps" if "gradient_steps" in rows[0] else "env_steps"
    figure = Figure(figsize=(6, 4))
    axis = figure.subplots()
    for column in columns:
        by_update: dict[int, list[float]] = {}
        steps: dict[int, float] = {}
        for row in rows:
            update = int(row["update"])
            by_update.setdefault(update, []).append(float(row[column]))
            steps[update] = float(row[x_name])
        updates = sorted(by_update)
        values = [np.asarray(by_update[u]) for u in updates]
        mean = np.array([np.nanmean(v) if np.isfinite(v).any() else np.nan for v in values])
        std = np.array([np.nanstd(v) if np.isfinite(v).any() else np.nan for v in values])
        x = np.array([steps[u] for u in updates])
        keep = np.isfinite(mean)
        label = f"mean over {len(values[0])} seed(s)"
        if column != metric:
            label = f"objective {column[len(metric) + 1:-1]}: {label}"
        axis.plot(x[keep], mean[keep], label=label)
        axis.fill_between(x[keep], (mean - std)[keep], (mean + std)[keep], alpha=0.25,
                          label="± std" if column == metric else None)
    config = json.loads((run_dir / "config.json").read_text())["run"]
    axis.set_title(f"{config['algo']} on {config['env']}")
    axis.set_xlabel(x_name.replace("_", " "))
    axis.set_ylabel(metric.replace("_", " "))
    axis.legend(loc="lower right")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    out = run_dir / "learning_curve.png"
    figure.savefig(out, dpi=100)
    return out
