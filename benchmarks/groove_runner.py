"""Times the published GROOVE / LPG meta-training step: run in the peer's own virtualenv.

The peer is EmptyJackson/groove (https://github.com/EmptyJackson/groove), checked out, never
committed, under ``benchmarks/.groove``. It pins jax 0.4.13 / flax 0.6.11 / optax 0.1.5 /
evosax 0.1.4 / gymnax 0.0.6, which cannot share an environment with this project, so
``benchmarks/groove_peer.py`` starts this file with the interpreter of ``benchmarks/.venv-groove``.
It imports nothing from this project. Input is one JSON object, as the first argument
(``@file`` reads a file) or on stdin::

    {"groove_dir": "benchmarks/.groove",   # optional; default: .groove beside this file
     "num_agents": 8,                      # any argument of the peer's experiments/parse_args.py,
     "num_mini_batches": 1,                #   by its name; the rest keep the peer's defaults
     "env_workers": 64,
     "train_rollout_len": 20,
     "num_agent_updates": 5,               # K
     "env_mode": "all_shortlife",
     "lpg_gru_width": 256,
     "meta_steps": 20,                     # meta-steps in the timed, jitted loop
     "repeats": 2,                         # run time is the best of this many runs
     "seed": 0,
     "runs": [{"use_es": false}, {"use_es": true, "meta_steps": 2}]}   # optional

Each entry of ``runs`` is merged over the top-level keys and timed separately (without
``runs``: one run of the top-level keys). A run builds the peer's meta-training exactly as its
``train.py`` ``make_train`` does: ``create_lpg_train_state``, ``LevelSampler``,
``initialize_buffer``, ``initial_sample``, ``make_lpg_train_step``, then a ``jax.lax.scan`` of
``meta_steps`` iterations of ``_meta_train_loop`` (the LPG update, then ``level_sampler.sample``,
which replaces the agents whose lifetime is over). The initialisation is jitted and run once,
untimed; the loop is one jitted function of that state. It times the loop's compile
(``jax.jit(loop).lower(state).compile()``) and its run (best of ``repeats`` runs from the same
initial state, ``block_until_ready``), and reports meta-steps/s and agent updates/s:

* metagradient mode (``use_es`` false): meta-steps/s * num_agents * K;
* ES mode (``use_es`` true): the peer's train step trains a population of 2 * num_agents
  candidates (antithetic pairs) for a whole lifetime (``K`` is replaced by
  ``level_sampler.max_lifetime``), so meta-steps/s * 2 * num_agents * max_lifetime.

``env_steps_per_meta_step`` counts the env steps the peer's step takes (training rollouts, the
metagradient's extra rollout, the evaluation rollouts of ``eval_agent``). The last line of stdout
is ``GROOVE_RESULT {json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

RESULT_PREFIX = "GROOVE_RESULT "
HERE = Path(__file__).resolve().parent
DEFAULT_GROOVE_DIR = HERE / ".groove"
RUNNER_KEYS = ("groove_dir", "meta_steps", "repeats", "runs", "label")
PACKAGES = ("jax", "jaxlib", "flax", "optax", "chex", "evosax", "gymnax", "numpy", "scipy",
            "ml_dtypes")


def read_spec(argv: list[str]) -> dict:
    if len(argv) > 1:
        text = argv[1]
        if text.startswith("@"):
            with open(text[1:]) as handle:
                text = handle.read()
    else:
        text = sys.stdin.read()
    return json.loads(text)


def _plain(value):
    """JSON for numpy and jax scalars and arrays (the peer's hyperparameters are some of them)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def import_peer(groove_dir: Path):
    """The peer's modules (it imports its packages from its top level: ``from util import *``)."""
    if not (groove_dir / "meta" / "meta.py").exists():
        raise SystemExit(f"{groove_dir} holds no GROOVE checkout (meta/meta.py is missing).")
    sys.path.insert(0, str(groove_dir))
    from environments.level_sampler import LevelSampler
    from experiments.parse_args import parse_args
    from meta.meta import create_lpg_train_state, make_lpg_train_step

    return parse_args, LevelSampler, create_lpg_train_state, make_lpg_train_step


def peer_args(parse_args, overrides: dict) -> argparse.Namespace:
    """The peer's argparse defaults, with ``overrides`` set (names are checked against them)."""
    args = parse_args([])
    for name, value in overrides.items():
        if not hasattr(args, name):
            raise SystemExit(f"the peer has no argument {name!r} (experiments/parse_args.py).")
        setattr(args, name, value)
    if args.num_agents % args.num_mini_batches:
        raise SystemExit(f"num_agents ({args.num_agents}) must be divisible by num_mini_batches "
                         f"({args.num_mini_batches}), as the peer's parse_args requires.")
    return args


def make_init_and_loop(args, peer, meta_steps: int):
    """train.py's ``make_train`` split in two: the initial state, and the scanned meta loop."""
    import jax

    _, level_sampler_cls, create_lpg_train_state, make_lpg_train_step = peer
    level_sampler = level_sampler_cls(args)

    def init(rng):
        rng, lpg_rng, buffer_rng = jax.random.split(rng, 3)
        train_state = create_lpg_train_state(lpg_rng, args)
        level_buffer = level_sampler.initialize_buffer(buffer_rng)
        require_value_critic = not args.use_es
        rng, _rng = jax.random.split(rng)
        level_buffer, agent_states, value_critic_states = level_sampler.initial_sample(
            _rng, level_buffer, args.num_agents, require_value_critic
        )
        return rng, train_state, agent_states, value_critic_states, level_buffer

    lpg_train_step_fn = make_lpg_train_step(args, level_sampler)

    def _meta_train_loop(carry, _):  # train.py's loop body, unchanged
        rng, train_state, agent_states, value_critic_states, level_buffer = carry
        rng, _rng = jax.random.split(rng)
        train_state, agent_states, value_critic_states, metrics = lpg_train_step_fn(
            rng=_rng,
            lpg_train_state=train_state,
            agent_states=agent_states,
            value_critic_states=value_critic_states,
        )
        rng, _rng = jax.random.split(rng)
        level_buffer, agent_states, value_critic_states = level_sampler.sample(
            _rng, level_buffer, agent_states, value_critic_states
        )
        carry = (rng, train_state, agent_states, value_critic_states, level_buffer)
        return carry, metrics

    def loop(carry):
        return jax.lax.scan(_meta_train_loop, carry, None, length=meta_steps)

    return level_sampler, init, loop


def model_summary(args, level_sampler, state) -> dict:
    """Shapes of the peer's agent and LPG as built (read from the initial state)."""
    import jax
    import numpy as np

    _, train_state, agent_states, value_critic_states, _ = state
    lpg_params = train_state.params if not args.use_es else train_state.train_state.params

    def shapes(tree):
        flat = jax.tree_util.tree_flatten_with_path(tree)[0]
        return {jax.tree_util.keystr(path): list(np.shape(leaf)) for path, leaf in flat}

    def count(tree):
        return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(tree)))

    hypers = level_sampler.agent_hypers
    out = {
        "obs_shape": list(np.atleast_1d(level_sampler.obs_shape)),
        "num_actions": int(level_sampler.num_actions),
        "max_lifetime": int(level_sampler.max_lifetime),
        "eval_rollout_len": int(level_sampler.max_rollout_len),
        "agent_hypers": {
            "actor_net": list(hypers.actor_net), "critic_net": list(hypers.critic_net),
            "actor_learning_rate": hypers.actor_learning_rate,
            "critic_learning_rate": hypers.critic_learning_rate,
            "optimizer": hypers.optimizer, "max_grad_norm": hypers.max_grad_norm,
            "critic_dims": hypers.critic_dims,
        },
        # per-agent shapes: the leading agent axis is dropped
        "actor_params": {k: v[1:] for k, v in shapes(agent_states.actor_state.params).items()},
        "critic_params": {k: v[1:] for k, v in shapes(agent_states.critic_state.params).items()},
        "lpg_params": shapes(lpg_params),
        "lpg_param_count": count(lpg_params),
        "initial_lifetimes": np.asarray(agent_states.level.lifetime).tolist(),
        "initial_agent_steps": np.asarray(agent_states.actor_state.step).tolist(),
    }
    if value_critic_states is not None:
        out["value_critic_params"] = {k: v[1:]
                                      for k, v in shapes(value_critic_states.params).items()}
    return out


