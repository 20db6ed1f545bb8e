"""The training loop: seeds as ``vmap``, live progress, the run folder, checkpoints, resume.

It drives any algorithm whose ``make_train`` returns a ``jaxrl_suite.run.training.Train``::

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
  and evaluates the final policies (``eval.json``);
- checks every update for divergence (the ``finite`` metric, ``jaxrl_suite.run.divergence``):
  on a NaN or infinite loss or parameter it stops with ``TrainingDiverged`` (or warns, with
  ``on_nonfinite="warn"``), and a non-finite state never replaces the last finite checkpoint.

A resumed run leaves the folder as an uninterrupted run would: ``metrics.csv``, ``progress.csv``
and the TensorBoard scalars are cut back to the checkpoint it resumes from before it appends.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import sys
import types
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from jaxrl_suite.env.registry import make
from jaxrl_suite.run import sinks as sinks_lib
from jaxrl_suite.run.algorithms import algorithm_spec
from jaxrl_suite.run.checkpoints import Checkpointer, config_fingerprint
from jaxrl_suite.run.divergence import (
    FINITE_METRIC,
    TrainingDiverged,
    find_divergence,
    finite_flag,
    learned_leaves,
)
from jaxrl_suite.run.evaluation import evaluate
from jaxrl_suite.run.folder import (
    append_csv,
    load_run,
    metric_components,
    metrics_rows,
    new_run_dir,
    plot_learning_curve,
    record_differences,
    run_record,
    truncate_csv,
)
from jaxrl_suite.run.options import RunOptions, seed_keys, validate_options
from jaxrl_suite.run.resources import check_fits, tree_bytes
from jaxrl_suite.run.sharding import shard_seeds
from jaxrl_suite.run.training import Train, TrainResult

__all__ = [
    "RunOptions",
    "evaluate_run",
    "evaluate_states",
    "make_chunk_runner",
    "run_training",
]


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
    states; the metrics are ``train``'s plus ``finite`` (``jaxrl_suite.run.divergence``).
    With a ``reporter``, every ``progress_every``-th update (and the last one of the run)
    calls it from inside the compiled loop with the metrics of that update for all seeds.
    ``train.data`` (an offline dataset) is an argument of the compiled program, not a constant."""

    def checked_step(state, data):
        state, metrics = train.step(state, data)
        return state, {**metrics, FINITE_METRIC: finite_flag(state, metrics)}

    # With the seeds sharded over devices, the report's metrics are gathered to every device
    # first: handed to the host callback as they are, XLA's partitioner "involuntarily
    # rematerialises" each one (a warning per metric) to move it to device 0.
    report_sharding: list[Any] = [None]

    def report(done, metrics):
        if report_sharding[0] is not None:
            metrics = jax.lax.with_sharding_constraint(metrics, report_sharding[0])
        jax.debug.callback(reporter, done, metrics)

    def step(states, update_index, data):
        states, metrics = _seed_batched(lambda state: checked_step(state, data))(states)
        if reporter is not None:
            done = update_index + 1
            due = (done % progress_every == 0) | (done == train.num_updates)
            jax.lax.cond(due, lambda: report(done, metrics), lambda: None)
        return states, metrics

    def run_chunk(states, first_update, num_updates, data):
        indices = first_update + jnp.arange(num_updates)
        return jax.lax.scan(lambda carry, index: step(carry, index, data), states, indices)

    jitted = jax.jit(run_chunk, static_argnums=2)
    programs: dict[int, Any] = {}

    def prepare(states, first_update, num_updates):
        """Compile the program of ``num_updates`` updates (once), checking its memory."""
        if num_updates not in programs:
            sharding = getattr(jax.tree.leaves(states)[0], "sharding", None)
            if isinstance(sharding, NamedSharding) and sharding.mesh.size > 1:
                report_sharding[0] = NamedSharding(sharding.mesh, PartitionSpec())
            program = jitted.lower(states, first_update, num_updates, train.data).compile()
            memory = program.memory_analysis()
            if memory is not None:
                needed = (memory.argument_size_in_bytes + memory.output_size_in_bytes
                          + memory.temp_size_in_bytes - memory.alias_size_in_bytes)
                check_fits(needed, f"The compiled program of {num_updates} update(s)",
                           "use fewer seeds or envs, shorter rollouts, smaller minibatches or "
                           "a smaller network.")
            programs[num_updates] = program
        return programs[num_updates]

    def run(states, first_update, num_updates):
        # Compiled ahead of the call, so its memory is known before anything runs.
        return prepare(states, first_update, num_updates)(states, first_update, train.data)

    run.prepare = prepare
    return run


