"""Meta-testing: fresh agents trained by a learned objective, beside baselines at the same budget.

``jaxrl meta eval RUN_DIR`` reads the algorithm a run folder's ``config.json`` records and tests
that run's learned objective; any other run folder is refused. Results go to
``RUN_DIR/meta_eval/`` (or ``--out-dir``): ``results.json`` and ``results.md`` (a table).

LPG runs (``jaxrl meta eval RUN_DIR --on named heldout minatar``): the objective of the newest
checkpoint; for each target ``--seeds`` fresh agents are trained with it and as many with A2C,
the same seeds (keys) for both, for the same number of updates; then each agent's final policy
is evaluated (the mean return of a fresh episode in each of its envs). Targets:

* ``named``: the grid world's named reference levels (``gridworld/<name>``), each for its
  recommended lifetime; the optimal return (value iteration) beside where it applies.
* ``heldout``: ``--levels`` levels sampled from the run's own distribution with a key the run
  never used, one agent per level and seed, for the run's lifetime.
* ``minatar``: gymnax MinAtar Breakout, Asterix, Freeway and SpaceInvaders with MLP agents, for
  ``--minatar-updates`` updates.
* any registered env id.

LPG runs also get a plot per target of both rules' training returns against updates.

LPO and TA-LPO runs (``jaxrl meta eval RUN_DIR --on ENV_ID... | minatar --horizons 0.25 1 4
--seeds N --objective-file objective|objective_best``; ``evaluate_lpo_run``): for each target
and each horizon multiple ``h``, ``--seeds`` fresh PPO agents are trained with each of three
policy objectives, PPO's clipped surrogate, DPO and the discovered drift (``lpo``, or
``ta_lpo`` for a time-aware run, its network from the run's ``objective.npz``), on the same
keys for all three, for ``h`` times the target's budget; each final policy plays the run's
``fitness_episodes`` evaluation episodes (sampled or greedy as the run's fitness was), and
their mean return is that seed's. The budget and the other PPO settings: on the meta-training
env, the meta-run's inner PPO (``lpo.inner_config``; ``h = 1`` is the horizon it was
discovered at) with the run's ``fitness_max_steps``; on any other env, that env's PPO preset
(``ppo.ALGORITHM.env_preset_config``, plain defaults where it has none: the run's inner
overrides were chosen for its own env) and its total steps, episodes up to the env's own limit;
with ``--transfer-budget meta`` every target takes the meta-run's inner PPO instead (its preset,
steps and envs, and its ``fitness_max_steps``): the transfer at the budget the drift was
discovered at, which is what a CPU can afford for the MinAtar games.
Targets: any registered env id, and ``minatar`` (the four ids of ``MINATAR_IDS``, PPO's MinAtar
preset); default the meta-training env. Besides ``results.json`` and ``results.md``,
``results.png``: the mean final return of each column per target and horizon, with the
standard error over seeds. Two compiled calls per target and horizon, each a
``vmap`` over the seeds' keys of a whole PPO run and its evaluation (``lpo.make_run_return``):
DPO's, and the learned objective's over two networks, the discovered one and the one at its
initialisation, whose learned term is 0 (PPO's clipped surrogate bit for bit): PPO's column.

OPEN runs (``evaluate_open_run``, the same flags but ``--objective-file``): the same targets,
horizons and budgets, two columns: PPO with Adam, its own optimiser, and PPO with the run's
discovered optimiser (``optimizer.npz``), the same keys for both.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import numbers
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jaxrl_suite
from jaxrl_suite.algos import ppo
from jaxrl_suite.env.levels import is_level_env
from jaxrl_suite.learn import objectives
from jaxrl_suite.meta import lpg, lpo
from jaxrl_suite.meta.agent import AGENT_PRESETS, AgentConfig, make_agent

__all__ = ["LPO_HORIZONS", "MINATAR_IDS", "compare_rules", "evaluate_lpo_run", "evaluate_run",
           "evaluate_open_run", "load_objective", "main", "make_comparison", "objective_returns",
           "plot_lpo_results", "run_algorithm", "summarize_comparison", "TRANSFER_BUDGETS"]

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


def run_algorithm(run_dir: str | Path) -> str | None:
    """The algorithm a run folder's ``config.json`` records (``run.algo``: ``"lpg"``,
    ``"lpo"``, ...). A folder without one is refused in plain words."""
    config_path = Path(run_dir) / "config.json"
    if not config_path.exists():
        raise ValueError(f"{run_dir} is not a run folder: it has no config.json.")
    return json.loads(config_path.read_text()).get("run", {}).get("algo")


def load_objective(run_dir: str | Path) -> tuple[Any, lpg.Config, Any, int]:
    """``(params, config, options, meta_step)`` of an LPG run folder's newest checkpoint (the
    first seed's objective). A folder of another kind is refused in plain words."""
    from jaxrl_suite.run.checkpoints import Checkpointer, config_fingerprint
    from jaxrl_suite.run.folder import load_run
    from jaxrl_suite.run.options import seed_keys

    run_dir = Path(run_dir)
    algo = run_algorithm(run_dir)
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