def env_steps_per_meta_step(args, level_sampler) -> dict:
    """Env steps one peer meta-step takes, from meta/train.py's rollouts."""
    workers, rollout = args.env_workers, args.train_rollout_len
    eval_len = int(level_sampler.max_rollout_len)
    if args.use_es:
        population = 2 * args.num_agents
        updates = int(level_sampler.max_lifetime)
        per_agent = {"train": updates * workers * rollout, "eval_agent": workers * eval_len}
        agents = population
    else:
        updates = args.num_agent_updates
        per_agent = {"train": updates * workers * rollout,
                     "metagradient_rollout": workers * rollout,
                     "eval_agent": 4 * eval_len}  # eval_agent(..., 4) in lpg_meta_grad_train_step
        agents = args.num_agents
    return {"agents_trained": agents, "agent_updates_per_agent": updates,
            "per_agent": per_agent, "total": agents * sum(per_agent.values())}


def last_metrics(args, metrics) -> dict:
    import numpy as np

    def last(x):
        return float(np.asarray(x)[-1])

    if args.use_es:
        return {"fitness_mean": last(metrics["fitness"]["mean"]),
                "fitness_max": last(metrics["fitness"]["max"])}
    return {"lpg_agent_return": last(metrics["lpg_agent_return"]),
            "lpg_loss": last(metrics["lpg_loss"])}


