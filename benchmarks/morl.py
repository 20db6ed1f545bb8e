"""Multi-objective RL against morl-baselines, in the same run: time to a hypervolume.

For each env, the project's learners and morl-baselines' (PyTorch, CPU, its own venv through
``benchmarks/morl_runner.py``) train in turn on this machine; each traces the hypervolume of the
undiscounted front of its current policies (deterministic episodes) against training wall time,
and the table gives the time each first reaches each threshold, ours / theirs. Ours is timed
including compilation (the first chunk of updates) and also without it; theirs excludes its
evaluations (the peer's own timing). Both hypervolumes are computed at the same reference point.

* ``deep-sea-treasure`` (MO-Gymnasium's ``deep-sea-treasure-v0``, the convex map; reference
  point (0, -25), morl-baselines' examples): ours: C-MORL (its preset), a PPO preference set, and
  Envelope Q-learning where ``algos/morl/envelope.py`` exists; theirs: Envelope and GPI-LS.
* ``mountaincar`` (``mo-mountaincar-v0``; reference point (-201, -201, -201), the lowest
  return less 1, since at morl-baselines' (-110, -110, -110) a 120-step solution scores 0):
  ours: a PPO preference set of 6; theirs: Envelope and GPI-LS.

    python benchmarks/morl.py [--envs deep-sea-treasure mountaincar] [--peer-steps 100000]
        [--peer-algos envelope gpi_ls] [--out runs/morl_benchmark]

Prints one table and writes ``morl_benchmark.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

ENVS = {
    # name: (our id, MO-Gymnasium id, reference point, thresholds as fractions of the front's HV)
    "deep-sea-treasure": ("mo/deep-sea-treasure", "deep-sea-treasure-v0", (0.0, -25.0)),
    "mountaincar": ("mo/mountaincar", "mo-mountaincar-v0", (-201.0, -201.0, -201.0)),
}
# Hypervolume thresholds: DST's as fractions of its true front's (401.8 at (0, -25)); for the
# mountain car (no known front) absolute values: 1e6 needs a policy reaching the goal (one that
# never does scores at most 40,401).
DST_FRACTIONS = (0.5, 0.9, 1.0)
MOUNTAINCAR_THRESHOLDS = (5.0e5, 1.0e6, 1.5e6)


def _trace_run(train, init_key, measure, chunks: int) -> dict:
    """Train ``train`` in ``chunks`` equal jitted pieces, measuring after each: returns the trace
    of (updates, env steps, wall time with and without compilation, hypervolume, front)."""
    import jax

    per_chunk = max(1, train.num_updates // chunks)

    def advance(state):
        return jax.lax.scan(lambda s, _: (train.update(s)[0], None), state, None,
                            length=per_chunk)[0]

    advance = jax.jit(advance)
    start = time.perf_counter()
    state = jax.block_until_ready(jax.jit(train.init)(init_key, train.default_hparams))
    elapsed, trace, first = time.perf_counter() - start, [], None
    done = 0
    while done + per_chunk <= train.num_updates:
        tick = time.perf_counter()
        state = jax.block_until_ready(advance(state))
        took = time.perf_counter() - tick
        first = took if first is None else first
        elapsed += took
        done += per_chunk
        hypervolume, front = measure(state)
        trace.append({"updates": done,
                      "env_steps": train.env_steps_before_updates
                      + done * train.env_steps_per_update,
                      "wall_time_s": elapsed, "hypervolume": hypervolume, "front": front})
    steady = np.median([b["wall_time_s"] - a["wall_time_s"] for a, b in zip(trace, trace[1:])]
                       ) if len(trace) > 1 else 0.0
    compile_s = max(0.0, first - steady) if first is not None else 0.0
    for point in trace:
        point["wall_time_without_compile_s"] = point["wall_time_s"] - compile_s
    return {"trace": trace, "compile_s": compile_s}


def _front_hv(returns, reference_point):
    from jaxrl_suite.run import pareto

    front = pareto.pareto_front(np.asarray(returns, np.float64))
    return float(pareto.hypervolume(front, reference_point)), front.tolist()


def ours(name: str, env_name: str, reference_point, seed: int, chunks: int) -> dict:
    import jax

    import jaxrl_suite
    from jaxrl_suite.algos import ppo
    from jaxrl_suite.algos.morl import cmorl, preference_set

    env_id = ENVS[env_name][0]
    env, env_params = jaxrl_suite.make(env_id)
    key = jax.random.key(seed)
    if name == "cmorl":
        config = cmorl.preset_config(env_id, reference_point=tuple(reference_point))
        train = cmorl.make_train(config, env, env_params)

        def measure(state):
            return _front_hv(cmorl.archive_front(state), reference_point)
    elif name == "ppo_set":
        if env_name == "mountaincar":
            learner = ppo.Config(total_steps=500_000, num_envs=16, num_steps=128,
                                 learning_rate=3e-3, entropy_coef=0.01, normalize_rewards=True)
            count = 6
        else:
            learner = ppo.Config(total_steps=200_000, num_envs=8, num_steps=64,
                                 learning_rate=1e-3, entropy_coef=0.05, normalize_rewards=True,
                                 hidden_sizes=(32, 32))
            count = 11
        train = preference_set.make_train(preference_set.Config(num_preferences=count), env,
                                          env_params, learner_config=learner)

        def measure(state):
            returns = preference_set.evaluate_front(train, state, jax.random.key(seed + 1))
            return _front_hv(returns, reference_point)
    elif name == "envelope":
        from jaxrl_suite.algos.morl import envelope

        config = envelope.preset_config(env_id)
        train = envelope.make_train(config, env, env_params)

        def measure(state):
            weights = _weights(len(reference_point))
            returns = envelope.evaluate_front(train, state, weights, jax.random.key(seed + 1))
            return _front_hv(returns, reference_point)
    else:
        raise ValueError(f"unknown learner {name!r}")
    out = _trace_run(train, key, measure, chunks)
    out.update(algo=name, side="ours")
    return out


def _weights(k: int):
    from jaxrl_suite.run import pareto

    return pareto.equally_spaced_weights(k, 100 if k == 2 else 21)


def peer(algo: str, env_name: str, reference_point, steps: int, seed: int,
         thresholds) -> dict:
    spec = importlib.util.spec_from_file_location("morl_runner", HERE / "morl_runner.py")
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    eval_every = max(1000, steps // 20)
    result = runner.run_peer(algo, ENVS[env_name][1], steps=steps, seed=seed,
                             eval_every=eval_every, thresholds=list(thresholds),
                             ref_point=list(reference_point))
    trace = [{"env_steps": p["env_steps"], "wall_time_s": p["wall_time_s"],
              "hypervolume": _front_hv(p["front"], reference_point)[0], "front": p["front"]}
             for p in result["trace"]]
    return {"algo": algo, "side": "morl-baselines", "trace": trace,
            "versions": result.get("versions"), "config": result.get("config")}


def time_to(trace, threshold, key="wall_time_s"):
    for point in trace:
        if point["hypervolume"] >= threshold * (1 - 1e-6):
            return point[key]
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=list(ENVS))
    parser.add_argument("--ours", nargs="+", default=["cmorl", "ppo_set", "envelope"])
    parser.add_argument("--peer-algos", nargs="*", default=["envelope", "gpi_ls"])
    parser.add_argument("--peer-steps", type=int, default=100_000)
    parser.add_argument("--chunks", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/morl_benchmark"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from jaxrl_suite.envs.mo import pareto_front
    from jaxrl_suite.run import pareto

    results = {}
    for env_name in args.envs:
        env_id, _, reference_point = ENVS[env_name]
        if env_name == "deep-sea-treasure":
            best = pareto.hypervolume(pareto_front(env_id), reference_point)
            thresholds = [round(f * best, 4) for f in DST_FRACTIONS]
        else:
            thresholds = list(MOUNTAINCAR_THRESHOLDS)
        runs = []
        for name in args.ours:
            if name == "envelope" and importlib.util.find_spec(
                    "jaxrl_suite.algos.morl.envelope") is None:
                continue
            if name == "cmorl" and env_name == "mountaincar":
                continue  # no C-MORL preset for it; the PPO set is the preference-vmapped PPO
            print(f"[{env_name}] ours: {name}", flush=True)
            runs.append(ours(name, env_name, reference_point, args.seed, args.chunks))
        for algo in args.peer_algos:
            print(f"[{env_name}] morl-baselines: {algo}", flush=True)
            runs.append(peer(algo, env_name, reference_point, args.peer_steps, args.seed,
                             thresholds))
        results[env_name] = {"thresholds": thresholds, "reference_point": reference_point,
                             "runs": runs}
        _print_table(env_name, thresholds, runs)
    (args.out / "morl_benchmark.json").write_text(json.dumps(results, indent=2))
    return 0


def _print_table(env_name, thresholds, runs) -> None:
    print(f"\n{env_name}: seconds to reach each hypervolume (ours: with compilation / without)")
    header = "| learner | final HV | " + " | ".join(f"HV {t:g}" for t in thresholds) + " |"
    print(header)
    print("|" + "---|" * (2 + len(thresholds)))
    for run in runs:
        trace = run["trace"]
        cells = []
        for threshold in thresholds:
            with_compile = time_to(trace, threshold)
            if with_compile is None:
                cells.append("not reached")
            elif run["side"] == "ours":
                without = time_to(trace, threshold, "wall_time_without_compile_s")
                cells.append(f"{with_compile:.1f} / {without:.1f}")
            else:
                cells.append(f"{with_compile:.1f}")
        final = trace[-1]["hypervolume"] if trace else float("nan")
        print(f"| {run['side']} {run['algo']} | {final:.4g} | " + " | ".join(cells) + " |")
    peers = [r for r in runs if r["side"] != "ours"]
    for run in [r for r in runs if r["side"] == "ours"]:
        for other in peers:
            ratios = []
            for threshold in thresholds:
                a, b = time_to(run["trace"], threshold), time_to(other["trace"], threshold)
                ratios.append("-" if a is None or b is None else f"{b / a:.1f}x")
            print(f"  {run['algo']} vs their {other['algo']} (their time / ours, with "
                  f"compilation): " + ", ".join(ratios))
    sys.stdout.flush()


if __name__ == "__main__":
    raise SystemExit(main())
