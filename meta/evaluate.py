"""Meta-testing: fresh agents trained by a learned objective, beside A2C at the same budget.

``jaxrl meta eval RUN_DIR --on named heldout minatar`` restores the objective of a finished (or
checkpointed) LPG run and, for each target, trains ``--seeds`` fresh agents with it and as many
with A2C, the same seeds (keys) for both, for the same number of updates; then evaluates each
agent's final policy (the mean return of a fresh episode in each of its envs). Targets:

* ``named``: the grid world's named reference levels (``gridworld/<name>``), each for its
  recommended lifetime; the optimal return (value iteration) beside where it applies.
* ``heldout``: ``--levels`` levels sampled from the run's own distribution with a key the run
  never used, one agent per level and seed, for the run's lifetime.
* ``minatar``: gymnax MinAtar Breakout, Asterix, Freeway and SpaceInvaders with MLP agents, for
  ``--minatar-updates`` updates.
* any registered env id.

Written to ``RUN_DIR/meta_eval/``: ``results.json``, ``results.md`` (a table per target) and a
plot per target of both rules' training returns against updates.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

import jaxrl_suite
from jaxrl_suite.env.levels import is_level_env
from jaxrl_suite.meta import lpg
from jaxrl_suite.meta.agent import AGENT_PRESETS, AgentConfig, make_agent

__all__ = ["MINATAR_IDS", "compare_rules", "evaluate_run", "load_objective", "main",
           "make_comparison", "summarize_comparison"]

MINATAR_IDS = ("gymnax/Breakout-MinAtar", "gymnax/Asterix-MinAtar", "gymnax/Freeway-MinAtar",
               "gymnax/SpaceInvaders-MinAtar")
GROUPS = ("named", "heldout", "minatar")


def make_comparison(config: lpg.Config, env: Any, env_params: Any, num_updates: int,
                    agent: AgentConfig | None = None, with_levels: bool = True):
    """A jitted ``(params, levels, keys) -> {"learned": (final, curves), "a2c": ...}`` that
    trains agents by the learned objective ``params`` and by A2C, one per level and key, the
    same keys for both; compiled once, for any objective params of ``config``'s network.

    ``final`` is ``(L, S)`` (levels, keys) final returns, ``curves`` ``(L, S, num_updates)``
    training returns. ``with_levels`` False: an env without levels (``levels`` is ignored;
    ``L`` is 1)."""
    agent_config = lpg.agent_config(config) if agent is None else agent
    learner = make_agent(agent_config, env, env_params)
    _, objective = lpg.make_objective(config)

    def one(params, level, key, rule):
        init_key, train_key, eval_key = jax.random.split(key, 3)
        state = learner.init(init_key, level, num_updates, rule)
        state, metrics = learner.train(state, train_key, num_updates, rule, objective, params)
        return learner.evaluate(state, eval_key), metrics["episode_return"]

    def both(params, level, key):
        return {rule: one(params, level, key, rule) for rule in ("learned", "a2c")}

    if not with_levels:
        return jax.jit(lambda params, levels, keys: jax.tree.map(
            lambda x: x[None], jax.vmap(lambda key: both(params, None, key))(keys)))
    return jax.jit(lambda params, levels, keys: jax.vmap(
        lambda level: jax.vmap(lambda key: both(params, level, key))(keys))(levels))


def summarize_comparison(out: dict[str, Any]) -> dict[str, np.ndarray]:
    """``{"lpg": (L, S), "a2c": (L, S)}`` final returns and ``"lpg_curve"``/``"a2c_curve"``
    ``(num_updates,)`` mean training returns (NaN where no episode ended) of a comparison."""
    result = {}
    for rule, name in (("learned", "lpg"), ("a2c", "a2c")):
        final, curves = out[rule]
        result[name] = np.asarray(final)
        curves = np.asarray(curves)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an update where none ended
            result[f"{name}_curve"] = np.nanmean(curves.reshape(-1, curves.shape[-1]), axis=0)
    return result


def compare_rules(params: Any, config: lpg.Config, env: Any, env_params: Any,
                  levels: Any, num_updates: int, keys: jax.Array,
                  agent: AgentConfig | None = None) -> dict[str, np.ndarray]:
    """Train agents by the learned objective (``params``) and by A2C, one per level and key.

    Args:
      params: the objective network's parameters.
      config: the LPG run's config (the objective network's shape; the agents' settings unless
        ``agent`` is given).
      env, env_params: the env the agents live on.
      levels: a stacked batch of ``L`` levels of a level env, or None for an env without levels.
      num_updates: each agent's updates (its lifetime).
      keys: ``(S,)`` keys, the same for both rules.
      agent: the agents' ``AgentConfig`` (default ``lpg.agent_config(config)``).

    Returns:
      ``summarize_comparison``'s dict.
    """
    compare = make_comparison(config, env, env_params, num_updates, agent,
                              with_levels=levels is not None)
    return summarize_comparison(compare(params, levels, keys))


def load_objective(run_dir: str | Path) -> tuple[Any, lpg.Config, Any, int]:
    """``(params, config, options, meta_step)`` of an LPG run folder's newest checkpoint (the
    first seed's objective). A folder of another kind is refused in plain words."""
    from jaxrl_suite.run.checkpoints import Checkpointer, config_fingerprint
    from jaxrl_suite.run.folder import load_run
    from jaxrl_suite.run.options import seed_keys

    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not config_path.exists():
        raise ValueError(f"{run_dir} is not a run folder: it has no config.json.")
    algo = json.loads(config_path.read_text())["run"].get("algo")
    if algo != "lpg":
        raise ValueError(f"jaxrl meta eval tests a learned objective: {run_dir} is a run of "
                         f"{algo!r}, not of lpg (`jaxrl meta lpg` makes one; `jaxrl eval` "
                         f"evaluates a {algo} run).")
    spec, config, options, record = load_run(run_dir)
    env, env_params = jaxrl_suite.make(options.env)
    train = spec.make_train(config, env, env_params)
    like = train.initial_states(seed_keys(options))  # the checkpoint's structure and shapes
    checkpointer = Checkpointer(run_dir / "checkpoints")
    try:
        if checkpointer.latest_update() is None:
            raise ValueError(f"{run_dir} has no checkpoint yet: nothing to evaluate.")
        states, update = checkpointer.restore(like, config_fingerprint(record))
    finally:
        checkpointer.close()
    return jax.tree.map(lambda x: x[0], states.params), config, options, update


