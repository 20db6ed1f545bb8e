"""DQN, SAC and TD3: ours against rejax, same hyperparameters, same machine, one run.

    python benchmarks/offpolicy.py [--algos dqn,sac,td3] [--seeds 1,8] [--repeats 1]
                                   [--rejax-python PATH]

Pairs: DQN on gymnax CartPole-v1, SAC and TD3 on gymnax Pendulum-v1. Ours runs our preset for
that env (``preset_config("gymnax/<env>")``); rejax (0.1.3) runs the same settings translated
to its config (``translate_*`` below; what cannot be matched is printed as a note). For each
seed count (N > 1 seeds is ``jax.vmap`` over keys, one jit) it times the compile
(``jax.jit(f).lower(keys).compile()``) and the run (best of ``--repeats``, compile excluded)
separately and prints both sides, the ratios ours / rejax and the final returns.

Evaluation is part of the timed run on both sides: rejax is set to ``eval_freq =
total_timesteps`` with ``skip_initial_evaluation``, so it runs exactly one evaluation of 128
episodes at the end; ours runs ``train`` then ``jaxrl_suite.run.evaluation.evaluate`` of 128
deterministic episodes on the unwrapped env inside the same jitted function.

rejax 0.1.3 needs ``gymnax<1``, so it runs in its own virtualenv, in a subprocess
(``benchmarks/rejax_runner.py``), one algorithm at a time and never concurrently with ours.
``--rejax-python`` names an interpreter that has rejax; without it the venv
``benchmarks/.venv-rejax`` is used and created (``python -m venv`` plus ``pip install
rejax==0.1.3 "gymnax<1" jax==<ours> jaxlib==<ours>``) when missing.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import math
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from jaxrl_suite.run.sharding import seed_mesh, shard_seeds, use_all_cpu_cores

use_all_cpu_cores()  # one XLA device per core, as the jaxrl command does (before JAX starts)

import jax  # noqa: E402
import numpy as np  # noqa: E402

import jaxrl_suite  # noqa: E402
from jaxrl_suite.env import spaces  # noqa: E402
from jaxrl_suite.run.evaluation import evaluate  # noqa: E402

HERE = Path(__file__).resolve().parent
RUNNER = HERE / "rejax_runner.py"
DEFAULT_REJAX_VENV = HERE / ".venv-rejax"
RESULT_PREFIX = "REJAX_RESULT "
EVAL_EPISODES = 128  # rejax's evaluation size (fixed in its Algorithm.create)

# Which env each algorithm is compared on (gymnax id, as rejax names it).
PAIRS = {"dqn": "CartPole-v1", "sac": "Pendulum-v1", "td3": "Pendulum-v1"}

# Our activation names -> flax.linen function names (rejax looks them up with getattr(nn, ...)).
ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "gelu": "gelu", "silu": "swish", "elu": "elu"}


class MappingError(ValueError):
    """Our config cannot be expressed as a rejax config."""


# --- ours -> rejax ------------------------------------------------------------------------------
def get(config: Any, name: str) -> Any:
    """``config.name``, or a clear error naming the missing field."""
    names = [field.name for field in dataclasses.fields(config)]
    if name not in names:
        raise MappingError(
            f"{type(config).__module__}.{type(config).__name__} has no field {name!r}, which the "
            f"rejax mapping needs; its fields are: {', '.join(names)}."
        )
    return getattr(config, name)


def get_optional(config: Any, name: str, default: Any) -> Any:
    names = [field.name for field in dataclasses.fields(config)]
    return getattr(config, name) if name in names else default


def activation(config: Any) -> str:
    name = get(config, "activation")
    if name not in ACTIVATIONS:
        raise MappingError(f"activation {name!r} has no flax.linen equivalent here "
                           f"(known: {', '.join(ACTIVATIONS)}).")
    return ACTIVATIONS[name]


def grad_clip(config: Any, notes: list[str]) -> float:
    """rejax's ``max_grad_norm`` (its ``optax.clip``: element-wise, not a global norm)."""
    value = get_optional(config, "max_grad_norm", None)
    if value is None or value <= 0 or not math.isfinite(value):  # ours: 0 (or None) is no clip
        return math.inf
    notes.append(f"max_grad_norm={value}: rejax applies it as optax.clip (each gradient element "
                 f"clipped to +-{value}), not as a clip of the global norm.")
    return float(value)


