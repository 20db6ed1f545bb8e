"""UED on the 13x13 maze: held-out solve rates of DR, PLR, PLR-perp, ACCEL and PAIRED, beside
the DCD papers' published numbers.

    python benchmarks/ued_maze.py --total-steps 2e6 --seeds 1
    python benchmarks/ued_maze.py --methods robust_plr accel --total-steps 1e7 --seeds 4
    python benchmarks/ued_maze.py --set num_envs=64 --set learning_rate=3e-4   # Config overrides
    python benchmarks/ued_maze.py --smoke --out /tmp/ued_smoke                  # pipeline check

What it measures. Each method of ``algos/ued.py`` (``dr``, ``plr``, ``robust_plr``, ``accel``,
``paired``) is trained with ``ued.Config`` defaults (JaxUED's maze settings: 13x13, 25 walls,
32 envs x 256 steps per student round) for ``--total-steps`` student env steps per seed, through
the training harness (``run_training``, seeds vmapped), into ``OUT/<method>/``. Every
``eval_interval`` student rounds the run evaluates the current student on the named 13x13
held-out mazes (``heldout_episodes`` sampled-action episodes per level); the solve rate of a level
is the fraction of those episodes that reach the goal.

Written to ``OUT``:

* ``results.md``: per method, the final held-out mean solve rate (the last logged update, mean
  and std over seeds), per-level solve rates, wall time and student env steps/s; beside them the
  DCD papers' numbers read from ``../shared/reference/dcd_results/`` (10 seeds at 250M steps for
  the 25-wall setting; ACCEL's file is the 60-block setting at 20k updates, 5 seeds).
* ``results.json``: the same numbers; ``heldout_solve_rate.png``: mean solve rate against
  student env steps, one line per method (``ued.plot_solve_rate``).

Throughput: ``steps/s (wall)`` is seeds x student env steps / wall time of the whole run, so it
includes building, compiling and the run's pictures; ``steps/s (training)`` is timed between
the first and the last logged update (live-progress reports), so it excludes compilation.
PAIRED's student env steps are the protagonist's: its antagonist takes as many again and its
adversary adds ``adversary_num_walls + 2`` editor steps per level.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from jaxrl_suite.run.sharding import use_all_cpu_cores

# Before JAX starts (as `jaxrl train` does): one CPU device per core, so seeds spread over cores.
use_all_cpu_cores()

import jax  # noqa: E402
import numpy as np  # noqa: E402

import jaxrl_suite  # noqa: E402
from jaxrl_suite.algos import ued  # noqa: E402
from jaxrl_suite.run.harness import RunOptions, run_training  # noqa: E402

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "shared" / "reference" / "dcd_results"
# The DCD papers' result files: the 25-wall mazes at 250M steps, and ACCEL's only maze file
# (60 blocks, 20k updates), with the robust PLR run of that same setting for ACCEL's comparison.
DCD_FILES = {
    "dr": "mg_25_blocks-dr-250M_steps.csv",
    "plr": "mg_25_blocks-plr-250M_steps.csv",
    "robust_plr": "mg_25_blocks-robust_plr-250M_steps.csv",
    "paired": "mg_25_blocks-paired-250M_steps.csv",
    "accel": "mg_60_blocks-accel_20k_updates.csv",
}
DCD_ACCEL_BASELINE_FILE = "mg_60_blocks_uni-robust_plr_20k_updates.csv"
# Our named levels -> the DCD papers' env ids (LabyrinthFlipped has no DCD counterpart).
DCD_LEVEL_NAMES = {
    "SixteenRooms": "MultiGrid-SixteenRooms-v0",
    "SixteenRooms2": "MultiGrid-SixteenRoomsFewerDoors-v0",
    "Labyrinth": "MultiGrid-Labyrinth-v0",
    "Labyrinth2": "MultiGrid-Labyrinth2-v0",
    "StandardMaze": "MultiGrid-Maze-v0",
    "StandardMaze2": "MultiGrid-Maze2-v0",
    "StandardMaze3": "MultiGrid-Maze3-v0",
    "SmallCorridor": "MultiGrid-SmallCorridor-v0",
    "LargeCorridor": "MultiGrid-LargeCorridor-v0",
}
METHOD_LABELS = {"dr": "DR", "plr": "PLR", "robust_plr": "PLR-perp (robust PLR)",
                 "accel": "ACCEL", "paired": "PAIRED"}
# A run with one logged update per student round, tiny networks and buffers: seconds to run,
# so the whole pipeline (five compiles, tables, plot) can be checked quickly.
SMOKE_OVERRIDES = dict(num_envs=8, num_steps=32, eval_interval=1, buffer_capacity=64,
                       gru_hidden_size=32, heldout_episodes=2, total_steps=2 * 8 * 32)
# Config fields set by their own flags; --set must not contradict them.
FLAG_FIELDS = {"method": "--methods", "total_steps": "--total-steps",
               "eval_interval": "--eval-interval"}


# --- command line -------------------------------------------------------------------------------
def integer(text: str) -> int:
    """An integer that may be written like ``2e6``."""
    number = float(text)
    if not number.is_integer():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(number)


def parse_override(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` -> ``(name, value)`` typed like ``ued.Config``'s default for ``name``
    (tuples: comma-separated, e.g. ``hidden_sizes=64,64``)."""
    name, separator, raw = text.partition("=")
    name = name.strip().replace("-", "_")
    defaults = ued.Config()
    if not separator or not hasattr(defaults, name):
        fields = ", ".join(field.name for field in dataclasses.fields(ued.Config))
        raise argparse.ArgumentTypeError(f"--set takes NAME=VALUE with NAME a ued.Config field "
                                         f"({fields}); got {text!r}")
    if name in FLAG_FIELDS:
        raise argparse.ArgumentTypeError(f"set {name} with {FLAG_FIELDS[name]}, not --set")
    default = getattr(defaults, name)
    try:
        if isinstance(default, bool):
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError(raw)
            return name, raw.lower() in ("true", "1")
        if isinstance(default, int):
            return name, integer(raw)
        if isinstance(default, float):
            return name, float(raw)
        if isinstance(default, tuple):
            items = [item.strip() for item in raw.split(",") if item.strip()]
            return name, tuple(int(item) if item.lstrip("-").isdigit() else item
                               for item in items)
        return name, raw
    except (ValueError, argparse.ArgumentTypeError) as error:
        raise argparse.ArgumentTypeError(
            f"--set {name}: {raw!r} is not a {type(default).__name__}") from error


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0].replace("\n", " "),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--methods", nargs="+", default=list(ued.METHODS),
                        help=f"methods to run, space- or comma-separated: {' '.join(ued.METHODS)}")
    parser.add_argument("--total-steps", type=integer, default=1_500_000,
                        help="student env steps per run and seed (rounded down to whole logged "
                             "updates of eval_interval x num_envs x num_steps)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per method (vmapped)")
    parser.add_argument("--seed", type=int, default=0, help="base seed of every method's run")
    parser.add_argument("--eval-interval", type=int, default=ued.Config.eval_interval,
                        help="student rounds per logged update (one held-out evaluation each)")
    parser.add_argument("--env", default="maze", help="registered level env id")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ued_maze"),
                        help="output folder; each method's run folder is OUT/<method>")
    parser.add_argument("--set", dest="overrides", type=parse_override, action="append",
                        default=[], metavar="NAME=VALUE",
                        help="override a ued.Config field (repeatable)")
    parser.add_argument("--reference-dir", type=Path, default=REFERENCE_DIR,
                        help="the DCD papers' per-seed result CSVs")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing OUT/<method> run folders")
    parser.add_argument("--jobs", type=int, default=1,
                        help="run the methods in this many processes at once (XLA runs these "
                             "small programs on about one core each, so 2 uses a 2-core machine)")
    parser.add_argument("--no-report", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--report-only", action="store_true",
                        help="no training: the table and plot from the run folders in OUT")
    parser.add_argument("--smoke", action="store_true",
                        help=f"tiny run to check the pipeline: {SMOKE_OVERRIDES}")
    args = parser.parse_args(argv)
    methods = [method for entry in args.methods for method in entry.split(",") if method]
    unknown = [method for method in methods if method not in ued.METHODS]
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; choose from "
                     f"{', '.join(ued.METHODS)}")
    args.methods = list(dict.fromkeys(methods))  # keep order, drop repeats
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    return args


