"""LPG: a learned policy-gradient objective, meta-trained over a distribution of levels.

Oh et al. 2020, "Discovering Reinforcement Learning Algorithms"; GROOVE (Jackson et al. 2023)
for the curricula; TA-LPG (Jackson et al. 2024) for lifetime inputs and evolution strategies.

The objective network reads an agent's rollout **backwards in time** with a GRU whose carry is
reset at episode ends; its per-step inputs are ``[r, terminated, gamma, pi(a|s), phi(y_t),
phi(y_{t+1})]`` (``phi`` a small embedding shared by both predictions, 16 -> 1; ``phi(y_{t+1})``
zero where the episode terminated), plus ``[age / lifetime, log lifetime]`` with
``lifetime_inputs`` (TA-LPG). It outputs ``pi_hat`` (a scalar per step) and ``y_hat`` (a softmax
of ``prediction_width``), from which the agent's update rule is ``meta/agent.py``'s
``learned_update``. Two choices differ from the published GROOVE code and follow the papers: the
discount ``gamma`` is an input (the code leaves it out), and the lifetime inputs are the agent's
age as a fraction of its lifetime and the log of the lifetime (the code feeds raw update
counts).

A meta-step (``meta_optimizer="metagrad"``), all one compiled program:

1. every agent of the population (``population_size``, each on its own level, at staggered
   ages) takes ``inner_updates`` (K) rollouts and updates by the learned rule, differentiated
   through (``remat`` re-computes each inner update on the backward pass instead of keeping it);
2. one evaluation rollout of each updated agent; a separate critic per agent (trained by
   GAE(lambda) regression on all its rollouts, no meta-gradient) gives advantages, standardised
   per agent;
3. the meta-loss per agent, ``-mean(log pi(a|s) A) - b0 H(pi) - b1 H(y) + b2 |pi_hat|^2 +
   b3 |y_hat|^2`` (published defaults 5e-2, 1e-3, 5e-3, 1e-3), is averaged over agents
   (computed in ``agent_chunks`` sequential chunks, so memory grows with a chunk, not the
   population) and Adam steps the objective's parameters;
4. agents past their lifetime are replaced by fresh agents on levels from the curriculum
   (``meta/groove.py``), which for ``plr`` first scores their levels.

``meta_optimizer="es"`` instead trains whole lifetimes without truncation for a population of
antithetic objective parameters (``meta/es.py``), each pair on the same level, with pairwise
rank fitness (TA-LPG).

The run is a ``Train``: the harness gives it live progress, a run folder, checkpoints of the
whole meta-state (objective params, optimiser or ES state, agents, critics, level buffer) and
bit-exact resume.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxrl_suite.env.levels import is_level_env
from jaxrl_suite.learn import level_scores, optim
from jaxrl_suite.learn.advantages import standardize
from jaxrl_suite.meta import es as es_lib
from jaxrl_suite.meta import groove
from jaxrl_suite.meta.agent import (
    AGENT_PRESETS,
    AgentConfig,
    AgentState,
    CriticState,
    ObjectiveInputs,
    default_float,
    make_agent,
    validate_agent_config,
)
from jaxrl_suite.run.algorithms import AlgorithmSpec
from jaxrl_suite.run.configs import require_finite_numbers
from jaxrl_suite.run.training import Train

__all__ = [
    "Config",
    "Hyperparams",
    "LPGLearner",
    "LPGNetwork",
    "LPGState",
    "META_OPTIMIZERS",
    "PRESETS",
    "agent_config",
    "make_learner",
    "make_objective",
    "make_train",
    "validate",
]

META_OPTIMIZERS = ("metagrad", "es")


# --- config -------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Config:
    """LPG meta-training settings (every field a command-line flag).

    Population and lifetimes: ``population_size`` agents, each living ``lifetime`` updates
    (log-uniform in ``[min_lifetime, lifetime]`` when ``min_lifetime`` is set and smaller),
    ``inner_updates`` (K) of them per meta-step; ``meta_steps`` meta-steps in all.
    Agents (``meta/agent.py``): ``agent_network`` and the fields after it.
    The objective network: ``gru_width``, ``embedding_width``, ``prediction_width``,
    ``lifetime_inputs``. The meta-optimiser: ``meta_optimizer`` and the coefficients.
    The curriculum (``meta/groove.py``): ``curriculum``, ``score`` and the buffer settings.
    """

    population_size: int = 512
    lifetime: int = 250
    min_lifetime: int = 0
    inner_updates: int = 5
    meta_steps: int = 5000
    agent_chunks: int = 1
    remat: bool = False
    # the agents
    agent_network: str = "tabular"
    hidden_sizes: tuple[int, ...] = (32, 32)
    num_envs: int = 64
    rollout_steps: int = 20
    policy_learning_rate: float = 40.0
    prediction_learning_rate: float = 4.0
    agent_max_grad_norm: float = 0.5
    prediction_coefficient: float = 0.5
    gamma: float = 0.99
    gae_lambda: float = 0.95
    a2c_entropy_coefficient: float = 0.01
    eval_steps: int = 750
    objective_input_gradients: bool = True
    # the objective network
    gru_width: int = 256
    embedding_width: int = 16
    prediction_width: int = 8
    lifetime_inputs: bool = False
    # the meta-optimiser
    meta_optimizer: str = "metagrad"
    meta_learning_rate: float = 1e-4
    meta_max_grad_norm: float = 0.5
    policy_entropy_coefficient: float = 5e-2
    prediction_entropy_coefficient: float = 1e-3
    pi_hat_l2_coefficient: float = 5e-3
    y_hat_l2_coefficient: float = 1e-3
    # evolution strategies (meta_optimizer="es"): the TA-LPG erratum's sigma and rate
    es_strategy: str = "open_es"
    es_sigma: float = 0.1
    es_learning_rate: float = 1e-2
    # the curriculum
    curriculum: str = "random"
    score: str = "alg_regret"
    buffer_size: int = 4000
    replay_probability: float = 0.5
    score_temperature: float = 1.0
    score_batch: int = 0


PRESETS: dict[str, dict[str, Any]] = {
    # The published scale (GROOVE's README: 512 agents, K 5, 5000 meta-steps), for accelerators.
    "published": {},
    # What two CPU cores afford in minutes: 16 agents of 16 envs, a 64-unit GRU.
    "cpu": {"population_size": 16, "num_envs": 16, "gru_width": 64, "lifetime": 100,
            "meta_steps": 300, "buffer_size": 256, "eval_steps": 200,
            "meta_learning_rate": 1e-3},
}


@struct.dataclass
class Hyperparams:
    """The traced scalars of a meta-run: the meta-optimiser's rate and the regularisers."""

    meta_learning_rate: jax.Array
    policy_entropy_coefficient: jax.Array
    prediction_entropy_coefficient: jax.Array
    pi_hat_l2_coefficient: jax.Array
    y_hat_l2_coefficient: jax.Array