def _named_targets() -> list[tuple[str, str, int]]:
    from jaxrl_suite.envs import gridworld

    return [(f"gridworld/{name}", name, int(gridworld.named_level_info(name)["lifetime"]))
            for name in gridworld.named_level_names()]


def _optimal_return(env: Any, level: Any) -> float | None:
    try:
        from jaxrl_suite.envs import gridworld
    except ImportError:  # pragma: no cover - the grid world ships with the project
        return None
    raw = env.unwrapped
    if not isinstance(raw, gridworld.GridWorld) or bool(np.asarray(level.random_respawn)):
        return None
    return float(gridworld.optimal_return(raw, level))  # its horizon is static: not jitted here


def _summary(values: np.ndarray) -> dict[str, float]:
    per_seed = values.mean(axis=0)  # over levels
    return {"mean": float(values.mean()), "std_over_seeds": float(per_seed.std())}


def evaluate_run(run_dir: str | Path, targets: Sequence[str] = ("named", "heldout"),
                 seeds: int = 4, levels: int = 16, minatar_updates: int = 500,
                 seed: int = 0, named_updates: int | None = None) -> dict[str, Any]:
    """Meta-test the objective of ``run_dir`` on ``targets`` (module docstring); writes and
    returns the results. ``named_updates`` caps the named levels' lifetimes (their
    recommended 2,500 and 25,000 updates take hours on a CPU)."""
    params, config, options, meta_step = load_objective(run_dir)
    keys = jax.random.split(jax.random.key(seed + 10_007), seeds)
    results: dict[str, Any] = {"run": str(run_dir), "meta_step": meta_step, "seeds": seeds,
                               "targets": {}}
    expanded: list[tuple[str, str, int | None, str]] = []
    for target in targets:
        if target == "named":
            expanded += [(env_id, name, life, "named") for env_id, name, life in _named_targets()]
        elif target == "heldout":
            expanded.append((options.env, f"heldout-{options.env}", None, "heldout"))
        elif target == "minatar":
            expanded += [(env_id, env_id.split("/")[-1], None, "minatar")
                         for env_id in MINATAR_IDS]
        else:
            expanded.append((target, target, None, "env"))
    for env_id, name, lifetime, kind in expanded:
        env, env_params = jaxrl_suite.make(env_id)
        agent = None
        if kind == "minatar" or (kind == "env" and not is_level_env(env)):
            agent = dataclasses.replace(lpg.agent_config(config), **AGENT_PRESETS["mlp"])
            batch, updates = None, minatar_updates
        elif kind == "heldout":
            level_keys = jax.random.split(jax.random.key(seed + 99_991), levels)
            batch = jax.vmap(env.sample_level, in_axes=(0, None))(level_keys, env_params)
            updates = config.lifetime
        else:
            batch = jax.tree.map(lambda x: x[None], env.sample_level(jax.random.key(0),
                                                                     env_params))
            updates = lifetime or config.lifetime
            if named_updates is not None:
                updates = min(updates, named_updates)
        if batch is not None and hasattr(batch, "episode_length"):
            # Each agent's evaluation holds its level's whole first episode.
            longest = int(np.asarray(batch.episode_length).max())
            agent = dataclasses.replace(agent or lpg.agent_config(config),
                                        eval_steps=max(config.eval_steps, longest))
        outcome = compare_rules(params, config, env, env_params, batch, updates, keys, agent)
        entry = {"env": env_id, "updates": updates, "lpg": _summary(outcome["lpg"]),
                 "a2c": _summary(outcome["a2c"]),
                 "lpg_curve": [None if math.isnan(v) else float(v) for v in outcome["lpg_curve"]],
                 "a2c_curve": [None if math.isnan(v) else float(v) for v in outcome["a2c_curve"]]}
        if kind in ("named", "env") and batch is not None:
            entry["optimal"] = _optimal_return(env, jax.tree.map(lambda x: x[0], batch))
        results["targets"][name] = entry
        print(f"{name}: LPG {entry['lpg']['mean']:.3f} ± {entry['lpg']['std_over_seeds']:.3f}, "
              f"A2C {entry['a2c']['mean']:.3f} ± {entry['a2c']['std_over_seeds']:.3f} "
              f"({updates} updates, {seeds} seeds)", flush=True)
    write_results(Path(run_dir) / "meta_eval", results)
    return results