def method_configs(args: argparse.Namespace) -> dict[str, ued.Config]:
    """One ``ued.Config`` per method: the flags, then ``--smoke``'s settings, then ``--set``."""
    overrides: dict[str, Any] = {"total_steps": args.total_steps,
                                 "eval_interval": args.eval_interval}
    if args.smoke:
        overrides.update(SMOKE_OVERRIDES)
    overrides.update(dict(args.overrides))
    configs = {method: ued.Config(method=method, **overrides) for method in args.methods}
    for config in configs.values():  # every config fails here, before the first compile
        ued.validate(config)
    return configs


# --- running one method -------------------------------------------------------------------------
class ReportClock:
    """A metric sink that only records when each live-progress report arrives, so training
    throughput can be timed from the first report (compilation done) to the last."""

    def __init__(self) -> None:
        self.reports: list[tuple[float, int, int]] = []  # (perf_counter, update, env_steps)

    def write(self, update: int, env_steps: int, summary: dict) -> None:
        self.reports.append((time.perf_counter(), int(update), int(env_steps)))

    def close(self) -> None:
        pass


def run_method(config: ued.Config, args: argparse.Namespace) -> dict[str, Any]:
    """Train one method; its run folder, wall time and throughput."""
    run_dir = args.out / config.method
    options = RunOptions(env=args.env, seeds=args.seeds, seed=args.seed, run_dir=str(run_dir),
                         eval_episodes=0, tensorboard=False, progress_every=1)
    clock = ReportClock()
    start = time.perf_counter()
    result, run_dir = run_training(ued, config, options, extra_sinks=[clock],
                                   progress_bar=False)
    wall_seconds = time.perf_counter() - start
    env_steps = int(np.asarray(result.metrics["env_steps"])[-1, 0])
    timing = {
        "run_dir": str(run_dir),
        "logged_updates": int(np.asarray(result.metrics["env_steps"]).shape[0]),
        "env_steps_per_seed": env_steps,
        "wall_seconds": wall_seconds,
        "steps_per_second_wall": args.seeds * env_steps / wall_seconds,
        "steps_per_second_training": None,
        "seconds_to_first_update": None,
    }
    if clock.reports:
        first_time, _, first_steps = clock.reports[0]
        # Build, compile and one logged update: the time until the first report arrives.
        timing["seconds_to_first_update"] = first_time - start
        last_time, _, last_steps = clock.reports[-1]
        if last_steps > first_steps and last_time > first_time:
            timing["steps_per_second_training"] = (
                args.seeds * (last_steps - first_steps) / (last_time - first_time))
    (Path(run_dir) / "timing.json").write_text(json.dumps(timing, indent=2))
    return timing


