"""An algorithm's command line: ``jaxrl train NAME ...`` and ``python algos/NAME.py ...``.

The run options and every ``Config`` field are flags (tyro); the config starts from the env's
preset (``--preset``), then the flags override it; at the end a summary is printed.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
import types
import warnings
from collections.abc import Sequence
from typing import Annotated

import numpy as np

from jaxrl_suite.run.algorithms import AlgorithmSpec, algorithm_spec
from jaxrl_suite.run.divergence import TrainingDiverged
from jaxrl_suite.run.folder import load_run
from jaxrl_suite.run.harness import run_training
from jaxrl_suite.run.options import RunOptions
from jaxrl_suite.run.sharding import use_all_cpu_cores

__all__ = ["algorithm_main", "plain_warnings"]


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


# Flags users write from other libraries' habits, and the flag they mean here.
FLAG_ALIASES = {
    "--lr": "--learning-rate", "--steps": "--total-steps", "--timesteps": "--total-steps",
    "--total-timesteps": "--total-steps", "--n-envs": "--num-envs", "--envs": "--num-envs",
    "--seed-count": "--seeds", "--num-seeds": "--seeds", "--epochs": "--update-epochs",
    "--minibatches": "--num-minibatches", "--batch": "--batch-size",
    "--output": "--run-dir", "--out": "--run-dir", "--logdir": "--run-dir",
}


def _flags_of(*types_: type) -> set[str]:
    flags = {"-h", "--help"}
    for cls in types_:
        for field in dataclasses.fields(cls):
            flag = "--" + field.name.replace("_", "-")
            flags.add(flag)
            if field.type in (bool, "bool"):
                flags.add("--no-" + flag[2:])
    return flags


def unknown_flag_error(argv: Sequence[str], algorithm: AlgorithmSpec) -> str | None:
    """One plain line for the first flag the algorithm's command line does not have, with the
    flag meant (an alias from other libraries, or the closest names), or ``None``."""
    import difflib

    flags = _flags_of(RunOptions, algorithm.config)
    for arg in argv:
        flag = arg.partition("=")[0]
        if not flag.startswith("--") or flag in flags:
            continue
        meant = FLAG_ALIASES.get(flag)
        if flag == "--total-steps" and "--total-updates" in flags:
            meant = "--total-updates"  # offline algorithms count gradient updates
        suggestions = ([meant] if meant in flags else
                       difflib.get_close_matches(flag, sorted(flags), n=3, cutoff=0.6))
        hint = (f" Did you mean {' or '.join(suggestions)}?" if suggestions else "")
        return (f"jaxrl train {algorithm.name}: unknown flag {flag}.{hint} "
                f"`jaxrl train {algorithm.name} --help` lists them all.")
    return None


def plain_warnings() -> None:
    """Warnings on the command line as one line each (``jaxrl: warning: ...``), not Python's
    two-line ``file:line: Category: message`` form with the source line."""
    warnings.formatwarning = lambda message, category, *args, **kwargs: (
        f"jaxrl: warning: {message}\n")


def algorithm_main(algorithm: types.ModuleType | AlgorithmSpec,
                   argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """The CLI of an algorithm (its module or spec): run options and every ``Config`` field as
    flags.

    The config starts from the env's preset (``--preset``), then the flags override it.
    """
    import argparse

    import tyro

    algorithm = algorithm_spec(algorithm)
    plain_warnings()
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
        if known.env is None and known.dataset and algorithm.dataset_env is not None:
            # An offline run's env defaults to the one its dataset records.
            known.env = algorithm.dataset_env(known.dataset)
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

    # The config group says where its defaults come from: the flags show the preset's values,
    # not the Config class's own defaults its docstring describes.
    if known.resume:
        source = f"the run in {known.resume}"
    elif known.preset == "none":
        source = "the config's own defaults (--preset none)"
    else:
        preset = (algorithm.preset_by_env.get(known.env) if known.preset == "auto"
                  else known.preset)
        source = (f"preset {preset!r} (--preset)" if preset else
                  f"the config's own defaults ({known.env} has no preset)")
    config_help = f"{algorithm.title} settings; the defaults shown are {source}."
    # Built with real (not string) annotations, which tyro needs to resolve the field types.
    Arguments = dataclasses.make_dataclass(
        "Arguments",
        [("run", RunOptions),
         ("config", Annotated[algorithm.config, tyro.conf.arg(help=config_help)])],
        frozen=True,
    )

    unknown = unknown_flag_error(argv, algorithm)
    if unknown is not None:
        print(f"jaxrl: error: {unknown}", file=sys.stderr)
        return 2
    argv = _accept_scientific_integers(argv, _int_fields(RunOptions, algorithm.config))
    arguments = tyro.cli(
        tyro.conf.OmitArgPrefixes[Arguments],  # type: ignore[index]
        default=Arguments(base_options, base_config),
        args=argv,
        prog=prog or f"jaxrl train {algorithm.name}",
        # The presets, each marked measured here or unverified (AlgorithmSpec.measured_presets).
        description="\n\n".join(filter(None, [algorithm.description,
                                               algorithm.preset_help()])),
    )
    try:
        start = time.perf_counter()
        result, run_dir = run_training(algorithm, arguments.config, arguments.run)
    except ValueError as error:
        print(f"jaxrl: error: {error}", file=sys.stderr)
        return 2
    except TrainingDiverged as error:
        print(f"jaxrl: error: {error}", file=sys.stderr)
        return 3
    except KeyboardInterrupt as interrupt:
        # The last finished checkpoint is intact (orbax renames a step's folder into place
        # only when it is complete), so the run can go on from it.
        run_dir = getattr(interrupt, "run_dir", "RUN_DIR")
        print(f"jaxrl: interrupted; continue the run with --resume {run_dir} (its last "
              f"finished checkpoint is intact).", file=sys.stderr)
        return 130
    seconds = time.perf_counter() - start
    episode_return = np.asarray(result.metrics.get("episode_return", np.zeros((0, 1))))
    tail = episode_return[-max(1, len(episode_return) // 10):]
    # Per seed, over the updates in which it finished an episode; seeds that finished none in
    # the tail are left out of the summary, which is printed when any seed has a value.
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a seed with no finished episode
        final = np.nanmean(tail, axis=0) if np.isfinite(tail).any() else None
    if final is not None and final.ndim == 1:
        final = final[np.isfinite(final)]
    print(f"run folder: {run_dir}")
    if algorithm.x_axis == "gradient_steps" and result.metrics:  # offline: gradient steps
        print(f"  {arguments.run.seeds} seed(s), {result.metrics['gradient_steps'][-1, 0]:,} "
              f"gradient steps each, {seconds:.1f} s including compilation")
        score = np.asarray(result.metrics["normalized_score"])[-1]
        if np.isfinite(score).all():
            print(f"  final normalised score: {score.mean():.1f} ± {score.std():.1f} over seeds")
    else:
        print(f"  {arguments.run.seeds} seed(s), {int(result.metrics['env_steps'][-1, 0]):,} env "
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