def write_results(out_dir: Path, results: dict[str, Any]) -> None:
    """``results.json``, ``results.md`` and one PNG per target under ``out_dir``."""
    from matplotlib.figure import Figure

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    lines = [f"Meta-test of {results['run']} (meta-step {results['meta_step']}), "
             f"{results['seeds']} seeds; final return, mean ± std over seeds.", "",
             "| target | updates | LPG | A2C | optimal |", "|---|---|---|---|---|"]
    for name, entry in results["targets"].items():
        optimal = entry.get("optimal")
        lines.append(f"| {name} | {entry['updates']} | {entry['lpg']['mean']:.3f} ± "
                     f"{entry['lpg']['std_over_seeds']:.3f} | {entry['a2c']['mean']:.3f} ± "
                     f"{entry['a2c']['std_over_seeds']:.3f} | "
                     f"{'' if optimal is None else f'{optimal:.3f}'} |")
        figure = Figure(figsize=(5, 3.5))
        axis = figure.subplots()
        for rule in ("lpg", "a2c"):
            curve = np.array([np.nan if v is None else v for v in entry[f"{rule}_curve"]])
            axis.plot(np.arange(1, len(curve) + 1), curve, label=rule.upper())
        axis.set_title(name)
        axis.set_xlabel("agent updates")
        axis.set_ylabel("training episode return")
        axis.legend()
        axis.grid(alpha=0.3)
        figure.tight_layout()
        figure.savefig(out_dir / f"{name.replace('/', '_')}.png", dpi=90)
    (out_dir / "results.md").write_text("\n".join(lines) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jaxrl meta eval", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="an LPG run folder (jaxrl meta lpg made it)")
    parser.add_argument("--on", nargs="+", default=["named", "heldout"],
                        help="targets: named, heldout, minatar, or env ids (default: named "
                             "heldout)")
    parser.add_argument("--seeds", type=int, default=4, help="agents per rule and level")
    parser.add_argument("--levels", type=int, default=16, help="held-out levels")
    parser.add_argument("--minatar-updates", type=int, default=500,
                        help="updates of each MinAtar agent")
    parser.add_argument("--named-updates", type=int, default=None,
                        help="cap the named levels' lifetimes (default: each level's own)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    for name in ("seeds", "levels", "minatar_updates", "named_updates"):
        if getattr(args, name) is None:
            continue
        if getattr(args, name) < 1:
            print(f"jaxrl: error: --{name.replace('_', '-')} must be >= 1; got "
                  f"{getattr(args, name)}.", file=sys.stderr)
            return 2
    try:
        evaluate_run(args.run_dir, args.on, args.seeds, args.levels, args.minatar_updates,
                     args.seed, args.named_updates)
    except ValueError as error:
        print(f"jaxrl: error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {Path(args.run_dir) / 'meta_eval'}")
    return 0