def shared_config(config: Any) -> dict[str, Any]:
    total = get(config, "total_steps")
    return {
        "total_timesteps": total,
        "eval_freq": total,  # one evaluation, at the end
        "skip_initial_evaluation": True,
        "num_envs": get(config, "num_envs"),
        "buffer_size": get(config, "buffer_size"),
        "fill_buffer": get(config, "learning_starts"),
        "batch_size": get(config, "batch_size"),
        "gamma": get(config, "gamma"),
        "polyak": 1.0 - get(config, "tau"),
        "normalize_observations": False,
        "normalize_rewards": False,
    }


def one_learning_rate(config: Any, names: tuple[str, ...], use: str, notes: list[str]) -> float:
    rates = {name: get(config, name) for name in names}
    if len(set(rates.values())) > 1:
        notes.append(f"rejax has one learning rate for all networks; ours differ "
                     f"({', '.join(f'{k}={v}' for k, v in rates.items())}): using {use}.")
        print(f"WARNING: {notes[-1]}", file=sys.stderr)
    return float(rates[use])


def half_range(env: Any, env_params: Any) -> float:
    """The action half-range ``(high - low) / 2``, which must be the same in every dimension:
    our noise scales are fractions of it, rejax's are in action units (one scalar)."""
    space = env.action_space(env_params)
    half = (np.asarray(space.high, np.float64) - np.asarray(space.low, np.float64)) / 2.0
    if not np.allclose(half, half.flat[0]):
        raise MappingError(f"rejax's noise scales are one scalar in action units; this env's "
                           f"action half-ranges differ per dimension: {half}.")
    return float(half.flat[0])