def _evaluation_keys(seed: int, seeds: int) -> jax.Array:
    """The ``(seeds,)`` keys of the fresh agents, one per seed, shared by every rule compared
    (and every target); a derivation the meta-runs' own keys never use."""
    return jax.random.split(jax.random.key(seed + 10_007), seeds)


def _summary(values: np.ndarray) -> dict[str, float]:
    per_seed = values.mean(axis=0)  # over levels
    return {"mean": float(values.mean()), "std_over_seeds": float(per_seed.std())}


def evaluate_run(run_dir: str | Path, targets: Sequence[str] = ("named", "heldout"),
                 seeds: int = 4, levels: int = 16, minatar_updates: int = 500,
                 seed: int = 0, named_updates: int | None = None,
                 out_dir: str | Path | None = None) -> dict[str, Any]:
    """Meta-test the objective of ``run_dir`` on ``targets`` (module docstring); writes and
    returns the results. ``named_updates`` caps the named levels' lifetimes (their
    recommended 2,500 and 25,000 updates take hours on a CPU)."""
    params, config, options, meta_step = load_objective(run_dir)
    keys = _evaluation_keys(seed, seeds)
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
    write_results(Path(out_dir) if out_dir else Path(run_dir) / "meta_eval", results)
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


# --- LPO and TA-LPO: the discovered drift beside PPO's and DPO's ------------------------------
LPO_HORIZONS = (0.25, 1.0, 4.0)
PPO_OBJECTIVE = "clipped_surrogate"  # ppo.Config's default objective
_OBJECTIVE_FILE = re.compile(r"objective(_best)?(_seed\d+)?")


def objective_returns(config: ppo.Config, env: Any, env_params: Any, keys: jax.Array,
                      episodes: int, deterministic: bool, max_steps: int | None,
                      drifts: Any = None, curriculum: lpo.Config | None = None) -> np.ndarray:
    """Final returns of fresh PPO agents trained by ``config`` (its objective, its
    ``total_steps``), one per key of ``keys`` ``(S,)``: each trains from its key and its final
    policy plays ``episodes`` episodes (``lpo.make_run_return``), the mean undiscounted return.
    ``(S,)`` float32; with ``drifts`` (a learned objective's drift networks stacked on a
    leading axis of ``D``) ``(D, S)``, each network on every key. One compiled call, a ``vmap``
    of the whole run. With ``curriculum`` (an LPO run's config with a ``curriculum``), each
    agent is the student of that UED run (``lpo.make_inner_train``)."""
    train = (ppo.make_train(config, env, env_params) if curriculum is None
             else lpo.make_inner_train(curriculum, config, env, env_params))
    run_return = lpo.make_run_return(train, env, env_params, episodes, deterministic, max_steps)
    hparams = train.default_hparams
    if drifts is None:
        return np.asarray(jax.jit(jax.vmap(run_return, in_axes=(None, 0)))(hparams, keys))

    def with_drift(drift, hparams, key):
        return run_return(lpo.with_objective(hparams, drift), key)

    over_keys = jax.vmap(with_drift, in_axes=(None, None, 0))
    return np.asarray(jax.jit(jax.vmap(over_keys, in_axes=(0, None, None)))(drifts, hparams,
                                                                           keys))