def run_training(
    algorithm: types.ModuleType | str,
    config: Any = None,
    options: RunOptions | None = None,
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
      options: ``RunOptions`` (default ``RunOptions()``).
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
    options = RunOptions() if options is None else options
    validate_options(options)
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
        raise TypeError(f"run_training: train must be a jaxrl_suite.run.training.Train or a "
                        f"factory (env, env_params) -> Train; got {type(train).__name__}.")
    config = train.config if config is None else config
    name = algorithm if spec is None else spec.name
    record = run_record(name, config, options, hparams)
    fingerprint = config_fingerprint(record)

    _say_if_rounded(train, config)
    run_dir = _open_run_dir(name, options, record, fingerprint)
    try:
        return _train_in(run_dir, train, spec, name, options, record, fingerprint, hparams,
                         env_params, extra_sinks, progress_bar)
    except Exception:
        # A new run that failed before it wrote any metrics (a failed --wandb, a run too
        # large for the machine) leaves no half-made folder behind.
        if options.resume is None and not (run_dir / "metrics.csv").exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _say_if_rounded(train: Train, config: Any) -> None:
    """A budget the run cannot take exactly (it trains in whole updates) is said, not rounded
    silently: ``total_steps`` 600,000 of UED's rounds of 40,960 steps train 409,600."""
    asked = getattr(config, "total_steps", None)
    if not isinstance(asked, int) or train.env_steps_per_update <= 0:
        return
    taken = train.env_steps_before_updates + train.num_updates * train.env_steps_per_update
    if taken < asked:
        warnings.warn(
            f"total_steps {asked:,} is rounded down to {taken:,} env steps: the run trains in "
            f"whole updates of {train.env_steps_per_update:,} env steps ({train.num_updates:,} "
            f"of them). Ask for a multiple to train exactly what you ask.",
            BudgetRoundedWarning, stacklevel=3)


class BudgetRoundedWarning(UserWarning):
    """A run's ``total_steps`` is not a whole number of updates and was rounded down."""


def _open_run_dir(name: str, options: RunOptions, record: dict[str, Any],
                  fingerprint: str) -> Path:
    """The run folder: the one to resume (checked to be this run's, and writable), or a new
    one with its ``config.json``; every file-system problem as one plain ``ValueError``."""
    if options.resume is not None:
        run_dir = Path(options.resume)
        config_path = run_dir / "config.json"
        if not config_path.exists():
            raise ValueError(f"--resume {run_dir}: no config.json there; is it a run folder?")
        saved = json.loads(config_path.read_text())
        differences = record_differences(saved.get("run", {}), record)
        if differences:
            raise ValueError(
                f"Cannot resume {run_dir} with a different configuration: "
                + "; ".join(differences) + ". Resume with the same settings."
            )
        # Checked now, not after a minute of restoring and compiling.
        unwritable = [path for path in (run_dir, run_dir / "checkpoints")
                      if path.exists() and not os.access(path, os.W_OK | os.X_OK)]
        if unwritable:
            raise ValueError(f"--resume {run_dir}: {unwritable[0]} is not writable; a resumed "
                             f"run appends to its files and saves checkpoints there.")
        return run_dir
    run_dir = new_run_dir(name, options)
    if run_dir.exists():
        raise ValueError(f"The run folder {run_dir} exists already: choose another --run-dir, "
                         f"or continue that run with --resume {run_dir}.")
    try:
        run_dir.mkdir(parents=True)
        (run_dir / "config.json").write_text(json.dumps(
            {"run": record, "fingerprint": fingerprint, "options": dataclasses.asdict(options)},
            indent=2, default=list,
        ))
    except OSError as error:
        raise ValueError(f"Cannot create the run folder {run_dir}: "
                         f"{error.strerror or error}.") from None
    return run_dir


def _io_error(path: Path, error: BaseException) -> ValueError | None:
    """A plain one-line error for a failed write (full disk, read-only folder), or ``None`` when
    ``error`` is not one (a bug, which keeps its traceback)."""
    if isinstance(error, OSError):
        return ValueError(f"Could not write {path}: {error.strerror or error}.")
    text = str(error)
    for cause in ("No space left on device", "Read-only file system", "Permission denied",
                  "Disk quota exceeded"):
        if cause in text:
            return ValueError(f"Could not write {path}: {cause}.")
    return None


def _train_in(run_dir, train, spec, name, options, record, fingerprint, hparams, env_params,
              extra_sinks, progress_bar) -> tuple[TrainResult, Path]:
    # Seeds split over the local devices (several CPU devices when use_all_cpu_cores ran).
    states = shard_seeds(_initial_states(train, options, hparams), options.seeds)

    checkpointer = Checkpointer(run_dir / "checkpoints", options.keep_checkpoints)
    first_update = 0
    if options.resume is not None:
        if checkpointer.latest_update() is not None:
            states, first_update = checkpointer.restore(states, fingerprint)
            states = shard_seeds(states, options.seeds)
        # Rows the killed run wrote after its last checkpoint are re-run now.
        truncate_csv(run_dir / "metrics.csv", first_update)
        truncate_csv(run_dir / "progress.csv", first_update)

    sinks: list[sinks_lib.MetricSink] = []
    reporter = None
    if not options.no_progress:
        bar = progress_bar if progress_bar is not None else sys.stdout.isatty()
        if bar:
            sinks.append(sinks_lib.ProgressBar(train.num_updates, first_update,
                                               f"{name} {options.env}"))
        if options.console or not bar:  # logs, CI, nohup: plain lines instead of a bar
            sinks.append(sinks_lib.ConsoleSink(train.num_updates,
                                               description=f"{name} {options.env}"))
        sinks.append(sinks_lib.CSVSink(run_dir / "progress.csv"))
        if options.tensorboard:
            sinks.append(sinks_lib.TensorBoardSink(
                run_dir / "tensorboard",
                keep_until_step=(None if options.resume is None else
                                 train.env_steps_before_updates
                                 + first_update * train.env_steps_per_update)))
        if options.wandb:
            sinks.append(sinks_lib.WandbSink(options.wandb_project, run_dir.name, record, run_dir))
        sinks.extend(extra_sinks)
        reporter = _Reporter(sinks, train)
    progress_every = options.progress_every or max(1, train.num_updates // 50)
    run_chunk = make_chunk_runner(train, progress_every, reporter)

    chunk = (options.checkpoint_every or (spec.checkpoint_every if spec is not None else 0)
             or train.num_updates)
    all_metrics: list[dict[str, np.ndarray]] = []
    warned = False
    try:
        update = first_update
        while update < train.num_updates:
            size = min(chunk, train.num_updates - update)
            if update == first_update:
                _phase(sinks, "compiling")
                run_chunk.prepare(states, jnp.int32(update), size)
                _phase(sinks, "training")
            states, metrics = run_chunk(states, jnp.int32(update), size)
            metrics = jax.tree.map(np.asarray, jax.block_until_ready(metrics))
            all_metrics.append(metrics)
            _write(run_dir / "metrics.csv", append_csv, run_dir / "metrics.csv",
                   metrics_rows(metrics, update))
            divergence = find_divergence(metrics, update)
            update += size
            if divergence is not None and options.on_nonfinite == "stop":
                raise TrainingDiverged(_divergence_message(divergence, states, checkpointer,
                                                           run_dir))
            if divergence is not None and not warned:
                warned = True
                print(f"jaxrl: warning: training diverged at {divergence.describe()}; "
                      f"training on (--on-nonfinite warn).", file=sys.stderr, flush=True)
            # A state that is non-finite in any seed is marked so: it never evicts a finite one.
            finite = bool(np.all(metrics[FINITE_METRIC][-1] == 1))
            if reporter is not None:
                # The chunk's reports are written before its checkpoint: the host callbacks run
                # behind the compiled loop, and a kill between the two would lose reports that a
                # resume from this checkpoint does not re-run.
                jax.effects_barrier()
            _write(checkpointer.path_of(update), checkpointer.save, update, states, fingerprint,
                   finite=finite)
        if first_update == train.num_updates == 0:
            checkpointer.save(0, states, fingerprint)
    except KeyboardInterrupt as interrupt:
        interrupt.run_dir = run_dir  # for the command line's one-line message
        raise
    except BaseException:
        if reporter is not None:
            jax.effects_barrier()
            reporter.close()
        raise
    finally:
        checkpointer.close()

    if reporter is not None:
        jax.effects_barrier()  # every report of the run is written before the phases after it
    plot_learning_curve(run_dir)
    if spec is not None and spec.write_outputs is not None:
        spec.write_outputs(run_dir, train, states)  # pictures an algorithm adds (UED: levels)
    if options.eval_episodes and (spec is None or spec.evaluates_policy):
        _phase(sinks, "evaluating")
        _write_evaluation(run_dir, train, states, options, env_params)
    if reporter is not None:
        reporter.close()  # the bar stays up through the evaluation
    metrics = (
        {k: np.concatenate([m[k] for m in all_metrics]) for k in all_metrics[0]}
        if all_metrics else {}
    )
    return TrainResult(states, metrics), run_dir


def _write(path: Path, write: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """``write(*args, **kwargs)``, a failed write of ``path`` as one plain error."""
    try:
        write(*args, **kwargs)
    except Exception as error:
        plain = _io_error(path, error)
        if plain is None:
            raise
        raise plain from None


def _phase(sinks: Sequence[Any], name: str) -> None:
    for sink in sinks:
        if hasattr(sink, "phase"):
            sink.phase(name)


def _initial_states(train: Train, options: RunOptions, hparams: Any) -> Any:
    """``train.initial_states``, refused before anything is allocated when the state alone
    (parameters, optimiser state, buffers, env states of every seed) cannot fit."""
    keys = seed_keys(options)
    if hparams is not None:
        hparams = train.validated_hparams(hparams)
    hparams = train.seed_hparams(len(keys), hparams)
    program = jax.jit(jax.vmap(train.init)).lower(keys, hparams)
    check_fits(tree_bytes(program.out_info), f"The training state of {options.seeds} seed(s)",
               "use fewer seeds or envs, a smaller network or a smaller replay buffer.")
    return program.compile()(keys, hparams)


def _divergence_message(divergence, states, checkpointer: Checkpointer, run_dir: Path) -> str:
    what = divergence.describe()
    if divergence.what == "parameters":  # name the first non-finite array of that seed
        paths = [path for path, leaf in learned_leaves(states)
                 if not np.isfinite(np.asarray(leaf)[divergence.seed]).all()]
        if paths:
            what += f" (first non-finite array: {paths[0]})"
    good = checkpointer.newest_finite_update()
    kept = (f"The newest finite checkpoint, update {good}, is kept ({checkpointer.path_of(good)}"
            f"; `jaxrl eval {run_dir}` evaluates it)." if good is not None else
            "No finite checkpoint was saved (--checkpoint-every K saves one every K updates).")
    return (f"Training diverged (a loss or a parameter became NaN or infinite) at {what}. "
            f"{kept} metrics.csv holds every update up to the end of that chunk; "
            f"--on-nonfinite warn trains on instead.")


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


def evaluate_run(run_dir: str | Path, num_episodes: int | None = None,
                 seed: int | None = None) -> dict[str, Any]:
    """Evaluate the policies saved in a run folder's last checkpoint (every seed).

    By default with the episodes and the key of the run's own final evaluation (its
    ``eval_episodes``, or 16 when it had none, and ``key(seed + 1)``), so evaluating a finished
    run reproduces its ``eval.json``."""
    algorithm, config, options, record = load_run(run_dir)
    if num_episodes is None:
        num_episodes = options.eval_episodes or 16
    if seed is None:
        seed = options.seed + 1
    env, env_params = make(options.env)
    train = algorithm.make_train(config, env, env_params)
    like = train.initial_states(seed_keys(options))
    checkpointer = Checkpointer(Path(run_dir) / "checkpoints")
    try:
        states, update = checkpointer.restore(like, config_fingerprint(record))
    finally:
        checkpointer.close()
    raw_env, _ = make(options.env, wrappers=False)
    result = evaluate_states(train, states, raw_env, env_params, num_episodes,
                             jax.random.key(seed))
    result["update"] = update
    result["seed"] = seed
    return result
