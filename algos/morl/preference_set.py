"""Preference sets: one agent per preference of a weight set, PPO or SAC, in one program.

The existing learners train on a multi-objective env's vector reward with a preference ``w``
(``Hyperparams.preference``: PPO scalarises its per-objective advantages, SAC its per-objective
critics; rewards are normalised per objective where the learner normalises). A set of ``P``
preferences is then a ``vmap`` of the same learner over ``w``: ``P`` policies, one compiled
program, one call. Where morl-baselines and MO-Gymnasium train one preference per process on a
numpy env, this trains the whole weight set in one program (and, under the harness, ``seeds``
of such sets).

``conditioned=True`` is the single-network variant instead: one agent on
``Scalarize(env, condition=True, sample_weights=True)`` (the weights drawn on the simplex per
episode and appended to the observation), evaluated at each preference of the set by feeding it
that preference.

``evaluate_front(train, state, key)`` gives the ``(P, k)`` returns of the set's policies (one
per preference, deterministic episodes); the run folder gets ``front.csv`` / ``front.json`` /
``front.png`` with the front's metrics (``write_outputs``).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl_suite.algos import ppo, sac
from jaxrl_suite.env.environment import Environment
from jaxrl_suite.env.wrappers import Scalarize, without_auto_reset
from jaxrl_suite.learn import preferences
from jaxrl_suite.run import pareto
from jaxrl_suite.run.algorithms import AlgorithmSpec
from jaxrl_suite.run.configs import require_positive_ints
from jaxrl_suite.run.evaluation import Policy, evaluate
from jaxrl_suite.run.folder import load_run
from jaxrl_suite.run.training import Train

__all__ = ["ALGORITHM", "Config", "LEARNERS", "PreferenceSetTrain", "evaluate_front",
           "make_train", "preference_weights", "validate", "write_outputs"]

LEARNERS = {"ppo": ppo, "sac": sac}


@dataclasses.dataclass(frozen=True)
class Config:
    """Preference-set settings; the learner's own come from its preset for the env (or
    ``make_train``'s ``learner_config``), with ``total_steps`` per preference."""

    learner: str = "ppo"
    """ppo or sac."""
    num_preferences: int = 11
    """Preferences of the set (evenly spread on the simplex)."""
    conditioned: bool = False
    """One preference-conditioned agent (weights as an input, drawn per episode) instead of one
    agent per preference."""
    total_steps: int = 0
    """Env steps per preference (conditioned: of the one agent); 0: the learner's preset."""
    front_episodes: int = 4
    """Deterministic evaluation episodes per preference for the front."""
    reference_point: tuple[float, ...] = ()
    """Hypervolume reference point; empty: the env's own (env.reference_point)."""
    objective: str = ""
    """PPO learner only: its policy objective (``ppo.Config.objective``: dpo, lpo, ta_lpo, ...);
    empty: the preset's."""
    objective_params: str = ""
    """PPO learner with lpo / ta_lpo: the drift network (a ``jaxrl meta lpo`` run folder or an
    .npz file); empty: one initialised at PPO."""
    optimizer_params: str = ""
    """PPO learner only: a learned optimiser instead of Adam (``ppo.Config.optimizer_params``: a
    ``jaxrl meta open`` run folder or an .npz file); empty: Adam."""


@struct.dataclass
class Hyperparams:
    """The learner's traceable hyperparameters (its ``preference`` is set per member)."""

    learner: Any


@dataclasses.dataclass(frozen=True, eq=False)
class PreferenceSetTrain(Train):
    """The set's ``Train`` plus what evaluating its front needs."""

    weights: Any = None  # (P, k) the preference of each member
    member_policy: Any = None  # (state, member index) -> Policy acting in the raw env
    evaluation_env: Any = None
    episode_limit: int = 1000
    reference_point: Any = None


def preference_weights(num_objectives: int, count: int) -> np.ndarray:
    """``(count, num_objectives)`` weights on the simplex, evenly spread (``linspace`` for two
    objectives, Riesz s-energy directions for more)."""
    if num_objectives == 2:
        first = np.linspace(0.0, 1.0, count)
        return np.stack([first, 1.0 - first], axis=1).astype(np.float32)
    return pareto.riesz_energy_weights(num_objectives, count, seed=0).astype(np.float32)