def _lpo_env_ids(targets: Sequence[str]) -> list[str]:
    """The env ids of LPO targets (``minatar`` expanded), each checked to be registered."""
    from jaxrl_suite.env.registry import env_spec

    env_ids: list[str] = []
    for target in targets:
        if target == "minatar":
            env_ids += [env_id for env_id in MINATAR_IDS if env_id not in env_ids]
            continue
        if target in ("named", "heldout"):
            raise ValueError(f"meta eval: the target {target!r} is an LPG run's (grid-world "
                             f"levels); an LPO run accepts 'minatar' or registered env ids.")
        try:
            env_spec(target)
        except ValueError as error:
            raise ValueError(f"meta eval: unknown target {target!r}; an LPO run accepts "
                             f"'minatar' or a registered env id. {error}") from None
        if target not in env_ids:
            env_ids.append(target)
    return env_ids


TRANSFER_BUDGETS = ("preset", "meta")


def _target_base(config: Any, meta_env: str, env_id: str, env: Any, env_params: Any,
                 transfer_budget: str, objective: str | None = None
                 ) -> tuple[ppo.Config, str, int | None]:
    """The PPO config a target's agents start from (before the horizon scales its steps), a
    phrase naming it, and the evaluation episodes' step limit (``None``: the env's own): the
    meta-run's inner PPO on the meta-training env, or everywhere with ``transfer_budget``
    ``meta``; else the target env's PPO preset."""
    if transfer_budget not in TRANSFER_BUDGETS:
        raise ValueError(f"meta eval: transfer_budget must be one of {TRANSFER_BUDGETS} (the "
                         f"targets' PPO preset, or the meta-run's inner PPO); got "
                         f"{transfer_budget!r}.")
    if env_id == meta_env or transfer_budget == "meta":
        return (lpo.inner_config(config, env, objective), "the meta-run's inner PPO",
                config.fitness_max_steps or None)
    if getattr(env_params, "max_steps_in_episode", None) is None:
        raise ValueError(f"meta eval: {env_id}'s params have no max_steps_in_episode, so its "
                         f"evaluation episodes have no limit; choose another target.")
    return ppo.ALGORITHM.env_preset_config(env), "the env's PPO preset", None


def _lpo_plan(config: lpo.Config, meta_env: str, env_ids: Sequence[str],
              horizons: Sequence[float], learned: str, objective_path: Path,
              transfer_budget: str = "preset") -> list[dict[str, Any]]:
    """One entry per target and horizon: the env, the three PPO configs (by objective name,
    ``learned`` reading ``objective_path``) at ``h`` times the target's budget, the
    evaluation's settings. Every config is checked here, so a bad one is refused before
    anything compiles."""
    plan = []
    for env_id in env_ids:
        env, env_params = jaxrl_suite.make(env_id)
        base, budget, max_steps = _target_base(config, meta_env, env_id, env, env_params,
                                               transfer_budget)
        for horizon in horizons:
            steps = int(round(horizon * base.total_steps))
            configs = {name: dataclasses.replace(
                base, total_steps=steps, objective=name,
                objective_params=str(objective_path) if name == learned else "")
                for name in (PPO_OBJECTIVE, "dpo", learned)}
            for name, ppo_config in configs.items():
                try:
                    ppo.validate(ppo_config, env, env_params)
                except ValueError as error:
                    raise ValueError(f"meta eval: {env_id} at horizon {horizon:g} ({steps:,} "
                                     f"steps, objective {name}): {error}") from None
            batch = base.num_envs * base.num_steps  # PPO trains in whole updates of a batch
            # A curriculum run's agents learn over its curriculum wherever they take the
            # meta-run's inner PPO on a level env.
            curriculum = (config if getattr(config, "curriculum", "") and is_level_env(env)
                          and budget == "the meta-run's inner PPO" else None)
            plan.append({"target": env_id, "env": env, "env_params": env_params,
                         "curriculum": curriculum,
                         "horizon": horizon, "steps": steps, "env_steps": steps // batch * batch,
                         "base_steps": base.total_steps, "budget": budget,
                         "max_steps": max_steps, "configs": configs})
    return plan


def _checked_horizons(horizons: Sequence[float], seeds: int) -> list[float]:
    """The horizons as floats, each a finite number > 0, and ``seeds`` an integer >= 1."""
    if not horizons:
        raise ValueError("meta eval: give at least one horizon (e.g. --horizons 0.25 1 4).")
    for horizon in horizons:
        if isinstance(horizon, bool) or not isinstance(horizon, numbers.Real) or not (
                math.isfinite(horizon) and horizon > 0):
            raise ValueError(f"meta eval: a horizon is a multiple of the budget, a finite number "
                             f"> 0; got {horizon!r}.")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"meta eval: seeds must be an integer >= 1; got {seeds!r}.")
    return [float(horizon) for horizon in horizons]