def default_hyperparams(config: Config) -> Hyperparams:
    return Hyperparams(**{field.name: jnp.asarray(getattr(config, field.name), default_float())
                          for field in dataclasses.fields(Hyperparams)})


def agent_config(config: Config) -> AgentConfig:
    """The ``AgentConfig`` of the agents a meta-run trains."""
    return AgentConfig(
        network=config.agent_network, hidden_sizes=tuple(config.hidden_sizes),
        prediction_width=config.prediction_width, num_envs=config.num_envs,
        rollout_steps=config.rollout_steps, policy_learning_rate=config.policy_learning_rate,
        prediction_learning_rate=config.prediction_learning_rate,
        max_grad_norm=config.agent_max_grad_norm,
        prediction_coefficient=config.prediction_coefficient, gamma=config.gamma,
        gae_lambda=config.gae_lambda, entropy_coefficient=config.a2c_entropy_coefficient,
        eval_steps=config.eval_steps, objective_input_gradients=config.objective_input_gradients)


def es_config(config: Config) -> es_lib.ESConfig:
    """The ``ESConfig`` of an ``es`` meta-run: antithetic pairs (each trained on one level)
    with pairwise rank fitness for OpenAI-ES, the strategy's own rank weights otherwise."""
    return es_lib.ESConfig(
        strategy=config.es_strategy, population_size=config.population_size,
        sigma=config.es_sigma,
        learning_rate=config.es_learning_rate if config.es_strategy == "open_es" else None)


def _require_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"LPG: {name} must be an integer >= {minimum}; got {value!r}.")


