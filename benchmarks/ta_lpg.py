"""TA-LPG at CPU scale: LPG's objective with lifetime inputs ``[n/N, log N]``, meta-trained by the
meta-gradient and by evolution (OpenAI-ES over whole lifetimes), then meta-tested across
lifetimes. The TA paper (Jackson et al. 2024) finds that ES discovers the time-dependent
schedules the truncated meta-gradient misses, so the ES-trained objective should hold up better
when the lifetime changes.

    python benchmarks/ta_lpg.py [--env-steps 8e6] [--population 16] [--lifetimes 10 40 160]
        [--json docs/meta/ta_lpg.json]

Both runs: the same objective network (``gru_width`` 32), tabular agents on the grid-world
``small`` distribution (``gridworld-small``), lifetimes log-uniform in ``[--min-lifetime,
--max-lifetime]``, the same population; each meta-trains on the same budget of agent env steps
(``--env-steps``; a meta-gradient step takes K = 5 updates of each agent, an ES generation
whole lifetimes, so the meta-gradient takes many more steps), its meta-steps and wall time
printed. The meta-test: ``--levels`` held-out levels (a key the
runs never used) x ``--seeds`` fresh agents per objective and lifetime, trained by the learned
objective and by A2C on the same keys; the final return of each. Every figure printed is
measured in this run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import jax
import numpy as np

import jaxrl_suite
from jaxrl_suite.meta import lpg
from jaxrl_suite.meta.evaluate import compare_rules


def meta_train(config: lpg.Config, env, params, env_steps: float, seed: int) -> tuple:
    """Meta-steps of ``config`` until its agents took ``env_steps``: the objective's params,
    the meta-steps taken, the compile and training seconds, the reports."""
    train = lpg.make_train(config, env, params)
    state = jax.jit(train.init)(jax.random.key(seed), train.default_hparams)
    start = time.perf_counter()
    step = jax.jit(train.update).lower(state).compile()
    compile_seconds = time.perf_counter() - start
    start, reports = time.perf_counter(), []
    printed = start
    while not reports or reports[-1]["env_steps"] < env_steps:
        state, report = step(state)
        reports.append({name: float(value) for name, value in jax.device_get(report).items()})
        if time.perf_counter() - printed > 30:  # a line every half minute
            printed = time.perf_counter()
            print(f"  {config.meta_optimizer} meta-step {len(reports)}: "
                  + ", ".join(f"{name} {value:.3f}" for name, value in reports[-1].items()
                              if name != "env_steps"), flush=True)
    return state.params, len(reports), compile_seconds, time.perf_counter() - start, reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-steps", type=float, default=8e6)
    parser.add_argument("--population", type=int, default=16)
    parser.add_argument("--min-lifetime", type=int, default=10)
    parser.add_argument("--max-lifetime", type=int, default=80)
    parser.add_argument("--lifetimes", type=int, nargs="+", default=[10, 40, 160])
    parser.add_argument("--levels", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default="")
    args = parser.parse_args()

    env, params = jaxrl_suite.make("gridworld-small")
    common = dict(population_size=args.population, num_envs=16, rollout_steps=20,
                  gru_width=32, lifetime=args.max_lifetime, min_lifetime=args.min_lifetime,
                  lifetime_inputs=True, eval_steps=100, buffer_size=64, meta_steps=100_000)
    configs = {
        "metagrad": lpg.Config(meta_optimizer="metagrad", inner_updates=5,
                               meta_learning_rate=1e-3, **common),
        "es": lpg.Config(meta_optimizer="es", inner_updates=args.min_lifetime, **common),
    }
    results = {"settings": vars(args), "runs": {}, "meta_test": {}}
    learned = {}
    for name, config in configs.items():
        print(f"TA-LPG by {name}: {args.env_steps:,.0f} agent env steps", flush=True)
        objective, steps, compile_s, train_s, reports = meta_train(config, env, params,
                                                                   args.env_steps, args.seed)
        learned[name] = objective
        results["runs"][name] = {"meta_steps": steps, "compile_seconds": compile_s,
                                 "train_seconds": train_s,
                                 "env_steps": reports[-1]["env_steps"] if reports else 0.0,
                                 "reports": reports}
        print(f"TA-LPG by {name}: {steps} meta-steps in {train_s:.0f} s (compiled in "
              f"{compile_s:.0f} s), {results['runs'][name]['env_steps']:,.0f} agent env steps",
              flush=True)

    levels = jax.jit(jax.vmap(env.sample_level, in_axes=(0, None)))(
        jax.random.split(jax.random.key(args.seed + 7919), args.levels), params)
    keys = jax.random.split(jax.random.key(args.seed + 10007), args.seeds)
    for lifetime in args.lifetimes:
        row = {}
        for name, config in configs.items():
            out = compare_rules(learned[name], dataclasses.replace(config, lifetime=lifetime),
                                env, params, levels, lifetime, keys)
            row[name] = out["lpg"].ravel().tolist()
            row["a2c"] = out["a2c"].ravel().tolist()  # the same keys for both runs' A2C
        results["meta_test"][str(lifetime)] = row
        print(f"lifetime {lifetime:4d}: " + ", ".join(
            f"{name} {np.mean(values):.3f} ± {np.std(values) / np.sqrt(len(values)):.3f}"
            for name, values in row.items()), flush=True)
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