def evaluate_lpo_run(run_dir: str | Path, targets: Sequence[str] | None = None,
                     horizons: Sequence[float] = LPO_HORIZONS, seeds: int = 4,
                     objective_file: str = "objective", seed: int = 0,
                     transfer_budget: str = "preset", out_dir: str | Path | None = None
                     ) -> dict[str, Any]:
    """Meta-test an LPO or TA-LPO run's discovered drift (module docstring): for each target env
    and horizon multiple, ``seeds`` fresh PPO agents per objective (PPO's clipped surrogate,
    DPO, the discovered one) on the same keys.

    Args:
      run_dir: a run folder of ``jaxrl meta lpo`` (finished: it holds ``objective.npz``).
      targets: env ids or ``"minatar"``; default the meta-training env.
      horizons: multiples ``h > 0`` of each target's budget (``total_steps = round(h *
        budget)`` env steps; trained in whole updates, so ``env_steps`` may be less).
      seeds: agents per objective, target and horizon.
      objective_file: the run folder's drift file to test, ``objective`` (the search mean) or
        ``objective_best`` (the best member seen); ``_seed{i}`` for a run of several seeds.
      seed: the evaluation keys are ``split(key(seed + 10007), seeds)``.
      transfer_budget: the PPO settings of targets other than the meta-training env: ``preset``
        (each env's PPO preset and its total steps) or ``meta`` (the meta-run's inner PPO).
      out_dir: where the results go (default ``RUN_DIR/meta_eval``).

    Returns:
      The dict written to ``RUN_DIR/meta_eval/results.json``: the run's settings and ``rows``,
      one per target and horizon, each with ``steps``, ``env_steps`` and ``returns``: per
      objective name the ``per_seed`` final returns ``(seeds,)``, their ``mean`` and
      ``std_over_seeds``. Raises ``ValueError`` for a bad setting, before anything compiles.
    """
    from jaxrl_suite.run.folder import load_run

    run_dir = Path(run_dir)
    algo = run_algorithm(run_dir)
    if algo != "lpo":
        raise ValueError(f"meta eval: {run_dir} is a run of {algo!r}, not of lpo (`jaxrl meta "
                         f"lpo` makes one).")
    horizons = _checked_horizons(horizons, seeds)
    stem = objective_file.removesuffix(".npz")
    objective_path = run_dir / f"{stem}.npz"
    if not _OBJECTIVE_FILE.fullmatch(stem) or not objective_path.is_file():
        present = sorted(path.stem for path in run_dir.glob("objective*.npz"))
        raise ValueError(f"meta eval: no objective file {stem!r} in {run_dir}; accepted: "
                         f"objective or objective_best (with _seed<i> for a run of several "
                         f"seeds); the folder holds "
                         f"{present or 'none (a meta-run writes them when it finishes)'}.")
    _, config, options, _ = load_run(run_dir)
    objectives.load_drift_params(str(objective_path), config.time_aware, "meta eval")
    learned = "ta_lpo" if config.time_aware else "lpo"
    env_ids = _lpo_env_ids([options.env] if targets is None else targets)
    plan = _lpo_plan(config, options.env, env_ids, horizons, learned, objective_path,
                     transfer_budget)

    columns = {"PPO": PPO_OBJECTIVE, "DPO": "dpo", "TA-LPO" if config.time_aware else "LPO":
               learned}
    keys = _evaluation_keys(seed, seeds)
    results: dict[str, Any] = {
        "run": str(run_dir), "algo": "lpo", "objective": learned,
        "objective_file": objective_path.name, "meta_env": options.env,
        "generations": config.generations, "seeds": seeds, "seed": seed,
        "episodes": config.fitness_episodes, "deterministic": config.fitness_deterministic,
        "transfer_budget": transfer_budget, "columns": columns, "rows": []}
    for entry in plan:
        settings = (entry["env"], entry["env_params"], keys, config.fitness_episodes,
                    config.fitness_deterministic, entry["max_steps"])
        curriculum = {"curriculum": entry["curriculum"]}
        # PPO's agents are the learned objective's at its initialisation (the learned term 0,
        # PPO's clipped surrogate bit for bit: tests/test_lpo.py), so PPO and the discovered
        # drift share one compiled program, a vmap over the two networks.
        learned_config = entry["configs"][learned]
        discovered = objectives.load_drift_params(learned_config.objective_params,
                                                  config.time_aware, "meta eval")
        at_ppo = objectives.init_drift_params(jax.random.key(0), config.time_aware,
                                              config.hidden_size)
        both = objective_returns(learned_config, *settings, drifts=jax.tree.map(
            lambda a, b: jnp.stack([a, b]), at_ppo, discovered), **curriculum)
        finals = {PPO_OBJECTIVE: both[0], learned: both[1],
                  "dpo": objective_returns(entry["configs"]["dpo"], *settings, **curriculum)}
        returns = {name: {"per_seed": [float(x) for x in final], "mean": float(final.mean()),
                          "std_over_seeds": float(final.std())}
                   for name, final in finals.items()}
        row = {name: entry[name] for name in ("target", "horizon", "steps", "env_steps",
                                              "base_steps", "budget")}
        if entry["curriculum"] is not None:
            row["curriculum"] = config.curriculum
        row["returns"] = returns
        results["rows"].append(row)
        print(f"{row['target']} x {row['horizon']:g} ({row['steps']:,} steps): "
              + ", ".join(f"{column} {returns[name]['mean']:.2f} ± "
                          f"{returns[name]['std_over_seeds']:.2f}"
                          for column, name in columns.items())
              + f" ({seeds} seeds)", flush=True)
    write_lpo_results(Path(out_dir) if out_dir else run_dir / "meta_eval", results)
    return results