def validate(config: Config, env: Any = None, env_params: Any = None) -> None:
    """Refuse a meta-run that cannot work, in plain words, before anything compiles."""
    require_finite_numbers(config)
    for name, minimum in (("population_size", 1), ("lifetime", 1), ("min_lifetime", 0),
                          ("inner_updates", 1), ("meta_steps", 0), ("agent_chunks", 1),
                          ("gru_width", 1), ("embedding_width", 1), ("buffer_size", 1),
                          ("score_batch", 0)):
        _require_int(name, getattr(config, name), minimum)
    if config.population_size % config.agent_chunks:
        raise ValueError(f"LPG: population_size ({config.population_size}) must be divisible "
                         f"by agent_chunks ({config.agent_chunks}).")
    if config.lifetime < config.inner_updates:
        raise ValueError(f"LPG: lifetime ({config.lifetime} updates) must be at least "
                         f"inner_updates ({config.inner_updates}): an agent lives for at least "
                         f"one meta-step.")
    if config.min_lifetime and not config.inner_updates <= config.min_lifetime <= config.lifetime:
        raise ValueError(f"LPG: min_lifetime ({config.min_lifetime}) must be 0 (every agent "
                         f"lives `lifetime` updates) or between inner_updates "
                         f"({config.inner_updates}) and lifetime ({config.lifetime}).")
    if config.meta_optimizer not in META_OPTIMIZERS:
        raise ValueError(f"LPG: meta_optimizer must be one of {META_OPTIMIZERS}; got "
                         f"{config.meta_optimizer!r}.")
    if config.curriculum not in groove.CURRICULA:
        raise ValueError(f"LPG: curriculum must be one of {groove.CURRICULA}; got "
                         f"{config.curriculum!r}.")
    if config.score not in groove.SCORES:
        raise ValueError(f"LPG: score must be one of {groove.SCORES}; got {config.score!r}.")
    if config.meta_optimizer == "es":
        if config.population_size % 2:
            raise ValueError(f"LPG: ES trains antithetic pairs, so population_size must be "
                             f"even; got {config.population_size}.")
        if config.curriculum == "plr":
            raise ValueError("LPG: meta_optimizer 'es' draws its levels from the 'random' or "
                             "'frozen' curriculum; 'plr' scores levels at the end of "
                             "meta-gradient agents' lives (use meta_optimizer 'metagrad').")
        es_config(config).validate()
    for name in ("meta_learning_rate",):
        if not getattr(config, name) > 0:
            raise ValueError(f"LPG: {name} must be > 0; got {getattr(config, name)!r}.")
    for name in ("meta_max_grad_norm", "policy_entropy_coefficient",
                 "prediction_entropy_coefficient", "pi_hat_l2_coefficient",
                 "y_hat_l2_coefficient", "score_temperature"):
        if getattr(config, name) < 0:
            raise ValueError(f"LPG: {name} must be >= 0; got {getattr(config, name)!r}.")
    if not 0.0 <= config.replay_probability <= 1.0:
        raise ValueError(f"LPG: replay_probability must be in [0, 1]; got "
                         f"{config.replay_probability!r}.")
    validate_agent_config(agent_config(config), "LPG")
    if env is not None and not is_level_env(env):
        raise ValueError(f"LPG meta-trains on a distribution of levels: {env.name} is not a "
                         f"level environment (use gridworld, gridworld-small, maze, or "
                         f"ParamLevels(env, ranges)).")


# --- the objective network ----------------------------------------------------------------------
class _ResetGRUCell(nn.Module):
    """A GRU step whose incoming carry is zeroed where ``reset``: run backwards, the step after
    an episode's last one belongs to the next episode, so nothing of it reaches this one."""

    width: int

    @nn.compact
    def __call__(self, carry, inputs):
        x, reset = inputs
        carry = jnp.where(reset[..., None], jnp.zeros_like(carry), carry)
        carry, out = nn.GRUCell(features=self.width)(carry, x)
        return carry, out


class LPGNetwork(nn.Module):
    """``ObjectiveInputs`` of one rollout ``(T, N, ...)`` -> ``(pi_hat (T, N), y_hat (T, N, W))``.

    The GRU runs from the last step to the first (module docstring)."""

    gru_width: int = 256
    embedding_width: int = 16
    prediction_width: int = 8
    lifetime_inputs: bool = False

    @nn.compact
    def __call__(self, inputs: ObjectiveInputs) -> tuple[jax.Array, jax.Array]:
        embed = nn.Sequential([nn.Dense(self.embedding_width), nn.relu, nn.Dense(1)])
        continues = 1.0 - inputs.terminated.astype(default_float())
        features = [
            inputs.reward[..., None],
            inputs.terminated.astype(default_float())[..., None],
            jnp.broadcast_to(inputs.gamma, inputs.reward.shape)[..., None],
            inputs.action_probability[..., None],
            embed(inputs.prediction),
            embed(inputs.next_prediction) * continues[..., None],
        ]
        if self.lifetime_inputs:
            features += [jnp.broadcast_to(inputs.age_fraction, inputs.reward.shape)[..., None],
                         jnp.broadcast_to(inputs.log_lifetime, inputs.reward.shape)[..., None]]
        x = jnp.concatenate(features, axis=-1)
        scan = nn.scan(_ResetGRUCell, variable_broadcast="params", split_rngs={"params": False},
                       in_axes=0, out_axes=0, reverse=True)
        carry = jnp.zeros(x.shape[1:-1] + (self.gru_width,), default_float())
        _, hidden = scan(self.gru_width)(carry, (x, inputs.done))
        hidden = nn.relu(hidden)
        pi_hat = nn.Dense(1)(hidden)[..., 0]
        y_hat = nn.softmax(nn.Dense(self.prediction_width)(hidden))
        return pi_hat, y_hat


def make_objective(config: Config) -> tuple[LPGNetwork, Any]:
    """The objective network and ``objective(meta_params, inputs) -> (pi_hat, y_hat)``."""
    network = LPGNetwork(config.gru_width, config.embedding_width, config.prediction_width,
                         config.lifetime_inputs)
    return network, network.apply


