"""Times one rejax algorithm: run by ``benchmarks/offpolicy.py`` in rejax's own virtualenv.

rejax 0.1.3 needs ``gymnax<1``, which cannot share an environment with this project (gymnax 1.0),
so ``offpolicy.py`` starts this file with the rejax venv's interpreter. It imports nothing from
this project. Input is one JSON object, as the first argument or on stdin::

    {"algo": "sac",                       # dqn | sac | td3 (rejax.get_algo names)
     "env": "Pendulum-v1",                # a gymnax id
     "config": {...},                     # keyword arguments of rejax's Algo.create
     "networks": {"actor": {"hidden_layer_sizes": [64, 64]}},   # optional, see below
     "seeds": [1, 8],                     # seed counts (or one int); N > 1 is jax.vmap over keys
     "base_seed": 0,
     "repeats": 1}                        # run time is the best of this many runs

``networks`` sets fields of rejax's flax modules after ``Algo.create`` (``module.clone``):
rejax's DQN and TD3 ``create_agent`` hard-code ``hidden_layer_sizes=(64, 64)`` and fail when the
kwargs repeat it, so other widths are applied here. Keys are the algorithm's module fields
(``agent`` for DQN; ``actor`` and ``critic`` for SAC and TD3).

For each seed count it times the compile (``jax.jit(train).lower(keys).compile()``) and the run
(best of ``repeats``, ``block_until_ready``) separately and reads the final evaluation, the
returns of rejax's 128 evaluation episodes. Set ``eval_freq = total_timesteps`` and
``skip_initial_evaluation = True`` in ``config`` so that this is rejax's only evaluation. The
last line of stdout is ``REJAX_RESULT {json}``.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from importlib import metadata

RESULT_PREFIX = "REJAX_RESULT "


def read_spec(argv: list[str]) -> dict:
    if len(argv) > 1:
        text = argv[1]
        if text.startswith("@"):
            with open(text[1:]) as handle:
                text = handle.read()
    else:
        text = sys.stdin.read()
    return json.loads(text)


def module_summary(module) -> dict:
    """The settings of a rejax flax module that matter for a comparison."""
    cls = type(module)
    name = cls.__name__
    if name == "EpsilonGreedyPolicy":  # rejax's wrapper subclass of the Q-network class
        name = f"{name}({cls.__mro__[1].__name__})"
    summary = {"class": name}
    for name in ("hidden_layer_sizes", "action_dim", "log_std_range", "action_range"):
        value = getattr(module, name, None)
        if value is not None:
            summary[name] = _plain(value)
    activation = getattr(module, "activation", None)
    if activation is not None:
        summary["activation"] = getattr(activation, "__name__", repr(activation))
    return summary


def _plain(value):
    """JSON-friendly copy of a config value (numpy and jax scalars and arrays, tuples)."""
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, float) and value == float("inf"):
        return "inf"
    return value


def build(spec: dict):
    import rejax

    config = dict(spec["config"])
    algo_cls = rejax.get_algo(spec["algo"])
    algo = algo_cls.create(env=spec["env"], **config)
    networks = spec.get("networks") or {}
    for field, updates in networks.items():
        module = getattr(algo, field, None)
        if module is None:
            raise ValueError(f"rejax {spec['algo']} has no network field {field!r}.")
        updates = {name: tuple(value) if isinstance(value, list) else value
                   for name, value in updates.items()}
        algo = algo.replace(**{field: module.clone(**updates)})
    return algo


def resolved_config(algo, spec: dict) -> dict:
    """What rejax will actually run with: the given keys read back, the networks, the schedule."""
    resolved = {}
    for name in sorted(spec["config"]):
        if name.endswith("_kwargs") or name in ("agent", "hidden_layer_sizes"):
            continue
        resolved[name] = _plain(getattr(algo, name))
    for field in ("agent", "actor", "critic"):
        module = getattr(algo, field, None)
        if module is not None and hasattr(module, "apply"):
            resolved[f"network.{field}"] = module_summary(module)
    for name in ("num_epochs", "num_critics", "polyak", "target_update_freq", "ddqn",
                 "policy_delay", "normalize_observations", "normalize_rewards",
                 "target_entropy_ratio"):
        if hasattr(algo, name) and name not in resolved:
            resolved[name] = _plain(getattr(algo, name))
    return resolved


def final_returns(evaluation, batched: bool):
    """Per-seed mean return of the last evaluation: rejax's evaluation is (lengths, returns),
    each (num_evals, 128), with a leading seed axis under vmap."""
    import numpy as np

    _, returns = evaluation
    returns = np.asarray(returns)
    if not batched:
        returns = returns[None]
    return returns[:, -1, :].mean(axis=-1), returns.shape[-1], returns.shape[1]


def time_seeds(algo, num_seeds: int, base_seed: int, repeats: int) -> dict:
    import jax

    key = jax.random.PRNGKey(base_seed)
    keys = jax.random.split(key, num_seeds)
    if num_seeds == 1:
        function, argument = algo.train, keys[0]
    else:
        function, argument = jax.vmap(algo.train), keys
    start = time.perf_counter()
    compiled = jax.jit(function).lower(argument).compile()
    compile_s = time.perf_counter() - start
    run_times, output = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        output = jax.block_until_ready(compiled(argument))
        run_times.append(time.perf_counter() - start)
    per_seed, episodes, num_evals = final_returns(output[1], batched=num_seeds > 1)
    return {
        "seeds": num_seeds,
        "compile_s": compile_s,
        "run_s": min(run_times),
        "run_times_s": run_times,
        "final_return": float(per_seed.mean()),
        "final_return_per_seed": [float(x) for x in per_seed],
        "eval_episodes": int(episodes),
        "num_evaluations": int(num_evals),
    }


def main(argv: list[str]) -> int:
    spec = read_spec(argv)
    import jax

    try:  # a persistent compilation cache would hide compile time
        jax.config.update("jax_enable_compilation_cache", False)
    except (AttributeError, KeyError, ValueError):
        pass
    seeds = spec.get("seeds", [1])
    seeds = [seeds] if isinstance(seeds, int) else list(seeds)
    algo = build(spec)
    out = {
        "algo": spec["algo"],
        "env": spec["env"],
        "config": resolved_config(algo, spec),
        "versions": {name: metadata.version(name)
                     for name in ("rejax", "gymnax", "jax", "jaxlib", "flax", "optax")},
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "devices": [str(device) for device in jax.devices()],
        "results": [time_seeds(algo, int(n), int(spec.get("base_seed", 0)),
                               max(1, int(spec.get("repeats", 1)))) for n in seeds],
    }
    print(RESULT_PREFIX + json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
