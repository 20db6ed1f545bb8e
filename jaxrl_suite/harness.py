"""The training harness: seeds as ``vmap``, live progress, the run folder, checkpoints, resume.

It drives any algorithm whose ``make_train`` returns a ``jaxrl_suite.training.Train``::

    result, run_dir = run_training(ppo, ppo.Config(), RunOptions(env="gymnax/CartPole-v1", seeds=4))

What it does, in order:

- builds the env and ``train`` (bad config or env id fails here, before anything compiles);
- creates ``runs/<algo>-<env>-<timestamp>/`` with ``config.json``; on ``resume`` checks that the
  folder's config matches and restores the latest checkpoint;
- runs ``vmap(update)`` over seeds inside one jitted ``lax.scan`` per chunk (the whole run is
  one chunk unless ``checkpoint_every`` is set), reporting every ``progress_every`` updates through
  ``jax.debug.callback`` to the sinks (progress bar, console, ``progress.csv``, TensorBoard,
  W&B);
- after each chunk appends every update's metrics for every seed to ``metrics.csv`` and saves the
  state (``checkpoints/``); at the end it saves the final state, plots ``learning_curve.png``
  and evaluates the final policies (``eval.json``).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import json
import math
import re
import sys
import time
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_suite import sinks as sinks_lib
from jaxrl_suite.algorithms import AlgorithmSpec, algorithm_spec
from jaxrl_suite.checkpoints import Checkpointer, config_fingerprint, tree_digest
from jaxrl_suite.evaluation import evaluate
from jaxrl_suite.registry import make
from jaxrl_suite.sharding import shard_seeds, use_all_cpu_cores
from jaxrl_suite.training import Train, TrainResult

__all__ = [
    "RunOptions",
    "run_training",
    "evaluate_run",
    "load_run",
    "plot_learning_curve",
    "algorithm_main",
]


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How to run (not what to learn): the env, seeds, outputs, progress and checkpoints."""

    env: str = "gymnax/CartPole-v1"
    """A registered env id (`jaxrl envs` lists them)."""
    seeds: int = 1
    """Independent seeds, trained at once under vmap."""
    seed: int = 0
    """Base seed; seed i of the run uses split(key(seed), seeds)[i]."""
    preset: str = "auto"
    """'auto' (the env's tuned preset when it has one), 'none' (plain defaults) or a preset name."""
    runs_root: str = "runs"
    """Where new run folders are created."""
    run_dir: str | None = None
    """Exact run folder (default runs_root/<algo>-<env>-<timestamp>)."""
    progress_every: int = 0
    """Report every N updates (0: about 50 reports per run)."""
    no_progress: bool = False
    """No live progress at all (no callbacks compiled into the run)."""
    console: bool = False
    """Print a metrics line at each report (in addition to the progress bar)."""
    tensorboard: bool = True
    """Write TensorBoard event files to RUN_DIR/tensorboard."""
    wandb: bool = False
    """Log to Weights & Biases (needs the wandb package)."""
    wandb_project: str = "jaxrl-suite"
    """W&B project name."""
    checkpoint_every: int = 0
    """Save the training state every K updates (0: only at the end); the run is jitted in chunks
    of K updates."""
    resume: str | None = None
    """Continue the run in this folder from its last checkpoint."""
    eval_episodes: int = 16
    """Episodes per seed for the final evaluation (0: skip)."""


def _validate_options(options: RunOptions) -> None:
    if not isinstance(options.seeds, int) or options.seeds <= 0:
        raise ValueError(f"seeds must be a positive integer; got {options.seeds!r}.")
    for name in ("progress_every", "checkpoint_every", "eval_episodes"):
        value = getattr(options, name)
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer; got {value!r}.")


def _seed_keys(options: RunOptions) -> jax.Array:
    """Seed i of a run uses ``split(key(seed), seeds)[i]``."""
    return jax.random.split(jax.random.key(options.seed), options.seeds)