def validate(config: Config, env: Environment, env_params: Any) -> None:
    """Raise a ``ValueError`` naming the bad setting."""
    if not isinstance(config, Config):
        raise TypeError(f"config must be a preference_set.Config; got {type(config).__name__}.")
    if config.learner not in LEARNERS:
        raise ValueError(f"preference_set: learner must be one of {', '.join(LEARNERS)}; got "
                         f"{config.learner!r}.")
    require_positive_ints(config, "num_preferences", "front_episodes")
    if (config.objective or config.objective_params or config.optimizer_params) and (
            config.learner != "ppo"):
        raise ValueError(f"preference_set: objective, objective_params and optimizer_params "
                         f"are the PPO learner's (its policy objective and optimiser); learner "
                         f"is {config.learner!r}.")
    if config.total_steps < 0:
        raise ValueError(f"preference_set: total_steps must be >= 0; got {config.total_steps}.")
    k = preferences.num_objectives_of(env, env_params, "preference_set")
    if k < 2:
        raise ValueError(f"preference_set needs a multi-objective env (a reward vector of 2 or "
                         f"more objectives); {env.name} has a scalar reward.")
    point = config.reference_point or getattr(env, "reference_point", None)
    if point is not None and len(point) and len(point) != k:
        raise ValueError(f"preference_set: reference_point must have {k} values, one per "
                         f"objective of {env.name}; got {tuple(point)}.")