def time_run(peer, overrides: dict, meta_steps: int, repeats: int) -> dict:
    import jax

    args = peer_args(peer[0], overrides)
    level_sampler, init, loop = make_init_and_loop(args, peer, meta_steps)
    start = time.perf_counter()
    state = jax.block_until_ready(jax.jit(init)(jax.random.PRNGKey(args.seed)))
    init_s = time.perf_counter() - start
    summary = model_summary(args, level_sampler, state)

    start = time.perf_counter()
    compiled = jax.jit(loop).lower(state).compile()
    compile_s = time.perf_counter() - start
    run_times, metrics = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        (final_state, metrics) = jax.block_until_ready(compiled(state))
        run_times.append(time.perf_counter() - start)
    best = min(run_times)
    meta_steps_per_s = meta_steps / best
    steps = env_steps_per_meta_step(args, level_sampler)
    agent_updates = steps["agents_trained"] * steps["agent_updates_per_agent"]
    final_agent_steps = jax.device_get(final_state[2].actor_state.step).tolist()
    # How far the metagradient mode's value critics (used for the LPG loss's advantages) moved
    # from their initialisation over the timed loop (0.0 if they were never updated).
    value_critic_change = None
    if state[3] is not None:
        import numpy as np

        value_critic_change = max(
            float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
            for a, b in zip(jax.tree_util.tree_leaves(state[3].params),
                            jax.tree_util.tree_leaves(final_state[3].params)))
    return {
        "mode": "es" if args.use_es else "metagradient",
        "args": {name: getattr(args, name) for name in sorted(vars(args))},
        "meta_steps": meta_steps,
        "repeats": repeats,
        "init_s": init_s,
        "compile_s": compile_s,
        "run_s": best,
        "run_times_s": run_times,
        "meta_steps_per_s": meta_steps_per_s,
        "agent_updates_per_meta_step": agent_updates,
        "agent_updates_per_s": meta_steps_per_s * agent_updates,
        "env_steps_per_meta_step": steps,
        "env_steps_per_s": meta_steps_per_s * steps["total"],
        "last_metrics": last_metrics(args, metrics),
        "final_agent_steps": final_agent_steps,
        "value_critic_max_abs_change": value_critic_change,
        "model": summary,
    }


def main(argv: list[str]) -> int:
    spec = read_spec(argv)
    import jax

    try:  # a persistent compilation cache would hide compile time
        jax.config.update("jax_enable_compilation_cache", False)
    except (AttributeError, KeyError, ValueError):
        pass
    groove_dir = Path(spec.get("groove_dir") or DEFAULT_GROOVE_DIR).resolve()
    peer = import_peer(groove_dir)
    base = {k: v for k, v in spec.items() if k not in RUNNER_KEYS}
    runs = spec.get("runs") or [{}]
    results = []
    for run in runs:
        merged = {**spec, **run}
        overrides = {**base, **{k: v for k, v in run.items() if k not in RUNNER_KEYS}}
        result = time_run(peer, overrides, int(merged.get("meta_steps", 10)),
                          max(1, int(merged.get("repeats", 1))))
        if "label" in merged:
            result["label"] = merged["label"]
        results.append(result)
        print(f"groove {result['mode']}: compile {result['compile_s']:.1f} s, "
              f"{result['meta_steps_per_s']:.3f} meta-steps/s, "
              f"{result['agent_updates_per_s']:.1f} agent updates/s", file=sys.stderr, flush=True)
    commit = None
    head = groove_dir / ".groove_commit"
    if head.exists():
        commit = head.read_text().strip()
    out = {
        "peer": "EmptyJackson/groove",
        "peer_commit": commit,
        "groove_dir": str(groove_dir),
        "versions": {name: metadata.version(name) for name in PACKAGES},
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "devices": [str(device) for device in jax.devices()],
        "results": results,
    }
    print(RESULT_PREFIX + json.dumps(out, default=_plain), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