# PAIRED trains two students and an adversary: about 2.5 times a PLR run's time per step.
RELATIVE_COST = {"paired": 2.5}


def run_in_processes(args: argparse.Namespace, argv: list[str]) -> None:
    """Split the methods over ``args.jobs`` child processes (longest first, each to the least
    loaded process), each running this script on its share with ``--jobs 1``, and wait."""
    loads: list[tuple[float, list[str]]] = [(0.0, []) for _ in range(args.jobs)]
    for method in sorted(args.methods, key=lambda m: -RELATIVE_COST.get(m, 1.0)):
        index = min(range(len(loads)), key=lambda i: loads[i][0])
        load, group = loads[index]
        loads[index] = (load + RELATIVE_COST.get(method, 1.0), group + [method])
    passthrough = []
    skip = False
    for arg in argv:  # every flag but --methods/--jobs, which each child gets its own
        if skip and not arg.startswith("--"):
            continue
        skip = arg.split("=")[0] in ("--methods", "--jobs")
        if not skip:
            passthrough.append(arg)
    children = [
        subprocess.Popen([sys.executable, __file__, *passthrough, "--jobs", "1", "--no-report",
                          "--methods", *group])
        for _, group in loads if group
    ]
    codes = [child.wait() for child in children]
    if any(codes):
        raise SystemExit(f"error: a training process failed (exit codes {codes}).")