def make_train(config: Config, env: Environment, env_params: Any,
               learner_config: Any = None) -> PreferenceSetTrain:
    """Build the preference set's training run.

    Args:
      config: the set's settings.
      env: a multi-objective env.
      env_params: its params.
      learner_config: the learner's ``Config``; default its preset for ``env.name`` with
        ``config.total_steps`` when positive.

    Returns:
      ``PreferenceSetTrain``: state ``(P, ...)`` of the ``P`` members (one agent when
      conditioned); metrics ``episode_return`` ``(k,)`` (mean over members) and
      ``member_return`` ``(P, k)``.
    """
    validate(config, env, env_params)
    module = LEARNERS[config.learner]
    if learner_config is None:
        overrides = {"total_steps": config.total_steps} if config.total_steps else {}
        if config.objective:
            overrides["objective"] = config.objective
        if config.objective_params:
            overrides["objective_params"] = config.objective_params
        if config.optimizer_params:
            overrides["optimizer_params"] = config.optimizer_params
        learner_config = module.ALGORITHM.env_preset_config(env, **overrides)
    k = preferences.num_objectives_of(env, env_params, "preference_set")
    weights = jnp.asarray(preference_weights(k, config.num_preferences))
    raw_env = without_auto_reset(env)
    limit = int(getattr(env_params, "max_steps_in_episode", 1000))
    point = config.reference_point or getattr(env, "reference_point", None)
    point = None if point is None or not len(point) else np.asarray(point, np.float64)
    if config.conditioned:
        return _conditioned(config, module, learner_config, raw_env, env_params, weights, limit,
                            point)

    base = module.make_train(learner_config, env, env_params)
    num_members = config.num_preferences

    def init(key: jax.Array, hparams: Hyperparams):
        members = jax.tree.map(lambda x: jnp.broadcast_to(x, (num_members, *jnp.shape(x))),
                               hparams.learner).replace(preference=weights)
        return jax.vmap(base.init)(jax.random.split(key, num_members), members)

    def update(state):
        state, metrics = jax.vmap(base.update)(state)
        return state, _summarise(metrics)

    def member_policy(state, index):
        return base.make_policy(jax.tree.map(lambda x: x[index], state))

    return PreferenceSetTrain(
        init=init, update=update, num_updates=base.num_updates,
        env_steps_per_update=base.env_steps_per_update * num_members,
        env_steps_before_updates=base.env_steps_before_updates * num_members,
        default_hparams=Hyperparams(base.default_hparams),
        make_policy=lambda state: member_policy(state, num_members // 2), config=config,
        weights=weights, member_policy=member_policy, evaluation_env=raw_env,
        episode_limit=limit, reference_point=point)


def _summarise(metrics: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Members' metrics ``(P, ...)``: env steps summed, returns kept per member as well,
    the rest averaged."""
    out = {name: jnp.nanmean(value, axis=0) for name, value in metrics.items()
           if name != "env_steps"}
    if "env_steps" in metrics:
        out["env_steps"] = metrics["env_steps"].sum(axis=0)
    out["member_return"] = metrics["episode_return"]
    return out


def _conditioned(config, module, learner_config, raw_env, env_params, weights, limit, point):
    scalarized = Scalarize(raw_env, condition=True, sample_weights=True)
    scalarized_params = scalarized.default_params.replace(env_params=env_params)
    base = module.make_train(learner_config, scalarized, scalarized_params)

    def init(key, hparams):
        return base.init(key, hparams.learner)

    def update(state):
        state, metrics = base.update(state)
        return state, metrics

    def member_policy(state, index):
        inner = base.make_policy(state)
        preference = weights[index]

        def act(params, key, observation, carry, episode_start, deterministic):
            shown = jnp.concatenate([observation.astype(jnp.float32), params["preference"]])
            return inner.act(params["inner"], key, shown, carry, episode_start, deterministic)

        return Policy(act, {"inner": inner.params, "preference": preference},
                      inner.initial_carry)

    return PreferenceSetTrain(
        init=init, update=update, num_updates=base.num_updates,
        env_steps_per_update=base.env_steps_per_update,
        env_steps_before_updates=base.env_steps_before_updates,
        default_hparams=Hyperparams(base.default_hparams),
        make_policy=lambda state: member_policy(state, config.num_preferences // 2),
        config=config, weights=weights, member_policy=member_policy, evaluation_env=raw_env,
        episode_limit=limit, reference_point=point)


def evaluate_front(train: PreferenceSetTrain, state: Any, key: jax.Array,
                   num_episodes: int | None = None) -> jax.Array:
    """Mean undiscounted returns ``(P, k)`` of the set's policies on ``num_episodes`` (default
    the config's) deterministic episodes each, one per preference of ``train.weights``."""
    episodes = num_episodes or train.config.front_episodes
    env_params = getattr(state, "env_params", None)
    del env_params  # the raw env's default params: the set is evaluated on the env it names
    params = train.evaluation_env.default_params

    @jax.jit
    def run(state, key):
        def one(index, member_key):
            policy = train.member_policy(state, index)
            return evaluate(policy, train.evaluation_env, params, member_key, episodes,
                            max_steps=train.episode_limit)["episode_return"].mean(axis=0)

        count = train.weights.shape[0]
        return jax.vmap(one)(jnp.arange(count), jax.random.split(key, count))

    return run(state, key)


def write_outputs(run_dir: Path, train: PreferenceSetTrain, states: Any) -> dict[str, Any]:
    """``front.csv`` / ``front.json`` / ``front.png``: each seed's front (the non-dominated
    returns of its policies) and its metrics where a reference point is known."""
    run_dir = Path(run_dir)
    k = train.weights.shape[1]
    num_seeds = jax.tree.leaves(states)[0].shape[0]
    env_id = load_run(run_dir)[2].env if (run_dir / "config.json").exists() else None
    out = []
    for seed in range(num_seeds):
        state = jax.tree.map(lambda x, s=seed: x[s], states)
        returns = np.asarray(evaluate_front(train, state, jax.random.key(seed)))
        front = pareto.pareto_front(returns)
        metrics = ({} if train.reference_point is None else pareto.front_metrics(
            front, train.reference_point, pareto.equally_spaced_weights(k, 100 if k == 2 else 10)))
        out.append({"returns": returns.tolist(), "front": front.tolist(), "metrics": metrics})
        pareto.write_front(run_dir / (f"front_seed{seed}" if num_seeds > 1 else "front"), front,
                           extra={"metrics": metrics, "weights": np.asarray(train.weights).tolist(),
                                  "returns_per_preference": returns.tolist(), "env": env_id})
    pareto.plot_front(np.concatenate([np.asarray(o["front"]) for o in out]), run_dir / "front.png",
                      reference_point=train.reference_point)
    return {"seeds": out}


ALGORITHM = AlgorithmSpec(
    name="preference_set", display_name="Preference set", config=Config,
    hyperparams=Hyperparams, make_train=make_train, default_env="mo/deep-sea-treasure",
    write_outputs=write_outputs, description=__doc__.strip().splitlines()[0],
)
preset_config = ALGORITHM.preset_config
main = ALGORITHM.main

if __name__ == "__main__":
    sys.exit(main())