def translate_dqn(config, env, env_params) -> tuple[dict, dict, list[str]]:
    notes: list[str] = []
    if get(config, "n_step") != 1:
        raise MappingError(f"rejax's DQN has one-step targets only; ours has n_step="
                           f"{config.n_step}.")
    if get(config, "prioritized"):
        raise MappingError("rejax's DQN has no prioritized replay; set prioritized=False.")
    train_frequency = get(config, "train_frequency")
    gradient_steps = get(config, "gradient_steps")
    if train_frequency != 1:
        if gradient_steps % train_frequency:
            raise MappingError(
                f"rejax's DQN takes one vectorised env step per iteration; ours takes "
                f"train_frequency={train_frequency} steps per {gradient_steps} gradient steps, "
                f"which is no whole number of gradient steps per env step."
            )
        notes.append(f"train_frequency={train_frequency}: rejax interleaves "
                     f"{gradient_steps // train_frequency} gradient step(s) after every env step "
                     f"instead of {gradient_steps} after every {train_frequency} (same ratio).")
    steps_per_update = get(config, "num_envs") * train_frequency
    rejax = {
        **shared_config(config),
        "learning_rate": float(get(config, "learning_rate")),
        "num_epochs": max(1, gradient_steps // train_frequency),
        "target_update_freq": get(config, "target_update_interval") * steps_per_update,
        "eps_start": float(get(config, "epsilon_start")),
        "eps_end": float(get(config, "epsilon_end")),
        "exploration_fraction": float(get(config, "exploration_fraction")),
        "ddqn": bool(get(config, "double_q")),
        "agent": "DuelingQNetwork" if get(config, "dueling") else "QNetwork",
        "agent_kwargs": {"activation": activation(config)},
        "max_grad_norm": grad_clip(config, notes),
    }
    # rejax's DQN create_agent hard-codes hidden_layer_sizes=(64, 64): set by the runner.
    networks = {"agent": {"hidden_layer_sizes": list(get(config, "hidden_sizes"))}}
    if get_optional(config, "huber_loss", False):
        notes.append("ours uses the Huber TD loss (huber_loss=True); rejax's DQN always uses "
                     "the squared error (optax.l2_loss), which cannot be configured.")
    notes.append("rejax's greedy evaluation still acts epsilon-greedy with epsilon=0.005.")
    return rejax, networks, notes


def translate_sac(config, env, env_params) -> tuple[dict, dict, list[str]]:
    notes: list[str] = []
    if get(config, "train_frequency") != 1:
        raise MappingError(f"rejax's SAC takes one vectorised env step per iteration; ours has "
                           f"train_frequency={config.train_frequency} (must be 1).")
    learning_rate = one_learning_rate(
        config, ("actor_learning_rate", "critic_learning_rate", "alpha_learning_rate"),
        "critic_learning_rate", notes)
    if not get(config, "autotune_alpha") or get(config, "initial_alpha") != 1.0:
        notes.append(f"rejax always tunes alpha from 1.0; ours has autotune_alpha="
                     f"{config.autotune_alpha}, initial_alpha={config.initial_alpha}.")
    discrete = isinstance(env.action_space(env_params), spaces.Discrete)
    scale = get(config, "target_entropy_scale")
    if not discrete and scale != 1.0:
        notes.append(f"rejax's continuous target entropy is -action_dim; ours is scaled by "
                     f"target_entropy_scale={scale}.")
    gradient_steps = get(config, "gradient_steps")
    if gradient_steps > 1:
        notes.append(f"gradient_steps={gradient_steps}: rejax updates the target critics once "
                     f"per iteration, ours after every gradient step.")
    rejax = {
        **shared_config(config),
        "learning_rate": learning_rate,
        "num_epochs": gradient_steps,
        "num_critics": get(config, "num_critics"),
        "target_entropy_ratio": float(scale),  # used by rejax for discrete actions only
        "hidden_layer_sizes": list(get(config, "hidden_sizes")),
        "agent_kwargs": {"activation": activation(config)},
        "max_grad_norm": math.inf,
    }
    notes.append(f"rejax clips the policy's log-std to [-10, 2]; ours to "
                 f"[{get(config, 'log_std_min')}, {get(config, 'log_std_max')}].")
    return rejax, {}, notes


def translate_td3(config, env, env_params) -> tuple[dict, dict, list[str]]:
    notes: list[str] = []
    policy_delay = get(config, "policy_delay")
    train_frequency = get(config, "train_frequency")
    gradient_steps = get(config, "gradient_steps")
    if train_frequency != policy_delay:
        raise MappingError(
            f"one rejax TD3 iteration is policy_delay env steps (each followed by num_epochs "
            f"critic steps), then the actor step; ours must have train_frequency == policy_delay "
            f"(got {train_frequency} and {policy_delay})."
        )
    if gradient_steps % policy_delay:
        raise MappingError(f"gradient_steps ({gradient_steps}) must be a multiple of policy_delay "
                           f"({policy_delay}).")
    if gradient_steps != policy_delay:
        notes.append(f"gradient_steps={gradient_steps} > policy_delay: rejax updates the targets "
                     f"once per iteration, ours after every actor step.")
    if get(config, "num_critics") != 2:
        raise MappingError(f"rejax's TD3 has exactly two critics; ours has num_critics="
                           f"{config.num_critics}.")
    learning_rate = one_learning_rate(config, ("actor_learning_rate", "critic_learning_rate"),
                                      "critic_learning_rate", notes)
    half = half_range(env, env_params)
    if half != 1.0:
        notes.append(f"our noise scales are fractions of the action half-range ({half}); "
                     f"rejax's are in action units, so they are multiplied by {half}.")
    rejax = {
        **shared_config(config),
        "learning_rate": learning_rate,
        "policy_delay": policy_delay,
        "num_epochs": gradient_steps // policy_delay,
        "num_critics": 2,
        "exploration_noise": float(get(config, "exploration_noise")) * half,
        "target_noise": float(get(config, "target_noise")) * half,
        "target_noise_clip": float(get(config, "target_noise_clip")) * half,
        "actor_kwargs": {"activation": activation(config)},
        "critic_kwargs": {"activation": activation(config)},
        "max_grad_norm": grad_clip(config, notes),
    }
    # rejax's TD3 create_agent hard-codes hidden_layer_sizes=(64, 64): set by the runner.
    sizes = list(get(config, "hidden_sizes"))
    networks = {"actor": {"hidden_layer_sizes": sizes}, "critic": {"hidden_layer_sizes": sizes}}
    notes.append("rejax's actor loss is the mean of both critics' Q; ours uses the first critic.")
    return rejax, networks, notes


TRANSLATE = {"dqn": translate_dqn, "sac": translate_sac, "td3": translate_td3}


def rejax_schedule(algo: str, rejax: dict) -> dict[str, int]:
    """Env steps, random-action env steps and gradient steps rejax will take (from its loops)."""
    n, fill, total = rejax["num_envs"], rejax["fill_buffer"], rejax["total_timesteps"]
    epochs = rejax["num_epochs"]
    if algo == "td3":
        delay = rejax["policy_delay"]
        iterations = -(-total // (n * delay))
        rounds = iterations * delay  # env step + critic steps; trained when step > fill
        untrained = min(rounds, fill // n + 1)
        actor_iterations = iterations - min(iterations, fill // (n * delay))
        return {"env_steps": rounds * n, "random_action_steps": untrained * n,
                "critic_steps": (rounds - untrained) * epochs,
                "actor_steps": actor_iterations * epochs}
    iterations = -(-total // n)
    # DQN tests global_step > fill_buffer before collecting, SAC after (rejax's train_iteration).
    untrained = min(iterations, fill // n + (0 if algo == "sac" else 1))
    return {"env_steps": iterations * n,
            # rejax's SAC fills the buffer with its (untrained) policy, not uniform actions.
            "random_action_steps": 0 if algo == "sac" else untrained * n,
            "gradient_steps": (iterations - untrained) * epochs}


def our_schedule(algo: str, config: Any, train: Any) -> dict[str, int]:
    env_steps = train.env_steps_before_updates + train.num_updates * train.env_steps_per_update
    out = {"env_steps": env_steps, "random_action_steps": train.env_steps_before_updates}
    if algo == "td3":
        out["critic_steps"] = train.num_updates * config.gradient_steps
        out["actor_steps"] = train.num_updates * config.gradient_steps // config.policy_delay
    else:
        out["gradient_steps"] = train.num_updates * config.gradient_steps
    return out


# --- timing -------------------------------------------------------------------------------------
def build_ours(algo: str, env_name: str):
    """Our module, preset config, env and the ``train`` function for this pair."""
    module = importlib.import_module(f"jaxrl_suite.algos.{algo}")
    env_id = f"gymnax/{env_name}"
    # rejax's DQN has one-step targets only, so the comparison runs ours one-step too (our
    # CartPole preset uses 3-step returns; its learning is tested in tests/test_offpolicy.py).
    overrides = {"n_step": 1} if algo == "dqn" else {}
    config = module.preset_config(env_id, **overrides)
    env, env_params = jaxrl_suite.make(env_id)
    return module, config, env, env_params, module.make_train(config, env, env_params)


def time_ours(algo: str, env_name: str, train: Any, seed_counts: list[int], base_seed: int,
              repeats: int) -> list[dict]:
    eval_env, eval_params = jaxrl_suite.make(f"gymnax/{env_name}", wrappers=False)

    def train_and_evaluate(key):
        result = train(key)
        policy = train.make_policy(result.state)
        returns = evaluate(policy, eval_env, eval_params, jax.random.fold_in(key, 1),
                           EVAL_EPISODES)["episode_return"]
        return result, returns

    results = []
    for num_seeds in seed_counts:
        keys = jax.random.split(jax.random.key(base_seed), num_seeds)
        # One device: what jax.jit(jax.vmap(train)) does by default. Sharded: the seeds split
        # over the CPU devices (one per core), as the jaxrl command's harness runs them.
        layouts = [("1 device", jax.device_put(keys, jax.devices()[0]))]
        mesh = seed_mesh(num_seeds)
        if num_seeds > 1 and mesh is not None:
            layouts.append((f"{mesh.size} devices", shard_seeds(keys, num_seeds)))
        for layout, placed in layouts:
            function, argument = ((train_and_evaluate, placed[0]) if num_seeds == 1
                                  else (jax.vmap(train_and_evaluate), placed))
            start = time.perf_counter()
            compiled = jax.jit(function).lower(argument).compile()
            compile_s = time.perf_counter() - start
            run_times, returns = [], None
            for _ in range(repeats):
                start = time.perf_counter()
                _, returns = jax.block_until_ready(compiled(argument))
                run_times.append(time.perf_counter() - start)
            per_seed = np.asarray(returns).reshape(num_seeds, EVAL_EPISODES).mean(axis=1)
            results.append({"seeds": num_seeds, "layout": layout, "compile_s": compile_s,
                            "run_s": min(run_times), "run_times_s": run_times,
                            "final_return": float(per_seed.mean()),
                            "final_return_per_seed": per_seed.tolist()})
            print(f"  ours  {algo} {num_seeds} seed(s), {layout}: compile {compile_s:.1f} s, "
                  f"run {min(run_times):.2f} s, return {per_seed.mean():.1f}", file=sys.stderr)
    return results


def time_rejax(python: str, spec: dict) -> dict:
    # rejax runs as it would by default: one CPU device (our device-count flag is not passed).
    environ = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "VIRTUAL_ENV", "XLA_FLAGS")}
    completed = subprocess.run([python, str(RUNNER)], input=json.dumps(spec), text=True,
                               capture_output=True, env=environ, cwd=HERE)
    lines = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if completed.returncode != 0 or not lines:
        sys.stderr.write(completed.stdout[-4000:] + completed.stderr[-4000:])
        raise RuntimeError(f"the rejax runner failed (exit {completed.returncode}) for "
                           f"{spec['algo']}; its output is above.")
    out = json.loads(lines[-1][len(RESULT_PREFIX):])
    for result in out["results"]:
        print(f"  rejax {spec['algo']} {result['seeds']} seed(s): compile "
              f"{result['compile_s']:.1f} s, run {result['run_s']:.2f} s, return "
              f"{result['final_return']:.1f}", file=sys.stderr)
    return out


# --- the rejax interpreter ----------------------------------------------------------------------
def rejax_works(python: str) -> bool:
    check = subprocess.run([python, "-c", "import rejax, gymnax"], capture_output=True)
    return check.returncode == 0


def ensure_rejax_python(path: str | None) -> str:
    if path is not None:
        if not rejax_works(path):
            raise SystemExit(f"{path} cannot import rejax and gymnax; pass an interpreter of a "
                             f"venv with rejax==0.1.3 and gymnax<1, or leave --rejax-python out "
                             f"to create {DEFAULT_REJAX_VENV}.")
        return path
    venv = DEFAULT_REJAX_VENV
    python = venv / "bin" / "python"
    if python.exists() and rejax_works(str(python)):
        return str(python)
    jax_version, jaxlib_version = metadata.version("jax"), metadata.version("jaxlib")
    print(f"Creating the rejax venv in {venv} (rejax 0.1.3, gymnax<1, jax {jax_version})...",
          file=sys.stderr)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "rejax==0.1.3", "gymnax<1",
                    f"jax=={jax_version}", f"jaxlib=={jaxlib_version}"], check=True)
    if not rejax_works(str(python)):
        raise SystemExit(f"{python} still cannot import rejax after installing it.")
    return str(python)


# --- report -------------------------------------------------------------------------------------
def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}" if theirs > 0 else "-"


def print_table(rows: list[dict]) -> None:
    header = ("algo", "env", "seeds", "ours on", "compile ours", "rejax", "ratio", "run ours",
              "rejax", "ratio", "return ours", "rejax")
    table = [header]
    for row in rows:
        ours, theirs = row["ours"], row["rejax"]
        table.append((
            row["algo"], row["env"], str(ours["seeds"]), ours["layout"],
            f"{ours['compile_s']:.1f} s", f"{theirs['compile_s']:.1f} s",
            ratio(ours["compile_s"], theirs["compile_s"]),
            f"{ours['run_s']:.2f} s", f"{theirs['run_s']:.2f} s",
            ratio(ours["run_s"], theirs["run_s"]),
            f"{ours['final_return']:.1f}", f"{theirs['final_return']:.1f}",
        ))
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for index, line in enumerate(table):
        print("  ".join(cell.rjust(width) if i > 1 else cell.ljust(width)
                        for i, (cell, width) in enumerate(zip(line, widths))))
        if index == 0:
            print("  ".join("-" * width for width in widths))


def print_settings(algo: str, env_name: str, config: Any, spec: dict, rejax_out: dict,
                   ours_schedule: dict, theirs_schedule: dict, notes: list[str]) -> None:
    print(f"\n{algo} on {env_name}")
    ours = dataclasses.asdict(config)
    print("  ours  (" + type(config).__module__ + ".preset_config('gymnax/" + env_name + "')): "
          + ", ".join(f"{k}={v}" for k, v in ours.items()))
    given = dict(spec["config"])
    print("  rejax (given to " + algo.upper() + ".create): "
          + ", ".join(f"{k}={v}" for k, v in given.items()))
    if spec["networks"]:
        print("  rejax networks set after create: "
              + ", ".join(f"{k}={v}" for k, v in spec["networks"].items()))
    read_back = {k: v for k, v in rejax_out["config"].items() if k.startswith("network.")
                 or k not in given}
    print("  rejax (read back): " + ", ".join(f"{k}={v}" for k, v in read_back.items()))
    print("  schedule ours:  " + ", ".join(f"{k}={v}" for k, v in ours_schedule.items()))
    print("  schedule rejax: " + ", ".join(f"{k}={v}" for k, v in theirs_schedule.items()))
    for note in notes:
        print(f"  note: {note}")


COMMON_NOTES = [
    "rejax uses gymnax 0.0.9's done = terminated | truncated, so it does not bootstrap at a "
    "time limit (Pendulum never terminates: every episode end is a truncation); ours bootstraps "
    "from info['final_observation'] unless terminated.",
    "rejax samples minibatches without replacement (jax.random.choice with p over the whole "
    "buffer); ours samples uniformly with replacement.",
]
SAC_NOTES = [
    "rejax's SAC acts with its (untrained) policy while filling the buffer, and starts learning "
    "once global_step > fill_buffer; ours fills learning_starts steps with uniform actions.",
    "rejax's SAC updates actor, then critics, then alpha (loss -alpha * (log_prob + target), so "
    "the log-alpha gradient is scaled by alpha); ours updates critics, then actor, then "
    "log-alpha with gradient -(target_entropy - entropy).",
    "rejax evaluates SAC with sampled (stochastic) actions; ours with the tanh of the mean.",
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algos", default="dqn,sac,td3",
                        help="comma-separated subset of dqn,sac,td3")
    parser.add_argument("--seeds", default="1,8", help="comma-separated seed counts")
    parser.add_argument("--repeats", type=int, default=1, help="run time is the best of N runs")
    parser.add_argument("--base-seed", type=int, default=0)
    parser.add_argument("--rejax-python", default=None,
                        help=f"python of a venv with rejax 0.1.3 and gymnax<1 (default: "
                             f"{DEFAULT_REJAX_VENV}/bin/python, created when missing)")
    args = parser.parse_args(argv)
    args.algos = [a.strip() for a in args.algos.split(",") if a.strip()]
    unknown = [a for a in args.algos if a not in PAIRS]
    if unknown:
        parser.error(f"unknown algorithm(s) {unknown}; choose from {', '.join(PAIRS)}")
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if not args.seeds or min(args.seeds) < 1 or args.repeats < 1:
        parser.error("--seeds must be positive integers and --repeats at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:  # a persistent compilation cache would hide compile time
        jax.config.update("jax_enable_compilation_cache", False)
    except (AttributeError, KeyError, ValueError):
        pass
    rejax_python = ensure_rejax_python(args.rejax_python)
    rows, settings, skipped, rejax_versions = [], [], [], None
    for algo in args.algos:
        env_name = PAIRS[algo]
        try:
            importlib.import_module(f"jaxrl_suite.algos.{algo}")
        except ModuleNotFoundError as error:
            skipped.append(f"{algo}: jaxrl_suite.algos.{algo} is not importable ({error})")
            print(f"SKIPPED {skipped[-1]}", file=sys.stderr)
            continue
        print(f"{algo} on {env_name}:", file=sys.stderr)
        _, config, env, env_params, train = build_ours(algo, env_name)
        rejax_config, networks, notes = TRANSLATE[algo](config, env, env_params)
        ours = time_ours(algo, env_name, train, args.seeds, args.base_seed, args.repeats)
        spec = {"algo": algo, "env": env_name, "config": rejax_config, "networks": networks,
                "seeds": args.seeds, "base_seed": args.base_seed, "repeats": args.repeats}
        theirs = time_rejax(rejax_python, spec)
        rejax_versions = theirs["versions"]
        by_seeds = {result["seeds"]: result for result in theirs["results"]}
        for ours_result in ours:  # rejax runs each seed count once, on one device
            rows.append({"algo": algo, "env": env_name, "ours": ours_result,
                         "rejax": by_seeds[ours_result["seeds"]]})
        notes = notes + (SAC_NOTES if algo == "sac" else [])
        settings.append((algo, env_name, config, spec, theirs, our_schedule(algo, config, train),
                         rejax_schedule(algo, rejax_config), notes))

    print("Off-policy algorithms: ours vs rejax, same hyperparameters, env steps and network "
          "sizes.")
    print(f"Machine: {platform.machine()} {platform.system()}, {os.cpu_count()} CPU cores, "
          f"devices {[str(d) for d in jax.devices()]}; Python {platform.python_version()}.")
    print(f"Ours:  jax {jax.__version__}, jaxlib {metadata.version('jaxlib')}, gymnax "
          f"{metadata.version('gymnax')}, in this process.")
    if rejax_versions:
        print("rejax: " + ", ".join(f"{k} {v}" for k, v in rejax_versions.items())
              + f", in a subprocess ({rejax_python}), run after ours, never concurrently.")
    print(f"Compile: jax.jit(f).lower(keys).compile(). Run: best of {args.repeats}, "
          f"block_until_ready, compile excluded. N seeds > 1: jax.vmap over N keys, one jit.")
    print("'ours on': 1 device is plain jax.jit(jax.vmap(train)) on one CPU device (as rejax "
          "runs); 'K devices' splits the seeds over K CPU devices, one per core, as the jaxrl "
          "command does (XLA runs these small matmuls on one core per device).")
    print(f"Both timed runs include a final evaluation of {EVAL_EPISODES} episodes (rejax: "
          f"eval_freq = total_timesteps, skip_initial_evaluation; ours: evaluate() of "
          f"{EVAL_EPISODES} deterministic episodes inside the same jit). Returns: that "
          f"evaluation's mean, averaged over seeds. Ratios are ours / rejax.\n")
    if rows:
        print_table(rows)
    for setting in settings:
        print_settings(*setting)
    if settings:
        print("\nAll pairs:")
        for note in COMMON_NOTES:
            print(f"  note: {note}")
    for line in skipped:
        print(f"\nSKIPPED {line}")
    return 1 if skipped else 0


if __name__ == "__main__":
    sys.exit(main())