def example_objective_inputs(width: int) -> ObjectiveInputs:
    """A one-step, one-env input, for initialising the objective network."""
    one = jnp.ones((1, 1), default_float())
    return ObjectiveInputs(one, one > 0, one > 0, jnp.asarray(0.99, default_float()), one,
                           jnp.ones((1, 1, width)) / width, jnp.ones((1, 1, width)) / width,
                           jnp.asarray(0.0, default_float()), jnp.asarray(0.0, default_float()))


# --- the meta-state -----------------------------------------------------------------------------
@struct.dataclass
class LPGState:
    """The whole meta-state, checkpointed by the harness.

    Attributes:
      params: the objective network's parameters (the learned object; ES: the search mean).
      opt_state: the meta-optimiser's state (ES: the ``es.ESState``).
      agents: ``AgentState`` with a leading ``population_size`` axis (None with ES, whose
        agents live within one generation).
      critic_params, critic_opt_state: each agent's meta-critic (leading population axis).
      agent_slots: int32 ``(population,)``: the curriculum buffer slot of each agent's level,
        -1 for a level not (yet) in the buffer.
      curriculum: ``groove.CurriculumState``.
      key: the meta-run's PRNG key.
      hparams: ``Hyperparams``.
      meta_step: int32 ``()``.
    """

    params: Any
    opt_state: Any
    agents: AgentState
    critic_params: Any
    critic_opt_state: Any
    agent_slots: jax.Array
    curriculum: groove.CurriculumState
    key: jax.Array
    hparams: Hyperparams
    meta_step: jax.Array


def _tree_where(mask: jax.Array, new: Any, old: Any) -> Any:
    """Per leading index, ``new`` where ``mask`` else ``old`` (mask ``(P,)``)."""
    return jax.tree.map(
        lambda a, b: jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)), a, b), new, old)


def _tree_take(tree: Any, indices: jax.Array) -> Any:
    return jax.tree.map(lambda x: x[indices], tree)


def _tree_put(tree: Any, indices: jax.Array, values: Any, mask: jax.Array) -> Any:
    """``tree[indices] = values`` where ``mask`` (a slot not masked keeps its value)."""
    def put(x, v):
        kept = x[indices]
        v = jnp.where(mask.reshape(mask.shape + (1,) * (v.ndim - 1)), v, kept)
        return x.at[indices].set(v)

    return jax.tree.map(put, tree, values)


def score_batch_size(config: Config) -> int:
    """How many dead agents' levels a ``plr`` meta-step scores (and replaces) at most: enough
    for the deaths a staggered population has per meta-step (``population * K / lifetime``),
    plus one; the rest wait a meta-step, not learning."""
    if config.score_batch:
        return min(config.score_batch, config.population_size)
    shortest = config.min_lifetime or config.lifetime
    return min(config.population_size,
               math.ceil(config.population_size * config.inner_updates / shortest) + 1)


# --- the meta-learner ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class LPGLearner:
    """The pieces of LPG meta-training (``make_learner``), all pure and jittable.

    Attributes:
      agent: the ``meta.agent.Agent`` the objective trains.
      network: the ``LPGNetwork``; ``objective(meta_params, inputs) -> (pi_hat, y_hat)``.
      curriculum: the ``groove.Curriculum``.
      init: ``(key, hparams) -> LPGState``.
      update: ``state -> (state, metrics)``: one meta-step.
      agent_meta_loss: ``(params, hparams, agent_state, critic, key, recorded=None,
        keep_rollouts=False) -> (meta_loss, aux)``: one agent's K inner updates and meta-loss.
      population_gradient: ``(params, hparams, agents, critics, keys) -> (mean gradient,
        agents, critics, per-agent metrics)``.
      env_steps_per_update: env steps of one meta-step, all agents.
    """

    config: Config
    agent: Any
    network: LPGNetwork
    objective: Any
    curriculum: groove.Curriculum
    init: Any
    update: Any
    agent_meta_loss: Any
    population_gradient: Any
    env_steps_per_update: int


def make_train(config: Config, env: Any, env_params: Any) -> Train:
    """LPG meta-training as a ``Train`` over ``config.meta_steps`` meta-steps.

    ``env`` is a level env (the task distribution, e.g. ``make("gridworld")``); each agent
    lives on one of its levels. Raises ``ValueError`` for bad settings (``validate``).
    """
    learner = make_learner(config, env, env_params)

    def make_policy(state):
        raise ValueError("LPG: a meta-run learns an objective, not a policy; evaluate it with "
                         "`jaxrl meta eval RUN_DIR` (fresh agents trained by it).")

    return Train(init=learner.init, update=learner.update, num_updates=config.meta_steps,
                 env_steps_per_update=learner.env_steps_per_update,
                 default_hparams=default_hyperparams(config), make_policy=make_policy,
                 config=config, int32_env_steps=False)