def _run_record(algo: str, config: Any, options: RunOptions, hparams: Any = None
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



def _new_run_dir(algo: str, options: RunOptions) -> Path:
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


def _differences(saved: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
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


def _summarise(metrics: dict[str, np.ndarray]) -> sinks_lib.Summary:
    """Mean and std over seeds of each metric (per objective for vector metrics)."""
    summary = {}
    for name, values in metric_components(metrics, 1).items():
        values = np.asarray(values, np.float64).reshape(-1)
        finite = values[~np.isnan(values)]
        summary[name] = (
            (float(finite.mean()), float(finite.std())) if finite.size else (math.nan, math.nan)
        )
    return summary


def _metrics_rows(metrics: dict[str, np.ndarray], first_update: int) -> list[dict[str, Any]]:
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


def _append_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    new_file = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="") as file:
        writer = csv.DictWriter(file, list(rows[0]))
        if new_file:
            writer.writeheader()
        writer.writerows(rows)


def _truncate_csv(path: Path, last_update: int) -> None:
    """Drop rows past ``last_update`` (written after the checkpoint a resume starts from)."""
    if not path.exists():
        return
    with path.open(newline="") as file:
        rows = list(csv.DictReader(file))
    kept = [row for row in rows if int(row["update"]) <= last_update]
    if len(kept) != len(rows):
        path.unlink()
        _append_csv(path, kept)


class _Reporter:
    """Host side of the in-jit progress callback: summarises and fans out to the sinks."""

    def __init__(self, sinks: list[sinks_lib.MetricSink], train: Train):
        self.sinks = sinks
        self.env_steps_per_update = train.env_steps_per_update
        self.env_steps_before_updates = train.env_steps_before_updates

    def __call__(self, update: Any, metrics: dict[str, Any]) -> None:
        update = int(update)
        summary = _summarise({k: np.asarray(v) for k, v in metrics.items()})
        for sink in self.sinks:
            env_steps = self.env_steps_before_updates + update * self.env_steps_per_update
            sink.write(update, env_steps, summary)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


def _seed_batched(update):
    """``update`` over seed-batched states: ``vmap``, except that a batch of one seed runs the
    update unbatched. Under ``vmap`` a ``lax.cond`` whose predicate differs per seed computes both
    branches; unbatched it computes one, which is what makes robust PLR and ACCEL (learning
    only on replay rounds) cheaper per step than PLR with one seed."""
    vmapped = jax.vmap(update)

    def run(states):
        if jax.tree.leaves(states)[0].shape[0] != 1:
            return vmapped(states)
        state, metrics = update(jax.tree.map(lambda x: x[0], states))
        return jax.tree.map(lambda x: x[None], (state, metrics))

    return run


def make_chunk_runner(train: Train, progress_every: int, reporter: Any = None):
    """A jitted ``(states, first_update, num_updates) -> (states, metrics)`` over seed-batched
    states. With a ``reporter``, every ``progress_every``-th update (and the last one of the run)
    calls it from inside the compiled loop with the metrics of that update for all seeds.
    ``train.data`` (an offline dataset) is an argument of the compiled program, not a constant."""

    def step(states, update_index, data):
        states, metrics = _seed_batched(lambda state: train.step(state, data))(states)
        if reporter is not None:
            done = update_index + 1
            due = (done % progress_every == 0) | (done == train.num_updates)
            jax.lax.cond(
                due,
                lambda: jax.debug.callback(reporter, done, metrics),
                lambda: None,
            )
        return states, metrics

    def run_chunk(states, first_update, num_updates, data):
        indices = first_update + jnp.arange(num_updates)
        return jax.lax.scan(lambda carry, index: step(carry, index, data), states, indices)

    jitted = jax.jit(run_chunk, static_argnums=2)
    return lambda states, first_update, num_updates: jitted(states, first_update, num_updates,
                                                           train.data)


def run_training(
    algorithm: types.ModuleType | str,
    config: Any = None,
    options: RunOptions = RunOptions(),
    *,
    train: Train | Callable[[Any, Any], Train] | None = None,
    hparams: Any = None,
    extra_sinks: Sequence[sinks_lib.MetricSink] = (),
    progress_bar: bool | None = None,
) -> tuple[TrainResult, Path]:
    """Train ``algorithm`` as ``options`` say: run folder, progress, checkpoints, resume.

    Args:
      algorithm: an algorithm module (``jaxrl_suite.algos.ppo``) or its ``AlgorithmSpec``, or,
        with ``train`` given, just the run's name (a string: meta-training, a MORL front, any
        ``Train`` built in Python).
      config: the algorithm's ``Config``; default ``train.config``.
      options: ``RunOptions``.
      train: a prebuilt ``Train`` (for ``options.env``), or a factory ``(env, env_params) ->
        Train``; default ``algorithm.make_train(config, env, env_params)``.
      hparams: optional traceable hyperparameters with a leading axis of ``options.seeds``
        (a sweep or a population); default the config's, the same for every seed. Their values
        are part of the run's record: a resume with others is refused.
      progress_bar: default whether stdout is a terminal.

    Returns:
      The final ``TrainResult`` (metrics of the updates run by this call, ``(num_updates,
      seeds)``) and the run folder.
    """
    _validate_options(options)
    spec = None if isinstance(algorithm, str) else algorithm_spec(algorithm)
    env, env_params = make(options.env)
    if train is None:
        if spec is None:
            raise TypeError("run_training: pass the algorithm's module, or a train= built for "
                            f"it; got only the name {algorithm!r}.")
        train = spec.make_train(config, env, env_params)
    elif not isinstance(train, Train):
        train = train(env, env_params)
    if not isinstance(train, Train):
        raise TypeError(f"run_training: train must be a jaxrl_suite.training.Train or a factory "
                        f"(env, env_params) -> Train; got {type(train).__name__}.")
    config = train.config if config is None else config
    name = algorithm if spec is None else spec.name
    record = _run_record(name, config, options, hparams)
    fingerprint = config_fingerprint(record)

    if options.resume is not None:
        run_dir = Path(options.resume)
        config_path = run_dir / "config.json"
        if not config_path.exists():
            raise ValueError(f"--resume {run_dir}: no config.json there; is it a run folder?")
        saved = json.loads(config_path.read_text())
        differences = _differences(saved.get("run", {}), record)
        if differences:
            raise ValueError(
                f"Cannot resume {run_dir} with a different configuration: "
                + "; ".join(differences) + ". Resume with the same settings."
            )
    else:
        run_dir = _new_run_dir(name, options)
        run_dir.mkdir(parents=True, exist_ok=False)
        (run_dir / "config.json").write_text(json.dumps(
            {"run": record, "fingerprint": fingerprint, "options": dataclasses.asdict(options)},
            indent=2, default=list,
        ))

    # Seeds split over the local devices (several CPU devices when use_all_cpu_cores ran).
    states = shard_seeds(train.initial_states(_seed_keys(options), hparams), options.seeds)

    checkpointer = Checkpointer(run_dir / "checkpoints")
    first_update = 0
    if options.resume is not None and checkpointer.latest_update() is not None:
        states, first_update = checkpointer.restore(states, fingerprint)
        states = shard_seeds(states, options.seeds)
        _truncate_csv(run_dir / "metrics.csv", first_update)

    sinks: list[sinks_lib.MetricSink] = []
    reporter = None
    if not options.no_progress:
        if progress_bar if progress_bar is not None else sys.stdout.isatty():
            sinks.append(sinks_lib.ProgressBar(train.num_updates, first_update,
                                               f"{name} {options.env}"))
        if options.console:
            sinks.append(sinks_lib.ConsoleSink(train.num_updates))
        sinks.append(sinks_lib.CSVSink(run_dir / "progress.csv"))
        if options.tensorboard:
            sinks.append(sinks_lib.TensorBoardSink(run_dir / "tensorboard"))
        if options.wandb:
            sinks.append(sinks_lib.WandbSink(options.wandb_project, run_dir.name, record, run_dir))
        sinks.extend(extra_sinks)
        reporter = _Reporter(sinks, train)
    progress_every = options.progress_every or max(1, train.num_updates // 50)
    run_chunk = make_chunk_runner(train, progress_every, reporter)

    chunk = options.checkpoint_every or train.num_updates
    all_metrics: list[dict[str, np.ndarray]] = []
    try:
        update = first_update
        while update < train.num_updates:
            size = min(chunk, train.num_updates - update)
            states, metrics = run_chunk(states, jnp.int32(update), size)
            metrics = jax.tree.map(np.asarray, jax.block_until_ready(metrics))
            all_metrics.append(metrics)
            _append_csv(run_dir / "metrics.csv", _metrics_rows(metrics, update))
            update += size
            checkpointer.save(update, states, fingerprint)
        if first_update == train.num_updates == 0:
            checkpointer.save(0, states, fingerprint)
    finally:
        if reporter is not None:
            jax.effects_barrier()
            reporter.close()
        checkpointer.close()

    plot_learning_curve(run_dir)
    if spec is not None and spec.write_outputs is not None:
        spec.write_outputs(run_dir, train, states)  # pictures an algorithm adds (UED: levels)
    if options.eval_episodes:
        _write_evaluation(run_dir, train, states, options, env_params)
    metrics = (
        {k: np.concatenate([m[k] for m in all_metrics]) for k in all_metrics[0]}
        if all_metrics else {}
    )
    return TrainResult(states, metrics), run_dir


def _write_evaluation(run_dir, train, states, options, env_params) -> dict[str, Any]:
    raw_env, _ = make(options.env, wrappers=False)
    result = evaluate_states(train, states, raw_env, env_params, options.eval_episodes,
                             jax.random.key(options.seed + 1))
    (run_dir / "eval.json").write_text(json.dumps(result, indent=2))
    return result


def evaluate_states(train: Train, states: Any, env, env_params, num_episodes: int,
                    key: jax.Array) -> dict[str, Any]:
    """Deterministic and stochastic evaluation of every seed's policy in seed-batched ``states``."""

    def per_seed(state, seed_key, deterministic):
        return evaluate(train.make_policy(state), env, env_params, seed_key, num_episodes,
                        deterministic=deterministic)["episode_return"]

    num_seeds = jax.tree.leaves(states)[0].shape[0]
    keys = jax.random.split(key, num_seeds)
    out: dict[str, Any] = {"num_episodes_per_seed": num_episodes}
    for mode, deterministic in (("deterministic", True), ("stochastic", False)):
        returns = np.asarray(jax.jit(jax.vmap(
            lambda s, k, d=deterministic: per_seed(s, k, d)))(states, keys))
        vector_returns = returns if returns.ndim > 2 else None
        if vector_returns is not None:  # multi-objective: the headline is the objectives' sum
            returns = returns.sum(axis=tuple(range(2, returns.ndim)))
        per_seed_mean = returns.mean(axis=1)
        out[mode] = {
            "mean_return": float(per_seed_mean.mean()),
            "std_over_seeds": float(per_seed_mean.std()),
            "per_seed": [float(x) for x in per_seed_mean],
        }
        if vector_returns is not None:  # and every objective's own return is kept
            per_objective = vector_returns.mean(axis=1)  # (seeds, objectives...)
            out[mode]["per_objective"] = {
                "mean_return": per_objective.mean(axis=0).tolist(),
                "std_over_seeds": per_objective.std(axis=0).tolist(),
                "per_seed": per_objective.tolist(),
            }
    return out


def load_run(run_dir: str | Path) -> tuple[AlgorithmSpec, Any, RunOptions, dict[str, Any]]:
    """The algorithm's spec, config, options and record of a run folder (its ``config.json``)."""
    from jaxrl_suite.algorithms import load_algorithm

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


def evaluate_run(run_dir: str | Path, num_episodes: int = 16, seed: int = 0) -> dict[str, Any]:
    """Evaluate the policies saved in a run folder's last checkpoint (every seed)."""
    algorithm, config, options, record = load_run(run_dir)
    env, env_params = make(options.env)
    train = algorithm.make_train(config, env, env_params)
    like = train.initial_states(_seed_keys(options))
    checkpointer = Checkpointer(Path(run_dir) / "checkpoints")
    try:
        states, update = checkpointer.restore(like, config_fingerprint(record))
    finally:
        checkpointer.close()
    raw_env, _ = make(options.env, wrappers=False)
    result = evaluate_states(train, states, raw_env, env_params, num_episodes,
                             jax.random.key(seed))
    result["update"] = update
    return result


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


# --- command line shared by all algorithms ------------------------------------------------------
def _int_fields(*types_: type) -> set[str]:
    names = set()
    for cls in types_:
        for field in dataclasses.fields(cls):
            if field.type in (int, "int"):
                names.add("--" + field.name.replace("_", "-"))
    return names


def _accept_scientific_integers(argv: list[str], int_flags: set[str]) -> list[str]:
    """Let integer flags take ``5e5`` (as users write step counts)."""
    out = []
    expecting = False
    for arg in argv:
        flag, _, inline = arg.partition("=")
        if expecting or (flag in int_flags and inline):
            value = arg if expecting else inline
            try:
                number = float(value)
                if number.is_integer() and not value.lstrip("-").isdigit():
                    value = str(int(number))
            except ValueError:
                pass
            arg = value if expecting else f"{flag}={value}"
            expecting = False
        elif arg in int_flags:
            expecting = True
        out.append(arg)
    return out


def algorithm_main(algorithm: types.ModuleType | AlgorithmSpec,
                   argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """The CLI of an algorithm (its module or spec): run options and every ``Config`` field as
    flags.

    The config starts from the env's preset (``--preset``), then the flags override it.
    """
    import argparse

    import tyro

    algorithm = algorithm_spec(algorithm)
    use_all_cpu_cores()  # before any computation: seeds then spread over every core
    argv = list(sys.argv[1:] if argv is None else argv)
    pre = argparse.ArgumentParser(add_help=False)
    # An algorithm may name the env it runs on by default (SAC and TD3 need continuous actions).
    pre.add_argument("--env", default=None)
    pre.add_argument("--preset", default=RunOptions.preset)
    pre.add_argument("--resume", default=None)
    pre.add_argument("--dataset", default=None)
    known, _ = pre.parse_known_args(argv)
    try:
        if known.env is None and known.dataset and algorithm.needs_dataset:
            # An offline run's env defaults to the one its dataset records.
            from jaxrl_suite.datasets import recorded_env_id

            known.env = recorded_env_id(known.dataset)
        if known.env is None:
            known.env = algorithm.default_env
        if known.resume:
            _, config, options, _ = load_run(known.resume)
            base_config, base_options = config, options
        else:
            base_options = RunOptions(env=known.env, preset=known.preset)
            if known.preset == "none":
                base_config = algorithm.config()
            elif known.preset == "auto":
                base_config = algorithm.preset_config(known.env)
            else:
                base_config = algorithm.preset_config(known.preset)
    except ValueError as error:
        print(f"jaxrl: error: {error}", file=sys.stderr)
        return 2

    # Built with real (not string) annotations, which tyro needs to resolve the field types.
    Arguments = dataclasses.make_dataclass(
        "Arguments", [("run", RunOptions), ("config", algorithm.config)], frozen=True
    )

    argv = _accept_scientific_integers(argv, _int_fields(RunOptions, algorithm.config))
    arguments = tyro.cli(
        tyro.conf.OmitArgPrefixes[Arguments],  # type: ignore[index]
        default=Arguments(base_options, base_config),
        args=argv,
        prog=prog or f"jaxrl train {algorithm.name}",
        description=algorithm.description,
    )
    try:
        start = time.perf_counter()
        result, run_dir = run_training(algorithm, arguments.config, arguments.run)
    except ValueError as error:
        print(f"jaxrl: error: {error}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - start
    episode_return = np.asarray(result.metrics.get("episode_return", np.zeros((0, 1))))
    tail = episode_return[-max(1, len(episode_return) // 10):]
    final = np.nanmean(tail, axis=0) if np.isfinite(tail).any() else None
    print(f"run folder: {run_dir}")
    if algorithm.x_axis == "gradient_steps" and result.metrics:  # offline: gradient steps
        print(f"  {arguments.run.seeds} seed(s), {result.metrics['gradient_steps'][-1, 0]:,} "
              f"gradient steps each, {seconds:.1f} s including compilation")
        score = np.asarray(result.metrics["normalized_score"])[-1]
        if np.isfinite(score).all():
            print(f"  final normalised score: {score.mean():.1f} ± {score.std():.1f} over seeds")
    else:
        print(f"  {arguments.run.seeds} seed(s), {result.metrics['env_steps'][-1, 0]:,} env "
              f"steps each, {seconds:.1f} s including compilation" if result.metrics
              else "  nothing to do")
    if final is not None:
        # Offline runs log the in-run evaluation's return: no episode is played for training.
        what = "in-run evaluation" if algorithm.x_axis == "gradient_steps" else "training"
        if final.ndim > 1:  # (seeds, objectives): one figure per objective
            per_objective = ", ".join(f"{m:.2f} ± {s:.2f}" for m, s in
                                      zip(final.mean(axis=0), final.std(axis=0)))
            print(f"  final {what} return per objective (last 10% of updates): "
                  f"{per_objective} over seeds")
        else:
            print(f"  final {what} return (last 10% of updates): {np.mean(final):.2f} "
                  f"± {np.std(final):.2f} over seeds")
    eval_path = run_dir / "eval.json"
    if eval_path.exists():
        evaluation = json.loads(eval_path.read_text())["deterministic"]
        print(f"  evaluation (deterministic): {evaluation['mean_return']:.2f} "
              f"± {evaluation['std_over_seeds']:.2f}")
    print(f"  plot: {run_dir / 'learning_curve.png'}")
    return 0