def final_solve_rates(run_dir: Path) -> dict[str, Any]:
    """Held-out solve rates at the last logged update of a run folder's ``metrics.csv``: the
    mean over levels and each level's, per seed, with their means and stds over seeds."""
    with (Path(run_dir) / "metrics.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    last_update = max(int(row["update"]) for row in rows)
    last = sorted((row for row in rows if int(row["update"]) == last_update),
                  key=lambda row: int(row["seed"]))
    prefix = "heldout/solve_rate/"
    levels = [name[len(prefix):] for name in last[0] if name.startswith(prefix)]
    mean_per_seed = np.array([float(row["heldout/solve_rate"]) for row in last])
    config = json.loads((Path(run_dir) / "config.json").read_text())["run"]["config"]
    # Rounds with a gradient step: robust PLR and ACCEL learn only on replay rounds, so at equal
    # env steps they have taken fewer updates (ACCEL's paper budgets by student updates).
    learns_on_replay_only = config["method"] in ("robust_plr", "accel")
    learning_rounds = [
        sum(config["eval_interval"] * (float(row["replay_fraction"]) if learns_on_replay_only
                                       else 1.0)
            for row in rows if int(row["seed"]) == seed)
        for seed in sorted({int(row["seed"]) for row in rows})
    ]
    by_update: dict[int, list[float]] = {}
    for row in rows:
        by_update.setdefault(int(row["update"]), []).append(float(row["heldout/solve_rate"]))
    per_level = {level: np.array([float(row[prefix + level]) for row in last])
                 for level in levels}
    return {
        "update": last_update,
        "env_steps": int(float(last[0]["env_steps"])),
        "mean": float(mean_per_seed.mean()),
        "std": float(mean_per_seed.std()),
        "per_seed": mean_per_seed.tolist(),
        "best_over_run": max(float(np.mean(values)) for values in by_update.values()),
        "learning_rounds": float(np.mean(learning_rounds)),
        "per_level": {level: float(values.mean()) for level, values in per_level.items()},
        "per_level_per_seed": {level: values.tolist() for level, values in per_level.items()},
    }


# --- the DCD papers' numbers --------------------------------------------------------------------
def read_dcd_solve_rates(path: Path) -> dict[str, np.ndarray]:
    """``{DCD level id: solve rate per seed}`` from a DCD results CSV (rows ``metric,seed0,...``
    with metrics ``solved_rate:<level>`` and ``test_returns:<level>``)."""
    with path.open(newline="") as file:
        rows = list(csv.reader(file))
    return {row[0].split(":", 1)[1]: np.array([float(value) for value in row[1:]])
            for row in rows[1:] if row and row[0].startswith("solved_rate:")}


def seed_mean_and_std(per_level: dict[str, np.ndarray], levels: list[str]) -> tuple[float, float]:
    """Mean over ``levels`` for each seed, then mean and std of that over seeds."""
    if not levels:
        return math.nan, math.nan
    per_seed = np.mean([per_level[level] for level in levels], axis=0)
    return float(per_seed.mean()), float(per_seed.std())


def dcd_summary(path: Path, our_levels: list[str]) -> dict[str, Any] | None:
    """A DCD file's mean solve rate over all its levels and over the levels we also evaluate
    (``our_levels`` in our names), each as mean ± std over its seeds, and per level."""
    if not path.exists():
        return None
    solve_rates = read_dcd_solve_rates(path)
    shared = [level for level in our_levels if DCD_LEVEL_NAMES.get(level) in solve_rates]
    mean, std = seed_mean_and_std(solve_rates, list(solve_rates))
    shared_mean, shared_std = seed_mean_and_std(
        solve_rates, [DCD_LEVEL_NAMES[level] for level in shared])
    return {
        "file": path.name,
        "num_seeds": len(next(iter(solve_rates.values()))),
        "levels": list(solve_rates),
        "mean": mean, "std": std,
        "shared_levels": shared,
        "shared_mean": shared_mean, "shared_std": shared_std,
        "per_level": {level: float(solve_rates[DCD_LEVEL_NAMES[level]].mean())
                      for level in shared},
    }


def our_mean_over(final: dict[str, Any], levels: list[str]) -> tuple[float, float]:
    """Our final solve rate averaged over ``levels`` only (the levels DCD also reports)."""
    return seed_mean_and_std({level: np.array(values) for level, values
                              in final["per_level_per_seed"].items()}, levels)


# --- tables -------------------------------------------------------------------------------------
def plus_minus(mean: float, std: float) -> str:
    return "-" if math.isnan(mean) else f"{mean:.2f} ± {std:.2f}"


def results_markdown(results: dict[str, Any], settings: dict[str, Any]) -> str:
    methods = results["methods"]
    lines = [
        "# UED on the 13x13 maze: held-out solve rates",
        "",
        f"{settings['command']}",
        "",
        f"Machine: {settings['device']}, {settings['cpu_cores']} CPU cores, jax "
        f"{settings['jax']}. {settings['seeds']} seed(s) per method, "
        f"{settings['total_steps_requested']:,} student env steps requested per seed; "
        f"ued.Config fields changed from their defaults: {settings['overrides']}.",
        "",
        "| method | env steps / seed | held-out solve rate (ours, all levels) "
        "| ours, DCD's levels | DCD, same levels | DCD, all its levels | DCD setting "
        "| best during the run | student rounds with a gradient step "
        "| wall s | steps/s (wall) | steps/s (training) |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for method, entry in methods.items():
        final, dcd, timing = entry["final"], entry["dcd"], entry["timing"]
        training_rate = timing["steps_per_second_training"]
        if dcd:
            ours_shared = plus_minus(*our_mean_over(final, dcd["shared_levels"]))
            dcd_cells = (f"{ours_shared} | {plus_minus(dcd['shared_mean'], dcd['shared_std'])} "
                         f"| {plus_minus(dcd['mean'], dcd['std'])} "
                         f"| {dcd['file'].removesuffix('.csv')}, {dcd['num_seeds']} seeds")
        else:
            dcd_cells = "- | - | - | -"
        lines.append(
            f"| {METHOD_LABELS[method]} | {final['env_steps']:,} "
            f"| {plus_minus(final['mean'], final['std'])} | {dcd_cells} "
            f"| {final['best_over_run']:.2f} | {final['learning_rounds']:.0f} "
            f"| {timing['wall_seconds']:.0f} | {timing['steps_per_second_wall']:,.0f} "
            f"| {'-' if training_rate is None else f'{training_rate:,.0f}'} |")

    levels = list(next(iter(methods.values()))["final"]["per_level"])
    lines += [
        "",
        "Final solve rate per held-out level, ours (DCD's published mean over seeds, where the "
        "level is in its file):",
        "",
        "| level | DCD id | " + " | ".join(METHOD_LABELS[method] for method in methods) + " |",
        "|---|---|" + "---:|" * len(methods),
    ]
    for level in levels:
        cells = []
        for entry in methods.values():
            ours = entry["final"]["per_level"][level]
            published = (entry["dcd"] or {}).get("per_level", {}).get(level)
            cells.append(f"{ours:.2f}" + ("" if published is None else f" ({published:.2f})"))
        lines.append(f"| {level} | {DCD_LEVEL_NAMES.get(level, '-')} | " + " | ".join(cells)
                     + " |")

    lines += ["", "Notes:", ""]
    lines += [f"- {note}" for note in results["notes"]]
    return "\n".join(lines) + "\n"


def table_notes(results: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    notes = [
        "Ours: the held-out evaluation of the last logged update, mean ± std over seeds of the "
        f"mean over levels; each level is {settings['heldout_episodes']} episode(s) with sampled "
        "actions, so a single update's rate is noisy. 'All levels' is every named 13x13 maze "
        "we ship; 'DCD's levels' is the subset with a DCD counterpart in that method's file.",
        "DCD, all its levels: the 25-wall files (DR, PLR, PLR-perp, PAIRED; 250M steps, "
        "10 seeds) average 7 levels, including MiniGrid-SimpleCrossingS11N5-v0, which we do not "
        "have. ACCEL's file is a different setting: 60 blocks, 20k student updates, 5 seeds, "
        "12 levels (incl. FourRooms, SimpleCrossing and the 21x21 PerfectMazeMedium).",
        "Per level the comparison is approximate: our 13x13 levels are drawn to the DCD "
        "levels' descriptions, not copied cell for cell. DCD's SmallCorridor and LargeCorridor "
        "draw the goal at random along the corridor and its LargeCorridor is 19x19; ours are "
        "one fixed 13x13 level each. LabyrinthFlipped has no DCD counterpart. DCD's held-out "
        "episodes last up to 2 x size^2 steps (450 on its 15x15 grids, border included); "
        f"ours (JaxUED's) up to {settings['max_steps_in_episode']}.",
        "steps/s (wall): seeds x student env steps / whole wall time, including env and "
        "network construction, compilation and the run's pictures. steps/s (training): "
        "timed from the first to the last logged update, so without compilation. PAIRED's "
        "student steps are the protagonist's; the antagonist takes as many again.",
    ]
    baseline = results.get("dcd_accel_baseline")
    accel = results["methods"].get("accel", {}).get("dcd")
    if baseline and accel:
        notes.append(
            f"DCD's 60-block setting: ACCEL {accel['mean']:.2f} vs PLR-perp "
            f"{baseline['mean']:.2f} ({baseline['file']}, all {len(baseline['levels'])} levels).")
    return notes


# --- main ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(argv)
    try:
        configs = method_configs(args)
    except (TypeError, ValueError) as error:  # a bad setting: say so, without a traceback
        raise SystemExit(f"error: {error}") from None
    argv = list(sys.argv[1:] if argv is None else argv)
    existing = [str(args.out / method) for method in configs if (args.out / method).exists()]
    if args.report_only:
        existing = []
    elif args.jobs > 1:
        if existing and not args.overwrite:
            raise SystemExit(f"error: run folder(s) {', '.join(existing)} exist; pass "
                             f"--overwrite to replace them or choose another --out.")
        run_in_processes(args, argv)
        existing, args.report_only = [], True
    if existing and not args.overwrite:
        raise SystemExit(f"error: run folder(s) {', '.join(existing)} exist; pass --overwrite "
                         f"to replace them or choose another --out.")
    for path in existing:
        shutil.rmtree(path)
    args.out.mkdir(parents=True, exist_ok=True)

    device = jax.devices()[0]
    _, env_params = jaxrl_suite.make(args.env)
    example = next(iter(configs.values()))
    steps_per_update = example.eval_interval * example.num_envs * example.num_steps
    print(f"UED {args.env}: {', '.join(configs)}; {args.seeds} seed(s), "
          f"{example.total_steps // steps_per_update * steps_per_update:,} student env steps "
          f"per seed ({steps_per_update:,} per logged update); {device.platform} "
          f"({device.device_kind}), {os.cpu_count()} cores", flush=True)

    results: dict[str, Any] = {"methods": {}}
    for method, config in configs.items():
        if args.report_only:
            timing = json.loads((args.out / method / "timing.json").read_text())
        else:
            print(f"{method}: training ...", flush=True)
            timing = run_method(config, args)
        final = final_solve_rates(Path(timing["run_dir"]))
        dcd = dcd_summary(args.reference_dir / DCD_FILES[method], list(final["per_level"]))
        results["methods"][method] = {"final": final, "dcd": dcd, "timing": timing}
        training_rate = timing["steps_per_second_training"]
        print(f"{method}: held-out solve rate {plus_minus(final['mean'], final['std'])} after "
              f"{final['env_steps']:,} steps; {timing['wall_seconds']:.1f} s wall "
              f"({timing['steps_per_second_wall']:,.0f} steps/s incl. compilation"
              + (f", {training_rate:,.0f} steps/s training" if training_rate else "") + ")",
              flush=True)

    if args.no_report:
        return
    shared_levels = list(next(iter(results["methods"].values()))["final"]["per_level"])
    results["dcd_accel_baseline"] = dcd_summary(args.reference_dir / DCD_ACCEL_BASELINE_FILE,
                                                shared_levels)
    settings = {
        "command": "python benchmarks/ued_maze.py " + " ".join(argv),
        "env": args.env, "seeds": args.seeds, "seed": args.seed,
        "total_steps_requested": example.total_steps, "smoke": args.smoke,
        "overrides": {name: value for name, value in dataclasses.asdict(example).items()
                      if name != "method" and value != getattr(ued.Config(), name)},
        "heldout_episodes": example.heldout_episodes,
        "max_steps_in_episode": getattr(env_params, "max_steps_in_episode", None),
        "device": f"{device.platform} ({device.device_kind})", "cpu_cores": os.cpu_count(),
        "jax": jax.__version__,
    }
    results["settings"] = settings
    results["notes"] = table_notes(results, settings)

    plot = ued.plot_solve_rate({method: Path(entry["timing"]["run_dir"])
                                for method, entry in results["methods"].items()},
                               args.out / "heldout_solve_rate.png")
    markdown = results_markdown(results, settings)
    (args.out / "results.md").write_text(markdown)
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=list))
    print()
    print(markdown)
    for method, entry in results["methods"].items():
        dcd = entry["dcd"]
        if dcd:
            print(f"DCD {method}: {dcd['mean']:.3f} over its {len(dcd['levels'])} levels, "
                  f"{dcd['shared_mean']:.3f} over the {len(dcd['shared_levels'])} levels we "
                  f"share ({', '.join(dcd['shared_levels'])})")
    print(f"\nwritten: {args.out / 'results.md'}, {args.out / 'results.json'}"
          + (f", {plot}" if plot else ""))


if __name__ == "__main__":
    main()