def evaluate_open_run(run_dir: str | Path, targets: Sequence[str] | None = None,
                      horizons: Sequence[float] = LPO_HORIZONS, seeds: int = 4,
                      optimizer_file: str = "optimizer", seed: int = 0,
                      transfer_budget: str = "preset", out_dir: str | Path | None = None
                      ) -> dict[str, Any]:
    """Meta-test an OPEN run's discovered optimiser as ``evaluate_lpo_run`` tests a drift:
    for each target env and horizon multiple, ``seeds`` fresh PPO agents trained by Adam (PPO's
    own optimiser) and as many by the learned optimiser, on the same keys. ``optimizer_file``:
    ``optimizer`` (the search mean) or ``optimizer_best``; ``transfer_budget`` as there.
    Returns (and writes to ``RUN_DIR/meta_eval/``) the same structure as ``evaluate_lpo_run``,
    columns ``PPO (Adam)`` and ``OPEN``."""
    from jaxrl_suite.meta import open as open_lib
    from jaxrl_suite.run.folder import load_run

    run_dir = Path(run_dir)
    horizons = _checked_horizons(horizons, seeds)
    stem = optimizer_file.removesuffix(".npz")
    path = run_dir / f"{stem}.npz"
    if stem not in ("optimizer", "optimizer_best") or not path.is_file():
        raise ValueError(f"meta eval: no optimiser file {stem!r} in {run_dir}; accepted: "
                         f"optimizer or optimizer_best (a finished `jaxrl meta open` run "
                         f"writes them).")
    _, config, options, _ = load_run(run_dir)
    open_lib.load_optimizer_params(path, config)  # the right sizes, before anything compiles
    keys = _evaluation_keys(seed, seeds)
    columns = {"PPO (Adam)": "adam", "OPEN": "open"}
    results: dict[str, Any] = {
        "run": str(run_dir), "algo": "open", "objective": "open", "objective_file": path.name,
        "meta_env": options.env, "generations": config.generations, "seeds": seeds,
        "seed": seed, "episodes": config.fitness_episodes,
        "deterministic": config.fitness_deterministic, "transfer_budget": transfer_budget,
        "columns": columns, "rows": []}
    resolved = []
    for env_id in _lpo_env_ids([options.env] if targets is None else targets):
        env, env_params = jaxrl_suite.make(env_id)  # every target checked before any compiles
        resolved.append((env_id, env, env_params, *_target_base(
            config, options.env, env_id, env, env_params, transfer_budget, PPO_OBJECTIVE)))
    for env_id, env, env_params, base, budget, max_steps in resolved:
        for horizon in horizons:
            steps = int(round(horizon * base.total_steps))
            adam = dataclasses.replace(base, total_steps=steps)
            settings = (env, env_params, keys, config.fitness_episodes,
                        config.fitness_deterministic, max_steps)
            finals = {"adam": objective_returns(adam, *settings),
                      "open": objective_returns(dataclasses.replace(
                          adam, optimizer_params=str(path)), *settings)}
            batch = base.num_envs * base.num_steps
            row = {"target": env_id, "horizon": horizon, "steps": steps,
                   "env_steps": steps // batch * batch, "base_steps": base.total_steps,
                   "budget": budget,
                   "returns": {name: {"per_seed": [float(x) for x in final],
                                      "mean": float(final.mean()),
                                      "std_over_seeds": float(final.std())}
                               for name, final in finals.items()}}
            results["rows"].append(row)
            print(f"{env_id} x {horizon:g} ({steps:,} steps): " + ", ".join(
                f"{column} {row['returns'][name]['mean']:.2f} ± "
                f"{row['returns'][name]['std_over_seeds']:.2f}"
                for column, name in columns.items()) + f" ({seeds} seeds)", flush=True)
    write_lpo_results(Path(out_dir) if out_dir else run_dir / "meta_eval", results)
    return results


