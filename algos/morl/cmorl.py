"""C-MORL: a Pareto front by constrained policy optimisation, as one compiled program.

Liu, Pan, Xu, Yang, Ding and Zhang, "C-MORL: Multi-Objective Reinforcement Learning through
Efficient Discovery of Pareto Front" (ICLR 2025). Two stages, both PPO on the env's vector
reward (a critic with one output per objective, GAE per objective, rewards normalised per
objective):

1. **Initialisation**: ``num_preferences`` policies, one per preference of an evenly spread
   weight set, trained at once (a ``vmap``; this stage alone is preference-vmapped PPO).
2. **Constrained extension**, repeated ``extension_rounds`` times: the policies evaluated so far
   form an archive; its non-dominated policies with the largest crowding distance (NSGA-II's)
   are selected, and each is trained further on each objective ``j``: maximise ``G_j`` subject to
   every other objective staying above its threshold, ``G_l >= G_l^0 - (1 - beta) |G_l^0|``
   (``beta G_l^0`` for a positive return, as published; the absolute value keeps the threshold
   below a negative return, where ``beta G_l^0`` would demand an improvement). The constraint is
   the log-barrier of interior-point policy optimisation (IPO, Liu, Ding and Liu 2020):
   ``max L_j(theta) + sum_l log(G_l(theta) - tau_l) / t``, whose gradient weighs objective
   ``l``'s policy gradient by ``1 / (t (G_l - tau_l))``. Here the per-objective advantages
   (standardised) are combined with those weights, ``(A_j + sum_l kappa_l A_l) / (1 + sum_l
   kappa_l)``, and the clipped surrogate of that is PPO's loss (the form OmniSafe's IPO uses),
   with ``G_l`` the running mean return of the member's finished training episodes and the
   barrier's slack floored at ``min_slack`` (a violated constraint gets the largest weight).

Every member (a policy and its PPO state) is one slice of a ``vmap``; at each stage boundary,
inside the same program (a ``lax.cond``), all members are evaluated (``front_episodes``
deterministic episodes, undiscounted returns), merged into a fixed-size archive (Pareto
filtering and crowding distance in ``jnp``), and the selection re-seeds the members: the
archive lives on the device and nothing returns to the host between stages. A seed of the
harness is one whole C-MORL run; seeds are a ``vmap`` of those, as for every algorithm.

Run folder outputs (``write_outputs``): ``front.csv`` / ``front.json`` (the archive's
non-dominated returns with their metrics: hypervolume at the env's reference point, expected
utility, sparsity, cardinality; maximum utility loss and IGD where the env ships its front)
and ``front.png``. ``policy_for_preference`` picks the archive policy for an unseen preference.
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

from jaxrl_suite.algos import ppo
from jaxrl_suite.algos.morl.preference_set import preference_weights
from jaxrl_suite.env.environment import Environment
from jaxrl_suite.env.wrappers import NormalizeObservationState, without_auto_reset
from jaxrl_suite.learn import preferences
from jaxrl_suite.learn.objectives import ObjectiveInputs, clipped_surrogate
from jaxrl_suite.run import pareto
from jaxrl_suite.run.algorithms import AlgorithmSpec
from jaxrl_suite.run.configs import (
    require_finite_numbers,
    require_positive,
    require_positive_ints,
)
from jaxrl_suite.run.evaluation import Policy, evaluate
from jaxrl_suite.run.folder import load_run
from jaxrl_suite.run.training import Train

__all__ = ["ALGORITHM", "Archive", "CMORLState", "Config", "Hyperparams", "PRESETS",
           "archive_front", "make_train", "policy_for_preference",
           "validate", "write_outputs"]


# --- configuration ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Config:
    """C-MORL settings. Stage lengths are per policy, in env steps (each rounded down to whole
    PPO updates of ``num_envs * num_steps``); the whole run takes ``num_preferences * (init_steps
    + extension_rounds * extension_steps)`` env steps. The PPO fields are the members' (one PPO
    learner per policy). Defaults: C-MORL's MuJoCo settings where published (beta 0.9, t 20),
    scaled to this machine otherwise."""

    num_preferences: int = 6
    """Policies trained at once (the initialisation stage's weight set, evenly spread)."""
    init_steps: int = 100_000
    """Env steps per policy in the initialisation stage."""
    extension_rounds: int = 2
    """Constrained extension rounds after it (0: preference-vmapped PPO alone)."""
    extension_steps: int = 25_000
    """Env steps per policy in each extension round."""
    num_selected: int = 0
    """Archive policies extended per round, each on every objective (0: num_preferences //
    num_objectives, so every member slot is used)."""
    beta: float = 0.9
    """Constraint level: the other objectives keep G - (1 - beta)|G| of their return (traceable)."""
    barrier_t: float = 20.0
    """Log-barrier sharpness t: the barrier is log(slack) / t (traceable)."""
    min_slack: float = 1e-2
    """Floor of the barrier's slack (return units): a violated constraint weighs 1/(t min_slack)."""
    archive_size: int = 64
    """Policies the archive keeps (non-dominated first, then by crowding distance)."""
    front_episodes: int = 4
    """Deterministic evaluation episodes per policy at each stage boundary."""
    reference_point: tuple[float, ...] = ()
    """Hypervolume reference point; empty: the env's own (env.reference_point)."""
    # --- the members' PPO
    num_envs: int = 8
    """Parallel envs per policy."""
    num_steps: int = 128
    """Rollout steps per env and update."""
    update_epochs: int = 4
    """PPO passes over each rollout."""
    num_minibatches: int = 4
    """Minibatches per epoch."""
    learning_rate: float = 3e-4
    """Adam step size (traceable)."""
    gamma: float = 0.99
    """Discount (traceable)."""
    gae_lambda: float = 0.95
    """GAE lambda (traceable)."""
    clip_epsilon: float = 0.2
    """PPO ratio clip (traceable)."""
    entropy_coef: float = 0.01
    """Entropy bonus weight (traceable)."""
    value_coef: float = 0.5
    """Value loss weight (traceable)."""
    max_grad_norm: float = 0.5
    """Gradient-norm clip (traceable)."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Policy and value MLP widths."""
    activation: str = "tanh"
    """Activation of the MLPs."""
    normalize_observations: bool = False
    """Running observation normalisation (per member, kept with each archived policy)."""
    normalize_rewards: bool = True
    """Scale each objective's reward by its own running return std (per-objective
    normalisation, so no objective's scale dominates the preference weights)."""
    cached_reset: bool = False
    """Auto-reset to cached start states (physics envs)."""


@struct.dataclass
class Hyperparams:
    """Traceable settings: the members' PPO hyperparameters (their ``preference`` is set per
    member from the weight set) and the constraint's ``beta`` and ``barrier_t``."""

    ppo: ppo.Hyperparams
    beta: jax.Array
    barrier_t: jax.Array

    @classmethod
    def from_config(cls, config: Config) -> Hyperparams:
        return cls(ppo=ppo.Hyperparams.from_config(member_config(config)),
                   beta=jnp.float32(config.beta), barrier_t=jnp.float32(config.barrier_t))


PRESETS: dict[str, dict[str, Any]] = {
    # Deep Sea Treasure: 100-step episodes of a 10-column grid; small networks, short rollouts.
    # Deep Sea Treasure: 100-step episodes of a 10-column grid; small networks, short rollouts,
    # a larger entropy bonus. Measured on the concave map (tests/test_morl_learning.py): 10, 10,
    # 9 and 10 of its 10 Pareto points over seeds 0-3, 4.3M env steps, about 35 s on 2 cores.
    "deep-sea-treasure": dict(num_preferences=24, init_steps=20_000, extension_rounds=8,
                              extension_steps=20_000, num_envs=8, num_steps=64,
                              hidden_sizes=(32, 32), entropy_coef=0.05, learning_rate=1e-3),
    # MuJoCo/Brax locomotion (MO-Hopper-2d, MO-HalfCheetah): C-MORL's PPO settings scaled down.
    "locomotion": dict(num_preferences=6, init_steps=1_000_000, extension_rounds=2,
                       extension_steps=250_000, num_envs=64, num_steps=64,
                       update_epochs=10, num_minibatches=32, entropy_coef=0.0,
                       normalize_observations=True, cached_reset=True),
}
PRESET_BY_ENV = {"mo/deep-sea-treasure": "deep-sea-treasure",
                 "mo/deep-sea-treasure-concave": "deep-sea-treasure",
                 "mo/brax-hopper-2obj": "locomotion", "mo/brax-halfcheetah": "locomotion"}


def member_config(config: Config) -> ppo.Config:
    """The ``ppo.Config`` of one member (a policy of the archive in training)."""
    batch = config.num_envs * config.num_steps
    updates = max(1, config.init_steps // batch) + config.extension_rounds * max(
        1, config.extension_steps // batch)
    return ppo.Config(
        total_steps=updates * batch, num_envs=config.num_envs, num_steps=config.num_steps,
        update_epochs=config.update_epochs, num_minibatches=config.num_minibatches,
        learning_rate=config.learning_rate, anneal_lr=False, gamma=config.gamma,
        gae_lambda=config.gae_lambda, clip_epsilon=config.clip_epsilon,
        entropy_coef=config.entropy_coef, value_coef=config.value_coef,
        max_grad_norm=config.max_grad_norm, hidden_sizes=config.hidden_sizes,
        activation=config.activation, normalize_observations=config.normalize_observations,
        normalize_rewards=config.normalize_rewards, cached_reset=config.cached_reset)


def reference_point_of(config: Config, env: Environment, num_objectives: int) -> np.ndarray:
    """The hypervolume reference point ``(k,)``: the config's, else the env's; a ``ValueError``
    when neither gives one of the right length."""
    point = config.reference_point or getattr(env, "reference_point", None)
    if point is None or len(point) == 0:
        raise ValueError(f"C-MORL: {env.name} states no hypervolume reference point; pass "
                         f"reference_point=({', '.join(['...'] * num_objectives)}), one value "
                         f"per objective.")
    point = np.asarray(point, np.float64)
    if point.shape != (num_objectives,):
        raise ValueError(f"C-MORL: reference_point must have {num_objectives} values, one per "
                         f"objective of {env.name}; got {tuple(point.tolist())}.")
    return point


def validate(config: Config, env: Environment, env_params: Any) -> None:
    """Raise a ``ValueError`` naming the bad setting, before anything compiles."""
    if not isinstance(config, Config):
        raise TypeError(f"config must be a cmorl.Config; got {type(config).__name__}.")
    require_finite_numbers(config)
    require_positive_ints(config, "num_preferences", "init_steps", "extension_steps",
                          "archive_size", "front_episodes", "num_envs", "num_steps")
    require_positive(config, "barrier_t", "min_slack")
    if not 0.0 < config.beta <= 1.0:
        raise ValueError(f"C-MORL: beta must be in (0, 1]; got {config.beta}.")
    if config.extension_rounds < 0 or config.num_selected < 0:
        raise ValueError(f"C-MORL: extension_rounds and num_selected must be >= 0; got "
                         f"{config.extension_rounds} and {config.num_selected}.")
    k = preferences.num_objectives_of(env, env_params, "C-MORL")
    if k < 2:
        raise ValueError(f"C-MORL needs a multi-objective env (a reward vector of 2 or more "
                         f"objectives); {env.name} has a scalar reward. Pick an mo/ env "
                         f"(`jaxrl envs`).")
    reference_point_of(config, env, k)
    selected = config.num_selected or config.num_preferences // k
    if config.extension_rounds and (selected < 1 or selected * k > config.num_preferences):
        raise ValueError(
            f"C-MORL: extending num_selected={selected} policies on each of the {k} objectives "
            f"needs {selected * k} member slots, but num_preferences is "
            f"{config.num_preferences}; use num_preferences >= {max(selected, 1) * k}.")
    ppo.validate(member_config(config), env, env_params)


# --- state --------------------------------------------------------------------------------------
@struct.dataclass
class Archive:
    """The policies evaluated so far, fixed size ``A``: ``returns`` ``(A, k)`` (undiscounted
    mean evaluation returns), ``valid`` ``(A,)``, ``policies`` (each leaf ``(A, ...)``: the
    network params and observation statistics a ``Policy`` needs)."""

    returns: jax.Array
    valid: jax.Array
    policies: Any


@struct.dataclass
class CMORLState:
    """One C-MORL run: ``members`` (``PPOState`` batched ``(M,)``), the archive, and per member
    what it optimises: ``objective`` ``(M,)`` (-1: its preference, the initialisation stage;
    ``j``: objective ``j`` under constraints), ``thresholds`` ``(M, k)`` and
    ``return_estimate`` ``(M, k)`` (running mean return of its training episodes)."""

    members: ppo.PPOState
    archive: Archive
    objective: jax.Array
    thresholds: jax.Array
    return_estimate: jax.Array
    hypervolume: jax.Array  # of the archive's front at the last stage boundary
    update_step: jax.Array
    key: jax.Array
    hparams: Hyperparams


# --- the constrained objective (IPO's log-barrier) ----------------------------------------------
def constrained_objective(inputs: ObjectiveInputs) -> jax.Array:
    """PPO's clipped surrogate of the member's advantage: the scalarised one in the
    initialisation stage; in an extension, ``(A_j + sum_l kappa_l A_l) / (1 + sum_l kappa_l)``
    with ``kappa = hparams.meta["penalty"]`` ``(k,)`` (the barrier's gradient weights, 0 for
    ``j``) and ``A_j`` picked by the one-hot ``hparams.meta["target"]`` ``(k,)``."""
    meta = inputs.hparams.meta
    per_objective = inputs.objective_advantages  # (batch, k), standardised per objective
    penalty = meta["penalty"]
    constrained = (per_objective @ meta["target"] + per_objective @ penalty) / (
        1.0 + penalty.sum())
    advantages = jnp.where(meta["extending"], constrained, inputs.advantages)
    return clipped_surrogate(inputs.replace(advantages=advantages))


def barrier_weights(return_estimate: jax.Array, thresholds: jax.Array, objective: jax.Array,
                    barrier_t: jax.Array, min_slack: float) -> jax.Array:
    """``kappa_l = 1 / (t max(G_l - tau_l, min_slack))`` for ``l != objective`` (``(k,)``; all
    zero in the initialisation stage, ``objective < 0``)."""
    k = return_estimate.shape[-1]
    slack = jnp.maximum(return_estimate - thresholds, min_slack)
    others = (jnp.arange(k) != objective) & (objective >= 0)
    return jnp.where(others, 1.0 / (barrier_t * slack), 0.0)


# --- Pareto filtering and crowding inside jit ---------------------------------------------------
def _non_dominated(points: jax.Array, valid: jax.Array) -> jax.Array:
    """``(n,)`` bool: valid, dominated by no valid point (maximisation), and the first of any
    identical valid points (so a front counts each return vector once)."""
    return pareto.pareto_mask_jax(jnp.where(valid[:, None], points, -jnp.inf)) & valid


def _crowding(points: jax.Array, members: jax.Array) -> jax.Array:
    """NSGA-II crowding distance among ``members`` (``(n,)`` bool); ``-inf`` outside them,
    ``inf`` at each objective's extremes."""
    n, k = points.shape
    big = jnp.finfo(points.dtype).max
    distance = jnp.zeros(n, points.dtype)
    for j in range(k):
        values = jnp.where(members, points[:, j], big)  # non-members sort last
        order = jnp.argsort(values)
        sorted_values = values[order]
        count = members.sum()
        position = jnp.arange(n)
        span = sorted_values[jnp.maximum(count - 1, 0)] - sorted_values[0]
        previous = jnp.concatenate([sorted_values[:1], sorted_values[:-1]])
        following = jnp.concatenate([sorted_values[1:], sorted_values[-1:]])
        gap = (following - previous) / jnp.where(span > 0, span, 1.0)
        edge = (position == 0) | (position == count - 1)
        gap = jnp.where(edge, jnp.inf, jnp.where(position < count, gap, 0.0))
        distance = distance.at[order].add(gap)
    return jnp.where(members, distance, -jnp.inf)


def _merge(archive: Archive, returns: jax.Array, policies: Any) -> Archive:
    """The best ``A`` of the archive and the newly evaluated members: non-dominated first, by
    crowding distance; then the dominated ones, fewest dominators first."""
    size = archive.returns.shape[0]
    points = jnp.concatenate([archive.returns, returns])
    valid = jnp.concatenate([archive.valid, jnp.isfinite(returns).all(axis=-1)])
    pool = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), archive.policies, policies)
    front = _non_dominated(points, valid)
    crowding = _crowding(points, front)
    ge = jnp.all(points[:, None, :] >= points[None, :, :], axis=-1)
    gt = jnp.any(points[:, None, :] > points[None, :, :], axis=-1)
    dominators = jnp.sum(ge & gt & valid[:, None], axis=0)
    # One key, larger is better: the front by crowding, then the rest, invalid last.
    key = jnp.where(front, 1e30 + jnp.minimum(crowding, 1e29),
                    jnp.where(valid, -dominators.astype(points.dtype), -1e30))
    keep = jnp.argsort(-key)[:size]
    return Archive(points[keep], valid[keep], jax.tree.map(lambda x: x[keep], pool))