def make_learner(config: Config, env: Any, env_params: Any) -> LPGLearner:
    """The ``LPGLearner`` of a meta-run on ``env`` (a level env). Raises ``ValueError`` for bad
    settings (``validate``)."""
    validate(config, env, env_params)
    agent = make_agent(agent_config(config), env, env_params)
    level_env = agent.env
    network, objective = make_objective(config)
    population, num_updates = config.population_size, config.inner_updates
    chunks = config.agent_chunks
    curriculum = groove.make_curriculum(
        config.curriculum, config.score,
        lambda key: level_env.sample_level(key, env_params),
        buffer_size=config.buffer_size, replay_probability=config.replay_probability,
        temperature=max(config.score_temperature, 1e-6))
    plr = config.curriculum == "plr"
    replace_count = score_batch_size(config) if plr else population

    # The population is split over the local devices (as seeds are): each device trains its
    # agents, and only the meta-gradient's mean crosses devices.
    chunk_size = population // chunks
    devices = jax.local_devices()
    shared = math.gcd(chunk_size, len(devices))
    agent_sharding = (None if shared <= 1 else NamedSharding(
        Mesh(np.array(devices[:shared]), ("agents",)), PartitionSpec("agents")))

    def shard_agents(tree):
        if agent_sharding is None:
            return tree
        return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, agent_sharding), tree)

    def meta_optimizer(hparams):
        parts = [optim.adam(hparams.meta_learning_rate, eps_root=1e-8)]
        if config.meta_max_grad_norm > 0:
            parts.insert(0, optim.clip_by_global_norm(config.meta_max_grad_norm))
        return optax.chain(*parts)

    def draw_lifetimes(key, count):
        if not config.min_lifetime or config.min_lifetime == config.lifetime:
            return jnp.full((count,), config.lifetime, jnp.int32)
        value = jnp.exp(jax.random.uniform(key, (count,), minval=math.log(config.min_lifetime),
                                           maxval=math.log(config.lifetime)))
        return jnp.clip(jnp.round(value), config.min_lifetime, config.lifetime).astype(jnp.int32)

    def fresh_agents(key, levels, lifetimes):
        agent_key, critic_key = jax.random.split(key)
        count = lifetimes.shape[0]
        agents = jax.vmap(lambda k, level, life: agent.init(k, level, life))(
            jax.random.split(agent_key, count), levels, lifetimes)
        critics = jax.vmap(agent.init_critic)(jax.random.split(critic_key, count))
        return agents, critics

    def init(key, hparams):
        net_key, curriculum_key, level_key, agent_key, life_key, run_key = jax.random.split(key, 6)
        params = network.init(net_key, example_objective_inputs(config.prediction_width))
        curriculum_state = curriculum.init(curriculum_key)
        levels, slots, curriculum_state = curriculum.draw(level_key, curriculum_state, population)
        lifetimes = draw_lifetimes(life_key, population)
        agents, critics = fresh_agents(agent_key, levels, lifetimes)
        # Staggered ages, so that about the same number of agents die at every meta-step (and a
        # meta-gradient always mixes young and old agents): agent i starts i/P of the way
        # through its first life, in whole meta-steps.
        stagger = (jnp.arange(population) * lifetimes // population) // num_updates * num_updates
        agents = agents.replace(age=stagger.astype(jnp.int32))
        # Placed over the devices from the start, so the meta-steps' inputs already are.
        agents, critics = shard_agents((agents, critics))
        return LPGState(params, meta_optimizer(hparams).init(params), agents, critics.params,
                        critics.opt_state, slots, curriculum_state, run_key, hparams,
                        jnp.zeros((), jnp.int32))

    def agent_meta_loss(params, hparams, agent_state, critic, key, recorded=None,
                        keep_rollouts=False):
        """One agent's K inner updates, evaluation rollout and regularised meta-loss.

        Returns ``(meta_loss, (agent_state, critic, metrics))``, plus the rollouts (``(K, ...)``
        and the evaluation one) with ``keep_rollouts``. ``recorded``, such rollouts, replays
        them instead of rolling out: the meta-loss as a function of the objective's params
        with the rollouts held fixed, whose derivative the meta-gradient is (rollouts are
        data: their gradients are stopped)."""

        def inner(carry, step):
            agent_state, critic = carry
            step_key, recorded_step = step
            if recorded_step is None:
                agent_state, record = agent.rollout(agent_state, step_key, critic)
            else:
                record = recorded_step
            updated, diagnostics = agent.learned_update(agent_state, record, objective, params)
            # An agent past its lifetime waits for replacement without learning.
            alive = agent_state.age < agent_state.lifetime
            agent_state = jax.tree.map(lambda a, b: jnp.where(alive, a, b), updated,
                                       agent_state)
            critic, _, _, value_loss = agent.critic_update(critic, record)
            ended = record.returned_episode
            diagnostics.update(value_loss=value_loss,
                               return_sum=jnp.where(ended, record.episode_return, 0.0).sum(),
                               episodes=ended.sum())
            return (agent_state, critic), (diagnostics, record if keep_rollouts else None)

        if config.remat:
            inner = jax.checkpoint(inner)
        keys = jax.random.split(key, num_updates + 1)
        train_records = None if recorded is None else recorded[0]
        (agent_state, critic), (diagnostics, rollouts) = jax.lax.scan(
            inner, (agent_state, critic), (keys[:-1], train_records))
        if recorded is None:
            agent_state, record = agent.rollout(agent_state, keys[-1], critic)
        else:
            record = recorded[1]
        critic, raw_advantages, values, value_loss = agent.critic_update(critic, record)
        advantages = jax.lax.stop_gradient(standardize(raw_advantages))
        log_pi = jax.nn.log_softmax(agent.policy_logits(agent_state.policy_params,
                                                        record.observation))
        log_pi_taken = jnp.take_along_axis(log_pi, record.action[..., None], -1)[..., 0]
        policy_entropy = jnp.mean(-(jnp.exp(log_pi) * log_pi).sum(-1))
        log_y = jax.nn.log_softmax(agent.prediction(agent_state.prediction_params,
                                                    record.observation))
        prediction_entropy = jnp.mean(-(jnp.exp(log_y) * log_y).sum(-1))
        policy_gradient_loss = -jnp.mean(log_pi_taken * advantages)
        pi_hat_l2 = diagnostics["pi_hat_l2"].mean()
        y_hat_l2 = diagnostics["y_hat_l2"].mean()
        meta_loss = (policy_gradient_loss
                     - hparams.policy_entropy_coefficient * policy_entropy
                     - hparams.prediction_entropy_coefficient * prediction_entropy
                     + hparams.pi_hat_l2_coefficient * pi_hat_l2
                     + hparams.y_hat_l2_coefficient * y_hat_l2)
        ended = record.returned_episode
        level_rollout = level_scores.LevelRollout(advantages=raw_advantages, values=values,
                                                  rewards=record.reward, dones=jnp.logical_or(
                                                      record.terminated, record.truncated))
        metrics = {
            "meta_loss": meta_loss,
            "policy_gradient_loss": policy_gradient_loss,
            "policy_entropy": policy_entropy,
            "prediction_entropy": prediction_entropy,
            "pi_hat_l2": pi_hat_l2,
            "y_hat_l2": y_hat_l2,
            "agent_policy_loss": diagnostics["policy_loss"].mean(),
            "agent_prediction_loss": diagnostics["prediction_loss"].mean(),
            "critic_value_loss": value_loss,
            "return_sum": diagnostics["return_sum"].sum()
            + jnp.where(ended, record.episode_return, 0.0).sum(),
            "episodes": diagnostics["episodes"].sum() + ended.sum(),
            "positive_value_loss": level_scores.positive_value_loss(level_rollout).mean(),
            "mean_value": values.mean(),
        }
        if keep_rollouts:
            return meta_loss, (agent_state, critic, metrics, (rollouts, record))
        return meta_loss, (agent_state, critic, metrics)

    per_agent_grad = jax.grad(agent_meta_loss, has_aux=True)

    def population_gradient(params, hparams, agents, critics, keys):
        """The mean meta-gradient over agents, in ``agent_chunks`` sequential chunks."""
        inner_grads_of = jax.vmap(per_agent_grad, in_axes=(None, None, 0, 0, 0))

        def grads_of(params, hparams, agents, critics, keys):
            agents, critics, keys = shard_agents((agents, critics, keys))
            return inner_grads_of(params, hparams, agents, critics, keys)

        if chunks == 1:
            grads, (agents, critics, metrics) = grads_of(params, hparams, agents, critics, keys)
            return jax.tree.map(lambda g: g.mean(0), grads), agents, critics, metrics

        def split(x):
            return x.reshape((chunks, x.shape[0] // chunks) + x.shape[1:])

        def one_chunk(total, chunk):
            chunk_agents, chunk_critics, chunk_keys = chunk
            grads, aux = grads_of(params, hparams, chunk_agents, chunk_critics, chunk_keys)
            return jax.tree.map(lambda t, g: t + g.sum(0), total, grads), aux

        zero = jax.tree.map(jnp.zeros_like, params)
        total, (agents, critics, metrics) = jax.lax.scan(
            one_chunk, zero, jax.tree.map(split, (agents, critics, keys)))
        merge = lambda x: x.reshape((-1,) + x.shape[2:])  # noqa: E731
        return (jax.tree.map(lambda t: t / population, total), jax.tree.map(merge, agents),
                jax.tree.map(merge, critics), jax.tree.map(merge, metrics))

    def a2c_reference_return(key, level, lifetime):
        """GROOVE's antagonist: the return of A2C trained from scratch on ``level`` for
        ``lifetime`` updates (in a scan of the longest lifetime, later updates left out)."""
        init_key, train_key, eval_key = jax.random.split(key, 3)
        state = agent.init(init_key, level, lifetime, rule="a2c")
        state, _ = agent.train(state, train_key, config.lifetime, "a2c")
        return agent.evaluate(state, eval_key)

    def score_levels(curriculum_state, dying, slots, metrics, valid, key):
        """Score the levels of the dying agents (``plr``) and record them in the buffer."""
        count = slots.shape[0]
        eval_key, reference_key = jax.random.split(jax.random.fold_in(key, 1))
        levels = jax.tree.map(lambda x: x[:, 0], level_env.level_of(dying.env_state))
        agent_returns = jax.vmap(agent.evaluate)(dying, jax.random.split(eval_key, count))
        cached, available = curriculum.cached_reference(curriculum_state, slots)
        reference = jnp.full((count,), jnp.nan, default_float())
        if config.score == "alg_regret":
            reference = jax.vmap(a2c_reference_return)(
                jax.random.split(reference_key, count), levels, dying.lifetime)
            extra = sampler_extra(curriculum_state, slots)
            # The level's reference is the mean over every time it was computed, this one too.
            mean_reference = jnp.where(
                available, (cached * extra["reference_count"] + reference)
                / (extra["reference_count"] + 1.0), reference)
            scores = groove.algorithmic_regret(mean_reference, agent_returns)
        elif config.score == "pvl":
            scores = metrics["positive_value_loss"]
        else:  # maxmc: the best return seen on the level minus the critic's mean value
            best = jnp.maximum(sampler_extra(curriculum_state, slots)["max_return"],
                               agent_returns)
            best = jnp.where(slots >= 0, best, agent_returns)
            scores = best - metrics["mean_value"]
        curriculum_state = curriculum.record(curriculum_state, levels, slots, scores, reference,
                                             agent_returns, valid)
        weight = valid.astype(default_float())
        denominator = jnp.maximum(weight.sum(), 1.0)
        return curriculum_state, {
            "final_agent_return": jnp.where(valid.any(), (agent_returns * weight).sum()
                                            / denominator, jnp.nan),
            "reference_return": jnp.where(valid.any(), (jnp.nan_to_num(reference) * weight).sum()
                                          / denominator, jnp.nan),
            "level_score": jnp.where(valid.any(), (scores * weight).sum() / denominator,
                                     jnp.nan),
        }

    def sampler_extra(curriculum_state, slots):
        return curriculum.sampler.get_extra(curriculum_state.buffer, jnp.maximum(slots, 0))

    def replace_dead(state, agents, critics, metrics, key):
        """Agents past their lifetime get fresh networks on new levels (``plr``: the first
        ``score_batch_size`` of them, after their levels are scored)."""
        dead = agents.age >= agents.lifetime
        level_key, life_key, fresh_key = jax.random.split(key, 3)
        if plr:
            # The dead first, the longest dead first among them.
            order = jnp.argsort(jnp.where(dead, -(agents.age - agents.lifetime), 1 << 30))
            indices = order[:replace_count]
        else:
            indices = jnp.arange(population)
        valid = dead[indices]
        curriculum_state = state.curriculum
        scored = {}
        if plr:
            curriculum_state, scored = score_levels(
                curriculum_state, _tree_take(agents, indices), state.agent_slots[indices],
                _tree_take(metrics, indices), valid, level_key)
        levels, slots, curriculum_state = curriculum.draw(level_key, curriculum_state,
                                                          replace_count)
        lifetimes = draw_lifetimes(life_key, replace_count)
        new_agents, new_critics = fresh_agents(fresh_key, levels, lifetimes)
        agents = _tree_put(agents, indices, new_agents, valid)
        critics = _tree_put(critics, indices, new_critics, valid)
        agent_slots = state.agent_slots.at[indices].set(
            jnp.where(valid, slots, state.agent_slots[indices]))
        return agents, critics, agent_slots, curriculum_state, valid.sum(), scored

    def update(state):
        key, grad_key, replace_key = jax.random.split(state.key, 3)
        critics = CriticState(state.critic_params, state.critic_opt_state)
        grads, agents, critics, metrics = population_gradient(
            state.params, state.hparams, state.agents, critics,
            jax.random.split(grad_key, population))
        tx = meta_optimizer(state.hparams)
        params, opt_state = optim.apply_gradient(tx, state.params, state.opt_state, grads)
        agents, critics, agent_slots, curriculum_state, replaced, scored = replace_dead(
            state, agents, critics, metrics, replace_key)
        episodes = metrics.pop("episodes").sum()
        return_sum = metrics.pop("return_sum").sum()
        report = {name: value.mean() for name, value in metrics.items()}
        report.update(scored)
        meta_step = state.meta_step + 1
        report.update(
            episode_return=jnp.where(episodes > 0, return_sum / jnp.maximum(episodes, 1),
                                     jnp.nan),
            episodes_finished=episodes,
            agents_replaced=replaced,
            meta_gradient_norm=optax.global_norm(grads),
            env_steps=meta_step.astype(default_float()) * env_steps_per_update,
        )
        state = state.replace(params=params, opt_state=opt_state, agents=agents,
                              critic_params=critics.params, critic_opt_state=critics.opt_state,
                              agent_slots=agent_slots, curriculum=curriculum_state, key=key,
                              meta_step=meta_step)
        return state, report

    env_steps_per_update = (population * (num_updates + 1) * config.num_envs
                            * config.rollout_steps)
    if config.meta_optimizer == "es":
        init, update = make_es_step(config, agent, network, objective, curriculum,
                                    draw_lifetimes, shard_agents)
        env_steps_per_update = population * config.lifetime * config.num_envs * (
            config.rollout_steps)
    return LPGLearner(config, agent, network, objective, curriculum, init, update,
                      agent_meta_loss, population_gradient, env_steps_per_update)


def make_es_step(config: Config, agent: Any, network: LPGNetwork, objective: Any,
                 curriculum: groove.Curriculum, draw_lifetimes: Any, shard_agents: Any):
    """``(init, update)`` of an ES meta-run: each generation, every member of the population
    (objective params, antithetic pairs adjacent) trains a fresh agent for a whole lifetime,
    without truncation, the two of a pair on the same level with the same keys; the fitness is
    the trained agent's return, shaped by pairwise ranks (TA-LPG)."""
    es = es_lib.make_es(es_config(config),
                        network.init(jax.random.key(0),
                                     example_objective_inputs(config.prediction_width)))
    population, chunks = config.population_size, config.agent_chunks
    pairs = population // 2

    def init(key, hparams):
        net_key, es_key, curriculum_key, run_key = jax.random.split(key, 4)
        params = network.init(net_key, example_objective_inputs(config.prediction_width))
        return LPGState(params, es.init(es_key, params), None, None, None, None,
                        curriculum.init(curriculum_key), run_key, hparams,
                        jnp.zeros((), jnp.int32))

    def member_fitness(candidate, level, lifetime, key):
        init_key, train_key, eval_key = jax.random.split(key, 3)
        state = agent.init(init_key, level, lifetime)
        state, metrics = agent.train(state, train_key, config.lifetime, "learned", objective,
                                     candidate)
        returns = metrics["episode_return"]
        finished = jnp.isfinite(returns)
        mean_return = jnp.where(finished.any(), jnp.where(finished, returns, 0.0).sum()
                                / jnp.maximum(finished.sum(), 1), jnp.nan)
        return agent.evaluate(state, eval_key), mean_return

    def update(state):
        key, ask_key, level_key, life_key, train_key = jax.random.split(state.key, 5)
        candidates, es_state = es.ask(ask_key, state.opt_state)
        levels, _, curriculum_state = curriculum.draw(level_key, state.curriculum, pairs)
        lifetimes = draw_lifetimes(life_key, pairs)
        keys = jax.random.split(train_key, pairs)
        # Each pair shares its level, lifetime and keys: only the perturbation's sign differs.
        levels, lifetimes, keys = jax.tree.map(lambda x: jnp.repeat(x, 2, axis=0),
                                               (levels, lifetimes, keys))
        inputs = shard_agents((candidates, levels, lifetimes, keys))
        fitness_of = jax.vmap(member_fitness)
        if chunks == 1:
            fitness, returns = fitness_of(*inputs)
        else:
            split = lambda x: x.reshape((chunks, x.shape[0] // chunks) + x.shape[1:])  # noqa: E731
            fitness, returns = jax.lax.map(lambda chunk: fitness_of(*chunk),
                                           jax.tree.map(split, inputs))
            fitness, returns = fitness.reshape(-1), returns.reshape(-1)
        es_state = es.tell(es_state, candidates, fitness)
        meta_step = state.meta_step + 1
        finished = jnp.isfinite(returns)
        report = {
            "fitness_mean": fitness.mean(), "fitness_min": fitness.min(),
            "fitness_max": fitness.max(),
            "episode_return": jnp.where(finished.any(), jnp.where(finished, returns, 0.0).sum()
                                        / jnp.maximum(finished.sum(), 1), jnp.nan),
            "env_steps": meta_step.astype(default_float()) * population * config.lifetime
            * config.num_envs * config.rollout_steps,
        }
        return state.replace(params=es.mean(es_state), opt_state=es_state,
                             curriculum=curriculum_state, key=key, meta_step=meta_step), report

    return init, update


ALGORITHM = AlgorithmSpec(
    name="lpg", display_name="LPG", config=Config, hyperparams=Hyperparams,
    make_train=make_train, presets=PRESETS, default_env="gridworld", evaluates_policy=False,
    description=__doc__.strip().splitlines()[0],
)
preset_config = ALGORITHM.preset_config  # (preset, **overrides) -> Config
main = ALGORITHM.main  # `python meta/lpg.py --preset cpu`, `jaxrl meta lpg ...`


def agent_preset(name: str) -> dict[str, Any]:
    """The ``Config`` fields of an ``AGENT_PRESETS`` entry (``tabular`` or ``mlp``)."""
    preset = AGENT_PRESETS[name]
    renamed = {"network": "agent_network", "max_grad_norm": "agent_max_grad_norm"}
    return {renamed.get(k, k): v for k, v in preset.items()}


if __name__ == "__main__":
    sys.exit(main())