def write_lpo_results(out_dir: Path, results: dict[str, Any]) -> None:
    """``results.json`` and ``results.md`` (one table row per target and horizon) of
    ``evaluate_lpo_run`` under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    columns = results["columns"]
    lines = [f"Meta-test of {results['run']} ({results['objective_file']}, "
             f"{results['objective']}), {results['seeds']} seeds, {results['episodes']} "
             f"evaluation episodes each; final return, mean ± std over seeds. Horizon: a "
             f"multiple of the budget (on {results['meta_env']} the meta-run's inner steps, "
             + ("and on every other target too)." if results.get("transfer_budget") == "meta"
                else "elsewhere the env's PPO preset's)."), "",
             "| target | horizon | steps | " + " | ".join(columns) + " |",
             "|---|---|---|" + "---|" * len(columns)]
    for row in results["rows"]:
        cells = [f"{entry['mean']:.2f} ± {entry['std_over_seeds']:.2f}"
                 for entry in (row["returns"][name] for name in columns.values())]
        lines.append(f"| {row['target']} | {row['horizon']:g} | {row['steps']:,} | "
                     + " | ".join(cells) + " |")
    rounded = [row for row in results["rows"] if row["env_steps"] < row["steps"]]
    if rounded:
        lines += ["", "Trained in whole updates: " + "; ".join(
            f"{row['target']} x {row['horizon']:g} took {row['env_steps']:,} steps"
            for row in rounded) + "."]
    (out_dir / "results.md").write_text("\n".join(lines) + "\n")
    plot_lpo_results(results, out_dir / "results.png")


def plot_lpo_results(results: dict[str, Any], path: Path) -> None:
    """A bar per column (PPO, DPO, the discovered objective; or Adam and OPEN) in a group per
    horizon, one panel per target (returns differ in scale between envs): the mean final
    return over seeds, the standard error as a whisker."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = results["columns"]
    targets = list(dict.fromkeys(row["target"] for row in results["rows"]))
    figure, axes = plt.subplots(1, len(targets), figsize=(1.0 + 3.0 * len(targets), 3.4),
                                squeeze=False)
    width = 0.8 / len(columns)
    for axis, target in zip(axes[0], targets):
        rows = [row for row in results["rows"] if row["target"] == target]
        for index, (column, name) in enumerate(columns.items()):
            per_seed = [np.asarray(row["returns"][name]["per_seed"]) for row in rows]
            errors = [x.std() / math.sqrt(max(1, len(x) - 1)) for x in per_seed]
            positions = np.arange(len(rows)) + (index - (len(columns) - 1) / 2) * width
            axis.bar(positions, [x.mean() for x in per_seed], width, yerr=errors, capsize=2,
                     label=column)
        axis.set_xticks(np.arange(len(rows)), [f"{row['horizon']:g}x" for row in rows])
        axis.set_xlabel("horizon (multiple of the budget)")
        axis.set_title(target.removeprefix("gymnax/"), fontsize=9)
    axes[0][0].set_ylabel(f"final return ({results['seeds']} seeds)")
    axes[0][0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# --- the command line ---------------------------------------------------------------------------
_LPG_ONLY = {"levels": 16, "minatar_updates": 500, "named_updates": None}  # flag -> default
_LPO_ONLY = {"horizons": list(LPO_HORIZONS), "objective_file": "objective",
             "transfer_budget": "preset"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jaxrl meta eval", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="an LPG or LPO run folder (jaxrl meta lpg or jaxrl meta "
                                        "lpo made it)")
    parser.add_argument("--on", nargs="+", default=None,
                        help="targets: env ids or minatar; for an LPG run also named and "
                             "heldout (default: LPG named heldout, LPO the meta-training env)")
    parser.add_argument("--seeds", type=int, default=4,
                        help="agents per rule (or objective) and level (or horizon)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", default=None,
                        help="where results go (default RUN_DIR/meta_eval), so that several "
                             "meta-tests of one run can be kept")
    lpg_flags = parser.add_argument_group("LPG runs")
    lpg_flags.add_argument("--levels", type=int, default=None, help="held-out levels (16)")
    lpg_flags.add_argument("--minatar-updates", type=int, default=None,
                           help="updates of each MinAtar agent (500)")
    lpg_flags.add_argument("--named-updates", type=int, default=None,
                           help="cap the named levels' lifetimes (default: each level's own)")
    lpo_flags = parser.add_argument_group("LPO and TA-LPO runs")
    lpo_flags.add_argument("--horizons", nargs="+", type=float, default=None,
                           help="multiples of each target's budget (0.25 1 4)")
    lpo_flags.add_argument("--objective-file", default=None,
                           help="objective (the search mean) or objective_best (the best "
                                "member seen); default objective")
    lpo_flags.add_argument("--transfer-budget", choices=TRANSFER_BUDGETS, default=None,
                           help="PPO settings on targets other than the meta-training env: "
                                "preset (each env's PPO preset and steps) or meta (the "
                                "meta-run's inner PPO); default preset (LPO and OPEN runs)")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    for name in ("seeds", "levels", "minatar_updates", "named_updates"):
        if getattr(args, name) is None:
            continue
        if getattr(args, name) < 1:
            print(f"jaxrl: error: --{name.replace('_', '-')} must be >= 1; got "
                  f"{getattr(args, name)}.", file=sys.stderr)
            return 2
    try:
        algo = run_algorithm(args.run_dir)
        if algo not in ("lpg", "lpo", "open"):
            raise ValueError(f"jaxrl meta eval tests a learned objective or optimiser: "
                             f"{args.run_dir} is a run of {algo!r}; accepted: a run folder of "
                             f"lpg, lpo or open (`jaxrl meta lpg`, `jaxrl meta lpo` and `jaxrl "
                             f"meta open` make them; `jaxrl eval` evaluates a {algo} run).")
        own, other = (_LPG_ONLY, _LPO_ONLY) if algo == "lpg" else (_LPO_ONLY, _LPG_ONLY)
        if algo == "open" and args.objective_file is not None:
            raise ValueError("--objective-file is for LPO runs; an OPEN run's discovered "
                             "optimiser is its optimizer.npz.")
        given = [name for name in other if getattr(args, name) is not None]
        if given:
            raise ValueError(f"--{given[0].replace('_', '-')} is for "
                             f"{'LPO' if algo == 'lpg' else 'LPG'} runs; {args.run_dir} is a "
                             f"run of {algo} (its flags: --on, --seeds, --seed, "
                             + ", ".join(f"--{name.replace('_', '-')}" for name in own) + ").")
        values = {name: own[name] if getattr(args, name) is None else getattr(args, name)
                  for name in own}
        if algo == "lpg":
            evaluate_run(args.run_dir, args.on or ["named", "heldout"], args.seeds,
                         values["levels"], values["minatar_updates"], args.seed,
                         values["named_updates"], args.out_dir)
        elif algo == "open":
            evaluate_open_run(args.run_dir, args.on, values["horizons"], args.seeds,
                              seed=args.seed, transfer_budget=values["transfer_budget"],
                              out_dir=args.out_dir)
        else:
            evaluate_lpo_run(args.run_dir, args.on, values["horizons"], args.seeds,
                             values["objective_file"], args.seed, values["transfer_budget"],
                             args.out_dir)
    except ValueError as error:
        print(f"jaxrl: error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.out_dir or Path(args.run_dir) / 'meta_eval'}")
    return 0