def _with_observation_stats(env_state: Any, stats: Any) -> Any:
    """``env_state`` with its observation normaliser's statistics (batched over envs) set to
    ``stats`` (one env's), so an archived policy sees observations as it was trained on them."""
    if stats is None:
        return env_state

    def replace(node):
        if isinstance(node, NormalizeObservationState):
            num_envs = jax.tree.leaves(node.obs_stats)[0].shape[0]
            return node.replace(obs_stats=jax.tree.map(
                lambda x: jnp.broadcast_to(x, (num_envs, *x.shape)), stats))
        return node

    return jax.tree.map(replace, env_state,
                        is_leaf=lambda node: isinstance(node, NormalizeObservationState))



@dataclasses.dataclass(frozen=True, eq=False)
class CMORLTrain(Train):
    """C-MORL's ``Train`` with what its outputs need: the objective count, the hypervolume
    reference point ``(k,)``, and ``member_policy`` (a member ``PPOState`` -> ``Policy``)."""

    num_objectives: int = 0
    reference_point: Any = None
    member_policy: Any = None
    objective_names: Any = None
    evaluate_archive: Any = None  # (state, key, discount) -> (A, k) returns of its policies


# --- make_train ---------------------------------------------------------------------------------
def make_train(config: Config, env: Environment, env_params: Any) -> Train:
    """Build C-MORL's training run for the multi-objective ``env``.

    Returns:
      ``Train`` whose state is a ``CMORLState``; ``train.num_updates`` PPO updates of every
      member; stage boundaries after ``init_steps`` and every ``extension_steps`` (per policy).
    """
    validate(config, env, env_params)
    member = member_config(config)
    learner_train = ppo.make_train(member, env, env_params, policy_objective=constrained_objective)
    learner = ppo.make_learner(member, env, env_params, policy_objective=constrained_objective)
    k = preferences.num_objectives_of(env, env_params, "C-MORL")
    num_members = config.num_preferences
    selected = config.num_selected or num_members // k
    batch = config.num_envs * config.num_steps
    init_updates = max(1, config.init_steps // batch)
    extension_updates = max(1, config.extension_steps // batch)
    num_updates = init_updates + config.extension_rounds * extension_updates
    weights = jnp.asarray(preference_weights(k, num_members))
    reference_point = reference_point_of(config, env, k)
    eval_env = without_auto_reset(env)
    limit = int(getattr(env_params, "max_steps_in_episode", 1000))
    min_slack = float(config.min_slack)

    def member_hparams(hparams: Hyperparams) -> ppo.Hyperparams:
        meta = {"target": jnp.zeros(k), "penalty": jnp.zeros(k), "extending": jnp.bool_(False)}
        one = hparams.ppo.replace(meta=meta)
        return jax.tree.map(lambda x: jnp.broadcast_to(x, (num_members, *jnp.shape(x))),
                            one).replace(preference=weights)

    def policy_params(members: ppo.PPOState) -> Any:
        return jax.vmap(lambda state: learner_train.make_policy(state).params)(members)

    def init(key: jax.Array, hparams: Hyperparams) -> CMORLState:
        member_key, key = jax.random.split(key)
        members = jax.vmap(learner_train.init)(jax.random.split(member_key, num_members),
                                               member_hparams(hparams))
        template = jax.tree.map(lambda x: x[0], policy_params(members))
        size = config.archive_size
        archive = Archive(jnp.full((size, k), -jnp.inf), jnp.zeros(size, bool),
                          jax.tree.map(lambda x: jnp.zeros((size, *x.shape), x.dtype), template))
        return CMORLState(
            members=members, archive=archive, objective=jnp.full(num_members, -1, jnp.int32),
            thresholds=jnp.zeros((num_members, k)), return_estimate=jnp.zeros((num_members, k)),
            hypervolume=jnp.float32(0.0), update_step=jnp.int32(0), key=key, hparams=hparams)

    def evaluate_members(members: ppo.PPOState, key: jax.Array) -> jax.Array:
        """Mean undiscounted return ``(M, k)`` of each member's deterministic policy."""
        def one(state, member_key):
            returns = evaluate(learner_train.make_policy(state), eval_env, env_params, member_key,
                               config.front_episodes, deterministic=True,
                               max_steps=limit)["episode_return"]
            return returns.mean(axis=0)

        return jax.vmap(one)(members, jax.random.split(key, num_members))

    def stage_boundary(state: CMORLState) -> CMORLState:
        eval_key, key = jax.random.split(state.key)
        returns = evaluate_members(state.members, eval_key)
        archive = _merge(state.archive, returns, policy_params(state.members))
        # Selection: the archive's front by crowding distance (extremes first).
        front = _non_dominated(archive.returns, archive.valid)
        order = jnp.argsort(-jnp.where(front, _crowding(archive.returns, front), -jnp.inf))
        slot = jnp.arange(num_members)
        # With fewer front policies than selections, the selections cycle through the front
        # (a policy extended twice on one objective: two tries with different rollouts).
        source = order[(slot // k) % jnp.clip(front.sum(), 1, selected)]
        extend = (slot < selected * k) & front[source]
        objective = jnp.where(extend, slot % k, state.objective).astype(jnp.int32)
        chosen = archive.returns[source]  # (M, k)
        thresholds = jnp.where(extend[:, None],
                               chosen - (1.0 - state.hparams.beta) * jnp.abs(chosen),
                               state.thresholds)
        chosen_policies = jax.tree.map(lambda x: x[source], archive.policies)

        def reseed(member, take, policy):
            fresh_opt = learner.init_optimizer(policy["network"], member.hparams)
            seeded = member.replace(
                params=policy["network"], opt_state=fresh_opt,
                env_state=_with_observation_stats(member.env_state,
                                                  policy["observation_stats"]))
            return jax.tree.map(lambda a, b: jnp.where(take, a, b), seeded, member)

        members = jax.vmap(reseed)(state.members, extend, chosen_policies)
        meta = members.hparams.meta
        target = jax.nn.one_hot(jnp.maximum(objective, 0), k) * (objective >= 0)[:, None]
        members = members.replace(hparams=members.hparams.replace(meta={
            **meta, "target": target, "extending": objective >= 0}))
        hypervolume = jax.pure_callback(
            _host_hypervolume(reference_point), jax.ShapeDtypeStruct((), jnp.float32),
            archive.returns, archive.valid, vmap_method="sequential")
        return state.replace(members=members, archive=archive, objective=objective,
                             thresholds=thresholds,
                             return_estimate=jnp.where(extend[:, None], chosen,
                                                       state.return_estimate),
                             hypervolume=hypervolume, key=key)

    def update(state: CMORLState) -> tuple[CMORLState, dict[str, jax.Array]]:
        penalty = jax.vmap(barrier_weights, in_axes=(0, 0, 0, None, None))(
            state.return_estimate, state.thresholds, state.objective, state.hparams.barrier_t,
            min_slack)
        members = state.members
        members = members.replace(hparams=members.hparams.replace(
            meta={**members.hparams.meta, "penalty": penalty}))
        members, member_metrics = jax.vmap(learner_train.update)(members)
        finished = member_metrics["episode_return"]  # (M, k), NaN where none finished
        estimate = jnp.where(jnp.isnan(finished), state.return_estimate,
                             0.5 * state.return_estimate + 0.5 * finished)
        estimate = jnp.where((state.update_step == 0) & ~jnp.isnan(finished), finished, estimate)
        state = state.replace(members=members, return_estimate=estimate,
                              update_step=state.update_step + 1)
        done = state.update_step
        boundary = (done >= init_updates) & ((done - init_updates) % extension_updates == 0)
        state = jax.lax.cond(boundary, stage_boundary, lambda s: s, state)
        front = _non_dominated(state.archive.returns, state.archive.valid)
        metrics = {
            "env_steps": done * batch * num_members,
            "episode_return": jnp.nanmean(finished, axis=0),
            "member_return": finished,
            "policy_loss": member_metrics["policy_loss"].mean(),
            "value_loss": member_metrics["value_loss"].mean(),
            "front_size": front.sum(),
            "hypervolume": state.hypervolume,
            "extending": (state.objective >= 0).sum(),
        }
        return state, metrics

    def make_policy(state: CMORLState) -> Policy:
        """The policy of the archive's front best for equal preference weights."""
        return policy_for_preference(train, state, jnp.full(k, 1.0 / k))

    def evaluate_archive(state: CMORLState, key: jax.Array, discount: float) -> jax.Array:
        """Mean discounted returns ``(A, k)`` of every archived policy (``config.front_episodes``
        deterministic episodes each; NaN rows where the archive slot is empty)."""
        template = learner_train.make_policy(jax.tree.map(lambda x: x[0], state.members))

        def one(policy_params, member_key):
            out = evaluate(template.replace(params=policy_params), eval_env, env_params,
                           member_key, config.front_episodes, max_steps=limit, discount=discount)
            return out.get("discounted_return", out["episode_return"]).mean(axis=0)

        size = state.archive.returns.shape[0]
        returns = jax.jit(jax.vmap(one))(state.archive.policies, jax.random.split(key, size))
        return jnp.where(state.archive.valid[:, None], returns, jnp.nan)

    train = CMORLTrain(
        init=init, update=update, num_updates=num_updates,
        env_steps_per_update=batch * num_members,
        default_hparams=Hyperparams.from_config(config), make_policy=make_policy, config=config,
        num_objectives=k, reference_point=reference_point,
        member_policy=learner_train.make_policy,
        objective_names=getattr(env.unwrapped, "objective_names", None),
        evaluate_archive=evaluate_archive,
    )
    return train


def _host_hypervolume(reference_point: np.ndarray):
    def compute(returns, valid):
        returns, valid = np.asarray(returns), np.asarray(valid)
        points = returns[valid]
        value = pareto.hypervolume(points, reference_point) if len(points) else 0.0
        return np.float32(value)
    return compute


def archive_front(state: CMORLState) -> np.ndarray:
    """The archive's non-dominated returns ``(n, k)`` of one (unbatched) state, duplicates
    dropped."""
    returns, valid = np.asarray(state.archive.returns), np.asarray(state.archive.valid)
    return pareto.pareto_front(returns[valid])


def policy_for_preference(train: Train, state: CMORLState, weights: Any) -> Policy:
    """The archive policy that serves preference ``weights`` ``(k,)`` best: the largest
    ``w . G`` over the archive's front (C-MORL's policy assignment for an unseen preference)."""
    weights = jnp.asarray(weights, jnp.float32)
    front = _non_dominated(state.archive.returns, state.archive.valid)
    utility = jnp.where(front, state.archive.returns @ weights, -jnp.inf)
    best = jnp.argmax(utility)
    policy = jax.tree.map(lambda x: x[best], state.archive.policies)
    template = train.member_policy(jax.tree.map(lambda x: x[0], state.members))
    return template.replace(params=policy)


# --- outputs ------------------------------------------------------------------------------------
def write_outputs(run_dir: Path, train: CMORLTrain, states: CMORLState) -> dict[str, Any]:
    """``front.csv``, ``front.json`` and ``front.png``: each seed's archive front (undiscounted
    returns, as the archive keeps them) and its metrics (hypervolume at the reference point,
    expected utility over equally spaced weights, sparsity, cardinality; MUL and IGD where the
    env ships its true front); ``front_discounted.*`` the same for the archive's policies
    re-evaluated with the discount ``gamma`` (against the env's discounted front where shipped).
    """
    run_dir = Path(run_dir)
    k = train.num_objectives
    gamma = float(train.config.gamma)
    weights = pareto.equally_spaced_weights(k, 100 if k == 2 else 10)
    num_seeds = jax.tree.leaves(states)[0].shape[0]
    env_id = load_run(run_dir)[2].env if (run_dir / "config.json").exists() else None
    true_fronts = {"": _true_front(env_id), "_discounted": _true_front(env_id, gamma)}
    seeds = []
    for seed in range(num_seeds):
        state = jax.tree.map(lambda x, s=seed: x[s], states)
        discounted = np.asarray(train.evaluate_archive(state, jax.random.key(seed), gamma))
        fronts = {"": archive_front(state),
                  "_discounted": pareto.pareto_front(discounted[~np.isnan(discounted[:, 0])])}
        entry = {}
        for suffix, front in fronts.items():
            metrics = pareto.front_metrics(front, train.reference_point, weights,
                                           true_fronts[suffix])
            entry[f"front{suffix}"] = front.tolist()
            entry[f"metrics{suffix}"] = metrics
            name = f"front{suffix}" + (f"_seed{seed}" if num_seeds > 1 else "")
            pareto.write_front(run_dir / name, front, names=train.objective_names,
                               extra={"metrics": metrics, "env": env_id,
                                      "discount": gamma if suffix else 1.0,
                                      "reference_point": train.reference_point.tolist()})
        seeds.append(entry)
    pareto.plot_front(np.concatenate([np.asarray(s["front"]) for s in seeds]),
                      run_dir / "front.png", true_front=true_fronts[""],
                      reference_point=train.reference_point,
                      objective_names=train.objective_names)
    pareto.plot_front(np.concatenate([np.asarray(s["front_discounted"]) for s in seeds]),
                      run_dir / "front_discounted.png", true_front=true_fronts["_discounted"],
                      reference_point=train.reference_point,
                      objective_names=train.objective_names)
    return {"seeds": seeds}


def _true_front(env_id: str | None, gamma: float | None = None) -> np.ndarray | None:
    """The env's shipped front (for ``gamma``), or None where none ships."""
    if env_id is None:
        return None
    try:
        from jaxrl_suite.envs.mo import has_front, pareto_front
        return pareto_front(env_id, gamma) if has_front(env_id) else None
    except ValueError:  # no front for this gamma, or only an approximate one
        return None


ALGORITHM = AlgorithmSpec(
    name="cmorl", display_name="C-MORL", config=Config, hyperparams=Hyperparams,
    make_train=make_train, presets=PRESETS, preset_by_env=PRESET_BY_ENV,
    default_env="mo/deep-sea-treasure-concave", write_outputs=write_outputs,
    description=__doc__.strip().splitlines()[0],
)
preset_config = ALGORITHM.preset_config
main = ALGORITHM.main

if __name__ == "__main__":
    sys.exit(main())
